"""Exercise 09: accept_and_spawn() gives every client its own thread and stops when told."""

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
    wait_until,
)

#: How long the loop may take to notice ``stop`` (its poll interval, with room).
NOTICE = 1.0


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex09_accept_and_spawn")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = listening_socket()
    yield sock
    close_listener(sock)


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # whatever happened, the loop ends


class Recorder:
    """A handler that records who ran it and echoes one line, then closes."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.addresses: list[object] = []
        self.release = threading.Event()  # handlers for "slow" clients wait for this

    def __call__(self, conn: socket.socket, address: object) -> None:
        self.threads.append(threading.current_thread())
        self.addresses.append(address)
        with conn:
            conn.settimeout(5)
            data = conn.recv(100)
            if data == b"slow\n":
                self.release.wait(5)
            conn.sendall(data)


def start(ex, listener, handler, stop) -> Background:
    return Background(ex.accept_and_spawn, listener, handler, stop)


def test_a_client_is_handled_with_its_connection_and_address(ex, listener, stop):
    handler = Recorder()
    loop = start(ex, listener, handler, stop)
    with connect(listener) as client:
        client.sendall(b"hello\n")
        assert recv_exactly(client, 6, loop) == b"hello\n"
        assert handler.addresses == [client.getsockname()]


def test_each_client_gets_a_thread_of_its_own(ex, listener, stop):
    handler = Recorder()
    loop = start(ex, listener, handler, stop)
    for word in (b"one\n", b"two\n", b"three\n"):
        with connect(listener) as client:
            client.sendall(word)
            recv_exactly(client, len(word), loop)
    threads = handler.threads
    assert len({id(t) for t in threads}) == 3, "the clients shared a thread"
    assert threading.main_thread() not in threads
    assert all(t.daemon for t in threads), "handler threads must be daemon threads"


def test_a_slow_client_does_not_hold_up_the_next(ex, listener, stop):
    handler = Recorder()
    loop = start(ex, listener, handler, stop)
    with connect(listener) as slow, connect(listener) as quick:
        slow.sendall(b"slow\n")  # its handler now waits
        quick.sendall(b"quick\n")
        assert recv_exactly(quick, 6, loop, timeout=2) == b"quick\n"
        handler.release.set()
        assert recv_exactly(slow, 5, loop) == b"slow\n"


def test_the_loop_returns_its_threads_soon_after_stop_is_set(ex, listener, stop):
    handler = Recorder()
    loop = start(ex, listener, handler, stop)
    with connect(listener) as client:
        client.sendall(b"hi\n")
        recv_exactly(client, 3, loop)
    wait_until(lambda: handler.threads, loop)
    stop.set()
    started = time.monotonic()
    threads = loop.result(timeout=NOTICE + 1)
    assert time.monotonic() - started < NOTICE, "the loop took too long to notice stop"
    assert threads == handler.threads


def test_stop_is_noticed_while_nobody_connects(ex, listener, stop):
    loop = start(ex, listener, Recorder(), stop)
    time.sleep(0.2)
    loop.check()
    stop.set()
    assert loop.result(timeout=NOTICE + 1) == []


def test_the_listener_is_left_open(ex, listener, stop):
    loop = start(ex, listener, Recorder(), stop)
    time.sleep(0.1)
    stop.set()
    loop.result(timeout=NOTICE + 1)
    assert listener.fileno() != -1, "accept_and_spawn closed the listener it was given"
