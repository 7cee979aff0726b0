"""ChatClient, the client for programs: connect, join, send, ping, events, close.

Most tests talk to a real server (the ``server`` fixture).  A few need a server
that misbehaves -- never answers, sends garbage -- so they use
:class:`tests.helpers.FakeServer`, a listening socket the test drives by hand.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
import time

import pytest

from chat.client import ChatClient, ChatError, ConnectError, ConnectionClosed, JoinError
from chat.limits import Limits
from tests.helpers import TIMEOUT, FakeServer, free_port, wait_for


def next_event(client: ChatClient, kind: str | None = None) -> dict:
    """The next event (of type ``kind``, skipping others) from the client's queue."""
    while True:
        event = client.events.get(timeout=TIMEOUT)
        if kind is None or event["type"] == kind:
            return event


@pytest.fixture
def connect(server):
    """Make clients joined to the test server; all are closed at the end."""
    clients: list[ChatClient] = []

    def make(name: str, **options) -> ChatClient:
        client = ChatClient(*server.address, **options)
        clients.append(client)
        client.connect(name)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def fake_server():
    fake = FakeServer()
    yield fake
    fake.close()


def connect_in_background(client: ChatClient, name: str) -> tuple[threading.Thread, queue.Queue]:
    """Run ``client.connect(name)`` in a thread; its result or error goes to the queue."""
    outcome: queue.Queue = queue.Queue()

    def run() -> None:
        try:
            outcome.put(client.connect(name))
        except Exception as exc:
            outcome.put(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


# --------------------------------------------------------------------------
# Connecting and joining


def test_connect_returns_the_welcome_listing_everyone(server, connect):
    connect("alice")
    bob = ChatClient(*server.address)
    try:
        welcome = bob.connect("bob")
        assert welcome["type"] == "welcome"
        assert welcome["users"] == ["alice", "bob"]
        assert bob.username == "bob"
        assert bob.users == ["alice", "bob"]
        assert bob.connected
    finally:
        bob.close()


def test_welcome_is_also_the_first_event(connect):
    alice = connect("alice")
    assert next_event(alice)["type"] == "welcome"


def test_refused_connection_raises_connect_error_asking_if_the_server_runs():
    client = ChatClient("127.0.0.1", free_port())
    with pytest.raises(ConnectError, match=r"Is the server running\?"):
        client.connect("alice")
    assert not client.connected


def test_taken_name_raises_join_error(server, connect):
    connect("alice")
    client = ChatClient(*server.address)
    with pytest.raises(JoinError, match="Username already taken"):
        client.connect("alice")
    assert not client.connected


def test_after_a_join_error_the_same_client_can_try_another_name(server, connect):
    connect("alice")
    client = ChatClient(*server.address)
    with pytest.raises(JoinError):
        client.connect("alice")
    try:
        assert client.connect("alice2")["type"] == "welcome"
    finally:
        client.close()


def test_invalid_name_raises_join_error_without_connecting():
    client = ChatClient("127.0.0.1", free_port())  # nothing listens: connecting would fail
    with pytest.raises(JoinError, match="letters, digits"):
        client.connect("not valid!")


def test_full_server_raises_join_error(make_server):
    server = make_server(limits=Limits(max_clients=1))
    with ChatClient(*server.address) as alice:
        alice.connect("alice")
        with pytest.raises(JoinError, match="Server full"):
            ChatClient(*server.address).connect("bob")


def test_connecting_twice_is_refused(connect):
    alice = connect("alice")
    with pytest.raises(ChatError, match="already connected"):
        alice.connect("alice")


def test_server_that_never_answers_the_join_raises_join_error(fake_server):
    client = ChatClient(*fake_server.address, timeout=0.3)
    with pytest.raises(JoinError, match="did not answer"):
        client.connect("alice")


def test_a_failed_join_leaves_nothing_behind_for_the_next_try(fake_server):
    client = ChatClient(*fake_server.address, timeout=0.3)
    thread, outcome = connect_in_background(client, "alice")
    fake_server.accept()
    fake_server.recv_frame()
    fake_server.send(b'{"type":"wel')  # half a frame, then silence
    thread.join(TIMEOUT)
    assert isinstance(outcome.get(timeout=TIMEOUT), JoinError)
    client.timeout = TIMEOUT
    thread, outcome = connect_in_background(client, "alice")
    fake_server.welcome("alice")
    thread.join(TIMEOUT)
    try:
        assert outcome.get(timeout=TIMEOUT)["type"] == "welcome"
    finally:
        client.close()


def test_server_closing_during_the_join_raises_join_error(fake_server):
    client = ChatClient(*fake_server.address)
    thread, outcome = connect_in_background(client, "alice")
    fake_server.accept()
    fake_server.recv_frame()
    fake_server.conn.close()
    thread.join(TIMEOUT)
    error = outcome.get(timeout=TIMEOUT)
    assert isinstance(error, JoinError)
    assert "closed the connection" in str(error)


# --------------------------------------------------------------------------
# Sending and receiving


def test_sent_chat_comes_back_as_a_chat_event(connect):
    alice = connect("alice")
    alice.send_chat("Hello everyone!")
    event = next_event(alice, "chat")
    assert event["username"] == "alice"
    assert event["message"] == "Hello everyone!"
    assert isinstance(event["timestamp"], float)


def test_messages_from_others_arrive_as_events(connect):
    alice = connect("alice")
    bob = connect("bob")
    assert next_event(alice, "user_joined")["username"] == "bob"
    bob.send_chat("hi alice")
    event = next_event(alice, "chat")
    assert (event["username"], event["message"]) == ("bob", "hi alice")


def test_refused_message_arrives_as_an_error_event(connect):
    alice = connect("alice")
    alice.send_chat("   ")
    assert next_event(alice, "error")["message"] == "Message is empty"


def test_events_go_to_the_callback_when_one_is_given(server):
    events: list[dict] = []
    with ChatClient(*server.address, on_event=events.append) as alice:
        alice.connect("alice")
        alice.send_chat("to the callback")
        wait_for(lambda: any(e.get("message") == "to the callback" for e in events))
        assert events[0]["type"] == "welcome"
        assert alice.events.empty()


def test_a_failing_callback_does_not_stop_the_events(server, caplog):
    events: list[dict] = []

    def callback(event: dict) -> None:
        events.append(event)
        if event["type"] == "chat" and event["message"] == "first":
            raise RuntimeError("a bug in the callback")

    with ChatClient(*server.address, on_event=callback) as alice:
        alice.connect("alice")
        alice.send_chat("first")
        alice.send_chat("second")
        wait_for(lambda: any(e.get("message") == "second" for e in events))
    assert "on_event callback failed" in caplog.text


def test_ping_returns_a_small_positive_round_trip(connect):
    alice = connect("alice")
    rtt = alice.ping()
    assert 0 < rtt < alice.timeout


def test_pongs_that_answer_ping_are_not_events(connect):
    alice = connect("alice")
    next_event(alice, "history")  # what our client gets after its welcome
    alice.ping()
    alice.send_chat("after the ping")
    assert next_event(alice)["message"] == "after the ping"


def test_several_pings_are_each_answered(connect):
    alice = connect("alice")
    assert all(alice.ping() > 0 for _ in range(5))


def test_users_list_follows_joins_and_leaves(connect):
    alice = connect("alice")
    bob = connect("bob")
    wait_for(lambda: alice.users == ["alice", "bob"])
    bob.close()
    wait_for(lambda: alice.users == ["alice"])


def test_keepalive_pings_the_server_when_nothing_else_was_sent(fake_server):
    with ChatClient(*fake_server.address, keepalive=0.1) as client:
        thread, _ = connect_in_background(client, "alice")
        fake_server.welcome("alice")
        thread.join(TIMEOUT)
        first = fake_server.recv_frame()
        assert first["type"] == "ping"
        fake_server.send({"type": "pong", "id": first["id"]})
        assert fake_server.recv_frame()["type"] == "ping"  # and again, while quiet
        assert next_event(client)["type"] == "welcome"
        assert client.events.empty()  # keep-alive pongs are not events


# --------------------------------------------------------------------------
# Pings are matched to pongs by id (fault 1)


def test_each_ping_carries_an_id_that_its_pong_answers(fake_server):
    with ChatClient(*fake_server.address, keepalive=None) as client:
        thread, _ = connect_in_background(client, "alice")
        fake_server.welcome("alice")
        thread.join(TIMEOUT)
        answers: queue.Queue = queue.Queue()
        pingers = [
            threading.Thread(target=lambda: answers.put(client.ping()), daemon=True)
            for _ in range(2)
        ]
        for pinger in pingers:
            pinger.start()
        ids = [fake_server.recv_frame()["id"] for _ in range(2)]
        assert len(set(ids)) == 2
        for request_id in reversed(ids):  # answered out of order: each still finds its ping
            fake_server.send({"type": "pong", "id": request_id})
        for pinger in pingers:
            pinger.join(TIMEOUT)
        assert answers.qsize() == 2


def test_a_pong_without_an_id_from_an_older_server_still_answers_the_ping(fake_server):
    with ChatClient(*fake_server.address, keepalive=None) as client:
        thread, _ = connect_in_background(client, "alice")
        fake_server.welcome("alice")
        thread.join(TIMEOUT)
        answer: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: answer.put(client.ping()), daemon=True).start()
        assert fake_server.recv_frame()["type"] == "ping"
        fake_server.send({"type": "pong"})  # a v1 server echoes nothing
        assert answer.get(timeout=TIMEOUT) >= 0


def test_a_refused_ping_fails_at_once_and_every_later_ping_still_works(make_server):
    server = make_server(Limits(rate_limit=2, rate_burst=3))
    with ChatClient(*server.address, keepalive=None) as client:
        client.connect("alice")  # the join took one token: two are left
        client._pacer = None  # send faster than the server allows, on purpose
        client.ping()
        client.ping()
        with pytest.raises(ChatError, match="Slow down"):
            client.ping(timeout=TIMEOUT)  # refused: it fails now, not after a timeout
        for _ in range(3):  # before ids, every later ping took the wrong pong, and failed
            time.sleep(0.6)  # a token comes back every half second
            assert client.ping() > 0
        assert client.connected


# --------------------------------------------------------------------------
# Sending: paced to the server's rate (fault 2), never a broken stream (fault 7)


def test_messages_sent_faster_than_the_rate_are_paced_and_none_is_refused(make_server):
    server = make_server(Limits(rate_limit=10, rate_burst=5))
    with ChatClient(*server.address, keepalive=None) as alice:
        alice.connect("alice")
        for number in range(15):
            alice.send_chat(f"line {number}")
        received = []
        while len([e for e in received if e["type"] == "chat"]) < 15:
            received.append(next_event(alice))
    assert [e["message"] for e in received if e["type"] == "chat"] == [
        f"line {n}" for n in range(15)
    ]
    assert not [e for e in received if e["type"] == "error"]


def test_a_failed_send_ends_the_connection_so_no_frame_is_ever_corrupted(fake_server):
    """A send that times out half-way must not leave half a frame for the next to join."""
    fake_server.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client = ChatClient(*fake_server.address, keepalive=0.2)  # also the send timeout
    try:
        thread, _ = connect_in_background(client, "alice")
        fake_server.welcome("alice")  # ... and then it never reads again
        thread.join(TIMEOUT)
        text = "x" * 3000
        with pytest.raises(ConnectionClosed, match="timed out"):
            for _ in range(20_000):  # bounded: the buffers fill within a few megabytes
                client.send_chat(text)
        with pytest.raises(ConnectionClosed):
            client.send_chat("after the failure")
        assert next_event(client, "disconnected")["reason"].startswith("Connection lost")
        assert not client.connected
        assert fake_server.conn is not None
        fake_server.conn.settimeout(TIMEOUT)
        received = bytearray()
        while chunk := fake_server.conn.recv(1 << 20):
            received += chunk
        *lines, _rest = bytes(received).split(b"\n")
        assert lines and all(json.loads(line)["message"] == text for line in lines)
    finally:
        client.close()


def test_messages_that_arrive_with_the_welcome_are_not_lost(fake_server):
    with ChatClient(*fake_server.address) as client:
        thread, _ = connect_in_background(client, "alice")
        fake_server.accept()
        fake_server.recv_frame()
        welcome = {"type": "welcome", "message": "hi", "users": ["alice"]}
        joined = {"type": "user_joined", "username": "bob", "message": "bob joined the chat"}
        fake_server.send(json.dumps(welcome).encode() + b"\n" + json.dumps(joined).encode() + b"\n")
        thread.join(TIMEOUT)
        assert next_event(client) == welcome
        assert next_event(client) == joined
        wait_for(lambda: client.users == ["alice", "bob"])


def test_unknown_message_types_from_the_server_are_passed_on(fake_server):
    with ChatClient(*fake_server.address) as client:
        thread, _ = connect_in_background(client, "alice")
        fake_server.welcome("alice")
        thread.join(TIMEOUT)
        fake_server.send({"type": "typing", "username": "bob"})
        assert next_event(client, "typing") == {"type": "typing", "username": "bob"}
        assert client.connected


@pytest.mark.parametrize("users", [None, "alice", 42, {"alice": 1}])
def test_welcome_without_a_user_list_gives_an_empty_list(fake_server, users):
    client = ChatClient(*fake_server.address)
    thread, outcome = connect_in_background(client, "alice")
    fake_server.accept()
    fake_server.recv_frame()
    fake_server.send({"type": "welcome", "message": "hi", "users": users})
    thread.join(TIMEOUT)
    try:
        assert outcome.get(timeout=TIMEOUT)["type"] == "welcome"
        assert client.users == []
    finally:
        client.close()


def test_bad_frame_from_the_server_ends_with_a_disconnected_event(fake_server):
    with ChatClient(*fake_server.address) as client:
        thread, _ = connect_in_background(client, "alice")
        fake_server.welcome("alice")
        thread.join(TIMEOUT)
        fake_server.send(b"\xff\xfe\n")
        event = next_event(client, "disconnected")
        assert "bad frame" in event["reason"]
        wait_for(lambda: not client.connected)


# --------------------------------------------------------------------------
# Ending


def test_server_stop_gives_server_shutdown_then_a_disconnected_event(server, connect):
    alice = connect("alice")
    server.stop()
    shutdown = next_event(alice, "server_shutdown")
    disconnected = next_event(alice)
    assert disconnected["type"] == "disconnected"
    assert disconnected["reason"] == shutdown["message"]
    wait_for(lambda: not alice.connected)


def test_sending_after_the_server_is_gone_raises_connection_closed(server, connect):
    alice = connect("alice")
    server.stop()
    next_event(alice, "disconnected")
    with pytest.raises(ConnectionClosed):
        alice.send_chat("anyone?")
    with pytest.raises(ConnectionClosed):
        alice.ping()


def test_close_ends_with_a_you_left_event(connect):
    alice = connect("alice")
    alice.close()
    assert not alice.connected
    assert next_event(alice, "disconnected")["reason"] == "You left the chat"


def test_sending_after_close_raises_connection_closed(connect):
    alice = connect("alice")
    alice.close()
    with pytest.raises(ConnectionClosed):
        alice.send_chat("hello?")


def test_close_is_harmless_twice_and_before_connecting(server):
    never = ChatClient(*server.address)
    never.close()
    with ChatClient(*server.address) as alice:
        alice.connect("alice")
        alice.close()
    alice.close()


def test_leaving_frees_the_name_on_the_server(server, connect):
    watcher = connect("watcher")
    with ChatClient(*server.address) as alice:
        alice.connect("alice")
    next_event(watcher, "user_left")
    assert connect("alice").username == "alice"
