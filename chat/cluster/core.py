"""The chat's rules when several servers form one chat -- still without any I/O.

:class:`ClusterCore` is a :class:`chat.core.ChatCore` that knows it is one
*node* of a chat shared with other servers.  It does no I/O either: whatever
needs the whole chat becomes an action, and the answer comes back as a call,
exactly as the history store's :class:`chat.core.Fetch` does.  The broker
component (:mod:`chat.cluster.broker`, over Redis) carries out those actions.

Three new actions:

* :class:`Claim` -- "may this connection take this name, on every node?".
  Names must be unique across the chat, and only the broker sees every node,
  so a ``join`` (or a ``nick``) waits for the answer, :meth:`ClusterCore.claimed`,
  before the ``welcome`` goes out.  While it waits, the connection is *held*:
  lines it sends meanwhile stay in its decoder, in order, until the answer.
* :class:`Publish` -- put an *event* on the chat's relay, which every node
  (this one included) reads in one order and hands to :meth:`ClusterCore.relayed`.
  A room message is delivered when it comes back from the relay, not when it
  is sent: that is how every node delivers every message in the same order,
  and how its ``id`` (handed out by the broker) grows across the whole chat.
  Presence events (someone joined, entered or left a room, renamed, quit) are
  applied here at once and published for the other nodes.
* :class:`Release` -- a name claimed for a connection that went away before
  the answer came.

And the answers and news the broker brings (all but ``history_fetched`` new):
``claimed``, ``relayed``, ``linked`` (the link to the broker is up: here is
everyone else, as they are now), ``unlinked`` (it is down), ``node_gone``
(another node stopped sending heartbeats).

Users of other nodes are kept as :class:`chat.core` peers with a ``node`` and
no connection: they are in the rooms and the name index, so every list
(``welcome``, ``users``, ``rooms``) and every check (a private message's
receiver, a taken name) spans the chat, and nothing is ever sent to them
from here -- their own node does that.

Without a link to the broker (it is down or unreachable) the node is
*degraded*: it serves its own clients as a single server would -- room
messages among its own users, numbered by itself -- and refuses what needs
the whole chat (a new name, a private message to another node's user).
PROTOCOL.md, section 16, states what each guarantee is and what an outage
costs.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chat import protocol
from chat.core import Action, ChatCore, ConnId, Fetch, Send, _key, _Peer
from chat.limits import HISTORY_CACHE, Limits
from chat.protocol import LOBBY, room_key
from chat.rooms import Room

__all__ = ["Claim", "ClusterCore", "Publish", "Release"]

log = logging.getLogger(__name__)

Frame = dict[str, Any]

#: What a held connection may send before its name is settled (the broker answers in ms).
HELD_BYTES = 64 * 1024

UNREACHABLE = "the chat's other servers cannot be reached right now: try again in a moment"


@dataclass(frozen=True)
class Claim:
    """Ask the broker for ``username`` on every node; answer with :meth:`ClusterCore.claimed`.

    ``old``: the name it replaces (a ``nick``), or ``None`` (a ``join``).
    """

    conn: ConnId
    username: str
    old: str | None = None


@dataclass(frozen=True)
class Release:
    """Give back a name claimed for a connection that is gone."""

    username: str


@dataclass(frozen=True)
class Publish:
    """Put ``event`` on the chat's relay, for every node, in one order.

    A ``chat`` or ``private`` event comes back to every node with an ``id``
    the broker gave it; a presence event is for the other nodes.  ``user``:
    with a presence event, the user's :func:`record` as it is now, which the
    broker keeps in its list of this node's users for nodes that start later
    (not put on the relay); ``None`` when the user has left.
    """

    event: Frame
    user: Frame | None = None


class _Remote:
    """The connection id of a user on another node: a token, never a socket."""

    __slots__ = ("node",)

    def __init__(self, node: str) -> None:
        self.node = node

    def __repr__(self) -> str:
        return f"<remote user on {self.node}>"


def relayed_chat(event: Frame, message_id: int, room: str) -> Frame:
    """The chat frame clients get for a relayed ``chat`` event, live or as history.

    ``room``: as the receiving node spells it (a room is shown as its first
    member spelled it, and each node has its own first member).
    """
    return protocol.chat_broadcast(
        event["username"],
        event["message"],
        event["timestamp"],
        message_id=message_id,
        room=room,
        action=event.get("action", False),
    )


def record(peer: _Peer) -> Frame:
    """What other nodes need to know about a user: name, features, rooms (lobby first)."""
    return {
        "username": peer.username,
        "declared": peer.declared,
        "features": sorted(peer.features),
        "rooms": [room.name for room in peer.rooms.values()],
    }


class ClusterCore(ChatCore):
    """The rules of one node of a chat shared by several servers.

    ``node`` names this server among the others (the broker makes one up).
    History always comes from the broker (the rooms load it with ``Fetch``).
    """

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        node: str,
        clock: Callable[[], float] = time.monotonic,
        wallclock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(limits, clock=clock, wallclock=wallclock, stored_history=True)
        self.node = node
        self.online = False  # linked to the broker: the whole chat is reachable
        self.skipped = 0  # relayed messages not delivered: their id was not above the last
        self._remote: dict[str, dict[str, _Peer]] = {}  # node -> name key -> user
        self._claims: set[str] = set()  # name keys claimed for connections here, not yet answered
        # Messages clients here sent through the relay that have not come back yet: each
        # is an answer its sender is owed (``_Peer.owed``), so its pongs wait for it.
        self._tickets = itertools.count(1)
        self._in_flight: dict[int, ConnId] = {}  # ticket -> the connection that sent it

    # -- names: join and nick wait for the whole chat's answer

    def _grant(self, peer: _Peer, message: Frame) -> list[Action]:
        """A name free on this node (ChatCore checked): claim it on every node first."""
        username = message["username"]
        key = _key(username)
        if key in self._claims:  # another connection here asked first: it is taken
            return self._refuse(peer, "Username already taken")
        if not self.online:
            return self._refuse(peer, f"Cannot check that name: {UNREACHABLE}")
        peer.held = message  # what it sends next waits for the answer
        self._claims.add(key)
        return [Claim(peer.conn, username, peer.username)]

    def receive(self, conn: ConnId, data: bytes) -> list[Action]:
        peer = self._peers.get(conn)
        if peer is not None and peer.held is not None:
            peer.decoder.feed(data)  # kept, in order, for when the name is settled
            if peer.decoder.buffered <= HELD_BYTES:
                return []
            return self._refuse(peer, "Too much sent before the answer to your join", close=True)
        return super().receive(conn, data)

    def claimed(self, answers: list[tuple[Claim, bool | None]]) -> list[Action]:
        """The broker's answers: each claim granted (True), refused (False) or unknown (None).

        Unknown: the link failed before the answer came.  The name may or may
        not be ours now, so it is refused here and given back later.
        """
        actions: list[Action] = []
        for claim, granted in answers:
            self._claims.discard(_key(claim.username))
            peer = self._peers.get(claim.conn)
            if peer is None or peer.held is None:
                if granted is not False:  # claimed for a connection that has gone
                    actions.append(Release(claim.username))
                continue
            message, peer.held = peer.held, None
            if granted is None:
                actions += self._refuse(peer, f"Cannot check that name: {UNREACHABLE}")
                actions.append(Release(claim.username))
            elif not granted:
                actions += self._refuse(peer, "Username already taken")
            else:
                actions += self._take_name(peer, claim, message)
            actions += self.receive(peer.conn, b"")  # the lines that waited
        return actions

    def _take_name(self, peer: _Peer, claim: Claim, message: Frame) -> list[Action]:
        actions: list[Action] = []
        stale = self._by_name.get(_key(claim.username))
        if stale is not None and stale.node is not None:
            # The broker gave us the name, so its holder's node is gone; we
            # have not been told yet.
            actions += self._drop(stale)
        if claim.old is None:
            actions += self._welcome(peer, message)
            user = record(peer)
            return [*actions, Publish({"kind": "joined", "node": self.node, "user": user}, user)]
        actions += self._rename(peer, claim.username)
        event = {"kind": "renamed", "node": self.node, "old": claim.old, "new": claim.username}
        return [*actions, Publish(event, record(peer))]

    # -- presence: applied here at once, then published for the others

    def _on_join_room(self, peer: _Peer, message: Frame) -> list[Action]:
        key = room_key(message["room"])
        was_in = key in peer.rooms
        actions = super()._on_join_room(peer, message)
        if not was_in and key in peer.rooms:
            event = {"kind": "entered", "node": self.node, "username": peer.username}
            actions.append(Publish({**event, "room": peer.rooms[key].name}, record(peer)))
        return actions

    def _on_leave_room(self, peer: _Peer, message: Frame) -> list[Action]:
        key = room_key(message["room"])
        room = peer.rooms.get(key)
        actions = super()._on_leave_room(peer, message)
        if room is not None and key not in peer.rooms:
            event = {"kind": "exited", "node": self.node, "username": peer.username}
            actions.append(Publish({**event, "room": room.name}, record(peer)))
        return actions

    def disconnect(self, conn: ConnId, reason: str = "connection closed") -> list[Action]:
        peer = self._peers.get(conn)
        actions = super().disconnect(conn, reason)
        if peer is not None and peer.username is not None:
            actions.append(Publish({"kind": "quit", "node": self.node, "username": peer.username}))
        return actions

    # -- messages: sent through the relay, delivered when they come back

    def _relay_chat(self, peer: _Peer, room: Room, message: Frame) -> list[Action]:
        """Through the relay: every node delivers it, this one too, when it comes back."""
        if not self.online:
            return super()._relay_chat(peer, room, message)  # degraded: among this node's users
        event = {
            "kind": "chat",
            "node": self.node,
            "username": peer.username,
            "message": message["message"],
            "timestamp": self._wallclock(),
            "room": room.name,
        }
        if message.get("action"):
            event["action"] = True
        return [self._publish(peer, event)]

    def _relay_private(self, peer: _Peer, receiver: _Peer, message: Frame) -> list[Action]:
        """Through the relay, even between two users of this node (for its id)."""
        if not self.online:  # degraded: this node's users only
            if receiver.node is not None:
                where = f"{receiver.username} is on another server"
                return self._refuse(peer, f"{where}: {UNREACHABLE}")
            return super()._relay_private(peer, receiver, message)
        event = {
            "kind": "private",
            "node": self.node,
            "from": peer.username,
            "to": receiver.username,
            "to_node": receiver.node or self.node,
            "message": message["message"],
            "timestamp": self._wallclock(),
        }
        return [self._publish(peer, event)]

    def _publish(self, peer: _Peer, event: Frame) -> Publish:
        """A message of a client here, for the relay.

        A single server relays a message at once; here it comes back from the
        relay after a round trip to Redis, so until then it is an answer its
        sender is owed, and a pong the sender asks for meanwhile waits for it.
        """
        ticket = next(self._tickets)
        self._in_flight[ticket] = peer.conn
        peer.owed += 1
        return Publish({**event, "ticket": ticket})

    def _landed(self, event: Frame) -> list[Action]:
        """A message of this node came back from the relay: its sender is owed it no more."""
        if event["node"] != self.node:
            return []
        conn = self._in_flight.pop(event.get("ticket", 0), None)
        peer = self._peers.get(conn) if conn is not None else None
        return self._settle(peer) if peer is not None else []  # gone: nothing to send

    # -- what the relay brings, in the one order every node sees

    def relayed(self, events: list[Frame], *, presence: bool = True) -> list[Action]:
        """Events from the relay, in its order.  ``presence=False``: only messages.

        A node that comes back after an outage first reads what it missed
        (messages only: who is here now comes from :meth:`linked`), then the
        rest as usual.  This node's own presence events are skipped: they were
        applied when they happened.
        """
        actions: list[Action] = []
        for event in events:
            kind = event["kind"]
            if kind == "chat":
                actions += self._deliver_chat(event) + self._landed(event)
            elif kind == "private":
                actions += self._deliver_private(event) + self._landed(event)
            elif presence and event["node"] != self.node:
                handler = getattr(self, f"_remote_{kind}", None)
                if handler is not None:  # a kind from a newer version: ignored
                    actions += handler(event)
        return actions

    def _fresh(self, message_id: int) -> bool:
        """Whether a relayed message is newer than the last one delivered here."""
        if message_id <= self._last_id:
            self.skipped += 1  # numbered below what this node relayed alone meanwhile
            return False
        self._last_id = message_id
        return True

    def _deliver_chat(self, event: Frame) -> list[Action]:
        if not self._fresh(event["id"]):
            return []
        room = self._rooms.get(room_key(event["room"]))
        if room is None:
            return []  # nobody here is in it, nor anyone we know of
        frame = relayed_chat(event, event["id"], room.name)
        room.append(frame)
        return self._to_room(room, frame)

    def _deliver_private(self, event: Frame) -> list[Action]:
        if not self._fresh(event["id"]):
            return []
        to = []
        for name, node in ((event["to"], event["to_node"]), (event["from"], event["node"])):
            peer = self._by_name.get(_key(name))
            if node == self.node and peer is not None and peer.node is None:
                to.append(peer.conn)
        if not to:
            return []
        frame = protocol.private(
            event["from"], event["to"], event["message"], event["timestamp"], event["id"]
        )
        return [Send(tuple(to), protocol.encode(frame))]

    # -- other nodes' users

    def _remote_user(self, event: Frame, name_field: str = "username") -> _Peer | None:
        return self._remote.get(event["node"], {}).get(_key(event[name_field]))

    def _remote_joined(self, event: Frame) -> list[Action]:
        return self._add_remote(event["node"], event["user"])

    def _add_remote(self, node: str, user: Frame) -> list[Action]:
        """A user of ``node`` joined the chat, in the rooms its record names."""
        name = user["username"]
        key = _key(name)
        holder = self._by_name.get(key)
        if holder is not None:
            if holder.node != node:
                log.warning("%s on %s: that name is already in use here; ignored", name, node)
            return []
        peer = _Peer(
            _Remote(node),
            f"{name} on {node}",
            node,
            connected_at=0.0,
            last_seen=0.0,
            tokens=0.0,
            last_refill=0.0,
            username=name,
            features=frozenset(user["features"]) & frozenset(protocol.FEATURES),
            declared=user["declared"],
            node=node,
        )
        self._remote.setdefault(node, {})[key] = peer
        self._by_name[key] = peer
        lobby = self._lobby
        lobby.add(peer.conn, peer)
        peer.rooms[lobby.key] = lobby
        actions = self._to_room(lobby, protocol.user_joined(name, LOBBY))
        for room in user["rooms"]:
            if room_key(room) != lobby.key:
                actions += self._enter(peer, room)
        return actions

    def _remote_entered(self, event: Frame) -> list[Action]:
        peer = self._remote_user(event)
        return self._enter(peer, event["room"]) if peer is not None else []

    def _enter(self, peer: _Peer, name: str) -> list[Action]:
        key = room_key(name)
        if key in peer.rooms:
            return []
        room = self._rooms.get(key) or self._room(name)  # the limit on rooms is for this node's
        room.add(peer.conn, peer)
        peer.rooms[key] = room
        joined = f"{peer.username} joined {room.name}"
        return self._to_room(room, protocol.user_joined(peer.username, room.name, joined))

    def _remote_exited(self, event: Frame) -> list[Action]:
        peer = self._remote_user(event)
        room = peer.rooms.get(room_key(event["room"])) if peer is not None else None
        if peer is None or room is None or room is self._lobby:
            return []
        return self._leave(peer, room)

    def _leave(self, peer: _Peer, room: Room) -> list[Action]:
        assert peer.username is not None
        notice = protocol.user_left(peer.username, room.name, f"{peer.username} left {room.name}")
        return self._exit(peer, room, notice)

    def _remote_quit(self, event: Frame) -> list[Action]:
        peer = self._remote_user(event)
        return self._drop(peer) if peer is not None else []

    def _drop(self, peer: _Peer) -> list[Action]:
        """A user of another node has left the chat: every room it was in is told."""
        assert peer.node is not None and peer.username is not None
        key = _key(peer.username)
        self._remote.get(peer.node, {}).pop(key, None)
        if not self._remote.get(peer.node, True):
            del self._remote[peer.node]
        if self._by_name.get(key) is peer:
            del self._by_name[key]
        actions: list[Action] = []
        for room in list(peer.rooms.values()):
            actions += self._exit(peer, room, protocol.user_left(peer.username, room.name))
        return actions

    def _remote_renamed(self, event: Frame) -> list[Action]:
        peer = self._remote_user(event, "old")
        if peer is None:
            return []
        new_key = _key(event["new"])
        holder = self._by_name.get(new_key)
        if holder is not None and holder is not peer:
            log.warning("%s on %s: that name is already in use here", event["new"], peer.node)
            return self._drop(peer)
        view = self._remote[event["node"]]
        del view[_key(event["old"])]
        view[new_key] = peer
        return self._rename(peer, event["new"])

    def _remote_sync(self, event: Frame) -> list[Action]:
        return self._sync(event["node"], event["users"])

    def _remote_node_left(self, event: Frame) -> list[Action]:
        return self.node_gone(event["node"])

    def _sync(self, node: str, users: list[Frame]) -> list[Action]:
        """Make what we know of ``node``'s users what it says; tell our users the difference."""
        view = self._remote.get(node, {})
        wanted = {_key(user["username"]): user for user in users}
        actions: list[Action] = []
        for key in [key for key in view if key not in wanted]:
            actions += self._drop(view[key])
        for key, user in wanted.items():
            peer = view.get(key)
            if peer is None:
                actions += self._add_remote(node, user)
                continue
            rooms = {room_key(name): name for name in user["rooms"]}
            for room in [r for k, r in peer.rooms.items() if k not in rooms]:
                actions += self._leave(peer, room)
            for name in rooms.values():
                actions += self._enter(peer, name)
        return actions

    # -- the link to the broker

    def node_gone(self, node: str) -> list[Action]:
        """``node`` stopped, or its heartbeats stopped: its users have left."""
        actions: list[Action] = []
        users = list(self._remote.get(node, {}).values())
        if users:
            log.warning("Server %s is gone: %d of its users leave", node, len(users))
        for peer in users:
            actions += self._drop(peer)
        return actions

    def unlinked(self) -> list[Action]:
        """The broker cannot be reached: serve this node's users alone until it can.

        Messages still in the relay may never come back: their senders are owed
        them no more (a pong that waited for them is sent now).
        """
        self.online = False
        in_flight, self._in_flight = self._in_flight, {}
        actions: list[Action] = []
        for conn in in_flight.values():
            peer = self._peers.get(conn)
            if peer is not None:
                actions += self._settle(peer)
        return actions

    def linked(
        self,
        others: dict[str, list[Frame]],
        lost: list[str] | None = None,
        *,
        resumed: bool,
        last_id: int = 0,
    ) -> list[Action]:
        """The link is up: ``others`` are the other nodes' users now.

        ``lost``: names of users here that another node holds now (this node
        was cut off long enough to be taken for dead); they must join again.
        ``resumed``: after an outage, rather than at start.  Then every room
        forgets its in-memory tail of history -- it may lack what was said
        elsewhere meanwhile, and hold what was said only here -- and loads it
        again from the broker.  Nodes not in ``others`` are kept: they may not
        have come back yet (the heartbeats decide).  ``last_id``: at start, the
        last id handed out in the chat -- every message up to it is history.
        """
        self.online = True
        self.continue_ids(last_id + 1)
        actions: list[Action] = []
        for name in lost or ():
            peer = self._by_name.get(_key(name))
            if peer is not None and peer.node is None:
                actions += self._refuse(
                    peer,
                    "Your name was taken while this server was cut off from the chat: join again",
                    close=True,
                )
        for node, users in others.items():
            if node != self.node:
                actions += self._sync(node, users)
        if resumed:
            for room in self._rooms.values():
                room.forget()
                if any(p.node is None for p in room.members.values()):
                    room.fetching = True
                    actions.append(Fetch(room.name, HISTORY_CACHE, generation=room.generation))
        return actions
