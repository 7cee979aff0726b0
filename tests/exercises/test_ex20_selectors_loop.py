"""Exercise 20: echo_loop() serves many clients at once from one thread, and stops when told."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.exercises.support import (
    Background,
    close_listener,
    connect,
    listening_socket,
    recv_exactly,
    recv_until_eof,
    reset,
)

CLIENTS = 20


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex20_selectors_loop")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = listening_socket()
    sock.listen(64)  # room for every client to wait until the loop accepts it
    yield sock
    close_listener(sock)


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def clients() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def client(listener, clients) -> socket.socket:
    sock = connect(listener)
    clients.append(sock)
    return sock


def test_one_client_gets_its_bytes_back(ex, listener, stop, clients):
    loop = Background(ex.echo_loop, listener, stop)
    sock = client(listener, clients)
    sock.sendall(b"hello")
    assert recv_exactly(sock, 5, loop) == b"hello"


def test_many_clients_are_served_at_once(ex, listener, stop, clients):
    loop = Background(ex.echo_loop, listener, stop)
    socks = [client(listener, clients) for _ in range(CLIENTS)]
    for round_ in range(3):
        for number, sock in enumerate(socks):  # everyone talks before anyone reads
            sock.sendall(b"%02d:%d;" % (number, round_))
        for number, sock in enumerate(socks):
            assert recv_exactly(sock, 5, loop) == b"%02d:%d;" % (number, round_)


def test_the_loop_starts_no_threads(ex, listener, stop, clients):
    loop = Background(ex.echo_loop, listener, stop)
    before = set(threading.enumerate())
    socks = [client(listener, clients) for _ in range(5)]
    for sock in socks:
        sock.sendall(b"hi")
    for sock in socks:
        recv_exactly(sock, 2, loop)
    started = set(threading.enumerate()) - before
    assert not started, f"echo_loop started threads {started}: use one thread"


def test_a_client_that_reads_slowly_does_not_hold_up_the_others(ex, listener, stop, clients):
    loop = Background(ex.echo_loop, listener, stop)
    slow = client(listener, clients)
    data = bytes(range(256)) * 32768  # 8 MiB: far more than the socket buffers hold
    sending = threading.Thread(target=slow.sendall, args=(data,), daemon=True)
    sending.start()  # and slow reads nothing for now: its echo backs up
    time.sleep(0.3)
    quick = client(listener, clients)
    quick.sendall(b"ping")
    assert recv_exactly(quick, 4, loop, timeout=2) == b"ping", "one slow client stalled the loop"
    assert recv_exactly(slow, len(data), loop) == data  # and slow gets everything, in order
    sending.join(5)


def test_clients_that_leave_are_forgotten_and_counted(ex, listener, stop, clients):
    loop = Background(ex.echo_loop, listener, stop)
    client(listener, clients).close()
    rude = client(listener, clients)
    rude.sendall(b"x")
    recv_exactly(rude, 1, loop)
    rude.sendall(b"unread")
    reset(rude)
    stayed = client(listener, clients)
    stayed.sendall(b"still here")
    assert recv_exactly(stayed, 10, loop) == b"still here"
    stop.set()
    assert loop.result() == 3


def test_stop_ends_the_loop_and_closes_the_clients(ex, listener, stop, clients):
    loop = Background(ex.echo_loop, listener, stop)
    sock = client(listener, clients)
    sock.sendall(b"hi")
    recv_exactly(sock, 2, loop)
    stop.set()
    started = time.monotonic()
    assert loop.result(timeout=2) == 1
    assert time.monotonic() - started < 1, "the loop took too long to notice stop"
    assert recv_until_eof(sock) == b""
    assert listener.fileno() != -1, "echo_loop closed the listener it was given"
