"""The chat rules, with no sockets: bytes in, actions out.

Who is joined, what each frame causes and who receives what is the same for
every server, whether it runs a thread per client, a ``selectors`` event loop
or ``asyncio``.  So the rules live here, in a class that never touches a
socket, a thread or a clock it was not given -- the "sans-I/O" style of the
h11 HTTP library.  A server engine does only the I/O:

* a connection opens     -> ``core.connect(conn, address)``
* bytes arrive           -> ``core.receive(conn, data)``
* the connection is gone -> ``core.disconnect(conn, reason)``
* about once a second    -> ``core.expire()`` (join and idle timeouts)
* the server stops       -> ``core.shutdown()``

Each call returns a list of actions for the engine to carry out, in order:
:class:`Send` (these bytes to these connections) and :class:`Close` (close this
connection once what was sent to it before is flushed).  A connection id
(``conn``) is whatever the engine likes, as long as it is hashable -- the
threaded engine uses its connection objects themselves.

Why bother?  The rules can be tested by feeding bytes and checking actions:
no ports, no threads, no timing, no flakiness.  And three very different
servers cannot disagree about the protocol, because they share this code.

The core is *not* thread-safe: an engine with many threads must call it under
one lock.  It only computes; carrying out the actions (writing to sockets) is
the engine's job and should happen without slowing other callers down.

Every line costs.  A client's every line -- a blank one, a bad one, a ping --
takes a token from its rate limit before anything else happens, as on IRC
servers: handling a line costs the server work whatever the line says, so
"free" lines would be a way to keep it busy (4 MiB of newlines are four
million of them).  Only a complete, valid frame proves that a client is alive
(the idle timeout); bytes alone do not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from chat import protocol
from chat.limits import Limits
from chat.logthrottle import LogThrottle
from chat.protocol import FrameDecoder, ProtocolError

__all__ = ["Action", "ChatCore", "Close", "ConnId", "Send"]

log = logging.getLogger(__name__)

ConnId = Hashable


@dataclass(frozen=True)
class Send:
    """Send ``data`` (one or more encoded frames) to each connection in ``to``."""

    to: tuple[ConnId, ...]
    data: bytes


@dataclass(frozen=True)
class Close:
    """Close ``conn`` after flushing what was already sent to it."""

    conn: ConnId
    reason: str


Action = Send | Close


@dataclass(eq=False)
class _Peer:
    """What the core knows about one connection."""

    conn: ConnId
    address: str
    host: str
    connected_at: float
    last_seen: float  # when the last complete, valid frame arrived
    tokens: float  # rate-limit bucket: lines this peer may still send now
    last_refill: float
    decoder: FrameDecoder = field(default_factory=FrameDecoder)
    username: str | None = None
    strikes: int = 0

    @property
    def name(self) -> str:
        """How logs name this peer: its username once joined, else its address."""
        return self.username or self.address


def _key(username: str) -> str:
    """Names are compared without regard to case: ``Alice`` is taken if ``alice`` is."""
    return username.casefold()


class ChatCore:
    """The rules of one chat room.  See the module docstring for how to drive it.

    ``clock`` measures timeouts and rates (monotonic: never jumps when the
    system clock is set); ``wallclock`` stamps chat messages.  Tests pass fake
    clocks to control time.
    """

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
    ) -> None:
        self.limits = limits or Limits()
        self._clock = clock
        self._wallclock = wallclock
        self._peers: dict[ConnId, _Peer] = {}
        self._by_name: dict[str, _Peer] = {}  # joined peers by _key(name), in join order
        self._per_host: dict[str, int] = {}
        self._log = LogThrottle(log, clock=clock)  # warnings per connection, summarised
        # What a client may do, told in every welcome so that programs can pace themselves.
        self._announced = {
            "rate_limit": self.limits.rate_limit,
            "rate_burst": self.limits.rate_burst,
            "max_frame_bytes": self.limits.max_frame_bytes,
            "max_message_chars": protocol.MAX_MESSAGE_CHARS,
            "idle_timeout": self.limits.idle_timeout,
        }

    # -- what engines and tests may ask

    @property
    def usernames(self) -> list[str]:
        """Who is joined, in the order they joined, each name as its owner typed it.

        ``list(...values())`` copies in one step the GIL does not interrupt, so
        another thread may ask while the engine's thread changes who is here.
        """
        return [peer.username for peer in list(self._by_name.values()) if peer.username]

    @property
    def connection_count(self) -> int:
        return len(self._peers)

    def is_open(self, conn: ConnId) -> bool:
        return conn in self._peers

    # -- events from the engine

    def connect(
        self, conn: ConnId, address: tuple[str, int] | str = "", *, closing: int = 0
    ) -> list[Action]:
        """A connection was accepted.  May refuse it (server full).

        ``closing``: connections the engine still holds but the core has
        already forgotten (being closed).  They still hold sockets (and, in the
        threaded engine, threads) for a moment, so they count toward
        ``max_clients``: otherwise a peer that gets itself closed at once and
        then ignores the close could open connections faster than they go away.
        """
        if isinstance(address, tuple):
            host, text = str(address[0]), f"{address[0]}:{address[1]}"
        else:
            host = text = address
        limits = self.limits
        refusal = None
        if len(self._peers) + closing >= limits.max_clients:
            refusal = f"Server full ({limits.max_clients} connections)"
        elif 0 < limits.max_connections_per_ip <= self._per_host.get(host, 0):
            refusal = f"Too many connections from {host}"
        if refusal:
            # A flood of connections must not become a flood of log lines.
            kind = refusal.split(" (")[0] if refusal.startswith("Server full") else "per-IP"
            self._log.log(
                ("refused", kind), logging.WARNING, "refusals", "Refused %s: %s", text, refusal
            )
            return [Send((conn,), protocol.encode(protocol.error(refusal))), Close(conn, refusal)]
        log.info("New connection from %s", text)
        now = self._clock()
        self._peers[conn] = _Peer(
            conn,
            text,
            host,
            connected_at=now,
            last_seen=now,
            tokens=limits.rate_burst,
            last_refill=now,
            decoder=FrameDecoder(limits.max_frame_bytes),
        )
        self._per_host[host] = self._per_host.get(host, 0) + 1
        return []

    def receive(self, conn: ConnId, data: bytes) -> list[Action]:
        """Bytes arrived from ``conn``; handle every complete line in them."""
        peer = self._peers.get(conn)
        if peer is None:  # already closed: bytes still in flight are ignored
            return []
        peer.decoder.feed(data)
        actions: list[Action] = []
        while conn in self._peers:  # a line may end the connection
            try:
                line = peer.decoder.next_line()
            except ProtocolError as exc:  # an endless line: the stream is beyond repair
                actions += self._refuse(peer, str(exc), close=True)
                break
            if line is None:
                break
            actions += self._line(peer, line)
        return actions

    def disconnect(self, conn: ConnId, reason: str = "connection closed") -> list[Action]:
        """The engine lost or dropped ``conn``.  Safe to call more than once."""
        peer = self._peers.pop(conn, None)
        if peer is None:
            return []
        self._log.done(conn)  # the summary of what was held back comes before the goodbye
        count = self._per_host[peer.host] - 1
        if count:
            self._per_host[peer.host] = count
        else:
            del self._per_host[peer.host]
        if peer.username is None:
            log.info("Connection from %s closed before joining (%s)", peer.address, reason)
            return []
        del self._by_name[_key(peer.username)]
        log.info("%s disconnected (%s)", peer.username, reason)
        return self._broadcast(protocol.user_left(peer.username))

    def expire(self) -> list[Action]:
        """Close connections that did not join in time or went silent."""
        now = self._clock()
        actions: list[Action] = []
        for peer in list(self._peers.values()):
            if peer.username is None and now - peer.connected_at > self.limits.join_timeout:
                reason = f"Join timeout: no join within {self.limits.join_timeout:g} s"
            elif now - peer.last_seen > self.limits.idle_timeout:
                reason = f"Idle timeout: nothing received for {self.limits.idle_timeout:g} s"
            else:
                continue
            actions += self._refuse(peer, reason, close=True)
        self._log.tick()
        return actions

    def shutdown(self, message: str = "The server is shutting down") -> list[Action]:
        """Say goodbye to everyone and close every connection."""
        conns = tuple(self._peers)
        self._peers.clear()
        self._by_name.clear()
        self._per_host.clear()
        if not conns:
            return []
        goodbye = Send(conns, protocol.encode(protocol.server_shutdown(message)))
        return [goodbye, *(Close(conn, "server shutdown") for conn in conns)]

    # -- the rules

    def _line(self, peer: _Peer, line: bytes) -> list[Action]:
        """One line from a client: pay for it, then decode, check and act on it."""
        message: dict[str, Any] | None = None
        problem: ProtocolError | None = None
        if line.strip():
            try:
                message = protocol.decode_line(line)
            except ProtocolError as exc:
                problem = exc
        if not self._take_token(peer):
            return self._flooding(peer, message)
        if message is None and problem is None:
            return []  # a blank line: it cost a token, and that is all
        try:
            if problem is not None:
                raise problem
            assert message is not None
            request = protocol.validate_client_message(message)
        except ProtocolError as exc:
            return self._refuse(peer, str(exc), close=exc.fatal, about=message)
        peer.last_seen = self._clock()  # a whole, valid frame: the client is alive
        return self._handle(peer, request)

    def _handle(self, peer: _Peer, message: dict[str, Any]) -> list[Action]:
        kind = message["type"]
        if kind == "ping":
            pong = protocol.pong(protocol.request_id_of(message))
            return [Send((peer.conn,), protocol.encode(pong))]
        if kind == "join":
            return self._join(peer, message["username"])
        if peer.username is None:
            return self._refuse(peer, 'Join first: send {"type": "join", "username": ...}')
        log.info("%s: %s", peer.username, message["message"])
        frame = protocol.chat_broadcast(peer.username, message["message"], self._wallclock())
        return self._broadcast(frame)

    def _join(self, peer: _Peer, username: str) -> list[Action]:
        if peer.username is not None:
            return self._refuse(peer, f"Already joined as {peer.username}")
        if _key(username) in self._by_name:
            return self._refuse(peer, "Username already taken")
        peer.username = username
        others = bool(self._by_name)
        self._by_name[_key(username)] = peer
        log.info("%s joined from %s", username, peer.address)
        welcome = protocol.welcome(username, self.usernames, self._announced)
        greeting = Send((peer.conn,), protocol.encode(welcome))
        if not others:
            return [greeting]
        return [greeting, *self._broadcast(protocol.user_joined(username), exclude=peer)]

    def _broadcast(self, message: dict, exclude: _Peer | None = None) -> list[Action]:
        """One encoding, many receivers: the frame is encoded once, not per client."""
        to = tuple(p.conn for p in self._by_name.values() if p is not exclude)
        return [Send(to, protocol.encode(message))] if to else []

    def _take_token(self, peer: _Peer) -> bool:
        """Token bucket: ``rate_limit`` tokens a second, at most ``rate_burst`` saved."""
        rate = self.limits.rate_limit
        if rate <= 0:
            return True
        now = self._clock()
        elapsed, peer.last_refill = now - peer.last_refill, now
        peer.tokens = min(float(self.limits.rate_burst), peer.tokens + elapsed * rate)
        if peer.tokens < 1:
            return False
        peer.tokens -= 1
        peer.strikes = 0
        return True

    def _flooding(self, peer: _Peer, message: dict[str, Any] | None) -> list[Action]:
        peer.strikes += 1
        if peer.strikes >= self.limits.flood_disconnect_strikes:
            return self._refuse(peer, "Excess flood: disconnected for sending too fast", close=True)
        rate = self.limits.rate_limit
        return self._refuse(peer, f"Slow down: at most {rate:g} messages a second", about=message)

    def _refuse(
        self,
        peer: _Peer,
        reason: str,
        *,
        close: bool = False,
        about: dict[str, Any] | None = None,
    ) -> list[Action]:
        """Answer with an error frame; when the stream is unusable, close it too.

        ``about``: the frame refused; if it carried a request ``id``, the error
        carries it back, so that the client knows which request failed.
        """
        self._log.log(
            peer.conn,
            logging.WARNING,
            f"warnings from {peer.name}",
            "%s from %s%s",
            reason,
            peer.name,
            " (closing)" if close else "",
        )
        request_id = protocol.request_id_of(about) if about else None
        actions: list[Action] = [
            Send((peer.conn,), protocol.encode(protocol.error(reason, request_id)))
        ]
        if close:
            actions.append(Close(peer.conn, reason))
            actions += self.disconnect(peer.conn, reason)
        return actions
