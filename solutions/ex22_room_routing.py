"""Exercise 22 (notebook 10_extensions): route a chat to its room's members, and no one else.

With one room, a chat went to everyone online.  With rooms it goes to the
members of *one* room -- which is what makes a message, and a join, cost
O(room) instead of O(everyone) (notebook 10 counts it).  And whoever is not in
a room may not talk in it.  A chat to ``#secret`` from outside must neither be
delivered (its members never let the sender in) nor dropped in silence (the
sender would believe it arrived): it is refused, with a reason, to the sender
alone.

:class:`Rooms` keeps who is in which room; entering and leaving are given.
Rooms are compared without regard to case (``#Rust`` is ``#rust``, see
:func:`room_key`) and keep the name as their first member spelled it.  Users
are plain names here: the "connections" a :class:`Send` goes to.

Write :meth:`Rooms.route`, what the server sends when ``sender`` says
``message`` in ``room``:

* A chat that names no room (``room=None``) is for :data:`LOBBY`.
* If the sender is not a member of that room (a room that does not exist has
  no members), the answer is one :class:`Send` to the sender alone, of
  ``{"type": "error", "message": "You are not in #rust"}`` -- the room as the
  sender wrote it -- and nothing else happens.
* Otherwise, one :class:`Send` of the relayed frame (build it with
  :meth:`Rooms.relay`, which also hands out the message's id) to every member
  of the room, the sender included (so it knows the message went out), in the
  order they entered.  A refused chat must not use up an id.

Check your work:  python -m exercises 22
Stuck?            python -m exercises --hint 22
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The room everyone is in after joining.
LOBBY = "#lobby"

Frame = dict[str, Any]


@dataclass(frozen=True)
class Send:
    """Send ``frame`` to each user in ``to`` (the core's action, without the bytes)."""

    to: tuple[str, ...]
    frame: Frame


@dataclass
class Room:
    name: str  # as its first member spelled it
    members: dict[str, None] = field(default_factory=dict)  # a dict as an ordered set


def room_key(room: str) -> str:
    """Rooms are compared without regard to case: ``#Rust`` is ``#rust``."""
    return room.casefold()


class Rooms:
    """Who is in which room, and where a chat goes.  Sans-I/O: frames in, actions out."""

    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {LOBBY: Room(LOBBY)}  # by room_key
        self.last_id = 0  # the id of the last message relayed

    def enter(self, user: str, room: str = LOBBY) -> None:
        """``user`` enters ``room`` (made if it does not exist yet)."""
        key = room_key(room)
        if key not in self._rooms:
            self._rooms[key] = Room(room)
        self._rooms[key].members[user] = None

    def leave(self, user: str, room: str) -> None:
        """``user`` leaves ``room``; an empty room goes (but the lobby stays)."""
        key = room_key(room)
        found = self._rooms.get(key)
        if found is None or user not in found.members:
            return
        del found.members[user]
        if not found.members and key != LOBBY:
            del self._rooms[key]

    def members(self, room: str) -> list[str]:
        """Who is in ``room``, in the order they entered (empty if it does not exist)."""
        found = self._rooms.get(room_key(room))
        return list(found.members) if found else []

    def relay(self, sender: str, room: Room, message: str) -> Frame:
        """The frame a chat is relayed as, with the next message id (one id per call)."""
        self.last_id += 1
        return {
            "type": "chat",
            "id": self.last_id,
            "room": room.name,
            "username": sender,
            "message": message,
        }

    def route(self, sender: str, room: str | None, message: str) -> list[Send]:
        """What to send when ``sender`` says ``message`` in ``room`` (None: the lobby)."""
        ### BEGIN SOLUTION
        ### TODO: find the Room in self._rooms (by room_key; None means LOBBY).  Not found,
        ###       or the sender not among its members: return [Send((sender,), the error)].
        ###       Else: [Send(the Room's members, in order, self.relay(sender, the Room, message))].
        name = LOBBY if room is None else room
        found = self._rooms.get(room_key(name))
        # One test covers both refusals: a room that does not exist has no
        # members, so the sender is not one.  Check before relay(): a refused
        # chat must not use up an id.
        if found is None or sender not in found.members:
            return [Send((sender,), {"type": "error", "message": f"You are not in {name}"})]
        frame = self.relay(sender, found, message)
        # The room's members only: the cost is the room's size, however many
        # users are online.  tuple() copies them in the order they entered.
        return [Send(tuple(found.members), frame)]
        ### END SOLUTION
