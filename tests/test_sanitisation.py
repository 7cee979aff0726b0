"""Hostile text: the server cleans it, and clients clean it again before showing it.

A chat message is shown on other people's screens.  Terminal escape sequences
(``ESC [2J`` clears the screen), carriage returns (overwrite the start of the
line: fake who said it), newlines (start a fake line of your own) and
bidirectional overrides (show text in a misleading order) must never reach a
screen from a peer.  The server strips them from chat text and refuses
usernames outside the allowed characters; the clients neutralise what is left
anyway, because a client cannot know that every server does so.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading

import pytest

from chat import protocol
from chat.client import ChatClient
from chat.client.display import format_event
from tests.helpers import TIMEOUT, RawPeer

UNSAFE_CHARACTERS = [
    *("\x1b", "\r", "\n", "\x07", "\x9b", "\x85", "\u2028", "\x00", "\x7f"),
    *("\u202e", "\u2066", "\u2069"),  # bidirectional override and isolates
]

HOSTILE_MESSAGES = [
    "\x1b[2J\x1b[Hscreen cleared",
    "innocent\rmallory: I owe you 100 €",
    "two\nlines",
    "bell\x07 and CSI \x9b31m red",
    "next line \x85 and line separator \u2028 here",
    "nul \x00 and del \x7f",
    "harmless \u202egnp.exe and \u2066isolated\u2069 text",
]


def shows_nothing_unsafe(text: str) -> bool:
    return not any(char in text for char in UNSAFE_CHARACTERS)


@pytest.mark.parametrize("message", HOSTILE_MESSAGES)
def test_server_strips_control_characters_from_chat_text(server, message):
    with RawPeer(server.address) as alice:
        alice.join("alice")
        alice.send(protocol.encode(protocol.chat(message)))
        relayed = alice.recv_until("chat")["message"]
        assert shows_nothing_unsafe(relayed)
        assert relayed.strip()  # the visible words survive


def test_message_of_nothing_but_control_characters_is_refused(server):
    with RawPeer(server.address) as alice:
        alice.join("alice")
        alice.send(protocol.encode(protocol.chat("\x1b\x07\r\n\t")))
        assert alice.recv_until("error")["message"] == "Message is empty"


@pytest.mark.parametrize(
    "username",
    ["al ice", "al\x1bice", "ålice", "alice\n", "a" * 21, "", "../etc", "<b>bob</b>", "bob\u202e"],
)
def test_server_refuses_usernames_outside_the_allowed_characters(server, username):
    with RawPeer(server.address) as peer:
        peer.send({"type": "join", "username": username})
        answer = peer.recv_frame()
        assert answer["type"] == "error"
        assert answer["message"].startswith("Invalid username")


# -- a hostile server: the clients must not trust it either


class HostileServer:
    """Accepts one client, welcomes it, then sends poisoned frames and waits for a ping."""

    def __init__(self, frames: list[dict]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(3 * TIMEOUT)
        self.address = self.listener.getsockname()[:2]
        self.frames = frames
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(3 * TIMEOUT)
            reader = conn.makefile("rb")
            reader.readline()  # the join
            welcome = protocol.welcome("bob", ["bob", "\x1b[31mmallory"])
            conn.sendall(b"".join(json.dumps(f).encode() + b"\n" for f in [welcome, *self.frames]))
            for line in reader:  # answer pings, so a piped client can finish
                if b"ping" in line:
                    conn.sendall(b'{"type": "pong"}\n')
                    break

    def close(self) -> None:
        self.listener.close()
        self.thread.join(TIMEOUT)


POISON = [
    {"type": "chat", "username": "mal\x1b[2Jlory", "message": "\x1b[2J\rbob: fake", "timestamp": 1},
    {"type": "user_joined", "username": "eve\r", "message": "eve\u202e joined"},
    {"type": "error", "message": "\x1b]0;pwned\x07 error"},
]


def test_chat_client_events_format_to_safe_lines_whatever_the_server_sends():
    hostile = HostileServer(POISON)
    try:
        with ChatClient(*hostile.address, keepalive=None) as client:
            client.connect("bob")
            for _ in range(1 + len(POISON)):  # the welcome, then the poison
                line = format_event(client.events.get(timeout=TIMEOUT))
                assert line is not None
                assert "\x1b" not in line and "\r" not in line and "\u202e" not in line
    finally:
        hostile.close()


def test_terminal_client_prints_no_escape_sequence_from_the_server():
    hostile = HostileServer(POISON)
    try:
        host, port = hostile.address
        command = [sys.executable, "-m", "chat.client", "--host", host, "--port", str(port)]
        command += ["--username", "bob"]
        done = subprocess.run(
            command, input="", capture_output=True, text=True, timeout=3 * TIMEOUT
        )
        output = done.stdout + done.stderr
        assert "fake" in output and "pwned" in output  # the words are shown...
        assert "\x1b" not in output and "\r" not in output  # ...but not obeyed
    finally:
        hostile.close()
