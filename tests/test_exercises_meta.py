"""The exercises are tested too: stubs match their solutions, stubs fail, solutions pass.

The tests in ``tests/exercises/`` check the reference solutions in every
normal run.  These tests check the rest of the promise, each in a throw-away
copy of the project whose stubs are freshly generated (so a learner's own work
in ``exercises/`` never makes them fail):

* every stub fails every one of its tests, with ``NotImplementedError``;
* the checker (``python -m exercises``) lists every exercise, shows the first
  failure in a few lines, turns an exercise "done" once it is solved and moves
  on to the next, and gives hints.

Only the drift test looks at the real ``exercises/``: there, edited stubs are
a learner's work in progress, so a difference only skips -- except in CI
(``.ci/run`` sets CHAT_STRICT_EXERCISES=1), where it fails.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
STRICT_ENV = "CHAT_STRICT_EXERCISES"

#: What a copy of the project needs for the exercises, their tests and the checker.
PROJECT_FILES = [
    "chat",
    "exercises",
    "solutions",
    "tests/__init__.py",
    "tests/conftest.py",
    "tests/helpers.py",
    "tests/exercises",
    "tools/make_exercises.py",
    "pyproject.toml",
]

#: A subprocess that should take seconds is stopped after this many.
SUBPROCESS_TIMEOUT = 120


def load_generator() -> ModuleType:
    path = ROOT / "tools" / "make_exercises.py"
    spec = importlib.util.spec_from_file_location("make_exercises", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generator = load_generator()
EXERCISES = [path.stem for path in generator.solution_files()]


def make_project(where: Path, solved: tuple[str, ...] = ()) -> Path:
    """Copy the project to ``where``, with fresh stubs except the ``solved`` exercises."""
    for name in PROJECT_FILES:
        source, target = ROOT / name, where / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    for solution in (where / "solutions").glob("ex*.py"):
        text = solution.read_text(encoding="utf-8")
        if solution.stem not in solved:
            text = generator.make_exercise(text, str(solution))
        (where / "exercises" / solution.name).write_text(text, encoding="utf-8")
    return where


def run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CHAT_EXERCISES", "PYTEST_ADDOPTS")}
    return subprocess.run(
        [sys.executable, *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=SUBPROCESS_TIMEOUT,
    )


def checker(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(project, "-m", "exercises", *args)


# -- the generator


def test_generator_replaces_a_solution_region_with_its_todo_and_a_raise():
    solution = textwrap.dedent('''\
        class Calculator:
            def double(self, x):
                """Twice x."""
                ### BEGIN SOLUTION
                ### TODO: return x times two.
                ###       (Or x + x.)
                return 2 * x  # the answer
                ### END SOLUTION
        ''')
    assert generator.make_exercise(solution) == textwrap.dedent('''\
        class Calculator:
            def double(self, x):
                """Twice x."""
                # TODO: return x times two.
                #       (Or x + x.)
                raise NotImplementedError("TODO: write Calculator.double()")
        ''')


@pytest.mark.parametrize(
    "solution",
    [
        "def f():\n    ### BEGIN SOLUTION\n    ### TODO: x\n    return 1\n",
        "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n",
        "def f():\n    return 1\n    ### END SOLUTION\n",
        "### BEGIN SOLUTION\n### TODO: x\nX = 1\n### END SOLUTION\n",
    ],
    ids=["unclosed", "no-todo", "end-without-begin", "module-level"],
)
def test_generator_refuses_malformed_regions(solution):
    with pytest.raises(generator.RegionError):
        generator.make_exercise(solution)


def test_exercise_files_are_the_stubs_generated_from_the_solutions():
    problems = generator.drift()
    if problems and not os.environ.get(STRICT_ENV):
        pytest.skip(
            "exercises/ differs from the stubs generated from solutions/: your own work "
            "(fine), or run python tools/make_exercises.py"
        )
    assert not problems, "\n".join(["Run python tools/make_exercises.py", *problems])


def test_every_exercise_has_a_stub_tests_and_a_hint():
    from exercises.hints import HINTS

    assert len(EXERCISES) >= 7
    for name in EXERCISES:
        assert (ROOT / "exercises" / f"{name}.py").exists(), f"no stub for {name}"
        assert (ROOT / "tests" / "exercises" / f"test_{name}.py").exists(), f"no tests for {name}"
        assert HINTS.get(name, "").strip(), f"no hint for {name}"


# -- stubs fail, solutions pass


@pytest.mark.slow
def test_every_stub_fails_every_one_of_its_tests(tmp_path):
    project = make_project(tmp_path / "project")
    report = tmp_path / "report.xml"
    result = run(
        project,
        *("-m", "pytest", "tests/exercises", "--exercises", "-o", "addopts=", "-q"),
        *("-p", "no:cacheprovider", "-p", "no:nbval", "-p", "no:anyio"),
        *("-p", "no:hypothesispytest", f"--junitxml={report}"),
    )
    assert report.exists(), result.stdout + result.stderr
    outcomes: dict[str, list[str]] = {name: [] for name in EXERCISES}
    for case in ET.parse(report).iter("testcase"):
        exercise = case.get("classname", "").split(".")[-1].removeprefix("test_")
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        message = "passed" if problem is None else problem.get("message", "")
        outcomes[exercise].append(f"{case.get('name')}: {message}")
    for name, tests in outcomes.items():
        assert tests, f"{name} has no tests"
        unfinished = [t for t in tests if "NotImplementedError" not in t]
        assert not unfinished, f"{name}: these pass or fail for another reason: {unfinished}"


# -- the checker, as a learner sees it


@pytest.mark.slow
def test_checker_shows_every_exercise_not_done_and_the_first_failure_briefly(tmp_path):
    result = checker(make_project(tmp_path))
    assert result.returncode == 1, result.stderr
    out = result.stdout
    lines = out.splitlines()
    for name in EXERCISES:
        line = next((line for line in lines if f"[ ] {name}" in line), "")
        assert "not done (0/" in line, f"{name} is not listed as not done, no test passing"
    next_line = next(line for line in lines if "<- next" in line)
    assert next_line.strip().startswith(f"[ ] {EXERCISES[0]}")
    assert "NotImplementedError: TODO: write serve_echo()" in out
    assert "exercises/ex01_echo_server.py:" in out  # where in the learner's file
    assert "python -m exercises --hint 01" in out
    assert len(out.splitlines()) < 40, "the failure should be brief, not a whole traceback"


@pytest.mark.slow
def test_checker_marks_a_solved_exercise_done_and_moves_on(tmp_path):
    result = checker(make_project(tmp_path, solved=(EXERCISES[0],)))
    out = result.stdout
    assert f"[x] {EXERCISES[0]}" in out
    assert f"[ ] {EXERCISES[1]}" in out
    assert "1 of 7 done." in out
    assert f"Next: exercises/{EXERCISES[1]}.py" in out
    assert result.returncode == 1


@pytest.mark.slow
def test_checker_congratulates_when_everything_is_solved(tmp_path):
    result = checker(make_project(tmp_path, solved=tuple(EXERCISES)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(EXERCISES)} of {len(EXERCISES)} done." in result.stdout
    assert "All exercises are done" in result.stdout


@pytest.mark.slow
def test_checker_runs_one_exercise_and_lists_its_tests(tmp_path):
    result = checker(make_project(tmp_path, solved=(EXERCISES[1],)), "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pass  every chunk size gives the same messages" in result.stdout
    assert "ex02_frame_decoder: done." in result.stdout


def test_checker_shows_a_wrong_answer_as_the_assertion_and_the_line_that_failed(tmp_path):
    project = make_project(tmp_path, solved=("ex07_token_bucket",))
    answer = project / "exercises" / "ex07_token_bucket.py"
    text = answer.read_text(encoding="utf-8")
    answer.write_text(text.replace("if self.tokens < 1.0:", "if self.tokens < 0.0:"), "utf-8")
    result = checker(project, "07")
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "FAIL  full bucket allows a burst then refuses" in out
    assert "assert allowed(bucket, [0.0] * 4) == [True, True, True, False]" in out
    assert "AssertionError" in out or "assert [True, True, True, True]" in out
    assert "Traceback" not in out and len(out.splitlines()) < 40


@pytest.mark.slow
def test_hint_without_a_number_is_for_the_first_exercise_not_done(tmp_path):
    result = checker(make_project(tmp_path, solved=(EXERCISES[0],)), "--hint")
    assert result.returncode == 0, result.stderr
    assert f"Hint for {EXERCISES[1]}" in result.stdout


def test_hint_for_a_numbered_exercise_points_to_its_solution(tmp_path):
    result = checker(make_project(tmp_path), "--hint", "03")
    assert result.returncode == 0, result.stderr
    assert "Hint for ex03_validate_message" in result.stdout
    assert "fullmatch" in result.stdout
    assert "solutions/ex03_validate_message.py" in result.stdout


def test_unknown_exercise_is_refused_with_the_choices(tmp_path):
    result = checker(make_project(tmp_path), "99")
    assert result.returncode != 0
    assert "Choose one of: 01, 02" in result.stderr
