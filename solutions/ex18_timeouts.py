"""Exercise 18 (notebook 07_robustness): join and idle timeouts, with time passed in.

A connection costs the server a socket (and, in a threaded server, a thread)
for as long as it stays open.  Two kinds of clients would keep one forever:
one that connects and never joins, and one whose laptop went to sleep -- it
never closes, it just falls silent.  So the server gives each connection two
deadlines:

* **join timeout**: a connection that has not joined ``join_timeout`` seconds
  after it connected is closed ("Join timeout: no join within 30 s").
* **idle timeout**: a connection from which no complete frame has arrived for
  ``idle_timeout`` seconds is closed ("Idle timeout: nothing received for
  120 s").  Live clients send a ``ping`` now and then, so only the vanished
  ones are silent that long.

A server does not set a timer per connection.  About once a second it asks
which connections are due, and closes those.  That is :meth:`Tracker.expire`:
write it.  It returns ``(address, reason)`` for every connection due at time
``now``, in the order they connected, and forgets them (each is reported
once).  "Due" means *more than* the timeout has passed, not exactly it.  A
connection that has not joined is closed for that, even if it pings: a ping
is not a join.  The rest of the tracker is given.

The time is passed in, as in exercise 17: the tests use a fake clock, so
they check a two-minute timeout exactly and instantly.  (And a server that
checks once a second closes a connection up to a second after it is due.)

Check your work:  python -m exercises 18
Stuck?            python -m exercises --hint 18
"""

from __future__ import annotations

from dataclasses import dataclass

JOIN_TIMEOUT = 30.0
IDLE_TIMEOUT = 120.0


@dataclass
class Connection:
    connected_at: float
    last_seen: float  # when the last complete frame arrived
    username: str | None = None  # None until it has joined


class Tracker:
    """Which connections are open, since when, and when each was last heard from."""

    def __init__(self, join_timeout: float = JOIN_TIMEOUT, idle_timeout: float = IDLE_TIMEOUT):
        self.join_timeout = join_timeout
        self.idle_timeout = idle_timeout
        self.connections: dict[str, Connection] = {}  # by address, in the order they came

    def connect(self, address: str, now: float) -> None:
        self.connections[address] = Connection(connected_at=now, last_seen=now)

    def seen(self, address: str, now: float) -> None:
        """A complete frame arrived from ``address``."""
        if address in self.connections:
            self.connections[address].last_seen = now

    def joined(self, address: str, username: str, now: float) -> None:
        if address in self.connections:
            self.connections[address].username = username
            self.seen(address, now)

    def disconnect(self, address: str) -> None:
        self.connections.pop(address, None)

    def expire(self, now: float) -> list[tuple[str, str]]:
        """Forget the connections due at ``now``; each one's address and reason, in order."""
        ### BEGIN SOLUTION
        ### TODO: for each connection, in order: not joined and now - connected_at >
        ###       join_timeout: "Join timeout: no join within {join_timeout:g} s"; else
        ###       now - last_seen > idle_timeout: "Idle timeout: nothing received for
        ###       {idle_timeout:g} s".  Forget those; return [(address, reason), ...].
        expired = []
        for address, conn in self.connections.items():
            if conn.username is None and now - conn.connected_at > self.join_timeout:
                reason = f"Join timeout: no join within {self.join_timeout:g} s"
            elif now - conn.last_seen > self.idle_timeout:
                reason = f"Idle timeout: nothing received for {self.idle_timeout:g} s"
            else:
                continue
            expired.append((address, reason))
        # Forget them after the loop: a dict must not change size while it is
        # iterated.
        for address, _ in expired:
            del self.connections[address]
        return expired
        ### END SOLUTION
