"""Exercise 12 (notebook 05_server): a bounded outbox for each client, and its writer.

When alice sends a message, the server passes it on to everyone.  If the
reader thread that got alice's message called ``sendall`` on every other
client's socket itself, one client that stops reading (a frozen laptop, a
paused notebook) would fill its socket buffers, ``sendall`` would block, and
alice's thread -- and soon everybody's -- would hang with it.

So each client gets an *outbox* (exercise 11 broadcast through them): a
queue of frames and a writer thread of its own.  A broadcast only appends to
queues, which never blocks; each writer sends at its own client's pace.  The
queue is bounded: :meth:`Outbox.put` refuses a frame that would take the
bytes waiting past ``max_bytes`` (the client is not keeping up; the server
disconnects it) and any frame after :meth:`Outbox.close`.  Both are given:
read them first.

Write :meth:`Outbox.run_writer`, the loop of the writer thread:

* Wait until there is something to send or the outbox is closing.
* Take *everything* queued at once and send it with one ``sendall``: many
  small frames, one system call.  Bytes stop counting against the limit when
  the writer takes them off the queue.
* After ``close()``, send what is left, shut the socket's sending side
  (``shutdown(socket.SHUT_WR)``: the peer sees the end of the stream after our
  last frame) and return.  If the peer is gone (``OSError``), just return.

``self._wake`` is a :class:`threading.Condition`: a lock plus a way to sleep
until another thread says something changed.  Hold it (``with self._wake:``)
whenever you touch the queue; ``self._wake.wait()`` releases it while it
sleeps, and ``put`` and ``close`` call ``self._wake.notify()`` to wake you.
Never call ``sendall`` while holding it: ``put`` would have to wait for the
network -- exactly what the outbox is for avoiding.

Check your work:  python -m exercises 12
Stuck?            python -m exercises --hint 12
"""

from __future__ import annotations

import socket
import threading

from chat.limits import MAX_SEND_QUEUE_BYTES


class Outbox:
    """Frames waiting to be sent to one client, and the loop that sends them."""

    def __init__(self, sock: socket.socket, max_bytes: int = MAX_SEND_QUEUE_BYTES) -> None:
        self.sock = sock
        self.max_bytes = max_bytes
        self._frames: list[bytes] = []  # waiting to be sent, oldest first
        self._queued = 0  # their total size in bytes
        self._closing = False  # set by close(): nothing more may be put
        self._wake = threading.Condition()  # guards the three above

    @property
    def queued(self) -> int:
        """Bytes waiting to be sent."""
        with self._wake:
            return self._queued

    def put(self, frame: bytes) -> bool:
        """Queue ``frame`` for the writer.  False (and nothing queued) if closed or full."""
        with self._wake:
            if self._closing:
                return False
            if self._queued + len(frame) > self.max_bytes:
                # Overflow: this client reads more slowly than others write
                # to it.  Say so; the caller disconnects it.
                return False
            self._frames.append(frame)
            self._queued += len(frame)
            self._wake.notify()  # the writer may be asleep in wait()
            return True

    def close(self) -> None:
        """Accept no more frames; the writer sends what is queued, then ends the stream."""
        with self._wake:
            self._closing = True
            self._wake.notify()

    def run_writer(self) -> None:
        """Send queued frames until closed and drained.  Runs on the writer thread."""
        # TODO: loop: under self._wake, wait() while there are no frames and not
        #       closing; take all frames at once (join them, clear, _queued = 0).  Then,
        #       outside the lock, sendall them; if closing, shutdown(SHUT_WR) and return.
        #       Return quietly on OSError.
        raise NotImplementedError("TODO: write Outbox.run_writer()")
