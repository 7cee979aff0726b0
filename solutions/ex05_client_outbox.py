"""Exercise 05 (notebook 05, server): a bounded outbox for each client.

When alice sends a message, the server passes it on to everyone.  If the
reader thread that got alice's message called ``sendall`` on every other
client's socket itself, one client that stops reading (a frozen laptop, a
paused notebook) would fill its socket buffers, ``sendall`` would block, and
alice's thread -- and soon everybody's -- would hang with it.

So each client gets an *outbox*: a queue of frames and a writer thread of its
own.  A broadcast only appends to queues, which never blocks; each writer
sends at its own client's pace.  The queue is bounded: a client whose outbox
holds more than ``max_bytes`` is not keeping up, and the server disconnects it
rather than buffering without end.

Write :meth:`Outbox.put`, :meth:`Outbox.close` and :meth:`Outbox.run_writer`.
``__init__`` is given.

* ``put(frame)`` never blocks.  It queues the frame and returns True, or
  returns False -- queuing nothing -- when the frame would take the bytes
  waiting past ``max_bytes`` (overflow) or when the outbox is closed.
* ``run_writer()`` runs on the writer thread.  It waits until there is
  something to send, takes *everything* queued and sends it with one
  ``sendall`` (many small frames, one system call), and repeats.  After
  ``close()`` it sends what is left, shuts the socket's sending side
  (``shutdown(socket.SHUT_WR)``: the peer sees end of stream after our last
  frame) and returns.  If the peer is gone (``OSError``) it just returns.
* Bytes count against the limit until the writer takes them off the queue.

``self._wake`` is a :class:`threading.Condition`: a lock plus a way to sleep
until another thread says something changed.  Hold it (``with self._wake:``)
whenever you touch the queue, call ``self._wake.notify()`` after a change, and
``self._wake.wait()`` in a ``while`` loop to sleep until there is work.  Never
call ``sendall`` while holding it: ``put`` would have to wait for the network.

Check your work:  python -m exercises 05
Stuck?            python -m exercises --hint 05
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
        ### BEGIN SOLUTION
        ### TODO: under self._wake: refuse when closing or when the frame would pass
        ###       max_bytes; else append it, count its bytes and wake the writer.
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
        ### END SOLUTION

    def close(self) -> None:
        """Accept no more frames; the writer sends what is queued, then ends the stream."""
        ### BEGIN SOLUTION
        ### TODO: under self._wake: mark the outbox closing and wake the writer.
        with self._wake:
            self._closing = True
            self._wake.notify()
        ### END SOLUTION

    def run_writer(self) -> None:
        """Send queued frames until closed and drained.  Runs on the writer thread."""
        ### BEGIN SOLUTION
        ### TODO: loop: wait for frames or closing; take all frames at once; sendall
        ###       them outside the lock; once closing and drained, SHUT_WR and return.
        try:
            while True:
                with self._wake:
                    # "while", not "if": wait() may return without a notify
                    # (a spurious wake-up), so check the condition again.
                    while not self._frames and not self._closing:
                        self._wake.wait()
                    # Take everything at once: one sendall for many frames.
                    data = b"".join(self._frames)
                    self._frames.clear()
                    self._queued = 0
                    # Decided under the lock: after close() nothing more can
                    # be put, so once this batch is sent we are done.
                    last = self._closing
                # The lock is released before sendall, which may block for as
                # long as the client takes to read: put() must not wait that long.
                if data:
                    self.sock.sendall(data)
                if last:
                    # A clean end of stream (FIN) after our last frame.
                    self.sock.shutdown(socket.SHUT_WR)
                    return
        except OSError:
            # The peer is gone (BrokenPipeError, ConnectionResetError): there is
            # nobody left to send to.  The reader thread notices too and cleans up.
            return
        ### END SOLUTION
