"""The asyncio engine: one thread, an event loop, and an :class:`asyncio.Protocol`.

Run it with ``python -m chat.server --engine asyncio``.  Same rules as the other
engines (they all drive :class:`chat.core.ChatCore`) and the same connection
model (:mod:`chat.server.base`), written with the standard library's event loop.

What asyncio is: the event loop of :mod:`chat.server.engine_selectors`, written
once, well, by the standard library.  Its lowest public layer is a pair of
objects per connection: a *transport* (the socket, with a write buffer) and a
*protocol* whose methods the loop calls when something happens.  Those
callbacks are exactly the events our sans-I/O core wants:

==========================  ==============================================
asyncio calls               we do
==========================  ==============================================
``connection_made``         count the connection; ``core.connect``
``data_received(data)``     ``core.receive(conn, data)``
``eof_received``            the peer hung up: ``core.disconnect``, then close
``connection_lost``         the socket is gone: forget the connection
``pause_writing``           the transport's buffer is full: hold frames back
``resume_writing``          it drained: send what the outbox holds
==========================  ==============================================

No task or coroutine per client, nothing to cancel at shutdown, no ``await``
between receiving bytes and handling them.  (``async``/``await`` with streams
is the friendlier layer above this one; for a server whose work is "bytes in,
actions out" the callbacks fit better, and cost less.)

Sending: a broadcast appends the frame to each receiver's outbox, and *one*
flush at the end of this turn of the loop (``loop.call_soon``) writes each
outbox to its transport in one ``write``.  We never wait for a receiver
(``drain``): that would make the *sender* wait for the slowest receiver.
Instead, when a transport's buffer passes its high-water mark asyncio calls
``pause_writing`` and we stop writing to it; frames stay in our bounded
outbox, and a client that never reads is dropped once it is full.

TLS: a connection is accepted as plain TCP and counted at once; then
``loop.start_tls`` runs the handshake, with a deadline, while the connection
already counts toward ``max_clients`` -- so silent handshakes cannot pile up
uncounted.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any

from chat.core import Action
from chat.server.base import (
    HOUSEKEEPING_INTERVAL,
    Connection,
    EventLoopServer,
    set_nodelay,
)

__all__ = ["AsyncioChatServer"]

log = logging.getLogger(__name__)

#: Bytes a transport may buffer before asyncio calls ``pause_writing``.  Beyond
#: that, frames wait in our outbox, which is what the send-queue limit bounds.
#: (The WebSocket gateway's transports use it too.)
WRITE_BUFFER_HIGH = 64 * 1024


class _AsyncioConnection(Connection):
    """A client of the asyncio engine: its transport, and whether we may write to it."""

    __slots__ = ("finishing", "handshaking", "paused", "peer_done", "transport")

    def __init__(self, transport: asyncio.Transport, address: tuple[str, int]) -> None:
        super().__init__(address)
        self.transport = transport
        self.paused = False  # the transport's buffer is full: frames wait in the outbox
        self.handshaking = False  # TLS: frames wait in the outbox until the handshake is done
        self.peer_done = False  # the peer sent its FIN (or TLS goodbye)
        self.finishing = False  # our FIN (or close) is on its way


class _ChatProtocol(asyncio.Protocol):
    """asyncio's callbacks for one connection, handed to the server's connection model."""

    def __init__(self, server: AsyncioChatServer) -> None:
        self.server = server
        self.conn: _AsyncioConnection | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.conn = self.server._connected(transport, self)

    def data_received(self, data: bytes) -> None:
        if self.conn is not None:
            self.server._received(self.conn, data)

    def eof_received(self) -> bool:
        if self.conn is None:
            return False
        self.server._peer_finished(self.conn)
        # Plain TCP: keep the transport; we close it ourselves, after our goodbye.
        # (Over TLS asyncio closes it anyway, and says so if we ask otherwise.)
        return self.server.ssl_context is None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.server._disconnected(self.conn, exc)

    def pause_writing(self) -> None:
        if self.conn is not None:
            self.conn.paused = True

    def resume_writing(self) -> None:
        if self.conn is not None:
            self.conn.paused = False
            self.server._flush(self.conn)


class AsyncioChatServer(EventLoopServer):
    """A chat server on one thread running an asyncio event loop.

    Same API as :class:`chat.server.ChatServer`::

        with AsyncioChatServer("127.0.0.1", 0) as server:
            print(server.address)
    """

    engine = "asyncio"

    def _prepare(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(self._on_loop_error)
        self._stop_event = asyncio.Event()
        self._shut = False  # goodbyes said: connections arriving now are closed at once
        self._flush_scheduled = False
        self._handshakes: set[asyncio.Task[None]] = set()

    def _wake(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._stop_event.set)
        except RuntimeError:
            pass  # the loop is already closed

    def _from_thread(self, work: Callable[..., object], *args: object) -> None:
        try:
            self._loop.call_soon_threadsafe(work, *args)
        except RuntimeError:
            pass  # the loop is closed: the server stopped

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        assert self._listener is not None
        server = await self._loop.create_server(
            lambda: _ChatProtocol(self), sock=self._listener, backlog=self.backlog
        )
        tick = self._loop.call_later(HOUSEKEEPING_INTERVAL, self._housekeeping)
        try:
            await self._stop_event.wait()
        finally:
            tick.cancel()
            await self._shut_down(server)

    async def _shut_down(self, server: asyncio.Server) -> None:
        """Stop accepting, say goodbye, and close every connection by the deadline."""
        # Stop accepting, but close the asyncio Server only at the end: in
        # Python 3.11 a connection accepted just before ``server.close()``
        # fails an assertion in ``Server._attach`` and its socket leaks.
        assert self._listener is not None
        try:
            self._loop.remove_reader(self._listener.fileno())
        except NotImplementedError:  # a loop without readers (Windows' proactor)
            server.close()
        for _ in range(3):  # connections accepted in this very turn: let them arrive
            await asyncio.sleep(0)
        self._shut = True
        self._begin_shutdown()
        self._flush_ready()
        while not self._goodbyes_done(time.monotonic()):
            await asyncio.sleep(0.02)
            self._expire_closes(time.monotonic())
        for task in list(self._handshakes):  # handshakes still running: cancel, and wait
            task.cancel()
        if self._handshakes:
            await asyncio.wait(set(self._handshakes), timeout=0.5)
        self._abort_all()
        server.close()
        for _ in range(2):  # an aborted transport closes its socket one turn later
            await asyncio.sleep(0)

    def _housekeeping(self) -> None:
        self._tick()
        self._loop.call_later(HOUSEKEEPING_INTERVAL, self._housekeeping)

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """asyncio's own errors (``accept()`` out of file descriptors, say), summarised."""
        message = str(context.get("message", "asyncio error"))
        exc = context.get("exception")
        self._log.log(
            ("asyncio", message),
            logging.ERROR,
            "asyncio errors like it",
            "%s%s",
            message,
            f": {exc}" if exc else "",
            exc_info=None if exc is None or isinstance(exc, OSError) else exc,
        )

    # -- the protocol's events

    def _connected(
        self, transport: asyncio.Transport, protocol: _ChatProtocol
    ) -> _AsyncioConnection | None:
        peer = transport.get_extra_info("peername")
        if self._shut or peer is None:  # too late to say hello, or already gone
            transport.abort()
            return None
        sock = transport.get_extra_info("socket")
        if sock is not None:  # asyncio sets it only on sockets made with proto=IPPROTO_TCP
            set_nodelay(sock)
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        conn = _AsyncioConnection(transport, tuple(peer[:2]))
        if self.ssl_context is not None:
            conn.handshaking = True
            transport.pause_reading()  # start_tls takes the bytes from here on
        self._open(conn)  # counted from now on, during the handshake too
        if conn.handshaking:
            task = self._loop.create_task(self._start_tls(conn, protocol))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)
        return conn

    async def _start_tls(self, conn: _AsyncioConnection, protocol: _ChatProtocol) -> None:
        """The TLS handshake, with a deadline; then what waited for it."""
        assert self.ssl_context is not None
        raw = conn.transport
        try:
            tls = await self._loop.start_tls(
                raw,
                protocol,
                self.ssl_context,
                server_side=True,
                ssl_handshake_timeout=self.limits.tls_handshake_timeout,
            )
        except asyncio.CancelledError:
            self._handshake_failed(conn, raw, "server shutdown")
            raise
        except (OSError, ssl.SSLError, ValueError) as exc:  # also the handshake's timeout
            self._handshake_failed(conn, raw, self._log_tls_failure(conn, exc))
            return
        if tls is None or conn.closed:  # aborted meanwhile
            return
        assert isinstance(tls, asyncio.Transport)
        tls.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        conn.transport = tls
        conn.handshaking = False
        self._flush(conn)  # frames queued during the handshake (a refusal, say)
        if conn.closing:
            self._finish_close(conn)

    def _handshake_failed(
        self, conn: _AsyncioConnection, raw: asyncio.Transport, reason: str
    ) -> None:
        # asyncio does not report connection_lost for a connection whose TLS
        # never started, so we forget it here.
        self._lost(conn, reason)
        raw.abort()
        self._forget(conn)

    def _received(self, conn: _AsyncioConnection, data: bytes) -> None:
        if not conn.closing:  # while lingering, input is read and dropped
            self._perform(self.core.receive(conn, data))

    def _peer_finished(self, conn: _AsyncioConnection) -> None:
        conn.peer_done = True
        if conn.closing:  # our goodbye was out already: both sides are done
            conn.transport.close()
            return
        self._input_ended(conn)

    def _disconnected(self, conn: _AsyncioConnection, exc: Exception | None) -> None:
        reason = f"connection lost: {exc}" if exc else "connection closed by client"
        self._lost(conn, reason)
        self._forget(conn)

    # -- sending

    def _perform(self, actions: list[Action]) -> None:
        """As every engine does; then make sure one flush runs at the end of this turn."""
        super()._perform(actions)
        if self._ready and not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush_ready)

    def _flush_ready(self) -> None:
        self._flush_scheduled = False
        ready, self._ready = self._ready, []
        for conn in ready:
            self._flush(conn)

    def _flush(self, conn: Connection) -> None:
        """Hand everything queued to the transport in one write, unless it asked us to wait."""
        assert isinstance(conn, _AsyncioConnection)
        if conn.closed or conn.handshaking or conn.paused:
            return
        if conn.out:
            conn.transport.write(conn.take())  # may call pause_writing at once: fine
        if conn.closing:
            self._finish_close(conn)

    # -- closing (what the shared connection model asks of an engine)

    def _start_close(self, conn: Connection) -> None:
        assert isinstance(conn, _AsyncioConnection)
        if not conn.handshaking:
            self._flush(conn)  # writes what is queued, then the goodbye

    def _finish_close(self, conn: _AsyncioConnection) -> None:
        """Everything is written (to the transport's buffer): send our FIN after it.

        Then we wait for the peer to hang up (its FIN ends the connection in
        :meth:`_peer_finished`), reading and dropping what it still sends; the
        close's deadline cuts off a peer that never does.
        """
        if conn.finishing or conn.out:
            return
        conn.finishing = True
        transport = conn.transport
        if conn.peer_done or not transport.can_write_eof():  # TLS closes with close_notify
            transport.close()
            return
        try:
            transport.write_eof()  # after the buffered frames: a clean FIN
        except OSError:  # the peer is already gone
            transport.abort()

    def _abort(self, conn: Connection) -> None:
        assert isinstance(conn, _AsyncioConnection)
        conn.drop_outbox()
        conn.transport.abort()  # connection_lost follows, and forgets it
