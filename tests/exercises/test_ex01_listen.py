"""Exercise 01: listen() returns a bound, listening TCP socket that restarts without trouble."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest

from tests.helpers import TIMEOUT, free_port


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex01_listen")


@pytest.fixture
def listen(ex) -> Iterator[Callable[..., socket.socket]]:
    """``ex.listen``, with every socket it returns closed after the test."""
    opened: list[socket.socket] = []

    def call(*args, **kwargs) -> socket.socket:
        sock = ex.listen(*args, **kwargs)
        opened.append(sock)
        return sock

    yield call
    for sock in opened:
        sock.close()


def connect(sock: socket.socket) -> socket.socket:
    return socket.create_connection(sock.getsockname()[:2], timeout=TIMEOUT)


def test_clients_can_connect_and_be_accepted(listen):
    server = listen()
    server.settimeout(TIMEOUT)
    with connect(server) as client:
        conn, address = server.accept()
        with conn:
            client.sendall(b"hi")
            assert conn.recv(2) == b"hi"
            assert address == client.getsockname()


def test_port_zero_gets_a_free_port_from_the_kernel(listen):
    host, port = listen("127.0.0.1", 0).getsockname()[:2]
    assert host == "127.0.0.1"
    assert port > 0


def test_the_port_asked_for_is_used(listen):
    port = free_port()
    assert listen("127.0.0.1", port).getsockname()[1] == port


def test_socket_is_ipv4_tcp(listen):
    sock = listen()
    assert sock.family == socket.AF_INET
    assert sock.type == socket.SOCK_STREAM


def test_clients_wait_in_the_backlog_until_accepted(listen):
    server = listen()
    server.settimeout(TIMEOUT)
    clients = [connect(server) for _ in range(3)]  # nobody has called accept yet
    try:
        for _ in clients:
            server.accept()[0].close()
    finally:
        for client in clients:
            client.close()


def test_port_in_use_raises_os_error(listen):
    taken = listen().getsockname()[1]
    with pytest.raises(OSError):
        listen("127.0.0.1", taken)


def test_socket_is_closed_when_bind_fails(listen, monkeypatch):
    taken = listen().getsockname()[1]
    made: list[socket.socket] = []

    class Recorded(socket.socket):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(socket, "socket", Recorded)
    with pytest.raises(OSError):
        listen("127.0.0.1", taken)
    assert made, "listen() made no socket"
    assert all(sock.fileno() == -1 for sock in made), "the socket that failed to bind is open"


@pytest.mark.skipif(os.name == "nt", reason="SO_REUSEADDR means something else on Windows")
def test_address_reuse_is_switched_on(listen):
    assert listen().getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0


@pytest.mark.skipif(os.name == "nt", reason="SO_REUSEADDR means something else on Windows")
def test_server_restarts_at_once_while_old_connections_linger(listen):
    first = listen()
    first.settimeout(TIMEOUT)
    port = first.getsockname()[1]
    client = connect(first)
    conn, _ = first.accept()
    conn.close()  # the server closes first: its side of the connection waits in TIME_WAIT
    client.close()
    first.close()
    # Without SO_REUSEADDR this bind fails with "Address already in use".
    assert listen("127.0.0.1", port).getsockname()[1] == port
