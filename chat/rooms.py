"""A room: who is in it, and what was said there lately.

Rooms are part of the chat's rules (:mod:`chat.core`), and like the rules they
do no I/O.  A :class:`Room` knows its members, in the order they came, and
keeps its latest relayed chat frames in memory -- the room's *log*, a bounded
tail of its history (:data:`chat.limits.HISTORY_CACHE` messages).

Why keep a tail in memory when the history lives on disk
(:mod:`chat.store`)?  Because whoever enters a room is sent its latest
messages at once, and those must be exactly the messages before they came --
including the last fraction of a second, which the store has not written yet
(it writes in batches).  The log has them all, in relay order, so the answer
costs no disk read and no waiting.  Only two things need the store: a page
older than the log, and the tail of a room nobody was in since the server
started (the room is *loading* until the store answers).  A server without a
store has nothing but the log: its rooms never load, and what leaves the log
is gone.

The log is always a contiguous suffix of the room's history: every message
newer than its first one is in it.  That is what lets :meth:`Room.page` know
whether it can answer alone.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Hashable, Iterable
from typing import Any

from chat.protocol import room_key

__all__ = ["Audience", "Room", "audience"]

Frame = dict[str, Any]

#: Connections to send to: those that declared features, and v1 clients.
Audience = tuple[tuple[Hashable, ...], tuple[Hashable, ...]]


def audience(members: Iterable[Any]) -> Audience:
    """The connections of ``members`` this server sends to, in two kinds.

    Those that declared features get frames as they are, v1 clients get v1
    frames: two encodings of each frame.  Users of other servers
    (:mod:`chat.cluster`) are members too, but sent nothing from here.
    Reads each member's ``conn``, ``node`` and ``declared``.
    """
    here = [member for member in members if member.node is None]
    return (
        tuple(member.conn for member in here if member.declared),
        tuple(member.conn for member in here if not member.declared),
    )


class Room:
    """One room's members and latest messages.

    ``members`` maps a connection to whatever the core keeps about it, in
    the order they entered (the core's peers); a room reads a
    member's ``username`` (:attr:`usernames`), and its ``conn``, ``node`` and
    ``declared`` (:meth:`audience`).  ``stored``: whether a store keeps the room's
    history beyond the log; without one, the log is all the history there is.
    ``complete``: whether the log's messages are the room's latest -- false
    while loading.  ``older``: whether messages older than the log's first
    may exist in the store.
    """

    __slots__ = (
        "_audience",
        "complete",
        "fetching",
        "generation",
        "key",
        "log",
        "members",
        "name",
        "older",
        "stored",
        "waiting",
    )

    _generations = itertools.count(1)

    def __init__(self, name: str, cache: int, *, stored: bool) -> None:
        self.name = name  # as its first member spelled it
        self.generation = next(Room._generations)  # tells this life of the room from later ones
        self.key = room_key(name)
        self.members: dict[Hashable, Any] = {}  # change it with add() and remove()
        self._audience: Audience | None = None
        self.log: deque[Frame] = deque(maxlen=cache)
        self.stored = stored
        self.complete = not stored  # with a store, the latest messages are on disk until loaded
        self.fetching = False  # its latest messages were asked of the store
        self.older = False
        # Members who entered while the room was loading: conn -> the last id
        # relayed anywhere before they came.  Their history is sent once the
        # store answers, without anything they received live.
        self.waiting: dict[Hashable, int] = {}

    def add(self, conn: Hashable, member: Any) -> None:
        self.members[conn] = member
        self._audience = None

    def remove(self, conn: Hashable) -> None:
        del self.members[conn]
        self._audience = None

    def audience(self) -> Audience:
        """The members' connections: those that declared features, and v1 clients.

        Every message in a room goes to both kinds, each in its own encoding;
        working out who is which for each message would cost a pass over the
        members per message, so it is done once per change of membership.
        """
        if self._audience is None:
            self._audience = audience(self.members.values())
        return self._audience

    def append(self, frame: Frame) -> None:
        """A message relayed in this room (its ``id`` larger than every one before)."""
        if len(self.log) == self.log.maxlen:
            self.older = self.stored  # the oldest one leaves memory; only a store still has it
        self.log.append(frame)

    def loaded(self, frames: list[Frame], more: bool) -> None:
        """The store's answer to loading: the latest stored messages, oldest first."""
        self.complete = True
        if self.older:
            # So much was said while loading that the log overflowed: it holds
            # only the latest live messages, and the store's answer is older
            # than the ones dropped.  The log is the suffix; the rest is on disk.
            return
        newest = frames[-1]["id"] if frames else 0
        live = [f for f in self.log if f["id"] > newest]  # relayed while loading
        merged = [*frames, *live]
        keep = merged[-self.log.maxlen :] if self.log.maxlen else merged
        self.log = deque(keep, maxlen=self.log.maxlen)
        self.older = more or len(keep) < len(merged)

    def latest(self, last_id: int, limit: int) -> tuple[list[Frame], bool]:
        """The latest ``limit`` messages with an id up to ``last_id``, and whether older exist."""
        eligible = [f for f in self.log if f["id"] <= last_id]
        return eligible[-limit:], len(eligible) > limit or self.older

    def page(
        self, *, before: int | None = None, after: int | None = None, limit: int
    ) -> tuple[list[Frame], bool] | None:
        """A page of history from the log, or ``None`` if only the store can answer
        (never without a store: then the log is all the history there is).

        ``before``: the latest ``limit`` messages with a smaller id, and
        whether older ones exist.  ``after``: the earliest ``limit`` messages
        with a larger id, and whether newer ones exist.
        """
        if not self.complete:
            return None
        if before is not None:
            eligible = [f for f in self.log if f["id"] < before]
            if len(eligible) < limit and self.older:
                return None  # the rest is older than the log: on disk
            return eligible[-limit:], len(eligible) > limit or self.older
        assert after is not None
        if self.older and (not self.log or after < self.log[0]["id"]):
            return None  # messages between ``after`` and the log may be on disk
        eligible = [f for f in self.log if f["id"] > after]
        return eligible[:limit], len(eligible) > limit

    def forget(self) -> None:
        """The log may have gaps (several servers, after an outage): load it again when needed."""
        self.log.clear()
        self.complete = self.fetching = self.older = False
        self.generation = next(Room._generations)  # an answer already on its way is stale

    @property
    def usernames(self) -> list[str]:
        """Who is in the room, in the order they came."""
        return [member.username for member in list(self.members.values())]

    def __repr__(self) -> str:
        return f"<Room {self.name}: {len(self.members)} members, {len(self.log)} messages>"
