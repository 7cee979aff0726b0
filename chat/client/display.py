"""How chat events look to a person: one line of text per event.

The terminal client prints these lines and the notebook widget shows the same
words, so they are written once, here.  Everything a peer sent passes through
:func:`safe_text` first.  The server already strips control characters, but a
client must not rely on that -- it may be talking to someone else's server.
An unfiltered ``ESC [2J`` from a peer would clear your terminal; a carriage
return could overwrite the start of a line to fake who said it.
"""

from __future__ import annotations

import re
import time
from typing import Any

from chat.protocol import LOBBY, room_key

__all__ = [
    "clock_time",
    "format_chat",
    "format_event",
    "format_history",
    "format_pong",
    "format_unknown_command",
    "format_users",
    "safe_text",
]

JOINED = "🟢"
LEFT = "🔴"
WELCOME = "✅"
ERROR = "❌"
SHUTDOWN = "🛑"
DISCONNECTED = "🔌"
ONLINE = "👥"
PONG = "🏓"
UNKNOWN = "❓"
PRIVATE = "🔒"
DOOR = "🚪"
ROOMS = "🏠"
RENAMED = "✏️"
HISTORY = "📜"

# C0 controls (which include ESC, CR and LF), DEL and the C1 controls; and the
# line and paragraph separators, and the bidirectional overrides that can make
# text display in a misleading order; and lone surrogates, which no terminal
# can print (writing one raises UnicodeEncodeError).
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode "control picture": ESC shows as ␛
    if code == 0x7F:
        return "\u2421"  # ␡
    return "\ufffd"


def safe_text(value: Any) -> str:
    """Text that can be printed without the peer controlling the screen."""
    return _UNSAFE.sub(_visible, str(value))


def clock_time(timestamp: Any = None) -> str:
    """``HH:MM:SS`` in local time; now if the timestamp is missing or invalid."""
    if not isinstance(timestamp, (int, float)) or isinstance(timestamp, bool):
        timestamp = time.time()
    try:
        return time.strftime("%H:%M:%S", time.localtime(timestamp))
    except (OverflowError, OSError, ValueError):
        return time.strftime("%H:%M:%S")


def format_event(
    event: dict[str, Any], *, room: str | None = None, me: str | None = None
) -> str | None:
    """The line to show for one event, or ``None`` for events not meant to be seen.

    ``room``: the room the user is looking at; a message from another room is
    marked with its room's name.  ``me``: the user's own name, so that a
    private message it sent reads "you -> bob".
    """
    kind = event.get("type")
    text = safe_text(event.get("message", ""))
    name = safe_text(event.get("username", "?"))
    if kind == "chat":
        return format_chat(event, room=room)
    if kind == "private":
        sender, receiver = safe_text(event.get("from", "?")), safe_text(event.get("to", "?"))
        sender = "you" if event.get("from") == me else sender
        receiver = "you" if event.get("to") == me else receiver
        return f"[{clock_time(event.get('timestamp'))}] {PRIVATE} {sender} → {receiver}: {text}"
    if kind == "user_joined":
        return f"{JOINED} {_where(event, room, text)}{text or name + ' joined the chat'}"
    if kind == "user_left":
        return f"{LEFT} {_where(event, room, text)}{text or name + ' left the chat'}"
    if kind == "welcome":
        return f"{WELCOME} {text}\n{format_users(event.get('users'))}"
    if kind == "room_joined":
        here = _names(event.get("users"))
        return f"{DOOR} You are in {safe_text(event.get('room', '?'))} now. Here: {here}"
    if kind == "room_left":
        return f"{DOOR} You left {safe_text(event.get('room', '?'))}"
    if kind == "rooms":
        rooms = event.get("rooms") if isinstance(event.get("rooms"), list) else []
        listed = ", ".join(
            f"{safe_text(r.get('room', '?'))} ({safe_text(r.get('users', '?'))})"
            for r in rooms
            if isinstance(r, dict)
        )
        return f"{ROOMS} Rooms: {listed or 'none'}"
    if kind == "users":
        return format_users(event.get("users"), room=event.get("room"))
    if kind == "user_renamed":
        return f"{RENAMED} {text or safe_text(event.get('new', '?'))}"
    if kind == "history":
        return format_history(event, room=room)
    if kind == "error":
        return f"{ERROR} {text}"
    if kind == "server_shutdown":
        return f"{SHUTDOWN} {text or 'The server is shutting down'}"
    if kind == "disconnected":
        return f"{DISCONNECTED} {safe_text(event.get('reason', 'Disconnected'))}"
    return None  # pong, and types from extensions we do not know


def format_chat(event: dict[str, Any], *, room: str | None = None) -> str:
    """``[12:00:00] bob: hi``; ``* bob waves`` for an action; ``#rust`` before it from elsewhere."""
    stamp = clock_time(event.get("timestamp"))
    name = safe_text(event.get("username", "?"))
    text = safe_text(event.get("message", ""))
    elsewhere = _where(event, room)
    if event.get("action") is True:
        return f"[{stamp}] {elsewhere}* {name} {text}"
    return f"[{stamp}] {elsewhere}{name}: {text}"


def format_history(event: dict[str, Any], *, room: str | None = None) -> str | None:
    """A page of history: a heading, then each message as it was shown live."""
    messages = [m for m in event.get("messages") or [] if isinstance(m, dict)]
    if not messages:
        return None  # nothing was said: nothing to show
    where = safe_text(event.get("room", "?"))
    lines = [f"{HISTORY} Earlier in {where}:"]
    lines += [f"  {format_chat(m, room=event.get('room') or room)}" for m in messages]
    if event.get("more") is True:
        lines.append(f"  {HISTORY} (older messages: /history)")
    return "\n".join(lines)


def _where(event: dict[str, Any], room: str | None, text: str = "") -> str:
    """``#rust `` before news from a room other than the one shown (unless ``text`` names it)."""
    where = event.get("room")
    if room is None or not isinstance(where, str) or room_key(where) == room_key(room):
        return ""
    return "" if where in text else f"{safe_text(where)} "


def _names(users: Any) -> str:
    return ", ".join(safe_text(u) for u in users) if isinstance(users, list) else "?"


# The answers to the slash commands of chat.client.commands, worded once for both clients.


def format_pong(rtt: float) -> str:
    """The answer to ``/ping``: the round trip in milliseconds."""
    return f"{PONG} Pong! Round trip {rtt * 1000:.1f} ms"


def format_users(users: Any, room: Any = None) -> str:
    """Who is online (in the lobby, where everyone is), or who is in another ``room``."""
    lobby = not isinstance(room, str) or room_key(room) == room_key(LOBBY)
    where = "Online" if lobby else f"In {safe_text(room)}"
    return f"{ONLINE} {where}: {_names(users)}"


def format_unknown_command(text: str) -> str:
    """The answer to a line that looks like a command but is none."""
    return f"{UNKNOWN} Unknown command {safe_text(text)}. Type /help for the list."
