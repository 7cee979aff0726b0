"""What the two event-loop engines share: one background thread and the public API.

:class:`chat.server.ChatServer` runs a thread per client.  The ``selectors``
engine (:mod:`chat.server_selectors`) and the ``asyncio`` engine
(:mod:`chat.server_asyncio`) run *one* thread that waits for whichever socket
is ready and serves it, so they need no lock around the chat core: only that
thread ever calls it.  This module gives both the same outside as
``ChatServer`` -- ``start()``, ``address``, ``running``, ``usernames()``,
``stop()``, ``serve_forever()``, ``with`` -- so tests, notebooks and the
benchmark can swap engines freely (see :data:`chat.server.ENGINES`).

A subclass writes three methods: :meth:`BackgroundServer._prepare` (set-up in
the caller's thread, before the loop thread starts), :meth:`BackgroundServer._run`
(the loop; it must return once :attr:`BackgroundServer._stopping` is set, after
saying goodbye to every client, no later than :attr:`BackgroundServer._deadline`)
and :meth:`BackgroundServer._wake` (called from another thread by ``stop()``
to interrupt the loop's wait).
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time

from chat.core import ChatCore
from chat.limits import Limits
from chat.server import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    _listen,
    _running,
    _running_lock,
    _stop_earlier_server,
)

__all__ = ["BackgroundServer"]

log = logging.getLogger("chat.server")


class BackgroundServer:
    """A chat server whose connections are all served by one background thread."""

    #: The engine's name in :data:`chat.server.ENGINES`; also names the thread.
    engine = "loop"

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
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._timeout = 2.0  # set by stop(): the whole shutdown's budget
        self._deadline = 0.0  # set by stop(): when every socket must be closed

    # -- what subclasses write

    def _prepare(self) -> None:
        """Set-up that may fail, done in the caller's thread before ``_run`` starts."""

    def _run(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _wake(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- starting and stopping

    def start(self) -> BackgroundServer:
        """Bind, listen and start serving in a background thread."""
        if self._listener is not None:
            raise RuntimeError("this server was already started")
        if self.port:
            _stop_earlier_server(self.port)
        self._listener = _listen(self.host, self.port, self.backlog)
        self._address = self._listener.getsockname()[:2]
        self.port = self._address[1]
        try:
            self._prepare()
        except BaseException:
            self._listener.close()
            raise
        with _running_lock:
            _running[self.port] = self  # type: ignore[assignment]
        self._thread = threading.Thread(target=self._main, name=f"chat-{self.engine}", daemon=True)
        self._thread.start()
        log.info("Chat server started on %s:%d", self.host, self.port)
        log.info("Waiting for connections...")
        return self

    def _main(self) -> None:
        try:
            self._run()
        except Exception:  # a bug: say so loudly rather than die silently
            log.exception("The %s engine crashed", self.engine)
        finally:
            self._stopped.set()

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the server listens on; the real port if you asked for 0."""
        return self._address

    @property
    def running(self) -> bool:
        return self._listener is not None and not self._stopped.is_set()

    def usernames(self) -> list[str]:
        """Who is joined right now.

        Only the loop thread changes the core, and copying a dictionary's keys
        is one step the GIL never interrupts, so no lock is needed to read it.
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
        """Say goodbye to every client, close every socket, join the thread.

        Half the time is for clients to receive their goodbye; then every
        remaining socket is closed hard.  Safe to call more than once.
        """
        if self._listener is None or self._thread is None:
            return  # never started: nothing to stop
        if self._stopping.is_set():
            self._stopped.wait(timeout)
            return
        self._timeout = timeout
        self._deadline = time.monotonic() + timeout
        self._stopping.set()
        log.info("Shutting down...")
        self._wake()
        self._thread.join(max(0.0, self._deadline - time.monotonic()) + 0.5)
        if self._thread.is_alive():
            log.error("The %s engine did not stop within %g s", self.engine, timeout)
        with _running_lock:
            if _running.get(self.port) is self:
                del _running[self.port]
        self._stopped.set()
        log.info("Server stopped")

    def __enter__(self) -> BackgroundServer:
        if self._listener is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        host, port = self.address
        return f"<{type(self).__name__} {host}:{port} {state}>"
