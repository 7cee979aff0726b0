"""Exercise 20 (notebook 08_event_loop): one thread, many clients -- a selectors echo loop.

Threads are one way to serve many clients at once.  The other is an *event
loop*: one thread, non-blocking sockets (exercise 19), and a question asked
of the kernel over and over -- "which of these sockets can I use right now
without waiting?".  :mod:`selectors` asks it (``epoll`` on Linux, ``kqueue``
on macOS, ``select`` on Windows): you ``register`` each socket with the
events you care about, and ``select(timeout)`` returns the ones that are
ready.  Then you do exactly one non-blocking step for each, and ask again.
nginx, Redis and Node.js work this way; ``chat``'s ``selectors`` engine
serves 10,000 clients like this with one thread.

Write :func:`echo_loop`: an echo server for any number of clients at once,
in the calling thread, until ``stop`` is set.  It returns how many clients
it accepted.

* The listening socket is ready to *read* when a client is waiting:
  ``accept`` it, make the new socket non-blocking, register it for reading
  with a ``bytearray`` of bytes waiting to be echoed as its ``data``.
* A client socket ready to read: ``recv`` once.  ``b""`` (or a
  ``ConnectionError``): the client left -- ``unregister`` and close it.
  Otherwise add the bytes to its pending bytes.
* Then send what the client's socket takes now (one ``send``, or until
  ``BlockingIOError``) and keep the rest.  Never ``sendall``: a client that
  reads slowly would stop the loop, and every other client with it.
* Ask for ``EVENT_WRITE`` only while a client has bytes pending
  (``selector.modify``); a socket with room is "ready to write" almost all
  the time, and asking for that would wake the loop constantly for nothing.
* Use ``select(timeout=POLL_SECONDS)``, so that the loop looks at ``stop`` now
  and then.  When it ends, close every client socket (not the listener: it is
  the caller's) and the selector.

Check your work:  python -m exercises 20
Stuck?            python -m exercises --hint 20
"""

from __future__ import annotations

import selectors
import socket
import threading

#: Longest wait in select() before looking at ``stop`` again.
POLL_SECONDS = 0.05

#: Bytes asked of each ``recv``.
RECV_BYTES = 65536


def echo_loop(listener: socket.socket, stop: threading.Event) -> int:
    """Echo for every client at once, in this one thread, until ``stop``; clients accepted."""
    # TODO: make a selectors.DefaultSelector; register the non-blocking listener for
    #       reading.  Until stop: for each ready key: the listener -> accept, register the
    #       client (data=bytearray()); a client -> recv (b"": unregister, close), add to
    #       its pending bytes, send what it takes, want EVENT_WRITE only while some are
    #       left.  At the end close the clients and the selector.  Return the count.
    raise NotImplementedError("TODO: write echo_loop()")
