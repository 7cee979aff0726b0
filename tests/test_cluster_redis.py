"""Several servers, one chat: the guarantees of PROTOCOL.md section 16, against a real Redis.

Every test starts an empty redis-server of its own (tests/cluster_support.py)
and real nodes on it -- in this process, or as ``python -m chat.server``
programs where a node must die by ``kill -9``.  Heartbeats are ten times
faster than the default, by the same mechanism.
"""

from __future__ import annotations

import itertools
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict

import pytest

from tests.cluster_support import (  # noqa: F401 -- fixtures
    FAST,
    Recorder,
    connect,
    local_redis,
    make_node,
    redis_url,
)
from tests.helpers import TIMEOUT, RawPeer, free_port, server_program, wait_for

pytestmark = pytest.mark.slow

ENGINE_SETS = [
    ("threads", "threads"),
    ("selectors", "asyncio"),
    ("threads", "selectors", "asyncio"),
]


def fast_flags(url: str, *more: str) -> tuple[str, ...]:
    """``python -m chat.server`` flags: a node of the chat on ``url``, fast heartbeats."""
    return (
        "--redis",
        url,
        "--heartbeat",
        str(FAST["heartbeat"]),
        "--presence-ttl",
        str(FAST["presence_ttl"]),
        "--rate-limit",
        "0",
        "--db",
        ":memory:",
        *more,
    )


def chats(client: Recorder) -> list[dict]:
    return client.of("chat")


def check_delivery(clients: list[Recorder], sent: dict[str, list[tuple[str, str]]]) -> None:
    """Every member got every message of its rooms once, each sender's in order, ids rising.

    ``sent``: per sender, the (room, text) it sent, in order.  A client is a
    member of the rooms it joined (its ``room_joined`` frames, and #lobby).
    """
    by_id: dict[int, tuple[str, str, str]] = {}
    for client in clients:
        rooms = {"#lobby", *(f["room"] for f in client.of("room_joined"))}
        expected = Counter(
            (sender, room, text)
            for sender, items in sent.items()
            for room, text in items
            if room in rooms
        )
        got = chats(client)
        received = Counter((f["username"], f["room"], f["message"]) for f in got)
        assert received == expected, f"{client.name}: missing or duplicated messages"
        ids = [f["id"] for f in got]
        assert ids == sorted(ids) and len(set(ids)) == len(ids), f"{client.name}: ids not rising"
        for sender, items in sent.items():
            order = [text for room, text in items if room in rooms]
            assert [f["message"] for f in got if f["username"] == sender] == order, sender
        for frame in got:  # one id, one message, on every node
            seen = by_id.setdefault(
                frame["id"], (frame["username"], frame["room"], frame["message"])
            )
            assert seen == (frame["username"], frame["room"], frame["message"])


@pytest.mark.parametrize("engines", ENGINE_SETS, ids=lambda e: "+".join(e))
def test_every_member_on_every_node_gets_every_message_once_in_order_with_rising_ids(
    make_node, connect, engines
):
    nodes = [make_node(engine) for engine in engines]
    clients = [connect(node.address, f"u{n}{i}") for n, node in enumerate(nodes) for i in range(2)]
    for index, client in enumerate(clients):
        for room in ("#a", "#b") if index % 2 else ("#b",):
            client.send({"type": "join_room", "room": room})
            client.first("room_joined", room=room)
    sent: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for round_ in range(15):
        for index, client in enumerate(clients):
            rooms = ("#lobby", "#a", "#b") if index % 2 else ("#lobby", "#b")
            room = rooms[round_ % len(rooms)]
            text = f"{client.name} {round_}"
            client.send({"type": "chat", "room": room, "message": text})
            sent[client.name].append((room, text))
    for client in clients:
        rooms = {"#lobby", *(f["room"] for f in client.of("room_joined"))}
        expected = sum(1 for items in sent.values() for room, _ in items if room in rooms)
        client.wait(lambda c, expected=expected: len(chats(c)) >= expected)
    time.sleep(0.2)  # anything more (a duplicate) would have arrived by now
    check_delivery(clients, sent)


def test_twenty_clients_on_two_nodes_racing_for_one_name_get_exactly_one_welcome(make_node):
    nodes = [make_node(), make_node("asyncio")]
    peers = [RawPeer(nodes[i % 2].address) for i in range(20)]
    names = ["racer", "Racer", "RACER", "rAcEr"]
    barrier = threading.Barrier(len(peers))
    answers: list[dict] = []
    lock = threading.Lock()

    def race(index: int, peer: RawPeer) -> None:
        barrier.wait(TIMEOUT)
        answer = peer.join(names[index % len(names)])
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=race, args=item) for item in enumerate(peers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(2 * TIMEOUT)
    try:
        kinds = Counter(answer["type"] for answer in answers)
        assert kinds == {"welcome": 1, "error": 19}
        assert {a["message"] for a in answers if a["type"] == "error"} == {"Username already taken"}
    finally:
        for peer in peers:
            peer.close()


def test_lists_private_messages_and_renames_span_the_nodes(make_node, connect):
    a, b = make_node(), make_node("selectors")
    alice = connect(a.address, "alice")
    bob = connect(b.address, "bob")
    assert bob.welcome["users"] == ["alice", "bob"]
    alice.first("user_joined", username="bob")
    bob.send({"type": "join_room", "room": "#Rust"})
    bob.first("room_joined", room="#Rust")
    wait_for(lambda: "#Rust" in a.core.rooms())  # news from the other node: within ms
    alice.send({"type": "join_room", "room": "#rust"})
    _, joined = alice.first("room_joined")
    assert joined == {"type": "room_joined", "room": "#Rust", "users": ["bob", "alice"]}
    bob.first("user_joined", room="#Rust", username="alice")
    alice.send({"type": "rooms"})
    _, rooms = alice.first("rooms")
    assert rooms["rooms"] == [{"room": "#lobby", "users": 2}, {"room": "#Rust", "users": 2}]
    bob.send({"type": "users", "room": "#rust"})
    assert bob.first("users")[1]["users"] == ["bob", "alice"]

    alice.send({"type": "private", "to": "BOB", "message": "psst"})
    _, got = bob.first("private")
    assert (got["from"], got["to"], got["message"]) == ("alice", "bob", "psst")
    assert alice.first("private")[1] == got  # the sender gets the same frame back

    bob.send({"type": "nick", "username": "robert"})
    renamed = {"type": "user_renamed", "old": "bob", "new": "robert"}
    for client in (alice, bob):  # once each, though they share two rooms
        _, frame = client.first("user_renamed")
        assert {k: frame[k] for k in renamed} == renamed
    time.sleep(0.2)
    assert len(alice.of("user_renamed")) == 1
    with RawPeer(a.address) as peer:  # the new name is taken on every node, the old one free
        assert peer.join("Robert") == {"type": "error", "message": "Username already taken"}
        assert peer.join("Bob")["type"] == "welcome"


def test_a_name_taken_on_one_node_is_refused_on_another_and_freed_when_its_user_leaves(
    make_node, connect
):
    a, b = make_node(), make_node()
    alice = connect(a.address, "alice")
    with RawPeer(b.address) as peer:
        assert peer.join("ALICE") == {"type": "error", "message": "Username already taken"}
        alice.close()
        wait_for(lambda: "alice" not in b.usernames())
        assert peer.join("Alice")["type"] == "welcome"


def test_a_node_that_starts_later_knows_who_is_where_under_the_names_they_have_now(
    make_node, connect
):
    """Each node keeps its users' records in Redis as they move and rename, for later nodes."""
    a = make_node()
    alice = connect(a.address, "alice")
    alice.send({"type": "join_room", "room": "#rust"})
    alice.send({"type": "join_room", "room": "#go"})
    alice.send({"type": "leave_room", "room": "#rust"})
    alice.send({"type": "nick", "username": "alicia"})
    alice.first("user_renamed")
    alice.send({"type": "chat", "message": "after the rest"})  # the node wrote what came before
    alice.first("chat", message="after the rest")
    b = make_node("selectors")
    assert b.core.rooms() == {"#lobby": ["alicia"], "#go": ["alicia"]}


def test_a_v1_client_on_another_node_is_served_exactly_v1(make_node, connect):
    a, b = make_node(), make_node("asyncio")
    old = connect(b.address, "old", features=None)
    assert set(old.welcome) == {"type", "message", "users", "limits"}
    alice = connect(a.address, "alice")
    alice.send({"type": "join_room", "room": "#rust"})
    alice.send({"type": "chat", "room": "#rust", "message": "not for v1"})
    alice.send({"type": "chat", "message": "hello everyone"})
    alice.send({"type": "nick", "username": "alicia"})
    old.first("user_joined", username="alicia")
    frames = [frame for _, frame in old.frames]
    assert frames == [
        {"type": "user_joined", "username": "alice", "message": "alice joined the chat"},
        {
            "type": "chat",
            "username": "alice",
            "message": "hello everyone",
            "timestamp": frames[1]["timestamp"],
        },
        {"type": "user_left", "username": "alice", "message": "alice left the chat"},
        {"type": "user_joined", "username": "alicia", "message": "alicia joined the chat"},
    ]
    old.send({"type": "private", "to": "alicia", "message": "hi"})  # v1 has no private
    assert old.first("error")[1]["message"].startswith("'private' needs the feature")


def test_history_relayed_by_one_node_is_served_by_another_and_survives_a_restart(
    make_node, connect
):
    a, b = make_node(), make_node("selectors")
    alice = connect(a.address, "alice")
    alice.send({"type": "join_room", "room": "#rust"})
    for text in ("one", "two", "three"):
        alice.send({"type": "chat", "room": "#rust", "message": text})
    alice.wait(lambda c: len(chats(c)) == 3)
    relayed = chats(alice)
    bob = connect(b.address, "bob")
    bob.send({"type": "join_room", "room": "#rust"})
    assert bob.first("history", room="#rust")[1]["messages"] == relayed
    bob.send({"type": "history", "room": "#rust", "before": relayed[2]["id"], "limit": 1})
    _, page = bob.first("history", timeout=TIMEOUT, more=True)
    assert page["messages"] == relayed[1:2]
    a.stop()  # node A goes; what it relayed stays
    c = make_node("asyncio")
    carol = connect(c.address, "carol")
    carol.send({"type": "join_room", "room": "#rust"})
    assert carol.first("history", room="#rust")[1]["messages"] == relayed


def test_a_stopped_node_says_goodbye_and_its_users_leave_every_other_node_at_once(
    make_node, connect
):
    a, b = make_node(), make_node(heartbeat=5, presence_ttl=15)
    alice = connect(a.address, "alice")
    bob = connect(b.address, "bob")
    alice.first("user_joined", username="bob")
    started = time.monotonic()
    b.stop()
    at, _ = alice.first("user_left", username="bob")
    assert at - started < 1.0  # not the 15 s expiry: the node said goodbye
    assert a.usernames() == ["alice"]
    del bob


def test_a_killed_node_s_users_leave_every_other_node_within_the_expiry_under_load(
    redis_url, connect
):
    flags = fast_flags(redis_url)
    with server_program(*flags) as a, server_program(*flags) as b, server_program(*flags) as c:
        survivors = [connect(("127.0.0.1", p.port), f"s{i}") for i, p in enumerate((a, b, a, b))]
        doomed = [connect(("127.0.0.1", c.port), f"d{i}") for i in range(2)]
        everyone = {client.name for client in survivors + doomed}
        for client in survivors:
            client.wait(
                lambda cl: (
                    everyone
                    <= {*cl.welcome["users"], *(f["username"] for f in cl.of("user_joined"))}
                )
            )
        sent: dict[str, list[tuple[str, str]]] = defaultdict(list)
        stop = threading.Event()

        def load() -> None:  # the survivors chat all along
            for n in itertools.count():
                if stop.is_set() or n >= 2000:
                    return
                sender = survivors[n % len(survivors)]
                text = f"{sender.name} {n}"
                sender.send({"type": "chat", "message": text})
                sent[sender.name].append(("#lobby", text))
                time.sleep(0.005)

        chatter = threading.Thread(target=load)
        chatter.start()
        time.sleep(0.3)
        killed_at = time.monotonic()
        c.kill()  # kill -9: no goodbye
        try:
            left = [
                client.first("user_left", timeout=10, username=d.name)[0] - killed_at
                for client in survivors
                for d in doomed
            ]
        finally:
            time.sleep(0.3)
            stop.set()
            chatter.join(TIMEOUT)
        bound = FAST["presence_ttl"] + FAST["heartbeat"]
        assert max(left) < bound + 1.5, left  # the 15 s default: within 20 s, well below 30
        for client in survivors:
            total = sum(len(items) for items in sent.values())
            client.wait(lambda cl, total=total: len(chats(cl)) >= total)
        time.sleep(0.2)
        check_delivery(survivors, sent)  # nothing the survivors relayed was lost


def test_a_node_that_restarts_under_its_name_does_not_bring_back_its_dead_users(redis_url, connect):
    slow = ("--redis", redis_url, "--heartbeat", "1", "--presence-ttl", "10", "--db", ":memory:")
    port = free_port()
    with server_program(*slow) as a:
        alice = connect(("127.0.0.1", a.port), "alice")
        with server_program(*slow, "--port", str(port), "--node-name", "c") as c:
            connect(("127.0.0.1", c.port), "ghost")
            alice.first("user_joined", username="ghost")
            c.kill()
        killed_at = time.monotonic()
        with server_program(*slow, "--port", str(port), "--node-name", "c") as c2:
            at, _ = alice.first("user_left", username="ghost")
            assert at - killed_at < 5  # not the 10 s expiry: the new life ended the old one
            newcomer = connect(("127.0.0.1", c2.port), "newcomer")
            assert newcomer.welcome["users"] == ["alice", "newcomer"]


def test_when_redis_restarts_under_load_every_node_serves_its_own_and_then_resynchronises(
    make_node, connect, local_redis, caplog
):
    caplog.set_level("INFO", logger="chat.cluster")
    a, b = make_node(), make_node("asyncio")
    a1, a2 = connect(a.address, "a1"), connect(a.address, "a2")
    b1, b2 = connect(b.address, "b1"), connect(b.address, "b2")
    a1.wait(lambda c: len(c.of("user_joined")) >= 3)
    counter = itertools.count()
    stop = threading.Event()

    def chatter() -> None:  # a2 and b2 talk all along, through the outage and after
        for n in range(3000):
            if stop.is_set():
                return
            (a2, b2)[n % 2].send({"type": "chat", "message": f"load {n}"})
            time.sleep(0.005)

    load = threading.Thread(target=chatter)
    load.start()

    def say(client: Recorder, n: int = 5) -> list[str]:
        texts = [f"{client.name} {next(counter)}" for _ in range(n)]
        for text in texts:
            client.send({"type": "chat", "message": text})
        return texts

    before = say(a1) + say(b1)
    for client in (a1, a2, b1):
        client.wait(lambda c: {f["message"] for f in chats(c)} >= set(before))
    local_redis.stop()
    wait_for(lambda: not a.core.online and not b.core.online)
    during = say(a1)  # a1's node serves its own clients
    a2.wait(lambda c: {f["message"] for f in chats(c)} >= set(during))
    with RawPeer(a.address) as late:
        assert "try again" in late.join("newbie")["message"]  # a new name cannot be checked
    local_redis.start()  # empty: the stream, the names, the counter all gone
    wait_for(lambda: a.core.online and b.core.online, timeout=10)
    lost = [r for r in caplog.records if r.getMessage().startswith("Lost the link to Redis")]
    assert len(lost) == 2  # one clear line per node, however long the outage
    back = [r for r in caplog.records if r.getMessage().startswith("Back in touch with Redis")]
    assert len(back) == 2
    with RawPeer(b.address) as late:  # presence resynchronised: b sees a's users again
        assert set(late.join("late")["users"]) == {"a1", "a2", "b1", "b2", "late"}
    with RawPeer(a.address) as taken:  # and the names are claimed again
        assert taken.join("B1") == {"type": "error", "message": "Username already taken"}
    after = say(a1) + say(b1)
    for client in (a1, a2, b1, b2):
        client.wait(lambda c: {f["message"] for f in chats(c)} >= set(after), timeout=10)
    stop.set()
    load.join(TIMEOUT)
    time.sleep(0.3)
    for client in (a1, a2, b1, b2):
        got = [f["message"] for f in chats(client)]
        assert len(got) == len(set(got)), f"{client.name} got a message twice"
        ids = [f["id"] for f in chats(client)]
        assert ids == sorted(set(ids)), f"{client.name}: ids not strictly increasing"
    assert not set(during) & {f["message"] for f in chats(b1)}  # lost across nodes: said


def test_a_node_refuses_to_start_when_redis_cannot_be_reached():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "chat.server",
            "--port",
            "0",
            "--redis",
            f"redis://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "Cannot reach Redis at" in result.stderr and "redis-server" in result.stderr


def test_the_cluster_benchmark_counts_every_delivery_and_which_crossed_nodes(make_node):
    from benchmarks.cluster import run_cluster_load

    nodes = [make_node(), make_node("asyncio")]
    result, cross, same = run_cluster_load(
        [node.address for node in nodes], clients=4, messages=10, rate=100, timeout=10
    )
    assert result.delivered == result.expected == 4 * 4 * 10
    assert (result.lost, result.duplicated, result.out_of_order) == (0, 0, 0)
    assert (len(cross), len(same)) == (80, 80)  # half of each client's senders are elsewhere


def test_a_redis_password_never_appears_in_what_the_server_says():
    from chat.cluster import ClusterError
    from chat.server import create_server

    url = f"redis://:s3cret@127.0.0.1:{free_port()}/0"  # nothing listens there
    server = create_server("threads", "127.0.0.1", 0, redis=url)
    with pytest.raises(ClusterError) as refused:
        server.start()
    assert "s3cret" not in str(refused.value) and ":***@" in str(refused.value)


def test_a_piped_client_sees_its_own_messages_before_it_leaves(make_node):
    """Its closing ping's pong waits for its messages to come back through Redis."""
    node = make_node("selectors")
    command = [sys.executable, "-m", "chat.client", "--host", "127.0.0.1"]
    command += ["--port", str(node.address[1]), "--username", "scripted"]
    done = subprocess.run(
        command,
        input="one\n/msg scripted me\ntwo\n",
        capture_output=True,
        text=True,
        timeout=3 * TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    assert "scripted: one" in done.stdout and "scripted: two" in done.stdout
