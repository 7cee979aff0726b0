"""The WebSocket gateway: the chat page and ``/ws`` on a port of their own, on any engine.

Why a gateway?  Browsers let a page speak HTTP and WebSocket, never raw TCP.
A WebSocket starts as an HTTP request (``GET /ws`` with ``Upgrade:
websocket``); the server answers ``101 Switching Protocols``, and from then on
the same TCP connection carries WebSocket *messages* in both directions.  A
message arrives whole, however TCP cut it -- so the newline framing of notebook
02 is not needed there: each text message is one chat frame, the same JSON.

How little changes.  Two sans-I/O cores, and this module between them:

* ``websockets``' :class:`~websockets.server.ServerProtocol` turns bytes into
  an HTTP request and then into WebSocket frames, and frames back into bytes.
  It never touches a socket (the same style as h11, and as our core).
* :class:`chat.core.ChatCore` turns lines into actions, as for TCP clients.
* The gateway moves bytes between a socket and the first, and messages between
  the first and the second: a text message becomes a line (its newline added
  back) for ``core.receive``; each frame the core queues becomes a text
  message.  One more thin I/O shell, like each engine.

Why sans-I/O rather than ``websockets``' asyncio server?  The server would give
each client a task and an ``await ws.send()`` per frame; a broadcast would wake
N tasks.  Here a broadcast is one encoding of the frame and one
``transport.write`` per receiver, exactly what the asyncio engine does; the
bounded outbox, the send-queue limit and the close deadlines of
:mod:`chat.server.base` apply unchanged; and the HTTP side (the page, the
Origin check, the bounds on request size and time) is ours to decide before
any handshake is accepted.

Where it runs.  Its own thread with its own asyncio loop, whatever the engine.
The core is not thread-safe, so every call into it goes through
:meth:`chat.server.base.ServerBase._from_thread`: under the threaded engine's
lock, or into the event loop's thread.  In that context the core's frames for
our clients are taken out of their outboxes (:meth:`WebGateway.send_outboxes`,
the base's gateway hook) and handed to our loop, which encodes and writes them.

Limits.  A client is counted with ``_open`` once its handshake is done, so
``max_clients``, the per-IP count, the join and idle timeouts, the rate limit
(every message is a line; a ping or a binary message costs one too) and the
send queue hold as on TCP.  Before that, the gateway bounds on its own: at most
``max_clients`` connections still in their handshake (and per IP, if that
limit is set), :data:`MAX_REQUEST_BYTES` of request, and
``limits.tls_handshake_timeout`` seconds for the whole opening (TLS, if any,
and the HTTP upgrade).  Messages longer than ``max_frame_bytes`` are refused by
the library as soon as their header says so: an ``error`` frame, then a close,
as on TCP.

Security.  A page from any web site could open a WebSocket to us from a
visitor's browser (cross-site WebSocket hijacking), even to a server on that
visitor's own machine or network.  Browsers say which page is asking (the
``Origin`` header), so a handshake from another origin than our page's is
refused unless allowed (``web_origins``, ``--web-origin``).  And since a
page's "own origin" is what its address bar says, a request naming a host we
do not know (an attacker's DNS name pointed at us: "DNS rebinding") is
refused too: IP addresses and ``localhost`` are known, other names only when an
allowed origin names them.  Every text a peer sends is rendered by the page
with ``textContent``, and the page is served with a Content Security Policy
that allows only its own scripts.
"""

from __future__ import annotations

import asyncio
import collections
import email.utils
import http
import ipaddress
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from websockets.datastructures import Headers, MultipleValuesError
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import SEND_EOF, State
from websockets.server import ServerProtocol

from chat import protocol
from chat.core import Send
from chat.server.base import Connection, ServerBase, host_port, listen, set_nodelay
from chat.server.engine_asyncio import WRITE_BUFFER_HIGH
from chat.web import STATIC, WS_PATH

__all__ = ["MAX_REQUEST_BYTES", "WebGateway"]

log = logging.getLogger(__name__)

#: ``websockets`` logs every connection opened and closed at INFO: one line per
#: page view.  Its warnings and errors still show; the core logs our clients.
_library_log = logging.getLogger(f"{__name__}.websockets")
_library_log.setLevel(logging.WARNING)

#: Bytes of HTTP request we read before the handshake is done.  A browser's
#: request is well under 2 KiB (cookies included, usually); without a bound a
#: client could make us buffer headers without end.
MAX_REQUEST_BYTES = 16 * 1024

#: Bytes of one client's messages handed to the core and not yet handled there,
#: past which we stop reading from that client until the core catches up.  An
#: engine that reads its own sockets never runs ahead of the core; we might.
MAX_UNHANDLED_BYTES = 256 * 1024

#: The answer to a binary message: every frame of the chat is text.
BINARY_REFUSED = protocol.encode(
    protocol.error("Binary messages are not supported: send each frame as a text message")
)

#: What the page may load and where it may connect: its own files and its own
#: server, nothing else.  Even a bug that put a peer's text into the page as HTML
#: could not run a script (the page never does that: it uses ``textContent``).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

#: Raw newlines and carriage returns in a message become spaces: in valid JSON
#: they can only be white space between tokens, and a line must stay one line.
_NO_NEWLINES = bytes.maketrans(b"\n\r", b"  ")

#: What :meth:`_Link._frame` returns for a frame that completes no message.
_NOTHING = b""


class _WebConnection(Connection):
    """A WebSocket client, as the core and the shared connection model see it.

    ``paused`` is written by the gateway's thread and read where the core
    runs; ``handed`` (bytes handed to the core) only by the gateway's thread,
    ``handled`` (bytes the core has handled) only where the core runs.  Each
    field has one writer, so no lock is needed.
    """

    __slots__ = ("gateway", "handed", "handled", "link", "paused", "reading_paused", "said_bye")

    def __init__(self, gateway: WebGateway, link: _Link, address: tuple[str, int]) -> None:
        super().__init__(address)
        self.gateway = gateway
        self.link = link
        self.paused = False  # the transport's buffer is full: frames wait in the outbox
        self.said_bye = False  # our close frame is on its way to the gateway's thread
        self.handed = 0
        self.handled = 0
        self.reading_paused = False


class _ChatServerProtocol(ServerProtocol):
    """``websockets``' server protocol, and an ``error`` frame before a close of its own.

    The library fails the connection itself when a message is too big
    (close code 1009); a TCP client would get an ``error`` frame first, so
    this one does too.
    """

    def fail(self, code: CloseCode | int, reason: str = "") -> None:
        if code == CloseCode.MESSAGE_TOO_BIG and self.state is State.OPEN:
            self.send_text(protocol.encode(protocol.error(f"Frame too big: {reason}"))[:-1])
        super().fail(code, reason)


def _text_frames(data: bytes) -> bytes:
    """One WebSocket text message per line of ``data``, each without its newline.

    This is exactly what ``ServerProtocol.send_text`` queues (a server does not
    mask its frames, and no extension is negotiated), written out here so that a
    broadcast is encoded once, not once per receiver.
    """
    lines = [data[:-1]] if data.count(b"\n") == 1 else data.split(b"\n")[:-1]
    return b"".join(Frame(Opcode.TEXT, line).serialize(mask=False, extensions=[]) for line in lines)


class WebGateway:
    """Serve the chat page and WebSocket clients for ``server``'s core, on ``port``.

    Made by :meth:`chat.server.base.ServerBase.start` when ``web_port`` is set;
    the port is bound at once (so that "address in use" is reported before
    anything starts), the thread starts with :meth:`start`.
    """

    def __init__(self, server: ServerBase, port: int, *, origins: Iterable[str] = ()) -> None:
        self.server = server
        self.limits = server.limits
        self.ssl_context: ssl.SSLContext | None = server.ssl_context
        self.scheme = "https" if self.ssl_context is not None else "http"
        self.origins = {_origin(o) for o in origins}
        self._names = {urlsplit(o).hostname for o in self.origins} - {None}
        self._files = {path: _load(name, kind) for path, (name, kind) in STATIC.items()}
        self._listener = listen(server.host, port, server.backlog)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._stop = asyncio.Event()
        self._links: set[_Link] = set()  # every TCP connection to our port
        self._handshakes: set[asyncio.Task[None]] = set()  # TLS handshakes running
        self._opening: dict[str, int] = {}  # per host: connections still in their handshake
        # Work handed to our thread by the core's: (connection, frames or a method).
        self._outgoing: collections.deque[tuple[_WebConnection, Any]] = collections.deque()
        self._wake_pending = False

    @property
    def url(self) -> str:
        """The page's address, as a browser on this machine would open it."""
        host = self.address[0]
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"{self.scheme}://{host_port(host, self.address[1])}/"

    # -- starting and stopping (called by the server, in the caller's thread)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="chat-web", daemon=True)
        self._thread.start()
        log.info("Chat page on %s (WebSocket endpoint %s)", self.url, WS_PATH)

    def close(self) -> None:
        """Never started: release the port."""
        self._listener.close()
        self._loop.close()

    def stop(self) -> None:
        """Say goodbye to every client (by half of the server's stop time), then close."""
        if self._thread is None:
            return
        try:
            self._loop.call_soon_threadsafe(self._stop.set)
        except RuntimeError:
            pass  # the loop is already closed
        self._thread.join(max(0.0, self.server._deadline - time.monotonic()) + 0.5)
        if self._thread.is_alive():
            log.error("The web gateway did not stop in time")

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        except Exception:  # a bug: say so loudly rather than die silently
            log.exception("The web gateway crashed")
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        listener = await self._loop.create_server(
            lambda: _Link(self), sock=self._listener, backlog=self.server.backlog
        )
        try:
            await self._stop.wait()
        finally:
            listener.close()  # no new connections; those still open are ours to close
            for task in list(self._handshakes):
                task.cancel()
            for link in list(self._links):
                if link.conn is None:
                    link.abort()
            goodbyes_by = self.server._deadline - self.server._timeout / 2
            while self._links and time.monotonic() < goodbyes_by:
                await asyncio.sleep(0.02)
            for link in list(self._links):
                link.abort()
            for _ in range(2):  # an aborted transport closes its socket one turn later
                await asyncio.sleep(0)

    # -- where the core runs: the base's hooks (chat.server.base.Gateway)

    def send_outboxes(self, conns: list[Connection]) -> None:
        for conn in conns:
            assert isinstance(conn, _WebConnection)
            self._take(conn)
        self._wake()

    def start_close(self, conn: Connection) -> None:
        assert isinstance(conn, _WebConnection)
        self._take(conn)
        self._wake()

    def abort(self, conn: Connection) -> None:
        assert isinstance(conn, _WebConnection)
        conn.drop_outbox()
        self._outgoing.append((conn, _Link.abort))
        self._wake()

    def _take(self, conn: _WebConnection) -> None:
        """Move ``conn``'s frames (and, once closing, its goodbye) to our thread's queue.

        Not while its transport asked us to wait: then they stay in the
        outbox, whose bound (the send-queue limit) applies as for any client.
        """
        if conn.closed or conn.paused:
            return
        if conn.out:
            self._outgoing.append((conn, conn.take()))
        if conn.closing and not conn.said_bye:
            conn.said_bye = True
            self._outgoing.append((conn, _Link.say_goodbye))

    def _wake(self) -> None:
        """Make our thread look at ``_outgoing`` soon: one wake-up for many hand-overs.

        The flag is cleared by :meth:`_drain` *before* it empties the queue,
        and set here *after* appending to it: whatever is appended is either
        seen by a drain already running, or wakes a new one.
        """
        if self._wake_pending:
            return
        self._wake_pending = True
        try:
            if self._thread is threading.current_thread():
                self._loop.call_soon(self._drain)
            else:
                self._loop.call_soon_threadsafe(self._drain)
        except RuntimeError:
            pass  # the loop is closed: the server stopped

    def _admit(self, conn: _WebConnection) -> None:
        """A handshake is done: the connection counts, and the core admits or refuses it."""
        if self.server._stopping.is_set():
            self.abort(conn)
            return
        self.server._open(conn)

    def _feed(self, conn: _WebConnection, messages: list[bytes | None], size: int) -> None:
        """Messages arrived: each text message as a line, ``None`` for a binary one."""
        server, core = self.server, self.server.core
        lines: list[bytes] = []
        for message in messages:
            if conn.closing:  # closed by an earlier line: the rest is dropped, as on TCP
                break
            if message is not None:
                lines.append(message)
                continue
            if lines:
                server._perform(core.receive(conn, b"".join(lines)))
                lines = []
            # A binary message costs a line (a blank one), then gets its answer.
            actions = core.receive(conn, b"\n")
            if not actions and core.is_open(conn):
                actions = [Send((conn,), BINARY_REFUSED)]
            server._perform(actions)
        if lines and not conn.closing:
            server._perform(core.receive(conn, b"".join(lines)))
        conn.handled += size
        if conn.reading_paused:
            self._outgoing.append((conn, _Link.resume_reading))
            self._wake()

    def _resume_sending(self, conn: _WebConnection) -> None:
        self._take(conn)
        self._wake()

    def _gone(self, conn: _WebConnection, reason: str) -> None:
        self.server._lost(conn, reason)
        self.server._forget(conn)

    # -- our thread

    def _drain(self) -> None:
        """Write what the core's side handed over: frames, goodbyes and aborts, in order.

        A broadcast hands the same bytes for every receiver, so each is
        encoded once (``encoded``); each receiver gets one ``write``.
        """
        self._wake_pending = False
        encoded: dict[bytes, bytes] = {}
        writes: dict[_WebConnection, list[bytes]] = {}
        outgoing = self._outgoing
        while outgoing:
            conn, item = outgoing.popleft()
            if type(item) is bytes:
                frames = encoded.get(item)
                if frames is None:
                    frames = encoded[item] = _text_frames(item)
                writes.setdefault(conn, []).append(frames)
            else:  # a method of the link: what was queued before it goes first
                parts = writes.pop(conn, None)
                if parts:
                    conn.link.write_frames(parts)
                item(conn.link)
        for conn, parts in writes.items():
            conn.link.write_frames(parts)

    def _call_core(self, work: Callable[..., object], *args: object) -> None:
        self.server._from_thread(work, *args)

    # -- HTTP: what to answer to a request that is not a WebSocket handshake

    def host_known(self, host: str | None) -> bool:
        """Is ``host`` (a ``Host`` header) a name of ours?  See "DNS rebinding" above."""
        if not host:
            return False
        name = urlsplit(f"//{host}").hostname
        if name is None:
            return False
        if name == "localhost" or name in self._names:
            return True
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    def origin_allowed(self, origin: str, host: str) -> bool:
        """The page's own origin (``scheme://Host``), or one allowed by ``web_origins``."""
        origin = origin.lower()
        return origin == f"{self.scheme}://{host.lower()}" or origin in self.origins

    def page(self, path: str) -> Response:
        body, kind = self._files[path]
        headers = Headers(
            [
                ("Date", email.utils.formatdate(usegmt=True)),
                ("Content-Type", kind),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-cache"),
                ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
                ("X-Content-Type-Options", "nosniff"),
                ("Referrer-Policy", "no-referrer"),
                ("Connection", "close"),
            ]
        )
        return Response(200, "OK", headers, body)


class _Link(asyncio.Protocol):
    """One TCP connection to the web port, from ``accept`` to close, in the gateway's thread.

    First HTTP: a request for a file of the page, or the WebSocket handshake.
    After a handshake, ``conn`` is the client as the core knows it.
    """

    def __init__(self, gateway: WebGateway) -> None:
        self.gateway = gateway
        self.ws = _ChatServerProtocol(max_size=gateway.limits.max_frame_bytes, logger=_library_log)
        self.transport: asyncio.Transport | None = None
        self.conn: _WebConnection | None = None
        self.host = ""
        self.address: tuple[str, int] = ("", 0)
        self.received = 0  # bytes of request, before the handshake
        self.opening = False  # counted among the connections in their handshake
        self.closed = False
        self.timer: asyncio.TimerHandle | None = None
        self.kind = Opcode.TEXT  # of the message being received in fragments
        self.parts: list[bytes] = []
        # TLS: what arrives before start_tls has handed us the TLS transport.
        self.early: list[bytes] | None = None

    # -- asyncio's callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        gateway = self.gateway
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if peer is None or gateway.server._stopping.is_set():
            transport.abort()
            return
        self.address = (str(peer[0]), int(peer[1]))
        self.host = self.address[0]
        gateway._links.add(self)
        limits = gateway.limits
        opening = gateway._opening
        if sum(opening.values()) >= limits.max_clients or (
            0 < limits.max_connections_per_ip <= opening.get(self.host, 0)
        ):  # a flood of connections that do not finish their handshake
            gateway.server._log.log(
                "web handshakes",
                logging.WARNING,
                "refusals",
                "Too many WebSocket handshakes at once: refused %s",
                host_port(*self.address),
            )
            transport.abort()
            return
        opening[self.host] = opening.get(self.host, 0) + 1
        self.opening = True
        sock = transport.get_extra_info("socket")
        if sock is not None:
            set_nodelay(sock)
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(limits.tls_handshake_timeout, self._too_slow)
        if gateway.ssl_context is not None:
            self.early = []
            transport.pause_reading()  # start_tls takes the bytes from here on
            task = loop.create_task(self._start_tls(gateway.ssl_context))
            gateway._handshakes.add(task)
            task.add_done_callback(gateway._handshakes.discard)

    async def _start_tls(self, context: ssl.SSLContext) -> None:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        try:
            tls = await loop.start_tls(
                self.transport,
                self,
                context,
                server_side=True,
                ssl_handshake_timeout=self.gateway.limits.tls_handshake_timeout,
            )
        except asyncio.CancelledError:
            self.abort()
            self._ended(None)
            raise
        except (OSError, ssl.SSLError, ValueError) as exc:  # the handshake's timeout too
            self.gateway.server._log_tls_failure(host_port(*self.address), exc, key="web tls")
            self.abort()
            self._ended(None)  # asyncio reports no connection_lost for a failed start_tls
            return
        if tls is None or self.closed:
            return
        assert isinstance(tls, asyncio.Transport)
        tls.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        self.transport = tls
        early, self.early = self.early or [], None
        for data in early:
            self.data_received(data)

    def data_received(self, data: bytes) -> None:
        if self.early is not None:  # decrypted before start_tls returned: keep it for then
            self.early.append(data)
            return
        ws = self.ws
        conn = self.conn
        if conn is None:  # still HTTP: bounded
            self.received += len(data)
            if self.received > MAX_REQUEST_BYTES and ws.state is State.CONNECTING:
                self._respond(
                    ws.reject(
                        http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                        f"Request larger than {MAX_REQUEST_BYTES} bytes\n",
                    )
                )
                return
        ws.receive_data(data)
        messages: list[bytes | None] = []
        size = 0
        for event in ws.events_received():
            if isinstance(event, Request):
                self._request(event)
                conn = self.conn
            elif conn is not None:
                message = self._frame(event)
                if message != _NOTHING:
                    messages.append(message)
                    size += len(message) if message is not None else 1
        self._send_pending()
        if messages and conn is not None:
            conn.handed += size
            self.gateway._call_core(self.gateway._feed, conn, messages, size)
            if conn.handed - conn.handled > MAX_UNHANDLED_BYTES and self.transport is not None:
                conn.reading_paused = True  # before reading ``handled``: see _WebConnection
                self.transport.pause_reading()
                self.resume_reading()  # in case the core caught up meanwhile

    def eof_received(self) -> bool:
        self.ws.receive_eof()
        self._send_pending()
        return False  # asyncio closes the transport (after what is buffered)

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended(exc)

    def pause_writing(self) -> None:
        if self.conn is not None:
            self.conn.paused = True

    def resume_writing(self) -> None:
        if self.conn is not None:
            self.conn.paused = False
            self.gateway._call_core(self.gateway._resume_sending, self.conn)

    # -- HTTP, before the handshake

    def _request(self, request: Request) -> None:
        gateway, ws = self.gateway, self.ws
        path = request.path.split("?", 1)[0]
        try:
            host = request.headers.get("Host")
            origin = request.headers.get("Origin")
        except MultipleValuesError:
            self._respond(ws.reject(http.HTTPStatus.BAD_REQUEST, "Repeated Host or Origin\n"))
            return
        if not gateway.host_known(host):
            text = (
                f"Unknown host name {host!r}: to serve the page under this name, "
                f"start the server with --web-origin {gateway.scheme}://{host}\n"
            )
            self._respond(ws.reject(http.HTTPStatus.MISDIRECTED_REQUEST, text))
            return
        assert host is not None
        if path != WS_PATH:
            if path in STATIC:
                self._respond(gateway.page(path))
            else:
                self._respond(ws.reject(http.HTTPStatus.NOT_FOUND, "Not found\n"))
            return
        if origin is not None and not gateway.origin_allowed(origin, host):
            gateway.server._log.log(
                "web origin",
                logging.WARNING,
                "refused origins",
                "WebSocket from %s refused: origin %s is not allowed (--web-origin)",
                host_port(*self.address),
                origin,
            )
            text = f"Origin {origin} is not allowed to connect (see --web-origin)\n"
            self._respond(ws.reject(http.HTTPStatus.FORBIDDEN, text))
            return
        response = ws.accept(request)
        ws.send_response(response)
        if ws.state is not State.OPEN:
            return  # not a valid handshake: the library answered why, and closes
        self._handshake_done()
        conn = self.conn = _WebConnection(gateway, self, self.address)
        gateway._call_core(gateway._admit, conn)

    def _respond(self, response: Response) -> None:
        """An HTTP answer; then the connection closes (one request per connection)."""
        if self.ws.state is State.CONNECTING and not self.ws.eof_sent:
            self.ws.send_response(response)
        self._send_pending()

    def _handshake_done(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self._not_opening()

    def _not_opening(self) -> None:
        if self.opening:
            self.opening = False
            opening = self.gateway._opening
            opening[self.host] -= 1
            if not opening[self.host]:
                del opening[self.host]

    def _too_slow(self) -> None:
        self.timer = None
        if self.ws.state is State.CONNECTING and not self.ws.eof_sent:
            self.gateway.server._log.log(
                "web slow",
                logging.WARNING,
                "slow handshakes",
                "%s did not finish its handshake within %g s: closed",
                host_port(*self.address),
                self.gateway.limits.tls_handshake_timeout,
            )
            self.abort()

    # -- WebSocket, after the handshake

    def _frame(self, frame: Frame) -> bytes | None:
        """One frame in: a line for the core, ``None`` for a binary message, or ``_NOTHING``.

        A message may come in fragments (a first frame, then continuation
        frames); the library bounds their total size, we put them together.
        """
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            self.kind = opcode
            if not frame.fin:
                self.parts = [bytes(frame.data)]
                return _NOTHING
            data = bytes(frame.data)
        elif opcode is Opcode.CONT:
            self.parts.append(bytes(frame.data))
            if not frame.fin:
                return _NOTHING
            data, self.parts = b"".join(self.parts), []
        elif opcode is Opcode.PING or opcode is Opcode.PONG:
            return b"\n"  # the library answers a ping; it costs a line, as a blank one does
        else:
            return _NOTHING  # a close: the library answers it, then we hang up
        if self.kind is Opcode.BINARY:
            return None
        return data.translate(_NO_NEWLINES) + b"\n"

    def write_frames(self, parts: list[bytes]) -> None:
        if self.closed or self.ws.state is not State.OPEN or self.transport is None:
            return
        self.transport.write(parts[0] if len(parts) == 1 else b"".join(parts))

    def say_goodbye(self) -> None:
        """The core closed this client: a close frame after its last frames."""
        if self.closed or self.ws.state is not State.OPEN:
            return
        stopping = self.gateway.server._stopping.is_set()
        self.ws.send_close(CloseCode.GOING_AWAY if stopping else CloseCode.POLICY_VIOLATION)
        self._send_pending()

    def resume_reading(self) -> None:
        conn = self.conn
        if conn is None or not conn.reading_paused or self.transport is None:
            return
        if conn.handed - conn.handled <= MAX_UNHANDLED_BYTES // 2:
            conn.reading_paused = False
            self.transport.resume_reading()

    def abort(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.abort()

    def _send_pending(self) -> None:
        """Write what the library queued: responses, frames, pongs, closes; or hang up."""
        transport = self.transport
        if transport is None or self.closed:
            return
        for chunk in self.ws.data_to_send():
            if chunk is not SEND_EOF and chunk:
                transport.write(chunk)
                continue
            # The library is done with this connection: our FIN, then the peer's.
            if transport.can_write_eof():
                try:
                    transport.write_eof()
                except OSError:
                    transport.abort()
            else:
                transport.close()  # TLS: close_notify, then close
            self._cut_off_later()

    def _cut_off_later(self) -> None:
        """A peer that ignores our goodbye is cut off after ``close_timeout`` seconds."""
        if self.timer is not None:  # the handshake's deadline: this one replaces it
            self.timer.cancel()
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(self.gateway.limits.close_timeout, self.abort)

    def _ended(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self._not_opening()
        self.gateway._links.discard(self)
        if self.conn is not None:
            reason = f"connection lost: {exc}" if exc else "connection closed by client"
            self.gateway._call_core(self.gateway._gone, self.conn, reason)


def _origin(origin: str) -> str:
    """``https://Chat.Example.org/`` -> ``https://chat.example.org``: as browsers send it."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not a web origin: {origin!r} (write it as https://host[:port])")
    return f"{parts.scheme}://{parts.netloc}".lower()


def _load(name: str, kind: str) -> tuple[bytes, str]:
    return (resources.files("chat.web").joinpath("static", name).read_bytes(), kind)
