"""Exercise 04 (notebook 01_sockets): an echo server.

An echo server sends back every byte it receives.  It is the "hello world" of
network programming: small, yet it meets every step a real server takes --
accept a connection, read, write, notice that the peer has gone, close.

Write :func:`serve_echo`.  It is handed a socket that is already bound and
listening (exercise 01 made one) and serves ``max_clients`` connections, one
after another: accept one, echo until that peer closes, close it, accept the
next.  It returns how many bytes it echoed in total.

Three things to get right:

* ``recv`` returns ``b""`` once the peer has closed its side (exercise 03).
  That is the end of this client: stop reading, do not wait for more.
* ``send`` may send only part of what you give it and returns how much it
  took; ``sendall`` loops until every byte is gone (exercise 05 writes it).
* Close every connection you accepted, even when the peer vanished mid-way
  (``ConnectionResetError``, ``BrokenPipeError``: both are
  ``ConnectionError``).  One broken client must not stop the server.

One client at a time is a real limit: while one client is connected, the
next waits in the backlog.  Notebook 04 gives each client a thread.

Check your work:  python -m exercises 04
Stuck?            python -m exercises --hint 04
"""

from __future__ import annotations

import socket

#: Bytes asked of each ``recv``.  Any size works: TCP is a stream, and a read
#: returns whatever has arrived, up to this many bytes.
RECV_BYTES = 4096


def serve_echo(listener: socket.socket, max_clients: int = 1) -> int:
    """Serve ``max_clients`` clients one after another; return the bytes echoed to all.

    ``listener`` stays open: whoever created it closes it.
    """
    # TODO: max_clients times: accept a connection; recv and sendall back until
    #       recv returns b""; close it (with); a ConnectionError ends that client only.
    raise NotImplementedError("TODO: write serve_echo()")
