"""Exercise 14 (notebook 05_server): stop a threaded server gracefully.

Stopping a server well takes more than closing the listening socket.  Clients
deserve to hear that the server is going (rather than guess from a dead
connection), every socket should be closed, and every thread should end --
but no client, however stuck, may keep the server from stopping.  So the
order matters, and every wait has a deadline:

1. **Stop accepting.**  Set ``self._stopping``; the accept loop sees it within
   ``POLL_SECONDS`` and returns.  Join it, then close the listener.
2. **Tell the clients.**  Send each connection the :data:`GOODBYE` frame.  A
   client that stopped reading could make ``sendall`` wait forever, so give
   each socket a short timeout first (``conn.settimeout(GOODBYE_TIMEOUT)``)
   and ignore ``OSError``: a client that cannot be told is still closed.
3. **Close.**  ``conn.shutdown(socket.SHUT_RDWR)`` wakes the connection's
   thread wherever it waits in ``recv`` or ``sendall`` (``close`` alone does
   not, on Linux).
4. **Join with a deadline.**  Wait for each connection's thread, all of them
   together within ``timeout`` seconds of the start, then close its socket.

Write :meth:`LineServer.stop`.  It returns the threads still running at the
deadline (a handler stuck in something that is not a socket), so that the
caller can log them; they are daemon threads and end with the program.

Take the connections out of ``self._connections`` under ``self._lock`` before
you use them: a thread that ends on its own then knows its socket is yours to
close, not its own.  ``chat``'s ``server.stop()`` does all of this, for every
engine.

Check your work:  python -m exercises 14
Stuck?            python -m exercises --hint 14
"""

from __future__ import annotations

import socket
import threading
import time

#: How often, at most, the accept loop looks at ``_stopping``.
POLL_SECONDS = 0.05

#: Longest wait to hand one client its goodbye.
GOODBYE_TIMEOUT = 0.2

GOODBYE = b'{"type":"server_shutdown","message":"The server is shutting down"}\n'


class LineServer:
    """A small threaded server that answers every line ``x`` with ``ok: x``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.listener = socket.create_server((host, port))
        self.listener.settimeout(POLL_SECONDS)
        self.address = self.listener.getsockname()[:2]
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._accepter = threading.Thread(target=self._accept_loop, daemon=True)

    def start(self) -> LineServer:
        self._accepter.start()
        return self

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self._connections[conn] = thread
            thread.start()

    def answer(self, line: bytes) -> bytes:
        """The reply to one line (tests replace this)."""
        return b"ok: " + line + b"\n"

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        try:
            while data := conn.recv(4096):
                buffer += data
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    conn.sendall(self.answer(line))
        except OSError:
            pass  # reset by the peer, or shut down by stop()
        with self._lock:
            # Still listed: the client left on its own, and the socket is ours
            # to close.  Not listed: stop() took it and closes it.
            ours = self._connections.pop(conn, None) is not None
        if ours:
            conn.close()

    def stop(self, timeout: float = 2.0) -> list[threading.Thread]:
        """Stop accepting, say goodbye, close every connection; the threads still running."""
        ### BEGIN SOLUTION
        ### TODO: 1. set _stopping, join _accepter, close the listener; 2. take the
        ###       connections out of _connections (under _lock) and sendall GOODBYE to
        ###       each with a GOODBYE_TIMEOUT timeout; 3. shutdown(SHUT_RDWR) each;
        ###       4. join each thread by the deadline, close its socket; return those alive.
        deadline = time.monotonic() + timeout

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        # 1. Stop accepting.
        self._stopping.set()
        self._accepter.join(left())
        self.listener.close()
        # From here on no connection is added; take them all.
        with self._lock:
            connections = dict(self._connections)
            self._connections.clear()
        # 2. Tell every client, without letting one that does not read hold us up.
        for conn in connections:
            try:
                conn.settimeout(min(GOODBYE_TIMEOUT, left()))
                conn.sendall(GOODBYE)
            except OSError:  # TimeoutError included: it did not read in time
                pass
        # 3. Shut down: wakes each thread blocked in recv() or sendall().
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already gone
        # 4. Join, all within the one deadline.
        still_running = []
        for conn, thread in connections.items():
            thread.join(left())
            if thread.is_alive():
                still_running.append(thread)
            conn.close()
        return still_running
        ### END SOLUTION
