"""Exercise 02 (notebook 01_sockets): the client side -- connect, ask, read the answer.

A client is the simpler half of a conversation: it connects to a server's
address, sends, reads what comes back, and closes.  Write :func:`ask`, which
sends one line of text to a line-based server (an echo server, the chat
server, an SMTP server...) and returns the line it answers with.

* ``socket.create_connection((host, port), timeout)`` makes the socket and
  connects it, trying each address the host name resolves to (``localhost``
  may be IPv6 ``::1`` first, then IPv4 ``127.0.0.1``).  The timeout makes
  every later ``send`` and ``recv`` on it give up with ``TimeoutError``
  instead of waiting forever for a server that never answers.
* Send the question as UTF-8 with a ``\\n`` at the end: the newline tells a
  line-based server where the question ends.
* The answer may arrive in several pieces: ``recv`` returns whatever has
  arrived so far.  Keep reading until the bytes you have contain a newline.
  If ``recv`` returns ``b""`` first, the server closed the connection without
  finishing its line: raise ``ConnectionError``.
* Return the first line, decoded, without its newline.  Close the socket
  however you leave (``with`` does that).

Let errors go up to the caller: nobody listening there is
``ConnectionRefusedError``, a silent server is ``TimeoutError``.

Check your work:  python -m exercises 02
Stuck?            python -m exercises --hint 02
"""

from __future__ import annotations

import socket

#: Bytes asked of each ``recv``.
RECV_BYTES = 4096


def ask(host: str, port: int, question: str, timeout: float = 5.0) -> str:
    """Send ``question`` as one line to ``host:port``; return the line that comes back."""
    # TODO: connect with socket.create_connection; sendall the question as UTF-8 plus
    #       b"\n"; recv until the data holds a newline (b"" first: raise ConnectionError);
    #       return the first line decoded, without the newline.
    raise NotImplementedError("TODO: write ask()")
