"""What every server engine shares: listening, the public API, and the connection model.

Three engines serve the same chat rules (:class:`chat.core.ChatCore`): a
thread per client (:mod:`chat.server.engine_threads`), and one thread with an
event loop, written with :mod:`selectors` (:mod:`chat.server.engine_selectors`)
or :mod:`asyncio` (:mod:`chat.server.engine_asyncio`).  They differ only in
*how* bytes move.  Everything else is the same for all three, so it is written
once, here:

* **The outside** -- ``start()``, ``address``, ``running``, ``usernames()``,
  ``stop()``, ``serve_forever()``, ``with`` -- so that tests, notebooks and the
  benchmark swap engines freely (:class:`ServerBase`).
* **Counting.**  A connection counts from the moment it is accepted until its
  socket is closed: during a TLS handshake, while it is being closed, always.
  Otherwise connections the core no longer sees could pile up unseen.
* **One bounded outbox per connection** (:class:`Connection`): the core's
  frames are *appended* to the receivers' outboxes and sent later, by the
  engine, at each receiver's pace.  Why not send at once?  Because sending to a
  client that stopped reading blocks (or, non-blocking, fails), and nobody
  else may wait for it.  Why bounded?  A client that never reads would
  otherwise make us buffer without end: past
  :attr:`chat.limits.Limits.max_send_queue_bytes` it is disconnected.
* **Carrying out the core's actions** (:meth:`ServerBase._perform`): ``Send``
  appends to outboxes, ``Close`` starts a close with a deadline.
* **Every close has a deadline** (:data:`chat.limits.CLOSE_TIMEOUT`, 2 s): flush
  what is queued, say goodbye (a FIN), wait for the peer to hang up -- and if
  it does not, cut it off.  :meth:`ServerBase._tick` enforces the deadlines and
  the core's timeouts, once a second.
* **The history store** (:mod:`chat.store`): relayed messages (``Store``) go to
  its writer thread; what the core asks of it (``Fetch``) is answered on that
  thread and handed back to the core where the engine runs it
  (:meth:`ServerBase._from_thread`), so no engine ever waits for the disk.

An engine writes how it starts and stops serving, how it sends what waits in
the outboxes (:attr:`ServerBase._ready` lists the connections that have some),
how it starts a close, how it aborts a connection, and how another thread
hands it work (``_from_thread``); it calls back here when a connection is
accepted (``_open``), when its peer has finished (``_input_ended``) and once
its socket is closed (``_forget``).  The bookkeeping here is
not thread-safe: the threaded engine calls it under its one lock; the event
loops call it from their one thread.

**A gateway** is another way into the same core, beside the engine: the
WebSocket gateway (:mod:`chat.web.gateway`, ``web_port=``) is one.  It runs
its own thread, calls the core only through :meth:`ServerBase._from_thread`,
and its clients are :class:`Connection` objects like any other -- counted, with
the same limits and the same bounded outbox -- except that each names its
gateway (:attr:`Connection.gateway`).  The engine never sees them: what the
core queues for them, their closes and their aborts go to their gateway
(:class:`Gateway`, three methods), and the engines' own loops stay as they were.
"""

from __future__ import annotations

import errno
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from chat.core import Action, ChatCore, Close, Fetch, Send, Store
from chat.limits import Limits
from chat.logthrottle import LogThrottle
from chat.protocol import DEFAULT_HOST, DEFAULT_PORT
from chat.store import MEMORY, HistoryStore

if TYPE_CHECKING:  # chat.web imports this module; it is imported only when web_port is set
    from chat.cluster import ClusterConfig
    from chat.cluster.broker import Broker
    from chat.web.gateway import WebGateway

__all__ = [
    "LOG_FORMAT",
    "AddressInUseError",
    "Connection",
    "EventLoopServer",
    "Gateway",
    "ServerBase",
    "host_port",
    "listen",
    "set_nodelay",
]

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s - %(levelname)s - %(message)s"

#: Bytes asked of each ``recv``.  Larger reads mean fewer system calls; the
#: frame decoder copes with any size.
RECV_BYTES = 64 * 1024

#: How often the core's join and idle timeouts and the close deadlines are checked.
HOUSEKEEPING_INTERVAL = 1.0


class AddressInUseError(OSError):
    """The port is taken, most likely by another server that is still running."""


def listen(host: str, port: int, backlog: int) -> socket.socket:
    """Create, bind and listen: the three steps every TCP server starts with.

    :func:`socket.create_server` does them with the right options for each
    platform: ``SO_REUSEADDR`` on POSIX, so that a restarted server binds its
    port at once even while connections from the previous run linger in
    ``TIME_WAIT`` -- but not on Windows, where that option would let a second
    server take over a port in use.  An IPv6 address such as ``::`` listens on
    IPv6, and on IPv4 too where the system allows one socket to do both
    ("dual stack").
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    dual_stack = family == socket.AF_INET6 and host in ("::", "") and socket.has_dualstack_ipv6()
    try:
        return socket.create_server(
            (host, port), family=family, backlog=backlog, dualstack_ipv6=dual_stack
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise AddressInUseError(
                exc.errno,
                f"Port {port} on {host} is already in use -- is another chat server running? "
                "Stop it, or choose another port (--port, or port=0 for any free port).",
            ) from None
        raise


def set_nodelay(sock: socket.socket) -> None:
    """Send each frame as soon as it is written: set ``TCP_NODELAY`` on an accepted socket.

    Chat frames are small.  Without this option, Nagle's algorithm holds a
    small segment back until the previous one is acknowledged -- tens of
    milliseconds, with delayed acknowledgements -- in the hope of sending
    fewer, fuller packets.  A chat wants each line to leave at once.
    """
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def host_port(host: str, port: int) -> str:
    """``127.0.0.1:12345``, or ``[::1]:12345`` for IPv6, as people write addresses."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Connection:
    """One client, as every engine sees it: its address, its outbox, its close.

    The outbox is ``out``, a list of encoded frames not yet handed to the
    kernel, and ``queued``, their size in bytes.  Appending to a list is cheap
    and a broadcast appends the *same* bytes object to every receiver's list
    (the core encoded it once); the engine joins a list into one buffer when it
    sends, so many frames cost one system call.
    """

    __slots__ = ("address", "close_by", "closed", "closing", "out", "queued")

    #: Who sends this connection's frames: ``None`` for the engine's own
    #: connections (it finds them in :attr:`ServerBase._ready`), or the
    #: :class:`Gateway` a client came through (a subclass sets it).
    gateway: Gateway | None = None

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.out: list[bytes] = []
        self.queued = 0
        self.closing = False  # the core closed it: nothing more is queued; flush, then close
        self.close_by = 0.0  # once closing: when it is cut off, whether flushed or not
        self.closed = False  # its socket is closed; the engine has forgotten it

    def take(self) -> bytes:
        """Empty the outbox; return what was in it as one buffer."""
        out = self.out
        data = out[0] if len(out) == 1 else b"".join(out)
        self.out = []
        self.queued = 0
        return data

    def put_back(self, rest: bytes) -> None:
        """The kernel took only part of what :meth:`take` gave: keep the rest, first in line."""
        if rest:
            self.out.insert(0, rest)
            self.queued += len(rest)

    def drop_outbox(self) -> None:
        """Nothing more will be sent: empty the outbox, and let nothing new in.

        ``closing`` makes :meth:`ServerBase._perform` pass this connection by,
        so frames the core still addresses to it are not queued.
        """
        self.closing = True
        self.out = []
        self.queued = 0

    def __repr__(self) -> str:
        return f"<connection {host_port(str(self.address[0]), int(self.address[1]))}>"


class Gateway(Protocol):
    """What a gateway does for its own connections, called where the core runs.

    The same three jobs an engine does for its connections (see the module
    docstring): send what waits in outboxes, start a close, abort.
    """

    def send_outboxes(self, conns: list[Connection]) -> None:
        """These connections have frames waiting: take them (now) and send them (soon)."""

    def start_close(self, conn: Connection) -> None:
        """``conn`` is closing: send what its outbox holds, then say goodbye."""

    def abort(self, conn: Connection) -> None:
        """Close ``conn`` now, dropping whatever is still queued for it."""


class ServerBase:
    """A chat server's public API and the machinery every engine shares.

    ``start()`` returns once the server is listening, so a client may connect
    straight away.  Port 0 asks the operating system for any free port; read it
    back from :attr:`address`.  Use ``with ...(...) as server:`` or call
    :meth:`stop`; :meth:`serve_forever` blocks until Ctrl+C instead.

    ``limits`` sets every bound (:class:`chat.limits.Limits`); ``ssl_context``
    (see :func:`chat.tls.server_context`) makes every connection use TLS.
    ``db`` is where room history is kept (:mod:`chat.store`): a file, or
    ``":memory:"`` (the default from Python: nothing outlives the server), or
    ``None`` for no store at all (rooms remember only their latest messages).

    ``web_port`` also serves the chat page and a WebSocket endpoint on that
    port (:mod:`chat.web`; needs the ``websockets`` package; 0: any free port,
    read it back from :attr:`web_address`), over TLS too when ``ssl_context``
    is set.  ``web_origins`` are the other web origins whose pages may connect
    (``"https://chat.example.org"``); the page's own origin always may.
    ``redis``: a Redis URL (or a :class:`chat.cluster.ClusterConfig`) makes this
    server one node of a chat shared by every server on that Redis
    (:mod:`chat.cluster`); history then lives in Redis, and ``db`` is not used.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        limits: Limits | None = None,
        backlog: int = 128,
        ssl_context: ssl.SSLContext | None = None,
        db: str | None = MEMORY,
        web_port: int | None = None,
        web_origins: Iterable[str] = (),
        redis: str | ClusterConfig | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.limits = limits or Limits()
        self.backlog = backlog
        self.ssl_context = ssl_context
        self.store = (
            HistoryStore(db, retention=self.limits.history_retention)
            if db is not None and redis is None
            else None
        )
        self.cluster: Broker | None = None  # several servers, one chat (chat.cluster)
        if redis is not None:
            from chat.cluster import make_broker  # redis-py is loaded only when asked for

            self.cluster = make_broker(redis, self)
        self.core = (
            self.cluster.core
            if self.cluster is not None
            else ChatCore(self.limits, stored_history=self.store is not None)
        )
        self._listener: socket.socket | None = None
        self._address: tuple[str, int] = (host, port)
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._timeout = 2.0  # set by stop(): the whole shutdown's budget
        self._deadline = 0.0  # set by stop(): when every socket must be closed
        self._connections: set[Connection] = set()  # every one holding a socket
        self._closing: set[Connection] = set()  # every one with a close deadline
        self._ready: list[Connection] = []  # those with frames waiting in their outbox
        self._log = LogThrottle(log)  # conditions (accept failed, ...), summarised
        self.web_port = web_port
        self.web_origins = tuple(web_origins)
        self._gateway: WebGateway | None = None  # the WebSocket gateway, when web_port is set
        self._gateway_connections: set[Connection] = set()  # its clients, counted like ours
        self._gateway_ready: list[Connection] = []  # those of them with frames waiting
        self._init_engine()

    # -- what engines write

    def _init_engine(self) -> None:
        """Make the engine's own state, with the server: no I/O, nothing that can fail.

        Whatever the public API reads must exist before :meth:`start` (a
        server never started still answers :meth:`usernames`); what needs the
        listening socket is made by :meth:`_start_serving`.
        """

    def _start_serving(self) -> None:  # pragma: no cover - abstract
        """Start serving ``self._listener`` in background threads."""
        raise NotImplementedError

    def _stop_serving(self) -> None:  # pragma: no cover - abstract
        """Say goodbye to every client; every socket and thread done by ``self._deadline``."""
        raise NotImplementedError

    def _start_close(self, conn: Connection) -> None:  # pragma: no cover - abstract
        """``conn`` is closing: send what its outbox holds, then a FIN, then wait for the peer."""
        raise NotImplementedError

    def _abort(self, conn: Connection) -> None:  # pragma: no cover - abstract
        """Close ``conn`` now, dropping whatever is still queued for it."""
        raise NotImplementedError

    def _from_thread(self, work: Callable[..., object], *args: object) -> None:
        """Run ``work(*args)`` where the engine runs the core, from another thread.

        The history store answers on its own thread; the answer must be
        handled where the core is (under the lock, or in the loop's thread).
        """
        raise NotImplementedError  # pragma: no cover - abstract

    # -- starting and stopping

    def start(self) -> ServerBase:
        """Bind, listen and start serving in the background."""
        if self._listener is not None:
            raise RuntimeError("this server was already started")
        if self.store is not None:  # a broken database is reported here, before listening
            self.core.continue_ids(self.store.open())
        try:
            self._listener = listen(self.host, self.port, self.backlog)
            self._address = self._listener.getsockname()[:2]
            self.port = self._address[1]
            if self.web_port is not None:  # its port is taken before anything starts
                from chat.web.gateway import WebGateway  # optional: needs websockets

                self._gateway = WebGateway(self, self.web_port, origins=self.web_origins)
            if self.cluster is not None:  # who is online, before anyone is accepted
                self.cluster.connect(self._address)
            self._start_serving()
        except BaseException:  # Ctrl+C too: nothing half-started may outlive start()
            self._release()
            raise
        if self.cluster is not None:
            self.cluster.run()
        log.info("Chat server started on %s", host_port(self.host, self.port))
        if self._gateway is not None:
            self._gateway.start()
        log.info("Waiting for connections...")
        return self

    def _release(self) -> None:
        """:meth:`start` failed: close whatever it had opened, in any state."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._gateway is not None:
            self._gateway.close()
            self._gateway = None
        if self.store is not None:
            self.store.close()
        if self.cluster is not None:
            self.cluster.stop()  # returns at once if it never connected

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the server listens on; the real port if you asked for 0."""
        return self._address

    @property
    def web_address(self) -> tuple[str, int] | None:
        """The (host, port) of the web page and WebSocket endpoint, if ``web_port`` was set."""
        return self._gateway.address if self._gateway is not None else None

    @property
    def running(self) -> bool:
        return self._listener is not None and not self._stopped.is_set()

    def usernames(self) -> list[str]:
        """Who is joined right now.

        Any thread may ask: :attr:`chat.core.ChatCore.usernames` says why.
        """
        return self.core.usernames

    def serve_forever(self) -> None:
        """Start if needed, then block until :meth:`stop` (or Ctrl+C) stops us."""
        if self._listener is None:
            self.start()
        try:
            while not self._stopped.wait(0.5):  # a timeout lets Ctrl+C through
                pass
        except KeyboardInterrupt:
            log.info("Interrupted")
        finally:
            self.stop()

    def stop(self, timeout: float = 2.0) -> None:
        """Say goodbye to every client, close every socket, join every thread.

        Half the time is for clients to receive their goodbye; then every
        remaining socket is closed hard.  Safe to call more than once.
        """
        if self._listener is None:
            return  # never started: nothing to stop
        if self._stopping.is_set():
            self._stopped.wait(timeout)
            return
        self._timeout = timeout
        self._deadline = time.monotonic() + timeout
        self._stopping.set()  # after the deadline is set: engine threads read it
        log.info("Shutting down...")
        if self.cluster is not None:
            self.cluster.stop(timeout / 2)  # first the other servers: they drop our users at once
        self._stop_serving()
        if self._gateway is not None:  # its clients were told goodbye with everyone
            self._gateway.stop()
        if self.store is not None:
            self.store.close()  # what it holds is written first
        self._stopped.set()
        log.info("Server stopped")

    def __enter__(self) -> ServerBase:
        if self._listener is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {host_port(*self.address)} {state}>"

    # -- the connection model, shared by every engine

    def _open(self, conn: Connection) -> bool:
        """``conn`` was just accepted: count it, and let the core admit or refuse it.

        Returns whether the core admitted it.  A refused connection is counted
        too, until its socket is closed: it has been told why ("Server full")
        and is on its way out, with a deadline like every close.
        """
        held = len(self._connections) + len(self._gateway_connections)
        closing = held - self.core.connection_count
        if conn.gateway is None:
            self._connections.add(conn)
        else:
            self._gateway_connections.add(conn)
        self._perform(self.core.connect(conn, conn.address, closing=closing))
        return self.core.is_open(conn)

    def _perform(self, actions: list[Action]) -> None:
        """Carry out the core's actions: queue frames in outboxes, start closes.

        No socket is touched here; the engine sends what waits in the outboxes
        of :attr:`_ready` afterwards.  This is the hot loop of a broadcast --
        one append per receiver -- so it is kept plain.  A gateway's clients
        wait in :attr:`_gateway_ready` instead, handed to it at the end.
        """
        limit = self.limits.max_send_queue_bytes
        ready = self._ready
        dropped: list[Action] = []  # what the core says when an overflowing client is dropped
        for action in actions:
            if type(action) is not Send:
                self._perform_other(action)
                continue
            data = action.data
            size = len(data)
            for conn in action.to:
                if conn.closing:
                    continue
                queued = conn.queued
                if queued + size > limit:
                    dropped += self._overflow(conn)
                    continue
                if not queued:
                    if conn.gateway is None:
                        ready.append(conn)
                    else:
                        self._gateway_ready.append(conn)
                conn.out.append(data)
                conn.queued = queued + size
        if dropped:  # after everything else, so that every receiver sees one order
            self._perform(dropped)
        if self._gateway_ready:
            self._flush_gateway()

    def _flush_gateway(self) -> None:
        """Hand the gateway its clients that have frames waiting (a server has one gateway)."""
        conns, self._gateway_ready = self._gateway_ready, []
        assert self._gateway is not None
        self._gateway.send_outboxes(conns)

    def _perform_other(self, action: Action) -> None:
        """The rarer actions: a close, and what goes to the history store."""
        if isinstance(action, Close):
            self._close_soon(action.conn)
        elif isinstance(action, Store):
            if self.store is not None:
                self.store.append(action.frame)
        elif isinstance(action, Fetch):
            if self.cluster is not None:
                self.cluster.fetch(action)
                return
            assert self.store is not None  # a core without a store never asks for history
            self.store.fetch(
                action.room,
                before=action.before,
                after=action.after,
                limit=action.limit,
                reply=lambda frames, more: self._from_thread(
                    self._history_arrived, action, frames, more
                ),
            )
        elif self.cluster is not None:  # Claim, Release, Publish: for the whole chat
            self.cluster.handle(action)

    def _history_arrived(self, fetch: Fetch, frames: list[dict[str, Any]], more: bool) -> None:
        """Where the core runs: the store's answer goes to the core."""
        self._perform(self.core.history_fetched(fetch, frames, more))

    def _overflow(self, conn: Connection) -> list[Action]:
        """``conn`` stopped reading and its outbox is full: drop it, tell the core."""
        self._log.log(
            "send queue",
            logging.WARNING,
            "slow clients dropped",
            "Send queue exceeded for %r: disconnecting it",
            conn,
        )
        self._abort_any(conn)
        return self.core.disconnect(conn, "send queue exceeded")

    def _close_soon(self, conn: Connection) -> None:
        """Start closing ``conn`` politely, with a deadline (``Limits.close_timeout``)."""
        if conn.closing:
            return
        conn.closing = True
        conn.close_by = time.monotonic() + self.limits.close_timeout
        if self._stopping.is_set():  # stop() gives half its time to goodbyes
            conn.close_by = min(conn.close_by, self._deadline - self._timeout / 2)
        self._closing.add(conn)
        if conn.gateway is None:
            self._start_close(conn)
        else:
            conn.gateway.start_close(conn)

    def _abort_any(self, conn: Connection) -> None:
        """Abort ``conn``, whether the engine's or a gateway's."""
        if conn.gateway is None:
            self._abort(conn)
        else:
            conn.gateway.abort(conn)

    def _log_tls_failure(self, peer: object, exc: BaseException, *, key: str = "tls") -> str:
        """Log that a TLS handshake with ``peer`` failed; return the reason for the core.

        Logged under ``key``, summarised (:mod:`chat.logthrottle`): anyone can
        open connections that fail their handshake, as fast as they like.
        """
        detail = str(exc) or type(exc).__name__  # a reset says nothing more
        self._log.log(
            key,
            logging.WARNING,
            "failed TLS handshakes",
            "TLS handshake with %s failed: %s",
            peer,
            detail,
        )
        return f"TLS handshake failed: {detail}"

    def _lost(self, conn: Connection, reason: str) -> None:
        """The peer hung up or the connection failed: tell the core (once is enough)."""
        self._perform(self.core.disconnect(conn, reason))

    def _input_ended(self, conn: Connection, reason: str = "connection closed by client") -> None:
        """Nothing more will come from ``conn``'s peer: tell the core, then close politely.

        Politely, with a deadline, rather than at once: a peer that sent its
        FIN has only stopped *sending*.  It may still be reading, and the
        core's last frames for it -- answers to what it sent just before --
        are flushed before our own FIN.
        """
        self._lost(conn, reason)
        self._close_soon(conn)

    def _forget(self, conn: Connection) -> None:
        """The engine has closed ``conn``'s socket: it no longer counts."""
        conn.closed = True
        conn.drop_outbox()
        self._connections.discard(conn)
        self._gateway_connections.discard(conn)
        self._closing.discard(conn)

    def _tick(self) -> None:
        """Once a second: the core's join and idle timeouts, then overdue closes."""
        self._perform(self.core.expire())
        self._expire_closes(time.monotonic())
        self._log.tick()

    def _expire_closes(self, now: float) -> None:
        """Cut off every connection whose close is past its deadline."""
        for conn in [c for c in self._closing if now >= c.close_by]:
            self._abort_any(conn)

    def _abort_all(self) -> None:
        """Stopping, and the goodbyes' time is up: close the engine's connections now.

        A gateway's clients are not among them: the gateway closes its own.
        """
        for conn in list(self._connections):
            self._abort(conn)

    def _begin_shutdown(self) -> None:
        """Tell every client goodbye and start closing every connection (stop() calls this)."""
        self._perform(self.core.shutdown())
        # Those the core had already forgotten too; a gateway's clients close with everyone.
        for conn in [*self._connections, *self._gateway_connections]:
            self._close_soon(conn)


class EventLoopServer(ServerBase):
    """A server whose connections are all served by one background thread.

    A subclass writes :meth:`_prepare` (set-up that may fail, in the caller's
    thread), :meth:`_run` (the loop; it must return once ``_stopping`` is set,
    after saying goodbye to every client, no later than ``_deadline``) and
    :meth:`_wake` (called from another thread by ``stop()`` to interrupt the
    loop's wait).  Only the loop thread touches the core and the connections,
    so no lock is needed.
    """

    #: The engine's name in :data:`chat.server.ENGINES`; also names the thread.
    engine = "loop"

    _thread: threading.Thread | None = None

    def _prepare(self) -> None:
        """Set-up that may fail, done in the caller's thread before ``_run`` starts."""

    def _run(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _wake(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _start_serving(self) -> None:
        self._prepare()
        self._thread = threading.Thread(target=self._main, name=f"chat-{self.engine}", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        try:
            self._run()
        except Exception:  # a bug: say so loudly rather than die silently
            log.exception("The %s engine crashed", self.engine)
        finally:
            self._stopped.set()

    def _stop_serving(self) -> None:
        assert self._thread is not None
        self._wake()
        self._thread.join(max(0.0, self._deadline - time.monotonic()) + 0.5)
        if self._thread.is_alive():
            log.error("The %s engine did not stop within %g s", self.engine, self._timeout)

    def _goodbyes_done(self, now: float) -> bool:
        """While stopping: True once every connection is closed, or time is up for them."""
        return not self._connections or now >= self._deadline
