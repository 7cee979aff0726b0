"""The event-loop engine: one thread, non-blocking sockets, :mod:`selectors`.

Run it with ``python -m chat.server --engine selectors``.  It obeys exactly the
same rules as the threaded engine, because both drive :class:`chat.core.ChatCore`,
and shares its connection model (:mod:`chat.server.base`); only the way bytes
move differs.

Why an event loop?  A thread per client spends a stack and a scheduler slot on
each connection, and threads take turns on the GIL anyway: only one runs Python
code at a time.  An event loop asks the operating system "which of these
sockets can I read or write *without waiting*?" (``select``/``epoll``, wrapped
by :mod:`selectors`), then serves exactly those, one after the other, in a
single thread.  No call ever blocks, so one thread can serve ten thousand idle
clients -- each costs a socket and a small object, not a thread.

One turn of the loop:

1. Wait (at most a fraction of a second) until some sockets are ready.
2. Accept new connections; ``recv`` from each readable socket once and feed the
   bytes to the core.  A broadcast only *appends* bytes to each receiver's
   outbox; nothing is sent yet.
3. Flush: for each connection with something queued, join its frames and
   ``send`` them in one system call -- however many broadcasts arrived in this
   turn.  What the kernel does not take (its buffer is full because the client
   reads slowly) stays queued, and we ask to be told when that socket is
   writable again.
4. About once a second, tick (:meth:`chat.server.base.ServerBase._tick`): the
   core's timeouts, and every close past its deadline.

Closing politely ("lingering close"): when the core closes a connection we
flush its last frames (an error, say), send a FIN with ``shutdown(SHUT_WR)``,
then read and discard until the peer closes too or the close's deadline
passes.  Closing with unread input would make the kernel send a reset, which
can destroy the frame we just sent before the peer reads it.

TLS without blocking: OpenSSL works between two memory buffers
(:class:`ssl.SSLObject` and :class:`ssl.MemoryBIO`), so it never touches the
socket and never blocks; the loop moves ciphertext between those buffers and
the socket like any other bytes.  The handshake has a deadline, and until it
is done the connection counts like any other.
"""

from __future__ import annotations

import errno
import logging
import queue
import selectors
import socket
import ssl
import time
from collections.abc import Callable

from chat.server.base import (
    HOUSEKEEPING_INTERVAL,
    RECV_BYTES,
    Connection,
    EventLoopServer,
    set_nodelay,
)

__all__ = ["SelectorsChatServer"]

log = logging.getLogger(__name__)

#: New connections accepted per turn of the loop, so a flood of connects cannot
#: starve the clients already there.
ACCEPT_BATCH = 64

#: Longest wait for readiness: how late a stop or a timer can be noticed at worst.
MAX_WAIT = 0.5

#: Errors of ``accept()`` that mean "out of resources": accepting again at once
#: would fail again, so the listener rests for a moment.
_EXHAUSTED = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)

_READ = selectors.EVENT_READ
_READ_WRITE = selectors.EVENT_READ | selectors.EVENT_WRITE


class _SelectorConnection(Connection):
    """A client of the event loop: its non-blocking socket, and TLS state if any."""

    __slots__ = (
        "events",
        "half_closed",
        "handshake_by",
        "sock",
        "tls",
        "tls_in",
        "tls_out",
        "wire",
    )

    def __init__(self, sock: socket.socket, address: tuple[str, int]) -> None:
        super().__init__(address)
        self.sock = sock
        self.events = _READ  # what the selector watches for
        self.half_closed = False  # our FIN is sent; discarding input until the peer's
        # TLS only: ``out`` then holds plaintext, ``wire`` ciphertext for the socket.
        self.tls: ssl.SSLObject | None = None
        self.tls_in: ssl.MemoryBIO | None = None
        self.tls_out: ssl.MemoryBIO | None = None
        self.wire: list[bytes] = []
        self.handshake_by = 0.0  # while the TLS handshake runs: its deadline


class SelectorsChatServer(EventLoopServer):
    """A chat server on one thread with a ``selectors`` event loop.

    Same API as :class:`chat.server.ChatServer`::

        with SelectorsChatServer("127.0.0.1", 0) as server:
            print(server.address)
    """

    engine = "selectors"

    def _prepare(self) -> None:
        assert self._listener is not None
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, _READ, "listener")
        # A socket pair lets stop(), in another thread, interrupt select().
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, _READ, "wake")
        self._handshaking: set[_SelectorConnection] = set()  # TLS: against handshake_by
        self._accept_paused_until = 0.0
        # Work handed over by other threads (the history store's answers).
        self._calls: queue.SimpleQueue[tuple[Callable[..., object], tuple[object, ...]]] = (
            queue.SimpleQueue()
        )

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass  # already woken (buffer full) or already closed

    def _from_thread(self, work: Callable[..., object], *args: object) -> None:
        self._calls.put((work, args))
        self._wake()

    def _run_calls(self) -> None:
        while True:
            try:
                work, args = self._calls.get_nowait()
            except queue.Empty:
                return
            work(*args)

    # -- the loop

    def _run(self) -> None:
        select = self._selector.select
        next_tick = time.monotonic() + HOUSEKEEPING_INTERVAL
        shutting_down = False
        try:
            while True:
                now = time.monotonic()
                wait = min(MAX_WAIT, max(0.0, next_tick - now))
                if shutting_down or self._accept_paused_until:
                    wait = min(wait, 0.05)
                for key, mask in select(wait):
                    if self._stopping.is_set() and not shutting_down:
                        break  # stop first: what is still ready no longer matters
                    conn = key.data
                    if conn == "listener":
                        self._accept()
                    elif conn == "wake":
                        _discard(self._wake_r)
                        self._run_calls()
                    else:
                        if mask & selectors.EVENT_WRITE and not conn.closed:
                            self._flush(conn)
                        if mask & _READ and not conn.closed:
                            self._read(conn)
                self._flush_ready()
                now = time.monotonic()
                if now >= next_tick:
                    next_tick = now + HOUSEKEEPING_INTERVAL
                    self._tick()
                    self._expire_handshakes(now)
                    self._flush_ready()
                if self._accept_paused_until and now >= self._accept_paused_until:
                    self._accept_paused_until = 0.0
                    self._selector.register(self._listener, _READ, "listener")
                if self._stopping.is_set():
                    if not shutting_down:
                        shutting_down = True
                        self._stop_accepting()
                        self._begin_shutdown()
                        self._flush_ready()
                    self._expire_closes(now)
                    if self._goodbyes_done(now):
                        break
        finally:
            self._abort_all()
            self._selector.close()
            self._wake_r.close()
            self._wake_w.close()
            if self._listener is not None:
                self._listener.close()

    def _stop_accepting(self) -> None:
        assert self._listener is not None
        if not self._accept_paused_until:
            self._selector.unregister(self._listener)
        self._accept_paused_until = 0.0
        self._listener.close()

    def _accept(self) -> None:
        assert self._listener is not None
        for _ in range(ACCEPT_BATCH):
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._log.log(
                    "accept", logging.ERROR, "accept() failures", "accept() failed: %s", exc
                )
                if exc.errno in _EXHAUSTED:
                    # Out of file descriptors: stop listening for a moment,
                    # or the ready listener would spin this loop at 100% CPU.
                    self._selector.unregister(self._listener)
                    self._accept_paused_until = time.monotonic() + 0.1
                return
            sock.setblocking(False)
            set_nodelay(sock)
            conn = _SelectorConnection(sock, address)
            if self.ssl_context is not None:
                conn.tls_in, conn.tls_out = ssl.MemoryBIO(), ssl.MemoryBIO()
                conn.tls = self.ssl_context.wrap_bio(conn.tls_in, conn.tls_out, server_side=True)
                conn.handshake_by = time.monotonic() + self.limits.tls_handshake_timeout
                self._handshaking.add(conn)
            self._selector.register(sock, _READ, conn)
            self._open(conn)

    def _read(self, conn: _SelectorConnection) -> None:
        try:
            data = conn.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._drop(conn, f"connection lost: {exc.strerror or exc}")
            return
        if conn.closing and not conn.handshake_by:  # lingering: discard what arrives, until EOF
            if not data:
                self._close(conn)
            return
        if data and conn.tls is not None:
            try:
                data = self._decrypt(conn, data)
            except (ssl.SSLError, ValueError) as exc:
                self._tls_failed(conn, exc)
                return
            if data is None:  # the peer's TLS goodbye (close_notify): the end
                data = b""
            elif not data or conn.closing:  # handshake progress, half a record, or too late
                return
        if not data:
            self._input_ended(conn)
            return
        self._perform(self.core.receive(conn, data))

    # -- sending

    def _flush_ready(self) -> None:
        ready, self._ready = self._ready, []
        for conn in ready:
            if not conn.closed:
                self._flush(conn)

    def _flush(self, conn: _SelectorConnection) -> None:
        """Send everything queued in one system call; keep what the kernel refuses."""
        if conn.tls is not None:
            try:
                self._encrypt(conn)
            except (ssl.SSLError, ValueError) as exc:
                self._tls_failed(conn, exc)
                return
            out = conn.wire
        else:
            out = conn.out
        if out:
            data = out[0] if len(out) == 1 else b"".join(out)
            out.clear()
            try:
                sent = conn.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._drop(conn, f"connection lost: {exc.strerror or exc}")
                return
            if sent < len(data):
                out.append(data[sent:])
                conn.queued = len(data) - sent + (sum(map(len, conn.out)) if conn.tls else 0)
                self._watch(conn, _READ_WRITE)
                return
            conn.queued = sum(map(len, conn.out)) if conn.tls else 0
        if conn.out:  # TLS: plaintext waiting for the handshake to finish
            return
        self._watch(conn, _READ)
        if conn.closing and not conn.half_closed:
            self._half_close(conn)

    def _watch(self, conn: _SelectorConnection, events: int) -> None:
        if conn.events != events:
            conn.events = events
            self._selector.modify(conn.sock, events, conn)

    # -- closing (what the shared connection model asks of an engine)

    def _start_close(self, conn: Connection) -> None:
        assert isinstance(conn, _SelectorConnection)
        if conn.tls is not None:
            self._flush(conn)  # TLS says goodbye (close_notify) before TCP does
        elif not conn.out:
            self._half_close(conn)
        # else: _flush half-closes once the outbox is empty

    def _half_close(self, conn: _SelectorConnection) -> None:
        conn.half_closed = True
        try:
            conn.sock.shutdown(socket.SHUT_WR)  # a clean FIN after our last frame
        except OSError:
            self._close(conn)

    def _abort(self, conn: Connection) -> None:
        assert isinstance(conn, _SelectorConnection)
        self._close(conn)

    def _drop(self, conn: _SelectorConnection, reason: str) -> None:
        """The connection failed: tell the core, close it now."""
        self._lost(conn, reason)
        self._close(conn)

    def _close(self, conn: _SelectorConnection) -> None:
        if conn.closed:
            return
        self._forget(conn)
        self._handshaking.discard(conn)
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    # -- TLS, without blocking: OpenSSL between two memory buffers

    def _decrypt(self, conn: _SelectorConnection, raw: bytes) -> bytes | None:
        """Feed received ciphertext to OpenSSL; return the plaintext it yields.

        ``b""`` means nothing yet (the handshake goes on, or a record is only
        half here); ``None`` means the peer closed TLS.  Raises ``ssl.SSLError``
        for a failed handshake or a damaged record.
        """
        assert conn.tls is not None and conn.tls_in is not None
        conn.tls_in.write(raw)
        if conn.handshake_by:
            try:
                conn.tls.do_handshake()
            except ssl.SSLWantReadError:
                self._flush(conn)  # our part of the handshake
                return b""
            conn.handshake_by = 0.0
            self._handshaking.discard(conn)
            self._flush(conn)  # the handshake's last bytes, and frames queued meanwhile
            if conn.closed:
                return b""
        chunks = []
        while True:
            try:
                chunk = conn.tls.read(RECV_BYTES)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                return b"".join(chunks) or None
            if not chunk:
                break
            chunks.append(chunk)
        assert conn.tls_out is not None
        if conn.tls_out.pending:  # e.g. TLS 1.3 session tickets after the handshake
            self._flush(conn)
        return b"".join(chunks)

    def _encrypt(self, conn: _SelectorConnection) -> None:
        """Move queued plaintext through OpenSSL into ``wire``; once closing, add goodbye."""
        assert conn.tls is not None and conn.tls_out is not None
        if conn.handshake_by == 0.0:
            if conn.out:
                conn.tls.write(conn.take())
            if conn.closing and not conn.half_closed:
                try:
                    conn.tls.unwrap()  # queues our close_notify; we do not wait for theirs
                except ssl.SSLError:
                    pass
        encrypted = conn.tls_out.read()
        if encrypted:
            conn.wire.append(encrypted)

    def _tls_failed(self, conn: _SelectorConnection, exc: Exception) -> None:
        if conn.handshake_by:
            self._drop(conn, self._log_tls_failure(conn, exc))
        else:
            self._drop(conn, f"TLS error: {exc}")

    def _expire_handshakes(self, now: float) -> None:
        timeout = self.limits.tls_handshake_timeout
        for conn in [c for c in self._handshaking if now >= c.handshake_by]:
            self._tls_failed(conn, TimeoutError(f"not finished within {timeout:g} s"))


def _discard(sock: socket.socket) -> None:
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass
