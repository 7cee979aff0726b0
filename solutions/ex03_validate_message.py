"""Exercise 03 (notebook 03, protocol): check what a client sent.

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

Check your work:  python -m exercises 03
Stuck?            python -m exercises --hint 03
"""

from __future__ import annotations

import re
from typing import Any

from chat.protocol import MAX_MESSAGE_CHARS, MAX_USERNAME_CHARS


class InvalidMessage(ValueError):
    """The message breaks a protocol rule; ``str(error)`` says which, in plain words."""


def validate_message(message: Any) -> dict[str, Any]:
    """Return a clean copy of a client's message, or raise :class:`InvalidMessage`."""
    ### BEGIN SOLUTION
    ### TODO: check that message is a dict, then check it by its "type" with
    ###       validate_username() and clean_text(); return a new dict.
    if not isinstance(message, dict):
        raise InvalidMessage("A message must be a JSON object")
    kind = message.get("type")
    if not isinstance(kind, str):
        raise InvalidMessage('A message needs a "type" string')
    # Build a new dict instead of returning the one we were given: fields we
    # do not know (and do not check) never travel further.
    if kind == "join":
        return {"type": "join", "username": validate_username(message.get("username"))}
    if kind == "chat":
        return {"type": "chat", "message": clean_text(message.get("message"))}
    if kind == "ping":
        return {"type": "ping"}
    # repr() shows quotes and escapes, and [:40] keeps a huge bogus type from
    # flooding the error message.
    raise InvalidMessage(f"Unknown message type {str(kind)[:40]!r}")
    ### END SOLUTION


def validate_username(username: Any) -> str:
    """Return ``username`` if it follows the rule, else raise :class:`InvalidMessage`."""
    ### BEGIN SOLUTION
    ### TODO: a str of 1-MAX_USERNAME_CHARS of A-Z a-z 0-9 _ -, or raise InvalidMessage.
    if not isinstance(username, str):
        # Covers a missing field (None) and JSON numbers, lists and objects.
        raise InvalidMessage("The username must be a string")
    # One character class, counted: exactly what the rule says.  \w would
    # also accept "é" and other non-ASCII letters, so the characters are
    # spelled out.  (re caches compiled patterns, so this is not slow.)
    pattern = rf"[A-Za-z0-9_-]{{1,{MAX_USERNAME_CHARS}}}"
    # fullmatch, not match: re.match accepts "bob!" (it matches "bob"), and
    # even a pattern ending in $ accepts "bob\n", because $ also matches
    # before a final newline.  fullmatch has neither loophole.
    if not re.fullmatch(pattern, username):
        raise InvalidMessage(
            f"Invalid username {username[:40]!r}: use 1-{MAX_USERNAME_CHARS} letters, "
            "digits, '_' or '-'"
        )
    return username
    ### END SOLUTION


def clean_text(text: Any) -> str:
    """Return chat text stripped of surrounding white space, or raise :class:`InvalidMessage`."""
    ### BEGIN SOLUTION
    ### TODO: a str; strip it; refuse it when empty or longer than MAX_MESSAGE_CHARS.
    if not isinstance(text, str):
        raise InvalidMessage("The message must be a string")
    text = text.strip()
    if not text:
        raise InvalidMessage("The message is empty")
    # Count characters (what a person sees), not bytes: the frame size limit
    # already bounds the bytes.
    if len(text) > MAX_MESSAGE_CHARS:
        raise InvalidMessage(
            f"The message is {len(text)} characters long; the limit is {MAX_MESSAGE_CHARS}"
        )
    return text
    ### END SOLUTION
