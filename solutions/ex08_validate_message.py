"""Exercise 08 (notebook 03_protocol): check what a client sent.

A server must never trust a frame.  It arrives from anyone who can open a
connection, typed by hand into ``nc`` or crafted to break things.  Before the
chat rules act on a message, one function checks it and returns a *clean*
copy: only the fields the rules use, with the values they expect.

Write :func:`validate_message`.  It takes one decoded message (a ``dict``) and
returns a new, clean ``dict`` -- or raises :class:`InvalidMessage` with a
message a person can act on.  The server would send that text back in an
``error`` frame.

=========  =====================================================================
type       rule, and what to return
=========  =====================================================================
``join``   ``username`` is a string of 1-20 ASCII letters, digits, ``_`` or
           ``-``.  Return ``{"type": "join", "username": username}``.
``chat``   ``message`` is a string that is not empty once surrounding white
           space is stripped, and at most :data:`MAX_MESSAGE_CHARS` characters
           long after stripping.  Return ``{"type": "chat", "message": stripped}``.
``ping``   Return ``{"type": "ping"}``.
other      Refuse it; name the type in the error.
=========  =====================================================================

Fields the rules do not use are dropped, and a missing or wrongly typed field
is an error, never a crash with ``KeyError`` or ``AttributeError``.

Check your work:  python -m exercises 08
Stuck?            python -m exercises --hint 08
"""

from __future__ import annotations

import re
from typing import Any

from chat.protocol import MAX_MESSAGE_CHARS, MAX_USERNAME_CHARS

#: 1-20 ASCII letters, digits, "_" or "-".  The characters are spelled out:
#: ``\w`` would also accept "é" and other letters of every alphabet.
USERNAME = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_USERNAME_CHARS}}}")


class InvalidMessage(ValueError):
    """The message breaks a protocol rule; ``str(error)`` says which, in plain words."""


def validate_message(message: Any) -> dict[str, Any]:
    """Return a clean copy of a client's message, or raise :class:`InvalidMessage`."""
    ### BEGIN SOLUTION
    ### TODO: check that message is a dict with a "type"; then, by type, check the
    ###       username (USERNAME.fullmatch) or the text (a str, stripped, not empty, at
    ###       most MAX_MESSAGE_CHARS); return a new dict.  Anything else: InvalidMessage.
    if not isinstance(message, dict):
        raise InvalidMessage("A message must be a JSON object")
    # .get, not [...]: a missing field gives None instead of a KeyError.
    kind = message.get("type")
    if not isinstance(kind, str):
        raise InvalidMessage('A message needs a "type" string')
    # Build a new dict instead of returning the one we were given: fields we
    # do not know (and do not check) never travel further.
    if kind == "join":
        username = message.get("username")
        if not isinstance(username, str):
            # Covers a missing field (None) and JSON numbers, lists and objects.
            raise InvalidMessage("The username must be a string")
        # fullmatch, not match: re.match accepts "bob!" (it matches "bob"), and
        # even a pattern ending in $ accepts "bob\n", because $ also matches
        # before a final newline.  fullmatch has neither loophole.
        if not USERNAME.fullmatch(username):
            raise InvalidMessage(
                f"Invalid username {username[:40]!r}: use 1-{MAX_USERNAME_CHARS} letters, "
                "digits, '_' or '-'"
            )
        return {"type": "join", "username": username}
    if kind == "chat":
        text = message.get("message")
        if not isinstance(text, str):
            raise InvalidMessage("The message must be a string")
        text = text.strip()
        if not text:
            raise InvalidMessage("The message is empty")
        # Count characters (what a person sees), not bytes: the frame size
        # limit already bounds the bytes.
        if len(text) > MAX_MESSAGE_CHARS:
            raise InvalidMessage(
                f"The message is {len(text)} characters long; the limit is {MAX_MESSAGE_CHARS}"
            )
        return {"type": "chat", "message": text}
    if kind == "ping":
        return {"type": "ping"}
    # repr() shows quotes and escapes, and [:40] keeps a huge bogus type from
    # flooding the error message.
    raise InvalidMessage(f"Unknown message type {kind[:40]!r}")
    ### END SOLUTION
