"""The terminal client, ``python -m chat.client``, driven as a person would drive it.

Two ways in: through a pipe (stdin is not a terminal: each line is sent, the
output is plain lines) and through a pseudo-terminal from the ``pty`` module,
where readline runs and the prompt must survive messages arriving while you
type.  Every read from the child waits in ``select`` with a deadline
(tests/helpers.py ``read_until``), so a client that stops printing fails the
test instead of hanging it.  What the terminal shares with the widget --
:mod:`chat.client.display` and :mod:`chat.client.commands` -- is tested here too.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from chat.client.commands import Focus, parse_command
from chat.client.display import format_event, format_users, safe_text
from chat.client.terminal import Screen
from tests.helpers import ALL_FEATURES, TIMEOUT, FakeServer, RawPeer, free_port, read_until

try:
    import fcntl
    import pty
    import termios
except ImportError:  # Windows has no pseudo-terminals
    pty = None  # type: ignore[assignment]

needs_pty = pytest.mark.skipif(pty is None, reason="pseudo-terminals are POSIX-only")

# The client is under test here, not the server engines: one engine is enough.
pytestmark = pytest.mark.engines("threads")

ROOT = Path(__file__).resolve().parent.parent

#: A chat line as the terminal prints it.
CHAT_LINE = r"\[\d\d:\d\d:\d\d\] {name}: {text}"

ENV = {
    **os.environ,
    "PYTHONIOENCODING": "utf-8",
    "TERM": "xterm",
    "INPUTRC": os.devnull,  # nobody's readline settings change what we see
}


def client_command(port: int, username: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "chat.client",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--username",
        username,
    ]


def run_piped(port: int, username: str, lines: str) -> subprocess.CompletedProcess:
    """Run the client with ``lines`` on its standard input; wait for it to end."""
    return subprocess.run(
        client_command(port, username),
        input=lines,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=20,
        cwd=ROOT,
        env=ENV,
    )


def watcher(server) -> RawPeer:
    peer = RawPeer(server.address)
    assert peer.join("alice")["type"] == "welcome"
    return peer


# --------------------------------------------------------------------------
# Through a pipe


def test_piped_lines_are_sent_and_the_client_leaves_cleanly_at_the_end(server):
    with watcher(server) as alice:
        result = run_piped(server.address[1], "bob", "hello\nhéllo 👋\n")
        assert result.returncode == 0, result.stderr
        assert alice.recv_until("chat")["message"] == "hello"
        assert alice.recv_until("chat")["message"] == "héllo 👋"
        assert alice.recv_until("user_left")["username"] == "bob"
    lines = result.stdout.splitlines()
    assert "✅ Welcome to the chat, bob!" in lines
    assert any(re.fullmatch(CHAT_LINE.format(name="bob", text="hello"), line) for line in lines)
    assert any(re.fullmatch(CHAT_LINE.format(name="bob", text="héllo 👋"), line) for line in lines)
    assert "\x1b" not in result.stdout  # no prompt, no cursor movement when piped


def test_every_piped_line_arrives_in_order_even_past_the_servers_rate(server):
    """Fault 2: 25 lines at once used to lose 6 to "Slow down" (burst 20, 5 a second)."""
    lines = [f"line {number}" for number in range(25)]
    with watcher(server) as alice:
        result = run_piped(server.address[1], "bob", "".join(f"{line}\n" for line in lines))
        assert result.returncode == 0, result.stderr
        heard = [alice.recv_until("chat")["message"] for _ in lines]
    assert heard == lines
    assert "Slow down" not in result.stdout + result.stderr


def test_help_says_what_happens_to_piped_input():
    result = subprocess.run(
        [sys.executable, "-m", "chat.client", "--help"],
        capture_output=True,
        text=True,
        timeout=20,
        cwd=ROOT,
        env=ENV,
    )
    assert "paced to the rate limit" in " ".join(result.stdout.split())


def test_piped_ping_prints_pong(server):
    result = run_piped(server.address[1], "bob", "/ping\n")
    assert result.returncode == 0
    assert re.search(r"Pong! Round trip \d+\.\d ms", result.stdout)


def test_piped_users_lists_who_is_online(server):
    with watcher(server):
        result = run_piped(server.address[1], "bob", "/users\n")
    assert "👥 Online: alice, bob" in result.stdout.splitlines()


def test_piped_help_lists_every_command(server):
    result = run_piped(server.address[1], "bob", "/help\n")
    for command in ("/quit", "/exit", "/q", "/ping", "/users", "/help"):
        assert command in result.stdout


def test_unknown_command_is_explained_and_not_sent(server):
    with watcher(server) as alice:
        result = run_piped(server.address[1], "bob", "/shrug\n//shrug\n")
        assert alice.recv_until("chat")["message"] == "/shrug"  # the doubled slash is sent
    assert "Unknown command /shrug" in result.stdout


def test_quit_stops_reading_the_rest_of_the_input(server):
    with watcher(server) as alice:
        result = run_piped(server.address[1], "bob", "/quit\nnever sent\n")
        assert result.returncode == 0
        assert alice.recv_until("user_left")["username"] == "bob"  # no chat came first


def test_refused_connection_is_one_clear_line_and_exit_code_1():
    port = free_port()  # nothing listens there
    result = run_piped(port, "bob", "hello\n")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"❌ Could not connect to 127.0.0.1:{port}: connection refused. Is the server running?"
    ]
    assert "Traceback" not in result.stderr


def test_taken_name_is_one_clear_line_and_exit_code_1(server):
    with watcher(server):
        result = run_piped(server.address[1], "alice", "hello\n")
    assert result.returncode == 1
    assert result.stderr.strip() == "❌ Username already taken"


def test_invalid_name_is_refused_before_connecting():
    result = run_piped(free_port(), "not valid!", "hello\n")  # nothing listens there
    assert result.returncode == 1
    assert "letters, digits" in result.stderr
    assert "refused" not in result.stderr


# --------------------------------------------------------------------------
# Through a pseudo-terminal


class Terminal:
    """The client running in a pseudo-terminal: type into it, read what it draws."""

    def __init__(self, port: int | None, username: str | None) -> None:
        self.fd, child = pty.openpty()
        # A real size, as a terminal window has: readline wraps lines by it.
        fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        command = [sys.executable, "-m", "chat.client"]  # it asks for what is missing
        if port is not None and username is not None:
            command = client_command(port, username)
        self.process = subprocess.Popen(
            command,
            stdin=child,
            stdout=child,
            stderr=child,
            cwd=ROOT,
            env=ENV,
            start_new_session=True,  # the pty becomes its controlling terminal
        )
        os.close(child)
        self.output = b""  # everything read so far
        self._matched = 0  # where the last expected marker ended

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def expect(self, marker: bytes) -> bytes:
        """Read until ``marker`` appears after the last match; return the output up to it."""
        unmatched = read_until(self.fd, marker, seen=self.output[self._matched :])
        self.output = self.output[: self._matched] + unmatched
        end = unmatched.index(marker) + len(marker)
        self._matched += end
        return unmatched[:end]

    def rest(self) -> bytes:
        """Once the client has ended: all it printed after the last expected marker."""
        try:
            while chunk := os.read(self.fd, 65536):
                self.output += chunk
        except OSError:  # EIO: the child's side of the pseudo-terminal is closed
            pass
        return self.output[self._matched :]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=TIMEOUT)
        os.close(self.fd)


@pytest.fixture
def terminal(server):
    started: list[Terminal] = []

    def start(username: str) -> Terminal:
        term = Terminal(server.address[1], username)
        started.append(term)
        term.expect(f"{username}> ".encode())
        return term

    yield start
    for term in started:
        term.close()


@needs_pty
def test_incoming_message_redraws_the_prompt_and_the_partial_input(server, terminal):
    alice = terminal("alice")
    alice.type(b"hel")
    alice.expect(b"hel")  # readline has it: it echoed it after the prompt
    with RawPeer(server.address) as bob:
        bob.join("bob")
        bob.send({"type": "chat", "message": "hi alice"})
        drawn = alice.expect(b"bob: hi alice\r\nalice> hel")
        # Erase the line, print the message, then the prompt and the typing again.
        assert re.search(rb"\r\x1b\[K\[\d\d:\d\d:\d\d\] bob: hi alice\r\nalice> hel$", drawn)
        assert bob.recv_until("chat")["username"] == "bob"  # bob's own message, echoed
        alice.type(b"lo\r")  # finish the line: the whole of it is sent
        message = bob.recv_until("chat")
        assert (message["username"], message["message"]) == ("alice", "hello")


@needs_pty
def test_command_output_is_followed_by_exactly_one_prompt(terminal):
    alice = terminal("alice")
    alice.type(b"/users\r")
    alice.expect(b"Online: alice\r\n")
    alice.type(b"x")
    drawn = alice.expect(b"alice> x")
    assert drawn.count(b"alice> ") == 1


@needs_pty
def test_quit_leaves_the_interactive_client_with_exit_code_0(server, terminal):
    alice = terminal("alice")
    alice.type(b"/quit\r")
    assert alice.process.wait(timeout=TIMEOUT) == 0


@needs_pty
def test_interactive_client_says_why_and_exits_when_the_server_stops(server, terminal):
    alice = terminal("alice")
    server.stop()
    alice.expect("🛑 The server is shutting down\r\n".encode())
    assert alice.process.wait(timeout=TIMEOUT) == 0
    alice.expect("🔌 The server is shutting down\r\n".encode())
    assert b"alice> " not in alice.rest()  # no prompt is left after the last line


@needs_pty
def test_interactive_client_asks_for_what_is_missing_and_retries_refused_names(server):
    term = Terminal(None, None)
    try:
        with watcher(server):  # "alice" is taken
            term.expect(b"Server host [localhost]: ")
            term.type(b"127.0.0.1\r")
            term.expect(b"Port [12345]: ")
            term.type(f"{server.address[1]}\r".encode())
            term.expect(b"Username: ")
            term.type(b"not valid!\r")
            assert b"letters, digits" in term.expect(b"Username: ")  # checked before connecting
            term.type(b"alice\r")
            assert b"Username already taken" in term.expect(b"Username: ")
            term.type(b"bob\r")
            term.expect(b"bob> ")
            assert server.usernames() == ["alice", "bob"]
            term.type(b"/quit\r")
            assert term.process.wait(timeout=TIMEOUT) == 0
    finally:
        term.close()


@needs_pty
def test_connection_lost_during_a_command_ends_the_client_without_a_traceback():
    fake = FakeServer()
    term = Terminal(fake.address[1], "alice")
    try:
        fake.welcome("alice")
        term.expect(b"alice> ")
        term.type(b"/ping\r")
        assert fake.recv_frame()["type"] == "ping"
        fake.conn.close()  # gone while the client waits for the pong
        assert term.process.wait(timeout=TIMEOUT) == 0
        term.expect(b"Server closed the connection")
        assert b"Traceback" not in term.output
    finally:
        term.close()
        fake.close()


# --------------------------------------------------------------------------
# What the terminal and the widget share


def test_safe_text_neutralises_escape_sequences():
    assert safe_text("\x1b[2Jboo") == "␛[2Jboo"


def test_safe_text_neutralises_carriage_returns_and_newlines():
    assert "\r" not in safe_text("bob: hi\rmallory: gotcha")
    assert "\n" not in safe_text("one\ntwo")


def test_safe_text_neutralises_bidi_overrides():
    text = safe_text("invoice\u202egpj.exe \u2066x\u2069")
    assert not any(ch in text for ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def test_safe_text_neutralises_del_and_c1_controls():
    assert not re.search(r"[\x7f-\x9f]", safe_text("a\x7fb\x9bc\x85d"))


def test_safe_text_makes_lone_surrogates_printable():
    text = safe_text("a\ud800b")
    assert text == "a\ufffdb"
    text.encode("utf-8")  # printing it to a UTF-8 terminal cannot fail


def test_safe_text_keeps_ordinary_unicode():
    assert safe_text("héllo 👋 日本 مرحبا") == "héllo 👋 日本 مرحبا"


def test_chat_event_is_one_line_with_time_name_and_text():
    line = format_event({"type": "chat", "username": "bob", "message": "hi", "timestamp": 0.0})
    assert re.fullmatch(CHAT_LINE.format(name="bob", text="hi"), line)


def test_chat_event_from_a_hostile_server_cannot_fake_a_line():
    event = {"type": "chat", "username": "bob\x1b[2K", "message": "hi\nalice: I owe bob $100"}
    assert "\n" not in format_event(event)
    assert "\x1b" not in format_event(event)


def test_join_and_leave_events_have_their_indicators():
    joined = {"type": "user_joined", "username": "bob", "message": "bob joined the chat"}
    left = {"type": "user_left", "username": "bob", "message": "bob left the chat"}
    assert format_event(joined) == "🟢 bob joined the chat"
    assert format_event(left) == "🔴 bob left the chat"


def test_welcome_event_says_who_is_online():
    text = format_event({"type": "welcome", "message": "Welcome!", "users": ["alice", "bob"]})
    assert text == "✅ Welcome!\n👥 Online: alice, bob"


def test_error_shutdown_and_disconnected_events_have_their_indicators():
    assert format_event({"type": "error", "message": "Username already taken"}) == (
        "❌ Username already taken"
    )
    assert format_event({"type": "server_shutdown", "message": "Bye"}) == "🛑 Bye"
    assert format_event({"type": "disconnected", "reason": "You left the chat"}) == (
        "🔌 You left the chat"
    )


@pytest.mark.parametrize("timestamp", [None, "noon", True, float("nan"), 1e300, 10**400, -1e300])
def test_chat_event_with_a_bad_timestamp_shows_the_time_now(timestamp):
    line = format_event(
        {"type": "chat", "username": "bob", "message": "hi", "timestamp": timestamp}
    )
    assert re.fullmatch(CHAT_LINE.format(name="bob", text="hi"), line)


def test_events_missing_fields_still_make_a_line():
    assert format_event({"type": "chat"}).endswith("?: ")
    assert format_event({"type": "user_joined", "username": "bob"}) == "🟢 bob joined the chat"
    assert format_event({"type": "welcome", "users": None}).endswith("Online: ?")


def test_users_of_the_lobby_are_online_and_of_another_room_are_in_it():
    assert format_users(["alice", "bob"]) == "👥 Online: alice, bob"
    assert format_users(["alice"], "#Lobby") == "👥 Online: alice"
    assert format_users(["alice", "bob"], "#rust") == "👥 In #rust: alice, bob"
    assert format_event({"type": "users", "room": "#rust", "users": ["bob"]}) == "👥 In #rust: bob"


def history_page(room: str, ids: range) -> dict:
    messages = [{"id": i, "username": "bob", "message": "hi", "timestamp": 0} for i in ids]
    return {"type": "history", "room": room, "messages": messages, "more": True}


def test_history_asks_for_what_is_above_the_page_shown_since_the_room_was_joined_again():
    """Back in a room, the older messages are those above its new page, not above the old one."""
    focus, client = Focus(), SimpleNamespace(rooms=["#lobby"])  # where to go after leaving
    for event in (
        {"type": "room_joined", "room": "#rust", "users": ["alice"]},
        history_page("#rust", range(100, 151)),
        {"type": "room_left", "room": "#rust"},
        {"type": "room_joined", "room": "#rust", "users": ["alice"]},
        history_page("#rust", range(301, 351)),
    ):
        focus.follow(event, client)
    assert (focus.room, focus.oldest) == ("#rust", {"#rust": 301})


def test_a_new_connection_starts_in_the_lobby_with_nothing_shown():
    focus = Focus(room="#rust", oldest={"#rust": 7})
    focus.follow({"type": "welcome", "message": "hi", "users": ["alice"]}, None)
    assert (focus.room, focus.oldest) == ("#lobby", {})


def test_pong_and_unknown_events_are_not_shown():
    assert format_event({"type": "pong"}) is None
    assert format_event({"type": "typing", "username": "bob"}) is None


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("/quit", "quit"),
        ("/exit", "quit"),
        ("/q", "quit"),
        ("  /QUIT  ", "quit"),
        ("/ping", "ping"),
        ("/users", "users"),
        ("/help", "help"),
        ("/dance", "unknown"),
    ],
)
def test_commands_are_recognised(line, name):
    assert parse_command(line).name == name


@pytest.mark.parametrize("line", ["hello", "//shrug", "", "a /quit"])
def test_other_lines_are_chat_messages(line):
    assert parse_command(line) is None


def test_screen_prints_plain_lines_when_not_interactive():
    written: list[str] = []
    screen = Screen(interactive=False, write=written.append)
    screen.show("one")
    screen.show(None)
    assert written == ["one\n"]


def test_screen_does_not_draw_a_prompt_when_nobody_is_typing():
    written: list[str] = []
    screen = Screen(interactive=True, write=written.append)
    screen.prompt = "alice> "
    screen.show("bob joined")
    assert "".join(written) == "\r\x1b[Kbob joined\n"


# --------------------------------------------------------------------------
# The extensions: rooms, private messages, nicknames, history (PROTOCOL.md)


def v2_peer(server, name: str) -> RawPeer:
    """A raw peer that uses every extension; its welcome and history are read."""
    peer = RawPeer(server.address)
    peer.send({"type": "join", "username": name, "features": ALL_FEATURES})
    assert peer.recv_frame()["type"] == "welcome"
    assert peer.recv_frame()["type"] == "history"
    return peer


def test_piped_join_sends_the_next_lines_to_that_room(server):
    with v2_peer(server, "alice") as alice:
        alice.send({"type": "join_room", "room": "#rust"})
        alice.recv_until("room_joined")
        result = run_piped(server.address[1], "bob", "/join #rust\nhello rust\n")
        assert result.returncode == 0, result.stderr
        message = alice.recv_until("chat")
    assert (message["room"], message["message"]) == ("#rust", "hello rust")
    assert "🚪 You are in #rust now. Here: alice, bob" in result.stdout


def test_piped_private_message_reaches_its_receiver_and_shows_as_private(server):
    with v2_peer(server, "alice") as alice:
        result = run_piped(server.address[1], "bob", "/msg alice psst\n")
        received = alice.recv_until("private")
    assert (received["from"], received["message"]) == ("bob", "psst")
    assert re.search(r"\[\d\d:\d\d:\d\d\] 🔒 you → alice: psst", result.stdout)


def test_piped_me_nick_rooms_and_users_do_what_they_say(server):
    with v2_peer(server, "alice") as alice:
        lines = "/me waves\n/nick bobby\n/rooms\n/users\n"
        result = run_piped(server.address[1], "bob", lines)
        action = alice.recv_until("chat")
        assert (action["message"], action["action"]) == ("waves", True)
        assert alice.recv_until("user_renamed")["new"] == "bobby"
    assert re.search(r"\* bob waves", result.stdout)
    assert "✏️ bob is now known as bobby" in result.stdout
    assert "🏠 Rooms: #lobby (2)" in result.stdout
    assert "👥 Online: alice, bobby" in result.stdout


def test_piped_history_shows_earlier_messages_of_the_room(server):
    with v2_peer(server, "alice") as alice:
        alice.send({"type": "chat", "message": "said before bob came"})
        alice.recv_until("chat")
        result = run_piped(server.address[1], "bob", "/history\n")
    assert "📜 Earlier in #lobby:" in result.stdout
    assert re.search(r"  \[\d\d:\d\d:\d\d\] alice: said before bob came", result.stdout)


def test_room_commands_against_a_v1_server_say_not_supported():
    fake = FakeServer()
    try:
        process = subprocess.Popen(
            client_command(fake.address[1], "bob"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            cwd=ROOT,
            env=ENV,
        )
        fake.welcome("bob")  # a v1 welcome: no "features"
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write("/join #rust\n/msg alice hi\n/quit\n")
        process.stdin.close()
        output = process.stdout.read()
        process.wait(TIMEOUT)
    finally:
        fake.close()
    assert "❌ /join: Not supported by this server" in output
    assert "❌ /msg: Not supported by this server" in output


@needs_pty
def test_the_prompt_names_the_room_and_lines_from_elsewhere_are_marked(server, terminal):
    bob = terminal("bob")
    bob.type(b"/join #rust\r")
    bob.expect(b"bob@#rust> ")
    with v2_peer(server, "alice") as alice:
        alice.send({"type": "chat", "message": "in the lobby"})
        drawn = bob.expect(b"in the lobby")
    assert re.search(rb"\[\d\d:\d\d:\d\d\] #lobby alice: in the lobby", drawn)
