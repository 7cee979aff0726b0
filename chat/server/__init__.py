"""The chat server: one set of rules, three ways of doing the I/O.

Run it from a terminal::

    python -m chat.server                      # localhost:12345
    python -m chat.server --host 0.0.0.0       # every network interface
    python -m chat.server --engine asyncio     # another engine, the same chat

or from Python, for example in a notebook, where it runs in the background::

    with ChatServer(port=0) as server:         # starts, and stops at the end
        print(server.address)                  # ('127.0.0.1', 43117)

The rules -- who may join, what each frame causes, who receives what -- live
in :class:`chat.core.ChatCore`, which does no I/O at all.  An *engine* moves
bytes between sockets and that core.  This package holds three engines, each
in a module of its own, and the layer they share:

* :mod:`chat.server.base` -- what every engine shares: listening, the public
  API (``start``, ``stop``, ``address``, ``with``), one connection model with
  a bounded outbox, and carrying out the core's actions.
* :mod:`chat.server.engine_threads` -- a reader and a writer thread per client
  (:class:`ChatServer`, the default and the one notebooks 04-05 build).
* :mod:`chat.server.engine_selectors` -- one thread, non-blocking sockets and a
  :mod:`selectors` event loop.
* :mod:`chat.server.engine_asyncio` -- one thread, an :class:`asyncio.Protocol`.
* ``python -m chat.server`` (:mod:`chat.server.__main__`) -- the command line.

All three have the same outside, so tests, notebooks and the benchmark swap
them freely (:func:`create_server`, :data:`ENGINES`).
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from chat.protocol import DEFAULT_HOST, DEFAULT_PORT
from chat.server.base import LOG_FORMAT, AddressInUseError, ServerBase
from chat.server.engine_threads import ChatServer

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "ENGINES",
    "LOG_FORMAT",
    "AddressInUseError",
    "ChatServer",
    "ServerBase",
    "create_server",
    "engine_class",
    "prepare_process",
    "raise_open_files_limit",
]

#: The three engines by name, as ``--engine`` spells them: "module:class",
#: imported only when chosen.
ENGINES: dict[str, str] = {
    "threads": "chat.server.engine_threads:ChatServer",
    "selectors": "chat.server.engine_selectors:SelectorsChatServer",
    "asyncio": "chat.server.engine_asyncio:AsyncioChatServer",
}


def engine_class(engine: str) -> type[ServerBase]:
    """The server class of an engine named in :data:`ENGINES`."""
    try:
        module_name, class_name = ENGINES[engine].split(":")
    except KeyError:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}") from None
    return getattr(importlib.import_module(module_name), class_name)


def create_server(
    engine: str = "threads",
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    **options: Any,
) -> ServerBase:
    """A new, not yet started server of the chosen engine (``limits=...`` etc. pass through)."""
    return engine_class(engine)(host, port, **options)


#: Thread stack size for the threaded engine in a process of its own: 256 KiB
#: is plenty for a reader or writer thread, and 2,000 clients (4,000 threads)
#: then reserve 1 GiB of address space instead of 32 GiB (8 MiB each by default).
THREAD_STACK_BYTES = 256 * 1024


def raise_open_files_limit() -> int:
    """Raise this process's open-files limit to the hard limit; return the new limit."""
    try:
        import resource
    except ImportError:  # Windows
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def prepare_process(engine: str) -> None:
    """Process-wide settings for a server with many clients: run before it starts.

    Every connection is a file descriptor, and many systems allow only 1,024
    per process unless asked; every threaded-engine client is two threads.
    Only for a process that is the server (``python -m chat.server``, the
    benchmark's server): a notebook's kernel keeps its own settings.
    """
    raise_open_files_limit()
    if engine == "threads":
        threading.stack_size(THREAD_STACK_BYTES)
