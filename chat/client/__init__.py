"""The chat client: a library for programs, and two user interfaces on top of it.

* :mod:`chat.client.connection` -- :class:`ChatClient`, one connection to a
  server: connect, join, send, ping, and every message from the server as an
  event.  It knows the protocol and nothing about screens.
* :mod:`chat.client.roster` -- who is in which of our rooms, kept up to date
  from the events (the client holds one: ``client.roster``).
* :mod:`chat.client.commands` and :mod:`chat.client.display` -- what both user
  interfaces share: the slash commands (what a typed line asks for, carried
  out the same way in both) and the room a user looks at (``Focus``); and the
  one line of text a person sees for each event (made safe to print).
* :mod:`chat.client.terminal` -- the terminal program, run as
  ``python -m chat.client``.

The notebook widget, :mod:`chat.widget`, is the third user of the library.
"""

from __future__ import annotations

from chat.client.connection import (
    DISCONNECTED,
    ChatClient,
    ChatError,
    ConnectError,
    ConnectionClosed,
    JoinError,
)
from chat.protocol import DEFAULT_HOST, DEFAULT_PORT

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DISCONNECTED",
    "ChatClient",
    "ChatError",
    "ConnectError",
    "ConnectionClosed",
    "JoinError",
]
