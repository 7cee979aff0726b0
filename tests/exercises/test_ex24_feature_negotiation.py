"""Exercise 24: welcome_for negotiates features: v1 gets exactly v1, v2 gets what both named."""

from __future__ import annotations

from types import ModuleType

import pytest

EVERYTHING = ["rooms", "private", "history", "nick"]


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex24_feature_negotiation")


def test_a_join_without_features_gets_exactly_the_v1_welcome(ex):
    welcome, _ = ex.welcome_for({"type": "join", "username": "olga"}, ["olga"])
    assert welcome == {
        "type": "welcome",
        "message": "Welcome to the chat, olga!",
        "users": ["olga"],
    }


def test_a_join_without_features_uses_none(ex):
    _, features = ex.welcome_for({"type": "join", "username": "olga"}, ["olga"])
    assert features == frozenset()


def test_a_join_with_features_is_told_what_the_server_offers_and_its_rooms(ex):
    join = {"type": "join", "username": "alice", "features": EVERYTHING}
    welcome, _ = ex.welcome_for(join, ["olga", "alice"])
    assert welcome == {
        "type": "welcome",
        "message": "Welcome to the chat, alice!",
        "users": ["olga", "alice"],
        "features": ["history", "nick", "private", "rooms"],
        "rooms": ["#lobby"],
    }


def test_a_client_that_declares_everything_offered_uses_everything(ex):
    join = {"type": "join", "username": "alice", "features": EVERYTHING}
    _, features = ex.welcome_for(join, ["alice"])
    assert features == frozenset(EVERYTHING)


def test_the_connection_uses_only_the_features_both_sides_named(ex):
    join = {"type": "join", "username": "carol", "features": ["rooms", "history"]}
    _, features = ex.welcome_for(join, ["carol"])
    assert features == {"rooms", "history"}


def test_the_welcome_lists_what_the_server_offers_not_only_what_both_named(ex):
    join = {"type": "join", "username": "carol", "features": ["rooms"]}
    welcome, _ = ex.welcome_for(join, ["carol"])
    assert welcome["features"] == ["history", "nick", "private", "rooms"]


def test_features_the_server_does_not_know_are_ignored(ex):
    join = {"type": "join", "username": "zed", "features": ["rooms", "telepathy", "teleport"]}
    _, features = ex.welcome_for(join, ["zed"])
    assert features == {"rooms"}


def test_an_empty_list_is_a_v2_client_that_uses_nothing(ex):
    welcome, features = ex.welcome_for({"type": "join", "username": "eve", "features": []}, [])
    assert features == frozenset()
    assert welcome["features"] == ["history", "nick", "private", "rooms"]
    assert welcome["rooms"] == ["#lobby"]


def test_a_server_that_offers_less_uses_only_what_it_offers(ex):
    join = {"type": "join", "username": "alice", "features": EVERYTHING}
    welcome, features = ex.welcome_for(join, ["alice"], offered=("rooms",))
    assert welcome["features"] == ["rooms"]
    assert features == {"rooms"}


def test_the_features_in_the_welcome_are_a_json_list(ex):
    join = {"type": "join", "username": "alice", "features": EVERYTHING}
    welcome, _ = ex.welcome_for(join, ["alice"])
    assert type(welcome["features"]) is list, "JSON has lists; a tuple or set does not belong"


def test_what_the_connection_uses_is_a_frozenset(ex):
    join = {"type": "join", "username": "alice", "features": ["rooms", "rooms"]}
    _, features = ex.welcome_for(join, ["alice"])
    assert features == frozenset({"rooms"})
    assert isinstance(features, frozenset)
