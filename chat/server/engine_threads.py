"""The threaded chat server: a thread per client around the I/O-free chat core.

Run it from a terminal::

    python -m chat.server                      # localhost:12345
    python -m chat.server --host 0.0.0.0       # every network interface
    python -m chat.server --port 0             # any free port (printed in the log)

or from Python, for example in a notebook, where it runs in the background::

    with ChatServer(port=0) as server:         # starts, and stops at the end
        print(server.address)                  # ('127.0.0.1', 43117)

How it works.  All chat rules live in :class:`chat.core.ChatCore`; this module
only moves bytes between sockets and that core.

* One *accept* thread waits for new connections.
* Each client gets a *reader* thread.  ``recv`` blocks, which is fine: it only
  blocks this client's own thread.  Whatever arrives goes to the core.
* Each client also gets a *writer* thread with its own bounded outbound queue.
  Why not just ``sendall`` to every receiver from the sender's reader thread?
  Because ``sendall`` blocks when a receiver stops reading and its socket
  buffers fill up: one stalled client would freeze everyone who talks to it.
  With a queue per client, a broadcast only appends bytes to queues, which
  never blocks; each writer sends at its own client's pace.  A client whose
  queue passes :data:`chat.limits.MAX_SEND_QUEUE_BYTES` is disconnected rather
  than buffered without end.  A writer joins everything queued into one
  ``sendall``: one system call for many frames.
* A shortcut for speed: after releasing the lock, the thread that queued
  frames sends them itself with a send that cannot block (``MSG_DONTWAIT``);
  the writer thread is woken only for what the kernel refuses (a slow reader).
  Waking a thread per frame per client is what made this design slow
  (benchmarks/results.md).
* One lock guards the core, because the core's dictionaries are shared by all
  reader threads.  It is held only while the core computes and frames are
  appended to queues -- never during socket I/O -- so no slow client can hold
  it.  Appending under the lock also means every client receives broadcasts in
  the same order.
* A *housekeeping* thread asks the core once a second to expire connections
  that never joined or went silent, and cuts off connections that were told
  to close but hang on (:data:`CLOSE_TIMEOUT`).
* A connection refused at the door (server full, too many from one address)
  gets its error frame from a short-lived thread of its own, and only
  :data:`MAX_TURNING_AWAY` of those run at once: a flood of connections to a
  full server cannot make threads without bound.  Past that they are closed
  without a word.
* TLS (``ssl_context=...``): the handshake runs in the connection's reader
  thread under :data:`chat.limits.TLS_HANDSHAKE_TIMEOUT`, never in the accept
  loop, and the writer starts only once it is done.  Reader and writer then
  share one :class:`chat.tls.TLSChannel`, which is safe for exactly that.

Shutdown (Ctrl+C, SIGTERM or :meth:`ChatServer.stop`): stop accepting, send
every client a ``server_shutdown`` frame, give writers a moment to flush, then
shut every socket and join every thread -- all within a couple of seconds.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterable

from chat.core import Action, Send
from chat.limits import Limits
from chat.protocol import DEFAULT_HOST, DEFAULT_PORT
from chat.server.base import (
    HOUSEKEEPING_INTERVAL,
    LINGER_SECONDS,
    RECV_BYTES,
    ServerBase,
)
from chat.tls import TLSChannel

__all__ = ["ChatServer"]

log = logging.getLogger(__name__)

#: Seconds a connection the server decided to close may take to receive its
#: last frames and hang up.  Then both its threads are woken and it is cut off,
#: even if it ignores our FIN or stopped reading: a half-open connection must
#: not keep two threads and a socket forever.
CLOSE_TIMEOUT = 2.0

#: Refused connections (server full, too many from one address) being told so
#: at once, each by a short-lived thread.  More are closed without a word.
MAX_TURNING_AWAY = 16

#: ``send`` flag for "do not wait" (Linux, macOS); 0 where missing (Windows):
#: then every frame goes through the writer thread.
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)


class _Connection:
    """One client's socket, its outbound queue and its two threads.

    The queue is a list of encoded frames plus a byte count, guarded by a
    condition variable: producers (any reader thread, via a broadcast) append
    and notify; the writer waits, takes everything at once and sends it.
    """

    def __init__(self, sock: socket.socket, address: tuple[str, int], max_queue: int) -> None:
        self.sock = sock
        self.address = address
        self._max_queue = max_queue
        self._queue: list[bytes] = []
        self._queued = 0
        self._wake = threading.Condition()
        self.closing = False  # no more frames are accepted; flush, then close
        self.closing_since: float | None = None  # when closing started (CLOSE_TIMEOUT)
        self.stream: socket.socket | TLSChannel = sock  # what recv/sendall go through
        self._aborted = False  # drop the queue and close now
        self._writing = False  # a thread is sending what it took from the queue
        self.plain = True  # plain TCP: frames may be sent by flush() (not over TLS)
        self._sock_lock = threading.Lock()
        self._sock_closed = False
        self.reader: threading.Thread | None = None
        self.writer: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<connection {self.address[0]}:{self.address[1]}>"

    def enqueue(self, data: bytes) -> bool:
        """Queue bytes to send.  False if this overflows the queue.

        Who sends them: where the socket allows a send that cannot block
        (``MSG_DONTWAIT``), the thread that queued them, by calling
        :meth:`flush` once it has released the server's lock; otherwise the
        writer thread, woken here.
        """
        with self._wake:
            if self.closing:
                return True  # already on its way out: nothing more to say
            if self._queued + len(data) > self._max_queue:
                self._mark_closing()
                self._aborted = True
                self._queue.clear()
                self._wake.notify()
                return False
            self._queue.append(data)
            self._queued += len(data)
            if not self._fast:
                self._wake.notify()
            return True

    @property
    def _fast(self) -> bool:
        """Whether :meth:`flush` may send from the caller's thread (plain TCP, MSG_DONTWAIT)."""
        return self.plain and bool(_DONTWAIT)

    def flush(self) -> None:
        """Send what is queued from this thread, without ever blocking.

        Waking the writer thread for every frame costs far more than the send
        itself -- two context switches and a GIL hand-over -- and a broadcast
        to N clients would wake N threads.  So the thread that queued frames
        (after releasing the server's lock: no socket call happens under it)
        hands them to the kernel itself with ``MSG_DONTWAIT``, a send that
        takes what fits in the socket buffer and returns at once.  Whatever
        does not fit (a client that reads slowly) is left to the writer
        thread, which may block in ``sendall`` without holding anyone up.
        Only one thread sends at a time (``_writing``), so frames never
        overtake each other; whoever sends takes everything queued so far.
        """
        if not self._fast:
            return
        for _ in range(4):  # bounded: under a flood, the writer takes over
            with self._wake:
                if self._writing or not self._queue or self.closing:
                    return  # someone else is sending, or the writer has the last word
                data = b"".join(self._queue)
                self._queue.clear()
                self._queued = 0
                self._writing = True
            try:
                sent = self.sock.send(data, _DONTWAIT)
            except OSError:  # the buffer is full, or the peer is gone: the writer finds out
                sent = 0
            with self._wake:
                self._writing = False
                if sent < len(data):
                    self._queue.insert(0, data[sent:])
                    self._queued += len(data) - sent
                    self._wake.notify()
                    return
                if self.closing:
                    self._wake.notify()  # the writer may be waiting for us to finish
        with self._wake:
            self._wake.notify()

    def _mark_closing(self) -> None:
        if not self.closing:
            self.closing = True
            self.closing_since = time.monotonic()

    def close_after_flush(self) -> None:
        with self._wake:
            self._mark_closing()
            self._wake.notify()

    def abort(self) -> None:
        """Close now, dropping anything queued.  Wakes both threads at once."""
        with self._wake:
            self._mark_closing()
            self._aborted = True
            self._queue.clear()
            self._wake.notify()
        self.shutdown(socket.SHUT_RDWR)

    def shutdown(self, how: int) -> None:
        """``shutdown`` wakes a thread blocked in ``recv``/``sendall``; ``close`` would not."""
        with self._sock_lock:
            if not self._sock_closed:
                try:
                    self.sock.shutdown(how)
                except OSError:
                    pass  # the peer is already gone

    def close_socket(self) -> None:
        with self._sock_lock:
            if not self._sock_closed:
                self._sock_closed = True
                self.sock.close()

    def run_writer(self) -> None:
        """Drain the queue into the socket until told to close."""
        try:
            while True:
                with self._wake:
                    while self._writing or (not self._queue and not self.closing):
                        if self._aborted:
                            break
                        self._wake.wait()
                    if self._aborted:
                        return
                    data = b"".join(self._queue)
                    self._queue.clear()
                    self._queued = 0
                    self._writing = bool(data)  # until sent, nobody may send past it
                    last = self.closing  # nothing can be queued after closing
                if data:
                    self.stream.sendall(data)
                    with self._wake:
                        self._writing = False
                if last:
                    if isinstance(self.stream, TLSChannel):
                        self.stream.close_notify()  # TLS says goodbye before TCP does
                    self.shutdown(socket.SHUT_WR)  # a clean FIN after our last frame
                    return
        except OSError:
            self.shutdown(socket.SHUT_RDWR)  # peer gone: make the reader notice too


class ChatServer(ServerBase):
    """A chat server with a thread per client, started in the background.

    ``start()`` returns once the server is listening, so a client may connect
    straight away.  Port 0 asks the operating system for any free port; read it
    back from :attr:`address`.  Use ``with ChatServer(...) as server:`` or call
    :meth:`stop`; :meth:`serve_forever` blocks until Ctrl+C instead.  The rest
    of the API is :class:`chat.server.base.ServerBase`'s, shared by every engine.

    ``limits`` sets every bound (:class:`chat.limits.Limits`); ``ssl_context``
    (see :func:`chat.tls.server_context`) makes every connection use TLS.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        limits: Limits | None = None,
        backlog: int = 128,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(host, port, limits=limits, backlog=backlog, ssl_context=ssl_context)
        self._lock = threading.Lock()  # guards core, _connections and _turning_away
        # Per thread: connections that thread queued frames for under the lock,
        # to flush once it has released the lock (see _Connection.flush).
        self._touched = threading.local()
        self._connections: set[_Connection] = set()
        self._turning_away: set[socket.socket] = set()  # refused, being told so
        self._threads: list[threading.Thread] = []

    def usernames(self) -> list[str]:
        """Who is joined right now."""
        with self._lock:
            return self.core.usernames

    # -- starting and stopping

    def _start_serving(self) -> None:
        for target, name in ((self._accept_loop, "accept"), (self._housekeeping, "housekeeping")):
            thread = threading.Thread(target=target, name=f"chat-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _stop_serving(self) -> None:
        assert self._listener is not None
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            actions = self.core.shutdown()
            connections = list(self._connections)
            to_abort = self._perform(actions)
            for sock in self._turning_away:
                _shutdown_quietly(sock)  # their threads end at once
        self._abort(to_abort)
        _join_all(_threads_of(connections), self._deadline - self._timeout / 2)
        for conn in connections:
            conn.abort()
        _join_all([*_threads_of(connections), *self._threads], self._deadline)
        for conn in connections:
            conn.close_socket()

    # -- the threads

    def _accept_loop(self) -> None:
        assert self._listener is not None
        self._listener.settimeout(0.5)  # in case shutdown() does not wake accept()
        while not self._stopping.is_set():
            try:
                sock, address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if self._stopping.is_set():
                    break
                log.error("accept() failed: %s", exc)  # e.g. out of file descriptors
                time.sleep(0.1)
                continue
            self._serve(sock, address)

    def _serve(self, sock: socket.socket, address: tuple[str, int]) -> None:
        sock.settimeout(None)
        # Chat frames are small: without TCP_NODELAY, Nagle's algorithm holds a
        # small frame back until the previous one is acknowledged (tens of ms).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Connection(sock, address, self.limits.max_send_queue_bytes)
        if self.ssl_context is not None:
            # No I/O yet: the reader thread runs the handshake.  Until then
            # nothing may be sent, not even by enqueue's fast path.
            conn.stream = TLSChannel(sock, self.ssl_context, server_side=True)
        conn.plain = self.ssl_context is None
        name = f"{address[0]}:{address[1]}"
        conn.reader = threading.Thread(
            target=self._reader, args=(conn,), name=f"chat-reader-{name}", daemon=True
        )
        conn.writer = threading.Thread(
            target=conn.run_writer, name=f"chat-writer-{name}", daemon=True
        )
        with self._lock:
            if self._stopping.is_set():
                sock.close()
                return
            closing = len(self._connections) - self.core.connection_count
            actions = self.core.connect(conn, address, closing=closing)
            accepted = self.core.is_open(conn)
            if accepted:
                self._connections.add(conn)
                to_abort = self._perform(actions)
        if not accepted:
            refusal = b"".join(a.data for a in actions if isinstance(a, Send))
            self._turn_away(sock, name, refusal)
            return
        conn.reader.start()  # the reader starts the writer (after the TLS handshake)
        self._abort(to_abort)

    def _turn_away(self, sock: socket.socket, name: str, refusal: bytes) -> None:
        """Tell a refused connection why, from a thread of its own, if not too many are."""
        with self._lock:
            crowded = self._stopping.is_set() or len(self._turning_away) >= MAX_TURNING_AWAY
            if not crowded:
                self._turning_away.add(sock)
        if crowded:
            sock.close()  # a flood of connections: no words to spare
            return
        threading.Thread(
            target=self._say_refusal, args=(sock, refusal), name=f"chat-refuse-{name}", daemon=True
        ).start()

    def _say_refusal(self, sock: socket.socket, refusal: bytes) -> None:
        try:
            stream: socket.socket | TLSChannel = sock
            if self.ssl_context is not None:
                stream = TLSChannel(sock, self.ssl_context, server_side=True)
                stream.handshake(self.limits.tls_handshake_timeout)
            sock.settimeout(LINGER_SECONDS)
            stream.sendall(refusal)
            if isinstance(stream, TLSChannel):
                stream.close_notify()
            sock.shutdown(socket.SHUT_WR)
            _drain(sock, LINGER_SECONDS)
        except OSError:
            pass
        finally:
            with self._lock:
                self._turning_away.discard(sock)  # before close: stop() never sees a closed one
            sock.close()

    def _reader(self, conn: _Connection) -> None:
        """Feed whatever the client sends to the core, until either side ends it."""
        reason = "connection closed by client"
        try:
            if isinstance(conn.stream, TLSChannel):  # handshake here, never in the accept loop
                try:
                    conn.stream.handshake(self.limits.tls_handshake_timeout)
                except OSError as exc:
                    reason = f"TLS handshake failed: {exc}"
                    log.warning("TLS handshake with %r failed: %s", conn, exc)
                    return  # the finally clause cleans up
            assert conn.writer is not None
            conn.writer.start()
            while not conn.closing:
                data = conn.stream.recv(RECV_BYTES)
                if not data:
                    break
                with self._lock:
                    to_abort = self._perform(self.core.receive(conn, data))
                self._abort(to_abort)
            else:
                reason = "closed by server"
                _drain(conn.sock, LINGER_SECONDS)
        except OSError as exc:
            reason = f"connection lost: {exc.strerror or exc}"
        finally:
            with self._lock:
                to_abort = self._perform(self.core.disconnect(conn, reason))
            self._abort(to_abort)
            conn.close_after_flush()
            if conn.writer is not None and conn.writer.ident is not None:  # it was started
                conn.writer.join(LINGER_SECONDS)
            conn.abort()
            conn.close_socket()
            with self._lock:
                self._connections.discard(conn)

    def _housekeeping(self) -> None:
        while not self._stopping.wait(HOUSEKEEPING_INTERVAL):
            with self._lock:
                to_abort = self._perform(self.core.expire())
                now = time.monotonic()
                to_abort += [  # told to close, but still hanging on (CLOSE_TIMEOUT)
                    conn
                    for conn in self._connections
                    if conn.closing_since is not None and now - conn.closing_since > CLOSE_TIMEOUT
                ]
            self._abort(to_abort)

    # -- carrying out the core's decisions

    def _perform(self, actions: list[Action]) -> list[_Connection]:
        """Queue frames and mark closes.  Call with the lock held; no socket I/O here.

        Returns the connections whose queues overflowed: the caller aborts them
        (a socket call) after releasing the lock.  Dropping one may make the
        core tell the others it left, hence the loop.
        """
        overflowed: list[_Connection] = []
        touched = self._touched.__dict__.setdefault("conns", [])
        pending = deque(actions)
        while pending:
            action = pending.popleft()
            if isinstance(action, Send):
                touched.extend(action.to)
                for conn in action.to:
                    if not conn.enqueue(action.data):
                        log.warning("Send queue exceeded for %r: disconnecting it", conn)
                        overflowed.append(conn)
                        pending += self.core.disconnect(conn, "send queue exceeded")
            else:
                action.conn.close_after_flush()
        return overflowed

    def _abort(self, connections: Iterable[_Connection]) -> None:
        """After releasing the lock: send what :meth:`_perform` queued, abort the overflowed."""
        touched = self._touched.__dict__.pop("conns", [])
        for conn in dict.fromkeys(touched):  # each once, in order
            conn.flush()
        for conn in connections:
            conn.abort()


# -- helpers


def _drain(sock: socket.socket, seconds: float) -> None:
    """Read and discard until the peer closes or ``seconds`` pass (lingering close)."""
    deadline = time.monotonic() + seconds
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            if not sock.recv(RECV_BYTES):
                return
    except OSError:
        return


def _shutdown_quietly(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _threads_of(connections: Iterable[_Connection]) -> list[threading.Thread]:
    """The started threads of these connections (a writer waits for the TLS handshake)."""
    return [
        t
        for c in connections
        for t in (c.reader, c.writer)
        if t is not None and t.ident is not None
    ]


def _join_all(threads: Iterable[threading.Thread], deadline: float) -> None:
    for thread in threads:
        if thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
