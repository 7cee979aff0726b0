"""Exercise 14: LineServer.stop() says goodbye, closes everything and keeps its deadline."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.exercises.support import recv_exactly, recv_until_eof, wait_until
from tests.helpers import TIMEOUT


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex14_graceful_shutdown")


@pytest.fixture
def clients() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def started(ex, server_class=None):
    server = (server_class or ex.LineServer)()
    return server.start()


def connect(server, clients, recv_buffer: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if recv_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, recv_buffer)
    sock.settimeout(TIMEOUT)
    sock.connect(server.address)
    clients.append(sock)
    return sock


def talking(server, clients) -> socket.socket:
    """A client the server has answered once (so its thread surely runs)."""
    sock = connect(server, clients)
    sock.sendall(b"hello\n")
    assert recv_exactly(sock, 10) == b"ok: hello\n"
    return sock


def stop_in_time(server, timeout: float) -> list[threading.Thread]:
    begun = time.monotonic()
    running = server.stop(timeout)
    took = time.monotonic() - begun
    assert took < timeout + 0.5, f"stop({timeout}) took {took:.1f} s"
    return running


def test_every_client_is_told_then_disconnected(ex, clients):
    server = started(ex)
    alice, bob = talking(server, clients), talking(server, clients)
    assert stop_in_time(server, 2) == []
    for sock in (alice, bob):
        assert recv_until_eof(sock) == ex.GOODBYE


def test_no_new_connections_after_stop(ex, clients):
    server = started(ex)
    address = server.address
    stop_in_time(server, 2)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=TIMEOUT).close()


def test_all_threads_have_ended(ex, clients):
    server = started(ex)
    for _ in range(5):
        talking(server, clients)
    threads = [*server._connections.values(), server._accepter]
    assert stop_in_time(server, 2) == []
    assert not any(thread.is_alive() for thread in threads)


def test_a_client_that_already_left_is_no_trouble(ex, clients):
    server = started(ex)
    talking(server, clients).close()
    stayed = talking(server, clients)
    wait_until(lambda: len(server._connections) == 1)
    assert stop_in_time(server, 2) == []
    assert recv_until_eof(stayed) == ex.GOODBYE


def test_a_stuck_handler_does_not_stop_the_stop(ex, clients):
    stuck_now, release = threading.Event(), threading.Event()

    class Stuck(ex.LineServer):
        def answer(self, line: bytes) -> bytes:
            if line == b"get stuck":
                stuck_now.set()
                release.wait(10)  # not a socket: shutdown cannot wake this
            return super().answer(line)

    server = started(ex, Stuck)
    normal = talking(server, clients)
    stuck = connect(server, clients)
    stuck.sendall(b"get stuck\n")
    assert stuck_now.wait(TIMEOUT), "the handler never got the line"
    try:
        running = stop_in_time(server, 0.5)
        assert len(running) == 1, "stop() should return the one thread still running"
        assert recv_until_eof(normal) == ex.GOODBYE
    finally:
        release.set()


def test_a_client_that_never_reads_does_not_stop_the_stop(ex, clients):
    server = started(ex)
    deaf = connect(server, clients, recv_buffer=4096)
    deaf.settimeout(0.05)
    try:
        for _ in range(20_000):  # the answers fill the buffers between us
            deaf.sendall(b"x" * 1000 + b"\n")
    except TimeoutError:
        pass  # full: the server's thread is stuck sending to us
    other = talking(server, clients)
    assert stop_in_time(server, 1) == []
    assert recv_until_eof(other) == ex.GOODBYE


def test_stop_with_no_clients_is_quick(ex):
    server = started(ex)
    assert stop_in_time(server, 0.5) == []
