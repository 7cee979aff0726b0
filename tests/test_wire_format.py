"""The wire format is exactly what the README's "The protocol" section says.

This test speaks the protocol with nothing but ``socket`` and ``json`` -- no
``chat.client``, no ``chat.protocol``, not even tests/helpers.py -- the way
someone writing a client in another language would.  If it passes, the README
is enough to talk to the server.
"""

from __future__ import annotations

import json
import socket

import pytest

TIMEOUT = 5.0


class Wire:
    """A few lines of plain socket code: send JSON lines, read raw lines."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=TIMEOUT)
        self.pending = b""

    def send_line(self, line: bytes) -> None:
        self.sock.sendall(line + b"\n")

    def read_line(self) -> bytes:
        """The next line as raw bytes, without its newline."""
        while b"\n" not in self.pending:
            chunk = self.sock.recv(4096)
            assert chunk, "the server closed the connection"
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return line

    def read(self) -> dict:
        """The next line, checked to be compact JSON (as the server writes it), decoded."""
        line = self.read_line()
        message = json.loads(line)
        compact = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
        assert line == compact, f"not compact JSON: {line!r}"
        return message


@pytest.fixture
def wire(server):
    connections: list[Wire] = []

    def connect() -> Wire:
        connection = Wire(server.address)
        connections.append(connection)
        return connection

    yield connect
    for connection in connections:
        connection.sock.close()


def test_the_readme_protocol_works_with_plain_sockets_and_json(wire):
    alice = wire()
    alice.send_line(b'{"type": "join", "username": "alice"}')
    welcome = alice.read()
    assert welcome["type"] == "welcome"
    assert isinstance(welcome["message"], str)
    assert welcome["users"] == ["alice"]

    bob = wire()
    bob.send_line(b'{"type": "join", "username": "bob"}')
    assert bob.read()["users"] == ["alice", "bob"]
    assert alice.read() == {
        "type": "user_joined",
        "username": "bob",
        "message": "bob joined the chat",
    }

    alice.send_line(b'{"type": "chat", "message": "Hi"}')
    for peer in (alice, bob):
        chat = peer.read()
        assert list(chat) == ["type", "username", "message", "timestamp"]
        assert (chat["type"], chat["username"], chat["message"]) == ("chat", "alice", "Hi")
        assert type(chat["timestamp"]) is float

    bob.send_line(b'{"type": "ping"}')
    assert bob.read_line() == b'{"type":"pong"}'

    alice.send_line(b'{"type": "join", "username": "bob"}')
    error = alice.read()
    assert list(error) == ["type", "message"]
    assert error["type"] == "error"
    assert type(error["message"]) is str

    bob.sock.close()
    assert alice.read() == {"type": "user_left", "username": "bob", "message": "bob left the chat"}


def test_non_ascii_text_travels_as_raw_utf8_not_escapes(wire):
    alice = wire()
    alice.send_line(b'{"type":"join","username":"alice"}')
    alice.read()
    alice.send_line('{"type":"chat","message":"héllo 👋 日本"}'.encode())
    line = alice.read_line()
    assert "héllo 👋 日本".encode() in line
    assert b"\\u" not in line


def test_the_server_accepts_escaped_non_ascii_and_spaces_from_clients(wire):
    alice = wire()
    alice.send_line(b'  { "type" : "join" , "username" : "alice" }  ')
    alice.read()
    alice.send_line(b'{"type": "chat", "message": "h\\u00e9llo \\ud83d\\udc4b"}')
    assert alice.read()["message"] == "héllo 👋"


def test_every_server_line_ends_with_one_newline_and_holds_no_other(wire):
    alice = wire()
    alice.send_line(b'{"type":"join","username":"alice"}')
    alice.read()
    alice.send_line(b'{"type":"chat","message":"tab\\there, newline\\nthere"}')
    raw = alice.read_line() + b"\n"
    assert raw.count(b"\n") == 1
    assert json.loads(raw)["message"] == "tab here, newline there"
