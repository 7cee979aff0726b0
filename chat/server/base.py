"""What every server engine shares: the listening socket and the public API.

Three engines serve the same chat rules (:class:`chat.core.ChatCore`):
:class:`chat.server.ChatServer` runs a thread per client; the ``selectors``
engine (:mod:`chat.server.engine_selectors`) and the ``asyncio`` engine
(:mod:`chat.server.engine_asyncio`) run *one* thread that waits for whichever socket
is ready and serves it, so they need no lock around the core.  Outside they
are alike -- ``start()``, ``address``, ``running``, ``usernames()``,
``stop()``, ``serve_forever()``, ``with`` -- so tests, notebooks and the
benchmark can swap engines freely (see :data:`chat.server.ENGINES`).  That
common outside is :class:`ServerBase`, written once, here.

An engine writes two methods: :meth:`ServerBase._start_serving` (start its
threads; the socket is already listening) and :meth:`ServerBase._stop_serving`
(say goodbye to every client and close every socket by
:attr:`ServerBase._deadline`).  :class:`BackgroundServer` does that much for
the one-thread engines, which write ``_run`` (the loop) and ``_wake``.
"""

from __future__ import annotations

import errno
import logging
import socket
import ssl
import threading
import time
import weakref

from chat.core import ChatCore
from chat.limits import Limits
from chat.protocol import DEFAULT_HOST, DEFAULT_PORT

__all__ = [
    "LOG_FORMAT",
    "AddressInUseError",
    "BackgroundServer",
    "ServerBase",
    "listen",
]

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s - %(levelname)s - %(message)s"

#: Bytes asked of each ``recv``.  Larger reads mean fewer system calls; the
#: frame decoder copes with any size.
RECV_BYTES = 64 * 1024

#: After deciding to close a connection, read and discard what the peer still
#: sends for at most this long, so that our last frame (an error, say) reaches
#: it.  Closing a socket with unread input makes the kernel send a reset,
#: which can destroy data the peer has not read yet ("lingering close").
LINGER_SECONDS = 1.0

#: How often an engine asks the core to expire join and idle timeouts.
HOUSEKEEPING_INTERVAL = 1.0

# Servers running in this process, by port, so that starting a second server
# on the same port (re-running a notebook cell) stops the first one instead of
# failing with "Address already in use".
_running: weakref.WeakValueDictionary[int, ServerBase] = weakref.WeakValueDictionary()
_running_lock = threading.Lock()


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


def _stop_earlier_server(port: int) -> None:
    with _running_lock:
        earlier = _running.get(port)
    if earlier is not None and earlier.running:
        log.warning("Stopping the earlier server on port %d that this process started", port)
        earlier.stop()


class ServerBase:
    """A chat server's public API; engines fill in how connections are served.

    ``start()`` returns once the server is listening, so a client may connect
    straight away.  Port 0 asks the operating system for any free port; read it
    back from :attr:`address`.  Use ``with ...(...) as server:`` or call
    :meth:`stop`; :meth:`serve_forever` blocks until Ctrl+C instead.

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
        self.host = host
        self.port = port
        self.limits = limits or Limits()
        self.backlog = backlog
        self.ssl_context = ssl_context
        self.core = ChatCore(self.limits)
        self._listener: socket.socket | None = None
        self._address: tuple[str, int] = (host, port)
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._timeout = 2.0  # set by stop(): the whole shutdown's budget
        self._deadline = 0.0  # set by stop(): when every socket must be closed

    # -- what engines write

    def _start_serving(self) -> None:  # pragma: no cover - abstract
        """Start serving ``self._listener`` in background threads."""
        raise NotImplementedError

    def _stop_serving(self) -> None:  # pragma: no cover - abstract
        """Say goodbye to every client; every socket and thread done by ``self._deadline``."""
        raise NotImplementedError

    # -- starting and stopping

    def start(self) -> ServerBase:
        """Bind, listen and start serving in the background."""
        if self._listener is not None:
            raise RuntimeError("this server was already started")
        if self.port:
            _stop_earlier_server(self.port)
        self._listener = listen(self.host, self.port, self.backlog)
        self._address = self._listener.getsockname()[:2]
        self.port = self._address[1]
        try:
            self._start_serving()
        except BaseException:
            self._listener.close()
            self._listener = None
            raise
        with _running_lock:
            _running[self.port] = self
        log.info("Chat server started on %s:%d", self.host, self.port)
        log.info("Waiting for connections...")
        return self

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the server listens on; the real port if you asked for 0."""
        return self._address

    @property
    def running(self) -> bool:
        return self._listener is not None and not self._stopped.is_set()

    def usernames(self) -> list[str]:
        """Who is joined right now."""
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
        self._stop_serving()
        with _running_lock:
            if _running.get(self.port) is self:
                del _running[self.port]
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
        host, port = self.address
        return f"<{type(self).__name__} {host}:{port} {state}>"


class BackgroundServer(ServerBase):
    """A server whose connections are all served by one background thread.

    A subclass writes :meth:`_prepare` (set-up that may fail, in the caller's
    thread), :meth:`_run` (the loop; it must return once ``_stopping`` is set,
    after saying goodbye to every client, no later than ``_deadline``) and
    :meth:`_wake` (called from another thread by ``stop()`` to interrupt the
    loop's wait).
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

    def usernames(self) -> list[str]:
        """Who is joined right now.

        Only the loop thread changes the core, and copying a dictionary's keys
        is one step the GIL never interrupts, so no lock is needed to read it.
        """
        return self.core.usernames

    def _stop_serving(self) -> None:
        assert self._thread is not None
        self._wake()
        self._thread.join(max(0.0, self._deadline - time.monotonic()) + 0.5)
        if self._thread.is_alive():
            log.error("The %s engine did not stop within %g s", self.engine, self._timeout)
