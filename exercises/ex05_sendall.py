"""Exercise 05 (notebook 02_framing): ``sendall``, written with ``send``.

``sock.send(data)`` hands bytes to the kernel and returns *how many* it took.
That may be fewer than you gave it: the kernel keeps a send buffer for each
socket, and when the peer reads slowly the buffer is nearly full, so ``send``
takes what fits and returns.  The rest is still yours to send.  Code that
calls ``send`` once and moves on loses the tail of its data now and then --
the worst kind of bug, silent and rare.

``sock.sendall(data)`` is the loop that fixes it.  Write that loop yourself:
:func:`send_all` calls ``sock.send`` until every byte of ``data`` is gone,
each time with the part not yet sent, and returns how many ``send`` calls it
took (the tests count them; a real ``sendall`` returns ``None``).

Slice a ``memoryview`` of the data rather than the bytes themselves:
``data[sent:]`` on ``bytes`` copies the whole rest on every call, a
``memoryview`` slice copies nothing.

Errors from ``send`` (the peer is gone: ``BrokenPipeError``,
``ConnectionResetError``) go up to the caller.  Do not call ``sendall``.

Check your work:  python -m exercises 05
Stuck?            python -m exercises --hint 05
"""

from __future__ import annotations

import socket


def send_all(sock: socket.socket, data: bytes) -> int:
    """Send every byte of ``data`` with ``sock.send``; return the number of calls it took."""
    # TODO: loop until all of data is sent: n = sock.send(the part not sent yet);
    #       count the bytes sent and the calls.  Return the number of calls.
    raise NotImplementedError("TODO: write send_all()")
