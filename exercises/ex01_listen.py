"""Exercise 01 (notebook 01_sockets): open a listening socket.

Every server starts the same way.  It makes a socket, binds it to an address
-- a host and a port -- and tells the kernel to start accepting connections
there.  From then on clients can connect, even before the server calls
``accept``: the kernel completes their handshakes and keeps them in a queue
(the *backlog*) until the server takes them.

Write :func:`listen`.  It returns a TCP socket (IPv4, ``AF_INET`` and
``SOCK_STREAM``) that is bound to ``(host, port)`` and listening.

* Port 0 means "any free port": the kernel picks one, and
  ``sock.getsockname()`` tells you which.  Tests use it, so that two test
  runs never fight over one port.
* Set the socket option ``SO_REUSEADDR`` before ``bind``, so that a server you
  just stopped can start again at once on the same port.  Without it, ``bind``
  fails with "Address already in use" for up to a minute while the old
  connections linger in the ``TIME_WAIT`` state.  Not on Windows, though:
  there ``SO_REUSEADDR`` lets a second server bind a port that another one
  is *listening* on, which is never what you want (``os.name == "nt"``).
* If ``bind`` fails (the port is taken), close the socket before the error
  goes up: a program that retries should not leak one socket per attempt.

The standard library has all of this in one call, ``socket.create_server``;
the ``chat`` server uses it.  Write it by hand once to see the steps.

Check your work:  python -m exercises 01
Stuck?            python -m exercises --hint 01
"""

from __future__ import annotations

import os
import socket

#: Connections the kernel may hold for us before we ``accept`` them.
BACKLOG = 16


def listen(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A TCP socket bound to ``(host, port)`` and listening; port 0 picks a free one."""
    # TODO: make an AF_INET, SOCK_STREAM socket; set SO_REUSEADDR (not on Windows);
    #       bind it to (host, port); listen(BACKLOG); return it.  Close it if bind fails.
    raise NotImplementedError("TODO: write listen()")
