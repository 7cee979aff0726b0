"""The exercises are tested too: stubs match their solutions, stubs fail, solutions pass.

The tests in ``tests/exercises/`` check the reference solutions in every
normal run.  These tests check the rest of the promise, each in a throw-away
copy of the project whose stubs are freshly generated (so a learner's own work
in ``exercises/`` never makes them fail):

* the exercises are the course's plan, each with one task (one ``### TODO``),
  its tests and three hints;
* every stub fails every one of its tests, with ``NotImplementedError``;
* the classic wrong answers fail: the quadratic frame decoder, a name claim
  without the lock;
* the checker (``python -m exercises``) lists every exercise, shows the first
  failure in a few lines -- with the test's lines for "DID NOT RAISE" and
  timeouts --, stops a loop that never ends and names its likely cause, turns
  an exercise "done" once it is solved and says what comes next, gives hints
  in three levels, watches a file, and runs the conformance tester for the
  capstone.

Only the drift test looks at the real ``exercises/``: there, edited stubs are
a learner's work in progress, so a difference only skips -- except in CI
(``.ci/run`` sets CHAT_STRICT_EXERCISES=1), where it fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers import read_until

ROOT = Path(__file__).resolve().parent.parent
STRICT_ENV = "CHAT_STRICT_EXERCISES"

#: The course's exercises, in order (HELPER_GUIDE's plan; notebook in the docstring).
PLAN = [
    "ex01_listen",
    "ex02_connect",
    "ex03_recv_all",
    "ex04_echo_server",
    "ex05_sendall",
    "ex06_encode_frame",
    "ex07_frame_decoder",
    "ex08_validate_message",
    "ex09_accept_and_spawn",
    "ex10_user_registry",
    "ex11_broadcast",
    "ex12_client_outbox",
    "ex13_logging",
    "ex14_graceful_shutdown",
    "ex15_receive_loop",
    "ex16_command_parser",
    "ex17_token_bucket",
    "ex18_timeouts",
    "ex19_nonblocking",
    "ex20_selectors_loop",
    "ex21_capstone_server",
    "ex22_room_routing",
    "ex23_history_query",
    "ex24_feature_negotiation",
    "ex25_name_claim",
]

#: The capstone: the exercise whose checker runs the conformance tester.
CAPSTONE = "ex21_capstone_server"

#: What a copy of the project needs for the exercises, their tests and the checker.
PROJECT_FILES = [
    "chat",
    "conformance",
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
            ignore = shutil.ignore_patterns("__pycache__", ".progress.json")
            shutil.copytree(source, target, ignore=ignore)
        else:
            shutil.copy2(source, target)
    for solution in (where / "solutions").glob("ex*.py"):
        text = solution.read_text(encoding="utf-8")
        if solution.stem not in solved:
            text = generator.make_exercise(text, str(solution))
        (where / "exercises" / solution.name).write_text(text, encoding="utf-8")
    return where


def answer(project: Path, name: str, old: str, new: str) -> None:
    """Write a learner's answer to ``name``: the solution with ``old`` replaced by ``new``."""
    text = (project / "solutions" / f"{name}.py").read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in solutions/{name}.py"
    (project / "exercises" / f"{name}.py").write_text(text.replace(old, new), encoding="utf-8")


def environment(**extra: str) -> dict[str, str]:
    unwanted = ("CHAT_EXERCISES", "PYTEST_ADDOPTS", "CHAT_EXERCISE_TEST_TIMEOUT")
    env = {k: v for k, v in os.environ.items() if k not in unwanted}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def run(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=project,
        env=environment(**env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=SUBPROCESS_TIMEOUT,
    )


def checker(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run(project, "-m", "exercises", *args, **env)


# -- the generator, and the exercises it generates


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


def test_the_exercises_are_the_courses_plan():
    assert EXERCISES == PLAN


@pytest.mark.parametrize("name", PLAN)
def test_each_exercise_is_one_task_with_tests_three_hints_and_its_notebook(name):
    from exercises.hints import HINTS

    solution = (ROOT / "solutions" / f"{name}.py").read_text(encoding="utf-8")
    assert solution.count(generator.BEGIN) == 1, "one concept, one ### TODO"
    first_line = solution.splitlines()[0]
    title = re.fullmatch(r'"""Exercise (\d\d) \(notebook (\d\d)_[a-z_]+\): .+\.', first_line)
    assert title, f"the title names the exercise and its notebook: {first_line!r}"
    assert title.group(1) == name[2:4]
    assert f"python -m exercises {name[2:4]}" in solution
    assert (ROOT / "exercises" / f"{name}.py").exists(), f"no stub for {name}"
    assert (ROOT / "tests" / "exercises" / f"test_{name}.py").exists(), f"no tests for {name}"
    hints = HINTS.get(name, ())
    assert len(hints) == 3 and all(hint.strip() for hint in hints), "three levels of hints"


def test_the_hint_progress_file_is_not_committed():
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "exercises/.progress.json" in ignored


# -- stubs fail, solutions pass, wrong answers fail


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


def test_the_quadratic_frame_decoder_fails_a_test(tmp_path):
    # Notebook 02's warning: searching the whole buffer again on every feed.
    project = make_project(tmp_path)
    answer(
        project,
        "ex07_frame_decoder",
        'end = self._buffer.find(b"\\n", self._scanned)',
        'end = self._buffer.find(b"\\n")',
    )
    result = checker(project, "07")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL  a byte costs the same after a long unfinished line" in result.stdout
    assert "(quadratic work)" in result.stdout
    assert result.stdout.count("FAIL") == 1, "only the work test should catch it"


def test_a_name_claim_without_the_lock_fails_a_test(tmp_path):
    project = make_project(tmp_path)
    answer(
        project,
        "ex10_user_registry",
        "with self._lock:\n            if name",
        "if True:\n            if name",
    )
    result = checker(project, "10")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL  claim waits while another thread holds the lock" in result.stdout


def test_a_history_query_built_with_an_f_string_fails_the_injection_test(tmp_path):
    # Notebook 10's warning: the room name pasted into the SQL text.
    project = make_project(tmp_path)
    answer(
        project,
        "ex23_history_query",
        """WHERE room = ? AND id < ? ORDER BY id DESC LIMIT ?",
        (room, below, limit + 1),""",
        """WHERE room = '{room}' AND id < ? ORDER BY id DESC LIMIT ?",
        (below, limit + 1),""",
    )
    result = checker(project, "23")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL  an injection attempt in the room name is only text" in result.stdout
    assert "pass  each message comes back exactly as it was stored" in result.stdout


def test_a_history_query_that_takes_the_rooms_first_messages_fails(tmp_path):
    # Notebook 10's other warning: ORDER BY id LIMIT n pages from the wrong end.
    project = make_project(tmp_path)
    answer(project, "ex23_history_query", "ORDER BY id DESC", "ORDER BY id")
    result = checker(project, "23")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL  before gives the messages just below it not the rooms first" in result.stdout


def test_a_cross_node_claim_that_checks_before_it_writes_fails_the_race(tmp_path):
    # Notebook 12's warning: GET, then SET, leaves a gap another server slips into.
    project = make_project(tmp_path)
    answer(
        project,
        "ex25_name_claim",
        "return bool(redis.set(name_key(name), node, nx=True, px=max(1, round(ttl * 1000))))",
        "if redis.get(name_key(name)) is not None:\n        return False\n"
        "    return bool(redis.set(name_key(name), node, px=max(1, round(ttl * 1000))))",
    )
    result = checker(project, "25")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL  twenty claims racing for one name make exactly one winner" in result.stdout
    assert result.stdout.count("FAIL") == 1, "only the race should catch it"


def test_a_cross_node_claim_without_an_expiry_fails_a_test(tmp_path):
    project = make_project(tmp_path)
    answer(
        project,
        "ex25_name_claim",
        "nx=True, px=max(1, round(ttl * 1000))",
        "nx=True",
    )
    result = checker(project, "25")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL  a claim expires when its node stops renewing it" in result.stdout


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
    assert "NotImplementedError: TODO: write listen()" in out
    assert "exercises/ex01_listen.py:" in out  # where in the learner's file
    assert "python -m exercises --hint 01" in out
    assert "python -m exercises --watch 01" in out
    assert len(out.splitlines()) < 50, "the failure should be brief, not a whole traceback"


@pytest.mark.slow
def test_checker_marks_a_solved_exercise_done_and_moves_on(tmp_path):
    result = checker(make_project(tmp_path, solved=(EXERCISES[0],)))
    out = result.stdout
    assert f"[x] {EXERCISES[0]}" in out
    assert f"[ ] {EXERCISES[1]}" in out
    assert f"1 of {len(EXERCISES)} done." in out
    assert f"Next: exercises/{EXERCISES[1]}.py" in out
    assert result.returncode == 1


@pytest.mark.slow
def test_checker_congratulates_when_everything_is_solved(tmp_path):
    result = checker(make_project(tmp_path, solved=tuple(EXERCISES)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(EXERCISES)} of {len(EXERCISES)} done." in result.stdout
    assert "All exercises are done" in result.stdout


def test_checker_runs_one_exercise_lists_its_tests_and_names_the_next(tmp_path):
    result = checker(make_project(tmp_path, solved=("ex07_frame_decoder",)), "7")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pass  every chunk size gives the same lines" in result.stdout
    assert "ex07_frame_decoder: done." in result.stdout
    assert "next: ex08_validate_message -- read notebook 03_protocol" in result.stdout


def test_checker_shows_a_wrong_answer_as_the_assertion_and_the_line_that_failed(tmp_path):
    project = make_project(tmp_path)
    answer(project, "ex17_token_bucket", "if self.tokens < 1.0:", "if self.tokens < 0.0:")
    result = checker(project, "17")
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "FAIL  full bucket allows a burst then refuses" in out
    assert "assert allowed(bucket, [0.0] * 4) == [True, True, True, False]" in out
    assert "AssertionError" in out or "assert [True, True, True, True]" in out
    assert "Traceback" not in out and len(out.splitlines()) < 40


def test_did_not_raise_shows_the_test_lines_up_to_the_call(tmp_path):
    project = make_project(tmp_path)
    answer(
        project, "ex08_validate_message", "USERNAME.fullmatch(username)", "USERNAME.match(username)"
    )
    out = checker(project, "08").stdout
    assert "DID NOT RAISE" in out
    context = [line for line in out.splitlines() if re.match(r"    [ >] +\d+ ", line)]
    assert any("def test_bad_username_is_refused" in line for line in context), out
    assert any(line.startswith("    > ") and "pytest.raises" in line for line in context), out
    assert any("ex.validate_message(" in line for line in context), out
    assert "expects it to raise" in out


def test_a_timeout_shows_the_test_lines_and_says_what_it_means(tmp_path):
    project = make_project(tmp_path)
    answer(
        project,
        "ex18_timeouts",
        "        expired = []\n",
        '        __import__("time").sleep(30)  # a wait with no end, as far as a test knows\n'
        "        expired = []\n",
    )
    started = time.monotonic()
    result = checker(project, "18", CHAT_EXERCISE_TEST_TIMEOUT="1")
    assert time.monotonic() - started < 30
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "Timeout" in out
    assert re.search(r"    > +\d+ .*tracker\.expire\(", out), out
    assert "took too long" in out
    assert "(not run)" in out  # the other tests are not run, each waiting again


def test_a_loop_that_never_ends_is_stopped_and_its_likely_cause_named(tmp_path):
    project = make_project(tmp_path, solved=("ex01_listen", "ex02_connect", "ex04_echo_server"))
    answer(project, "ex03_recv_all", "        if not chunk:\n", "        if False:\n")
    started = time.monotonic()
    result = checker(project)
    took = time.monotonic() - started
    out = result.stdout
    assert "your loop never ends: did you stop when recv returns b''?" in out, out
    assert "exercises/ex03_recv_all.py:" in out and "still running" in out
    assert took < 30, f"the checker took {took:.0f} s"
    # ... and the checker went on with the other exercises.
    assert "[x] ex04_echo_server" in out
    assert "[ ] ex05_sendall" in out


def test_hints_come_in_three_levels_remembered_per_exercise(tmp_path):
    project = make_project(tmp_path)
    shown = [checker(project, "--hint", "03").stdout for _ in range(4)]
    assert [s.splitlines()[0][:14] for s in shown] == [
        "Hint 1 of 3 fo",
        "Hint 2 of 3 fo",
        *["Hint 3 of 3 fo"] * 2,
    ]
    assert "Still stuck?" in shown[0] and "the next hint" in shown[0]
    assert "solutions/ex03_recv_all.py" in shown[2]
    assert shown[2] == shown[3]
    assert checker(project, "--hint", "04").stdout.startswith("Hint 1 of 3 for ex04_echo_server")
    progress = json.loads((project / "exercises" / ".progress.json").read_text("utf-8"))
    assert progress["hints"] == {"ex03_recv_all": 3, "ex04_echo_server": 1}


@pytest.mark.slow
def test_hint_without_a_number_is_for_the_first_exercise_not_done(tmp_path):
    result = checker(make_project(tmp_path, solved=(EXERCISES[0],)), "--hint")
    assert result.returncode == 0, result.stderr
    assert f"Hint 1 of 3 for {EXERCISES[1]}" in result.stdout


def test_unknown_exercise_is_refused_with_the_choices(tmp_path):
    result = checker(make_project(tmp_path), "99")
    assert result.returncode != 0
    assert "Choose one of: 01, 02" in result.stderr


def test_watch_mode_checks_again_on_save_and_moves_on(tmp_path):
    project = make_project(tmp_path)
    command = [sys.executable, "-m", "exercises", "--watch", "03"]
    process = subprocess.Popen(
        command, cwd=project, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert process.stdout is not None
    fd = process.stdout.fileno()
    try:
        seen = read_until(fd, b"Watching exercises/ex03_recv_all.py", timeout=60)
        assert b"NotImplementedError: TODO: write recv_all()" in seen
        shutil.copy(project / "solutions" / "ex03_recv_all.py", project / "exercises")
        seen = read_until(fd, b"Watching exercises/ex04_echo_server.py", timeout=60, seen=seen)
        assert b"ex03_recv_all: done." in seen
        assert b"next: ex04_echo_server -- read notebook 01_sockets" in seen
        if os.name == "nt":
            process.terminate()
        else:
            process.send_signal(signal.SIGINT)  # Ctrl+C
            seen = read_until(fd, b"Stopped watching.", timeout=30, seen=seen)
        assert process.wait(timeout=30) == (0 if os.name != "nt" else process.returncode)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        process.stdout.close()


@pytest.mark.slow
def test_the_capstone_is_checked_by_the_conformance_tester(tmp_path):
    project = make_project(tmp_path, solved=tuple(EXERCISES))
    result = checker(project, "21")
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "The conformance tester (python -m conformance) against your server:" in out
    for number, title in [(1, "connect and join"), (6, "robustness")]:
        assert re.search(rf"stage {number}  {title} +pass", out), out
    assert "next: ex22_room_routing -- read notebook 10_extensions" in out


@pytest.mark.slow
def test_the_capstone_stub_fails_every_stage_and_points_to_the_method(tmp_path):
    project = make_project(tmp_path, solved=tuple(n for n in EXERCISES if n != CAPSTONE))
    result = checker(project, "21")
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert re.search(r"stage 1  connect and join +FAIL", out), out
    assert "NotImplementedError: TODO: write ChatServer.serve_client()" in out
