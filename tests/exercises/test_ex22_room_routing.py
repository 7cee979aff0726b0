"""Exercise 22: Rooms.route sends a chat to its room's members only, and refuses a non-member."""

from __future__ import annotations

from types import ModuleType

import pytest


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex22_room_routing")


@pytest.fixture
def rooms(ex):
    """alice, bob and carol in the lobby; alice and bob also in #rust; carol in #python."""
    rooms = ex.Rooms()
    for user in ("alice", "bob", "carol"):
        rooms.enter(user)
    rooms.enter("alice", "#rust")
    rooms.enter("bob", "#rust")
    rooms.enter("carol", "#python")
    return rooms


def only(sends):
    """The one Send a route returns."""
    assert isinstance(sends, list), f"route() should return a list of Send, not {sends!r}"
    assert len(sends) == 1, f"expected exactly one Send, got {sends!r}"
    return sends[0]


def test_a_chat_reaches_the_members_of_its_room_and_no_one_else(rooms):
    send = only(rooms.route("alice", "#rust", "hi"))
    assert set(send.to) == {"alice", "bob"}, "carol is not in #rust"


def test_the_relayed_frame_names_the_room_the_sender_and_the_message(rooms):
    send = only(rooms.route("alice", "#rust", "hi"))
    assert send.frame == {
        "type": "chat",
        "id": 1,
        "room": "#rust",
        "username": "alice",
        "message": "hi",
    }


def test_members_are_sent_the_chat_in_the_order_they_entered(ex):
    rooms = ex.Rooms()
    for user in ("dave", "alice", "carol", "bob"):
        rooms.enter(user, "#rust")
    assert only(rooms.route("carol", "#rust", "hi")).to == ("dave", "alice", "carol", "bob")


def test_the_sender_is_sent_its_own_chat_too(rooms):
    assert "bob" in only(rooms.route("bob", "#rust", "hi")).to


def test_a_chat_without_a_room_goes_to_the_lobby(rooms):
    send = only(rooms.route("carol", None, "hello everyone"))
    assert send.to == ("alice", "bob", "carol")
    assert send.frame["room"] == "#lobby"


def test_room_names_are_compared_without_regard_to_case(ex):
    rooms = ex.Rooms()
    rooms.enter("alice", "#Rust")
    rooms.enter("bob", "#rust")
    send = only(rooms.route("bob", "#RUST", "hi"))
    assert send.to == ("alice", "bob")
    assert send.frame["room"] == "#Rust", "the room keeps the name its first member gave it"


def test_a_non_member_is_refused_with_an_error_to_itself_alone(rooms):
    send = only(rooms.route("carol", "#rust", "let me in"))
    assert send.to == ("carol",)
    assert send.frame == {"type": "error", "message": "You are not in #rust"}


def test_the_refusal_names_the_room_as_the_sender_wrote_it(rooms):
    send = only(rooms.route("carol", "#RUST", "let me in"))
    assert send.frame == {"type": "error", "message": "You are not in #RUST"}


def test_a_room_that_does_not_exist_is_refused_like_any_other(rooms):
    send = only(rooms.route("alice", "#nowhere", "anyone?"))
    assert send.to == ("alice",)
    assert send.frame == {"type": "error", "message": "You are not in #nowhere"}


def test_a_refused_chat_uses_up_no_message_id(rooms):
    rooms.route("carol", "#rust", "let me in")
    rooms.route("alice", "#nowhere", "anyone?")
    assert only(rooms.route("alice", "#rust", "hi")).frame["id"] == 1


def test_ids_increase_across_rooms(rooms):
    ids = [
        only(rooms.route(user, room, "hi")).frame["id"]
        for user, room in [("alice", "#rust"), ("carol", "#python"), ("bob", None)]
    ]
    assert ids == [1, 2, 3]


def test_a_member_who_left_is_no_longer_sent_the_rooms_chat(rooms):
    rooms.leave("bob", "#rust")
    assert only(rooms.route("alice", "#rust", "still here?")).to == ("alice",)


def test_a_member_who_left_may_no_longer_talk_in_the_room(rooms):
    rooms.leave("bob", "#rust")
    send = only(rooms.route("bob", "#rust", "wait"))
    assert send.to == ("bob",)
    assert send.frame["type"] == "error"


def test_a_chat_in_a_small_room_is_not_sent_to_the_big_lobby(ex):
    rooms = ex.Rooms()
    for number in range(1000):
        rooms.enter(f"user{number}")
    rooms.enter("user7", "#quiet")
    rooms.enter("user8", "#quiet")
    assert only(rooms.route("user8", "#quiet", "psst")).to == ("user7", "user8")
