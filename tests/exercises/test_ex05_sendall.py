"""Exercise 05: send_all() loops over partial sends until every byte is gone."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.exercises.support import Background, recv_exactly, tcp_pair


class StingySocket:
    """A fake socket whose ``send`` takes at most ``most`` bytes a call, like a full buffer."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.received = bytearray()
        self.calls: list[int] = []

    def send(self, data) -> int:
        taken = bytes(data[: self.most])
        self.received += taken
        self.calls.append(len(taken))
        return len(taken)

    def sendall(self, data) -> None:
        raise AssertionError("send_all must be written with send(), not sendall()")


class BrokenSocket(StingySocket):
    """Takes a few bytes, then the peer is gone."""

    def send(self, data) -> int:
        if self.calls:
            raise BrokenPipeError(32, "Broken pipe")
        return super().send(data)


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex05_sendall")


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    sender, receiver = tcp_pair()
    yield sender, receiver
    sender.close()
    receiver.close()


def test_a_socket_that_takes_everything_needs_one_call(ex):
    sock = StingySocket(most=1000)
    assert ex.send_all(sock, b"hello") == 1
    assert sock.received == b"hello"


def test_partial_sends_are_continued_until_every_byte_is_gone(ex):
    sock = StingySocket(most=3)
    assert ex.send_all(sock, b"abcdefghij") == 4  # 3 + 3 + 3 + 1
    assert sock.received == b"abcdefghij"
    assert sock.calls == [3, 3, 3, 1]


def test_each_call_gets_the_rest_in_order(ex):
    data = bytes(range(256)) * 40
    sock = StingySocket(most=7)
    ex.send_all(sock, data)
    assert sock.received == data


def test_nothing_to_send_needs_no_call(ex):
    sock = StingySocket(most=3)
    assert ex.send_all(sock, b"") == 0
    assert sock.calls == []


def test_an_error_from_send_goes_up_to_the_caller(ex):
    with pytest.raises(BrokenPipeError):
        ex.send_all(BrokenSocket(most=2), b"abcdef")


def test_megabytes_arrive_complete_over_a_real_socket(ex, pair):
    sender, receiver = pair
    data = bytes(range(256)) * 16384  # 4 MiB: far more than one send takes
    reading = Background(recv_exactly, receiver, len(data))
    calls = ex.send_all(sender, data)
    assert reading.result() == data
    assert calls >= 1


def test_a_slow_reader_makes_send_return_early_and_the_loop_goes_on(ex, pair):
    sender, receiver = pair
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    data = b"x" * 2_000_000
    call = Background(ex.send_all, sender, data)
    received = bytearray()
    # Read slowly, so that the kernel's buffers fill and send() takes less each time.
    while len(received) < len(data):
        chunk = recv_exactly(receiver, min(65536, len(data) - len(received)), call)
        if not chunk:
            break
        received += chunk
        time.sleep(0.0005)
    assert len(received) == len(data)
    assert call.result() > 1, "one send() cannot have taken 2 MB while the reader was slow"
