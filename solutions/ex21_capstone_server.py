"""Exercise 21 (notebook 08_event_loop): your own chat server, from your own pieces.

Twenty exercises built the parts of a chat server.  This one puts them
together into a complete threaded server that speaks the chat protocol v1 --
and proves it: the checker runs the conformance tester (``python -m
conformance``) against it, all six stages, the same tester every engine of
``chat`` passes.

What is yours, imported from your earlier exercises:

==========================  ================================================
``listen``          (01)    the listening socket
``encode_frame``,   (06)    a message as a frame, and a line as a message
``decode_frame``
``LineDecoder``     (07)    bytes cut anywhere in, lines out, bounded
``validate_message`` (08)   a clean message or a clear error
``accept_and_spawn`` (09)   a thread per client
``UserRegistry``    (10)    one name, one user, however they race
``Room``            (11)    broadcast without waiting; the full are dropped
``Outbox``          (12)    a bounded queue and a writer thread per client
``setup_logging``   (13)    the log, when you run the server from a terminal
==========================  ================================================

The class below does the rest -- starting, stopping gracefully (exercise 14's
steps), giving each client an outbox and a writer thread, cleaning up when a
client leaves (``user_left`` for the others) -- and leaves you one method:
:meth:`ChatServer.serve_client`, the heart of it.  It reads the client's
bytes until the client leaves, and acts on every message:

* Cut the bytes into lines with a ``LineDecoder``.  A line too long
  (``LineTooLong``): send an error frame and return (the server closes the
  connection; the stream cannot be trusted after an endless line).
* Decode each line (``decode_frame``) and check it (``validate_message``).  A
  bad one (``FrameError``, ``InvalidMessage``): send an error frame with the
  exception's text, and go on with the next line.
* ``ping``: answer ``{"type": "pong"}``.
* ``join``: refuse a second join, and a name that is taken (``registry.claim``
  failed: "Username already taken").  Otherwise remember the name in
  ``client.name``, send the welcome (``message``, and ``users``: everyone
  online, this client included), add the client's outbox to the room, and
  broadcast ``user_joined`` to the others.  In that order: once anyone hears
  that bob joined, bob must already receive what they say.
* ``chat`` before joining: an error ("Join first").  After: broadcast
  ``{"type": "chat", "username": ..., "message": ..., "timestamp":
  time.time()}`` to everyone, the sender included.

:meth:`send` and :meth:`broadcast` are given: use them.

Run your server, and try it with the tester and with the real client::

    python -m exercises.ex21_capstone_server --port 12346
    python -m conformance 127.0.0.1 12346
    python -m chat.client --port 12346

Check your work:  python -m exercises 21
Stuck?            python -m exercises --hint 21
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from chat.limits import MAX_SEND_QUEUE_BYTES

from .ex01_listen import listen
from .ex06_encode_frame import FrameError, decode_frame, encode_frame
from .ex07_frame_decoder import LineDecoder, LineTooLong
from .ex08_validate_message import InvalidMessage, validate_message
from .ex09_accept_and_spawn import accept_and_spawn
from .ex10_user_registry import UserRegistry
from .ex11_broadcast import Room
from .ex12_client_outbox import Outbox
from .ex13_logging import setup_logging

log = logging.getLogger(__name__)

#: Bytes asked of each ``recv``.
RECV_BYTES = 65536

GOODBYE = {"type": "server_shutdown", "message": "The server is shutting down"}


@dataclass(eq=False)
class Client:
    """One connection: its socket, its outbox, and its name once it has joined."""

    conn: socket.socket
    outbox: Outbox
    address: str
    name: str | None = None


class ChatServer:
    """A threaded chat server made of your pieces.  ``with ChatServer() as server:``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.listener = listen(host, port)  # 01
        self.address: tuple[str, int] = self.listener.getsockname()[:2]
        self.registry = UserRegistry()  # 10
        self.room = Room()  # 11
        #: Exceptions that escaped serve_client (a bug): the tests show the first.
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()  # guards _clients
        self._clients: set[Client] = set()
        self._stop = threading.Event()
        self._accepter = threading.Thread(target=self._accept, daemon=True)

    # -- what serve_client uses

    def send(self, client: Client, message: dict[str, Any]) -> None:
        """Queue ``message`` for one client."""
        client.outbox.put(encode_frame(message))  # 06, 12

    def broadcast(self, message: dict[str, Any], exclude: str | None = None) -> None:
        """Queue ``message`` for everyone in the room but ``exclude``; drop the hopelessly slow."""
        for name in self.room.broadcast(encode_frame(message), exclude):  # 11
            log.warning("%s is too slow to keep up: disconnecting it", name)
            self._disconnect(name)

    # -- yours

    def serve_client(self, client: Client) -> None:
        """Read ``client``'s frames until it leaves, and act on each one."""
        ### BEGIN SOLUTION
        ### TODO: decoder = LineDecoder(); loop: recv (b"": return); feed the decoder (on
        ###       LineTooLong: send an error, return); for each line: decode_frame, then
        ###       validate_message (on FrameError or InvalidMessage: send an error, next
        ###       line); then ping -> pong, join -> claim, welcome, room.add, user_joined,
        ###       chat -> broadcast (or "Join first").  The module docstring has the details.
        decoder = LineDecoder()  # 07
        while True:
            data = client.conn.recv(RECV_BYTES)
            if not data:
                return  # the client closed the connection
            try:
                lines = decoder.feed(data)
            except LineTooLong as exc:
                # We no longer know where the next frame starts: say why, and end.
                self.send(client, {"type": "error", "message": f"Line too long: {exc}"})
                return
            for line in lines:
                try:
                    message = validate_message(decode_frame(line))  # 06, 08
                except (FrameError, InvalidMessage) as exc:
                    # A bad frame costs that frame only: the next line is fine.
                    self.send(client, {"type": "error", "message": str(exc)})
                    continue
                kind = message["type"]
                if kind == "ping":
                    self.send(client, {"type": "pong"})
                elif kind == "join":
                    self._join(client, message["username"])
                elif client.name is None:
                    self.send(client, {"type": "error", "message": "Join first"})
                else:
                    log.info("%s: %s", client.name, message["message"])
                    self.broadcast(
                        {
                            "type": "chat",
                            "username": client.name,
                            "message": message["message"],
                            "timestamp": time.time(),
                        }
                    )

    def _join(self, client: Client, name: str) -> None:
        if client.name is not None:
            self.send(client, {"type": "error", "message": f"Already joined as {client.name}"})
            return
        if not self.registry.claim(name):  # 10: check and take, in one step
            self.send(client, {"type": "error", "message": "Username already taken"})
            return
        client.name = name
        log.info("%s joined from %s", name, client.address)
        users = self.registry.names()
        self.send(client, {"type": "welcome", "message": f"Welcome, {name}!", "users": users})
        # Into the room before anyone hears of it: whoever answers "hi bob"
        # after user_joined must reach bob.
        self.room.add(name, client.outbox)
        joined = {"type": "user_joined", "username": name, "message": f"{name} joined the chat"}
        self.broadcast(joined, exclude=name)
        ### END SOLUTION

    # -- the rest, given

    def start(self) -> ChatServer:
        self._accepter.start()
        log.info("Chat server started on %s:%s", *self.address)
        return self

    def _accept(self) -> None:
        try:
            accept_and_spawn(self.listener, self._client_thread, self._stop)  # 09
        except Exception as exc:  # a bug in accept_and_spawn: keep it for the tests
            self.errors.append(exc)
            log.exception("accept_and_spawn failed")
            self.listener.close()  # clients are refused at once instead of left waiting

    def _client_thread(self, conn: socket.socket, address: Any) -> None:
        """Runs in the client's own thread: set up, serve_client, clean up -- whatever happens."""
        client = Client(conn, Outbox(conn, MAX_SEND_QUEUE_BYTES), f"{address[0]}:{address[1]}")
        writer = threading.Thread(target=client.outbox.run_writer, daemon=True)  # 12
        writer.start()
        with self._lock:
            self._clients.add(client)
        log.info("New connection from %s", client.address)
        try:
            self.serve_client(client)
        except OSError:
            pass  # the connection broke (reset), or stop() shut it: the client is gone
        except Exception as exc:  # a bug in serve_client: keep it for the tests, and log it
            self.errors.append(exc)
            log.exception("serve_client failed for %s", client.address)
        finally:
            self._leave(client)
            client.outbox.close()  # the writer sends what is queued, then ends the stream
            writer.join(1.0)
            conn.close()

    def _leave(self, client: Client) -> None:
        with self._lock:
            self._clients.discard(client)
        if client.name is None:
            log.info("Connection from %s closed", client.address)
            return
        self.room.remove(client.name)
        self.registry.release(client.name)
        log.info("%s left", client.name)
        left = {"type": "user_left", "username": client.name, "message": f"{client.name} left"}
        self.broadcast(left)

    def _disconnect(self, name: str) -> None:
        """Cut a client off: its thread wakes from recv and cleans up."""
        with self._lock:
            found = [c for c in self._clients if c.name == name]
        for client in found:
            try:
                client.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self, timeout: float = 2.0) -> None:
        """Stop accepting, say goodbye, close every connection (exercise 14's steps)."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        if self._accepter.is_alive():
            self._accepter.join(timeout)
        self.listener.close()
        with self._lock:
            clients = list(self._clients)
        goodbye = encode_frame(GOODBYE)
        for client in clients:
            client.outbox.put(goodbye)
            client.outbox.close()  # the writers send the goodbye, then end the stream
        time.sleep(min(0.1, timeout))  # a moment for the goodbyes to leave
        for client in clients:
            try:
                client.conn.shutdown(socket.SHUT_RDWR)  # wakes every reader thread
            except OSError:
                pass
        while time.monotonic() < deadline:
            with self._lock:
                if not self._clients:
                    break
            time.sleep(0.01)
        log.info("Server stopped")

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m exercises.ex21_capstone_server [--host H] [--port P]``."""
    parser = argparse.ArgumentParser(description="Run your chat server (exercise 21).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=12346)
    args = parser.parse_args(argv)
    setup_logging(sys.stderr, name=__name__)  # 13
    with ChatServer(args.host, args.port) as server:
        print(f"Serving on {server.address[0]}:{server.address[1]}; Ctrl+C stops.", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
