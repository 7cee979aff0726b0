"""The notebook widget, driven in code against a real server (no browser).

Without a kernel, ipywidgets talks to a dummy comm, so widgets can be built
and driven here: setting ``input.value`` is what the browser does when you
press Enter, and ``send_button.click()`` is a click.  The widgets' receive and
sender threads are real, so every check of what another widget shows waits
(boundedly) for it to arrive.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator

import pytest

pytest.importorskip("ipywidgets")

import ipywidgets as widgets

from chat.client import ChatClient
from chat.limits import Limits
from chat.server import ChatServer
from chat.widget import (
    CONNECTED,
    DISCONNECTED,
    MAX_CONVERSATIONS,
    ChatDemo,
    ChatWidget,
    demo,
)
from tests.conformance_servers import SmallServer
from tests.helpers import TIMEOUT, RawPeer, wait_for

EVIL = "<img src=x onerror=alert(1)>"


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    """The widget is the subject here, so one engine (threads) is enough."""
    with ChatServer("127.0.0.1", 0) as server:
        yield server


@pytest.fixture
def make_widget(chat_server: ChatServer) -> Iterator[Callable[..., ChatWidget]]:
    """Connected widgets on ``chat_server``, closed at the end of the test."""
    made: list[ChatWidget] = []

    def make(username: str, *, port: int | None = None, wait: bool = True, **kw) -> ChatWidget:
        host, server_port = chat_server.address
        widget = ChatWidget(host, port or server_port, username, **kw)
        made.append(widget)
        if wait:
            widget.wait_connected()
        return widget

    yield make
    for widget in made:
        widget.close()


def shows(widget: ChatWidget, text: str) -> Callable[[], bool]:
    return lambda: text in widget.log_text()


def test_message_entered_in_one_widget_appears_in_the_others_log(make_widget):
    alice, bob = make_widget("alice"), make_widget("bob")
    alice.input.value = "Hello, Bob!"  # what pressing Enter in the browser does
    wait_for(shows(bob, "alice: Hello, Bob!"))
    assert "Hello, Bob!" in bob.log_view.value


def test_input_is_cleared_after_sending(make_widget):
    alice = make_widget("alice")
    alice.input.value = "hi"
    assert alice.input.value == ""


def test_send_button_sends_the_typed_message_once(make_widget):
    alice, bob = make_widget("alice"), make_widget("bob")
    alice.input.value = "once"  # leaving the box for the button reports the value...
    alice.send_button.click()  # ...then the click arrives, with the box already empty
    alice.input.value = "twice"
    wait_for(shows(bob, "alice: twice"))
    assert bob.log_text().count("alice: once") == 1


def test_chat_lines_show_the_time_as_hh_mm_ss(make_widget):
    alice, bob = make_widget("alice"), make_widget("bob")
    alice.submit("what time is it?")
    wait_for(shows(bob, "what time is it?"))
    assert re.search(r"\[\d\d:\d\d:\d\d\] alice: what time is it\?", bob.log_text())


def test_own_messages_are_styled_apart(make_widget):
    alice, bob = make_widget("alice"), make_widget("bob")
    alice.submit("mine")
    wait_for(shows(alice, "alice: mine"))
    wait_for(shows(bob, "alice: mine"))
    assert re.search(r'class="chat-own"[^>]*>.*mine', alice.log_view.value)
    assert not re.search(r'class="chat-own"', bob.log_view.value)


def test_status_says_connected_with_the_address(make_widget, chat_server):
    alice = make_widget("alice")
    assert alice.status == CONNECTED
    assert f"connected to 127.0.0.1:{chat_server.address[1]}" in alice.header.value
    assert not alice.input.disabled


def test_join_and_leave_show_as_lines(make_widget):
    alice = make_widget("alice")
    bob = make_widget("bob")
    wait_for(shows(alice, "bob joined the chat"))
    bob.submit("/quit")
    wait_for(shows(alice, "bob left the chat"))


def test_user_list_follows_joins_and_leaves(make_widget):
    alice = make_widget("alice")
    assert alice.users == ["alice"]
    bob = make_widget("bob")
    wait_for(lambda: sorted(alice.users) == ["alice", "bob"])
    assert "2 online" in alice.users_view.value
    assert "bob" in alice.users_view.value
    bob.close()
    wait_for(lambda: alice.users == ["alice"])
    assert "1 online" in alice.users_view.value


def test_user_list_marks_you(make_widget):
    alice = make_widget("alice")
    assert "alice <i>(you)</i>" in alice.users_view.value


def test_peer_html_is_shown_as_text(make_widget):
    alice, bob = make_widget("alice"), make_widget("bob")
    alice.submit(EVIL)
    wait_for(shows(bob, EVIL))
    assert "&lt;img src=x onerror=alert(1)&gt;" in bob.log_view.value
    assert "<img" not in bob.log_view.value


def test_messages_from_two_widgets_at_once_all_arrive_in_the_same_order(make_widget):
    alice, bob = make_widget("alice"), make_widget("bob")
    senders = [
        threading.Thread(target=lambda w=w: [w.submit(f"{w.username} {i}") for i in range(10)])
        for w in (alice, bob)
    ]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join(5)

    def chat_lines(widget: ChatWidget) -> list[str]:
        return [line[11:] for line in widget.log_text().splitlines() if line.startswith("[")]

    for widget in (alice, bob):
        wait_for(lambda w=widget: len(chat_lines(w)) == 20)
    assert chat_lines(alice) == chat_lines(bob)
    assert [line for line in chat_lines(alice) if "alice:" in line] == [
        f"alice: alice {i}" for i in range(10)
    ]


def test_log_keeps_only_the_last_lines(make_widget):
    alice = make_widget("alice", max_lines=3)
    for i in range(6):
        alice.submit(f"message {i}")
    wait_for(shows(alice, "message 5"))
    lines = alice.log_text().splitlines()
    assert [line[11:] for line in lines] == [f"alice: message {i}" for i in (3, 4, 5)]
    assert "message 2" not in alice.log_view.value


# -- commands: the terminal client's, shared through chat.client.commands


def test_ping_command_shows_the_round_trip(make_widget):
    alice = make_widget("alice")
    alice.submit("/ping")
    wait_for(lambda: re.search(r"Pong! Round trip \d+\.\d ms", alice.log_text()))


def test_help_command_lists_the_commands(make_widget):
    alice = make_widget("alice")
    alice.input.value = "/help"
    for command in ("/quit", "/ping", "/users", "/help"):
        assert command in alice.log_text()


def test_users_command_lists_who_is_online(make_widget):
    alice = make_widget("alice")
    make_widget("bob")
    wait_for(lambda: len(alice.users) == 2)
    alice.submit("/users")  # carried out by chat.client.commands.execute, on the sender thread
    wait_for(shows(alice, "Online: alice, bob"))


def test_unknown_command_is_not_sent(make_widget):
    alice, bob = make_widget("alice"), make_widget("bob")
    alice.submit("/dance")
    alice.submit("after")
    wait_for(shows(bob, "alice: after"))
    assert "Unknown command /dance" in alice.log_text()
    assert "dance" not in bob.log_text()


def test_double_slash_sends_a_message_starting_with_a_slash(make_widget):
    alice, bob = make_widget("alice"), make_widget("bob")
    alice.submit("//shrug")
    wait_for(shows(bob, "alice: /shrug"))


def test_quit_disconnects_and_says_so(make_widget, chat_server):
    alice = make_widget("alice")
    alice.input.value = "/quit"
    wait_for(lambda: alice.status == DISCONNECTED)
    assert alice.reason == "You left the chat"
    assert "You left the chat" in alice.header.value
    assert alice.input.disabled and alice.send_button.disabled
    wait_for(lambda: "alice" not in chat_server.usernames())


def test_connect_again_after_quit(make_widget):
    alice = make_widget("alice")
    alice.submit("/q")
    wait_for(lambda: alice.status == DISCONNECTED)
    alice.connect()
    assert alice.wait_connected()
    assert alice.log_text().count("Welcome") == 2


# -- errors show in the widget, never as a traceback


def test_taken_name_shows_a_clear_message(make_widget):
    make_widget("alice")
    again = make_widget("alice")
    assert again.status == DISCONNECTED
    assert "Username already taken" in again.reason
    assert "Username already taken" in again.header.value
    assert "❌ Username already taken" in again.log_text()


def test_a_taken_name_can_be_replaced(make_widget):
    make_widget("alice")
    again = make_widget("alice")
    again.connect("alice2")
    assert again.wait_connected()
    assert "alice2" in again.users


def test_invalid_name_is_refused_before_connecting(make_widget, chat_server):
    widget = make_widget("not a name!")
    assert widget.status == DISCONNECTED
    assert "sername" in widget.reason  # the protocol's rule, in words
    assert chat_server.usernames() == []


def test_refused_connection_shows_a_clear_message(make_widget):
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    widget = make_widget("alice", port=port)
    assert widget.status == DISCONNECTED
    assert "connection refused" in widget.reason
    assert "Is the server running?" in widget.header.value


def test_server_going_away_shows_disconnected_with_the_reason(make_widget, chat_server):
    alice = make_widget("alice")
    chat_server.stop()
    wait_for(lambda: alice.status == DISCONNECTED)
    assert "shutting down" in alice.reason
    assert "shutting down" in alice.header.value
    assert alice.users == []
    assert alice.input.disabled


def test_sending_while_disconnected_says_not_connected(make_widget, chat_server):
    alice = make_widget("alice")
    chat_server.stop()
    wait_for(lambda: alice.status == DISCONNECTED)
    alice.submit("anyone?")
    assert "Not connected" in alice.log_text()


def test_connecting_is_shown_until_the_welcome(chat_server):
    widget = ChatWidget(*chat_server.address, "alice", connect=False)
    try:
        assert widget.status == DISCONNECTED
        widget.connect()
        assert widget.status in ("connecting", CONNECTED)
        assert widget.wait_connected()
    finally:
        widget.close()


# -- a server that is not ours may send anything


def fake_server(frames: list[dict], stay: bool) -> Iterator[tuple[str, int]]:
    """A one-connection server: reads the join, sends ``frames``, then stays or hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            conn.recv(1024)  # the join
            conn.sendall(b"".join(json.dumps(f).encode() + b"\n" for f in frames))
            if stay:
                try:
                    conn.recv(1024)  # until the client leaves
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[:2]
    listener.close()
    thread.join(5)


@pytest.fixture
def rogue_server() -> Iterator[tuple[str, int]]:
    """A server that welcomes anyone, then sends hostile text unfiltered."""
    yield from fake_server(
        [
            {"type": "welcome", "message": "hi\x1b[2J", "users": ["me", "<b>x</b>"]},
            {"type": "chat", "username": "<b>x</b>", "message": "a\x1b[2Jb\rc\u202ed"},
            {"type": "user_joined", "username": EVIL, "message": EVIL},
        ],
        stay=True,
    )


@pytest.fixture
def vanishing_server() -> Iterator[tuple[str, int]]:
    """A server that welcomes, then closes the connection without a goodbye."""
    yield from fake_server([{"type": "welcome", "message": "hi", "users": ["me"]}], stay=False)


def test_server_vanishing_without_a_goodbye_shows_disconnected(vanishing_server):
    widget = ChatWidget(*vanishing_server, "me")
    try:
        wait_for(lambda: widget.status == DISCONNECTED and "hi" in widget.log_text())
        assert "closed the connection" in widget.reason
        assert "🔌" in widget.log_text()
    finally:
        widget.close()


def test_control_characters_from_a_rogue_server_are_neutralised(rogue_server):
    widget = ChatWidget(*rogue_server, "me")
    try:
        wait_for(shows(widget, EVIL))
        text, value = widget.log_text(), widget.log_view.value
        assert "a␛[2Jb␍c\ufffdd" in text
        for raw in ("\x1b", "\r", "\u202e"):
            assert raw not in value
    finally:
        widget.close()


def test_names_from_a_rogue_server_are_escaped(rogue_server):
    widget = ChatWidget(*rogue_server, "me")
    try:
        wait_for(shows(widget, EVIL))
        for value in (widget.log_view.value, widget.users_view.value):
            assert "<b>x</b>" not in value
            assert "&lt;b&gt;x&lt;/b&gt;" in value
        assert "<img" not in widget.log_view.value
    finally:
        widget.close()


# -- the demo of the notebooks


def test_demo_shows_alice_and_bob_chatting_on_a_server_of_their_own():
    pair = demo()
    try:
        assert isinstance(pair, ChatDemo)
        assert pair.alice.wait_connected() and pair.bob.wait_connected()
        assert pair.server.address[0] == "127.0.0.1"
        pair.alice.submit("hi bob")
        wait_for(shows(pair.bob, "alice: hi bob"))
    finally:
        pair.close()
    assert not pair.server.running


def test_running_the_demo_again_frees_the_names_on_a_shared_server(chat_server):
    first = demo(chat_server)
    try:
        assert first.alice.wait_connected()
        second = demo(chat_server)
        try:
            assert second.alice.wait_connected(), second.alice.reason
            assert first.alice.status == DISCONNECTED
            assert chat_server.running  # not ours to stop
        finally:
            second.close()
    finally:
        first.close()


def test_closing_a_widget_disconnects_it(make_widget, chat_server):
    alice = make_widget("alice")
    alice.close()
    wait_for(lambda: chat_server.usernames() == [])
    assert not [t for t in threading.enumerate() if t.name == "chat-widget-alice"]


def test_raw_peers_see_the_widgets_messages(make_widget, chat_server):
    """The widget speaks the protocol: a raw socket peer reads its chat frame."""
    with RawPeer(chat_server.address) as peer:
        peer.join("raw")
        alice = make_widget("alice")
        alice.submit("on the wire")
        frame = peer.recv_until("chat")
    assert frame["username"] == "alice" and frame["message"] == "on the wire"


def test_widget_chats_over_tls():
    """Keyword arguments the widget does not know go to ChatClient: here its TLS context."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    with ChatServer("127.0.0.1", 0, ssl_context=server_context) as server:
        alice = ChatWidget(*server.address, "alice", ssl_context=client_context)
        bob = ChatWidget(*server.address, "bob", ssl_context=client_context)
        try:
            assert alice.wait_connected() and bob.wait_connected(), alice.reason
            alice.submit("secret")
            wait_for(shows(bob, "alice: secret"))
        finally:
            alice.close()
            bob.close()


# -- callbacks on other threads: kernel subshells run widget callbacks at the
# same time as cell code (see chat.widget's docstring).  Each test below plays
# "the browser" on one thread and "a cell" on another, starting them together,
# for a bounded number of rounds.

ROUNDS = 30


@pytest.fixture
def open_server() -> Iterator[ChatServer]:
    """A server without a rate limit: these tests send many lines quickly."""
    with ChatServer("127.0.0.1", 0, limits=Limits(rate_limit=0)) as server:
        yield server


def at_once(*actions: Callable[[], object]) -> None:
    """Run each action on its own thread, all released together; re-raise any failure."""
    start = threading.Barrier(len(actions))
    errors: list[BaseException] = []

    def run(action: Callable[[], object]) -> None:
        try:
            start.wait(TIMEOUT)
            action()
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert not [thread for thread in threads if thread.is_alive()], "an action did not finish"
    if errors:
        raise errors[0]


def sender_threads(username: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"chat-widget-{username}"]


def chat_lines(widget: ChatWidget, author: str) -> list[str]:
    """The messages from ``author`` in ``widget``'s log, in order."""
    prefix = f"{author}: "
    return [
        line[11 + len(prefix) :]
        for line in widget.log_text().splitlines()
        if line[11:].startswith(prefix)
    ]


def test_two_threads_using_a_new_widget_at_once_start_one_sender_thread(
    busy_switching, open_server
):
    for i in range(ROUNDS):
        widget = ChatWidget(*open_server.address, f"starter{i}", connect=False)
        try:
            at_once(
                widget.disconnect, widget.disconnect
            )  # each queues a job: the first starts the thread
            assert len(sender_threads(f"starter{i}")) == 1, f"round {i}"
        finally:
            widget.close()
        wait_for(lambda i=i: not sender_threads(f"starter{i}"))


def test_enter_and_send_handled_at_once_send_the_line_once(busy_switching, open_server):
    alice = ChatWidget(*open_server.address, "alice")
    bob = ChatWidget(*open_server.address, "bob")
    try:
        assert alice.wait_connected() and bob.wait_connected()
        for i in range(ROUNDS):
            line = f"line {i}"

            def press_enter(line: str = line) -> None:
                alice.input.value = line  # the browser reports the box's value...

            def click_send(line: str = line) -> None:
                # ...and, on another thread, the click that followed it.
                deadline = time.monotonic() + TIMEOUT
                while alice.input.value != line and time.monotonic() < deadline:
                    if line in alice.log_text():
                        break
                alice.send_button.click()

            at_once(press_enter, click_send)
        wait_for(lambda: len(chat_lines(bob, "alice")) >= ROUNDS)
        alice.submit("/ping")  # a round trip: any doubled line would have arrived by its pong
        wait_for(shows(alice, "Pong!"))
        assert chat_lines(bob, "alice") == [f"line {i}" for i in range(ROUNDS)]
    finally:
        alice.close()
        bob.close()


def later(seconds: float, action: Callable[[], object]) -> Callable[[], None]:
    """``action``, started ``seconds`` late: a busy wait, precise to microseconds."""

    def run() -> None:
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            pass
        action()

    return run


def test_connect_racing_close_never_connects_after_close(busy_switching, open_server):
    for i in range(ROUNDS):
        name = f"racer{i}"
        widget = ChatWidget(*open_server.address, name, connect=False)
        # Round by round, close() starts a few microseconds later: somewhere in
        # the sweep it lands inside connect(), between its checks and its job.
        at_once(widget.connect, later(i * 3e-6, widget.close))
        wait_for(lambda name=name: not sender_threads(name))
        wait_for(lambda name=name: name not in open_server.usernames())
        widget.connect()  # a closed widget stays closed
        assert not sender_threads(name), f"round {i}: a closed widget started a thread"


def test_lines_entered_while_a_cell_closes_the_widget_are_sent_once_in_order_or_not_at_all(
    busy_switching, open_server
):
    bob = ChatWidget(*open_server.address, "bob")
    lines = [f"line {i}" for i in range(ROUNDS)]
    try:
        for i in range(5):
            alice = ChatWidget(*open_server.address, f"alice{i}")
            assert alice.wait_connected() and bob.wait_connected()

            def type_lines(alice: ChatWidget = alice) -> None:  # Enter after Enter
                for line in lines:
                    alice.submit(line)  # what Enter calls (ipywidgets' own setters may
                    # fail on a widget closed meanwhile; that is its race, not ours)

            at_once(type_lines, later(i * 200e-6, alice.close))
            wait_for(shows(bob, f"alice{i} left the chat"))
            received = chat_lines(bob, f"alice{i}")
            assert received == lines[: len(received)], f"round {i}: not the lines typed, in order"
            assert not sender_threads(f"alice{i}")
    finally:
        bob.close()


def test_lines_sent_while_a_cell_disconnects_and_reconnects_are_each_sent_or_reported_once(
    busy_switching, open_server
):
    alice = ChatWidget(*open_server.address, "alice")
    bob = ChatWidget(*open_server.address, "bob")
    lines = [f"line {i}" for i in range(ROUNDS)]
    try:
        assert alice.wait_connected() and bob.wait_connected()

        def type_lines() -> None:  # the browser: Enter after Enter
            for line in lines:
                alice.input.value = line

        def leave_and_come_back() -> None:  # a cell
            alice.disconnect(wait=TIMEOUT)
            wait_for(lambda: alice.status == DISCONNECTED)
            # The server sees the connection end a moment later; until then "alice" is taken.
            wait_for(lambda: "alice" not in open_server.usernames())
            alice.connect()
            assert alice.wait_connected()

        at_once(type_lines, leave_and_come_back)
        assert alice.wait_connected()
        alice.submit("/ping")
        wait_for(shows(alice, "Pong!"))
        received = chat_lines(bob, "alice")
        reported = [line for line in lines if f"not sent: {line}" in alice.log_text()]
        assert len(received) == len(set(received)), "a line arrived twice"
        assert received == [line for line in lines if line in received], "out of order"
        assert sorted(received + reported, key=lines.index) == lines, "a line was lost"
        assert len(sender_threads("alice")) == 1
    finally:
        alice.close()
        bob.close()


# -- rooms, private conversations, history and nicknames (PROTOCOL.md, sections 5-9).
# The commands are chat.client.commands' (tested with the terminal); what is
# tested here is where the widget shows things: each room's and conversation's
# own log, the list with its unread counts, and paging back through history.


def entries(widget: ChatWidget) -> list[str]:
    """The room list as a person reads it: each entry's label, in order."""
    return [button.description for button in widget.room_list.children]


def entry(widget: ChatWidget, name: str) -> widgets.Button:
    """The list's entry for room or peer ``name`` (its label without the lock or count)."""
    for button in widget.room_list.children:
        if button.description.removeprefix("🔒 ").partition(" (")[0] == name:
            return button
    raise AssertionError(f"no entry {name!r} in {entries(widget)}")


def highlighted(widget: ChatWidget) -> list[str]:
    return [b.description for b in widget.room_list.children if b.button_style == "info"]


def in_room(widget: ChatWidget, room: str) -> None:
    widget.submit(f"/join {room}")
    wait_for(lambda: widget.shown == room)


def test_room_list_shows_the_lobby_highlighted_once_connected(make_widget):
    alice = make_widget("alice")
    assert entries(alice) == ["#lobby"]
    assert highlighted(alice) == ["#lobby"]
    assert "#lobby" in alice.header.value


def test_joining_a_room_adds_it_to_the_list_and_shows_it(make_widget):
    alice = make_widget("alice")
    in_room(alice, "#rust")
    assert entries(alice) == ["#lobby", "#rust"]
    assert highlighted(alice) == ["#rust"]
    assert "You are in #rust now" in alice.log_text()
    assert "You are in #rust" not in alice.log_text("#lobby")
    assert "1 in #rust" in alice.users_view.value


def test_a_message_goes_to_the_room_shown_and_lands_in_that_rooms_log_only(make_widget):
    alice, bob = make_widget("alice"), make_widget("bob")
    in_room(alice, "#rust")
    in_room(bob, "#rust")
    alice.submit("about rust")
    wait_for(shows(bob, "alice: about rust"))
    alice.show("#lobby")
    alice.submit("about the lobby")
    wait_for(lambda: "alice: about the lobby" in bob.log_text("#lobby"))
    for widget in (alice, bob):
        assert "about the lobby" not in widget.log_text("#rust")
        assert "about rust" not in widget.log_text("#lobby")


def test_a_room_not_shown_counts_unread_messages_until_its_entry_is_clicked(make_widget):
    alice, bob = make_widget("alice"), make_widget("bob")
    in_room(alice, "#rust")
    in_room(bob, "#rust")
    entry(bob, "#lobby").click()
    assert bob.shown == "#lobby" and highlighted(bob) == ["#lobby"]
    for i in range(3):
        alice.submit(f"unread {i}")
    wait_for(lambda: bob.unread["#rust"] == 3)
    assert entry(bob, "#rust").description == "#rust (3)"
    assert "unread" not in bob.log_text()  # the lobby is shown
    entry(bob, "#rust").click()
    assert bob.shown == "#rust" and highlighted(bob) == ["#rust"]
    assert bob.unread["#rust"] == 0 and entry(bob, "#rust").description == "#rust"
    assert "alice: unread 2" in bob.log_text()


def test_own_messages_and_news_do_not_count_as_unread(make_widget):
    alice, bob = make_widget("alice"), make_widget("bob")
    in_room(alice, "#rust")
    alice.show("#lobby")
    in_room(bob, "#rust")  # alice is told bob joined #rust: news, not a message
    wait_for(lambda: "bob joined #rust" in alice.log_text("#rust"))
    alice.submit("/me looks around")  # to the lobby, shown
    wait_for(shows(alice, "* alice looks around"))
    assert alice.unread == {"#lobby": 0, "#rust": 0}


def test_leaving_the_room_shown_removes_it_and_shows_the_lobby(make_widget):
    alice = make_widget("alice")
    in_room(alice, "#rust")
    alice.submit("/leave")
    wait_for(lambda: entries(alice) == ["#lobby"])
    assert alice.shown == "#lobby"
    assert "You left #rust" in alice.log_text()


def test_each_room_keeps_its_own_bounded_log(open_server):
    alice = ChatWidget(*open_server.address, "alice", max_lines=3)
    try:
        assert alice.wait_connected()
        in_room(alice, "#rust")
        for i in range(5):
            alice.submit(f"rust {i}")
        wait_for(shows(alice, "rust 4"))
        assert [line[11:] for line in alice.log_text().splitlines()] == [
            f"alice: rust {i}" for i in (2, 3, 4)
        ]
        assert "Welcome" in alice.log_text("#lobby")  # the lobby's log is its own
    finally:
        alice.close()


def test_a_private_message_opens_a_conversation_with_an_unread_count(make_widget):
    alice, bob = make_widget("alice"), make_widget("bob")
    alice.submit("/msg bob psst")
    wait_for(lambda: "alice" in bob.unread)
    assert bob.unread["alice"] == 1
    assert entries(bob) == ["#lobby", "🔒 alice (1)"]
    assert "psst" not in bob.log_text()  # still the lobby
    entry(bob, "alice").click()
    assert bob.shown == "alice" and highlighted(bob) == ["🔒 alice"]
    assert "🔒 alice → you: psst" in bob.log_text()
    assert "🔒 private" in bob.users_view.value and "🔒 alice" in bob.header.value


def test_msg_shows_the_conversation_once_the_server_relays_it(make_widget):
    alice = make_widget("alice")
    make_widget("bob")
    alice.submit("/msg BOB hi")  # names are compared without regard to case
    wait_for(lambda: alice.shown == "bob")
    assert "🔒 you → bob: hi" in alice.log_text()
    assert alice.unread["bob"] == 0
    assert "hi" not in alice.log_text("#lobby")
    alice.submit("/msg nobody hello?")  # refused: no conversation, the error where we are
    wait_for(shows(alice, "No such user: nobody"))
    assert alice.shown == "bob" and "nobody" not in alice.unread


def test_typing_in_a_conversation_sends_private_messages_both_ways(make_widget):
    alice, bob, carol = make_widget("alice"), make_widget("bob"), make_widget("carol")
    alice.submit("/msg bob are you there?")
    wait_for(lambda: "alice" in bob.unread)
    bob.show("alice")
    bob.input.value = "I am"  # Enter in the box, with the conversation shown
    wait_for(lambda: "🔒 bob → you: I am" in alice.log_text("bob"))
    alice.submit("good")
    wait_for(lambda: "🔒 alice → you: good" in bob.log_text())
    carol.submit("/ping")  # carol's round trip ends after any line she could have been sent
    wait_for(shows(carol, "Pong!"))
    assert "I am" not in carol.log_text() and "good" not in carol.log_text()
    assert "I am" not in alice.log_text("#lobby") and "I am" not in bob.log_text("#lobby")
    assert carol.unread == {"#lobby": 0}


def test_room_commands_in_a_conversation_ask_for_a_room_first(make_widget):
    alice, bob = make_widget("alice"), make_widget("bob")
    alice.submit("/msg bob hi")
    wait_for(lambda: alice.shown == "bob")
    alice.submit("/me waves")
    assert "choose a room on the left first" in alice.log_text()
    alice.submit("/ping")
    wait_for(shows(alice, "Pong!"))
    assert "waves" not in bob.log_text()


@pytest.fixture
def busy_lobby(open_server: ChatServer) -> Iterator[ChatServer]:
    """A server whose lobby has 130 messages: the newest 50, and two pages before them."""
    with ChatClient(*open_server.address) as filler:
        filler.connect("filler")
        for i in range(130):
            filler.send_chat(f"old {i}")
        filler.ping()  # answered after the last message was relayed
        yield open_server


def history_lines(widget: ChatWidget) -> list[str]:
    return [line[19:] for line in widget.log_text().splitlines() if "] filler: old " in line]


def test_load_older_messages_pages_back_through_history_in_order_without_duplicates(busy_lobby):
    alice = ChatWidget(*busy_lobby.address, "alice")
    try:
        assert alice.wait_connected()
        wait_for(lambda: len(history_lines(alice)) == 50)  # the latest 50, on entering
        assert history_lines(alice) == [f"old {i}" for i in range(80, 130)]
        assert alice.log_text().splitlines()[50].startswith("✅ Welcome")  # said before we came
        assert alice.older_button.description == "⬆ Load older messages"
        alice.older_button.click()
        wait_for(lambda: len(history_lines(alice)) == 100)
        alice.older_button.click()
        alice.older_button.click()  # clicked twice: the same page twice, shown once
        wait_for(lambda: len(history_lines(alice)) == 130)
        wait_for(lambda: alice.older_button.disabled)
        assert history_lines(alice) == [f"old {i}" for i in range(130)]
        assert alice.older_button.description == "Start of #lobby"
    finally:
        alice.close()


def test_a_full_log_loads_no_older_messages(busy_lobby):
    alice = ChatWidget(*busy_lobby.address, "alice", max_lines=20)
    try:
        assert alice.wait_connected()
        wait_for(lambda: "old 129" in alice.log_text())
        assert history_lines(alice)[-1] == "old 129" and len(alice.log_text().splitlines()) <= 21
        assert alice.older_button.disabled and "Log full" in alice.older_button.description
        alice.load_older()
        assert "this log keeps 20 lines and is full" in alice.log_text()
    finally:
        alice.close()


def test_history_is_placed_by_id_above_what_arrived_live_each_message_once():
    """PROTOCOL.md, section 9: a room's history may arrive after its first live messages."""

    def chat(message_id: int) -> dict:
        return {"type": "chat", "id": message_id, "room": "#lobby", "username": "bob",
                "message": f"m{message_id}", "timestamp": 0}  # fmt: skip

    welcome = {"type": "welcome", "message": "hi", "users": ["me", "bob"],
               "features": ["history", "rooms"], "rooms": ["#lobby"]}  # fmt: skip
    frames = [
        welcome,
        chat(7),  # live, before the history
        {
            "type": "history",
            "room": "#lobby",
            "messages": [chat(5), chat(6), chat(7)],
            "more": True,
        },
        {"type": "history", "room": "#lobby", "messages": [chat(3), chat(4)], "more": False},
        chat(8),
    ]
    address = fake_server(frames, stay=True)
    widget = ChatWidget(*next(address), "me")
    try:
        wait_for(shows(widget, "bob: m8"))
        lines = widget.log_text().splitlines()
        assert [line[11:] for line in lines if "bob: m" in line] == [
            f"bob: m{i}" for i in (3, 4, 5, 6, 7, 8)
        ]
        assert widget.older_button.description == "Start of #lobby"  # the oldest page said so
    finally:
        widget.close()
        next(address, None)


def test_nick_changes_the_name_in_the_header_and_in_the_peers_list(make_widget):
    alice, bob = make_widget("alice"), make_widget("bob")
    alice.submit("/msg bob hi")
    wait_for(lambda: "alice" in bob.unread)
    alice.submit("/nick alice2")
    wait_for(lambda: alice.username == "alice2")
    assert "💬 alice2" in alice.header.value
    assert "alice2 <i>(you)</i>" in alice.users_view.value or alice.shown == "bob"
    wait_for(lambda: "alice2" in bob.unread)  # the conversation follows the new name
    assert "alice" not in bob.unread
    bob.show("alice2")
    assert "alice is now known as alice2" in bob.log_text()
    bob.submit("still you?")
    wait_for(lambda: "🔒 bob → you: still you?" in alice.log_text("bob"))


def test_private_conversations_are_bounded_the_oldest_goes_first():
    welcome = {"type": "welcome", "message": "hi", "users": ["me"],
               "features": ["private"], "rooms": ["#lobby"]}  # fmt: skip
    peers = [f"peer{i}" for i in range(MAX_CONVERSATIONS + 2)]
    privates = [
        {"type": "private", "id": i + 1, "from": peer, "to": "me", "message": "hi"}
        for i, peer in enumerate(peers)
    ]
    address = fake_server([welcome, *privates], stay=True)
    widget = ChatWidget(*next(address), "me")
    try:
        wait_for(lambda: peers[-1] in widget.unread)
        assert list(widget.unread) == ["#lobby", *peers[2:]]
        assert len(widget.room_list.children) == 1 + MAX_CONVERSATIONS
    finally:
        widget.close()
        next(address, None)


def test_against_a_v1_server_extensions_are_not_supported_and_chat_still_works():
    """A server whose welcome lists no features: PROTOCOL.md, section 5."""
    with SmallServer() as server:
        alice, bob = ChatWidget(*server.address, "alice"), ChatWidget(*server.address, "bob")
        try:
            assert alice.wait_connected() and bob.wait_connected()
            assert entries(alice) == ["#lobby"]
            assert alice.older_button.layout.display == "none"  # no history to load
            for line in ("/join #rust", "/msg bob hi", "/nick alice2", "/history", "/rooms"):
                alice.submit(line)
            alice.load_older()
            alice.submit("plain chat")
            wait_for(shows(bob, "alice: plain chat"))
            wait_for(lambda: alice.log_text().count("Not supported by this server") == 6)
            for command in ("/join", "/msg", "/nick", "/history", "/rooms"):
                assert f"❌ {command}: Not supported by this server" in alice.log_text()
            assert entries(alice) == entries(bob) == ["#lobby"]
            assert alice.username == "alice" and "hi" not in bob.log_text()
        finally:
            alice.close()
            bob.close()


def test_peer_text_in_rooms_conversations_and_the_list_is_never_markup():
    """A rogue server sends markup as names, rooms, messages and history."""
    welcome = {"type": "welcome", "message": EVIL, "users": ["me", EVIL],
               "features": ["history", "private", "rooms"], "rooms": ["#lobby"]}  # fmt: skip
    evil_chat = {"type": "chat", "id": 1, "room": "#lobby", "username": EVIL, "message": EVIL}
    frames = [
        welcome,
        {"type": "room_joined", "room": f"#{EVIL}", "users": ["me", EVIL]},
        {
            "type": "history",
            "room": f"#{EVIL}",
            "messages": [{**evil_chat, "room": f"#{EVIL}"}],
            "more": True,
        },
        {"type": "chat", "id": 2, "room": f"#{EVIL}", "username": EVIL, "message": EVIL},
        {"type": "private", "id": 3, "from": EVIL, "to": "me", "message": EVIL},
        {"type": "user_renamed", "old": EVIL, "new": EVIL + "2", "message": EVIL},
        {"type": "error", "message": EVIL},
    ]
    address = fake_server(frames, stay=True)
    widget = ChatWidget(*next(address), "me")
    try:
        wait_for(shows(widget, EVIL))
        wait_for(lambda: len(widget.unread) == 3)
        assert widget.status == CONNECTED, widget.reason  # the list of users is shown
        for name in list(widget.unread):
            widget.show(name)
            assert EVIL in widget.log_text()
            for part in (widget.log_view, widget.header, widget.users_view):
                assert "<img" not in part.value, (name, part.value)
        # The list's entries are buttons: the browser shows a button's description as text.
        assert all(isinstance(b, widgets.Button) for b in widget.room_list.children)
    finally:
        widget.close()
        next(address, None)


def test_switching_rooms_while_messages_arrive_files_each_message_once_in_its_room(
    busy_switching, open_server
):
    """Clicks (the browser's thread), messages (the receive thread), a cell: one lock."""
    alice = ChatWidget(*open_server.address, "alice")
    bob = ChatWidget(*open_server.address, "bob")
    try:
        assert alice.wait_connected() and bob.wait_connected()
        in_room(alice, "#rust")
        in_room(bob, "#rust")
        rooms = ["#lobby", "#rust"] * (ROUNDS // 2)

        def send() -> None:
            for i, room in enumerate(rooms):
                alice.show(room)  # what a cell could do
                alice.submit(f"{room} {i}")

        def click() -> None:
            for i in range(4 * ROUNDS):
                entry(bob, rooms[i % 2]).click()

        at_once(send, click)
        alice.submit("/ping")
        wait_for(shows(alice, "Pong!"))
        for room in ("#lobby", "#rust"):
            wanted = [f"{room} {i}" for i, r in enumerate(rooms) if r == room]
            wait_for(lambda room=room, wanted=wanted: chat_lines_of(bob, room) == wanted)
        # What bob's widget shows agrees with itself: one entry per room, the room
        # shown highlighted with nothing unread, and its log -- not the other's.
        shown = bob.shown
        other = "#rust" if shown == "#lobby" else "#lobby"
        assert len(set(map(id, bob.room_list.children))) == 2
        assert bob.unread[shown] == 0 and highlighted(bob) == [shown]
        assert bob.unread[other] <= ROUNDS // 2
        assert entry(bob, other).description == (
            f"{other} ({bob.unread[other]})" if bob.unread[other] else other
        )
        assert f"alice</b>: {shown} " in bob.log_view.value
        assert f"alice</b>: {other} " not in bob.log_view.value
    finally:
        alice.close()
        bob.close()


def chat_lines_of(widget: ChatWidget, room: str) -> list[str]:
    return [line[18:] for line in widget.log_text(room).splitlines() if "] alice: #" in line]


def test_a_click_and_a_line_handled_at_once_leave_list_header_and_log_agreeing(
    busy_switching, open_server
):
    """Each redraw reads which room is shown; without the lock, a click could land
    between one redraw's reading and its writing, leaving one room highlighted
    and another's log shown."""
    bob = ChatWidget(*open_server.address, "bob")
    try:
        assert bob.wait_connected()
        in_room(bob, "#rust")
        for i in range(ROUNDS):
            room = ("#lobby", "#rust")[i % 2]
            # Round by round, the line comes a few microseconds later than the click.
            at_once(entry(bob, room).click, later(i * 3e-6, lambda i=i: bob.submit(f"/x{i}")))
            shown = bob.shown
            assert shown == room, f"round {i}"
            assert highlighted(bob) == [shown], f"round {i}"
            assert f"· {shown} " in bob.header.value, f"round {i}"
            answer = f"Unknown command /x{i}."
            assert (answer in bob.log_text()) == (answer in bob.log_view.value), f"round {i}"
            assert (bob.log_text("#lobby") + bob.log_text("#rust")).count(answer) == 1
    finally:
        bob.close()
