"""The slash commands both chat clients understand, and what they do.

A line that starts with ``/`` is a command for the client itself and is never
sent as it is; every other line is a chat message, for the room the user is
looking at.  To send a message that starts with a slash, double it:
``//shrug`` sends ``/shrug``.

Both user interfaces -- the terminal (:mod:`chat.client.terminal`) and the
widget (:mod:`chat.widget`) -- parse a line with :func:`parse_command` and
carry it out with :func:`execute`, so they understand the same commands and
answer in the same words.  What differs between them is only where the
answer is shown.  A :class:`Focus` is what a user interface remembers between
lines: the room it shows, and how far back it has shown each room's history.

Against a server that does not offer an extension (a v1 server), its commands
say so instead of sending anything: "/join: Not supported by this server".
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chat.client.connection import DISCONNECTED, ChatClient, ChatError
from chat.client.display import (
    ERROR,
    format_pong,
    format_unknown_command,
    format_users,
    safe_text,
)
from chat.protocol import LOBBY, room_key

__all__ = [
    "HELP_TEXT",
    "QUIT_ALIASES",
    "Command",
    "Focus",
    "execute",
    "message_text",
    "parse_command",
]

QUIT_ALIASES = ("/quit", "/exit", "/q")

#: Each command, what it takes, and what it does, in the order /help lists them.
COMMANDS = {
    "/join": ("#room", "enter a room, or switch to one you are in"),
    "/leave": ("[#room]", "leave a room (the one you are in by default)"),
    "/rooms": ("", "list every room"),
    "/users": ("[#room]", "who is in a room"),
    "/msg": ("NAME TEXT", "send a private message"),
    "/me": ("TEXT", "an action: '* alice waves'"),
    "/nick": ("NAME", "take another name"),
    "/history": ("", "older messages of this room"),
    "/ping": ("", "measure the round trip to the server"),
    "/help": ("", "show this help"),
    "/quit": ("", "leave the chat (also /exit and /q)"),
}

HELP_TEXT = "Commands:\n" + "\n".join(
    f"  {f'{name} {args}'.strip():<17} {what}" for name, (args, what) in COMMANDS.items()
)


@dataclass(frozen=True)
class Command:
    """A parsed command: ``name`` is the command without its slash (``quit``
    for all its aliases) or ``unknown``; ``arg`` is the rest of the line."""

    name: str
    text: str  # the line as typed, for messages such as "unknown command /foo"
    arg: str = ""


def parse_command(line: str) -> Command | None:
    """The command on this line, or ``None`` if the line is a chat message."""
    stripped = line.strip()
    if not stripped.startswith("/") or stripped.startswith("//"):
        return None
    word, _, arg = stripped.partition(" ")
    word = word.lower()
    if word in QUIT_ALIASES:
        return Command("quit", stripped)
    if word in COMMANDS:
        return Command(word[1:], stripped, arg.strip())
    return Command("unknown", stripped)


def message_text(line: str) -> str:
    """The chat text to send for a non-command line (``//x`` becomes ``/x``)."""
    stripped = line.strip()
    return stripped[1:] if stripped.startswith("//") else stripped


@dataclass
class Focus:
    """What a user interface remembers: the room it shows, and each room's oldest line shown.

    Call :meth:`follow` with every event (on the receive thread): the focus
    moves to a room once the server says we are in it, and back to the lobby
    (or another room we are in) when we leave the one shown.  ``/join``,
    ``/leave`` and ``/nick`` wait (briefly) for their answer, so that the next
    line typed -- or piped: a script sends its lines at once -- goes to the
    right room, under the right name.
    """

    room: str = LOBBY
    oldest: dict[str, int] = field(default_factory=dict)  # room key -> smallest id shown
    asked: str | None = None  # the answer we wait for: "room_joined", "room_left" ...
    answered: threading.Event = field(default_factory=threading.Event)

    def follow(self, event: dict[str, Any], client: ChatClient) -> None:
        kind = event.get("type")
        room = event.get("room")
        if kind == "welcome":  # a new connection: in the lobby, nothing shown yet
            self.room = LOBBY
            self.oldest.clear()
        elif kind == "room_joined" and isinstance(room, str):
            self.room = room  # a room joined is the room shown ...
            self.oldest.pop(room_key(room), None)  # ... from the history page that follows
        elif (
            kind == "room_left" and isinstance(room, str) and room_key(room) == room_key(self.room)
        ):
            rooms = list(client.rooms)
            self.room = LOBBY if LOBBY in rooms or not rooms else rooms[0]
        elif kind == "history" and isinstance(room, str):
            ids = [m["id"] for m in event.get("messages") or [] if isinstance(m.get("id"), int)]
            if ids:
                self.seen(room, min(ids))
        elif kind == "chat" and isinstance(event.get("id"), int):
            self.seen(room if isinstance(room, str) else LOBBY, event["id"])
        if self.asked is not None and kind in (self.asked, "error", DISCONNECTED):
            self.asked = None  # the answer, or the refusal (an error), came
            self.answered.set()

    def seen(self, room: str, message_id: int) -> None:
        key = room_key(room)
        self.oldest[key] = min(self.oldest.get(key, message_id), message_id)

    def ask(self, answer: str, send: Callable[[], None], timeout: float) -> None:
        """Send a request, then wait (at most ``timeout``) for ``answer`` or an error."""
        self.answered.clear()
        self.asked = answer
        send()
        self.answered.wait(timeout)


def execute(command: Command, client: ChatClient, focus: Focus) -> str | None:
    """Carry out ``command`` (anything but ``quit``); return the line to show, if any.

    Commands that ask the server something (``/rooms``, ``/history``) return
    nothing: the answer arrives as an event, and is shown as such.  A command
    the server does not support, or that cannot be sent, says why.
    """
    try:
        return _execute(command, client, focus)
    except ChatError as exc:
        return f"{ERROR} /{command.name}: {safe_text(exc)}"


def _execute(command: Command, client: ChatClient, focus: Focus) -> str | None:
    name, arg = command.name, command.arg
    if name == "ping":
        return format_pong(client.ping())
    if name == "help":
        return HELP_TEXT
    if name == "join":
        if not arg:
            return f"{ERROR} Usage: /join #room"
        if arg in client.roster:
            focus.room = client.roster.name_of(arg)  # already there: look at it
            return None
        focus.ask("room_joined", lambda: client.join_room(arg), client.timeout)
        return None
    if name == "leave":
        focus.ask("room_left", lambda: client.leave_room(arg or focus.room), client.timeout)
        return None
    if name == "rooms":
        client.list_rooms()
        return None
    if name == "users":
        room = arg or focus.room
        if room in client.roster:
            return format_users(client.roster.members(room), client.roster.name_of(room))
        client.list_users(room)  # a room we are not in: the server knows
        return None
    if name == "msg":
        to, _, text = arg.partition(" ")
        if not to or not text.strip():
            return f"{ERROR} Usage: /msg NAME TEXT"
        client.send_private(to, text.strip())
        return None
    if name == "me":
        if not arg:
            return f"{ERROR} Usage: /me TEXT"
        client.send_chat(arg, focus.room, action=True)
        return None
    if name == "nick":
        if not arg:
            return f"{ERROR} Usage: /nick NAME"
        focus.ask("user_renamed", lambda: client.rename(arg), client.timeout)
        return None
    if name == "history":
        client.request_history(focus.room, before=focus.oldest.get(room_key(focus.room)))
        return None
    return format_unknown_command(command.text)
