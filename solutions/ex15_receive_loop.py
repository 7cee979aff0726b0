"""Exercise 15 (notebook 06_client): the client's receive loop.

A chat client cannot wait for the user to type and for the server to talk
with one thread: whichever it waits for, it misses the other.  So a second
thread runs a *receive loop*: it blocks in ``recv``, decodes whatever arrives
and hands each message on, until the connection ends.

Write :func:`receive_loop`.  It reads ``sock`` until the connection ends,
feeds the bytes to a :class:`chat.protocol.FrameDecoder` (built in notebook
02) and calls ``on_message(message)`` for every complete message, in order.
When the connection ends -- for whatever reason -- it calls
``on_disconnect(reason)`` exactly once, after the last message, and returns.

==========================================  ===================================
how it ends                                 reason starts with
==========================================  ===================================
``recv`` returns ``b""``                    ``"Server closed the connection"``
``recv`` raises ``OSError`` (e.g. a reset)  ``"Connection lost"``
the decoder raises ``ProtocolError``        ``"The server sent a bad frame"``
==========================================  ===================================

One more rule: ``on_message`` is someone else's code.  If it raises, the
error is logged and the loop carries on with the next message -- a bug in the
code that displays messages must not silently cut the user off the chat.
:func:`deliver` (given) does exactly that: hand every message to it.

Check your work:  python -m exercises 15
Stuck?            python -m exercises --hint 15
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

from chat.protocol import MAX_SERVER_FRAME_BYTES, FrameDecoder, ProtocolError

log = logging.getLogger("exercises.receive_loop")

#: Bytes asked of each ``recv``; the decoder copes with any size.
RECV_BYTES = 65536


def receive_loop(
    sock: socket.socket,
    on_message: Callable[[dict[str, Any]], None],
    on_disconnect: Callable[[str], None],
) -> None:
    """Deliver every message ``sock`` brings to ``on_message``; report the end once."""
    ### BEGIN SOLUTION
    ### TODO: make a FrameDecoder(MAX_SERVER_FRAME_BYTES); loop: recv, stop at b"", feed
    ###       the decoder and deliver() each complete frame (next_frame() until None);
    ###       turn ProtocolError and OSError into the reason; then on_disconnect once.
    # A client trusts the server further than the server trusts clients: a
    # welcome lists every user, so allow larger frames than the default.
    decoder = FrameDecoder(MAX_SERVER_FRAME_BYTES)
    reason = "Server closed the connection"
    try:
        while True:
            data = sock.recv(RECV_BYTES)
            if not data:
                break  # end of stream: the server closed its side
            decoder.feed(data)
            # One recv may complete several frames, or none: drain them all.
            while (message := decoder.next_frame()) is not None:
                deliver(on_message, message)
    except ProtocolError as exc:
        reason = f"The server sent a bad frame: {exc}"
    except OSError as exc:
        # ConnectionResetError, or the socket closed under us by another thread.
        reason = f"Connection lost: {exc.strerror or exc}"
    # Reached exactly once, on every way out of the loop above (an exception
    # from on_disconnect itself is the caller's business).
    on_disconnect(reason)
    ### END SOLUTION


def deliver(on_message: Callable[[dict[str, Any]], None], message: dict[str, Any]) -> None:
    """Call ``on_message(message)``; if it raises, log the error instead of stopping."""
    try:
        on_message(message)
    except Exception:
        # log.exception records the traceback too, so the bug can be found;
        # the loop goes on with the next message.
        log.exception("on_message failed for a %r message", message.get("type"))
