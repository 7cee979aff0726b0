"""Exercise 19 (notebook 08_event_loop): a non-blocking send, counted.

A blocking socket makes its thread wait: in ``accept`` for a client, in
``recv`` for bytes, in ``send`` for room in the kernel's buffer.  A thread per
client can afford that.  One thread serving *every* client cannot: while it
waits for one, all the others wait too.  So an event loop puts its sockets in
non-blocking mode (``sock.setblocking(False)``), where nothing ever waits.  A
call that would have to wait raises ``BlockingIOError`` instead, meaning
"not now, try again when the socket is ready".

Sending is where this bites.  ``send`` on a non-blocking socket takes what
fits in the kernel's buffer right now -- all of it, some of it, or nothing
(``BlockingIOError``) -- and the rest must wait in a buffer of your own
until the socket can take more.  ``sendall`` has no place here: it either
blocks or raises with no word on how much it sent.

Write :func:`flush`.  ``pending`` holds the bytes waiting for this socket.
Send as much of it as the socket takes now, without ever waiting: call
``send`` until ``pending`` is empty or the socket raises
``BlockingIOError``.  Remove what was sent from the front of ``pending`` (it
is a ``bytearray``: ``del pending[:n]``) and return how many bytes went out
in this call.  Other errors (the peer is gone) go up to the caller.

The selectors loop of exercise 20 calls this whenever a socket is ready for
writing, and asks to be told again only while ``pending`` is not empty.

Check your work:  python -m exercises 19
Stuck?            python -m exercises --hint 19
"""

from __future__ import annotations

import socket


def flush(sock: socket.socket, pending: bytearray) -> int:
    """Send what ``sock`` takes now from the front of ``pending``; the bytes sent."""
    # TODO: while pending is not empty: n = sock.send(pending); del pending[:n]; count
    #       n.  On BlockingIOError stop: the kernel's buffer is full for now.  Return
    #       the count.
    raise NotImplementedError("TODO: write flush()")
