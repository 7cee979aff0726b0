"""The conformance tester (``python -m conformance``): our servers pass it, broken ones fail it.

Every engine of ``chat`` must pass every stage.  Then each classic mistake,
built into an otherwise correct small server (``tests/conformance_servers.py``),
must fail *its* stage -- with a reason that names the mistake -- while the
stages before it still pass: proof that the tester catches what it claims to,
and blames the right thing.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import STAGES, format_result, run
from tests.conformance_servers import MISTAKES, SmallServer
from tests.helpers import TIMEOUT, free_port

ROOT = Path(__file__).resolve().parent.parent

#: How long the tester waits for an answer that a broken server never gives.
SHORT = 2.0


def report(results) -> str:
    return "\n".join(format_result(r) for r in results)


def test_every_engine_passes_every_stage(server):
    results = run(server.address)
    assert [r.number for r in results] == [s.number for s in STAGES]
    assert all(r.passed for r in results), report(results)


def test_the_small_server_without_mistakes_passes_every_stage():
    with SmallServer() as server:
        results = run(server.address, timeout=SHORT)
    assert all(r.passed for r in results), report(results)


#: Each classic mistake, the stage it must fail, and words its reason must contain.
CLASSIC_MISTAKES = [
    ("first_frame_only", 3, "only the first frame of each recv"),
    ("decode_per_chunk", 3, "decode whole lines, not each recv"),
    ("silent_errors", 4, "no error frame"),
    ("racy_claim", 5, "exactly one should be"),
    ("blocking_broadcast", 6, "never reads"),
]


@pytest.mark.parametrize("mistake, stage, words", CLASSIC_MISTAKES)
def test_classic_mistake_fails_its_stage_with_a_reason_that_names_it(mistake, stage, words):
    with SmallServer(mistake) as server:
        results = run(server.address, up_to=stage, timeout=SHORT)
    *earlier, last = results
    assert all(r.passed for r in earlier), report(results)
    assert not last.passed, report(results)
    assert words in last.reason, report(results)
    assert "\n" not in last.reason


def test_every_mistake_is_tested():
    assert sorted(mistake for mistake, _, _ in CLASSIC_MISTAKES) == sorted(MISTAKES)


def test_a_server_that_is_not_there_fails_stage_one_and_says_so():
    (result,) = run(("127.0.0.1", free_port()), up_to=1, timeout=SHORT)
    assert not result.passed
    assert "could not connect" in result.reason


# -- the command line


@pytest.fixture
def small_server() -> Iterator[SmallServer]:
    with SmallServer() as server:
        yield server


def conformance(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conformance", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=20 * TIMEOUT,
    )


def test_command_prints_each_stage_it_runs_and_exits_0_when_all_pass(small_server):
    host, port = small_server.address
    result = conformance(host, port, "--stage", 2)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("stage 1  connect and join") and "pass" in line for line in lines)
    assert any(line.startswith("stage 2  broadcast") and "pass" in line for line in lines)
    assert not any(line.startswith("stage 3") for line in lines)
    assert "2 of 2 stages pass." in result.stdout


def test_command_exits_1_with_the_reason_when_a_stage_fails():
    with SmallServer("silent_errors") as server:
        host, port = server.address
        result = conformance(host, port, "--stage", 4, "--timeout", SHORT)
    assert result.returncode == 1, result.stdout + result.stderr
    (failed,) = [line for line in result.stdout.splitlines() if "FAIL" in line]
    assert failed.startswith("stage 4  errors")
    assert "no error frame" in failed
    assert "3 of 4 stages pass." in result.stdout


def test_verbose_shows_the_frames_sent_and_received(small_server):
    host, port = small_server.address
    result = conformance(host, port, "--stage", 1, "--verbose")
    assert result.returncode == 0, result.stdout + result.stderr
    assert '-> b\'{"type":"join"' in result.stdout
    assert '<- {"type": "welcome"' in result.stdout
    assert '<- {"type": "pong"}' in result.stdout


def test_command_refuses_a_stage_that_does_not_exist():
    result = conformance("127.0.0.1", 1, "--stage", 7)
    assert result.returncode == 2
    assert "--stage" in result.stderr
