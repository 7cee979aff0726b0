"""Exercise 11 (notebook 04_threads): broadcast through per-client outboxes.

When alice sends a message, everyone in the room should receive it.  The
tempting way -- ``sendall`` to every client's socket in turn, from alice's
thread -- has a trap: ``sendall`` blocks while a receiver's socket buffers are
full.  One client that stops reading (a laptop that went to sleep) fills its
buffers, and then alice's thread waits for it, and so does everyone who
speaks after her.  One frozen client freezes the room.

So every client gets an *outbox*: a bounded queue that its own writer thread
drains onto its socket (exercise 12 writes one).  A broadcast only puts the
frame into each outbox, which never waits.  An outbox that is full means its
client has fallen far behind; the room drops that client instead of waiting
for it or keeping its backlog without end.

Write :meth:`Room.broadcast`: put ``frame`` into the outbox of every member
except ``exclude``, and remove each member whose outbox refuses it
(``outbox.put(frame)`` returns False).  Return the names removed, so that the
caller can close their connections and tell the others they left.

Hold ``self._lock`` for the whole broadcast.  It guards the members (another
thread may be joining or leaving), and since ``put`` never waits, holding it
is cheap -- and it makes every member receive broadcasts in the same order:
two broadcasts from two threads cannot interleave their puts.

Check your work:  python -m exercises 11
Stuck?            python -m exercises --hint 11
"""

from __future__ import annotations

import queue
import threading
from typing import Protocol


class Outbox(Protocol):
    """Anything with a ``put`` that never waits: True if queued, False if full or closed."""

    def put(self, frame: bytes) -> bool: ...


class QueueOutbox:
    """A simple outbox: a bounded ``queue.Queue`` that a writer thread would drain."""

    def __init__(self, max_frames: int = 100) -> None:
        self.queue: queue.Queue[bytes] = queue.Queue(max_frames)

    def put(self, frame: bytes) -> bool:
        try:
            self.queue.put_nowait(frame)  # never waits: raises queue.Full instead
        except queue.Full:
            return False
        return True


class Room:
    """The members of a chat room, each with an outbox.  Safe to use from many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._members: dict[str, Outbox] = {}  # in the order they joined

    def add(self, name: str, outbox: Outbox) -> None:
        with self._lock:
            self._members[name] = outbox

    def remove(self, name: str) -> Outbox | None:
        """Take ``name`` out of the room; its outbox, or None if it was not there."""
        with self._lock:
            return self._members.pop(name, None)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._members)

    def broadcast(self, frame: bytes, exclude: str | None = None) -> list[str]:
        """Queue ``frame`` for every member but ``exclude``; drop those whose outbox is full."""
        ### BEGIN SOLUTION
        ### TODO: holding self._lock: put the frame into each member's outbox (skip
        ###       exclude); remember each name whose put returned False, remove those
        ###       members after the loop, and return their names.
        dropped = []
        with self._lock:
            for name, outbox in self._members.items():
                if name == exclude:
                    continue
                if not outbox.put(frame):
                    # Full: this client is far behind.  Waiting for it would make
                    # everyone wait; growing its queue without end would let one
                    # frozen client eat the server's memory.
                    dropped.append(name)
            # Not inside the loop: a dict must not change size while it is
            # being iterated.
            for name in dropped:
                del self._members[name]
        return dropped
        ### END SOLUTION
