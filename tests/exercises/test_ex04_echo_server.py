"""Exercise 04: serve_echo echoes every byte back, client after client, over real sockets."""

from __future__ import annotations

import socket
import threading
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


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex04_echo_server")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = listening_socket()
    yield sock
    close_listener(sock)


def echo_server(ex: ModuleType, listener: socket.socket, clients: int = 1) -> Background:
    return Background(ex.serve_echo, listener, clients)


def test_bytes_sent_come_back(ex, listener):
    server = echo_server(ex, listener)
    with connect(listener) as client:
        client.sendall(b"hello")
        assert recv_exactly(client, 5, server) == b"hello"


def test_several_messages_come_back_in_order(ex, listener):
    server = echo_server(ex, listener)
    with connect(listener) as client:
        for word in (b"one ", b"two ", b"three"):
            client.sendall(word)
            assert recv_exactly(client, len(word), server) == word


def test_server_closes_the_connection_after_the_client_closes_its_side(ex, listener):
    server = echo_server(ex, listener)
    with connect(listener) as client:
        client.sendall(b"last words")
        client.shutdown(socket.SHUT_WR)  # recv on the server now returns b"" after the data
        assert recv_until_eof(client, server) == b"last words"


def test_serve_echo_returns_the_number_of_bytes_echoed(ex, listener):
    server = echo_server(ex, listener)
    with connect(listener) as client:
        client.sendall(b"12345")
        recv_exactly(client, 5, server)
    assert server.result() == 5


def test_a_megabyte_comes_back_complete_and_in_order(ex, listener):
    data = bytes(range(256)) * 4096  # 1 MiB: far more than one recv or send moves
    server = echo_server(ex, listener)
    with connect(listener) as client:
        # Send from another thread while this one reads: the echo fills the
        # socket buffers long before a single-threaded sendall would finish.
        sender = threading.Thread(target=client.sendall, args=(data,), daemon=True)
        sender.start()
        assert recv_exactly(client, len(data), server) == data
        sender.join(5)


def test_clients_are_served_one_after_another(ex, listener):
    server = echo_server(ex, listener, 2)
    for word in (b"first", b"second"):
        with connect(listener) as client:
            client.sendall(word)
            assert recv_exactly(client, len(word), server) == word
    assert server.result() == len(b"firstsecond")


def test_client_that_leaves_without_sending_is_handled(ex, listener):
    server = echo_server(ex, listener, 2)
    connect(listener).close()
    with connect(listener) as client:
        client.sendall(b"still here")
        assert recv_exactly(client, 10, server) == b"still here"
    assert server.result() == 10


def test_client_that_resets_the_connection_does_not_stop_the_server(ex, listener):
    server = echo_server(ex, listener, 2)
    rude = connect(listener)
    rude.sendall(b"bye")
    recv_exactly(rude, 3, server)
    rude.sendall(b"unread")  # pending data makes the reset certain to hurt
    reset(rude)
    with connect(listener) as client:
        client.sendall(b"hello")
        assert recv_exactly(client, 5, server) == b"hello"
    server.result()


def test_listening_socket_is_left_open_for_its_owner(ex, listener):
    server = echo_server(ex, listener)
    connect(listener).close()
    server.result()
    assert listener.fileno() != -1, "serve_echo closed the listening socket"
