"""Exercise 21: your ChatServer passes every stage of the conformance tester.

Each test starts a fresh server and runs one stage against it.  When a stage
fails because ``serve_client`` raised, the test shows that exception (and the
line of your code it came from) rather than the stage's reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from conformance import STAGES, format_result, run_stage

#: Longest wait for one answer: a stage that fails waits this long, so keep it short.
WAIT = 3.0


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex21_capstone_server")


@pytest.fixture
def server(ex) -> Iterator[Any]:
    server = ex.ChatServer("127.0.0.1", 0)
    server.start()
    yield server
    server.stop()


def passes_stage(server: Any, number: int, record_property: Callable[[str, object], None]) -> None:
    result = run_stage(STAGES[number - 1], server.address, timeout=WAIT)
    record_property("conformance", format_result(result))  # the checker prints these lines
    if server.errors:
        raise server.errors[0]  # your code raised: that says more than the stage's reason
    assert result.passed, f"stage {number} ({result.title}): {result.reason}"


def test_stage_1_connect_and_join(server, record_property):
    passes_stage(server, 1, record_property)


def test_stage_2_broadcast(server, record_property):
    passes_stage(server, 2, record_property)


def test_stage_3_framing(server, record_property):
    passes_stage(server, 3, record_property)


def test_stage_4_errors(server, record_property):
    passes_stage(server, 4, record_property)


def test_stage_5_concurrency(server, record_property):
    passes_stage(server, 5, record_property)


def test_stage_6_robustness(server, record_property):
    passes_stage(server, 6, record_property)
