"""The asyncio chat server: one coroutine per client, one thread for all.

Run it with ``python -m chat.server --engine asyncio``.  Same rules as the other
engines (they all drive :class:`chat.core.ChatCore`), written the way most new
Python network code is written.

What asyncio is: the event loop of :mod:`chat.server.engine_selectors`, written once,
well, and hidden behind ``async``/``await``.  Each client gets a coroutine that
reads as plainly as the threaded server's reader::

    while True:
        data = await reader.read(RECV_BYTES)   # "wait here" -- but not the thread
        ...

``await`` hands control back to the loop until bytes arrive, so ten thousand
such coroutines share one thread, costing a few kilobytes each instead of a
thread's stack.  Only one coroutine runs at a time and it is never interrupted
between two ``await`` points, so the core needs no lock.

Sending is where care is needed.  ``StreamWriter.write`` tries a ``send``
system call at once, so writing each broadcast to each client separately would
cost one system call per frame per client.  Instead a broadcast appends the
frame to each receiver's outbound list and schedules *one* flush for the end of
this turn of the loop (``loop.call_soon``); the flush joins each list into one
``write``.  We never ``await writer.drain()`` on behalf of a receiver: that
would make the *sender* wait for the slowest receiver.  Instead each client's
unsent bytes (ours plus the transport's buffer) are bounded; past
:attr:`chat.limits.Limits.max_send_queue_bytes` the client is disconnected.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from typing import Any

from chat.core import Action, Send
from chat.server.base import (
    HOUSEKEEPING_INTERVAL,
    LINGER_SECONDS,
    RECV_BYTES,
    BackgroundServer,
)

__all__ = ["AsyncioChatServer"]

log = logging.getLogger(__name__)


class _Connection:
    """One client: its stream writer and the frames not yet written."""

    __slots__ = ("address", "closing", "out", "queued", "reader", "timer", "transport", "writer")

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: tuple
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.transport = writer.transport
        self.address = address
        self.out: list[bytes] = []
        self.queued = 0
        self.closing = False
        self.timer: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        return f"<connection {self.address[0]}:{self.address[1]}>"

    def abort(self) -> None:
        """Close now, dropping anything unsent; the reading coroutine then ends."""
        self.closing = True
        self.out = []
        self.queued = 0
        self.transport.abort()


class AsyncioChatServer(BackgroundServer):
    """A chat server on one thread running an asyncio event loop.

    Same API as :class:`chat.server.ChatServer`::

        with AsyncioChatServer("127.0.0.1", 0) as server:
            print(server.address)
    """

    engine = "asyncio"

    def _prepare(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._stop_event = asyncio.Event()
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task] = set()
        self._dirty: list[_Connection] = []
        self._shut = False  # the core said goodbye: connections arriving now are closed
        self._transports: set[asyncio.BaseTransport] = set()  # every one not yet closed

    def _wake(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._stop_event.set)
        except RuntimeError:
            pass  # the loop is already closed

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
            self._loop.run_until_complete(self._sweep())
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        server = await asyncio.start_server(
            self._on_connect,
            sock=self._listener,
            ssl=self.ssl_context,
            limit=RECV_BYTES,
            ssl_handshake_timeout=(
                getattr(self.limits, "tls_handshake_timeout", 10.0) if self.ssl_context else None
            ),
        )
        housekeeping = asyncio.create_task(self._housekeeping())
        try:
            await self._stop_event.wait()
        finally:
            # Stop accepting, but close the asyncio Server only at the end: in
            # Python 3.11 a connection accepted just before ``server.close()``
            # hits an assertion in ``Server._attach`` and its socket leaks.
            assert self._listener is not None
            self._loop.remove_reader(self._listener.fileno())
            housekeeping.cancel()
            # Connections accepted in this very turn have a handler task that
            # has not started yet: let them start, so the goodbye reaches them too.
            for _ in range(3):
                await asyncio.sleep(0)
            self._shut = True
            self._perform(self.core.shutdown())
            self._flush_dirty()
            grace = max(0.0, self._deadline - self._timeout / 2 - time.monotonic())
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=grace)
            for conn in list(self._connections):
                conn.abort()  # each reading coroutine now sees the end and returns
            if self._tasks:
                await asyncio.wait(set(self._tasks), timeout=0.2)
            for task in list(self._tasks):
                task.cancel()
            server.close()  # closes the listening socket

    async def _sweep(self) -> None:
        """Close connections that asyncio accepted in the loop's last turns.

        asyncio finishes accepting a connection in a task of its own, and calls
        :meth:`_on_connect` a turn or two later: give those turns, so that no
        socket outlives the loop.  Late handlers see ``_shut`` and abort.
        """
        for _ in range(5):
            await asyncio.sleep(0.01)
            others = asyncio.all_tasks() - {asyncio.current_task()}
            if others:
                left = self._deadline - time.monotonic()  # stop()'s time is nearly up
                await asyncio.wait(others, timeout=min(0.2, max(0.02, left)))
            for transport in list(self._transports):
                transport.abort()
            if not others and not self._transports:
                break
        await asyncio.sleep(0)  # an aborted transport closes its socket one turn later

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_INTERVAL)
            self._perform(self.core.expire())

    def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Any:
        """Called by asyncio the moment a connection is made; returns its coroutine.

        Noting the transport here, before the coroutine even starts, lets
        :meth:`_serve` close every connection at shutdown, including those
        accepted in the very last turn of the loop.
        """
        self._transports.add(writer.transport)
        return self._handle(reader, writer)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client's coroutine: feed what it sends to the core until it ends."""
        if self._shut:  # accepted while the server stopped: too late to say hello
            self._transports.discard(writer.transport)
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        address = writer.get_extra_info("peername")
        sock = writer.get_extra_info("socket")
        if sock is not None:  # asyncio sets it too; say so where readers look
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Connection(reader, writer, address)
        # Connections still closing (lingering) hold sockets too: they count.
        closing = len(self._connections) - self.core.connection_count
        self._connections.add(conn)
        reason = "connection closed by client"
        try:
            self._perform(self.core.connect(conn, address, closing=closing))
            while True:
                data = await reader.read(RECV_BYTES)
                if not data:
                    break
                if not conn.closing:  # while lingering, input is read and dropped
                    self._perform(self.core.receive(conn, data))
        except OSError as exc:
            reason = f"connection lost: {exc.strerror or exc}"
        except asyncio.CancelledError:  # only at shutdown, and this task is the last word
            reason = "server shutdown"
        finally:
            self._perform(self.core.disconnect(conn, reason))
            self._flush(conn)  # a last try: the peer may still read after its FIN
            if conn.timer is not None:
                conn.timer.cancel()
            self._connections.discard(conn)
            self._tasks.discard(task)
            self._transports.discard(writer.transport)
            writer.close()

    # -- carrying out the core's decisions

    def _perform(self, actions: list[Action]) -> None:
        """Queue frames and begin closes; one flush at the end of this turn sends them."""
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
                    pending += self._overflow(conn)
                    continue
                if not conn.out:
                    if not dirty:
                        self._loop.call_soon(self._flush_dirty)
                    dirty.append(conn)
                conn.out.append(data)
                conn.queued += size

    def _overflow(self, conn: _Connection) -> list[Action]:
        log.warning("Send queue exceeded for %r: disconnecting it", conn)
        conn.abort()
        return self.core.disconnect(conn, "send queue exceeded")

    def _flush_dirty(self) -> None:
        dirty, self._dirty = self._dirty, []
        for conn in dirty:
            self._flush(conn)

    def _flush(self, conn: _Connection) -> None:
        """Hand everything queued to the transport in one write."""
        if not conn.out or conn.transport.is_closing():
            return
        data = conn.out[0] if len(conn.out) == 1 else b"".join(conn.out)
        conn.out = []
        conn.queued = 0
        if conn.transport.get_write_buffer_size() + len(data) > self.limits.max_send_queue_bytes:
            self._perform(self._overflow(conn))
            return
        conn.transport.write(data)
        if conn.closing:
            self._half_close(conn)

    def _begin_close(self, conn: _Connection) -> None:
        """The core closed ``conn``: flush, send a FIN, linger, then close."""
        if conn.closing:
            return
        conn.closing = True
        if not conn.out:
            self._half_close(conn)
        # else: the flush already scheduled half-closes after writing

    def _half_close(self, conn: _Connection) -> None:
        if conn.timer is not None:
            return
        if conn.transport.can_write_eof():
            try:
                conn.transport.write_eof()  # sent after the buffered frames: a clean FIN
            except OSError:  # the peer is already gone
                conn.transport.abort()
                return
        # The peer should close now; if it does not, give up after the lingering time.
        conn.timer = self._loop.call_later(2 * LINGER_SECONDS, conn.transport.abort)
