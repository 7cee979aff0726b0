"""Small tools the tests share: a raw-socket peer and bounded waiting.

``RawPeer`` deliberately does not use ``chat.client``: tests that speak the
protocol byte by byte prove what is on the wire, and can misbehave in ways a
well-written client never would.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from chat.core import Send

#: Every wait in the tests ends by this many seconds at the latest.
TIMEOUT = 5.0

#: Every feature of PROTOCOL.md, as a client that wants them all declares them
#: (written out, not taken from chat.protocol: the tests pin the protocol down).
ALL_FEATURES = ["rooms", "private", "history", "nick"]


def sent_to(actions: list[Any], conn: Any) -> list[dict[str, Any]]:
    """The frames the core's actions send to ``conn``, in order, decoded."""
    return [
        json.loads(line)
        for action in actions
        if isinstance(action, Send) and conn in action.to
        for line in action.data.splitlines()
    ]


class RawPeer:
    """A TCP connection that sends raw bytes and reads JSON lines, each wait bounded."""

    def __init__(
        self,
        address: tuple[str, int],
        timeout: float = TIMEOUT,
        *,
        recv_buffer: int | None = None,
    ) -> None:
        """Connect to ``address``.  ``recv_buffer`` shrinks the kernel's receive
        buffer (set before connecting, so the TCP window starts small): a peer
        that never reads then fills the server's queue for it sooner."""
        if recv_buffer is None:
            self.sock = socket.create_connection(address, timeout=timeout)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, recv_buffer)
            self.sock.settimeout(timeout)
            self.sock.connect(address)
        self.timeout = timeout
        self._buffer = b""

    def send(self, data: bytes | dict[str, Any]) -> None:
        if isinstance(data, dict):
            data = json.dumps(data).encode() + b"\n"
        self.sock.sendall(data)

    def recv_frame(self, timeout: float | None = None) -> dict[str, Any]:
        """The next frame; raises TimeoutError if none arrives in time, EOFError at EOF."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no frame arrived in time")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def recv_until(self, kind: str, timeout: float | None = None) -> dict[str, Any]:
        """Skip frames until one of type ``kind`` arrives."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            frame = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if frame.get("type") == kind:
                return frame

    def join(self, username: str) -> dict[str, Any]:
        self.send({"type": "join", "username": username})
        return self.recv_frame()

    def closed_by_server(self, timeout: float | None = None) -> bool:
        """True once the server has closed this connection (frames before EOF are skipped)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while time.monotonic() < deadline:
                self.recv_frame(max(0.01, deadline - time.monotonic()))
        except (EOFError, ConnectionResetError):
            return True
        except TimeoutError:
            return False
        return False

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FakeServer:
    """A listening socket on 127.0.0.1 that the test answers by hand."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(TIMEOUT)
        self.address = self.listener.getsockname()[:2]
        self.conn: socket.socket | None = None
        self._buffer = b""

    def accept(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn, _ = self.listener.accept()
        self._buffer = b""
        self.conn.settimeout(TIMEOUT)

    def recv_frame(self) -> dict:
        assert self.conn is not None
        while b"\n" not in self._buffer:
            chunk = self.conn.recv(65536)
            if not chunk:
                raise EOFError("client closed the connection")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def send(self, data: bytes | dict) -> None:
        assert self.conn is not None
        if isinstance(data, dict):
            data = json.dumps(data).encode() + b"\n"
        self.conn.sendall(data)

    def welcome(self, name: str) -> None:
        """Accept the next client and welcome it, like a real server would."""
        self.accept()
        join = self.recv_frame()
        assert (join["type"], join["username"]) == ("join", name), join
        self.send({"type": "welcome", "message": f"Welcome, {name}", "users": [name]})

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


def wait_for(predicate: Callable[[], Any], timeout: float = TIMEOUT, interval: float = 0.01) -> Any:
    """Poll ``predicate`` until it returns something true; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def free_port() -> int:
    """A port that was free a moment ago, for tests that need a fixed port number."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def read_until(fd: int, marker: bytes, timeout: float = TIMEOUT, seen: bytes = b"") -> bytes:
    """Read from a pipe or pseudo-terminal until ``marker`` appears; return all read.

    Every read waits in ``select`` for at most what is left of ``timeout``, so a
    process that prints nothing more fails the test instead of hanging it.
    ``seen`` is output read earlier, searched too.
    """
    deadline = time.monotonic() + timeout
    output = seen
    while marker not in output:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{marker!r} not seen within {timeout} s; got {output!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # a pseudo-terminal whose other side closed
                chunk = b""
            if not chunk:
                raise AssertionError(f"output ended before {marker!r}; got {output!r}")
            output += chunk
    return output


@dataclass
class ServerProgram:
    """A running ``python -m chat.server``: its port, and what it has logged so far."""

    port: int
    lines: list[str]
    process: subprocess.Popen

    def log(self) -> list[str]:
        return list(self.lines)

    def kill(self) -> None:
        """End it at once, as ``kill -9`` does: no goodbye, nothing flushed."""
        self.process.kill()
        self.process.wait(TIMEOUT)


@contextlib.contextmanager
def server_program(*flags: str, **popen: Any) -> Iterator[ServerProgram]:
    """Run ``python -m chat.server --host 127.0.0.1 --port 0 FLAGS``; yield it, running.

    Its log (standard error) is read by a thread as it comes, so the program
    never blocks on a full pipe, and is there to look at: ``program.log()``.
    Every wait is bounded: the start line must appear within 3 x TIMEOUT (a
    loaded CI machine starts Python slowly), and at the end the program gets
    TIMEOUT to stop after SIGTERM before it is killed.  ``popen`` goes to
    :class:`subprocess.Popen` (``preexec_fn=...``, say).
    """
    command = [sys.executable, "-m", "chat.server", "--host", "127.0.0.1", "--port", "0", *flags]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **popen
    )
    lines: list[str] = []
    assert process.stderr is not None
    reader = threading.Thread(
        target=lambda: lines.extend(line.rstrip("\n") for line in process.stderr), daemon=True
    )
    reader.start()
    try:
        started = wait_for(
            lambda: (
                any("Waiting for connections" in line for line in lines)
                and next(m for line in lines if (m := re.search(r"started on \S+:(\d+)", line)))
            ),
            timeout=3 * TIMEOUT,
        )
        yield ServerProgram(int(started.group(1)), lines, process)
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(TIMEOUT)
            raise AssertionError("the server program did not stop on SIGTERM") from None
        finally:
            reader.join(TIMEOUT)
            process.stderr.close()
