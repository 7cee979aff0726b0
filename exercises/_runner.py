"""The checker's test runner: pytest on the exercise tests, in a process of its own, watched.

``python -m exercises`` starts this module as a child process::

    python -m exercises._runner OUT PACKAGE TESTFILE...

and reads what it writes to the file OUT, one JSON object per line:

``{"collected": [NODEID, ...]}``
    the tests about to run.
``{"start": NODEID}``
    a test begins.
``{"result": NODEID, "passed": BOOL, "lines": [...], "props": [...]}``
    a test ended; ``lines`` describe a failure in a few lines (the failing
    test's line, your code's line, the error -- and for "DID NOT RAISE" and
    timeouts, the lines of the test before the failing one); ``props`` are
    what the test recorded with ``record_property`` (the conformance
    tester's stage lines, for exercise 21).
``{"collect_error": FILE, "lines": [...]}``
    a test file could not even be imported.
``{"busy": NODEID, "lines": [...]}``
    the watchdog found a test burning a CPU without end; this process then
    ends at once (a thread cannot be stopped from outside in Python, a
    process can), and the checker carries on with the exercises not yet run.

Why a separate process?  A learner's loop that never ends -- ``recv`` until
``b""`` with the check for ``b""`` forgotten -- spins at full speed in a
thread that nothing can stop.  Run in the checker's own process, it would
keep a CPU busy, slow every later test down, and take the checker with it.
The watchdog compares the CPU time of this process (``time.process_time``)
with the wall-clock time: a test that has kept a CPU busy for
:data:`BUSY_SECONDS` in a row is stuck in a loop, not waiting for the
network, and the message can say so and name the likely cause.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "exercises"

#: A test that keeps a CPU this busy (CPU seconds per second; a loop around a
#: system call such as ``recv`` shows about 0.8, as the kernel's share varies) ...
BUSY_SHARE = 0.6
#: ... for this many seconds in a row is stuck in a loop.
BUSY_SECONDS = 3.0
#: How often the watchdog looks.
WATCH_INTERVAL = 0.25
#: The exit status after the watchdog stopped a test.
BUSY_EXIT = 3

#: At most this many lines of an error message are shown.
MAX_ERROR_LINES = 12
#: Lines of a test shown before the failing one, for "DID NOT RAISE" and timeouts.
CONTEXT_LINES = 6

#: Errors that say "this took too long" rather than "this was wrong".
_TIMEOUT = re.compile(
    r"Timeout|did not return within|timed out waiting|not met within|took too long"
)


class Output:
    """The events file, written a line at a time and flushed, so that nothing is lost."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 -- open for the run
        self._lock = threading.Lock()

    def write(self, **event: Any) -> None:
        with self._lock:
            self._file.write(json.dumps(event) + "\n")
            self._file.flush()


# -- describing a failure readably


def _relative(path: str) -> str:
    try:
        return Path(path).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return path


def test_context(path: str, lineno: int) -> list[str]:
    """The test's own lines up to ``lineno`` (1-based), from its ``def``, numbered.

    When the failing line opens a block (``with pytest.raises(...):``), the
    block's first lines follow: that is the call that did not raise.
    """
    try:
        source = (ROOT / path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    start = lineno - 1
    while start > 0 and not source[start].lstrip().startswith("def "):
        start -= 1
    start = max(start, lineno - CONTEXT_LINES)
    end = lineno
    failing = source[lineno - 1]
    if failing.rstrip().endswith(":"):
        indent = len(failing) - len(failing.lstrip())
        while end < min(len(source), lineno + 3):
            following = source[end]
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            end += 1
    lines = []
    for number in range(start + 1, end + 1):
        text = source[number - 1].rstrip()
        if text.strip():
            mark = ">" if number == lineno else " "
            lines.append(f"    {mark} {number:4} {text}")
    return lines


def describe_failure(test: str, report: Any) -> list[str]:
    """The failing test's line, your code's line, and the error; a dozen lines or so."""
    lines = [f"  {test}"]
    longrepr = getattr(report, "longrepr", None)
    traceback = getattr(longrepr, "reprtraceback", None)
    entries = getattr(traceback, "reprentries", None)
    if not entries:  # not an ordinary exception: show the end of pytest's own text
        text = getattr(report, "longreprtext", "") or str(longrepr)
        return lines + ["    " + line for line in text.splitlines()[-MAX_ERROR_LINES:]]

    def source(entry: Any) -> list[str]:
        code = [
            line.strip()
            for line in getattr(entry, "lines", [])
            if line.strip() and not line.startswith("E ") and set(line.strip()) - set("^~")
        ]
        return ["      " + line for line in code[-2:]]

    def where(entry: Any) -> tuple[str, int, str]:
        location = getattr(entry, "reprfileloc", None)
        if location is None:
            return "", 0, ""
        return _relative(location.path), location.lineno, location.message.strip()

    errors = [
        line[1:].strip() for line in getattr(entries[-1], "lines", []) if line.startswith("E ")
    ]
    errors = [line for line in errors if not line.startswith("Use -v")]  # not an option here
    if not errors and getattr(longrepr, "reprcrash", None) is not None:
        errors = [longrepr.reprcrash.message]
    text = "\n".join(errors)
    wants_context = "DID NOT RAISE" in text or bool(_TIMEOUT.search(text))

    in_tests = [e for e in entries if where(e)[0].startswith("tests/exercises/test_")]
    in_yours = [e for e in entries if where(e)[0].startswith("exercises/")]
    for entry in in_tests[:1]:
        path, lineno, message = where(entry)
        lines.append(f"    {path}:{lineno}, {message}")
        lines += test_context(path, lineno) if wants_context else source(entry)
    for entry in in_yours[-1:]:
        path, lineno, message = where(entry)
        lines.append(f"    {path}:{lineno}, {message}   <- your code")
        lines += source(entry)
    if len(errors) > MAX_ERROR_LINES:
        errors = [*errors[: MAX_ERROR_LINES - 1], "..."]
    lines += ["  " + line for line in errors]
    if "DID NOT RAISE" in text:
        lines.append("  (Your code returned normally where the test expects it to raise.)")
    elif _TIMEOUT.search(text):
        lines.append("  (Your code took too long: an endless loop?  A wait with no end?)")
    return lines


# -- the watchdog


def learner_frame(exclude: int) -> tuple[str, int, str, str] | None:
    """Where a thread is inside the learner's code: (path, line, function, source)."""
    for ident, frame in sys._current_frames().items():
        if ident == exclude:
            continue
        while frame is not None:
            path = _relative(frame.f_code.co_filename)
            if path.startswith("exercises/ex"):
                try:
                    text = (ROOT / path).read_text(encoding="utf-8").splitlines()
                    code = text[frame.f_lineno - 1].strip()
                except (OSError, IndexError):
                    code = ""
                return path, frame.f_lineno, frame.f_code.co_name, code
            frame = frame.f_back
    return None


def exercise_of(nodeid: str) -> str:
    """``tests/exercises/test_ex07_frame_decoder.py::test_x`` -> ``ex07_frame_decoder``."""
    return Path(nodeid.split("::")[0]).stem.removeprefix("test_")


def busy_report(test: str, spot: tuple[str, int, str, str] | None, seconds: float) -> list[str]:
    from exercises.hints import BUSY_LOOP, BUSY_LOOP_DEFAULT

    cause = BUSY_LOOP.get(exercise_of(test), BUSY_LOOP_DEFAULT)
    lines = [f"  {test.split('::')[-1]}"]
    if spot is not None:
        path, lineno, function, code = spot
        lines.append(f"    {path}:{lineno}, in {function}   <- your code, still running")
        if code:
            lines.append(f"      {code}")
    lines.append(f"  Stopped after {seconds:.0f} s at full speed: your loop never ends: {cause}")
    return lines


class Watchdog(threading.Thread):
    """Ends this process when a test has kept a CPU busy for BUSY_SECONDS in a row."""

    def __init__(self, plugin: Plugin) -> None:
        super().__init__(name="exercise-watchdog", daemon=True)
        self.plugin = plugin

    def run(self) -> None:
        samples: deque[tuple[float, float, str | None]] = deque()
        while True:
            time.sleep(WATCH_INTERVAL)
            now, cpu, test = time.monotonic(), time.process_time(), self.plugin.current
            samples.append((now, cpu, test))
            # Forget samples older than the window, keeping one at its start.
            while len(samples) > 2 and now - samples[1][0] >= BUSY_SECONDS:
                samples.popleft()
            first_wall, first_cpu, first_test = samples[0]
            wall = now - first_wall
            if wall < BUSY_SECONDS or cpu - first_cpu < BUSY_SHARE * wall:
                continue
            if first_test is None and test is None:
                continue  # pytest itself, between tests
            # Blame the exercise whose code is spinning, if we can see it (a
            # thread left behind by an earlier test may be what spins), and its
            # latest test; else the test under way when the spinning began.
            spot = learner_frame(threading.get_ident())
            blamed = first_test or test
            if spot is not None:
                exercise = Path(spot[0]).stem
                blamed = self.plugin.latest.get(exercise, blamed)
            self.plugin.out.write(busy=blamed, lines=busy_report(blamed, spot, wall))
            os._exit(BUSY_EXIT)


# -- the pytest plugin


class Plugin:
    """Reports every test's outcome, in order, as it happens."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.current: str | None = None
        self.latest: dict[str, str] = {}  # exercise name -> its test that started last
        self._reported: set[str] = set()
        self._timed_out: set[str] = set()  # test files in which a test hit the timeout
        self._not_run: set[str] = set()  # tests failed at once for that reason

    def pytest_runtest_setup(self, item: Any) -> None:
        self.current = item.nodeid
        self.latest[exercise_of(item.nodeid)] = item.nodeid
        self.out.write(start=item.nodeid)
        # One endless wait would otherwise cost the timeout for every test that calls it.
        if item.nodeid.split("::")[0] in self._timed_out:
            import pytest

            self._not_run.add(item.nodeid)
            pytest.fail("not run: an earlier test of this exercise timed out", pytrace=False)

    def pytest_runtest_logreport(self, report: Any) -> None:
        nodeid = report.nodeid
        if nodeid in self._reported:
            return
        test = nodeid.split("::")[-1]
        if report.failed:
            self._reported.add(nodeid)
            if "Timeout" in report.longreprtext:
                self._timed_out.add(nodeid.split("::")[0])
            self.out.write(
                result=nodeid,
                passed=False,
                lines=describe_failure(test, report),
                props=list(report.user_properties),
                ran=nodeid not in self._not_run,
            )
        elif report.when == "teardown":
            self._reported.add(nodeid)
            self.out.write(result=nodeid, passed=True, lines=[], props=list(report.user_properties))

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        self.current = None

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            lines = describe_failure("(collecting the tests)", report)
            self.out.write(collect_error=report.nodeid, lines=lines)

    def pytest_collection_finish(self, session: Any) -> None:
        self.out.write(collected=[item.nodeid for item in session.items])

    def pytest_sessionstart(self, session: Any) -> None:
        Watchdog(self).start()


#: pytest plugins the exercise tests do not use.  Loading them takes seconds
#: (nbval alone imports half of Jupyter), so the runner leaves them out.
UNUSED_PLUGINS = ("nbval", "anyio", "hypothesispytest", "cacheprovider")


def main(argv: list[str]) -> int:
    out_path, package, *files = argv
    import pytest

    os.environ["CHAT_EXERCISES"] = package
    timeout = os.environ.get("CHAT_EXERCISE_TEST_TIMEOUT", "10")
    args = [
        *files,
        f"--rootdir={ROOT}",
        "-o", "addopts=",  # not the project's options (notebooks, coverage, ...)
        "-o", f"timeout={timeout}",
        *[arg for name in UNUSED_PLUGINS for arg in ("-p", f"no:{name}")],
        "--tb=short",
        "-q",
    ]  # fmt: skip
    return int(pytest.main(args, plugins=[Plugin(Output(out_path))]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
