"""Exercise 09 (notebook 04_threads): the accept loop that gives each client a thread.

The echo server of exercise 04 serves one client at a time: while it talks
to one, the next waits.  A chat needs everyone at once.  The classic answer
is a thread per client: the main loop does nothing but ``accept``, and hands
each new connection to a thread of its own, which may block in ``recv`` for
as long as it likes -- it blocks only itself.

Write :func:`accept_and_spawn`.  It accepts connections on ``listener`` until
``stop`` is set, starts a thread running ``handle(conn, address)`` for each,
and returns the list of threads it started.

* Make the threads *daemon* threads: a client that never leaves must not keep
  the program alive after the server stops.
* ``accept`` blocks until a client comes, so the loop would never look at
  ``stop`` while nobody connects.  Give the listener a short timeout
  (``listener.settimeout(POLL_SECONDS)``): ``accept`` then raises
  ``TimeoutError`` now and then, and the loop checks ``stop`` again.  (Closing
  the listener from another thread does not reliably wake ``accept``: on
  Linux it does not.)
* Do not close the listener: whoever made it closes it.  Do not close the
  connections either: each belongs to its thread now.

``socketserver.ThreadingTCPServer`` in the standard library is this loop,
with more options; ``chat.server.engine_threads`` is ours.

Check your work:  python -m exercises 09
Stuck?            python -m exercises --hint 09
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

#: How often, at most, the accept loop looks at ``stop`` while nobody connects.
POLL_SECONDS = 0.1

Handler = Callable[[socket.socket, Any], None]


def accept_and_spawn(
    listener: socket.socket, handle: Handler, stop: threading.Event
) -> list[threading.Thread]:
    """Accept until ``stop`` is set; run ``handle(conn, address)`` in a new thread for each."""
    ### BEGIN SOLUTION
    ### TODO: set a timeout of POLL_SECONDS on the listener; until stop is set: accept
    ###       (on TimeoutError, loop again), start a daemon thread running handle(conn,
    ###       address) and keep it.  Return the threads.
    listener.settimeout(POLL_SECONDS)
    threads = []
    while not stop.is_set():
        try:
            conn, address = listener.accept()
        except TimeoutError:
            continue  # nobody came: look at stop again
        # The accepted socket does not inherit the listener's timeout: it is
        # blocking, which is what a thread per client wants.
        thread = threading.Thread(target=handle, args=(conn, address), daemon=True)
        thread.start()
        threads.append(thread)
    return threads
    ### END SOLUTION
