"""A chat client for programs: connect, join, send, ping, receive, close.

``ChatClient`` knows the protocol but nothing about screens; the terminal
program (:mod:`chat.client.terminal`, run as ``python -m chat.client``) and the
notebook widget (:mod:`chat.widget`) are both built on it::

    with ChatClient("localhost", 12345) as client:
        client.connect("alice")              # returns the welcome message
        client.send_chat("Hi everyone")
        print(client.ping())                 # round trip in seconds
        event = client.events.get(timeout=1) # {"type": "chat", ...}

Why a receive thread?  Messages from others can arrive at any moment, while
the program is busy doing something else (waiting for the user to type, for
instance).  A background thread blocks in ``recv`` and hands every message on
as it comes: to a callback (``on_event``) or, by default, to a queue that the
program reads when it likes.  A queue is the natural hand-over between
threads: it does its own locking.

Why a send lock?  ``sendall`` may need several system calls for one frame.
Two threads sending at once (you typing, the keep-alive pinging) could
interleave their bytes and corrupt both frames, so sending takes a lock.

TLS: pass ``tls=True`` (and ``cafile=`` for a server with a self-signed
certificate) or a ready ``ssl_context``.  The handshake runs in ``connect``
under ``timeout``; afterwards the receive thread and your sending thread share
one :class:`chat.tls.TLSChannel`, which is safe for exactly that (a plain
``ssl.SSLSocket`` is not; see :mod:`chat.tls`).

Besides the server's messages, the client reports one event of its own when
the connection ends, never sent on the wire:
``{"type": "disconnected", "reason": "..."}``.
"""

from __future__ import annotations

import itertools
import logging
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from chat import protocol
from chat.client.roster import Roster
from chat.limits import KEEPALIVE_INTERVAL
from chat.protocol import DEFAULT_HOST, DEFAULT_PORT, FrameDecoder, ProtocolError
from chat.tls import TLSChannel, client_context

__all__ = [
    "DISCONNECTED",
    "ChatClient",
    "ChatError",
    "ConnectError",
    "ConnectionClosed",
    "JoinError",
]

log = logging.getLogger(__name__)

#: The type of the local event that reports the end of the connection.
DISCONNECTED = "disconnected"
#: Its reason when we ended it ourselves (``close()``), not the server or the network.
LEFT_REASON = "You left the chat"

Event = dict[str, Any]


class ChatError(Exception):
    """Base class of the client's errors; the message is meant for people."""


class ConnectError(ChatError):
    """The server could not be reached (not running, wrong address, timeout)."""


class JoinError(ChatError):
    """The server refused to let us join (name taken, invalid name, server full)."""


class ConnectionClosed(ChatError):
    """The connection is closed; nothing more can be sent."""


class _PendingPing:
    """A ping waiting for its pong (or for the error that refuses it)."""

    def __init__(self, wanted: bool) -> None:
        self.wanted = wanted  # False for keep-alive pings nobody waits for
        self.sent = time.perf_counter()
        self.rtt: float | None = None
        self.refused: str | None = None  # the server's error, if it refused this ping
        self.answered = threading.Event()


class _Pacer:
    """Keeps our frames within the rate the server announced, so none is refused.

    The server allows each client ``rate`` frames a second on average, with
    bursts of ``burst`` (a token bucket, :mod:`chat.core`), and refuses the
    rest with "Slow down".  A person never notices; a program that sends a file
    line by line would lose lines.  So the client keeps a bucket of its own,
    a little stricter than the server's (frames may arrive closer together than
    they were sent), and waits for a token before each frame.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate * 0.95
        self.capacity = max(1.0, burst - 2.0)
        self.tokens = max(0.0, burst - 3.0)  # the join took one of the server's
        self.last = time.monotonic()

    @classmethod
    def from_welcome(cls, welcome: Event) -> _Pacer | None:
        """The pace the welcome announces (``limits``), or None: an older server."""
        limits = welcome.get("limits")
        if not isinstance(limits, dict):
            return None
        rate, burst = limits.get("rate_limit"), limits.get("rate_burst")
        if not isinstance(rate, (int, float)) or not isinstance(burst, int) or rate <= 0:
            return None  # no limit announced, or none at all
        # A server cannot make us wait more than two seconds a frame.
        return cls(max(float(rate), 0.5), min(max(burst, 1), 1000))

    def wait(self) -> None:
        """Sleep until a frame may go, and take its token."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            time.sleep((1 - self.tokens) / self.rate)
            self.tokens, self.last = 1.0, time.monotonic()
        self.tokens -= 1


class ChatClient:
    """One connection to a chat server.

    ``on_event`` (optional) is called on the receive thread for every message
    from the server, so it must be quick and thread-safe.  Without it, events
    go to :attr:`events`, a :class:`queue.Queue`.  Pongs that answer
    :meth:`ping` are consumed there and not reported as events.
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        on_event: Callable[[Event], None] | None = None,
        timeout: float = 5.0,
        keepalive: float | None = KEEPALIVE_INTERVAL,
        tls: bool = False,
        cafile: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if ssl_context is None and (tls or cafile):
            ssl_context = client_context(cafile)
        self.ssl_context = ssl_context
        self.host = host
        self.port = port
        self.timeout = timeout
        self.keepalive = keepalive
        self.events: queue.Queue[Event] = queue.Queue()
        self._on_event = on_event or self.events.put
        self.username: str | None = None
        #: The extensions in use on this connection: those we asked for and the
        #: server offers (PROTOCOL.md, section 5).  Empty for a v1 server.
        self.features: frozenset[str] = frozenset()
        self.roster = Roster()  # our rooms and who is in them, kept up to date
        self._sock: socket.socket | None = None
        self._stream: socket.socket | TLSChannel | None = None  # recv/sendall go here
        self._decoder = FrameDecoder(protocol.MAX_SERVER_FRAME_BYTES)
        self._send_lock = threading.Lock()
        self._pacer: _Pacer | None = None  # set from the welcome
        self._pings: dict[int, _PendingPing] = {}  # by request id, in sending order
        self._pings_lock = threading.Lock()
        self._ping_ids = itertools.count(1)
        self._last_sent = time.monotonic()
        self._closing = False
        self._broken: str | None = None  # why sending failed, if it did
        self._receiver: threading.Thread | None = None
        self._shutdown_message: str | None = None

    # -- connecting

    def connect(self, username: str, features: Iterable[str] | None = protocol.FEATURES) -> Event:
        """Connect, join as ``username`` and start receiving.  Returns the welcome.

        ``features``: the extensions to ask for (all by default; ``None``
        declares nothing, as a v1 client, which then gets exactly v1).  The
        welcome is also the first event delivered (callback or queue), so a
        program that only watches events sees it before any other.

        Raises :class:`ConnectError` if the server cannot be reached and
        :class:`JoinError` if it refuses the name.
        """
        if self._sock is not None:
            raise ChatError("already connected")
        try:
            protocol.validate_username(username)
        except ProtocolError as exc:
            raise JoinError(str(exc)) from None
        where = f"{self.host}:{self.port}"
        # A fresh start: what an earlier, failed try left is not part of this stream.
        self._decoder = FrameDecoder(protocol.MAX_SERVER_FRAME_BYTES)
        self._broken = None
        self._pacer = None
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except ConnectionRefusedError:
            raise ConnectError(
                f"Could not connect to {where}: connection refused. Is the server running?"
            ) from None
        except TimeoutError:
            raise ConnectError(f"Could not connect to {where}: timed out") from None
        except socket.gaierror as exc:
            raise ConnectError(f"Could not connect to {where}: unknown host ({exc})") from None
        except OSError as exc:
            raise ConnectError(f"Could not connect to {where}: {exc.strerror or exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self._stream = self._start_tls(sock) if self.ssl_context else sock
            self._sock = sock
            welcome = self._join(username, features)
        except BaseException:
            self._sock = self._stream = None
            sock.close()
            raise
        self.username = username
        offered = welcome.get("features")
        wanted = set(features or ())
        self.features = (
            frozenset(f for f in offered if f in wanted)
            if isinstance(offered, list)
            else frozenset()
        )
        self.roster = Roster()
        self.roster.apply(welcome)
        self._pacer = _Pacer.from_welcome(welcome)
        self._deliver(welcome)  # first event, before anything the receive thread sees
        sock.settimeout(self.keepalive or None)
        self._receiver = threading.Thread(
            target=self._receive_loop, name=f"chat-client-{username}", daemon=True
        )
        self._receiver.start()
        return welcome

    def _start_tls(self, sock: socket.socket) -> TLSChannel:
        """Handshake within ``timeout``; check the certificate names our host."""
        assert self.ssl_context is not None
        where = f"{self.host}:{self.port}"
        channel = TLSChannel(sock, self.ssl_context, server_side=False, server_hostname=self.host)
        try:
            channel.handshake(self.timeout)
        except ssl.SSLCertVerificationError as exc:
            raise ConnectError(
                f"TLS: the certificate of {where} is not trusted ({exc.verify_message}). "
                "For a self-signed server, pass its CA file (--cafile)."
            ) from None
        except (ssl.SSLError, TimeoutError, ConnectionError) as exc:
            raise ConnectError(
                f"TLS handshake with {where} failed ({exc}). Does the server use TLS?"
            ) from None
        except OSError as exc:
            raise ConnectError(f"TLS handshake with {where} failed: {exc}") from None
        return channel

    def _join(self, username: str, features: Iterable[str] | None) -> Event:
        """Send ``join`` and wait (at most ``timeout``) for the welcome or an error."""
        declared = list(features) if features is not None else None
        self._send(protocol.join(username, declared))
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._next_message(deadline)
            if message["type"] == "welcome":
                return message
            if message["type"] in ("error", "server_shutdown"):
                raise JoinError(str(message.get("message", "refused")))
            # anything else before the welcome (an extension's notice) is ignored

    def _next_message(self, deadline: float) -> Event:
        assert self._sock is not None
        while True:
            try:
                message = self._decoder.next_frame()
            except ProtocolError as exc:
                raise JoinError(f"The server sent a bad frame: {exc}") from None
            if message is not None:
                return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise JoinError("The server did not answer the join in time")
            self._sock.settimeout(remaining)
            assert self._stream is not None
            try:
                data = self._stream.recv(65536)
            except TimeoutError:
                continue
            except OSError as exc:
                raise JoinError(f"Connection lost while joining: {exc}") from None
            if not data:
                raise JoinError("The server closed the connection while we were joining")
            self._decoder.feed(data)

    # -- talking

    @property
    def connected(self) -> bool:
        return self._receiver is not None and self._receiver.is_alive() and not self._closing

    @property
    def users(self) -> list[str]:
        """Who is in the lobby -- for a v1 server, everyone online."""
        return self.roster.members(protocol.LOBBY)

    @property
    def rooms(self) -> dict[str, list[str]]:
        """Every room we are in, and who is there."""
        return self.roster.rooms

    def supports(self, feature: str) -> bool:
        """Whether this connection uses ``feature`` (both sides named it)."""
        return feature in self.features

    def send_chat(self, text: str, room: str | None = None, *, action: bool = False) -> None:
        """Send a chat message to ``room`` (default: the lobby); ``action``: a ``/me``.

        The server relays it to everyone in the room, us included.  If the
        server announced a rate limit, this waits as long as it takes to keep
        to it (at most a fraction of a second, unless you send many messages at
        once), so that no message is refused.
        """
        if room is not None and protocol.room_key(room) == protocol.room_key(protocol.LOBBY):
            room = None  # the lobby needs no name: a v1 server understands this frame
        if room is not None:
            self._require("rooms")
            self._check_room(room)
        self._send(protocol.chat(text, room=room, action=action))

    def join_room(self, room: str) -> None:
        """Enter ``room`` (made if new); the answer arrives as a ``room_joined`` event."""
        self._require("rooms")
        self._send(protocol.join_room(self._check_room(room)))

    def leave_room(self, room: str) -> None:
        """Leave ``room``; the answer arrives as a ``room_left`` event."""
        self._require("rooms")
        self._send(protocol.leave_room(self._check_room(room)))

    def list_rooms(self) -> None:
        """Ask which rooms exist; the answer arrives as a ``rooms`` event."""
        self._require("rooms")
        self._send({"type": "rooms"})

    def list_users(self, room: str = protocol.LOBBY) -> None:
        """Ask who is in ``room``; the answer arrives as a ``users`` event."""
        self._require("rooms")
        self._send({"type": "users", "room": self._check_room(room)})

    def send_private(self, to: str, text: str) -> None:
        """Send ``text`` to ``to`` alone; it comes back to us as a ``private`` event too."""
        self._require("private")
        self._send({"type": "private", "to": to, "message": text})

    def rename(self, username: str) -> None:
        """Take another name; everyone sharing a room with us gets ``user_renamed``."""
        self._require("nick")
        try:
            protocol.validate_username(username)
        except ProtocolError as exc:
            raise ChatError(str(exc)) from None
        self._send({"type": "nick", "username": username})

    def request_history(
        self,
        room: str = protocol.LOBBY,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = protocol.HISTORY_PAGE,
    ) -> None:
        """Ask for ``room``'s messages before (or after) a message id.

        A ``history`` event answers; without ``before`` or ``after``, the latest.
        """
        self._require("history")
        request: Event = {"type": "history", "room": self._check_room(room), "limit": limit}
        if after is not None:
            request["after"] = after
        else:
            request["before"] = before if before is not None else protocol.NEWEST
        self._send(request)

    def _require(self, feature: str) -> None:
        if feature not in self.features:
            raise ChatError(f"Not supported by this server (it does not offer {feature!r})")

    @staticmethod
    def _check_room(room: str) -> str:
        try:
            return protocol.validate_room(room)
        except ProtocolError as exc:
            raise ChatError(str(exc)) from None

    def ping(self, timeout: float | None = None) -> float:
        """Send a ping and wait for the pong.  Returns the round trip in seconds.

        Each ping carries an ``id`` that the server's pong (or its refusal)
        carries back, so that a refused ping fails at once, alone, and never
        takes the answer meant for the next one.
        """
        pending = _PendingPing(wanted=True)
        request_id = self._send_ping(pending)
        if not pending.answered.wait(self.timeout if timeout is None else timeout):
            with self._pings_lock:
                self._pings.pop(request_id, None)
            raise ChatError("No answer to ping: the server may be gone")
        if pending.refused is not None:
            raise ChatError(f"The server refused the ping: {pending.refused}")
        if pending.rtt is None:
            raise ConnectionClosed("The connection closed before the pong arrived")
        return pending.rtt

    def _send_ping(self, pending: _PendingPing) -> int:
        request_id = next(self._ping_ids)
        with self._pings_lock:
            self._pings[request_id] = pending
        self._send(protocol.ping(request_id), ping=pending)
        return request_id

    def _send(self, message: Event, ping: _PendingPing | None = None) -> None:
        """Send one frame, paced; a failed or partial send ends the connection.

        Why end it?  ``sendall`` may have sent part of the frame before it
        failed (a timeout, say).  Whatever we sent next would be glued to that
        half, and the server would read garbage: a stream that lost its frame
        boundary cannot be repaired, only closed.
        """
        if self._stream is None or self._closing or self._broken:
            raise ConnectionClosed(self._broken or "Not connected")
        data = protocol.encode(message)
        with self._send_lock:
            if self._pacer is not None:
                self._pacer.wait()
            if ping is not None:
                ping.sent = time.perf_counter()
            try:
                self._stream.sendall(data)
            except OSError as exc:
                self._broken = f"Connection lost: {exc.strerror or exc}"
                self._shut_down()  # the receive thread ends, and reports why
                raise ConnectionClosed(self._broken) from None
            self._last_sent = time.monotonic()

    def _shut_down(self) -> None:
        """Wake the receive thread (a blocked ``recv`` returns) and end the connection."""
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- receiving

    def _receive_loop(self) -> None:
        assert self._sock is not None and self._stream is not None
        reason = "Server closed the connection"
        try:
            while True:
                self._dispatch_buffered()
                try:
                    data = self._stream.recv(65536)
                except TimeoutError:
                    data = None  # quiet for a while: time for a keep-alive?
                if data == b"":
                    break
                if data:
                    self._decoder.feed(data)
                self._keep_alive()
        except ProtocolError as exc:
            reason = f"The server sent a bad frame: {exc}"
        except (OSError, ChatError) as exc:
            reason = f"Connection lost: {getattr(exc, 'strerror', None) or exc}"
        finally:
            self._shut_down()  # let the server see us go too
            if self._closing:
                reason = LEFT_REASON
            elif self._shutdown_message:
                reason = self._shutdown_message
            elif self._broken:
                reason = self._broken
            self._closing = True
            with self._pings_lock:
                pings, self._pings = self._pings, {}
            for pending in pings.values():
                pending.answered.set()  # nobody waits for a pong that cannot come
            self._deliver({"type": DISCONNECTED, "reason": reason})

    def _dispatch_buffered(self) -> None:
        while (message := self._decoder.next_frame()) is not None:
            kind = message["type"]
            if kind in ("pong", "error") and self._answers_ping(message):
                continue
            renamed = self.roster.apply(message, self.username)
            if renamed is not None:
                self.username = renamed
            if kind == "server_shutdown":
                self._shutdown_message = str(message.get("message", "Server shut down"))
            self._deliver(message)

    def _answers_ping(self, message: Event) -> bool:
        """Match a pong, or an error refusing a ping, to its ping.  True if consumed.

        By ``id``; a pong without one (a server that predates ids) answers the
        oldest ping, since pongs then come back in the order of the pings.
        """
        request_id = message.get("id")
        with self._pings_lock:
            if isinstance(request_id, int) and not isinstance(request_id, bool):
                pending = self._pings.pop(request_id, None)
            elif message["type"] == "pong" and request_id is None and self._pings:
                pending = self._pings.pop(next(iter(self._pings)))
            else:
                pending = None
        if pending is None:
            return message["type"] == "pong"  # a late pong: nobody waits for it any more
        if message["type"] == "pong":
            pending.rtt = time.perf_counter() - pending.sent
        else:
            pending.refused = str(message.get("message", "refused"))
        pending.answered.set()
        return pending.wanted or message["type"] == "pong"  # a refused keep-alive is shown

    def _keep_alive(self) -> None:
        if self.keepalive and time.monotonic() - self._last_sent >= self.keepalive:
            self._send_ping(_PendingPing(wanted=False))

    def _deliver(self, event: Event) -> None:
        try:
            self._on_event(event)
        except Exception:  # a broken callback must not kill the receive thread
            log.exception("on_event callback failed")

    # -- closing

    def close(self) -> None:
        """Leave: close the connection and wait for the receive thread to end."""
        if self._sock is None:
            return
        self._closing = True
        self._shut_down()  # wakes the receive thread
        if self._receiver is not None and self._receiver is not threading.current_thread():
            self._receiver.join(self.timeout)
        self._sock.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"connected as {self.username}" if self.connected else "not connected"
        return f"<ChatClient {self.host}:{self.port} {state}>"
