"""Exercise 19: flush() sends what a non-blocking socket takes now, keeps the rest, never waits."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.exercises.support import Background, recv_exactly, reset, tcp_pair

#: Far more than the kernel buffers between two sockets hold.
LOTS = 8 * 1024 * 1024


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex19_nonblocking")


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(a non-blocking sender, a blocking receiver that reads only when told)."""
    sender, receiver = tcp_pair()
    sender.setblocking(False)
    yield sender, receiver
    sender.close()
    receiver.close()


def filled(ex, sender: socket.socket) -> tuple[bytearray, int]:
    """Flush LOTS of bytes at a reader that reads nothing; (what is left, what went)."""
    data = bytes(range(256)) * (LOTS // 256)
    pending = bytearray(data)
    call = Background(ex.flush, sender, pending)
    assert call.finished_within(2), "flush() waited: it must return when the buffer is full"
    return pending, call.result()


def test_a_little_data_is_sent_at_once(ex, pair):
    sender, receiver = pair
    pending = bytearray(b"hello")
    assert ex.flush(sender, pending) == 5
    assert pending == b""
    assert recv_exactly(receiver, 5) == b"hello"


def test_nothing_pending_sends_nothing(ex, pair):
    sender, _ = pair
    assert ex.flush(sender, bytearray()) == 0


def test_a_full_buffer_makes_flush_return_with_the_rest_pending(ex, pair):
    sender, _ = pair
    pending, sent = filled(ex, sender)
    assert 0 < sent < LOTS, "some bytes, but not 8 MB, fit in the kernel's buffers"
    assert len(pending) == LOTS - sent, "pending must keep exactly what was not sent"


def test_flushing_a_full_socket_again_sends_nothing_and_raises_nothing(ex, pair):
    sender, _ = pair
    pending, _ = filled(ex, sender)
    before = len(pending)
    assert ex.flush(sender, pending) == 0
    assert len(pending) == before


def test_what_was_sent_and_what_is_sent_later_arrive_in_order(ex, pair):
    sender, receiver = pair
    data = bytes(range(256)) * (LOTS // 256)
    pending = bytearray(data)
    received = bytearray()
    for _ in range(10_000):
        ex.flush(sender, pending)
        if not pending:
            break
        received += receiver.recv(1 << 20)  # make room, as a reader does over time
    received += recv_exactly(receiver, len(data) - len(received))
    assert received == data


def test_an_error_other_than_blocking_goes_up(ex, pair):
    sender, receiver = pair
    reset(receiver)  # the peer is gone, abruptly
    with pytest.raises(ConnectionError):
        for _ in range(100):  # the reset may take a moment to arrive
            ex.flush(sender, bytearray(b"x" * 65536))
