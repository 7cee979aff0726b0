"""Exercise 01 (notebook 01, sockets): an echo server.

An echo server sends back every byte it receives.  It is the "hello world" of
network programming: small, yet it meets every step a real server takes --
accept a connection, read, write, notice that the peer has gone, close.

Write :func:`serve_echo`.  It is handed a socket that is already bound and
listening (the caller chose the address, perhaps port 0 for any free port)
and serves ``max_clients`` connections, one after another: accept one, echo
until that peer closes, close it, accept the next.  It returns how many bytes
it echoed in total.  :func:`echo_connection` does the work for one connection.

Three things to get right:

* ``recv`` returns ``b""`` once the peer has closed its side.  That is the end
  of this client: stop reading, do not wait for more.
* ``send`` may send only part of what you give it and returns how much it
  took; ``sendall`` loops until every byte is gone.
* Close every connection you accepted, even when the peer vanished mid-way
  (``ConnectionResetError``).  One broken client must not stop the server.

Check your work:  python -m exercises 01
Stuck?            python -m exercises --hint 01
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
    # TODO: accept max_clients connections, one at a time, and echo each with
    #       echo_connection().  Close each connection when it is done.
    raise NotImplementedError("TODO: write serve_echo()")


def echo_connection(conn: socket.socket) -> int:
    """Send back everything ``conn`` receives until the peer closes; return the byte count."""
    # TODO: loop: recv up to RECV_BYTES; b"" means the peer closed, so stop;
    #       otherwise send the bytes back with sendall and count them.
    raise NotImplementedError("TODO: write echo_connection()")
