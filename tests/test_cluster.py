"""The rules of one node of a shared chat, driven with no sockets and no Redis.

:class:`chat.cluster.core.ClusterCore` is sans-I/O like :class:`chat.core.ChatCore`:
these tests play the broker by hand -- they answer its ``Claim`` actions, hand
it relayed events and tell it when the link goes up or down -- and look at
what it sends.  The same guarantees against a real Redis are in
tests/test_cluster_redis.py.
"""

from __future__ import annotations

import pytest

from chat import protocol
from chat.cluster.core import Claim, ClusterCore, Publish, Release
from chat.core import Fetch, Send
from chat.limits import Limits
from tests.helpers import ALL_FEATURES, sent_to

WALL_TIME = 1_700_000_000.25


def of(actions: list, kind: type) -> list:
    return [action for action in actions if isinstance(action, kind)]


def events(actions: list) -> list[dict]:
    return [action.event for action in of(actions, Publish)]


@pytest.fixture
def core() -> ClusterCore:
    node = ClusterCore(Limits(rate_limit=0), node="me", wallclock=lambda: WALL_TIME)
    node.linked({}, resumed=False)
    return node


def join(core: ClusterCore, conn: str, features: list[str] | None = ALL_FEATURES) -> list:
    """Connect and join as ``conn``; the broker grants the name (and loads the lobby)."""
    core.connect(conn, ("127.0.0.1", 40000))
    actions = core.receive(conn, protocol.encode(protocol.join(conn, features)))
    (claim,) = of(actions, Claim)
    actions = core.claimed([(claim, True)])
    for load in of(actions, Fetch):
        actions += core.history_fetched(load, [], False)
    return actions


def bob_on_node_b(core: ClusterCore, rooms: tuple[str, ...] = ("#lobby",)) -> list:
    user = {"username": "bob", "declared": True, "features": ALL_FEATURES, "rooms": list(rooms)}
    return core.relayed([{"kind": "joined", "node": "b", "user": user}])


def test_a_join_waits_for_the_whole_chat_s_answer_before_the_welcome(core):
    core.connect("alice", ("127.0.0.1", 40000))
    actions = core.receive("alice", protocol.encode(protocol.join("alice", ALL_FEATURES)))
    assert actions == [Claim("alice", "alice")]
    welcome = core.claimed([(actions[0], True)])
    assert sent_to(welcome, "alice")[0]["type"] == "welcome"
    assert events(welcome)[0]["kind"] == "joined"


def test_lines_sent_while_the_name_is_claimed_wait_and_come_after_the_welcome(core):
    core.connect("alice", ("127.0.0.1", 40000))
    data = protocol.encode(protocol.join("alice", ALL_FEATURES)) + protocol.encode(
        {"type": "ping", "id": 1}
    )
    (claim,) = core.receive("alice", data)
    assert core.receive("alice", protocol.encode({"type": "ping", "id": 2})) == []
    answer = core.claimed([(claim, True)])
    (load,) = of(answer, Fetch)  # the lobby's history, from the broker: the pongs wait for it
    answer += core.history_fetched(load, [], False)
    kinds = [(f["type"], f.get("id")) for f in sent_to(answer, "alice")]
    assert kinds == [("welcome", None), ("history", None), ("pong", 1), ("pong", 2)]


def test_a_name_refused_by_the_broker_is_taken_and_the_client_may_try_another(core):
    core.connect("x", ("127.0.0.1", 40000))
    (claim,) = core.receive("x", protocol.encode(protocol.join("bob")))
    refused = core.claimed([(claim, False)])
    assert sent_to(refused, "x") == [{"type": "error", "message": "Username already taken"}]
    (claim,) = core.receive("x", protocol.encode(protocol.join("carol")))
    assert claim.username == "carol"


def test_a_name_claimed_for_a_connection_that_has_gone_is_given_back(core):
    core.connect("x", ("127.0.0.1", 40000))
    (claim,) = core.receive("x", protocol.encode(protocol.join("bob")))
    core.disconnect("x")
    assert core.claimed([(claim, True)]) == [Release("bob")]


def test_two_connections_of_one_node_cannot_claim_one_name_at_once(core):
    core.connect("x", ("127.0.0.1", 40000))
    core.connect("y", ("127.0.0.1", 40001))
    assert of(core.receive("x", protocol.encode(protocol.join("Bob"))), Claim)
    refused = core.receive("y", protocol.encode(protocol.join("bob")))
    assert sent_to(refused, "y") == [{"type": "error", "message": "Username already taken"}]


def test_a_room_message_is_delivered_when_it_comes_back_from_the_relay_with_its_id(core):
    join(core, "alice")
    actions = core.receive("alice", protocol.encode(protocol.chat("hi")))
    assert sent_to(actions, "alice") == []
    (event,) = events(actions)
    delivered = core.relayed([{**event, "id": 42}])
    (chat,) = sent_to(delivered, "alice")
    assert (chat["id"], chat["username"], chat["message"]) == (42, "alice", "hi")


def test_a_relayed_message_numbered_below_the_last_one_is_not_delivered_twice(core):
    join(core, "alice")
    event = {"kind": "chat", "node": "b", "username": "x", "message": "m", "timestamp": 1.0}
    event["room"] = "#lobby"
    assert sent_to(core.relayed([{**event, "id": 5}]), "alice")
    assert core.relayed([{**event, "id": 5}]) == []
    assert core.relayed([{**event, "id": 3}]) == []
    assert core.skipped == 2


def test_users_of_other_nodes_are_in_every_list_and_are_sent_nothing(core):
    join(core, "alice")
    news = bob_on_node_b(core, ("#lobby", "#rust"))
    assert [f["username"] for f in sent_to(news, "alice")] == ["bob"]
    assert all(conn == "alice" for action in of(news, Send) for conn in action.to)
    assert core.usernames == ["alice", "bob"]
    joined = core.receive("alice", protocol.encode({"type": "join_room", "room": "#rust"}))
    assert sent_to(joined, "alice")[0] == {
        "type": "room_joined",
        "room": "#rust",
        "users": ["bob", "alice"],
    }
    assert {"kind": "entered", "node": "me", "username": "alice", "room": "#rust"} in events(joined)


def test_a_private_message_to_another_node_s_user_goes_through_the_relay(core):
    join(core, "alice")
    bob_on_node_b(core)
    (event,) = events(
        core.receive("alice", protocol.encode({"type": "private", "to": "BOB", "message": "hi"}))
    )
    assert (event["kind"], event["to"], event["to_node"]) == ("private", "bob", "b")
    echo = core.relayed([{**event, "id": 7}])
    assert sent_to(echo, "alice")[0]["id"] == 7  # the sender's copy; bob's node sends his


def test_a_dead_node_s_users_leave_every_room_they_were_in(core):
    join(core, "alice")
    core.receive("alice", protocol.encode({"type": "join_room", "room": "#rust"}))
    bob_on_node_b(core, ("#lobby", "#rust"))
    gone = core.node_gone("b")
    assert [(f["type"], f["room"]) for f in sent_to(gone, "alice")] == [
        ("user_left", "#lobby"),
        ("user_left", "#rust"),
    ]
    assert core.usernames == ["alice"]


def test_without_the_broker_a_node_serves_its_own_users_alone(core):
    join(core, "alice")
    join(core, "carol")
    bob_on_node_b(core)
    core.unlinked()
    said = core.receive("alice", protocol.encode(protocol.chat("still here")))
    assert sent_to(said, "carol")[0]["message"] == "still here"  # numbered by this node
    assert events(said) == []
    private = core.receive(
        "alice", protocol.encode({"type": "private", "to": "bob", "message": "hi"})
    )
    assert "cannot be reached" in sent_to(private, "alice")[0]["message"]
    core.connect("x", ("127.0.0.1", 40000))
    refused = core.receive("x", protocol.encode(protocol.join("newbie")))
    assert "try again" in sent_to(refused, "x")[0]["message"]


def test_coming_back_the_node_syncs_who_is_elsewhere_and_reloads_room_history(core):
    join(core, "alice")
    bob_on_node_b(core)
    core.unlinked()
    user = {"username": "dave", "declared": False, "features": [], "rooms": ["#lobby"]}
    back = core.linked({"b": [user]}, resumed=True)
    assert [(f["type"], f["username"]) for f in sent_to(back, "alice")] == [
        ("user_left", "bob"),
        ("user_joined", "dave"),
    ]
    assert [fetch.room for fetch in of(back, Fetch)] == ["#lobby"]


def test_a_user_whose_name_was_taken_while_the_node_was_cut_off_must_join_again(core):
    join(core, "alice")
    core.unlinked()
    back = core.linked({}, ["alice"], resumed=True)
    assert "join again" in sent_to(back, "alice")[0]["message"]
    assert core.usernames == []


def test_a_pong_waits_until_the_messages_sent_before_it_came_back_from_the_relay(core):
    """As on one server, a pong says: everything you sent before was handled."""
    join(core, "alice")
    [chat] = events(core.receive("alice", protocol.encode(protocol.chat("hi"))))
    assert core.receive("alice", protocol.encode({"type": "ping", "id": 7})) == []
    echoed = core.relayed([{**chat, "id": 41}])
    assert [(f["type"], f.get("id")) for f in sent_to(echoed, "alice")] == [
        ("chat", 41),
        ("pong", 7),
    ]


def test_a_pong_with_nothing_in_flight_is_sent_at_once(core):
    join(core, "alice")
    answer = core.receive("alice", protocol.encode({"type": "ping", "id": 1}))
    assert sent_to(answer, "alice") == [{"type": "pong", "id": 1}]


def test_pongs_waiting_for_the_relay_are_sent_when_the_link_is_lost(core):
    join(core, "alice")
    core.receive("alice", protocol.encode(protocol.chat("into the void")))
    assert core.receive("alice", protocol.encode({"type": "ping", "id": 2})) == []
    assert sent_to(core.unlinked(), "alice") == [{"type": "pong", "id": 2}]


def test_a_client_gone_before_its_messages_came_back_leaves_no_pong_behind(core):
    join(core, "alice")
    [chat] = events(core.receive("alice", protocol.encode(protocol.chat("bye"))))
    core.receive("alice", protocol.encode({"type": "ping", "id": 3}))
    core.disconnect("alice")
    echoed = core.relayed([{**chat, "id": 42}])
    assert not [a for a in echoed if isinstance(a, Send) and "alice" in a.to]
