"""Exercise 06: encode_frame() writes one compact UTF-8 JSON line per message."""

from __future__ import annotations

import json
from types import ModuleType

import pytest

MESSAGES = [
    {"type": "ping"},
    {"type": "join", "username": "alice"},
    {"type": "chat", "message": "héllo wörld 👋"},
    {"type": "chat", "message": 'two\nlines, a "quote" and a \\ backslash'},
    {"type": "welcome", "message": "hi", "users": ["alice", "bob"]},
    {"type": "chat", "username": "bob", "message": "x", "timestamp": 1795643717.5},
]


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex06_encode_frame")


def test_a_frame_is_bytes_ending_in_a_newline(ex):
    frame = ex.encode_frame({"type": "ping"})
    assert isinstance(frame, bytes)
    assert frame.endswith(b"\n")


def test_json_is_compact(ex):
    assert ex.encode_frame({"type": "chat", "message": "hi"}) == b'{"type":"chat","message":"hi"}\n'


def test_non_ascii_text_travels_as_raw_utf8(ex):
    frame = ex.encode_frame({"type": "chat", "message": "héllo 👋"})
    assert "héllo 👋".encode() in frame
    assert b"\\u" not in frame


@pytest.mark.parametrize("message", MESSAGES, ids=[m["type"] for m in MESSAGES])
def test_the_only_newline_is_the_last_byte(ex, message):
    frame = ex.encode_frame(message)
    assert frame.count(b"\n") == 1 and frame.endswith(b"\n")


@pytest.mark.parametrize("message", MESSAGES, ids=[m["type"] for m in MESSAGES])
def test_decoding_the_frame_gives_the_message_back(ex, message):
    frame = ex.encode_frame(message)
    assert ex.decode_frame(frame[:-1]) == message
    assert json.loads(frame) == message  # any JSON parser reads it


def test_nan_is_refused_because_json_has_no_nan(ex):
    with pytest.raises(ValueError):
        ex.encode_frame({"type": "chat", "value": float("nan")})
