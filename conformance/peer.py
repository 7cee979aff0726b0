"""One connection to the server under test: raw frames out, every frame in, every wait bounded.

A :class:`Peer` is deliberately not a chat client.  It sends exactly the bytes
a stage asks for (a frame cut in two, two frames in one ``send``, bytes that
are not UTF-8), and a reader thread of its own records every frame the server
sends, in order, so that a stage can ask afterwards: did alice receive this
message?  In which order did she receive those?  The reader decodes the
server's frames strictly (UTF-8, JSON object, a ``type`` string) and records
anything else as a violation, which fails the stage.

Every wait ends: sockets have a timeout, waits for a frame have a deadline,
and :meth:`Peer.close` shuts the socket down, which wakes the reader thread.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

#: Bytes asked of each ``recv`` by a reader thread.
RECV_BYTES = 65536

#: Frames longer than this from the server are a violation (a welcome listing
#: thousands of users fits easily).
MAX_SERVER_FRAME = 4 * 1024 * 1024

Frame = dict[str, Any]


class StageFailure(Exception):
    """A stage failed; ``str(exc)`` is the one-line reason shown to the user.

    ``hint=False`` for failures that say nothing about the step's usual
    mistake (the server cannot be reached at all).
    """

    def __init__(self, reason: str, *, hint: bool = True) -> None:
        super().__init__(reason)
        self.hint = hint


def encode(message: Frame) -> bytes:
    """One v1 frame: compact JSON, UTF-8 (not ``\\u`` escapes), a newline."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def describe(frame: Frame, limit: int = 90) -> str:
    """A frame as a short string for reasons and the verbose log."""
    text = json.dumps(frame, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 5] + " ...}"


def connect(address: tuple[str, int], timeout: float, recv_buffer: int | None) -> socket.socket:
    """A TCP connection; ``recv_buffer`` shrinks the receive buffer before connecting."""
    if recv_buffer is None:
        return socket.create_connection(address, timeout=timeout)
    error: OSError | None = None
    for family, kind, proto, _, where in socket.getaddrinfo(*address, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            # Set before connect: the TCP window is agreed during the handshake.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, recv_buffer)
            sock.settimeout(timeout)
            sock.connect(where)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error or OSError(f"cannot resolve {address[0]}")


class Peer:
    """A connection that sends raw bytes and records every frame it receives.

    ``read=False`` makes a peer that never reads: the kernel's buffers for it
    fill up, as they do for a frozen client.
    """

    def __init__(
        self,
        address: tuple[str, int],
        label: str,
        timeout: float,
        *,
        read: bool = True,
        recv_buffer: int | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.label = label
        self.timeout = timeout
        self._log = log
        try:
            self.sock = connect(address, timeout, recv_buffer)
        except OSError as exc:
            raise StageFailure(
                f"could not connect to {address[0]}:{address[1]}: {exc.strerror or exc}",
                hint=False,
            ) from None
        # Small sends must leave at once, one segment each, so that the
        # server really sees a frame cut where the stage cut it.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.frames: list[Frame] = []  # every frame received, in order
        self.violations: list[str] = []  # what the server sent that breaks the protocol
        self.eof: str | None = None  # why the stream ended, once it has
        self._cursor = 0  # frames before this index were consumed by expect()
        self._changed = threading.Condition()
        self._closed = False
        self._paused = False
        self._reader: threading.Thread | None = None
        if read:
            self._reader = threading.Thread(target=self._read, name=f"peer-{label}", daemon=True)
            self._reader.start()

    # -- sending

    def send(self, data: bytes | Frame) -> None:
        """Send raw bytes, or one message as a frame.  Fails the stage if it cannot."""
        if isinstance(data, dict):
            data = encode(data)
        if self._log:
            self._log(f"  {self.label} -> {data[:90]!r}{' ...' if len(data) > 90 else ''}")
        try:
            self.sock.sendall(data)
        except TimeoutError:
            raise StageFailure(
                f"the server stopped reading from {self.label} (a send did not finish "
                f"within {self.timeout:g} s)"
            ) from None
        except OSError as exc:
            raise StageFailure(
                f"the server closed {self.label}'s connection ({exc.strerror or exc})"
            ) from None

    def send_in_pieces(self, data: bytes, cuts: list[int], pause: float = 0.02) -> None:
        """Send ``data`` cut at the offsets ``cuts``, pausing between pieces."""
        start = 0
        for cut in [*cuts, len(data)]:
            self.send(data[start:cut])
            start = cut
            time.sleep(pause)

    def join(self, username: str) -> Frame:
        """Send a join and wait for the welcome; fail the stage on anything else."""
        self.send({"type": "join", "username": username})
        reply = self.expect_one_of(("welcome", "error"), f"{username}'s join")
        if reply["type"] == "error":
            raise StageFailure(f"the server refused to let {username} join: {describe(reply)}")
        return reply

    # -- receiving

    def _read(self) -> None:
        buffer = bytearray()
        scanned = 0
        reason = "the server closed the connection"
        try:
            while not self._paused:
                try:
                    data = self.sock.recv(RECV_BYTES)
                except TimeoutError:
                    if self._closed:
                        return
                    continue
                if not data:
                    break
                buffer += data
                while (end := buffer.find(b"\n", scanned)) >= 0:
                    line = bytes(buffer[:end])
                    del buffer[: end + 1]
                    scanned = 0
                    if line.strip():
                        self._frame(line)
                scanned = len(buffer)
                if scanned > MAX_SERVER_FRAME:
                    self._violation(f"a line of over {MAX_SERVER_FRAME} bytes without a newline")
                    return
        except OSError as exc:
            if self._closed:
                return
            reason = f"the connection was lost ({exc.strerror or exc})"
        with self._changed:
            self.eof = reason
            self._changed.notify_all()
        if self._log and not self._closed:
            self._log(f"  {self.label} <- (end of stream: {reason})")

    def _frame(self, line: bytes) -> None:
        try:
            frame = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            self._violation(f"a frame that is not UTF-8: {line[:60]!r}")
            return
        except ValueError:
            self._violation(f"a frame that is not JSON: {line[:60]!r}")
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            self._violation(f'a frame that is not an object with a "type": {line[:60]!r}')
            return
        if self._log:
            self._log(f"  {self.label} <- {describe(frame)}")
        with self._changed:
            self.frames.append(frame)
            self._changed.notify_all()

    def _violation(self, what: str) -> None:
        with self._changed:
            self.violations.append(what)
            self._changed.notify_all()

    def wait(self, found: Callable[[list[Frame]], Any], timeout: float | None = None) -> Any:
        """Call ``found(frames)`` as frames arrive until it returns something not None.

        Returns that, or ``None`` once ``timeout`` has passed or the stream has
        ended.  A protocol violation by the server fails the stage at once.
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self._changed:
            while True:
                if self.violations:
                    raise StageFailure(f"the server sent {self.label} {self.violations[0]}")
                result = found(self.frames)
                if result is not None:
                    return result
                remaining = deadline - time.monotonic()
                if self.eof is not None or remaining <= 0:
                    return None
                self._changed.wait(remaining)

    def expect_one_of(
        self, kinds: tuple[str, ...], what: str, timeout: float | None = None
    ) -> Frame:
        """The next frame (after those consumed) whose type is one of ``kinds``.

        Frames of other types are skipped (they stay in :attr:`frames`).  Fails
        the stage, saying what came instead, if none arrives in time.
        """

        def first(frames: list[Frame]) -> int | None:
            for index in range(self._cursor, len(frames)):
                if frames[index].get("type") in kinds:
                    return index
            return None

        index = self.wait(first, timeout)
        if index is None:
            raise StageFailure(f"{' or '.join(kinds)} for {what} {self.missing(timeout)}")
        self._cursor = index + 1
        return self.frames[index]

    def expect(self, kind: str, what: str, timeout: float | None = None) -> Frame:
        return self.expect_one_of((kind,), what, timeout)

    def missing(self, timeout: float | None = None) -> str:
        """Why an awaited frame did not come: the end of the stream, or the time ran out."""
        if self.eof is not None:
            return f"never came to {self.label}: {self.eof}"
        waited = self.timeout if timeout is None else timeout
        return f"did not reach {self.label} within {waited:g} s"

    def chats(self) -> list[Frame]:
        """The chat frames received so far, in order."""
        with self._changed:
            return [f for f in self.frames if f.get("type") == "chat"]

    def errors(self) -> list[Frame]:
        with self._changed:
            return [f for f in self.frames if f.get("type") == "error"]

    def stop_reading(self) -> None:
        """Read nothing more (after at most one more ``recv``): a client that froze."""
        self._paused = True

    def closed_or_error(self, since: int, timeout: float | None = None) -> str | None:
        """Wait for an error frame (after the first ``since`` frames) or the end of the
        stream; which one came, or None."""

        def answered(frames: list[Frame]) -> str | None:
            if any(f.get("type") == "error" for f in frames[since:]):
                return "error"
            return "closed" if self.eof is not None else None

        result = self.wait(answered, timeout)
        if result is None and self.eof is not None:
            return "closed"
        return result

    # -- the end

    def close(self) -> None:
        """Close the connection; the reader thread ends within a moment."""
        self._closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # not connected any more (or a platform that refuses)
        self.sock.close()
        if self._reader is not None:
            self._reader.join(self.timeout)
