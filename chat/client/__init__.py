"""The chat client: a library for programs, and two user interfaces on top of it.

* :mod:`chat.client.connection` -- :class:`ChatClient`, one connection to a
  server: connect, join, send, ping, and every message from the server as an
  event.  It knows the protocol and nothing about screens.
* :mod:`chat.client.commands` and :mod:`chat.client.display` -- what both user
  interfaces share: which slash command a typed line is, and the one line of
  text a person sees for each event (made safe to print).
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
