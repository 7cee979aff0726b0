"""The exercise checker, in the spirit of rustlings.  Run it from the repository folder::

    python -m exercises               every exercise's status; the next one's first failure
    python -m exercises 02            run exercise 02's tests (also: ex02, ex02_connect)
    python -m exercises --watch       re-run the exercise you are on each time you save it
    python -m exercises --watch 05    ... starting at exercise 05
    python -m exercises --hint        a hint for the first exercise not done yet; again for more
    python -m exercises --hint 02     a hint for exercise 02 (three levels: nudge, approach, answer)

An exercise is *done* when all its tests in ``tests/exercises/`` pass against
your file in ``exercises/``.  The checker runs pytest in a child process
(``exercises/_runner.py``) and prints only what helps: which test failed, the
line of the test and the line of your code involved, and the error -- not the
whole traceback.  A loop of yours that never ends is stopped within a few
seconds, with its likely cause.  For everything pytest knows, run pytest
yourself: ``python -m pytest tests/exercises/test_ex02_connect.py --exercises``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if not __package__:  # run as a folder ("python ../exercises 02"), not with -m
    sys.path.insert(0, str(ROOT))
TESTS = ROOT / "tests" / "exercises"

from exercises._runner import exercise_of  # noqa: E402 (needs the path set above)

#: Where the checker remembers how many hints you have seen (not in git).
PROGRESS = HERE / ".progress.json"

#: How many levels of hints each exercise has.
HINT_LEVELS = 3

#: No single test may take longer than this many seconds (an endless wait in your
#: code).  The environment variable, if set, changes it (the checker's own tests do).
TIMEOUT_ENV = "CHAT_EXERCISE_TEST_TIMEOUT"
TEST_TIMEOUT = float(os.environ.get(TIMEOUT_ENV) or 10)

#: How often watch mode looks at your file's modification time.
WATCH_INTERVAL = 0.3

_TITLE = re.compile(r"Exercise (\d+) \((.*?)\): (.*?)\.?\s*$")


@dataclass
class Exercise:
    name: str  # ex02_connect

    @property
    def number(self) -> str:
        return self.name[2:4]

    @property
    def path(self) -> Path:
        return HERE / f"{self.name}.py"

    @property
    def tests(self) -> Path:
        return TESTS / f"test_{self.name}.py"

    @property
    def title(self) -> tuple[str, str]:
        """(what to build, where it is taught), from the first line of the module docstring."""
        text = self.path.read_text(encoding="utf-8", errors="replace")
        first = text.lstrip().removeprefix('"""').splitlines()[0] if text.strip() else ""
        match = _TITLE.match(first)
        return (match.group(3), match.group(2)) if match else (first, "")


@dataclass
class Result:
    """One test: its name, whether it passed, how it failed, what it recorded."""

    test: str
    passed: bool
    lines: list[str] = field(default_factory=list)
    props: list[tuple[str, str]] = field(default_factory=list)
    ran: bool = True  # False: not run, because an earlier test of its exercise never ended


@dataclass
class Status:
    exercise: Exercise
    results: list[Result] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def done(self) -> bool:
        return bool(self.results) and self.passed == len(self.results)

    @property
    def first_failure(self) -> Result | None:
        return next((r for r in self.results if not r.passed), None)


def find_exercises() -> list[Exercise]:
    return [Exercise(p.stem) for p in sorted(HERE.glob("ex[0-9][0-9]_*.py"))]


# -- running the tests, in a child process


def _run_child(files: list[str], package: str, statuses: dict[str, Status]) -> list[str]:
    """Run ``files`` in one child process; record results; the files it did not finish."""
    with tempfile.TemporaryDirectory(prefix="exercises-") as scratch:
        events_path = Path(scratch) / "events.jsonl"
        log_path = Path(scratch) / "output.txt"
        events_path.touch()
        command = [sys.executable, "-m", "exercises._runner", str(events_path), package, *files]
        env = {**os.environ, TIMEOUT_ENV: f"{TEST_TIMEOUT:g}"}
        env.pop("PYTEST_ADDOPTS", None)
        with open(log_path, "w", encoding="utf-8") as log:
            child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
            try:
                # Each test is bounded by TEST_TIMEOUT (and the watchdog); this
                # bound is for a child that hangs in a way neither catches.
                code = child.wait(timeout=60 + 5 * TEST_TIMEOUT * len(files))
            except BaseException:  # the time is up, or Ctrl+C
                child.kill()
                child.wait()
                raise
        events = [json.loads(line) for line in events_path.read_text("utf-8").splitlines() if line]
        output = log_path.read_text("utf-8", errors="replace")

    started: str | None = None
    collected: list[str] = []
    for event in events:
        if "collected" in event:
            collected = event["collected"]
        elif "start" in event:
            started = event["start"]
        elif "result" in event:
            name = exercise_of(event["result"])
            if name in statuses:
                test = event["result"].split("::")[-1]
                props = [tuple(p) for p in event.get("props", [])]
                ran = event.get("ran", True)
                statuses[name].results.append(
                    Result(test, event["passed"], event["lines"], props, ran)
                )
            started = None
        elif "collect_error" in event:
            name = exercise_of(event["collect_error"])
            if name in statuses:
                statuses[name].results.append(
                    Result("(collecting the tests)", False, event["lines"])
                )
        elif "busy" in event:
            name = exercise_of(event["busy"])
            test = event["busy"].split("::")[-1]
            if name in statuses:
                results = statuses[name].results
                # The busy report replaces whatever that test reported before.
                results[:] = [r for r in results if r.test != test]
                results.append(Result(test, False, event["lines"]))
            started = None
            stopped_in = name
            break
    else:
        stopped_in = None
        if started is not None:  # the child died inside a test: a hard timeout
            stopped_in = exercise_of(started)
            test = started.split("::")[-1]
            why = f"  Stopped after {TEST_TIMEOUT:g} s: an endless loop?  A wait with no end?"
            statuses[stopped_in].results.append(Result(test, False, [f"  {test}", why]))
        elif not events and code not in (0, 1):
            print(output)
            sys.exit(f"pytest could not run the tests (exit code {code}); its output is above.")
    if stopped_in is None:
        return []
    # The rest of the stopped exercise is not run: its loop would only spin again.
    results = statuses[stopped_in].results
    have = {r.test for r in results}
    for nodeid in collected:
        test = nodeid.split("::")[-1]
        if exercise_of(nodeid) == stopped_in and test not in have:
            lines = [f"  {test}: not run (an earlier test never ended)"]
            results.append(Result(test, False, lines, ran=False))
    remaining = [str(statuses[n].exercise.tests) for n in statuses if not statuses[n].results]
    return [f for f in files if f in remaining]


def run_tests(exercises: list[Exercise], package: str = "exercises") -> dict[str, Status]:
    """Run the tests of ``exercises`` against ``package``; a Status per exercise name."""
    statuses = {e.name: Status(e) for e in exercises}
    files = [str(e.tests) for e in exercises if e.tests.exists()]
    while files:
        files = _run_child(files, package, statuses)
    return statuses


# -- showing results


def _label(status: Status) -> str:
    if status.done:
        return "done"
    if not status.results:
        return "no tests found"
    return f"not done ({status.passed}/{len(status.results)} tests pass)"


def _next_after(exercise: Exercise, exercises: list[Exercise]) -> Exercise | None:
    later = [e for e in exercises if e.name > exercise.name]
    return later[0] if later else None


def next_line(exercise: Exercise, exercises: list[Exercise]) -> str:
    """``next: ex05_sendall -- read notebook 02_framing``, or the end of the course."""
    following = _next_after(exercise, exercises)
    if following is None:
        return "That was the last exercise.  Well done!"
    where = following.title[1]
    return f"next: {following.name}" + (f" -- read {where}" if where else "")


def conformance_report(status: Status) -> list[str]:
    """The conformance tester's stage lines that exercise 21's tests recorded."""
    lines = [
        value for result in status.results for key, value in result.props if key == "conformance"
    ]
    if not lines:
        return []
    return ["", "The conformance tester (python -m conformance) against your server:", *lines]


def show_all(statuses: list[Status]) -> int:
    """The rustlings view: every exercise with its status, then the next one in detail."""
    width = max(len(s.exercise.name) for s in statuses)
    nxt = next((s for s in statuses if not s.done), None)
    print("Exercises -- edit the files in exercises/, then run python -m exercises again\n")
    for status in statuses:
        mark = "[x]" if status.done else "[ ]"
        arrow = "   <- next" if status is nxt else ""
        print(f"  {mark} {status.exercise.name:<{width}}  {_label(status)}{arrow}")
    done = sum(s.done for s in statuses)
    print(f"\n{done} of {len(statuses)} done.")
    if nxt is None:
        print("\nAll exercises are done.  Well done!  Compare yours with solutions/ if you like.")
        return 0
    print()
    show_failure(nxt)
    return 1


def show_failure(status: Status) -> None:
    exercise = status.exercise
    what, where = exercise.title
    path = exercise.path.relative_to(ROOT).as_posix()
    print(f"Next: {path} -- {what}" + (f" ({where})" * bool(where)))
    failure = status.first_failure
    if failure is not None:
        print(f"{status.passed} of {len(status.results)} tests pass.  The first failure:\n")
        print("\n".join(failure.lines))
    print(f"\n  python -m exercises {exercise.number}          run only this exercise's tests")
    print(f"  python -m exercises --watch {exercise.number}  ... again each time you save the file")
    print(f"  python -m exercises --hint {exercise.number}   a hint")


def show_one(status: Status, exercises: list[Exercise]) -> int:
    """``python -m exercises NN``: each test of one exercise, then the first failure."""
    exercise = status.exercise
    what, where = exercise.title
    print(f"{exercise.name}: {what}" + (f" ({where})" * bool(where)) + "\n")
    for result in status.results:
        sentence = result.test.removeprefix("test_").replace("_", " ")
        label = "pass" if result.passed else "FAIL" if result.ran else "----"
        print(f"  {label}  {sentence}" + ("  (not run)" * (not result.ran)))
    for line in conformance_report(status):
        print(line)
    print(f"\n{exercise.name}: {_label(status)}.")
    if status.done:
        print(f"\n{next_line(exercise, exercises)}")
        return 0
    if status.first_failure is not None:
        print("\nThe first failure:\n")
        print("\n".join(status.first_failure.lines))
    print(f"\n  python -m exercises --hint {exercise.number}   a hint")
    return 1


# -- hints, in levels


def load_progress() -> dict:
    try:
        return json.loads(PROGRESS.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def save_progress(progress: dict) -> None:
    try:
        PROGRESS.write_text(json.dumps(progress, indent=1, sort_keys=True) + "\n", "utf-8")
    except OSError:
        pass  # a read-only folder: the hints just start over next time


def show_hint(exercise: Exercise) -> int:
    """The next level of hint for ``exercise``: a nudge, then the approach, then near the answer."""
    from exercises.hints import HINTS

    progress = load_progress()
    seen = progress.setdefault("hints", {})
    level = min(int(seen.get(exercise.name, 0)) + 1, HINT_LEVELS)
    seen[exercise.name] = level
    save_progress(progress)
    what, where = exercise.title
    hints = HINTS.get(exercise.name)
    print(
        f"Hint {level} of {HINT_LEVELS} for {exercise.name}: {what}" + (f" ({where})" * bool(where))
    )
    if not hints:
        print("\n(No hint for this one, sorry.)")
    else:
        print(hints[level - 1].rstrip())
    if level < HINT_LEVELS:
        print(f"\nStill stuck?  python -m exercises --hint {exercise.number}   the next hint")
    else:
        print(f"\nThat was the last hint.  The answer, explained: solutions/{exercise.name}.py")
    return 0


# -- watch mode


def _stamp(paths: list[Path]) -> tuple:
    stamps = []
    for path in paths:
        try:
            info = path.stat()
            stamps.append((info.st_mtime_ns, info.st_size))
        except OSError:
            stamps.append(None)
    return tuple(stamps)


def watch(exercises: list[Exercise], start: Exercise | None, package: str) -> int:
    """Run the current exercise, then again each time its file changes; move on when done."""
    if start is None:
        statuses = run_tests(exercises, package)
        start = next((s.exercise for s in statuses.values() if not s.done), None)
        if start is None:
            print("All exercises are done.  Well done!")
            return 0
    current: Exercise | None = start
    try:
        while current is not None:
            print(f"\n---- {time.strftime('%H:%M:%S')}  {current.name} " + "-" * 30, flush=True)
            status = run_tests([current], package)[current.name]
            show_one(status, exercises)
            if status.done:
                current = _next_after(current, exercises)
                continue  # on to the next exercise at once, as rustlings does
            # The capstone uses your other exercises: a change to any of them counts.
            watched = [e.path for e in exercises] if current.number == "21" else [current.path]
            shown = current.path.relative_to(ROOT).as_posix()
            print(f"\nWatching {shown}: save it to check again (Ctrl+C ends).", flush=True)
            before = _stamp(watched)
            while _stamp(watched) == before:
                time.sleep(WATCH_INTERVAL)
        print("\nAll exercises are done.  Well done!")
        return 0
    except KeyboardInterrupt:
        print("\nStopped watching.")
        return 0


# -- the command line


def pick(exercises: list[Exercise], wanted: str) -> Exercise:
    """The exercise ``wanted`` names: ``2``, ``02``, ``ex02`` or ``ex02_connect``."""
    key = wanted.strip().lower().removesuffix(".py").split("/")[-1]
    for exercise in exercises:
        number = exercise.number
        if key in (exercise.name, f"ex{number}", number, number.lstrip("0")):
            return exercise
    names = ", ".join(e.number for e in exercises)
    raise SystemExit(f"There is no exercise {wanted!r}.  Choose one of: {names}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m exercises",
        description="Check your exercises: status, the next failure, hints, and a watch mode.",
    )
    parser.add_argument("exercise", nargs="?", help="run one exercise's tests: 02, ex02, ...")
    parser.add_argument(
        "--hint",
        nargs="?",
        const="",
        metavar="NN",
        help="a hint (for exercise NN); again for the next of three levels",
    )
    parser.add_argument(
        "--watch",
        nargs="?",
        const="",
        metavar="NN",
        help="run the exercise you are on (or NN) again each time you save it; Ctrl+C ends",
    )
    parser.add_argument(
        "--solutions",
        action="store_true",
        help="check the reference solutions instead of your code (for maintainers)",
    )
    args = parser.parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):  # a console that cannot show "👋" shows "?"
        sys.stdout.reconfigure(errors="replace")
    package = "solutions" if args.solutions else "exercises"
    os.chdir(ROOT)  # the child process reports paths relative to here
    exercises = find_exercises()
    if not exercises:
        print("No exercises found in exercises/.")
        return 2
    try:
        if args.watch is not None:
            wanted = args.watch or args.exercise
            return watch(exercises, pick(exercises, wanted) if wanted else None, package)
        if args.hint is not None:
            if args.hint or args.exercise:
                return show_hint(pick(exercises, args.hint or args.exercise))
            statuses = run_tests(exercises, package)
            nxt = next((s for s in statuses.values() if not s.done), None)
            if nxt is None:
                print("All exercises are done: no hint needed!")
                return 0
            return show_hint(nxt.exercise)
        if args.exercise:
            exercise = pick(exercises, args.exercise)
            return show_one(run_tests([exercise], package)[exercise.name], exercises)
        return show_all(list(run_tests(exercises, package).values()))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
