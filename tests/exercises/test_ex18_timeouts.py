"""Exercise 18: Tracker.expire() closes who never joined and who fell silent, on a fake clock."""

from __future__ import annotations

from types import ModuleType

import pytest


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex18_timeouts")


@pytest.fixture
def tracker(ex):
    return ex.Tracker(join_timeout=30, idle_timeout=120)


def reasons(expired: list[tuple[str, str]]) -> dict[str, str]:
    return {address: reason.split(":")[0] for address, reason in expired}


def test_nothing_expires_while_nothing_is_due(tracker):
    tracker.connect("a", now=0)
    tracker.connect("b", now=0)
    tracker.joined("b", "bob", now=0)
    assert tracker.expire(now=10) == []


def test_a_connection_that_never_joins_expires_after_the_join_timeout(tracker):
    tracker.connect("a", now=100)
    assert tracker.expire(now=130) == []  # exactly the timeout: not yet
    assert tracker.expire(now=130.5) == [("a", "Join timeout: no join within 30 s")]


def test_a_joined_connection_does_not_join_time_out(tracker):
    tracker.connect("a", now=0)
    tracker.joined("a", "alice", now=5)
    assert tracker.expire(now=60) == []


def test_pings_do_not_count_as_joining(tracker):
    tracker.connect("a", now=0)
    for t in range(0, 40, 5):
        tracker.seen("a", now=t)  # pings, but no join
    assert reasons(tracker.expire(now=31)) == {"a": "Join timeout"}


def test_a_silent_joined_connection_expires_after_the_idle_timeout(tracker):
    tracker.connect("a", now=0)
    tracker.joined("a", "alice", now=1)
    assert tracker.expire(now=121) == []
    assert tracker.expire(now=121.01) == [("a", "Idle timeout: nothing received for 120 s")]


def test_each_frame_restarts_the_idle_clock(tracker):
    tracker.connect("a", now=0)
    tracker.joined("a", "alice", now=0)
    for t in (100, 200, 300):
        tracker.seen("a", now=t)
        assert tracker.expire(now=t + 119) == []
    assert reasons(tracker.expire(now=421)) == {"a": "Idle timeout"}


def test_expired_connections_are_reported_once_and_forgotten(tracker):
    tracker.connect("a", now=0)
    assert len(tracker.expire(now=31)) == 1
    assert tracker.expire(now=1000) == []
    assert "a" not in tracker.connections


def test_several_expire_together_in_the_order_they_connected(tracker):
    tracker.connect("late", now=0)
    tracker.connect("idle", now=1)
    tracker.joined("idle", "ida", now=1)
    tracker.connect("fine", now=2)
    tracker.joined("fine", "fin", now=2)
    tracker.connect("late2", now=3)
    tracker.seen("fine", now=200)
    assert reasons(tracker.expire(now=200)) == {
        "late": "Join timeout",
        "idle": "Idle timeout",
        "late2": "Join timeout",
    }
    assert [address for address, _ in tracker.expire(now=200)] == []
    assert list(tracker.connections) == ["fine"]


def test_the_timeouts_given_are_used_and_named(ex):
    tracker = ex.Tracker(join_timeout=0.5, idle_timeout=2.5)
    tracker.connect("a", now=0)
    tracker.connect("b", now=0)
    tracker.joined("b", "bob", now=0)
    assert tracker.expire(now=3) == [
        ("a", "Join timeout: no join within 0.5 s"),
        ("b", "Idle timeout: nothing received for 2.5 s"),
    ]


def test_a_clock_that_goes_backwards_expires_nothing(tracker):
    tracker.connect("a", now=1000)
    tracker.connect("b", now=1000)
    tracker.joined("b", "bob", now=1000)
    assert tracker.expire(now=0) == []
