"""Exercise 12: Outbox.run_writer sends in batches, outside the lock, and ends the stream."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from tests.exercises.support import Background, recv_exactly, recv_until_eof, wait_until


class RecordingSocket:
    """A real socket that also records the data of every ``sendall`` call."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sent: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.sent.append(bytes(data))
        self.sock.sendall(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex12_client_outbox")


@pytest.fixture
def pair() -> Iterator[tuple[RecordingSocket, socket.socket]]:
    """(the server's end, wrapped to record sends; the client's end)."""
    server_end, client_end = socket.socketpair()
    client_end.settimeout(5)
    yield RecordingSocket(server_end), client_end
    server_end.close()
    client_end.close()


@pytest.fixture
def server_end(pair) -> RecordingSocket:
    return pair[0]


@pytest.fixture
def peer(pair) -> socket.socket:
    return pair[1]


def drained(outbox) -> None:
    """Close the outbox and run its writer to the end, in this thread's stead."""
    outbox.close()
    Background(outbox.run_writer).result()


def test_a_frame_put_is_sent(ex, server_end, peer):
    outbox = ex.Outbox(server_end, max_bytes=100)
    assert outbox.put(b"hello\n") is True
    drained(outbox)
    assert recv_until_eof(peer) == b"hello\n"


def test_frame_that_would_pass_the_limit_is_never_sent(ex, server_end, peer):
    outbox = ex.Outbox(server_end, max_bytes=10)
    assert outbox.put(b"123456") is True
    assert outbox.put(b"12345") is False
    drained(outbox)
    assert recv_until_eof(peer) == b"123456"


def test_frames_that_fill_the_limit_exactly_are_both_sent(ex, server_end, peer):
    outbox = ex.Outbox(server_end, max_bytes=10)
    assert outbox.put(b"123456") is True
    assert outbox.put(b"7890") is True
    drained(outbox)
    assert recv_until_eof(peer) == b"1234567890"


def test_writer_sends_everything_queued_in_one_call(ex, server_end, peer):
    outbox = ex.Outbox(server_end, max_bytes=100)
    for frame in (b"a\n", b"b\n", b"c\n"):
        outbox.put(frame)
    outbox.close()
    Background(outbox.run_writer).result()
    assert server_end.sent == [b"a\nb\nc\n"]


def test_close_sends_what_is_queued_then_ends_the_stream(ex, server_end, peer):
    outbox = ex.Outbox(server_end, max_bytes=100)
    writer = Background(outbox.run_writer)
    outbox.put(b"last\n")
    outbox.close()
    assert recv_until_eof(peer, writer) == b"last\n"
    writer.result()


def test_writer_waits_for_frames_put_later(ex, server_end, peer):
    outbox = ex.Outbox(server_end, max_bytes=100)
    writer = Background(outbox.run_writer)
    for number in range(3):
        outbox.put(b"%d\n" % number)
        assert recv_exactly(peer, 2, writer) == b"%d\n" % number
    assert not writer.done, "the writer returned before close()"
    outbox.close()
    writer.result()


def test_frames_arrive_in_the_order_they_were_put(ex, server_end, peer):
    outbox = ex.Outbox(server_end, max_bytes=100_000)
    writer = Background(outbox.run_writer)
    frames = [b"%d\n" % n for n in range(2000)]
    for frame in frames:
        outbox.put(frame)
    outbox.close()
    assert recv_until_eof(peer, writer) == b"".join(frames)


def test_sent_bytes_no_longer_count_against_the_limit(ex, server_end, peer):
    outbox = ex.Outbox(server_end, max_bytes=10)
    writer = Background(outbox.run_writer)
    assert outbox.put(b"12345678\n")
    recv_exactly(peer, 9, writer)
    wait_until(lambda: outbox.queued == 0, writer)
    assert outbox.put(b"12345678\n") is True
    outbox.close()


def test_put_does_not_wait_while_the_writer_is_sending(ex, server_end, peer):
    outbox = ex.Outbox(server_end, max_bytes=10_000_000)
    writer = Background(outbox.run_writer)
    outbox.put(b"x" * 4_000_000)  # far more than the socket buffers hold; peer reads nothing
    wait_until(lambda: server_end.sent, writer)  # the writer is now stuck in sendall
    put = Background(outbox.put, b"hello\n")
    assert put.finished_within(2), "put() waited for the writer's sendall: send outside the lock"
    assert put.result() is True
    peer.close()  # sendall fails now, and the writer ends


def test_after_close_the_writer_ends_and_nothing_more_is_sent(ex, server_end, peer):
    outbox = ex.Outbox(server_end, max_bytes=100)
    drained(outbox)
    assert outbox.put(b"too late\n") is False
    assert recv_until_eof(peer) == b""


def test_writer_returns_quietly_when_the_peer_is_gone(ex, server_end, peer):
    outbox = ex.Outbox(server_end, max_bytes=1_000_000)
    peer.close()
    outbox.put(b"x" * 500_000)  # more than the socket buffers hold: the send must fail
    outbox.close()
    assert Background(outbox.run_writer).result() is None
