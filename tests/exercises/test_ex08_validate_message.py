"""Exercise 08: validate_message returns a clean message or says clearly what is wrong."""

from __future__ import annotations

from types import ModuleType

import pytest

from chat.protocol import MAX_MESSAGE_CHARS


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex08_validate_message")


def test_valid_join_is_returned(ex):
    assert ex.validate_message({"type": "join", "username": "alice_01-x"}) == {
        "type": "join",
        "username": "alice_01-x",
    }


def test_unknown_fields_are_dropped(ex):
    message = {"type": "join", "username": "bob", "admin": True}
    assert ex.validate_message(message) == {"type": "join", "username": "bob"}


def test_username_of_twenty_characters_is_accepted(ex):
    name = "a" * 20
    assert ex.validate_message({"type": "join", "username": name})["username"] == name


@pytest.mark.parametrize(
    "username",
    ["", "a" * 21, "bob smith", "bob!", "zoë", "bob\n", None, 42, ["bob"]],
    ids=["empty", "21-chars", "space", "punctuation", "non-ascii", "newline", "missing",
         "number", "list"],
)  # fmt: skip
def test_bad_username_is_refused_with_a_clear_error(ex, username):
    with pytest.raises(ValueError, match=r"(?i)username"):
        ex.validate_message({"type": "join", "username": username})


def test_chat_text_is_stripped(ex):
    assert ex.validate_message({"type": "chat", "message": "  hi there \n"}) == {
        "type": "chat",
        "message": "hi there",
    }


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_chat_is_refused(ex, text):
    with pytest.raises(ValueError, match=r"(?i)empty"):
        ex.validate_message({"type": "chat", "message": text})


def test_chat_at_the_length_limit_is_accepted(ex):
    text = "é" * MAX_MESSAGE_CHARS  # characters are counted, not bytes
    assert ex.validate_message({"type": "chat", "message": text})["message"] == text


def test_chat_over_the_length_limit_is_refused(ex):
    with pytest.raises(ValueError, match=str(MAX_MESSAGE_CHARS)):
        ex.validate_message({"type": "chat", "message": "x" * (MAX_MESSAGE_CHARS + 1)})


def test_length_is_measured_after_stripping(ex):
    text = " " + "x" * MAX_MESSAGE_CHARS + " "
    assert ex.validate_message({"type": "chat", "message": text})["message"] == text.strip()


@pytest.mark.parametrize("text", [None, 7, {"text": "hi"}])
def test_chat_text_that_is_not_a_string_is_refused(ex, text):
    with pytest.raises(ValueError, match=r"(?i)string"):
        ex.validate_message({"type": "chat", "message": text})


def test_ping_is_accepted(ex):
    assert ex.validate_message({"type": "ping", "id": 3}) == {"type": "ping"}


def test_unknown_type_is_refused_and_named(ex):
    with pytest.raises(ValueError, match="dance"):
        ex.validate_message({"type": "dance"})


def test_missing_type_is_refused(ex):
    with pytest.raises(ValueError, match=r"(?i)type"):
        ex.validate_message({"username": "alice"})


def test_message_that_is_not_an_object_is_refused(ex):
    with pytest.raises(ValueError):
        ex.validate_message(["join", "alice"])


def test_errors_are_invalid_message(ex):
    with pytest.raises(ex.InvalidMessage):
        ex.validate_message({"type": "chat", "message": ""})
