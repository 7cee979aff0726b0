"""Exercise 03: recv_all() returns everything the peer sent, once the peer has closed."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.exercises.support import Background, tcp_pair


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex03_recv_all")


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(the socket recv_all reads, the peer that writes to it)."""
    reader, writer = tcp_pair()
    yield reader, writer
    reader.close()
    writer.close()


def test_everything_sent_before_the_close_is_returned(ex, pair):
    reader, writer = pair
    writer.sendall(b"hello, world")
    writer.close()
    assert Background(ex.recv_all, reader).result() == b"hello, world"


def test_a_peer_that_closes_at_once_gives_empty_bytes(ex, pair):
    reader, writer = pair
    writer.close()
    assert Background(ex.recv_all, reader).result() == b""


def test_pieces_sent_over_time_all_arrive_in_order(ex, pair):
    reader, writer = pair
    call = Background(ex.recv_all, reader)
    for piece in (b"one ", b"two ", b"three"):
        writer.sendall(piece)
        time.sleep(0.02)  # recv_all must keep waiting: the peer is still there
        call.check()  # (if it raised, show that)
        assert not call.done, "recv_all returned before the peer closed"
    writer.close()
    assert call.result() == b"one two three"


def test_a_half_close_ends_the_stream_too(ex, pair):
    reader, writer = pair
    writer.sendall(b"that was all")
    writer.shutdown(socket.SHUT_WR)  # "I am done sending", but the socket stays open
    assert Background(ex.recv_all, reader).result() == b"that was all"


def test_megabytes_arrive_complete(ex, pair):
    reader, writer = pair
    data = bytes(range(256)) * 16384  # 4 MiB: many recv calls
    call = Background(ex.recv_all, reader)

    def send() -> None:
        writer.sendall(data)
        writer.close()

    threading.Thread(target=send, daemon=True).start()
    assert call.result() == data
