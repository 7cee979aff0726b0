"""The event-loop chat server: one thread, non-blocking sockets, ``selectors``.

Run it with ``python -m chat.server --engine selectors``.  It obeys exactly the
same rules as the threaded server, because both drive :class:`chat.core.ChatCore`;
only the way bytes move differs.

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
   outbound list; nothing is sent yet.
3. Flush: for each connection with something queued, join its frames and
   ``send`` them in one system call -- however many broadcasts arrived in this
   turn.  What the kernel does not take (its buffer is full because the client
   reads slowly) stays queued, and we ask to be told when that socket is
   writable again.  A client whose queue passes the limit is disconnected
   ("send queue exceeded"): a slow reader costs bounded memory and never slows
   anyone else, because nobody waits for it.
4. About once a second, let the core expire connections that never joined or
   went silent, and finish lingering closes.

Closing politely ("lingering close"): when the core closes a connection we
flush its last frames (an error, say), send a FIN with ``shutdown(SHUT_WR)``,
then read and discard until the peer closes too or a second passes.  Closing
with unread input would make the kernel send a reset, which can destroy the
frame we just sent before the peer reads it.
"""

from __future__ import annotations

import errno
import logging
import selectors
import socket
import ssl
import time
from collections import deque

from chat.core import Action, Send
from chat.server.base import (
    HOUSEKEEPING_INTERVAL,
    LINGER_SECONDS,
    RECV_BYTES,
    BackgroundServer,
)

__all__ = ["SelectorsChatServer"]

log = logging.getLogger(__name__)

#: New connections accepted per turn of the loop, so a flood of connects cannot
#: starve the clients already there.
ACCEPT_BATCH = 64

#: Longest wait for readiness: how late a stop or a timer can be noticed at worst.
MAX_WAIT = 0.5

_READ = selectors.EVENT_READ
_READ_WRITE = selectors.EVENT_READ | selectors.EVENT_WRITE


class _Connection:
    """One client: its socket and the frames not yet handed to the kernel."""

    __slots__ = (
        "address",
        "close_by",
        "closed",
        "closing",
        "events",
        "half_closed",
        "handshake_by",
        "out",
        "queued",
        "sock",
        "tls",
        "tls_in",
        "tls_out",
        "wire",
    )

    def __init__(self, sock: socket.socket, address: tuple[str, int]) -> None:
        self.sock = sock
        self.address = address
        self.out: list[bytes] = []  # frames to send, oldest first
        self.queued = 0  # bytes in ``out``
        self.events = _READ  # what the selector watches for
        self.closing = False  # flush, half-close, linger, then close
        self.half_closed = False  # our FIN is sent; discarding input until the peer's
        self.close_by = 0.0  # when closing: the moment we give up on the peer
        self.closed = False
        # TLS only: OpenSSL works between two memory buffers (no socket calls,
        # so it never blocks); ``out`` then holds plaintext, ``wire`` ciphertext.
        self.tls: ssl.SSLObject | None = None
        self.tls_in = self.tls_out = None
        self.wire: list[bytes] = []
        self.handshake_by = 0.0  # while the TLS handshake runs: its deadline

    def __repr__(self) -> str:
        return f"<connection {self.address[0]}:{self.address[1]}>"


class SelectorsChatServer(BackgroundServer):
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
        self._connections: set[_Connection] = set()
        self._dirty: list[_Connection] = []  # connections with frames to flush
        self._closing: set[_Connection] = set()  # closing: checked against close_by
        self._handshaking: set[_Connection] = set()  # TLS: checked against handshake_by
        self._accept_paused_until = 0.0

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass  # already woken (buffer full) or already closed

    # -- the loop

    def _run(self) -> None:
        select = self._selector.select
        next_housekeeping = time.monotonic() + HOUSEKEEPING_INTERVAL
        stop_phase = 0  # 0 serving, 1 saying goodbye, 2 done
        try:
            while stop_phase < 2:
                now = time.monotonic()
                wait = min(MAX_WAIT, max(0.0, next_housekeeping - now))
                if self._closing or self._accept_paused_until:
                    wait = min(wait, 0.05)
                for key, mask in select(wait):
                    if self._stopping.is_set() and stop_phase == 0:
                        break  # stop first: what is still ready no longer matters
                    conn = key.data
                    if conn == "listener":
                        self._accept()
                    elif conn == "wake":
                        _discard(self._wake_r)
                    else:
                        if mask & selectors.EVENT_WRITE and not conn.closed:
                            self._flush(conn)
                        if mask & _READ and not conn.closed:
                            self._read(conn)
                self._flush_dirty()
                now = time.monotonic()
                if now >= next_housekeeping:
                    next_housekeeping = now + HOUSEKEEPING_INTERVAL
                    self._perform(self.core.expire())
                    self._expire_handshakes(now)
                    self._flush_dirty()
                if self._closing:
                    self._check_closing(now)
                if self._accept_paused_until and now >= self._accept_paused_until:
                    self._accept_paused_until = 0.0
                    self._selector.register(self._listener, _READ, "listener")
                if self._stopping.is_set():
                    if stop_phase == 0:
                        stop_phase = 1
                        self._begin_shutdown()
                    if not self._connections or now >= self._deadline - self._timeout / 2:
                        stop_phase = 2
        finally:
            for conn in list(self._connections):
                self._close(conn)
            self._selector.close()
            self._wake_r.close()
            self._wake_w.close()
            if self._listener is not None:
                self._listener.close()

    def _begin_shutdown(self) -> None:
        assert self._listener is not None
        if not self._accept_paused_until:
            self._selector.unregister(self._listener)
        self._accept_paused_until = 0.0
        self._listener.close()
        self._perform(self.core.shutdown())
        self._flush_dirty()

    def _accept(self) -> None:
        assert self._listener is not None
        for _ in range(ACCEPT_BATCH):
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.error("accept() failed: %s", exc)
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of file descriptors: stop listening for a moment,
                    # or the ready listener would spin this loop at 100% CPU.
                    self._selector.unregister(self._listener)
                    self._accept_paused_until = time.monotonic() + 0.1
                return
            sock.setblocking(False)
            # Chat frames are small: without TCP_NODELAY, Nagle's algorithm
            # holds a small frame back until the previous one is acknowledged.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(sock, address)
            if self.ssl_context is not None:
                conn.tls_in, conn.tls_out = ssl.MemoryBIO(), ssl.MemoryBIO()
                conn.tls = self.ssl_context.wrap_bio(conn.tls_in, conn.tls_out, server_side=True)
                conn.handshake_by = time.monotonic() + self._tls_timeout()
                self._handshaking.add(conn)
            # Connections still closing (lingering) hold sockets too: they count.
            closing = len(self._connections) - self.core.connection_count
            self._connections.add(conn)
            self._selector.register(sock, _READ, conn)
            self._perform(self.core.connect(conn, address, closing=closing))

    def _read(self, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._drop(conn, f"connection lost: {exc.strerror or exc}")
            return
        handshaking = conn.tls is not None and conn.handshake_by
        if conn.closing and not handshaking:  # lingering: discard what arrives, until EOF
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
            self._perform(self.core.disconnect(conn, "connection closed by client"))
            self._flush(conn)  # a last try: the peer may still read after its FIN
            self._close(conn)
            return
        self._perform(self.core.receive(conn, data))

    # -- carrying out the core's decisions

    def _perform(self, actions: list[Action]) -> None:
        """Queue frames and begin closes; the sending happens in :meth:`_flush_dirty`."""
        limit = self.limits.max_send_queue_bytes
        dirty = self._dirty
        pending = deque(actions)
        while pending:
            action = pending.popleft()
            if not isinstance(action, Send):
                self._begin_close(action.conn)
                continue
            data = action.data
            size = len(data)
            for conn in action.to:  # the hot loop: one append per receiver
                if conn.closing:
                    continue
                if conn.queued + size > limit:
                    log.warning("Send queue exceeded for %r: disconnecting it", conn)
                    pending += self.core.disconnect(conn, "send queue exceeded")
                    self._close(conn)
                    continue
                if not conn.out and conn.events == _READ:
                    dirty.append(conn)
                conn.out.append(data)
                conn.queued += size

    def _flush_dirty(self) -> None:
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            if not conn.closed:
                self._flush(conn)

    def _flush(self, conn: _Connection) -> None:
        """Send everything queued in one system call; keep what the kernel refuses."""
        out = conn.out
        if conn.tls is not None:
            try:
                self._encrypt(conn)
            except (ssl.SSLError, ValueError) as exc:
                self._tls_failed(conn, exc)
                return
            out = conn.wire
        if out:
            data = out[0] if len(out) == 1 else b"".join(out)
            try:
                sent = conn.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._drop(conn, f"connection lost: {exc.strerror or exc}")
                return
            if sent < len(data):
                out[:] = [data[sent:]]
                conn.queued = len(data) - sent
                self._watch(conn, _READ_WRITE)
                return
            out.clear()
            conn.queued = 0
        if conn.out:  # TLS: plaintext waiting for the handshake to finish
            return
        self._watch(conn, _READ)
        if conn.closing and not conn.half_closed:
            self._half_close(conn)

    def _watch(self, conn: _Connection, events: int) -> None:
        if conn.events != events:
            conn.events = events
            self._selector.modify(conn.sock, events, conn)

    def _begin_close(self, conn: _Connection) -> None:
        """The core closed ``conn``: flush what it was sent, then close politely."""
        if conn.closing or conn.closed:
            return
        conn.closing = True
        conn.close_by = time.monotonic() + 2 * LINGER_SECONDS  # a peer that never reads
        self._closing.add(conn)
        if conn.tls is not None:
            self._flush(conn)  # TLS says goodbye (close_notify) before TCP does
        elif not conn.out:
            self._half_close(conn)
        # else: _flush half-closes once the queue is empty

    def _half_close(self, conn: _Connection) -> None:
        conn.half_closed = True
        try:
            conn.sock.shutdown(socket.SHUT_WR)  # a clean FIN after our last frame
        except OSError:
            self._close(conn)
            return
        conn.close_by = time.monotonic() + LINGER_SECONDS

    # -- TLS, without blocking: OpenSSL between two memory buffers

    def _tls_timeout(self) -> float:
        return float(getattr(self.limits, "tls_handshake_timeout", 10.0))

    def _decrypt(self, conn: _Connection, raw: bytes) -> bytes | None:
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

    def _encrypt(self, conn: _Connection) -> None:
        """Move queued plaintext through OpenSSL into ``wire``; once closing, add goodbye."""
        assert conn.tls is not None and conn.tls_out is not None
        if conn.handshake_by == 0.0:
            if conn.out:
                conn.tls.write(b"".join(conn.out))
                conn.out = []
            if conn.closing and not conn.half_closed:
                try:
                    conn.tls.unwrap()  # queues our close_notify; we do not wait for theirs
                except ssl.SSLError:
                    pass
        encrypted = conn.tls_out.read()
        if encrypted:
            conn.wire.append(encrypted)
        conn.queued = sum(map(len, conn.wire)) + sum(map(len, conn.out))

    def _tls_failed(self, conn: _Connection, exc: Exception) -> None:
        if conn.handshake_by:
            log.warning("TLS handshake with %r failed: %s", conn, exc)
            self._drop(conn, f"TLS handshake failed: {exc}")
        else:
            self._drop(conn, f"TLS error: {exc}")

    def _expire_handshakes(self, now: float) -> None:
        for conn in list(self._handshaking):
            if conn.closed:
                self._handshaking.discard(conn)
            elif now >= conn.handshake_by:
                timeout = self._tls_timeout()
                self._tls_failed(conn, TimeoutError(f"not finished within {timeout:g} s"))

    def _check_closing(self, now: float) -> None:
        """Close connections whose peer did not close within the lingering time."""
        for conn in list(self._closing):
            if conn.closed:
                self._closing.discard(conn)
            elif now >= conn.close_by:
                self._close(conn)

    def _drop(self, conn: _Connection, reason: str) -> None:
        """The connection failed: tell the core, close it now."""
        self._perform(self.core.disconnect(conn, reason))
        self._close(conn)

    def _close(self, conn: _Connection) -> None:
        if conn.closed:
            return
        conn.closed = conn.closing = True
        conn.out = []
        conn.queued = 0
        self._connections.discard(conn)
        self._closing.discard(conn)
        self._handshaking.discard(conn)
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()


def _discard(sock: socket.socket) -> None:
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass
