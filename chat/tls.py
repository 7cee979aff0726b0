"""TLS for the chat: encrypt the connection and prove who the server is.

Plain TCP sends every message as readable bytes: anyone on the path (the café
Wi-Fi, a compromised router) can read and even change them.  TLS, from the
standard :mod:`ssl` module, wraps the byte stream in encryption and lets the
client check the server's *certificate*: a public key signed by an authority
the client trusts (a real one such as Let's Encrypt, or your own "CA" file for
a self-signed set-up, see README "Security").  The chat protocol does not
change at all: the same newline-delimited JSON travels inside the tunnel.

Making contexts: :func:`server_context` (certificate and private key) and
:func:`client_context` (whom to trust).  Both refuse the old TLS versions.

Why :class:`TLSChannel` instead of ``context.wrap_socket``?  Our threaded
programs use each socket from *two* threads at once: one blocks in ``recv``
while another calls ``sendall``.  That is fine for a plain socket, but an
``ssl.SSLSocket`` drives one OpenSSL ``SSL`` object, and OpenSSL forbids using
one ``SSL`` object from two threads at the same time: CPython releases the
GIL inside ``SSL_read`` and ``SSL_write``, so the two calls really overlap.
With TLS 1.3 they touch shared state even in a chat (session tickets, key
updates), and the failures are rare, random and hard to debug.

So we split the work.  OpenSSL runs in memory only (an :class:`ssl.SSLObject`
between two :class:`ssl.MemoryBIO` buffers), always under one lock and only
for microseconds at a time; the slow, blocking parts -- ``recv`` and
``sendall`` on the raw socket -- happen outside that lock, so a thread waiting
for the network never blocks the other.  A second lock keeps encrypted
records going out in the order OpenSSL made them (a record out of order is a
fatal error for the peer).  The handshake runs in the connection's own thread
under a deadline, so a client that never finishes it only delays itself.

The same :class:`TLSChannel` serves the threaded server and
:class:`chat.client.ChatClient`; event-loop engines use ``SSLObject`` the same
way (selectors) or asyncio's own TLS support.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time

__all__ = ["TLSChannel", "client_context", "server_context"]

#: Bytes asked of each raw ``recv``: the largest TLS record and then some.
RECV_BYTES = 64 * 1024


def server_context(certfile: str, keyfile: str | None = None) -> ssl.SSLContext:
    """A context for a server that presents ``certfile`` (PEM; key in ``keyfile`` or inside)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # A client may not start a renegotiation (TLS 1.2): it costs the server a
    # handshake each time, a known denial-of-service trick, and chat never needs it.
    context.options |= getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    context.load_cert_chain(certfile, keyfile)
    return context


def client_context(cafile: str | None = None) -> ssl.SSLContext:
    """A context that checks the server's certificate and name.

    ``cafile`` is a PEM file of the authorities to trust instead of the
    system's (a self-signed set-up); ``None`` trusts the system's authorities,
    as a web browser does.
    """
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class TLSChannel:
    """TLS over a connected socket, safe for one reading and one writing thread.

    Offers the two socket calls our programs use, :meth:`recv` and
    :meth:`sendall`, with the same meaning (``b""`` at the end of the
    stream, ``TimeoutError`` if the raw socket has a timeout that passes).
    Everything else -- ``settimeout``, ``shutdown``, ``close`` -- is done on
    :attr:`sock` itself.  Call :meth:`handshake` first.
    """

    def __init__(
        self,
        sock: socket.socket,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        server_hostname: str | None = None,
    ) -> None:
        self.sock = sock
        self._incoming = ssl.MemoryBIO()  # raw bytes received, not yet decrypted
        self._outgoing = ssl.MemoryBIO()  # encrypted bytes made, not yet sent
        self._tls = context.wrap_bio(
            self._incoming, self._outgoing, server_side=server_side, server_hostname=server_hostname
        )
        self._tls_lock = threading.Lock()  # guards _tls and both BIOs; never held during I/O
        self._send_lock = threading.Lock()  # encrypted bytes leave in the order they were made

    @property
    def version(self) -> str | None:
        """The TLS version agreed on, such as ``"TLSv1.3"``."""
        return self._tls.version()

    def handshake(self, timeout: float) -> None:
        """Agree on keys and check certificates, within ``timeout`` seconds.

        Raises :class:`ssl.SSLError` (for example ``SSLCertVerificationError``),
        ``TimeoutError`` or another ``OSError``; the socket is then useless.
        """
        deadline = time.monotonic() + timeout
        previous = self.sock.gettimeout()
        try:
            while True:
                with self._tls_lock:
                    try:
                        self._tls.do_handshake()
                        done = True
                    except ssl.SSLWantReadError:
                        done = False
                self._flush()
                if done:
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"TLS handshake not finished within {timeout:g} s")
                self.sock.settimeout(remaining)
                data = self.sock.recv(RECV_BYTES)
                if not data:
                    raise ConnectionResetError("connection closed during the TLS handshake")
                with self._tls_lock:
                    self._incoming.write(data)
        finally:
            self.sock.settimeout(previous)

    def recv(self, bufsize: int = RECV_BYTES) -> bytes:
        """Up to ``bufsize`` decrypted bytes; ``b""`` once the peer has closed."""
        while True:
            with self._tls_lock:
                try:
                    data: bytes | None = self._tls.read(bufsize)
                except ssl.SSLWantReadError:
                    data = None  # no whole record yet
                except ssl.SSLZeroReturnError:
                    data = b""  # the peer said goodbye (close_notify)
                must_send = self._outgoing.pending > 0  # e.g. an answer to a key update
            if must_send:
                self._flush()
            if data is not None:
                return data
            raw = self.sock.recv(RECV_BYTES)  # blocks without any lock held
            if not raw:
                return b""  # closed without close_notify: still the end of the stream
            with self._tls_lock:
                self._incoming.write(raw)

    def sendall(self, data: bytes) -> None:
        """Encrypt ``data`` and send all of it."""
        with self._send_lock:
            with self._tls_lock:
                view = memoryview(data)
                while view:
                    view = view[self._tls.write(view) :]
                encrypted = self._outgoing.read()
            self.sock.sendall(encrypted)

    def close_notify(self) -> None:
        """Tell the peer we will send nothing more (TLS ``close_notify``); best effort."""
        with self._send_lock:
            with self._tls_lock:
                try:
                    self._tls.unwrap()
                except ssl.SSLError:
                    pass  # "want read": the peer's close_notify has not come; we do not wait
                encrypted = self._outgoing.read()
            if encrypted:
                self.sock.sendall(encrypted)

    def _flush(self) -> None:
        with self._send_lock:
            with self._tls_lock:
                encrypted = self._outgoing.read()
            if encrypted:
                self.sock.sendall(encrypted)
