"""The threaded engine: a reader and a writer thread per client, around one lock.

Use it from Python (``ChatServer`` is this engine) or run it with
``python -m chat.server`` (the default ``--engine threads``).  The chat rules
live in :class:`chat.core.ChatCore`; what every engine shares -- counting
connections, their bounded outboxes, carrying out the core's actions, closing
with a deadline -- lives in :mod:`chat.server.base`.  This module holds only
what is particular to threads:

* One *accept* thread waits for new connections.
* Each client gets a *reader* thread.  ``recv`` blocks, which is fine: it only
  blocks this client's own thread.  Whatever arrives goes to the core.
* Each client also gets a *writer* thread that sends what waits in its outbox.
  Why not just ``sendall`` to every receiver from the sender's reader thread?
  Because ``sendall`` blocks when a receiver stops reading and its socket
  buffers fill up: one stalled client would freeze everyone who talks to it.
  With an outbox per client, a broadcast only appends bytes, which never
  blocks; each writer sends at its own client's pace.
* **One lock** guards the core and every outbox, because all reader threads
  share them.  It is held only while the core computes and frames are
  appended -- never during socket I/O -- so no slow client can hold it.
  Appending under the lock also means every client receives broadcasts in the
  same order.  Each writer waits on a condition variable built on that same
  lock, so "is there something for me?" is asked and answered under it.
* A shortcut for speed: after releasing the lock, the thread that queued
  frames sends them itself with a send that cannot block (``MSG_DONTWAIT``);
  the writer thread is woken only for what the kernel refuses (a slow reader).
  Waking a thread per frame per client is what made this design slow
  (benchmarks/results.md).  A flag, ``sending``, makes sure only one thread
  sends to a client at a time, so frames never overtake each other.
* A *housekeeping* thread ticks once a second (:meth:`ServerBase._tick`):
  the core's join and idle timeouts, and the deadline of every close.
* A connection refused at the door (server full, too many from one address)
  gets its error frame and goodbye from a short-lived thread of its own, and
  only :data:`MAX_TURNING_AWAY` of those run at once: a flood of connections
  to a full server cannot make threads without bound.  Past that they are
  closed without a word.
* A thread that cannot be started (a container's limit on processes, say)
  costs that one connection, never the server: it is refused and logged, and
  the accept loop goes on -- as CPython's :mod:`socketserver` does.
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
import threading
import time
from collections.abc import Callable, Iterable

from chat.server.base import (
    HOUSEKEEPING_INTERVAL,
    RECV_BYTES,
    Connection,
    ServerBase,
    host_port,
    set_nodelay,
)
from chat.tls import TLSChannel

__all__ = ["MAX_TURNING_AWAY", "ChatServer"]

log = logging.getLogger(__name__)

#: Refused connections (server full, too many from one address) being told so
#: at once, each by a short-lived thread.  More are closed without a word.
MAX_TURNING_AWAY = 16

#: ``send`` flag for "do not wait" (Linux, macOS); 0 where missing (Windows):
#: then every frame goes through the writer thread.
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)

#: Rounds of the fast path before the writer thread takes over (a flood).
_FAST_ROUNDS = 3


class _ThreadedConnection(Connection):
    """A client of the threaded engine: its socket, its two threads, its writer's wake-up."""

    __slots__ = (
        "aborted",
        "fast",
        "reader",
        "sending",
        "sock",
        "sock_closed",
        "sock_lock",
        "stream",
        "wake",
        "writer",
    )

    def __init__(self, sock: socket.socket, address: tuple[str, int], lock: threading.Lock) -> None:
        super().__init__(address)
        self.sock = sock
        self.stream: socket.socket | TLSChannel = sock  # what recv/sendall go through
        self.fast = bool(_DONTWAIT)  # plain TCP: queuing threads may send (not over TLS)
        self.wake = threading.Condition(lock)  # the writer waits here, on the server's lock
        self.sending = False  # a thread is sending what it took from the outbox
        self.aborted = False  # drop the outbox and close now
        self.reader: threading.Thread | None = None
        self.writer: threading.Thread | None = None
        self.sock_lock = threading.Lock()
        self.sock_closed = False

    def shutdown(self, how: int) -> None:
        """``shutdown`` wakes a thread blocked in ``recv``/``sendall``; ``close`` would not."""
        with self.sock_lock:
            if not self.sock_closed:
                try:
                    self.sock.shutdown(how)
                except OSError:
                    pass  # the peer is already gone

    def close_socket(self) -> None:
        with self.sock_lock:
            if not self.sock_closed:
                self.sock_closed = True
                self.sock.close()


class ChatServer(ServerBase):
    """A chat server with a reader and a writer thread per client, around one lock.

    The arguments and the API are :class:`chat.server.base.ServerBase`'s,
    shared by every engine::

        with ChatServer("127.0.0.1", 0) as server:
            print(server.address)
    """

    def _init_engine(self) -> None:
        self._lock = threading.Lock()  # guards the core, every outbox and the sets below
        self._cut: list[_ThreadedConnection] = []  # aborted: shut their sockets after the lock
        self._turning_away: set[_ThreadedConnection] = set()
        self._threads: list[threading.Thread] = []

    def _start_serving(self) -> None:
        for target, name in ((self._accept_loop, "accept"), (self._housekeeping, "housekeeping")):
            thread = threading.Thread(target=target, name=f"chat-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def usernames(self) -> list[str]:
        with self._lock:
            return self.core.usernames

    # -- the one lock, and the socket work done after releasing it

    def _locked(self, work: Callable[..., object], *args: object) -> None:
        """Run ``work`` under the lock, then do the socket work it caused, unlocked.

        ``work`` changes the core and the outboxes (through :meth:`_perform`);
        afterwards, with the lock released, this thread sends what it queued
        (the fast path) and cuts off the connections that were aborted.
        """
        with self._lock:
            work(*args)
            sends = self._take_sends()
            cut, self._cut = self._cut, []
        self._send_now(sends)
        for conn in cut:
            conn.shutdown(socket.SHUT_RDWR)

    def _from_thread(self, work: Callable[..., object], *args: object) -> None:
        self._locked(work, *args)  # any thread may run the core, under the lock

    def _feed(self, conn: _ThreadedConnection, data: bytes) -> None:
        self._perform(self.core.receive(conn, data))

    def _take_sends(self) -> list[tuple[_ThreadedConnection, bytes]]:
        """Under the lock: take what the ready connections' outboxes hold, to send unlocked."""
        ready, self._ready = self._ready, []
        sends = []
        for conn in ready:
            if conn.sending or conn.aborted or not conn.out:
                continue  # someone is sending to it, and will look again afterwards
            if conn.fast:
                sends.append((conn, conn.take()))
                conn.sending = True
            else:
                conn.wake.notify()
        return sends

    def _send_now(self, sends: list[tuple[_ThreadedConnection, bytes]]) -> None:
        """Hand frames to the kernel from this thread, never waiting (``MSG_DONTWAIT``).

        Waking the writer thread for every frame costs far more than the send
        itself -- two context switches and a GIL hand-over -- and a broadcast
        to N clients would wake N threads.  So the thread that queued frames
        sends them itself, with a send that takes what fits in the socket
        buffer and returns at once.  What does not fit (a client that reads
        slowly) goes back to the front of the outbox, for the writer thread,
        which may block in ``sendall`` without holding anyone up.
        """
        for round_ in range(_FAST_ROUNDS):
            if not sends:
                return
            results = []
            for conn, data in sends:
                try:
                    sent = conn.sock.send(data, _DONTWAIT)
                except OSError:  # the buffer is full, or the peer is gone: the writer finds out
                    sent = 0
                results.append((conn, data, sent))
            sends = []
            with self._lock:
                for conn, data, sent in results:
                    conn.sending = False
                    if conn.aborted:
                        continue
                    if sent < len(data):
                        conn.put_back(data[sent:])
                        conn.wake.notify()
                    elif conn.out and round_ + 1 < _FAST_ROUNDS:
                        sends.append((conn, conn.take()))  # more came meanwhile
                        conn.sending = True
                    elif conn.out or conn.closing:
                        conn.wake.notify()  # the rest, or the goodbye, is the writer's

    # -- what the shared connection model asks of an engine (called under the lock)

    def _start_close(self, conn: Connection) -> None:
        assert isinstance(conn, _ThreadedConnection)
        conn.wake.notify()  # the writer sends what is left, then the FIN

    def _abort(self, conn: Connection) -> None:
        assert isinstance(conn, _ThreadedConnection)
        if conn.aborted:
            return
        conn.aborted = True
        conn.drop_outbox()
        conn.wake.notify()
        self._cut.append(conn)  # its socket is shut once the lock is released

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
                # Out of file descriptors, say: one line now and then, not one per try.
                self._log.log(
                    "accept", logging.ERROR, "accept() failures", "accept() failed: %s", exc
                )
                time.sleep(0.1)
                continue
            try:
                self._serve(sock, address)
            except Exception:  # a bug must cost this connection only, never the server
                log.exception("Could not serve a connection from %s", address)
                sock.close()

    def _serve(self, sock: socket.socket, address: tuple[str, int]) -> None:
        sock.settimeout(None)
        set_nodelay(sock)
        conn = _ThreadedConnection(sock, address, self._lock)
        if self.ssl_context is not None:
            # No I/O yet: the reader thread runs the handshake.  Until then
            # nothing may be sent, not even by the fast path.
            conn.stream = TLSChannel(sock, self.ssl_context, server_side=True)
            conn.fast = False
        with self._lock:
            if self._stopping.is_set():
                sock.close()
                return
            admitted = self._open(conn)
            crowded = not admitted and len(self._turning_away) >= MAX_TURNING_AWAY
            if crowded:  # a flood of connections to a full server: no words to spare
                self._abort(conn)
                self._forget(conn)
            elif not admitted:
                self._turning_away.add(conn)
        if admitted:
            self._start_thread(conn, "reader", self._read_loop)
        elif crowded:
            conn.close_socket()
        else:
            self._start_thread(conn, "refuse", self._turn_away)

    def _start_thread(
        self, conn: _ThreadedConnection, kind: str, target: Callable[..., None]
    ) -> bool:
        """Start one of ``conn``'s threads; if the system refuses, close ``conn`` alone."""
        name = host_port(str(conn.address[0]), conn.address[1])
        thread = threading.Thread(target=target, args=(conn,), name=f"chat-{kind}-{name}")
        thread.daemon = True
        if kind == "reader":
            conn.reader = thread
        elif kind == "writer":
            conn.writer = thread
        try:
            thread.start()
            return True
        except RuntimeError as exc:  # "can't start new thread": a limit on tasks or memory
            self._log.log(
                "threads",
                logging.ERROR,
                "connections refused for want of threads",
                "Cannot start a thread for %s (%s): closing that connection",
                name,
                exc,
            )
            if kind != "writer":  # a writer's reader is running, and cleans up itself
                self._locked(self._lost, conn, "no thread to serve it")
                with self._lock:
                    self._turning_away.discard(conn)
                conn.close_socket()
                self._locked(self._forget, conn)
            return False

    def _read_loop(self, conn: _ThreadedConnection) -> None:
        """Feed whatever the client sends to the core, until either side ends it."""
        reason = "connection closed by client"
        try:
            if isinstance(conn.stream, TLSChannel):  # handshake here, never in the accept loop
                try:
                    conn.stream.handshake(self.limits.tls_handshake_timeout)
                except OSError as exc:
                    reason = self._log_tls_failure(conn, exc)
                    return  # the finally clause cleans up
            if not self._start_thread(conn, "writer", self._write_loop):
                reason = "no thread to serve it"
                return
            while not conn.closing:
                data = conn.stream.recv(RECV_BYTES)
                if not data:
                    break
                self._locked(self._feed, conn, data)
            else:
                reason = "closed by server"
                _drain(conn.sock, conn.close_by)
        except OSError as exc:
            reason = f"connection lost: {exc.strerror or exc}"
        finally:
            self._finish(conn, reason)

    def _write_loop(self, conn: _ThreadedConnection) -> None:
        """Send what waits in the outbox, at the client's pace, until the goodbye."""
        try:
            with self._lock:
                while True:
                    while not conn.aborted and (conn.sending or not (conn.out or conn.closing)):
                        conn.wake.wait()
                    if conn.aborted:
                        return
                    if not conn.out:  # closing, and everything was sent
                        break
                    data = conn.take()
                    conn.sending = True  # until sent, nobody may send past it
                    self._lock.release()
                    try:
                        conn.stream.sendall(data)  # may block: this client's pace, unlocked
                    finally:
                        self._lock.acquire()
                        conn.sending = False
            if isinstance(conn.stream, TLSChannel):
                conn.stream.close_notify()  # TLS says goodbye before TCP does
            conn.shutdown(socket.SHUT_WR)  # a clean FIN after our last frame
        except OSError:
            conn.shutdown(socket.SHUT_RDWR)  # peer gone: make the reader notice too

    def _turn_away(self, conn: _ThreadedConnection) -> None:
        """A refused connection: say why (inside TLS, if any), say goodbye, and close."""
        try:
            if isinstance(conn.stream, TLSChannel):
                conn.stream.handshake(self.limits.tls_handshake_timeout)
            self._write_loop(conn)
            _drain(conn.sock, conn.close_by)
        except OSError:
            pass
        finally:
            with self._lock:
                self._turning_away.discard(conn)
            conn.close_socket()
            self._locked(self._forget, conn)

    def _finish(self, conn: _ThreadedConnection, reason: str) -> None:
        """The reader is done: tell the core, let the writer flush, close, forget."""
        self._locked(self._input_ended, conn, reason)
        writer = conn.writer
        if writer is not None and writer.ident is not None:  # it was started
            writer.join(max(0.0, conn.close_by - time.monotonic()))
        self._locked(self._abort, conn)
        conn.close_socket()
        self._locked(self._forget, conn)

    def _housekeeping(self) -> None:
        while not self._stopping.wait(HOUSEKEEPING_INTERVAL):
            self._locked(self._tick)

    # -- stopping

    def _stop_serving(self) -> None:
        assert self._listener is not None
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept() on Linux
        except OSError:
            pass  # macOS and Windows refuse it on a listening socket: the timeout wakes it
        self._listener.close()
        self._locked(self._begin_shutdown)
        with self._lock:
            connections = list(self._connections)
        _join_all(_threads_of(connections), self._deadline - self._timeout / 2)
        self._locked(self._abort_all)
        _join_all([*_threads_of(connections), *self._threads], self._deadline)
        for conn in connections:
            conn.close_socket()


# -- helpers


def _drain(sock: socket.socket, until: float) -> None:
    """Read and discard until the peer closes or time ``until`` (lingering close)."""
    try:
        while (remaining := until - time.monotonic()) > 0:
            sock.settimeout(remaining)
            if not sock.recv(RECV_BYTES):
                return
    except OSError:
        return


def _threads_of(connections: Iterable[_ThreadedConnection]) -> list[threading.Thread]:
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
