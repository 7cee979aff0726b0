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
* the store answered     -> ``core.history_fetched(fetch, frames, more)``
* the server stops       -> ``core.shutdown()``

Each call returns a list of actions for the engine to carry out, in order:
:class:`Send` (these bytes to these connections), :class:`Close` (close this
connection once what was sent to it before is flushed), :class:`Store` (keep
this relayed message in the history) and :class:`Fetch` (read history from the
store, and hand the answer back).  A connection id (``conn``) is whatever the
engine likes, as long as it is hashable -- the engines use their connection
objects themselves.  The core never waits for the store: what it needs from
disk it asks for with ``Fetch``, and carries on.

The rules of the extensions -- rooms, private messages, nicknames, history,
each used only by a client that declared it in its join -- are here too
(PROTOCOL.md describes them all); a room itself is a :class:`chat.rooms.Room`.

Why bother?  The rules can be tested by feeding bytes and checking actions:
no ports, no threads, no timing, no flakiness.  And three very different
servers cannot disagree about the protocol, because they share this code.

The core is *not* thread-safe: an engine with many threads must call it under
one lock.  It only computes; carrying out the actions (writing to sockets) is
the engine's job and should happen without slowing other callers down.

Every line costs.  A client's every line -- a blank one, a bad one, a ping --
takes a token from its rate limit before it is acted on, as on IRC servers:
handling a line costs the server work whatever the line says, so "free" lines
would be a way to keep it busy (4 MiB of newlines are four million of them).
A line is decoded before it pays, and only so that the "Slow down" refusing
a ping can carry that ping's ``id``.  Only a complete, valid frame proves
that a client is alive (the idle timeout); bytes alone do not.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from chat import protocol
from chat.limits import HISTORY_CACHE, Limits
from chat.logthrottle import LogThrottle
from chat.protocol import LOBBY, FrameDecoder, ProtocolError, room_key
from chat.rooms import Audience, Room, audience

__all__ = ["Action", "ChatCore", "Close", "ConnId", "Fetch", "Send", "Store"]

log = logging.getLogger(__name__)

ConnId = Hashable
Frame = dict[str, Any]


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


@dataclass(frozen=True)
class Store:
    """Keep this relayed chat frame in its room's history (the store writes it later)."""

    frame: Frame


@dataclass(frozen=True)
class Fetch:
    """Read a room's history from the store; give the answer to :meth:`ChatCore.history_fetched`.

    ``before`` or ``after`` (message ids) bound the page, or neither: the room's
    latest messages.  ``conn`` is who asked for the page, or ``None`` when
    the core loads an idle room's latest messages into memory.
    """

    room: str
    limit: int
    before: int | None = None
    after: int | None = None
    conn: ConnId | None = None
    generation: int = 0  # which life of the room a load is for (rooms come and go)


Action = Send | Close | Store | Fetch


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
    features: frozenset[str] = frozenset()  # what this connection uses (section 5)
    declared: bool = False  # its join named features: its welcome says ours
    rooms: dict[str, Room] = field(default_factory=dict)  # by room key, in joining order
    # Several servers as one chat (chat.cluster): a user of another server, known by
    # its name and rooms, has that server's ``node`` and no connection here; and a
    # connection whose name is being claimed across the servers is ``held``: the join
    # or nick that claimed it waits here, and its next lines wait in its decoder,
    # until the answer comes.
    node: str | None = None
    held: Frame | None = None
    # Answers sent later than the frames they answer -- history the store is reading,
    # or (several servers) a message on its way back from the relay: how many this
    # peer is owed, and the pongs that wait for them (a pong comes after every answer
    # to what its client sent before the ping: PROTOCOL.md, section 10).
    owed: int = 0
    pongs: list[Action] = field(default_factory=list)

    @property
    def name(self) -> str:
        """How logs name this peer: its username once joined, else its address."""
        return self.username or self.address


def _v1(frame: Frame) -> Frame:
    """The frame as a v1 client gets it: without the extensions' ``id`` and ``room``."""
    return {k: v for k, v in frame.items() if k not in ("id", "room")}


def _key(username: str) -> str:
    """Names are compared without regard to case: ``Alice`` is taken if ``alice`` is."""
    return username.casefold()


class ChatCore:
    """The rules of one chat server.  See the module docstring for how to drive it.

    ``clock`` measures timeouts and rates (monotonic: never jumps when the
    system clock is set); ``wallclock`` stamps chat messages.  Tests pass fake
    clocks to control time.  ``stored_history``: a store keeps history beyond
    what the rooms hold in memory, so idle rooms are loaded from it
    (:class:`Fetch`), and every relayed message is handed to it (:class:`Store`).
    """

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
        stored_history: bool = False,
    ) -> None:
        self.limits = limits or Limits()
        self._clock = clock
        self._wallclock = wallclock
        self._stored = stored_history
        self._last_id = 0  # the id of the last message relayed
        self._peers: dict[ConnId, _Peer] = {}
        self._by_name: dict[str, _Peer] = {}  # joined peers by _key(name), in join order
        self._per_host: dict[str, int] = {}
        self._rooms: dict[str, Room] = {}  # by room key, in the order they were made
        self._lobby = self._room(LOBBY)
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

    @property
    def last_id(self) -> int:
        """The id of the last message relayed (0 before the first)."""
        return self._last_id

    def is_open(self, conn: ConnId) -> bool:
        return conn in self._peers

    def continue_ids(self, first_id: int) -> None:
        """Hand out message ids from ``first_id`` on (the store's, so ids grow across restarts)."""
        self._last_id = max(self._last_id, first_id - 1)

    def rooms(self) -> dict[str, list[str]]:
        """Every room and who is in it (for tests and notebooks)."""
        return {room.name: room.usernames for room in list(self._rooms.values())}

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
        refusal = kind = ""  # what the client is told; what the log counts it as
        if len(self._peers) + closing >= limits.max_clients:
            refusal, kind = f"Server full ({limits.max_clients} connections)", "Server full"
        elif 0 < limits.max_connections_per_ip <= self._per_host.get(host, 0):
            refusal, kind = f"Too many connections from {host}", "per-IP"
        if refusal:
            # A flood of connections must not become a flood of log lines.
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
        while conn in self._peers and peer.held is None:  # a line may end the connection
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
        actions: list[Action] = []
        for room in list(peer.rooms.values()):  # each room it was in is told
            actions += self._exit(peer, room, protocol.user_left(peer.username, room.name))
        return actions

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

    def history_fetched(self, fetch: Fetch, frames: list[Frame], more: bool) -> list[Action]:
        """The store's answer to a :class:`Fetch`: relayed chat frames, oldest first."""
        if fetch.conn is not None:  # a page someone asked for
            peer = self._peers.get(fetch.conn)
            if peer is None:
                return []
            page = protocol.encode(protocol.history(fetch.room, frames, more))
            return [Send((peer.conn,), page), *self._settle(peer)]
        room = self._rooms.get(room_key(fetch.room))
        if room is None or room.complete or room.generation != fetch.generation:
            return []  # it emptied meanwhile (its next member loads it again)
        room.loaded(frames, more)
        actions: list[Action] = []
        waiting, room.waiting = room.waiting, {}
        for conn, last_id in waiting.items():
            peer = room.members.get(conn)
            if peer is not None:  # still there (who left the room waits no more)
                actions += [self._history_of(room, conn, last_id), *self._settle(peer)]
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

    # -- one line from a client

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

    def _handle(self, peer: _Peer, message: Frame) -> list[Action]:
        kind = message["type"]
        if kind == "ping":
            return self._pong(peer, message)
        if kind == "join":
            return self._join(peer, message)
        if peer.username is None:
            return self._refuse(peer, 'Join first: send {"type": "join", "username": ...}')
        feature = protocol.FEATURE_OF_TYPE.get(kind)
        if kind == "chat" and room_key(message.get("room", LOBBY)) != self._lobby.key:
            feature = "rooms"  # any room but the lobby
        if feature is not None and feature not in peer.features:
            return self._refuse(
                peer, f"{kind!r} needs the feature {feature!r}: declare it in your join"
            )
        return getattr(self, f"_on_{kind}")(peer, message)

    def _pong(self, peer: _Peer, message: Frame) -> list[Action]:
        """The answer to a ping, after everything said in answer to what came before it.

        A client that pings before it leaves relies on that: the pong tells it
        that it has seen all its answers.  Most answers are sent at once, in
        order, so the pong simply comes next; but an answer the peer is still
        owed (see ``_Peer.owed``) comes later, so then the pong waits for it.
        """
        pong = Send((peer.conn,), protocol.encode(protocol.pong(protocol.request_id_of(message))))
        if not peer.owed:
            return [pong]
        peer.pongs.append(pong)
        return []

    def _settle(self, peer: _Peer) -> list[Action]:
        """An answer ``peer`` was owed went out (or never will): after the last, its pongs."""
        peer.owed -= 1
        if peer.owed:
            return []
        pongs, peer.pongs = peer.pongs, []
        return pongs

    # -- joining the server, and changing name

    def _join(self, peer: _Peer, message: Frame) -> list[Action]:
        if peer.username is not None:
            return self._refuse(peer, f"Already joined as {peer.username}")
        return self._if_free(peer, message)

    def _on_nick(self, peer: _Peer, message: Frame) -> list[Action]:
        if message["username"] == peer.username:
            return self._refuse(peer, f"You are already {peer.username}")
        return self._if_free(peer, message)

    def _if_free(self, peer: _Peer, message: Frame) -> list[Action]:
        """A ``join`` or ``nick``: the name it asks for must not be someone else's."""
        holder = self._by_name.get(_key(message["username"]))
        if holder is not None and holder is not peer:  # a new case of your own name is yours
            return self._refuse(peer, "Username already taken")
        return self._grant(peer, message)

    def _grant(self, peer: _Peer, message: Frame) -> list[Action]:
        """The name a ``join`` or ``nick`` asks for is free here: it is the peer's now.

        The step between the checks and the change is a method of its own so
        that a node of several servers (:class:`chat.cluster.core.ClusterCore`)
        can put a question in between: is the name free on every node?
        """
        if peer.username is None:
            return self._welcome(peer, message)
        return self._rename(peer, message["username"])

    def _welcome(self, peer: _Peer, message: Frame) -> list[Action]:
        """``peer`` joins as the (free) name in ``message``: welcome it into the lobby."""
        username = message["username"]
        peer.username = username
        peer.declared = "features" in message
        peer.features = frozenset(message.get("features", ())) & frozenset(protocol.FEATURES)
        self._by_name[_key(username)] = peer
        log.info("%s joined from %s", username, peer.address)
        lobby = self._lobby
        lobby.add(peer.conn, peer)
        peer.rooms[lobby.key] = lobby
        extra = {"features": list(protocol.FEATURES), "rooms": [LOBBY]} if peer.declared else {}
        welcome = protocol.welcome(username, lobby.usernames, self._announced, **extra)
        actions: list[Action] = [Send((peer.conn,), protocol.encode(welcome))]
        actions += self._to_room(lobby, protocol.user_joined(username, LOBBY), exclude=peer)
        return actions + self._history_on_entering(peer, lobby)

    def _rename(self, peer: _Peer, new: str) -> list[Action]:
        """``peer`` is now called ``new`` (a name checked to be free): tell who shares a room."""
        old = peer.username
        assert old is not None
        # The same place in the join order, under the new name.
        self._by_name = {(_key(new) if p is peer else k): p for k, p in self._by_name.items()}
        peer.username = new
        log.info("%s is now known as %s", old, new)
        # Who shares a room with the user: each is told once if it knows
        # nicknames, and otherwise sees the old name leave and the new one
        # come, in every room they share.
        knowing: dict[ConnId, None] = {peer.conn: None} if peer.node is None else {}
        actions: list[Action] = []
        for room in peer.rooms.values():
            knowing.update(
                (c, None)
                for c, p in room.members.items()
                if "nick" in p.features and p.node is None
            )
            unaware = [p for p in room.members.values() if "nick" not in p.features]
            if unaware:
                left = protocol.user_left(old, room.name)
                joined = protocol.user_joined(new, room.name)
                actions += self._to_audience(audience(unaware), left, joined)
        renamed = protocol.encode(protocol.user_renamed(old, new))
        return [Send(tuple(knowing), renamed), *actions]

    # -- rooms

    def _on_join_room(self, peer: _Peer, message: Frame) -> list[Action]:
        key = room_key(message["room"])
        if key in peer.rooms:
            return self._refuse(peer, f"Already in {peer.rooms[key].name}")
        if len(peer.rooms) >= self.limits.max_rooms_per_user:
            return self._refuse(
                peer, f"Too many rooms: at most {self.limits.max_rooms_per_user} each"
            )
        room = self._rooms.get(key)
        if room is None:
            if len(self._rooms) >= self.limits.max_rooms:
                return self._refuse(
                    peer, f"Too many rooms on this server ({self.limits.max_rooms})"
                )
            room = self._room(message["room"])
        assert peer.username is not None
        room.add(peer.conn, peer)
        peer.rooms[key] = room
        actions: list[Action] = [
            Send((peer.conn,), protocol.encode(protocol.room_joined(room.name, room.usernames)))
        ]
        joined = f"{peer.username} joined {room.name}"
        actions += self._to_room(room, protocol.user_joined(peer.username, room.name, joined), peer)
        return actions + self._history_on_entering(peer, room)

    def _on_leave_room(self, peer: _Peer, message: Frame) -> list[Action]:
        room = peer.rooms.get(room_key(message["room"]))
        if room is None:
            return self._refuse(peer, f"You are not in {message['room']}")
        assert peer.username is not None
        left = Send((peer.conn,), protocol.encode(protocol.room_left(room.name)))
        notice = protocol.user_left(peer.username, room.name, f"{peer.username} left {room.name}")
        actions = [left, *self._exit(peer, room, notice)]
        if room.waiting.pop(peer.conn, None) is not None:  # its history there will never come
            actions += self._settle(peer)
        return actions

    def _on_rooms(self, peer: _Peer, message: Frame) -> list[Action]:
        listing = [(room.name, len(room.members)) for room in self._rooms.values()]
        return [Send((peer.conn,), protocol.encode(protocol.rooms_list(listing)))]

    def _on_users(self, peer: _Peer, message: Frame) -> list[Action]:
        room = self._rooms.get(room_key(message["room"]))
        if room is None:
            return self._refuse(peer, f"No such room: {message['room']}")
        answer = protocol.users_list(room.name, room.usernames)
        return [Send((peer.conn,), protocol.encode(answer))]

    def _room(self, name: str) -> Room:
        room = Room(name, HISTORY_CACHE, stored=self._stored)
        self._rooms[room.key] = room
        return room

    def _exit(self, peer: _Peer, room: Room, notice: Frame) -> list[Action]:
        """``peer`` leaves ``room``: the others get ``notice``; an empty room goes."""
        room.remove(peer.conn)
        del peer.rooms[room.key]
        if not room.members and room is not self._lobby:
            del self._rooms[room.key]  # its history stays in the store
        return self._to_room(room, notice)

    def _to_room(self, room: Room, frame: Frame, exclude: _Peer | None = None) -> list[Action]:
        """Send ``frame`` to a room's members (but ``exclude``)."""
        if exclude is None:  # the common case, a message: the room knows who is which kind
            return self._to_audience(room.audience(), frame)
        others = audience(p for p in room.members.values() if p is not exclude)
        return self._to_audience(others, frame)

    def _to_audience(self, to: Audience, *frames: Frame) -> list[Action]:
        """Send ``frames`` to the clients that declared features, and as v1 frames to the rest.

        A v1 client gets the frames without the fields the extensions add to
        v1's frames, ``id`` and ``room`` (PROTOCOL.md, section 5); ``action``
        and ``limits`` may reach it, and a v1 peer ignores them.  Each kind of
        frame is encoded once for all its receivers.
        """
        declared, plain = to
        actions: list[Action] = []
        if declared:
            actions.append(Send(declared, b"".join(map(protocol.encode, frames))))
        if plain:
            actions.append(Send(plain, b"".join(protocol.encode(_v1(f)) for f in frames)))
        return actions

    # -- messages

    def _on_chat(self, peer: _Peer, message: Frame) -> list[Action]:
        name = message.get("room", LOBBY)
        room = peer.rooms.get(room_key(name))
        if room is None:
            return self._refuse(peer, f"You are not in {name}")
        where = "" if room is self._lobby else f" in {room.name}"
        log.info("%s%s: %s", peer.username, where, message["message"])
        return self._relay_chat(peer, room, message)

    def _relay_chat(self, peer: _Peer, room: Room, message: Frame) -> list[Action]:
        """Relay a room message that passed the checks: numbered, kept, sent to the room.

        A method of its own so that a node of several servers can send it
        through the chat's relay instead, with the same checks before.
        """
        assert peer.username is not None
        self._last_id += 1
        frame = protocol.chat_broadcast(
            peer.username,
            message["message"],
            self._wallclock(),
            message_id=self._last_id,
            room=room.name,
            action=message.get("action", False),
        )
        room.append(frame)
        actions = self._to_room(room, frame)
        return [*actions, Store(frame)] if self._stored else actions

    def _on_private(self, peer: _Peer, message: Frame) -> list[Action]:
        receiver = self._by_name.get(_key(message["to"]))
        if receiver is None:
            return self._refuse(peer, f"No such user: {message['to']}")
        if receiver is peer:
            return self._refuse(peer, "You cannot send a private message to yourself")
        if "private" not in receiver.features:
            return self._refuse(
                peer, f"{receiver.username}'s client cannot receive private messages"
            )
        log.info("Private message from %s to %s", peer.username, receiver.username)  # not its text
        return self._relay_private(peer, receiver, message)

    def _relay_private(self, peer: _Peer, receiver: _Peer, message: Frame) -> list[Action]:
        """Relay a private message that passed the checks, to its receiver and its sender.

        A method of its own, as :meth:`_relay_chat` is.
        """
        assert peer.username is not None and receiver.username is not None
        self._last_id += 1
        frame = protocol.private(
            peer.username, receiver.username, message["message"], self._wallclock(), self._last_id
        )
        return [Send((receiver.conn, peer.conn), protocol.encode(frame))]

    # -- history

    def _history_on_entering(self, peer: _Peer, room: Room) -> list[Action]:
        """``peer`` entered ``room``: load the room if it was idle; send its latest messages.

        The history holds the messages relayed before the peer came, and none
        it receives live; while the room is loading, it waits for the store.
        """
        actions: list[Action] = []
        if not room.complete and not room.fetching:
            room.fetching = True  # ask once, however many come meanwhile
            actions.append(Fetch(room.name, HISTORY_CACHE, generation=room.generation))
        if "history" in peer.features:
            if room.complete:
                actions.append(self._history_of(room, peer.conn, self._last_id))
            else:
                room.waiting[peer.conn] = self._last_id
                peer.owed += 1  # sent when the store answers
        return actions

    def _history_of(self, room: Room, conn: ConnId, last_id: int) -> Send:
        frames, more = room.latest(last_id, protocol.HISTORY_PAGE)
        return Send((conn,), protocol.encode(protocol.history(room.name, frames, more)))

    def _on_history(self, peer: _Peer, message: Frame) -> list[Action]:
        room = peer.rooms.get(room_key(message["room"]))
        if room is None:
            return self._refuse(peer, f"You are not in {message['room']}")
        before, after, limit = message.get("before"), message.get("after"), message["limit"]
        page = room.page(before=before, after=after, limit=limit)
        if page is None:
            peer.owed += 1  # sent when the store answers
            return [Fetch(room.name, limit, before=before, after=after, conn=peer.conn)]
        frames, more = page
        return [Send((peer.conn,), protocol.encode(protocol.history(room.name, frames, more)))]

    # -- limits

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
