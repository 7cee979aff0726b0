"""The exercise checker, in the spirit of rustlings.  Run it from the repository folder::

    python -m exercises             every exercise's status; the next one's first failure
    python -m exercises 02          run exercise 02's tests (also: ex02, ex02_frame_decoder)
    python -m exercises --hint      a hint for the first exercise not done yet
    python -m exercises --hint 02   a hint for exercise 02

An exercise is *done* when all its tests in ``tests/exercises/`` pass against
your file in ``exercises/``.  The checker runs pytest in this process and
prints only what helps: which test failed, the line of the test and the line
of your code involved, and the error -- not the whole traceback.  For that,
run pytest yourself: ``python -m pytest tests/exercises/test_ex02_frame_decoder.py
--exercises``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if not __package__:  # run as a folder ("python ../exercises 02"), not with -m
    sys.path.insert(0, str(ROOT))
TESTS = ROOT / "tests" / "exercises"

#: The environment variable tests/exercises/conftest.py reads to choose the package.
TARGET_ENV = "CHAT_EXERCISES"

#: No single test may take longer than this (an endless loop in your code, say).
TEST_TIMEOUT = 10

#: pytest plugins the exercise tests do not use.  Loading them takes seconds
#: (nbval alone imports half of Jupyter), so the checker leaves them out.
UNUSED_PLUGINS = ("nbval", "anyio", "hypothesispytest")

#: At most this many lines of an error message are shown.
MAX_ERROR_LINES = 12

_TITLE = re.compile(r"Exercise (\d+) \((.*?)\): (.*?)\.?\s*$")


@dataclass
class Exercise:
    name: str  # ex02_frame_decoder

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
    """One test: its name, whether it passed, and the failing report if not."""

    test: str
    passed: bool
    report: Any = None


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


# -- running the tests


class _Collector:
    """A pytest plugin that keeps every test's outcome, in order."""

    def __init__(self) -> None:
        self.results: dict[str, Result] = {}
        self.errors: list[Any] = []  # reports of files that could not even be collected
        self.timed_out: set[str] = set()  # test files in which a test hit the timeout

    def pytest_runtest_setup(self, item: Any) -> None:
        # One endless loop would otherwise cost TEST_TIMEOUT for every test that calls it.
        if item.nodeid.split("::")[0] in self.timed_out:
            import pytest

            pytest.fail("not run: an earlier test of this exercise timed out", pytrace=False)

    def pytest_runtest_logreport(self, report: Any) -> None:
        nodeid = report.nodeid
        result = self.results.setdefault(nodeid, Result(nodeid.split("::")[-1], True))
        if report.failed and result.passed:
            result.passed, result.report = False, report
            if "Timeout" in report.longreprtext:
                self.timed_out.add(nodeid.split("::")[0])

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.errors.append(report)


def run_tests(exercises: list[Exercise], package: str = "exercises") -> dict[str, Status]:
    """Run the tests of ``exercises`` against ``package``; a Status per exercise name."""
    try:
        import pytest
    except ImportError:
        sys.exit(
            "pytest is not installed in this Python.  Use the course's environment:\n"
            "  .venv/bin/python -m exercises      (Windows: .venv\\Scripts\\python -m exercises)\n"
            "(python3 course.py test creates it.)"
        )
    statuses = {e.name: Status(e) for e in exercises}
    files = [str(e.tests) for e in exercises if e.tests.exists()]
    if not files:
        return statuses
    collector = _Collector()
    args = [
        *files,
        f"--rootdir={ROOT}",
        "-o", "addopts=",  # not the project's options (notebooks, coverage, ...)
        "-o", f"timeout={TEST_TIMEOUT}",
        "-p", "no:cacheprovider",
        *[arg for name in UNUSED_PLUGINS for arg in ("-p", f"no:{name}")],
        "--tb=short",
        "-q",
    ]  # fmt: skip
    os.environ[TARGET_ENV] = package
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        code = pytest.main(args, plugins=[collector])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) and not collector.results:
        print(output.getvalue())
        sys.exit(f"pytest could not run the tests (exit code {int(code)}); its output is above.")
    for nodeid, result in collector.results.items():
        name = Path(nodeid.split("::")[0]).stem.removeprefix("test_")
        if name in statuses:
            statuses[name].results.append(result)
    for report in collector.errors:
        name = Path(report.nodeid.split("::")[0]).stem.removeprefix("test_")
        if name in statuses:
            statuses[name].results.append(Result("(collecting the tests)", False, report))
    return statuses


# -- showing a failure readably


def _relative(path: str) -> str:
    try:
        return Path(path).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return path


def describe_failure(result: Result) -> list[str]:
    """The failing test's line, your code's line, and the error; a dozen lines or so."""
    report = result.report
    lines = [f"  {result.test}"]
    longrepr = getattr(report, "longrepr", None)
    traceback = getattr(longrepr, "reprtraceback", None)
    entries = getattr(traceback, "reprentries", None)
    if not entries:  # not an ordinary exception: show the end of pytest's own text
        text = getattr(report, "longreprtext", "") or str(longrepr)
        return lines + ["    " + line for line in text.splitlines()[-MAX_ERROR_LINES:]]

    def source(entry: Any) -> list[str]:
        code = [
            line.strip()
            for line in entry.lines
            if line.strip() and not line.startswith("E ") and set(line.strip()) - set("^~")
        ]
        return ["      " + line for line in code[-2:]]

    def where(entry: Any) -> tuple[str, str]:
        location = entry.reprfileloc
        if location is None:
            return "", ""
        return _relative(location.path), f"{location.lineno}, {location.message.strip()}"

    in_tests = [e for e in entries if where(e)[0].startswith("tests/exercises/test_")]
    in_yours = [e for e in entries if where(e)[0].startswith("exercises/")]
    for entry, label in ((in_tests[:1], ""), (in_yours[-1:], "   <- your code")):
        for e in entry:
            path, line = where(e)
            lines.append(f"    {path}:{line}{label}")
            lines += source(e)
    errors = [line[1:].strip() for line in entries[-1].lines if line.startswith("E ")]
    errors = [line for line in errors if not line.startswith("Use -v")]  # not a pytest option here
    if not errors and getattr(longrepr, "reprcrash", None) is not None:
        errors = [longrepr.reprcrash.message]
    if len(errors) > MAX_ERROR_LINES:
        errors = [*errors[: MAX_ERROR_LINES - 1], "..."]
    lines += ["  " + line for line in errors]
    if any("Timeout" in line for line in errors):
        lines.append(
            f"  (Your code ran for over {TEST_TIMEOUT} s: an endless loop? a wait with no end?)"
        )
    return lines


# -- the commands


def _label(status: Status) -> str:
    if status.done:
        return "done"
    if not status.results:
        return "no tests found"
    return f"not done ({status.passed}/{len(status.results)} tests pass)"


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
        print("\n".join(describe_failure(failure)))
    print(f"\n  python -m exercises {exercise.number}          run only this exercise's tests")
    print(f"  python -m exercises --hint {exercise.number}   a hint")


def show_one(status: Status) -> int:
    """``python -m exercises NN``: each test of one exercise, then the first failure."""
    exercise = status.exercise
    what, where = exercise.title
    print(f"{exercise.name}: {what}" + (f" ({where})" * bool(where)) + "\n")
    for result in status.results:
        sentence = result.test.removeprefix("test_").replace("_", " ")
        print(f"  {'pass' if result.passed else 'FAIL'}  {sentence}")
    print(f"\n{exercise.name}: {_label(status)}.")
    if status.done:
        return 0
    if status.first_failure is not None:
        print("\nThe first failure:\n")
        print("\n".join(describe_failure(status.first_failure)))
    print(f"\n  python -m exercises --hint {exercise.number}   a hint")
    return 1


def show_hint(exercise: Exercise) -> int:
    from exercises.hints import HINTS

    what, where = exercise.title
    print(f"Hint for {exercise.name}: {what}" + (f" ({where})" * bool(where)))
    print(HINTS.get(exercise.name, "\n(No hint for this one, sorry.)\n").rstrip())
    print(f"\nStill stuck?  The answer, explained: solutions/{exercise.name}.py")
    return 0


def pick(exercises: list[Exercise], wanted: str) -> Exercise:
    """The exercise ``wanted`` names: ``2``, ``02``, ``ex02`` or ``ex02_frame_decoder``."""
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
        description="Check your exercises: status, the next failure, and hints.",
    )
    parser.add_argument("exercise", nargs="?", help="run one exercise's tests: 02, ex02, ...")
    parser.add_argument(
        "--hint", nargs="?", const="", metavar="NN", help="a hint (for exercise NN)"
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
    os.chdir(ROOT)  # pytest reports paths relative to here
    exercises = find_exercises()
    if not exercises:
        print("No exercises found in exercises/.")
        return 2
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
        return show_one(run_tests([exercise], package)[exercise.name])
    return show_all(list(run_tests(exercises, package).values()))


if __name__ == "__main__":
    sys.exit(main())
