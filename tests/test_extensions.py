"""The protocol's extensions, as rules: features, rooms, private messages, nicknames, history.

Like tests/test_core.py, these drive :class:`chat.core.ChatCore` with no
sockets: bytes in, actions out.  PROTOCOL.md (sections 5-9) is what they check;
tests/test_extensions_server.py checks the same over real sockets.
"""

from __future__ import annotations

import json

import pytest

from chat import protocol
from chat.core import ChatCore, Fetch, Send, Store
from chat.limits import HISTORY_CACHE, Limits
from tests.helpers import ALL_FEATURES

WALL_TIME = 1_700_000_000.5


@pytest.fixture
def core() -> ChatCore:
    return ChatCore(Limits(rate_limit=0), wallclock=lambda: WALL_TIME)


def frames_to(actions: list, conn: str) -> list[dict]:
    """The messages the actions send to ``conn``, in order."""
    messages = []
    for action in actions:
        if isinstance(action, Send) and conn in action.to:
            messages += [json.loads(line) for line in action.data.splitlines()]
    return messages


def send(core: ChatCore, conn: str, frame: dict) -> list:
    return core.receive(conn, protocol.encode(frame))


def enter(core: ChatCore, conn: str, features: list[str] | None = ALL_FEATURES) -> list[dict]:
    """Connect and join as ``conn``, declaring ``features`` (None: a v1 client)."""
    core.connect(conn, ("127.0.0.1", 40000 + core.connection_count))
    return frames_to(send(core, conn, protocol.join(conn, features)), conn)


def say(core: ChatCore, conn: str, text: str, room: str | None = None) -> list:
    return send(core, conn, protocol.chat(text, room=room))


# --------------------------------------------------------------------------
# Features: negotiated in the join; nothing declared, nothing new


def test_a_client_that_declares_nothing_gets_a_v1_welcome(core):
    [welcome] = enter(core, "old", None)
    assert set(welcome) == {"type", "message", "users", "limits"}


def test_a_client_that_declares_features_is_told_what_is_offered_and_its_rooms(core):
    welcome = enter(core, "alice")[0]
    assert welcome["features"] == ["history", "nick", "private", "rooms"]
    assert welcome["rooms"] == ["#lobby"]


def test_features_the_server_does_not_know_are_ignored(core):
    welcome = enter(core, "alice", ["rooms", "teleport"])[0]
    assert "teleport" not in welcome["features"]
    assert frames_to(send(core, "alice", protocol.join_room("#rust")), "alice")[0]["type"] == (
        "room_joined"
    )


@pytest.mark.parametrize(
    "features", ["rooms", ["x"] * 17, ["x" * 33], [1]], ids=["string", "17", "long", "number"]
)
def test_a_bad_list_of_features_is_refused(core, features):
    core.connect("alice", ("127.0.0.1", 1))
    [answer] = frames_to(
        send(core, "alice", {"type": "join", "username": "a", "features": features}), "alice"
    )
    assert answer["type"] == "error" and "eature" in answer["message"]


@pytest.mark.parametrize(
    ("frame", "feature"),
    [
        (protocol.join_room("#rust"), "rooms"),
        ({"type": "rooms"}, "rooms"),
        ({"type": "private", "to": "bob", "message": "hi"}, "private"),
        ({"type": "nick", "username": "bob"}, "nick"),
        ({"type": "history", "room": "#lobby", "before": 5}, "history"),
        (protocol.chat("hi", room="#rust"), "rooms"),
    ],
)
def test_a_frame_of_a_feature_not_declared_is_refused_naming_the_feature(core, frame, feature):
    enter(core, "alice", [])
    [answer] = frames_to(send(core, "alice", frame), "alice")
    assert answer["type"] == "error"
    assert f"needs the feature '{feature}'" in answer["message"]


def test_a_v1_client_may_name_the_lobby_in_its_chat(core):
    enter(core, "old", None)
    [relayed] = frames_to(say(core, "old", "hi", room="#lobby"), "old")
    assert relayed == {"type": "chat", "username": "old", "message": "hi", "timestamp": WALL_TIME}


# --------------------------------------------------------------------------
# What a v1 client sees of the others


def test_a_v1_client_gets_exactly_v1_frames_from_a_mixed_room(core):
    enter(core, "old", None)
    enter(core, "new")
    joined = frames_to(send(core, "new", protocol.join("x")), "new")  # already joined: error
    assert joined[0]["type"] == "error"
    actions = say(core, "new", "hello")
    assert frames_to(actions, "old") == [
        {"type": "chat", "username": "new", "message": "hello", "timestamp": WALL_TIME}
    ]
    assert frames_to(actions, "new")[0] == {
        "type": "chat",
        "id": 1,
        "room": "#lobby",
        "username": "new",
        "message": "hello",
        "timestamp": WALL_TIME,
    }


def test_a_v1_client_is_told_of_arrivals_and_departures_in_v1_frames(core):
    enter(core, "old", None)
    arrival = frames_to(
        core.connect("new", "h:1") + send(core, "new", protocol.join("new", ALL_FEATURES)), "old"
    )
    assert arrival == [protocol.user_joined("new")]
    assert frames_to(core.disconnect("new"), "old") == [protocol.user_left("new")]


def test_a_v1_client_never_hears_of_other_rooms(core):
    enter(core, "old", None)
    enter(core, "alice")
    enter(core, "bob")
    actions = send(core, "alice", protocol.join_room("#rust"))
    actions += send(core, "bob", protocol.join_room("#rust"))
    actions += say(core, "alice", "in rust", room="#rust")
    actions += send(core, "alice", protocol.leave_room("#rust"))
    assert frames_to(actions, "old") == []


def test_a_v1_client_sees_a_user_who_leaves_the_lobby_go(core):
    enter(core, "old", None)
    enter(core, "alice")
    [notice] = frames_to(send(core, "alice", protocol.leave_room("#lobby")), "old")
    assert notice == {"type": "user_left", "username": "alice", "message": "alice left #lobby"}


def test_an_action_reaches_v1_clients_as_a_message_with_the_flag(core):
    enter(core, "old", None)
    enter(core, "alice")
    [relayed] = frames_to(send(core, "alice", protocol.chat("waves", action=True)), "old")
    assert relayed["message"] == "waves" and relayed["action"] is True


# --------------------------------------------------------------------------
# Rooms


def test_joining_a_room_answers_with_its_members_and_tells_them(core):
    enter(core, "alice")
    enter(core, "bob")
    send(core, "alice", protocol.join_room("#rust"))
    actions = send(core, "bob", protocol.join_room("#rust"))
    assert frames_to(actions, "bob")[0] == protocol.room_joined("#rust", ["alice", "bob"])
    assert frames_to(actions, "alice") == [
        {"type": "user_joined", "username": "bob", "room": "#rust", "message": "bob joined #rust"}
    ]


def test_room_names_are_compared_without_case_and_shown_as_first_spelled(core):
    enter(core, "alice")
    enter(core, "bob")
    send(core, "alice", protocol.join_room("#Rust"))
    assert frames_to(send(core, "bob", protocol.join_room("#RUST")), "bob")[0]["room"] == "#Rust"
    assert core.rooms()["#Rust"] == ["alice", "bob"]


@pytest.mark.parametrize("room", ["rust", "#", "#" + "x" * 21, "#a b", 7, None])
def test_a_bad_room_name_is_refused_with_the_rule(core, room):
    enter(core, "alice")
    [answer] = frames_to(send(core, "alice", {"type": "join_room", "room": room}), "alice")
    assert answer["type"] == "error" and "oom" in answer["message"]


def test_joining_a_room_twice_is_refused(core):
    enter(core, "alice")
    send(core, "alice", protocol.join_room("#rust"))
    [answer] = frames_to(send(core, "alice", protocol.join_room("#rust")), "alice")
    assert answer == protocol.error("Already in #rust")


def test_leaving_a_room_answers_and_tells_the_others(core):
    enter(core, "alice")
    enter(core, "bob")
    for name in ("alice", "bob"):
        send(core, name, protocol.join_room("#rust"))
    actions = send(core, "alice", protocol.leave_room("#rust"))
    assert frames_to(actions, "alice") == [protocol.room_left("#rust")]
    assert frames_to(actions, "bob") == [
        {"type": "user_left", "username": "alice", "room": "#rust", "message": "alice left #rust"}
    ]


def test_leaving_a_room_you_are_not_in_is_refused(core):
    enter(core, "alice")
    [answer] = frames_to(send(core, "alice", protocol.leave_room("#rust")), "alice")
    assert answer == protocol.error("You are not in #rust")


def test_a_chat_reaches_its_room_only(core):
    for name in ("alice", "bob", "carol"):
        enter(core, name)
    for name in ("alice", "bob"):
        send(core, name, protocol.join_room("#rust"))
    actions = say(core, "alice", "hi rust", room="#rust")
    assert frames_to(actions, "bob")[0]["message"] == "hi rust"
    assert frames_to(actions, "alice")[0]["room"] == "#rust"
    assert frames_to(actions, "carol") == []


def test_a_chat_without_a_room_goes_to_the_lobby(core):
    enter(core, "alice")
    assert frames_to(say(core, "alice", "hi"), "alice")[0]["room"] == "#lobby"


def test_chatting_in_a_room_you_are_not_in_is_refused(core):
    enter(core, "alice")
    enter(core, "bob")
    send(core, "bob", protocol.join_room("#rust"))
    actions = say(core, "alice", "let me in", room="#rust")
    assert frames_to(actions, "alice") == [protocol.error("You are not in #rust")]
    assert frames_to(actions, "bob") == []


def test_every_relayed_message_gets_a_strictly_larger_id(core):
    enter(core, "alice")
    enter(core, "bob")
    send(core, "alice", protocol.join_room("#rust"))
    ids = [
        frames_to(say(core, "alice", f"m{n}", room), "alice")[0]["id"]
        for n, room in enumerate(["#lobby", "#rust", "#lobby", "#rust"])
    ]
    ids.append(
        frames_to(send(core, "alice", {"type": "private", "to": "bob", "message": "x"}), "bob")[0][
            "id"
        ]
    )
    assert ids == sorted(set(ids)) and ids[0] >= 1


def test_rooms_lists_every_room_and_how_many_are_in_it(core):
    enter(core, "alice")
    enter(core, "bob")
    send(core, "alice", protocol.join_room("#rust"))
    [answer] = frames_to(send(core, "bob", {"type": "rooms"}), "bob")
    assert answer == protocol.rooms_list([("#lobby", 2), ("#rust", 1)])


def test_users_lists_a_rooms_members_and_the_lobby_by_default(core):
    enter(core, "alice")
    enter(core, "bob")
    send(core, "alice", protocol.join_room("#rust"))
    assert frames_to(send(core, "bob", {"type": "users", "room": "#rust"}), "bob") == [
        protocol.users_list("#rust", ["alice"])
    ]
    assert frames_to(send(core, "bob", {"type": "users"}), "bob")[0]["users"] == ["alice", "bob"]


def test_users_of_a_room_that_does_not_exist_is_refused(core):
    enter(core, "alice")
    [answer] = frames_to(send(core, "alice", {"type": "users", "room": "#nowhere"}), "alice")
    assert answer == protocol.error("No such room: #nowhere")


def test_an_empty_room_goes_away_and_the_lobby_stays(core):
    enter(core, "alice")
    send(core, "alice", protocol.join_room("#rust"))
    send(core, "alice", protocol.leave_room("#rust"))
    send(core, "alice", protocol.leave_room("#lobby"))
    assert core.rooms() == {"#lobby": []}


def test_a_disconnect_tells_each_room_the_user_was_in(core):
    for name in ("alice", "bob"):
        enter(core, name)
        send(core, name, protocol.join_room("#rust"))
    notices = frames_to(core.disconnect("alice"), "bob")
    assert [n["room"] for n in notices] == ["#lobby", "#rust"]
    assert {n["message"] for n in notices} == {"alice left the chat"}


def test_a_user_may_be_in_only_so_many_rooms(core):
    small = ChatCore(Limits(rate_limit=0, max_rooms_per_user=2))
    enter(small, "alice")  # the lobby is one
    send(small, "alice", protocol.join_room("#one"))
    [answer] = frames_to(send(small, "alice", protocol.join_room("#two")), "alice")
    assert answer == protocol.error("Too many rooms: at most 2 each")


def test_a_server_holds_only_so_many_rooms(core):
    small = ChatCore(Limits(rate_limit=0, max_rooms=2))
    enter(small, "alice")
    enter(small, "bob")
    send(small, "alice", protocol.join_room("#one"))
    [answer] = frames_to(send(small, "bob", protocol.join_room("#two")), "bob")
    assert answer == protocol.error("Too many rooms on this server (2)")


# --------------------------------------------------------------------------
# Private messages


def test_a_private_message_reaches_its_receiver_and_comes_back_to_the_sender(core):
    for name in ("alice", "bob", "carol"):
        enter(core, name)
    actions = send(core, "alice", {"type": "private", "to": "BOB", "message": " psst "})
    expected = {
        "type": "private",
        "id": 1,
        "from": "alice",
        "to": "bob",
        "message": "psst",
        "timestamp": WALL_TIME,
    }
    assert frames_to(actions, "bob") == [expected]
    assert frames_to(actions, "alice") == [expected]
    assert frames_to(actions, "carol") == []


@pytest.mark.parametrize(
    ("to", "reason"),
    [
        ("nobody", "No such user: nobody"),
        ("alice", "You cannot send a private message to yourself"),
        ("old", "old's client cannot receive private messages"),
    ],
)
def test_a_private_message_that_cannot_be_delivered_is_refused(core, to, reason):
    enter(core, "alice")
    enter(core, "old", None)
    actions = send(core, "alice", {"type": "private", "to": to, "message": "hi"})
    assert frames_to(actions, "alice") == [protocol.error(reason)]
    assert frames_to(actions, "old") == []


@pytest.mark.parametrize("frame", [{"to": 5, "message": "x"}, {"to": "bob"}, {"message": "x"}])
def test_a_private_message_without_a_receiver_or_text_is_refused(core, frame):
    enter(core, "alice")
    enter(core, "bob")
    [answer] = frames_to(send(core, "alice", {"type": "private", **frame}), "alice")
    assert answer["type"] == "error"


# --------------------------------------------------------------------------
# Nicknames


def test_a_rename_is_told_once_to_everyone_sharing_a_room(core):
    for name in ("alice", "bob", "carol"):
        enter(core, name)
    for name in ("alice", "bob"):
        send(core, name, protocol.join_room("#rust"))
    send(core, "carol", protocol.leave_room("#lobby"))
    actions = send(core, "alice", {"type": "nick", "username": "alicia"})
    renamed = protocol.user_renamed("alice", "alicia")
    assert frames_to(actions, "alice") == [renamed]
    assert frames_to(actions, "bob") == [renamed]  # once, though they share two rooms
    assert frames_to(actions, "carol") == []
    assert core.usernames == ["alicia", "bob", "carol"]


def test_a_client_without_nick_sees_the_old_name_leave_and_the_new_come(core):
    enter(core, "alice")
    enter(core, "old", None)
    actions = send(core, "alice", {"type": "nick", "username": "alicia"})
    assert frames_to(actions, "old") == [
        {"type": "user_left", "username": "alice", "message": "alice left the chat"},
        {"type": "user_joined", "username": "alicia", "message": "alicia joined the chat"},
    ]


def test_a_name_taken_by_someone_else_is_refused_without_regard_to_case(core):
    enter(core, "alice")
    enter(core, "bob")
    [answer] = frames_to(send(core, "alice", {"type": "nick", "username": "BOB"}), "alice")
    assert answer == protocol.error("Username already taken")


def test_changing_only_the_case_of_your_own_name_is_allowed(core):
    enter(core, "alice")
    [answer] = frames_to(send(core, "alice", {"type": "nick", "username": "Alice"}), "alice")
    assert answer == protocol.user_renamed("alice", "Alice")


def test_your_own_name_again_is_refused(core):
    enter(core, "alice")
    [answer] = frames_to(send(core, "alice", {"type": "nick", "username": "alice"}), "alice")
    assert answer == protocol.error("You are already alice")


def test_after_a_rename_the_old_name_is_free_and_messages_carry_the_new_one(core):
    enter(core, "alice")
    send(core, "alice", {"type": "nick", "username": "alicia"})
    assert enter(core, "ALICE")[0]["type"] == "welcome"
    assert frames_to(say(core, "alice", "hi"), "alice")[0]["username"] == "alicia"  # conn "alice"


def test_an_invalid_new_name_is_refused_with_the_rule(core):
    enter(core, "alice")
    [answer] = frames_to(send(core, "alice", {"type": "nick", "username": "a b"}), "alice")
    assert "Invalid username" in answer["message"]


# --------------------------------------------------------------------------
# History


def test_a_client_with_history_gets_the_lobbys_latest_messages_after_its_welcome(core):
    enter(core, "alice")
    relayed = [frames_to(say(core, "alice", f"m{n}"), "alice")[0] for n in range(3)]
    welcome, history = enter(core, "bob")
    assert welcome["type"] == "welcome"
    assert history == protocol.history("#lobby", relayed, False)


def test_history_holds_the_latest_50_and_says_there_are_more(core):
    enter(core, "alice", [])
    for n in range(60):
        say(core, "alice", f"m{n}")
    history = enter(core, "bob")[1]
    assert [m["message"] for m in history["messages"]] == [f"m{n}" for n in range(10, 60)]
    assert history["more"] is True


def test_entering_a_room_gives_its_history_after_room_joined(core):
    enter(core, "alice")
    enter(core, "bob")
    send(core, "alice", protocol.join_room("#rust"))
    say(core, "alice", "before bob", room="#rust")
    answer = frames_to(send(core, "bob", protocol.join_room("#rust")), "bob")
    assert [a["type"] for a in answer] == ["room_joined", "history"]
    assert [m["message"] for m in answer[1]["messages"]] == ["before bob"]


def test_a_client_without_history_gets_none(core):
    enter(core, "alice")
    say(core, "alice", "hello")
    assert [f["type"] for f in enter(core, "bob", ["rooms"])] == ["welcome"]


def test_private_messages_are_never_in_history(core):
    enter(core, "alice")
    enter(core, "bob")
    send(core, "alice", {"type": "private", "to": "bob", "message": "secret"})
    assert enter(core, "carol")[1]["messages"] == []


def test_paging_back_gives_the_messages_before_an_id_oldest_first(core):
    enter(core, "alice")
    ids = [frames_to(say(core, "alice", f"m{n}"), "alice")[0]["id"] for n in range(10)]
    request = {"type": "history", "room": "#lobby", "before": ids[5], "limit": 3}
    [page] = frames_to(send(core, "alice", request), "alice")
    assert [m["message"] for m in page["messages"]] == ["m2", "m3", "m4"]
    assert page["more"] is True


def test_paging_forward_gives_what_came_after_an_id(core):
    enter(core, "alice")
    ids = [frames_to(say(core, "alice", f"m{n}"), "alice")[0]["id"] for n in range(5)]
    request = {"type": "history", "room": "#lobby", "after": ids[1]}
    [page] = frames_to(send(core, "alice", request), "alice")
    assert [m["message"] for m in page["messages"]] == ["m2", "m3", "m4"]
    assert page["more"] is False


def test_without_a_store_paging_back_ends_at_the_oldest_message_in_memory(core):
    """Without a store, memory is all the history there is: nothing older is promised."""
    enter(core, "alice")
    for n in range(HISTORY_CACHE + 30):
        say(core, "alice", f"m{n}")
    page = enter(core, "bob")[1]
    pages, asked = [page], []
    while page["more"]:
        request = {"type": "history", "room": "#lobby", "before": page["messages"][0]["id"]}
        answer = send(core, "bob", request)
        asked += [a for a in answer if isinstance(a, Fetch)]
        [page] = frames_to(answer, "bob")
        pages.insert(0, page)
    kept = [m["message"] for page in pages for m in page["messages"]]
    assert kept == [f"m{n}" for n in range(30, HISTORY_CACHE + 30)]
    assert asked == []  # nothing to ask a store for


def test_a_huge_limit_is_lowered_to_the_maximum_page(core):
    enter(core, "alice")
    for n in range(250):
        say(core, "alice", f"m{n}")
    request = {"type": "history", "room": "#lobby", "before": 10**9, "limit": 10**9}
    [page] = frames_to(send(core, "alice", request), "alice")
    assert len(page["messages"]) == protocol.MAX_HISTORY_PAGE


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"before": 0},
        {"before": -3},
        {"before": "5"},
        {"before": True},
        {"before": 5, "after": 2},
    ],
    ids=["none", "zero", "negative", "string", "bool", "both"],
)
def test_a_history_request_with_a_bad_bound_is_refused(core, fields):
    enter(core, "alice")
    [answer] = frames_to(
        send(core, "alice", {"type": "history", "room": "#lobby", **fields}), "alice"
    )
    assert answer == protocol.error("History needs 'before' or 'after': a positive message id")


@pytest.mark.parametrize("limit", [0, -1, 2.5, "50"])
def test_a_history_request_with_a_bad_limit_is_refused(core, limit):
    enter(core, "alice")
    request = {"type": "history", "room": "#lobby", "before": 9, "limit": limit}
    [answer] = frames_to(send(core, "alice", request), "alice")
    assert answer == protocol.error("History 'limit' must be a positive whole number")


def test_only_a_member_may_read_a_rooms_history(core):
    enter(core, "alice")
    enter(core, "bob")
    send(core, "bob", protocol.join_room("#secret"))
    request = {"type": "history", "room": "#secret", "before": 100}
    assert frames_to(send(core, "alice", request), "alice") == [
        protocol.error("You are not in #secret")
    ]


# --------------------------------------------------------------------------
# History with a store: what the core asks of it, and what it does with the answer


@pytest.fixture
def stored() -> ChatCore:
    core = ChatCore(Limits(rate_limit=0), wallclock=lambda: WALL_TIME, stored_history=True)
    core.continue_ids(500)
    return core


def fetches(actions: list) -> list[Fetch]:
    return [a for a in actions if isinstance(a, Fetch)]


def test_every_relayed_room_message_is_handed_to_the_store(stored):
    enter(stored, "alice", [])
    stored_frames = [a.frame for a in say(stored, "alice", "keep me") if isinstance(a, Store)]
    assert [f["message"] for f in stored_frames] == ["keep me"]
    assert stored_frames[0]["id"] == 500  # ids continue where the store says


def test_private_messages_are_never_handed_to_the_store(stored):
    enter(stored, "alice")
    enter(stored, "bob")
    actions = send(stored, "alice", {"type": "private", "to": "bob", "message": "secret"})
    assert not [a for a in actions if isinstance(a, Store)]


def test_the_first_member_of_an_idle_room_makes_the_core_load_it_once(stored):
    core = stored
    actions = core.connect("a", "h:1") + send(core, "a", protocol.join("alice", ALL_FEATURES))
    [load] = fetches(actions)
    assert (load.room, load.before, load.after, load.conn) == ("#lobby", None, None, None)
    assert (
        fetches(core.connect("b", "h:2") + send(core, "b", protocol.join("bob", ALL_FEATURES)))
        == []
    )


def test_history_waits_for_the_load_and_holds_nothing_received_live(stored):
    core = stored
    core.connect("a", "h:1")
    [load] = fetches(send(core, "a", protocol.join("alice", ALL_FEATURES)))
    live = frames_to(say(core, "a", "said while loading"), "a")[0]
    old = [
        protocol.chat_broadcast("ghost", f"old {n}", 1.0, message_id=n, room="#lobby")
        for n in (7, 8)
    ]
    [answer] = frames_to(core.history_fetched(load, old, True), "a")
    assert answer == protocol.history("#lobby", old, True)
    assert live["id"] not in [m["id"] for m in answer["messages"]]


def test_a_page_older_than_memory_is_fetched_and_forwarded(stored):
    enter(stored, "alice")
    [load] = fetches(send(stored, "alice", protocol.join_room("#rust")))
    stored.history_fetched(load, [], True)  # the store has older messages than we hold
    request = {"type": "history", "room": "#rust", "before": 400, "limit": 10}
    [page] = fetches(send(stored, "alice", request))
    assert (page.room, page.before, page.limit, page.conn) == ("#rust", 400, 10, "alice")
    found = [protocol.chat_broadcast("x", "old", 1.0, message_id=3, room="#rust")]
    assert frames_to(stored.history_fetched(page, found, False), "alice") == [
        protocol.history("#rust", found, False)
    ]


def test_a_load_for_a_room_that_emptied_meanwhile_is_dropped(stored):
    enter(stored, "alice")
    [load] = fetches(send(stored, "alice", protocol.join_room("#rust")))
    send(stored, "alice", protocol.leave_room("#rust"))
    [again] = fetches(send(stored, "alice", protocol.join_room("#rust")))
    assert stored.history_fetched(load, [], False) == []  # the earlier life's answer
    assert frames_to(stored.history_fetched(again, [], False), "alice")[0]["type"] == "history"


# --------------------------------------------------------------------------
# A pong comes after every answer to what came before its ping, those from the store too


def ping(core: ChatCore, conn: str, request_id: int) -> list:
    return send(core, conn, {"type": "ping", "id": request_id})


def kinds(actions: list, conn: str) -> list[tuple[str, object]]:
    return [(f["type"], f.get("id")) for f in frames_to(actions, conn)]


def test_a_pong_waits_for_the_history_the_store_is_loading(stored):
    stored.connect("a", "h:1")
    asked = send(stored, "a", protocol.join("alice", ALL_FEATURES)) + ping(stored, "a", 1)
    [load] = fetches(asked)
    assert kinds(asked, "a") == [("welcome", None)]
    answer = stored.history_fetched(load, [], False)
    assert kinds(answer, "a") == [("history", None), ("pong", 1)]


def test_a_pong_waits_for_a_page_the_store_reads(stored):
    stored.connect("a", "h:1")
    [load] = fetches(send(stored, "a", protocol.join("alice", ALL_FEATURES)))
    stored.history_fetched(load, [], True)  # older messages than memory holds are on disk
    request = {"type": "history", "room": "#lobby", "after": 1}
    asked = send(stored, "a", request) + ping(stored, "a", 2) + ping(stored, "a", 3)
    [page] = fetches(asked)
    assert kinds(asked, "a") == []
    answer = stored.history_fetched(page, [], False)
    assert kinds(answer, "a") == [("history", None), ("pong", 2), ("pong", 3)]


def test_a_pong_waits_for_nothing_that_will_never_come(stored):
    """Leaving a room that is still loading: its history will not be sent, so the pong is."""
    stored.connect("a", "h:1")
    [load] = fetches(send(stored, "a", protocol.join("alice", ALL_FEATURES)))
    stored.history_fetched(load, [], False)
    [rust] = fetches(send(stored, "a", protocol.join_room("#rust")))
    assert kinds(ping(stored, "a", 4), "a") == []
    left = send(stored, "a", protocol.leave_room("#rust"))
    assert kinds(left, "a") == [("room_left", None), ("pong", 4)]
    assert stored.history_fetched(rust, [], False) == []
