"""A TCP socket chat application, built step by step in the notebooks.

The modules, from the bottom up (each imports only those above it, but for
the one exception said at the end):

* :mod:`chat.protocol`    -- frames on the wire: newline-delimited JSON, UTF-8
  (PROTOCOL.md is the normative description).
* :mod:`chat.limits`      -- every bound the server enforces, named and explained.
* :mod:`chat.logthrottle` -- log lines summarised, so no client can flood the log.
* :mod:`chat.tls`         -- TLS over any socket, safe for a reader and a writer thread.
* :mod:`chat.rooms`       -- a room: its members and its latest messages.
* :mod:`chat.core`        -- the chat rules, with no I/O: bytes in, actions out.
* :mod:`chat.store`       -- room history in SQLite, written by one thread.
* :mod:`chat.cluster`     -- several servers as one chat through Redis (needs redis-py):
  ``python -m chat.server --redis URL``.  A server hands itself to the broker,
  which names :mod:`chat.server.base` only in type hints.
* :mod:`chat.server`      -- the engines that move bytes between sockets and the
  core: :mod:`chat.server.base` (what they share), then one module per engine
  (``engine_threads``, ``engine_selectors``, ``engine_asyncio``), and
  ``python -m chat.server``.
* :mod:`chat.client`      -- :mod:`chat.client.connection` (``ChatClient``, for
  programs) and :mod:`chat.client.roster` (who is where); then what both user
  interfaces share, :mod:`chat.client.display` and :mod:`chat.client.commands`;
  then :mod:`chat.client.terminal` (``python -m chat.client``).
* :mod:`chat.widget`      -- the chat client as a Jupyter widget (needs ipywidgets).
* :mod:`chat.web`         -- chat from a browser: the WebSocket gateway on the same
  core (:mod:`chat.web.gateway`, ``--web-port``; needs websockets) and the page.

The exception: :mod:`chat.web.gateway` builds on :mod:`chat.server.base`, and
:class:`~chat.server.base.ServerBase` loads the gateway on demand, only when
``web_port`` is set -- so that a server without a web page needs no websockets.

The load generator (``python -m benchmarks``) and the course's tools live
outside the package: they are not part of the chat.

Run ``python -m chat.server`` in one terminal and ``python -m chat.client`` in
two others to chat.
"""

from __future__ import annotations

import importlib
from typing import Any

# The public names, and the module each lives in.  They are imported on first
# use rather than here, so that ``import chat.protocol`` (all a client in
# another program may need) does not also load threads, sockets and TLS.
_EXPORTS = {
    "ChatClient": "chat.client.connection",
    "ChatError": "chat.client.connection",
    "ConnectError": "chat.client.connection",
    "ConnectionClosed": "chat.client.connection",
    "JoinError": "chat.client.connection",
    "ChatCore": "chat.core",
    "Limits": "chat.limits",
    "HistoryStore": "chat.store",
    "FrameDecoder": "chat.protocol",
    "ProtocolError": "chat.protocol",
    "encode": "chat.protocol",
    "ChatServer": "chat.server.engine_threads",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'chat' has no attribute {name!r}")
