"""Small chat servers for the conformance tester's own tests: one right, five wrong.

:class:`SmallServer` is a plain threaded v1 server, about as short as a
correct one can be: it passes every stage of ``python -m conformance``.  Each
``mistake`` swaps one part of it for a classic error that learners (and
plenty of production code) make, so that a test can prove the tester catches
it, in its stage, with a reason that names it:

==================  =====================================================================
mistake             what the server does wrong
==================  =====================================================================
first_frame_only    handles only the first frame of each ``recv``, dropping the rest
decode_per_chunk    decodes each ``recv`` as UTF-8 on its own (a character cut in two fails)
racy_claim          checks a name is free, then claims it, without a lock between
blocking_broadcast  ``sendall`` to every client in turn, under a lock: one stalled reader
                    blocks everyone
silent_errors       ignores a bad frame instead of answering with an error frame
==================  =====================================================================
"""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from typing import Any

MISTAKES = (
    "first_frame_only",
    "decode_per_chunk",
    "racy_claim",
    "blocking_broadcast",
    "silent_errors",
)

MAX_LINE = 65536
QUEUE_FRAMES = 512  # a client this many frames behind is disconnected


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


class Client:
    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.name: str | None = None
        self.outbox: queue.Queue[bytes | None] = queue.Queue(QUEUE_FRAMES)

    def write(self) -> None:
        """The writer thread: send queued frames until told to stop (None), then close."""
        try:
            while (frame := self.outbox.get()) is not None:
                self.conn.sendall(frame)
        except OSError:
            pass
        finally:
            self.drop()
            self.conn.close()

    def drop(self) -> None:
        """Disconnect: wakes this client's reader, which then cleans up."""
        try:
            self.conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class SmallServer:
    """A threaded chat server on 127.0.0.1, on a free port; ``mistake`` breaks one part."""

    def __init__(self, mistake: str | None = None) -> None:
        if mistake not in (None, *MISTAKES):
            raise ValueError(f"unknown mistake {mistake!r}")
        self.mistake = mistake
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.address = self.listener.getsockname()[:2]
        self.lock = threading.RLock()  # _welcome broadcasts while _claim holds it
        self.clients: dict[str, Client] = {}  # joined clients by name, in join order
        self.connections: set[Client] = set()
        self.threads: list[threading.Thread] = []
        self.stopping = threading.Event()

    # -- running

    def start(self) -> SmallServer:
        self._spawn(self._accept)
        return self

    def stop(self) -> None:
        self.stopping.set()
        with self.lock:
            connections = list(self.connections)
        for client in connections:
            client.drop()
        deadline = time.monotonic() + 5
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.listener.close()

    def __enter__(self) -> SmallServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client = Client(conn)
            with self.lock:
                self.connections.add(client)
            if self.mistake != "blocking_broadcast":
                self._spawn(client.write)
            self._spawn(self._serve, client)

    # -- one client

    def _serve(self, client: Client) -> None:
        buffer = bytearray()
        text = ""  # decode_per_chunk keeps text, not bytes
        try:
            while not self.stopping.is_set():
                data = client.conn.recv(4096)
                if not data:
                    break
                if self.mistake == "decode_per_chunk":
                    text += data.decode("utf-8")  # UnicodeDecodeError on a cut character
                    *lines, text = text.split("\n")
                    lines = [line.encode() for line in lines]
                else:
                    buffer += data
                    *lines, rest = bytes(buffer).split(b"\n")
                    buffer = bytearray(rest)
                    if self.mistake == "first_frame_only" and lines:
                        lines, buffer = lines[:1], bytearray()  # the rest of this recv is lost
                if len(buffer) > MAX_LINE or len(text) > MAX_LINE:
                    self._send(client, {"type": "error", "message": "Line too long"})
                    break
                for line in lines:
                    if line.strip() and not self._handle(client, line):
                        return
        except (OSError, UnicodeDecodeError):
            pass
        finally:
            self._leave(client)

    def _handle(self, client: Client, line: bytes) -> bool:
        """Act on one frame; False if the connection must end."""
        try:
            message = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            self._refuse(client, "Frame is not valid UTF-8")
            return False
        except ValueError:
            return self._refuse(client, "Frame is not valid JSON")
        if not isinstance(message, dict):
            return self._refuse(client, "Frame must be a JSON object")
        kind = message.get("type")
        if kind == "ping":
            self._send(client, {"type": "pong"})
        elif kind == "join":
            name = message.get("username")
            if client.name is not None or not isinstance(name, str) or not name:
                return self._refuse(client, "Cannot join")
            if not self._claim(client, name):
                return self._refuse(client, "Username already taken")
        elif kind == "chat":
            text = message.get("message")
            if client.name is None:
                return self._refuse(client, "Join first")
            if not isinstance(text, str) or not text.strip():
                return self._refuse(client, "Message must be a non-empty string")
            self._broadcast(
                {"type": "chat", "username": client.name, "message": text, "timestamp": time.time()}
            )
        else:
            return self._refuse(client, f"Unknown message type {str(kind)[:40]!r}")
        return True

    def _refuse(self, client: Client, reason: str) -> bool:
        if self.mistake != "silent_errors":
            self._send(client, {"type": "error", "message": reason})
        return True

    def _claim(self, client: Client, name: str) -> bool:
        if self.mistake == "racy_claim":
            if name in self.clients:  # check ...
                return False
            time.sleep(0.001)  # (anything at all between the two widens the window)
            self._welcome(client, name)  # ... then set: another thread got in between
            return True
        with self.lock:  # check and set as one step
            if name in self.clients:
                return False
            self._welcome(client, name)
            return True

    def _welcome(self, client: Client, name: str) -> None:
        """Join ``client`` as ``name``; the caller holds the lock (unless racy_claim)."""
        client.name = name
        self.clients[name] = client
        users = list(self.clients)
        self._send(client, {"type": "welcome", "message": f"Welcome, {name}!", "users": users})
        joined = {"type": "user_joined", "username": name, "message": f"{name} joined the chat"}
        self._broadcast(joined, exclude=client)

    def _leave(self, client: Client) -> None:
        with self.lock:
            self.connections.discard(client)
            gone = client.name is not None and self.clients.get(client.name) is client
            if gone:
                del self.clients[client.name]
        if gone:
            left = {"type": "user_left", "username": client.name, "message": "left the chat"}
            self._broadcast(left)
        if self.mistake == "blocking_broadcast":  # no writer thread
            client.drop()
            client.conn.close()
            return
        try:
            client.outbox.put_nowait(None)  # the writer sends what is queued, then closes
        except queue.Full:
            client.drop()  # the writer's sendall fails now, and it closes

    # -- sending

    def _send(self, client: Client, message: dict[str, Any]) -> None:
        if self.mistake == "blocking_broadcast":
            try:
                client.conn.sendall(encode(message))
            except OSError:
                pass
        else:
            self._queue(client, encode(message))

    def _queue(self, client: Client, frame: bytes) -> None:
        try:
            client.outbox.put_nowait(frame)
        except queue.Full:
            client.drop()  # too slow: disconnect it rather than wait for it

    def _broadcast(self, message: dict[str, Any], exclude: Client | None = None) -> None:
        frame = encode(message)
        with self.lock:  # one broadcast at a time: everyone gets the same order
            for client in list(self.clients.values()):
                if client is exclude:
                    continue
                if self.mistake == "blocking_broadcast":
                    try:
                        client.conn.sendall(frame)  # waits as long as this one client does
                    except OSError:
                        pass
                else:
                    self._queue(client, frame)
