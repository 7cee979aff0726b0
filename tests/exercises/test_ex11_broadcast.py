"""Exercise 11: Room.broadcast() queues for everyone, never waits, and drops the full."""

from __future__ import annotations

import threading
import time
from types import ModuleType

import pytest

from tests.exercises.support import Background

THREADS = 4
FRAMES_EACH = 200


class ListOutbox:
    """An outbox that records what it was given, and refuses past ``room`` frames."""

    def __init__(self, room: int = 10_000) -> None:
        self.room = room
        self.frames: list[bytes] = []

    def put(self, frame: bytes) -> bool:
        if len(self.frames) >= self.room:
            return False
        self.frames.append(frame)
        return True


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex11_broadcast")


def room_of(ex, **outboxes):
    room = ex.Room()
    for name, outbox in outboxes.items():
        room.add(name, outbox)
    return room


def test_every_member_receives_the_frame(ex):
    alice, bob = ListOutbox(), ListOutbox()
    room_of(ex, alice=alice, bob=bob).broadcast(b"hi\n")
    assert alice.frames == [b"hi\n"]
    assert bob.frames == [b"hi\n"]


def test_the_excluded_member_does_not(ex):
    alice, bob = ListOutbox(), ListOutbox()
    room_of(ex, alice=alice, bob=bob).broadcast(b"bob joined\n", exclude="bob")
    assert alice.frames == [b"bob joined\n"]
    assert bob.frames == []


def test_frames_reach_each_member_in_the_order_sent(ex):
    alice = ListOutbox()
    room = room_of(ex, alice=alice)
    for n in range(5):
        room.broadcast(b"%d\n" % n)
    assert alice.frames == [b"%d\n" % n for n in range(5)]


def test_a_member_whose_outbox_is_full_is_dropped_and_named(ex):
    alice, bob, carol = ListOutbox(), ListOutbox(room=1), ListOutbox()
    room = room_of(ex, alice=alice, bob=bob, carol=carol)
    assert room.broadcast(b"one\n") == []
    assert room.broadcast(b"two\n") == ["bob"]
    assert room.names() == ["alice", "carol"]
    assert carol.frames == [b"one\n", b"two\n"], "the others must still get the frame"
    assert room.broadcast(b"three\n") == []


def test_broadcast_never_waits_for_a_full_queue(ex):
    stuck = ex.QueueOutbox(max_frames=1)  # a real queue.Queue that nobody drains
    alice = ListOutbox()
    room = room_of(ex, stuck=stuck, alice=alice)
    call = Background(lambda: [room.broadcast(b"x\n") for _ in range(3)])
    assert call.finished_within(2), "broadcast waited for a full outbox"
    assert call.result() == [[], ["stuck"], []]
    assert len(alice.frames) == 3


def test_broadcast_waits_while_another_thread_holds_the_lock(ex):
    room = room_of(ex, alice=ListOutbox())
    with room._lock:  # as if another thread were adding a member
        call = Background(room.broadcast, b"hi\n")
        finished = call.finished_within(0.2)
        if finished:
            call.check()
        assert not finished, "broadcast() read the members without holding self._lock"
    assert call.result() == []


class YieldingOutbox(ListOutbox):
    """Lets other threads run inside ``put``, as a real outbox does when it takes its lock."""

    def put(self, frame: bytes) -> bool:
        time.sleep(0)
        return super().put(frame)


def test_every_member_sees_broadcasts_from_many_threads_in_one_order(ex, busy_switching):
    members = {f"user{n}": YieldingOutbox() for n in range(4)}
    room = room_of(ex, **members)
    start = threading.Barrier(THREADS, timeout=5)

    def speak(number: int) -> None:
        start.wait()  # everyone speaks at the same moment
        for i in range(FRAMES_EACH):
            room.broadcast(b"%d-%d\n" % (number, i))

    speakers = [Background(speak, n) for n in range(THREADS)]
    for speaker in speakers:
        speaker.result()
    orders = [outbox.frames for outbox in members.values()]
    assert len(orders[0]) == THREADS * FRAMES_EACH
    assert all(order == orders[0] for order in orders), (
        "members received the broadcasts in different orders: hold the lock for the whole broadcast"
    )


def test_members_joining_during_broadcasts_cause_no_error(ex, busy_switching):
    room = room_of(ex, alice=ListOutbox())
    stop = threading.Event()

    def churn() -> None:
        n = 0
        while not stop.is_set():
            room.add(f"guest{n}", ListOutbox())
            room.remove(f"guest{n - 5}")
            n += 1

    churning = Background(churn)
    try:
        for _ in range(500):
            room.broadcast(b"x\n")
    finally:
        stop.set()
    churning.result()
