"""Tools the exercise tests share: code in a background thread, bounded reads, socket pairs.

Every wait ends by a deadline, and a wait on a socket also watches the thread
that should answer: if that thread died with an exception (an unfinished
exercise raises ``NotImplementedError`` at once), the test fails with that
exception straight away instead of waiting out its timeout.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from tests.helpers import TIMEOUT

#: How long one blocking call may wait before we look at the watched thread again.
SLICE = 0.02


class Background:
    """Runs ``function(*args)`` in a daemon thread and keeps its result or exception."""

    def __init__(self, function: Callable[..., Any], *args: Any) -> None:
        self.name = getattr(function, "__name__", "function")
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(function, args), daemon=True)
        self._thread.start()

    def _run(self, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            self._value = function(*args)
        except BaseException as exc:
            self._error = exc

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def finished_within(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; True if the function has returned or raised."""
        self._thread.join(timeout)
        return self.done

    def check(self) -> None:
        """Re-raise the thread's exception here, if it ended with one."""
        if self.done and self._error is not None:
            raise self._error

    def result(self, timeout: float = TIMEOUT) -> Any:
        """Wait for the function to return; its value, or its exception raised here."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"{self.name}() did not return within {timeout:g} s")
        self.check()
        return self._value


def _recv(sock: socket.socket, watch: Background | None, deadline: float, what: str) -> bytes:
    """One ``recv``, in short slices so that ``watch`` failing is noticed at once."""
    while True:
        if watch is not None:
            watch.check()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        sock.settimeout(SLICE)
        try:
            return sock.recv(65536)
        except TimeoutError:
            continue


def recv_exactly(
    sock: socket.socket, size: int, watch: Background | None = None, timeout: float = TIMEOUT
) -> bytes:
    """Read exactly ``size`` bytes (fewer only if the stream ends first)."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while len(data) < size:
        chunk = _recv(sock, watch, deadline, f"{size} bytes (got {len(data)})")
        if not chunk:
            break
        data += chunk
    return bytes(data)


def recv_until_eof(
    sock: socket.socket, watch: Background | None = None, timeout: float = TIMEOUT
) -> bytes:
    """Read until the peer ends the stream; everything it sent."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while chunk := _recv(sock, watch, deadline, "the end of the stream (no close?)"):
        data += chunk
    return bytes(data)


def wait_until(
    predicate: Callable[[], Any], watch: Background | None = None, timeout: float = TIMEOUT
) -> None:
    """Poll ``predicate`` until it is true; fail at once if ``watch`` died, or after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if watch is not None:
            watch.check()
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout:g} s")
        time.sleep(SLICE / 2)


def listening_socket() -> socket.socket:
    """A TCP socket listening on 127.0.0.1, on a free port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    return sock


def connect(listener: socket.socket) -> socket.socket:
    return socket.create_connection(listener.getsockname()[:2], timeout=TIMEOUT)


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """Two connected TCP sockets over 127.0.0.1 (unlike socketpair, they can be reset)."""
    with listening_socket() as listener:
        client = connect(listener)
        server, _ = listener.accept()
    server.settimeout(TIMEOUT)
    return client, server


def reset(sock: socket.socket) -> None:
    """Close abruptly: linger 0 makes the kernel send a reset (RST) instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def close_listener(sock: socket.socket) -> None:
    """Close a listening socket; shutdown first wakes a thread blocked in accept (Linux)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
