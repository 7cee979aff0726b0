"""The wire protocol: newline-delimited JSON frames over a TCP byte stream.

TCP delivers bytes reliably and in order, but it has no idea where one message
ends and the next begins.  A single ``recv`` may return half a message, or three
messages and the start of a fourth; a UTF-8 character may even be split between
two reads.  So every message travels as one *frame*: a compact JSON object,
encoded as UTF-8, followed by a newline byte (``b"\\n"``).  JSON escapes any
newline inside a string, so the only raw newline in a frame is the one at its
end, and ``0x0A`` never occurs inside a multi-byte UTF-8 sequence: splitting on
that byte is always safe, even before decoding.

Frames in each direction::

    client -> server   {"type": "join", "username": "alice"}
                       {"type": "chat", "message": "Hi"}
                       {"type": "ping"}
    server -> client   {"type": "welcome", "message": "...", "users": ["alice", "bob"]}
                       {"type": "chat", "username": "alice", "message": "Hi", "timestamp": 1.5}
                       {"type": "user_joined", "username": "bob", "message": "bob joined the chat"}
                       {"type": "user_left", "username": "bob", "message": "bob left the chat"}
                       {"type": "error", "message": "Username already taken"}
                       {"type": "pong"}
                       {"type": "server_shutdown", "message": "..."}

Extensions add new types and fields -- rooms, private messages, nicknames,
history -- negotiated in the join, so that a peer that knows only the frames
above never sees anything else (PROTOCOL.md, the normative description, has
them all).  A peer ignores fields it does not know.  This module does no I/O
at all: it turns messages into bytes (:func:`encode`) and bytes into messages
(:class:`FrameDecoder`), and checks that messages follow the rules.  Servers
and clients of every kind share it.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "ENCODING",
    "FEATURES",
    "FEATURE_OF_TYPE",
    "HISTORY_PAGE",
    "LOBBY",
    "MAX_FRAME_BYTES",
    "MAX_HISTORY_PAGE",
    "MAX_MESSAGE_CHARS",
    "MAX_ROOM_CHARS",
    "MAX_SERVER_FRAME_BYTES",
    "MAX_USERNAME_CHARS",
    "NEWEST",
    "FrameDecoder",
    "ProtocolError",
    "chat",
    "chat_broadcast",
    "clean_message",
    "decode_line",
    "encode",
    "error",
    "history",
    "join",
    "join_room",
    "leave_room",
    "ping",
    "pong",
    "private",
    "request_id_of",
    "room_joined",
    "room_key",
    "room_left",
    "rooms_list",
    "server_shutdown",
    "user_joined",
    "user_left",
    "user_renamed",
    "users_list",
    "validate_client_message",
    "validate_features",
    "validate_room",
    "validate_username",
    "welcome",
]

ENCODING = "utf-8"
DELIMITER = b"\n"

#: Where clients look for a server, and where a server listens, unless told
#: otherwise.  ``localhost`` accepts connections from this machine only.
DEFAULT_HOST = "localhost"
DEFAULT_PORT = 12345

#: The longest frame, in bytes without its newline, that the server accepts.
#: IRC allows 512 bytes, XMPP servers such as Prosody 256 KiB.  64 KiB holds the
#: longest chat message (4,000 characters of 4-byte UTF-8, escaped) many times
#: over and a welcome listing thousands of users, yet a peer that never sends a
#: newline cannot make us buffer more than this.
MAX_FRAME_BYTES = 64 * 1024

#: The longest chat message, in characters.  Discord allows 2,000, Slack 40,000.
MAX_MESSAGE_CHARS = 4000

#: The longest frame a *client* accepts from the server.  Larger, because a
#: ``welcome`` lists every user online: 10,000 users of 20 characters need about
#: 230 KB.  The server is the one peer a client chose to trust this far.
MAX_SERVER_FRAME_BYTES = 1024 * 1024

#: Usernames are 1-20 characters of ASCII letters, digits, ``_`` and ``-``.
MAX_USERNAME_CHARS = 20
USERNAME_PATTERN = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_USERNAME_CHARS}}}")

# C0 and C1 control characters and DEL.  A peer must never be able to move your
# cursor, clear your terminal or start a fake new line, so the server removes
# them from chat text (tab and line breaks become a space, including Unicode's
# LINE and PARAGRAPH SEPARATOR, which some displays break lines at).
# Lone surrogates go too: JSON's "\ud800" escape makes one, but no UTF-8 can
# carry it, so relaying it would make encode() fail for every receiver.  So do
# the bidirectional embeddings, overrides and isolates: "bob: hi \u202e" would
# display the rest of a line backwards, a classic way to disguise text.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
_WHITESPACE_CONTROL = re.compile(r"[\t\n\r\v\f\u2028\u2029]")

# A character that shows something.  Not one: white space, and the characters
# that display as nothing at all -- zero-width spaces and joiners, direction
# marks (LRM, RLM), the soft hyphen, variation selectors, tag characters, and
# the "filler" letters that fonts draw blank (HANGUL FILLER U+3164, BRAILLE
# PATTERN BLANK U+2800).  A message made only of those would show as an empty
# line from someone: a classic way to spam, or to hide who said something.
_VISIBLE = re.compile(
    r"[^\s\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    r"\u202a-\u202e\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e007f]"
)

#: A request id (the optional ``id`` of a ``ping``) is a number or a string of
#: at most this many characters; the answer carries it back unchanged.
MAX_REQUEST_ID_CHARS = 64


class ProtocolError(Exception):
    """A peer broke the protocol.  The message says how, in plain words.

    ``fatal`` tells whether the byte stream is still usable.  After a bad JSON
    line the next frame still starts after the next newline, so the connection
    can go on; after an oversized line or invalid UTF-8 we can no longer trust
    where frames begin, so the connection must be closed.
    """

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


# --------------------------------------------------------------------------
# Frames: messages to bytes and back


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# One encoder and one decoder, made once: json.dumps and json.loads with
# options build a new one on every call, which costs more than a small frame.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def encode(message: dict[str, Any]) -> bytes:
    """Encode one message as one frame: compact JSON, UTF-8, then a newline.

    ``ensure_ascii=False`` keeps "héllo 👋" as readable UTF-8 instead of
    ``\\u`` escapes; JSON still escapes control characters, so the frame holds
    exactly one raw newline, at its end.
    """
    return _ENCODER.encode(message).encode(ENCODING) + DELIMITER


def decode_line(line: bytes) -> dict[str, Any]:
    """Decode one frame (without its newline) into a message dictionary."""
    try:
        text = line.decode(ENCODING)
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"Frame is not valid UTF-8 ({exc.reason})", fatal=True) from None
    try:
        message = _DECODER.decode(text)
    except (ValueError, RecursionError):
        raise ProtocolError("Frame is not valid JSON") from None
    if not isinstance(message, dict):
        raise ProtocolError("Frame must be a JSON object")
    if not isinstance(message.get("type"), str):
        raise ProtocolError('Frame has no "type" string')
    return message


class FrameDecoder:
    """Turns a stream of byte chunks, cut anywhere, into whole lines and messages.

    Operations: :meth:`feed` appends bytes as they arrive from ``recv``;
    :meth:`next_line` returns the next complete line (without its newline), or
    ``None`` when the buffer holds no complete line yet; :meth:`next_frame`
    returns the next message, decoded, skipping blank lines.  A server uses
    :meth:`next_line`, because every line a client sends -- a blank one too --
    costs it something to handle and counts toward the client's rate; a client
    uses :meth:`next_frame`.

    Why a buffer: a frame's bytes may arrive over many reads, so the bytes after
    the last newline are kept until the rest arrives.

    Goals: every byte is scanned once, however it was chunked.  A decoder that
    searched the whole buffer again on each small chunk would take quadratic
    time on a long frame sent a byte at a time: a cheap denial-of-service
    attack.  So ``_scanned`` remembers how far we already know there is no
    newline.  Deleting a consumed line from the front of a ``bytearray`` is
    cheap in CPython (it moves a start offset, not the data).  Each call
    returns at most one line, so a caller can stop (a flooding client was
    disconnected) without first working through everything buffered.

    Bound: the buffer never holds more than ``max_frame_bytes`` without a
    newline.  Past that the decoder raises a fatal :class:`ProtocolError`,
    drops what it buffered and refuses further input.  A line ending in CRLF
    (``\r\n``, what ``telnet`` sends) is measured without its ``\r``, exactly
    as the same line ending in LF.
    """

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()
        self._scanned = 0
        self._failed: ProtocolError | None = None

    def feed(self, data: bytes) -> None:
        """Append bytes received from the peer."""
        if self._failed is None:
            self._buffer += data

    @property
    def buffered(self) -> int:
        """How many bytes wait for the rest of their line."""
        return len(self._buffer)

    def next_line(self) -> bytes | None:
        """Return the next complete line, or ``None`` if more bytes are needed.

        The line comes without its newline and without a ``\r`` before it; a
        blank line comes back as ``b""``.  Raises a fatal :class:`ProtocolError`
        for a line longer than ``max_frame_bytes``.
        """
        if self._failed is not None:
            raise self._failed
        buffer = self._buffer
        end = buffer.find(DELIMITER, self._scanned)
        if end < 0:
            self._scanned = len(buffer)
            # One byte more may be the "\r" of a CRLF whose "\n" is on its way.
            if self._scanned > self.max_frame_bytes + (buffer[-1:] == b"\r"):
                self._fail(f"Line longer than {self.max_frame_bytes} bytes without a newline")
            return None
        line = bytes(buffer[:end])
        del buffer[: end + 1]
        self._scanned = 0
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > self.max_frame_bytes:
            self._fail(f"Frame of {len(line)} bytes exceeds {self.max_frame_bytes} bytes")
        return line

    def next_frame(self) -> dict[str, Any] | None:
        """Return the next complete message, or ``None`` if more bytes are needed.

        Raises :class:`ProtocolError` for a bad frame.  The bad line is
        consumed first, so after a non-fatal error you may call again to get
        the frames that follow it.  Blank lines (a person typing into ``nc``)
        are skipped.
        """
        while (line := self.next_line()) is not None:
            if line.strip():
                return decode_line(line)
        return None

    def _fail(self, reason: str) -> None:
        self._failed = ProtocolError(reason, fatal=True)
        self._buffer = bytearray()
        self._scanned = 0
        raise self._failed


# --------------------------------------------------------------------------
# The rules for names and text


def validate_username(username: Any) -> str:
    """Return the username if it follows the rules, else raise ProtocolError."""
    if not isinstance(username, str):
        raise ProtocolError("Username must be a string")
    if not USERNAME_PATTERN.fullmatch(username):
        raise ProtocolError(
            f"Invalid username {username[:40]!r}: use 1-{MAX_USERNAME_CHARS} letters, "
            "digits, '_' or '-'"
        )
    return username


def clean_message(message: Any) -> str:
    """Return chat text made safe to relay, or raise ProtocolError.

    Control characters (escape sequences, carriage returns, bells) and lone
    surrogates are removed and tabs and newlines become spaces, so one message
    is always one line on every screen.  Surrounding white space is stripped.
    A message with no visible character left (only spaces, zero-width or other
    invisible characters) is empty, and nothing may be longer than
    :data:`MAX_MESSAGE_CHARS`.
    """
    if not isinstance(message, str):
        raise ProtocolError("Message must be a string")
    message = _CONTROL.sub("", _WHITESPACE_CONTROL.sub(" ", message)).strip()
    if not _VISIBLE.search(message):
        raise ProtocolError("Message is empty")
    if len(message) > MAX_MESSAGE_CHARS:
        raise ProtocolError(
            f"Message is {len(message)} characters long; the limit is {MAX_MESSAGE_CHARS}"
        )
    return message


# --------------------------------------------------------------------------
# The extensions: features, rooms, private messages, nicknames, history
# (PROTOCOL.md, sections 5-9)

#: The room every client is in after joining; a v1 client's only room.
LOBBY = "#lobby"

#: Rooms are "#" and 1-20 of the username characters (IRC's channels start with "#" too).
MAX_ROOM_CHARS = 20
ROOM_PATTERN = re.compile(rf"#[A-Za-z0-9_-]{{1,{MAX_ROOM_CHARS}}}")

#: What this server offers.  A client names what it understands in its join;
#: a connection uses the features both named (PROTOCOL.md, section 5).
FEATURES = ("history", "nick", "private", "rooms")

#: A join may name at most this many features, each at most this long.
MAX_FEATURES = 16
MAX_FEATURE_CHARS = 32

#: The frame types each feature adds, as a client sends them.
FEATURE_OF_TYPE = {
    "join_room": "rooms",
    "leave_room": "rooms",
    "rooms": "rooms",
    "users": "rooms",
    "private": "private",
    "nick": "nick",
    "history": "history",
}

#: Messages in a ``history`` answer unless the client asks for fewer; a larger
#: ``limit`` is lowered to :data:`MAX_HISTORY_PAGE`.
HISTORY_PAGE = 50
MAX_HISTORY_PAGE = 200

#: A ``before`` above every message id: "the latest messages" (JSON's safe integer limit).
NEWEST = 2**53 - 1

CLIENT_TYPES = ("join", "chat", "ping", *FEATURE_OF_TYPE)


def room_key(room: str) -> str:
    """Rooms are compared without regard to case: ``#Rust`` is ``#rust``."""
    return room.casefold()


def validate_room(room: Any) -> str:
    """Return the room name if it follows the rules, else raise ProtocolError."""
    if not isinstance(room, str):
        raise ProtocolError("Room must be a string")
    if not ROOM_PATTERN.fullmatch(room):
        raise ProtocolError(
            f"Invalid room name {room[:40]!r}: use '#' and 1-{MAX_ROOM_CHARS} letters, "
            "digits, '_' or '-'"
        )
    return room


def validate_features(features: Any) -> tuple[str, ...]:
    """The feature names a join declares (unknown ones are kept: they are ignored later)."""
    if not isinstance(features, list) or len(features) > MAX_FEATURES:
        raise ProtocolError(f"Features must be a list of at most {MAX_FEATURES} names")
    if not all(isinstance(f, str) and len(f) <= MAX_FEATURE_CHARS for f in features):
        raise ProtocolError(
            f"Each feature must be a string of at most {MAX_FEATURE_CHARS} characters"
        )
    return tuple(features)


def request_id_of(message: dict[str, Any]) -> int | str | None:
    """The ``id`` a client put on a frame to match the answer to it, if valid.

    ``None`` when there is none, or when it is not a number or a short string:
    only a valid id is ever echoed back.
    """
    value = message.get("id")
    if isinstance(value, bool):  # True is an int to Python, not to JSON
        return None
    if isinstance(value, int) or (isinstance(value, str) and len(value) <= MAX_REQUEST_ID_CHARS):
        return value
    return None


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def validate_client_message(message: dict[str, Any]) -> dict[str, Any]:
    """Check a message a client sent; return a clean copy with only the known fields.

    Unknown types are refused (the server answers them with an error frame);
    unknown *fields* are ignored, so that extensions can add them.  Whether the
    connection may use a type (its feature) is the core's business.
    """
    kind = message.get("type")
    if kind == "join":
        clean = join(validate_username(message.get("username")))
        if "features" in message:
            clean["features"] = list(validate_features(message["features"]))
        return clean
    if kind == "chat":
        room = validate_room(message["room"]) if "room" in message else None
        action = message.get("action") is True
        return chat(clean_message(message.get("message")), room=room, action=action)
    if kind == "ping":
        request_id = request_id_of(message)
        if "id" in message and request_id is None:
            raise ProtocolError(
                f"Ping id must be a number or a string of at most {MAX_REQUEST_ID_CHARS} characters"
            )
        return ping(request_id)
    if kind in ("join_room", "leave_room"):
        return {"type": kind, "room": validate_room(message.get("room"))}
    if kind == "rooms":
        return {"type": "rooms"}
    if kind == "users":
        return {"type": "users", "room": validate_room(message.get("room", LOBBY))}
    if kind == "private":
        to = message.get("to")
        if not isinstance(to, str) or not USERNAME_PATTERN.fullmatch(to):
            raise ProtocolError("Private message needs 'to': a username")
        return {"type": "private", "to": to, "message": clean_message(message.get("message"))}
    if kind == "nick":
        return {"type": "nick", "username": validate_username(message.get("username"))}
    if kind == "history":
        return _validate_history(message)
    raise ProtocolError(f"Unknown message type {str(kind)[:40]!r}")


def _validate_history(message: dict[str, Any]) -> dict[str, Any]:
    before, after = message.get("before"), message.get("after")
    if (before is None) == (after is None) or not _positive_int(before or after):
        raise ProtocolError("History needs 'before' or 'after': a positive message id")
    limit = message.get("limit", HISTORY_PAGE)
    if not _positive_int(limit):
        raise ProtocolError("History 'limit' must be a positive whole number")
    clean: dict[str, Any] = {"type": "history", "room": validate_room(message.get("room"))}
    clean["before" if before is not None else "after"] = before or after
    clean["limit"] = min(limit, MAX_HISTORY_PAGE)
    return clean


# --------------------------------------------------------------------------
# Builders: one function per message type, so nobody misspells a field


def join(username: str, features: list[str] | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "join", "username": username}
    if features is not None:
        frame["features"] = features
    return frame


def chat(message: str, *, room: str | None = None, action: bool = False) -> dict[str, Any]:
    """A chat a client sends; ``room`` (default: the lobby) and ``action`` (/me) extend v1."""
    frame: dict[str, Any] = {"type": "chat", "message": message}
    if room is not None:
        frame["room"] = room
    if action:
        frame["action"] = True
    return frame


def ping(request_id: int | str | None = None) -> dict[str, Any]:
    """A ping; with a ``request_id``, the pong (or the error refusing it) carries it back."""
    return _with_id({"type": "ping"}, request_id)


def welcome(
    username: str,
    users: list[str],
    limits: dict[str, Any] | None = None,
    *,
    features: list[str] | None = None,
    rooms: list[str] | None = None,
) -> dict[str, Any]:
    """The answer to a join.  ``limits`` tells the client the bounds it must keep to
    (``rate_limit`` and ``rate_burst``, so that a program can pace itself);
    ``features`` and ``rooms`` go only to a client that declared features."""
    frame: dict[str, Any] = {
        "type": "welcome",
        "message": f"Welcome to the chat, {username}!",
        "users": users,
    }
    if limits:
        frame["limits"] = limits
    if features is not None:
        frame["features"] = features
    if rooms is not None:
        frame["rooms"] = rooms
    return frame


def chat_broadcast(
    username: str,
    message: str,
    timestamp: float,
    *,
    message_id: int | None = None,
    room: str | None = None,
    action: bool = False,
) -> dict[str, Any]:
    """A relayed chat.  The v1 fields come first; ``id``, ``room`` and ``action`` extend them."""
    frame: dict[str, Any] = {"type": "chat"}
    if message_id is not None:
        frame["id"] = message_id
    if room is not None:
        frame["room"] = room
    frame.update(username=username, message=message, timestamp=timestamp)
    if action:
        frame["action"] = True
    return frame


def user_joined(
    username: str, room: str | None = None, message: str | None = None
) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "user_joined", "username": username}
    if room is not None:
        frame["room"] = room
    frame["message"] = message or f"{username} joined the chat"
    return frame


def user_left(username: str, room: str | None = None, message: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "user_left", "username": username}
    if room is not None:
        frame["room"] = room
    frame["message"] = message or f"{username} left the chat"
    return frame


def error(message: str, request_id: int | str | None = None) -> dict[str, Any]:
    """An error; ``request_id``: the ``id`` of the frame it refuses, if that had one."""
    return _with_id({"type": "error", "message": message}, request_id)


def pong(request_id: int | str | None = None) -> dict[str, Any]:
    """The answer to a ping, carrying the ping's ``id`` back if it had one."""
    return _with_id({"type": "pong"}, request_id)


def server_shutdown(message: str = "The server is shutting down") -> dict[str, Any]:
    return {"type": "server_shutdown", "message": message}


def join_room(room: str) -> dict[str, Any]:
    return {"type": "join_room", "room": room}


def leave_room(room: str) -> dict[str, Any]:
    return {"type": "leave_room", "room": room}


def room_joined(room: str, users: list[str]) -> dict[str, Any]:
    return {"type": "room_joined", "room": room, "users": users}


def room_left(room: str) -> dict[str, Any]:
    return {"type": "room_left", "room": room}


def rooms_list(rooms: list[tuple[str, int]]) -> dict[str, Any]:
    """The answer to ``rooms``: every room and how many are in it."""
    return {"type": "rooms", "rooms": [{"room": name, "users": count} for name, count in rooms]}


def users_list(room: str, users: list[str]) -> dict[str, Any]:
    """The answer to ``users``: who is in a room."""
    return {"type": "users", "room": room, "users": users}


def private(
    sender: str, receiver: str, message: str, timestamp: float, message_id: int
) -> dict[str, Any]:
    """A relayed private message, as both its receiver and its sender get it."""
    return {
        "type": "private",
        "id": message_id,
        "from": sender,
        "to": receiver,
        "message": message,
        "timestamp": timestamp,
    }


def user_renamed(old: str, new: str) -> dict[str, Any]:
    return {
        "type": "user_renamed",
        "old": old,
        "new": new,
        "message": f"{old} is now known as {new}",
    }


def history(room: str, messages: list[dict[str, Any]], more: bool) -> dict[str, Any]:
    """A page of a room's history: relayed chat frames, oldest first."""
    return {"type": "history", "room": room, "messages": messages, "more": more}


def _with_id(frame: dict[str, Any], request_id: int | str | None) -> dict[str, Any]:
    if request_id is not None:
        frame["id"] = request_id
    return frame
