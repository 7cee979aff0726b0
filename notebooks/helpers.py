"""Three small tools the notebooks share.  They are not part of the chat.

* :class:`LogBook` collects what the chat server logs, so that a cell can show
  it when *it* wants.  A server runs in background threads; if those threads
  printed, their lines would land in whichever cell happens to be running.
* :func:`wait_until` waits for something to become true, but never forever.
* :class:`RawClient` speaks the chat protocol over a plain socket, one frame at
  a time, each wait bounded -- the loop notebook 03 writes by hand, kept here
  so later notebooks need not repeat it.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from chat import protocol
from chat.server import LOG_FORMAT

__all__ = ["LogBook", "RawClient", "wait_until"]

#: No wait in the notebooks lasts longer than this many seconds.
TIMEOUT = 5.0


class LogBook(logging.Handler):
    """Keeps the chat's log lines until a cell asks for them with :meth:`show`.

    ``LogBook()`` attaches itself to the ``chat`` logger (``chat.server``,
    ``chat.client`` and friends log below it) at level INFO, replacing any
    LogBook from an earlier run of the same cell.
    """

    def __init__(self, logger: str = "chat", level: int = logging.INFO) -> None:
        super().__init__(level)
        self.setFormatter(logging.Formatter(LOG_FORMAT))
        self.lines: list[str] = []
        self._shown = 0
        target = logging.getLogger(logger)
        for old in [h for h in target.handlers if isinstance(h, LogBook)]:
            target.removeHandler(old)
        target.addHandler(self)
        target.setLevel(level)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))  # emit runs under the handler's lock

    def show(self, *words: str) -> None:
        """Print the lines logged since the last call; with ``words``, only lines with one."""
        self.acquire()
        try:
            new, self._shown = self.lines[self._shown :], len(self.lines)
        finally:
            self.release()
        if words:
            new = [line for line in new if any(word in line for word in words)]
        print("\n".join(new) if new else "(nothing new in the log)")

    def skip(self) -> None:
        """Forget the lines logged so far (the next :meth:`show` starts after them)."""
        self.acquire()
        try:
            self._shown = len(self.lines)
        finally:
            self.release()


def wait_until(
    predicate: Callable[[], Any], timeout: float = TIMEOUT, interval: float = 0.01
) -> None:
    """Call ``predicate`` until it returns something true.

    Raises ``TimeoutError`` after ``timeout`` seconds: a notebook cell must
    never hang.
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"still not true after {timeout} s")
        time.sleep(interval)


class RawClient:
    """A chat connection with nothing hidden: you send frames, you read frames.

    ``send`` takes a message dictionary (encoded with :func:`chat.protocol.encode`)
    or raw bytes, to misbehave on purpose.  ``recv`` returns the next message,
    or ``None`` once the server has closed the connection.
    """

    def __init__(self, address: tuple[str, int], timeout: float = TIMEOUT) -> None:
        self.sock = socket.create_connection(address, timeout=timeout)
        self.timeout = timeout
        self.decoder = protocol.FrameDecoder(protocol.MAX_SERVER_FRAME_BYTES)

    def send(self, message: dict[str, Any] | bytes) -> None:
        data = message if isinstance(message, bytes) else protocol.encode(message)
        self.sock.sendall(data)

    def recv(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next message; ``None`` if the server closed; TimeoutError if none came."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while (message := self.decoder.next_frame()) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no message arrived in time")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not data:
                return None
            self.decoder.feed(data)
        return message

    def recv_all(self, timeout: float = 0.5) -> list[dict[str, Any]]:
        """Every message that arrives until the connection closes or ``timeout`` passes."""
        messages = []
        try:
            while (message := self.recv(timeout)) is not None:
                messages.append(message)
        except TimeoutError:
            pass
        return messages

    def join(self, username: str) -> dict[str, Any] | None:
        """Send a join and return the answer (a welcome, or an error)."""
        self.send(protocol.join(username))
        return self.recv()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
