"""Several chat servers, one chat: scale-out through Redis.

One server process is bounded by one machine's CPUs and memory, and dies with
that machine.  Real chat systems run several servers -- *nodes* -- that share
their rooms through a message broker (Socket.IO's Redis adapter, Django
Channels' ``channels_redis``, Phoenix PubSub).  Here the broker is Redis::

    python -m chat.server --port 12345 --redis redis://127.0.0.1:6379/0
    python -m chat.server --port 12346 --redis redis://127.0.0.1:6379/0

Every server started with the same Redis URL is part of one chat: a client on
either port sees the same rooms, users, private messages, renames and history.
From Python: ``ChatServer(port=0, redis="redis://...")``, or
``redis=ClusterConfig(url, heartbeat=..., ...)`` to tune it.

The parts, each in its own module:

* :mod:`chat.cluster.core` -- :class:`ClusterCore`, the chat's rules for one
  node, still sans-I/O: what needs the whole chat becomes an action (claim a
  name, publish an event) and the answer comes back as a call.
* :mod:`chat.cluster.broker` -- :class:`chat.cluster.broker.Broker`, which
  owns the Redis connections (``redis.asyncio`` on a thread of its own),
  carries out those actions and hands what Redis says back to the core through
  the engine (:meth:`chat.server.base.ServerBase._from_thread`).

The mechanisms (PROTOCOL.md, section 16, says what each guarantees):

* **One Redis Stream relays everything** -- room messages, private messages,
  who joined and left.  Every node reads it from where it stopped, so every
  node sees every event once, in one order, and can *replay* what it missed
  after a short disconnection.  (Redis pub/sub would be simpler, but it is
  at-most-once: a subscriber that is away for a moment misses what was said.)
* **Ids from one counter, in the same step as the stream**: a Lua script
  increments the counter and appends to the stream atomically, so stream
  order and id order are the same, across the whole chat.
* **A name is claimed in Redis** (a Lua script: free, or held by a node
  whose heartbeat has expired) before the ``welcome``.
* **Presence by heartbeats**: each node refreshes a key that expires after
  ``presence_ttl`` seconds; a node whose key is gone has died, and its users
  are shown as leaving.
* **History in Redis**: a stream per room, its entry ids the message ids.

Only :mod:`chat.cluster.broker` needs redis-py (``pip install ".[redis]"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chat.cluster.broker import Broker

__all__ = ["ClusterConfig", "ClusterError", "make_broker"]


class ClusterError(Exception):
    """The broker cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class ClusterConfig:
    """How a server joins the chat of the other servers on the same Redis.

    ``url``: the Redis database every node of the chat uses (the same URL,
    the same chat).  ``prefix``: the start of every key this chat uses, so
    that several chats may share one database.  ``name``: this server's name
    among the nodes (default: its host name and port); a server that starts
    under the name of one that died ends that one's life at once, so that its
    users do not linger.

    ``heartbeat``: seconds between a node's heartbeats; ``presence_ttl``:
    seconds after the last heartbeat when a node is taken for dead.  A killed
    node's users are shown as leaving within ``presence_ttl + heartbeat``
    (20 s by default).  ``backoff_max``: the longest wait between two attempts
    to reconnect (keep it below ``presence_ttl``).  ``relay_length``: events
    the relay stream keeps for nodes that come back (about that many).
    """

    url: str = "redis://127.0.0.1:6379/0"
    prefix: str = "chat"
    name: str | None = None
    heartbeat: float = 5.0
    presence_ttl: float = 15.0
    backoff_max: float = 2.0
    relay_length: int = 100_000
    connect_timeout: float = 5.0


def make_broker(config: str | ClusterConfig, server: Any) -> Broker:
    """The broker component for ``server`` (a :class:`chat.server.base.ServerBase`)."""
    try:
        from chat.cluster.broker import Broker
    except ImportError as exc:  # redis-py is an optional extra
        raise ClusterError(
            f"Several servers need the Redis client redis-py ({exc}): "
            "pip install 'redis>=5' (or the extra: pip install '.[redis]')"
        ) from None
    return Broker(config, server)
