"""Exercise 02: ask() connects, sends one line, and returns the line that comes back."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest

from tests.exercises.support import Background, close_listener, listening_socket
from tests.helpers import TIMEOUT, free_port


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex02_connect")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = listening_socket()
    sock.settimeout(TIMEOUT)
    yield sock
    close_listener(sock)


def read_line(conn: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def serve_once(
    listener: socket.socket, reply: Callable[[socket.socket, bytes], None]
) -> Background:
    """A one-client server: reads one line, then lets ``reply(conn, line)`` answer.

    Its result is what it saw: (the line, whether the client closed afterwards).
    """

    def serve() -> tuple[bytes, bool]:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            line = read_line(conn)
            reply(conn, line)
            try:
                closed = conn.recv(1) == b""
            except OSError:
                closed = True
            return line, closed

    return Background(serve)


def address(listener: socket.socket) -> tuple[str, int]:
    return listener.getsockname()[:2]


def shout(conn: socket.socket, line: bytes) -> None:
    conn.sendall(line.upper())


def test_the_answer_comes_back_without_its_newline(ex, listener):
    server = serve_once(listener, shout)
    assert ex.ask(*address(listener), "hello") == "HELLO"
    server.result()


def test_the_question_is_sent_as_one_utf8_line(ex, listener):
    server = serve_once(listener, shout)
    ex.ask(*address(listener), "héllo 👋")
    line, _ = server.result()
    assert line == "héllo 👋\n".encode()


def test_an_answer_in_pieces_is_read_whole(ex, listener):
    def slowly(conn: socket.socket, line: bytes) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in "ça va 👋\n".encode():  # characters cut between sends, too
            conn.sendall(bytes([byte]))
            time.sleep(0.002)

    server = serve_once(listener, slowly)
    assert ex.ask(*address(listener), "how are you?") == "ça va 👋"
    server.result()


def test_only_the_first_line_of_the_answer_is_returned(ex, listener):
    server = serve_once(listener, lambda conn, line: conn.sendall(b"one\ntwo\n"))
    assert ex.ask(*address(listener), "count") == "one"
    server.result()


def test_the_connection_is_closed_afterwards(ex, listener):
    server = serve_once(listener, shout)
    ex.ask(*address(listener), "bye")
    _, closed = server.result()
    assert closed, "the server never saw the client close its socket"


def test_a_server_that_hangs_up_without_answering_raises_connection_error(ex, listener):
    def hang_up(conn: socket.socket, line: bytes) -> None:
        conn.sendall(b"no newl")
        conn.shutdown(socket.SHUT_WR)  # the end of the stream, before any newline

    server = serve_once(listener, hang_up)
    call = Background(ex.ask, *address(listener), "anyone?")
    with pytest.raises(ConnectionError):
        call.result()
    server.result()


def test_nobody_listening_raises_connection_refused(ex):
    with pytest.raises(ConnectionRefusedError):
        ex.ask("127.0.0.1", free_port(), "hello?")


def test_a_silent_server_raises_timeout_error(ex, listener):
    server = serve_once(listener, lambda conn, line: time.sleep(0.5))
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        ex.ask(*address(listener), "hello?", timeout=0.2)
    assert time.monotonic() - started < 0.9
    server.result()
