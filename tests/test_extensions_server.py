"""The extensions over real sockets, on every engine: a v1 client among v2 clients,
rooms, private messages, nicknames, and history that survives a restart and a crash.

Peers are :class:`tests.helpers.RawPeer` -- a socket and ``json`` -- so what the
tests see is exactly what is on the wire.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chat.limits import HISTORY_CACHE, Limits
from chat.protocol import HISTORY_PAGE, encode, join, ping
from tests.helpers import ALL_FEATURES, TIMEOUT, RawPeer, server_program, wait_for

V1_TYPES = {"welcome", "chat", "user_joined", "user_left", "error", "pong", "server_shutdown"}
V1_FIELDS = {
    "welcome": {"type", "message", "users", "limits"},
    "chat": {"type", "username", "message", "timestamp"},
    "user_joined": {"type", "username", "message"},
    "user_left": {"type", "username", "message"},
    "error": {"type", "message"},
    "pong": {"type"},
}


def v2(address, name: str, features: list[str] | None = ALL_FEATURES) -> RawPeer:
    """A raw peer joined as ``name``, declaring ``features``; welcome (and history) read."""
    peer = RawPeer(address)
    join = {"type": "join", "username": name}
    if features is not None:
        join["features"] = features
    peer.send(join)
    assert peer.recv_frame()["type"] == "welcome"
    if features and "history" in features:
        assert peer.recv_frame()["type"] == "history"
    return peer


def test_a_v1_client_among_v2_clients_sees_only_v1(server):
    """PROTOCOL.md section 5: a client that declares nothing gets exactly v1."""
    old = RawPeer(server.address)
    try:
        welcome = old.join("old")
        assert set(welcome) == V1_FIELDS["welcome"] and welcome["users"] == ["old"]
        with v2(server.address, "alice") as alice, v2(server.address, "bob") as bob:
            alice.send({"type": "join_room", "room": "#rust"})
            bob.send({"type": "join_room", "room": "#rust"})
            alice.recv_until("user_joined")  # bob arrives in #rust
            alice.send({"type": "chat", "message": "in rust", "room": "#rust"})
            alice.send({"type": "private", "to": "bob", "message": "psst"})
            alice.send({"type": "nick", "username": "alicia"})
            alice.recv_until("user_renamed")
            old.send({"type": "chat", "message": "hello, anyone?"})
            alice.recv_until("chat")  # old's message came round: now alice answers
            alice.send({"type": "chat", "message": "hi old", "action": True})
            seen = []
            while not seen or seen[-1].get("message") != "hi old":
                seen.append(old.recv_frame())
            old.send({"type": "ping"})
            seen.append(old.recv_frame())
            assert seen[-1] == {"type": "pong"}
        for frame in seen:
            assert frame["type"] in V1_TYPES
            assert set(frame) - {"action"} == V1_FIELDS[frame["type"]], frame
        texts = [f.get("message") for f in seen if f["type"] == "chat"]
        assert texts == ["hello, anyone?", "hi old"]  # never "in rust", never "psst"
        assert [f["username"] for f in seen if f["type"] == "user_left"] == ["alice"]
        assert [f["username"] for f in seen if f["type"] == "user_joined"] == [
            "alice",
            "bob",
            "alicia",
        ]
    finally:
        old.close()


def test_rooms_keep_their_messages_apart(server):
    with v2(server.address, "alice") as alice, v2(server.address, "bob") as bob:
        bob.send({"type": "join_room", "room": "#rust"})
        assert bob.recv_until("room_joined") == {
            "type": "room_joined",
            "room": "#rust",
            "users": ["bob"],
        }
        alice.send({"type": "join_room", "room": "#go"})
        alice.recv_until("room_joined")
        bob.send({"type": "chat", "message": "rust only", "room": "#rust"})
        alice.send({"type": "chat", "message": "go only", "room": "#go"})
        assert bob.recv_until("chat")["message"] == "rust only"
        assert alice.recv_until("chat")["message"] == "go only"
        alice.send({"type": "rooms"})
        assert alice.recv_until("rooms")["rooms"] == [
            {"room": "#lobby", "users": 2},
            {"room": "#rust", "users": 1},
            {"room": "#go", "users": 1},
        ]


def test_a_private_message_travels_between_two_clients_only(server):
    with (
        v2(server.address, "alice") as alice,
        v2(server.address, "bob") as bob,
        v2(server.address, "carol") as carol,
    ):
        alice.send({"type": "private", "to": "bob", "message": "psst"})
        to_bob = bob.recv_until("private")
        assert (to_bob["from"], to_bob["to"], to_bob["message"]) == ("alice", "bob", "psst")
        assert alice.recv_until("private") == to_bob
        carol.send({"type": "ping"})
        assert carol.recv_until("pong")  # carol saw no private frame on the way


def test_a_rename_reaches_everyone_in_a_shared_room(server):
    with v2(server.address, "alice") as alice, v2(server.address, "bob") as bob:
        alice.recv_until("user_joined")
        bob.send({"type": "nick", "username": "robert"})
        assert alice.recv_until("user_renamed")["message"] == "bob is now known as robert"
        assert wait_for(lambda: server.usernames() == ["alice", "robert"])


def test_history_on_entering_and_paging_back_beyond_what_memory_holds(make_server, tmp_path):
    server = make_server(Limits(rate_limit=0), db=str(tmp_path / "h.sqlite3"))
    with v2(server.address, "alice", ["rooms"]) as alice:
        for n in range(300):  # more than the 200 a room keeps in memory
            alice.send({"type": "chat", "message": f"m{n}"})
        last = None
        while last is None or last["message"] != "m299":
            last = alice.recv_until("chat")
        with RawPeer(server.address) as bob:
            bob.send({"type": "join", "username": "bob", "features": ["history"]})
            assert bob.recv_frame()["type"] == "welcome"
            history = bob.recv_frame()
            assert [m["message"] for m in history["messages"]] == [
                f"m{n}" for n in range(300 - HISTORY_PAGE, 300)
            ]
            assert history["more"] is True
            pages = history["messages"]
            while history["more"]:  # page back, through the store, to the very first
                bob.send(
                    {"type": "history", "room": "#lobby", "before": pages[0]["id"], "limit": 120}
                )
                history = bob.recv_until("history")
                pages = history["messages"] + pages
            assert [m["message"] for m in pages] == [f"m{n}" for n in range(300)]
            assert [m["id"] for m in pages] == sorted(m["id"] for m in pages)


def test_a_pong_comes_after_the_history_the_store_sends(make_server):
    """PROTOCOL.md section 10: a pong comes after every answer to what was sent before it.

    Those answers include history read from the store, which comes later, from
    the store's thread: the lobby of a new server, and a page older than memory.
    """
    server = make_server(Limits(rate_limit=0))
    with RawPeer(server.address) as alice:
        alice.send(encode(join("alice", ALL_FEATURES)) + encode(ping(1)))
        assert [alice.recv_frame()["type"] for _ in range(3)] == ["welcome", "history", "pong"]
        for n in range(HISTORY_CACHE + 1):  # the oldest leaves memory: the store has it
            alice.send({"type": "chat", "message": f"m{n}"})
        while alice.recv_until("chat")["message"] != f"m{HISTORY_CACHE}":
            pass
        alice.send(encode({"type": "history", "room": "#lobby", "after": 1}) + encode(ping(2)))
        assert [alice.recv_frame()["type"] for _ in range(2)] == ["history", "pong"]


def test_history_and_ids_survive_a_restart(make_server, tmp_path, engine):
    path = str(tmp_path / "h.sqlite3")
    first = make_server(db=path)
    with v2(first.address, "alice", []) as alice:
        alice.send({"type": "chat", "message": "before the restart"})
        before = alice.recv_until("chat")
    first.stop()
    second = make_server(db=path)
    with v2(second.address, "bob", ["history"]):
        pass
    with RawPeer(second.address) as carol:
        carol.send({"type": "join", "username": "carol", "features": ["history"]})
        carol.recv_frame()
        assert carol.recv_frame()["messages"] == [before]
        carol.send({"type": "chat", "message": "after"})
        assert carol.recv_until("chat")["id"] > before["id"]


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
@pytest.mark.engines("threads")
def test_after_kill_9_every_message_relayed_a_batch_interval_before_is_in_history(tmp_path):
    """Crash safety, measured: kill -9 while clients chat, restart, read everything back."""
    path = str(tmp_path / "crash.sqlite3")
    flags = ("--db", path, "--rate-limit", "0")
    with server_program(*flags) as program:
        address = ("127.0.0.1", program.port)
        received: list[tuple[float, dict]] = []
        with v2(address, "alice", []) as alice, v2(address, "bob", []) as bob:
            deadline = time.monotonic() + 1.5
            n = 0
            while time.monotonic() < deadline:  # chat steadily for a second and a half
                alice.send({"type": "chat", "message": f"m{n}"})
                received.append((time.monotonic(), bob.recv_until("chat")))
                n += 1
                time.sleep(0.005)
            killed_at = time.monotonic()
            program.kill()
    safe = [frame for at, frame in received if at < killed_at - 1.0]  # a batch interval before
    assert len(safe) > 50
    with server_program(*flags) as program, RawPeer(("127.0.0.1", program.port)) as carol:
        carol.send({"type": "join", "username": "carol", "features": ["history"]})
        carol.recv_frame()
        history = carol.recv_frame()
        kept = history["messages"]
        while history["more"]:
            carol.send({"type": "history", "room": "#lobby", "before": kept[0]["id"]})
            history = carol.recv_until("history")
            kept = history["messages"] + kept
    assert kept[: len(safe)] == safe  # every one of them, in order, with its id
    assert [m["id"] for m in kept] == sorted({m["id"] for m in kept})


def test_the_server_program_refuses_a_torn_database_in_one_line(tmp_path):
    torn = tmp_path / "torn.sqlite3"
    torn.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)
    command = [sys.executable, "-m", "chat.server", "--port", "0", "--db", str(torn)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3 * TIMEOUT)
    assert done.returncode == 1
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: The history database")
    assert "Traceback" not in done.stderr


def test_the_server_program_keeps_history_in_the_users_data_folder_by_default(tmp_path):
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path)}
    with server_program(env=env) as program, v2(("127.0.0.1", program.port), "a", []) as alice:
        alice.send({"type": "chat", "message": "kept"})
        alice.recv_until("chat")
    assert (Path(tmp_path) / "socket-chat" / "history.sqlite3").exists()


def test_a_stopped_servers_history_is_gone_with_db_memory(make_server):
    first = make_server()  # from Python the default keeps nothing
    with v2(first.address, "alice", []) as alice:
        alice.send({"type": "chat", "message": "fleeting"})
        alice.recv_until("chat")
    first.stop()
    second = make_server()
    with v2(second.address, "bob", ["history"]):
        pass
    with RawPeer(second.address) as carol:
        carol.send({"type": "join", "username": "carol", "features": ["history"]})
        carol.recv_frame()
        assert carol.recv_frame()["messages"] == []


@pytest.mark.parametrize(
    ("frame", "answer"),
    [
        ({"type": "users", "room": "#nowhere"}, "No such room: #nowhere"),
        ({"type": "join_room", "room": "rust"}, "Invalid room name 'rust'"),
        ({"type": "join_room", "room": "#" + "x" * 21}, "Invalid room name"),
        ({"type": "chat", "message": "hi", "room": "#rust"}, "You are not in #rust"),
        ({"type": "leave_room", "room": "#rust"}, "You are not in #rust"),
        ({"type": "private", "to": "alice", "message": "me"}, "to yourself"),
        ({"type": "private", "to": "nobody", "message": "hi"}, "No such user: nobody"),
        ({"type": "private", "to": "old", "message": "hi"}, "cannot receive private messages"),
        ({"type": "history", "room": "#lobby", "before": "soon"}, "History needs 'before'"),
        ({"type": "history", "room": "#lobby", "before": -1}, "History needs 'before'"),
        ({"type": "history", "room": "#lobby", "before": 9, "limit": 0}, "'limit' must be"),
        ({"type": "history", "room": "#rust", "before": 9}, "You are not in #rust"),
        ({"type": "nick", "username": "OLD"}, "Username already taken"),
        ({"type": "nick", "username": "no spaces"}, "Invalid username"),
        ({"type": "join", "username": "x", "features": "rooms"}, "Features must be a list"),
    ],
    ids=lambda value: value if isinstance(value, str) else value["type"],
)
def test_bad_input_for_every_new_field_gets_a_clear_error_and_the_connection_stays(
    server, frame, answer
):
    with RawPeer(server.address) as old:
        old.join("old")
        with v2(server.address, "alice") as alice:
            alice.send(frame)
            error = alice.recv_until("error")
            assert answer in error["message"]
            alice.send({"type": "ping"})
            assert alice.recv_until("pong") == {"type": "pong"}


def test_too_many_rooms_are_refused_on_the_wire(make_server):
    server = make_server(Limits(rate_limit=0, max_rooms_per_user=3, max_rooms=3))
    with v2(server.address, "alice") as alice, v2(server.address, "bob") as bob:
        alice.send({"type": "join_room", "room": "#one"})
        alice.send({"type": "join_room", "room": "#two"})
        alice.send({"type": "join_room", "room": "#three"})
        assert alice.recv_until("error")["message"] == "Too many rooms: at most 3 each"
        bob.send({"type": "join_room", "room": "#four"})
        assert bob.recv_until("error")["message"] == "Too many rooms on this server (3)"


def test_a_huge_history_limit_is_lowered_not_refused(make_server):
    server = make_server(Limits(rate_limit=0))
    with v2(server.address, "alice", ["history"]) as alice:
        for n in range(250):
            alice.send({"type": "chat", "message": f"m{n}"})
        alice.send({"type": "history", "room": "#lobby", "before": 2**53 - 1, "limit": 10**9})
        page = alice.recv_until("history")
    assert len(page["messages"]) == 200 and page["more"] is True
