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

import argparse
from dataclasses import dataclass, fields

from chat.protocol import MAX_FRAME_BYTES

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

#: Seconds a TLS client may take to finish its handshake.  No engine ever
#: waits for one client's handshake while others wait (the threaded engine runs
#: it in the connection's own thread, the event loops between other work), so a
#: client that stalls it only delays itself -- and only for this long.  Until
#: then it counts toward ``max_clients`` like any connection.
TLS_HANDSHAKE_TIMEOUT = 10.0

#: Seconds a connection the server decided to close may take to receive its
#: last frames and hang up.  Then it is cut off, even if it ignores our goodbye
#: or stopped reading: a half-open connection must not keep a socket (and, in
#: the threaded engine, two threads) forever.  Until it is gone it still counts
#: toward ``max_clients``, so closing connections cannot pile up unseen.
CLOSE_TIMEOUT = 2.0

#: Rooms one user may be in at once, and rooms on the server at once.  IRC
#: networks allow each user 20-50 channels (CHANLIMIT); every room a user is in
#: costs the server a notice to each member when the user comes and goes.
MAX_ROOMS_PER_USER = 20
MAX_ROOMS = 1000

#: Messages of history kept per room, on disk; older ones are deleted.  10,000
#: chat lines of ~100 bytes are about a megabyte a room.
HISTORY_RETENTION = 10_000

#: Each room's latest messages the server also keeps in memory, so that the
#: history sent to whoever enters a room (50 messages) costs no disk read.
HISTORY_CACHE = 200

#: Seconds the history writer gathers messages before it writes them in one
#: transaction.  One transaction per message would make the disk the limit;
#: a message relayed more than this long before a crash is safe on disk.
HISTORY_BATCH_SECONDS = 0.2

#: Log lines about one connection (or one condition, such as "accept() failed")
#: in each ``LOG_INTERVAL`` seconds; past that they are counted and summarised
#: in one line ("... 500 more warnings from alice").  A client that sends
#: 87,000 bad frames must not write 87,000 lines to the server's disk
#: (:mod:`chat.logthrottle`).
LOG_BURST = 5
LOG_INTERVAL = 10.0


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
    max_frame_bytes: int = MAX_FRAME_BYTES
    tls_handshake_timeout: float = TLS_HANDSHAKE_TIMEOUT
    close_timeout: float = CLOSE_TIMEOUT
    max_rooms_per_user: int = MAX_ROOMS_PER_USER
    max_rooms: int = MAX_ROOMS
    history_retention: int = HISTORY_RETENTION

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Limits:
        """The limits set by :func:`add_arguments` flags; defaults for the rest."""
        given = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
        return cls(**{name: value for name, value in given.items() if value is not None})


# -- the command line: one flag per limit an operator may want to change


def _number(text: str, kind: type[int] | type[float], low: float, what: str) -> int | float:
    """Parse one flag's value; argparse shows the error next to the flag's name."""
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not value >= low or value == float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _count(text: str) -> int:
    return int(_number(text, int, 0, "a whole number, 0 or more"))


def _positive_count(text: str) -> int:
    return int(_number(text, int, 1, "a whole number, 1 or more"))


def _seconds(text: str) -> float:
    value = _number(text, float, 0, "a number of seconds, more than 0")
    if value == 0:
        raise argparse.ArgumentTypeError("expected a number of seconds, more than 0, got 0")
    return float(value)


def _rate(text: str) -> float:
    return float(_number(text, float, 0, "messages a second, 0 or more (0: no limit)"))


def _frame_bytes(text: str) -> int:
    return int(_number(text, int, 512, "a number of bytes, at least 512 (IRC's line length)"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add a ``--flag`` for each limit an operator may tune (README, "Limits").

    Every flag defaults to ``None``, meaning "the constant in this module", so
    the help text and :meth:`Limits.from_args` never disagree with it.
    """
    group = parser.add_argument_group("limits (README: Limits)")
    flag = group.add_argument
    flag(
        "--max-clients",
        dest="max_clients",
        type=_positive_count,
        metavar="N",
        help=f'connections served at once; more get "Server full" (default: {MAX_CLIENTS})',
    )
    flag(
        "--max-per-ip",
        dest="max_connections_per_ip",
        type=_count,
        metavar="N",
        help="connections from one IP address at once (default: 0, no limit)",
    )
    flag(
        "--rate-limit",
        dest="rate_limit",
        type=_rate,
        metavar="N",
        help=f"messages a second per client, on average; 0 turns it off (default: {RATE_LIMIT:g})",
    )
    flag(
        "--rate-burst",
        dest="rate_burst",
        type=_positive_count,
        metavar="N",
        help=f"messages a client may send at once before the rate applies (default: {RATE_BURST})",
    )
    flag(
        "--join-timeout",
        dest="join_timeout",
        type=_seconds,
        metavar="S",
        help=f"seconds a new connection has to join (default: {JOIN_TIMEOUT:g})",
    )
    flag(
        "--idle-timeout",
        dest="idle_timeout",
        type=_seconds,
        metavar="S",
        help=f"seconds of silence before a connection is dropped (default: {IDLE_TIMEOUT:g})",
    )
    flag(
        "--max-frame-bytes",
        dest="max_frame_bytes",
        type=_frame_bytes,
        metavar="N",
        help=f"longest line a client may send, in bytes (default: {MAX_FRAME_BYTES})",
    )
    flag(
        "--max-send-queue",
        dest="max_send_queue_bytes",
        type=_positive_count,
        metavar="BYTES",
        help="bytes waiting for one client before it is dropped as too slow "
        f"(default: {MAX_SEND_QUEUE_BYTES})",
    )
