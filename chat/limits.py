"""Every bound the server enforces, named, with the reason for its default.

A server on an open network meets clients that send too much, too fast, too
slowly or not at all.  Each such case needs a limit, and each limit needs a
number someone chose on purpose.  They live here together so that they can be
read, documented (README, "Limits") and tested as one list, and so that every
server engine enforces the same ones.  The wire-level limits (frame size,
message length, username rules) belong to the protocol itself and live in
:mod:`chat.protocol`.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Seconds a new connection may take to send a valid ``join``.  IRC servers
#: allow 20-30 s for registration; a connection that never joins only holds a
#: socket and a thread.
JOIN_TIMEOUT = 30.0

#: Seconds a connection may stay silent (no frame at all) before the server
#: drops it.  Clients send a ``ping`` every :data:`KEEPALIVE_INTERVAL` seconds,
#: so a live client is never silent this long; a vanished one (cable pulled,
#: laptop closed) is found within this time.
IDLE_TIMEOUT = 120.0

#: Seconds between the keep-alive pings a client sends when it has sent
#: nothing else.  A quarter of the idle timeout leaves room for three lost pings.
KEEPALIVE_INTERVAL = 30.0

#: Connections served at once, joined or not.  Past this a new connection gets
#: an error frame ("Server full") and is closed.
MAX_CLIENTS = 1000

#: Connections from one IP address at once; 0 means no limit.  Off by default,
#: because every local test, notebook and benchmark client comes from 127.0.0.1.
MAX_CONNECTIONS_PER_IP = 0

#: Bytes waiting to be sent to one client.  A client that stops reading lets
#: this fill up; past it the server disconnects that client ("send queue
#: exceeded", as IRC servers say) instead of buffering without bound or making
#: everyone else wait.  1 MiB is about 10,000 ordinary chat frames.
MAX_SEND_QUEUE_BYTES = 1024 * 1024

#: Frames per second one client may send on average (a token bucket), and how
#: many it may send in a burst.  A fast human types far fewer than 5 messages a
#: second; pasting a few lines at once fits in the burst.  0 turns it off
#: (load benchmarks do that).
RATE_LIMIT = 5.0
RATE_BURST = 20

#: Frames refused in a row for exceeding the rate before the client is
#: disconnected ("Excess flood", as IRC servers say).
FLOOD_DISCONNECT_STRIKES = 30


@dataclass(frozen=True)
class Limits:
    """The limits one server enforces.  Every field defaults to the constant above."""

    join_timeout: float = JOIN_TIMEOUT
    idle_timeout: float = IDLE_TIMEOUT
    max_clients: int = MAX_CLIENTS
    max_connections_per_ip: int = MAX_CONNECTIONS_PER_IP
    max_send_queue_bytes: int = MAX_SEND_QUEUE_BYTES
    rate_limit: float = RATE_LIMIT
    rate_burst: int = RATE_BURST
    flood_disconnect_strikes: int = FLOOD_DISCONNECT_STRIKES
