"""Who is where, as a client sees it: its rooms and their members, kept up to date.

The server never sends a client the whole picture again: it sends the members
once (``welcome``, ``room_joined``), then only changes (``user_joined``,
``user_left``, ``user_renamed``, ``room_left``).  A :class:`Roster` applies
each change as it arrives, so that ``/users`` and the widget's list of who is
online can answer at once, without asking the server.

It is fed from the client's receive thread and read from others (the terminal's
main thread, the widget's): every change replaces a list rather than editing it
in place, so a reader always sees a whole list, old or new.
"""

from __future__ import annotations

from typing import Any

from chat.protocol import LOBBY, room_key

__all__ = ["Roster"]

Event = dict[str, Any]


class Roster:
    """A client's rooms, each with its members in the order they came."""

    def __init__(self) -> None:
        self._rooms: dict[str, tuple[str, list[str]]] = {}  # key -> (name, members)

    @property
    def rooms(self) -> dict[str, list[str]]:
        """Every room the client is in, and who is there (a copy)."""
        return {name: list(members) for name, members in list(self._rooms.values())}

    def members(self, room: str = LOBBY) -> list[str]:
        """Who is in ``room`` (empty if the client is not in it)."""
        entry = self._rooms.get(room_key(room))
        return list(entry[1]) if entry else []

    def __contains__(self, room: object) -> bool:
        return isinstance(room, str) and room_key(room) in self._rooms

    def name_of(self, room: str) -> str:
        """The room's name as the server spells it (``#Rust`` for ``#rust``), if known."""
        entry = self._rooms.get(room_key(room))
        return entry[0] if entry else room

    def apply(self, event: Event, me: str | None = None) -> str | None:
        """Apply one event from the server; return our new name if we were renamed."""
        kind = event.get("type")
        room = event.get("room", LOBBY)
        if not isinstance(room, str):
            return None
        if kind == "welcome":
            self._rooms = {room_key(LOBBY): (LOBBY, _names(event.get("users")))}
        elif kind == "room_joined":
            self._rooms[room_key(room)] = (room, _names(event.get("users")))
        elif kind == "room_left":
            self._rooms.pop(room_key(room), None)
        elif kind in ("user_joined", "user_left"):
            entry = self._rooms.get(room_key(room))
            name = event.get("username")
            if entry and isinstance(name, str):
                others = [m for m in entry[1] if m != name]
                members = [*others, name] if kind == "user_joined" else others
                self._rooms[room_key(room)] = (entry[0], members)
        elif kind == "user_renamed":
            old, new = event.get("old"), event.get("new")
            if isinstance(old, str) and isinstance(new, str):
                for key, (name, members) in list(self._rooms.items()):
                    self._rooms[key] = (name, [new if m == old else m for m in members])
                if old == me:
                    return new
        return None


def _names(users: Any) -> list[str]:
    """The names in a ``users`` list; none if a faulty server sent something else."""
    return [str(user) for user in users] if isinstance(users, list) else []
