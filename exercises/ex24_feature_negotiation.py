"""Exercise 24 (notebook 10_extensions): feature negotiation, and the welcome each client gets.

A protocol that grows must keep its old clients working.  v1 clients exist --
the original program, bots, someone's client in another language -- and they
ignore frame types they do not know, as v1 tells them to: a private message
sent to one would vanish without a word.  So the server must *know* what each
client understands, and a client says so in its join::

    {"type": "join", "username": "alice", "features": ["rooms", "private", "history", "nick"]}

The rules (PROTOCOL.md, section 5):

* The features a connection uses are those **both** sides named: the ones the
  client declared that the server also offers.  A name the server does not
  know (a client from the future) is ignored.
* A join **without** ``features`` is a v1 client.  It uses nothing, and its
  welcome is exactly the v1 welcome: ``type``, ``message``, ``users`` -- no
  field it would not know.
* A join **with** ``features`` -- even an empty list -- is a v2 client.  Its
  welcome also says what the server offers, ``"features"`` (a list, in the
  order of ``offered``), and the rooms the client is in, ``"rooms":
  ["#lobby"]`` (everyone starts in the lobby).

Write :func:`welcome_for`: the welcome a (valid) join gets, and the features
its connection uses.  :func:`v1_welcome` builds the v1 part; the join's
``features``, when present, is a list of strings (already checked).

Check your work:  python -m exercises 24
Stuck?            python -m exercises --hint 24
"""

from __future__ import annotations

from typing import Any

#: What this server offers (PROTOCOL.md, section 5).
OFFERED = ("history", "nick", "private", "rooms")

#: The room everyone is in after joining.
LOBBY = "#lobby"

Frame = dict[str, Any]


def v1_welcome(username: str, users: list[str]) -> Frame:
    """The welcome as v1 defines it."""
    return {"type": "welcome", "message": f"Welcome to the chat, {username}!", "users": users}


def welcome_for(
    join: Frame, users: list[str], offered: tuple[str, ...] = OFFERED
) -> tuple[Frame, frozenset[str]]:
    """The welcome ``join`` gets (``users``: who is online), and the features it will use."""
    # TODO: start from v1_welcome(join["username"], users).  No "features" key in the join:
    #       return it and frozenset().  Else add "features": list(offered) and
    #       "rooms": [LOBBY], and return it with the features both sides named.
    raise NotImplementedError("TODO: write welcome_for()")
