"""Exercise 10: UserRegistry gives each name to exactly one thread, however they race."""

from __future__ import annotations

import threading
from types import ModuleType

import pytest

from tests.exercises.support import Background

THREADS = 8
ROUNDS = 50


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex10_user_registry")


@pytest.fixture
def registry(ex):
    return ex.UserRegistry()


def test_free_name_can_be_claimed(registry):
    assert registry.claim("alice") is True


def test_taken_name_cannot_be_claimed_again(registry):
    registry.claim("alice")
    assert registry.claim("alice") is False


def test_released_name_can_be_claimed_again(registry):
    registry.claim("alice")
    registry.release("alice")
    assert registry.claim("alice") is True


def test_releasing_a_free_name_does_nothing(registry):
    registry.claim("alice")
    registry.release("nobody")
    assert registry.names() == ["alice"]


def test_names_lists_users_in_the_order_they_claimed(registry):
    for name in ("carol", "alice", "bob"):
        registry.claim(name)
    registry.release("alice")
    assert registry.names() == ["carol", "bob"]


def test_names_returns_a_copy(registry):
    registry.claim("alice")
    registry.names().append("mallory")
    assert registry.names() == ["alice"]


def test_claim_waits_while_another_thread_holds_the_lock(registry):
    with registry._lock:  # as if another thread were in the middle of a claim
        call = Background(registry.claim, "bob")
        finished = call.finished_within(0.2)
        if finished:
            call.check()  # an exception from claim says more than what follows
        assert not finished, "claim() ran while another thread held self._lock"
    assert call.result() is True


def test_exactly_one_of_many_threads_racing_for_a_name_wins(ex, busy_switching):
    for round_ in range(ROUNDS):
        registry = ex.UserRegistry()
        start = threading.Barrier(THREADS, timeout=5)
        wins = []

        def race(registry=registry, start=start, wins=wins):
            start.wait()  # everyone claims at the same moment
            wins.append(registry.claim("alice"))

        racers = [Background(race) for _ in range(THREADS)]
        for racer in racers:
            racer.result()
        assert wins.count(True) == 1, f"round {round_}: {wins.count(True)} threads got the name"
        assert registry.names() == ["alice"]


def test_threads_claiming_and_releasing_leave_a_consistent_registry(ex, busy_switching):
    registry = ex.UserRegistry()
    start = threading.Barrier(THREADS, timeout=5)

    def churn(number: int) -> None:
        start.wait()
        for i in range(200):
            name = f"user{number}-{i % 5}"
            assert registry.claim(name), f"{name} was free but could not be claimed"
            registry.names()
            registry.release(name)
        registry.claim(f"user{number}")

    workers = [Background(churn, n) for n in range(THREADS)]
    for worker in workers:
        worker.result()
    assert sorted(registry.names()) == sorted(f"user{n}" for n in range(THREADS))
