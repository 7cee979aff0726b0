"""Exercise 03 (notebook 01_sockets): read until the peer closes.

``recv`` blocks until *some* bytes have arrived and returns them: perhaps all
the peer sent, perhaps a few bytes of it.  There is no "message" in TCP, only
a stream.  The one thing ``recv`` tells you about the stream's end is an empty
result: ``b""`` means the peer has closed its side (``close`` or
``shutdown(SHUT_WR)``) and nothing more will ever come.

Write :func:`recv_all`: read from ``sock`` until the peer closes and return
everything it sent, in order.  Some protocols work exactly like this: an HTTP/1.0
server sends its answer and closes the connection to say "that was all".

Forget the check for ``b""`` and your loop never ends: once the stream is
over, ``recv`` returns ``b""`` at once, every time, and the loop spins at full
speed on one CPU, forever.  (The checker notices and stops it.)

Collect the pieces in a list and join them once at the end, or append them to
a ``bytearray``: ``data = data + chunk`` on ``bytes`` copies everything
received so far on each turn, which gets slow for large streams.

Check your work:  python -m exercises 03
Stuck?            python -m exercises --hint 03
"""

from __future__ import annotations

import socket

#: Bytes asked of each ``recv``.  A bigger number means fewer calls, nothing more.
RECV_BYTES = 65536


def recv_all(sock: socket.socket) -> bytes:
    """Everything the peer sends on ``sock`` until it closes its side."""
    ### BEGIN SOLUTION
    ### TODO: loop: chunk = sock.recv(RECV_BYTES); stop when chunk is b"" (the peer
    ###       closed); otherwise keep the chunk.  Return all the chunks joined.
    chunks = []
    while True:
        chunk = sock.recv(RECV_BYTES)
        if not chunk:
            # b"" is the end of the stream.  An empty result never means "nothing
            # yet": a blocking recv waits for at least one byte instead.
            break
        chunks.append(chunk)
    # One join at the end copies each byte once.
    return b"".join(chunks)
    ### END SOLUTION
