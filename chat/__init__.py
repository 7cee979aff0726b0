"""A TCP socket chat application, built step by step in the notebooks.

The modules, from the bottom up (each depends only on those above it):

* :mod:`chat.protocol` -- frames on the wire: newline-delimited JSON, UTF-8.
* :mod:`chat.limits`   -- every bound the server enforces, named and explained.
* :mod:`chat.tls`      -- TLS over any socket, safe for a reader and a writer thread.
* :mod:`chat.core`     -- the chat rules, with no I/O: bytes in, actions out.
* :mod:`chat.server_base` -- what every server engine shares: listening, start, stop.
* :mod:`chat.server`   -- the threaded server: a thread per client around the core
  (and ``python -m chat.server``, which runs any engine).
* :mod:`chat.server_selectors`, :mod:`chat.server_asyncio` -- the same rules
  served by one event-loop thread (notebook 09 compares the three).
* :mod:`chat.client`   -- a client for programs: connect, send, ping, receive.
* :mod:`chat.display`, :mod:`chat.commands` -- what both user interfaces share.
* :mod:`chat.terminal` -- the terminal program (``python -m chat.client``).
* :mod:`chat.widget`   -- the chat client as a Jupyter widget (needs ipywidgets).
* :mod:`chat.bench`    -- the load generator (``python -m chat.bench``).

Run ``python -m chat.server`` in one terminal and ``python -m chat.client`` in
two others to chat.
"""

from __future__ import annotations

import importlib
from typing import Any

# The public names, and the module each lives in.  They are imported on first
# use rather than here, so that ``python -m chat.server`` does not import
# chat.server twice (once as a package member, once as the program).
_EXPORTS = {
    "ChatClient": "chat.client",
    "ChatError": "chat.client",
    "ConnectError": "chat.client",
    "ConnectionClosed": "chat.client",
    "JoinError": "chat.client",
    "ChatCore": "chat.core",
    "Limits": "chat.limits",
    "FrameDecoder": "chat.protocol",
    "ProtocolError": "chat.protocol",
    "encode": "chat.protocol",
    "ChatServer": "chat.server",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'chat' has no attribute {name!r}")
