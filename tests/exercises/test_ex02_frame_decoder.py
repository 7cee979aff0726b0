"""Exercise 02: LineDecoder turns a byte stream, cut anywhere, into the same messages."""

from __future__ import annotations

import json
from types import ModuleType

import pytest

#: Four frames as they would arrive on the wire: plain ASCII, 2-byte and 4-byte
#: UTF-8 characters, an escaped newline inside a string, and a blank line.
FRAMES = [
    {"type": "join", "username": "alice"},
    {"type": "chat", "message": "héllo wörld 👋"},
    {"type": "chat", "message": "two\nlines"},
    {"type": "ping"},
]
STREAM = b"".join(json.dumps(f, ensure_ascii=False).encode() + b"\n" for f in FRAMES[:2])
STREAM += b"\n" + b"".join(json.dumps(f).encode() + b"\n" for f in FRAMES[2:])


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex02_frame_decoder")


def feed_in_chunks(decoder, data: bytes, size: int) -> list[dict]:
    messages = []
    for start in range(0, len(data), size):
        messages += decoder.feed(data[start : start + size])
    return messages


def test_one_whole_frame_gives_one_message(ex):
    assert ex.LineDecoder().feed(b'{"type": "ping"}\n') == [{"type": "ping"}]


def test_frame_without_its_newline_gives_nothing_yet(ex):
    assert ex.LineDecoder().feed(b'{"type": "ping"}') == []


def test_rest_of_a_frame_completes_it(ex):
    decoder = ex.LineDecoder()
    decoder.feed(b'{"type": "pi')
    assert decoder.feed(b'ng"}\n') == [{"type": "ping"}]


def test_second_frame_in_same_chunk_is_delivered(ex):
    decoder = ex.LineDecoder()
    assert decoder.feed(b'{"type": "ping"}\n{"type": "pong"}\n') == [
        {"type": "ping"},
        {"type": "pong"},
    ]


def test_start_of_the_next_frame_is_kept_for_later(ex):
    decoder = ex.LineDecoder()
    assert decoder.feed(b'{"type": "ping"}\n{"type": "po') == [{"type": "ping"}]
    assert decoder.feed(b'ng"}\n') == [{"type": "pong"}]


def test_utf8_character_split_across_chunks_is_decoded(ex):
    frame = json.dumps({"type": "chat", "message": "👋"}, ensure_ascii=False).encode() + b"\n"
    wave = frame.index("👋".encode())
    for cut in range(wave + 1, wave + 4):  # inside the 4-byte character
        decoder = ex.LineDecoder()
        assert decoder.feed(frame[:cut]) == []
        assert decoder.feed(frame[cut:]) == [{"type": "chat", "message": "👋"}], f"cut at {cut}"


def test_blank_lines_are_skipped(ex):
    assert ex.LineDecoder().feed(b'\n  \n{"type": "ping"}\n\n') == [{"type": "ping"}]


def test_every_chunk_size_gives_the_same_messages(ex):
    # Beej's check: cut the stream into chunks of 1 byte, 2 bytes, ... all of it.
    for size in range(1, len(STREAM) + 1):
        messages = feed_in_chunks(ex.LineDecoder(), STREAM, size)
        assert messages == FRAMES, f"wrong messages when fed {size} bytes at a time"


def test_line_of_exactly_the_limit_is_accepted(ex):
    line = json.dumps({"type": "chat", "message": "x" * 80}).encode()
    decoder = ex.LineDecoder(max_line_bytes=len(line))
    assert decoder.feed(line + b"\n") == [{"type": "chat", "message": "x" * 80}]


def test_line_over_the_limit_raises_line_too_long(ex):
    line = json.dumps({"type": "chat", "message": "x" * 80}).encode()
    decoder = ex.LineDecoder(max_line_bytes=len(line) - 1)
    with pytest.raises(ex.LineTooLong):
        decoder.feed(line + b"\n")


def test_endless_line_raises_before_its_newline_arrives(ex):
    decoder = ex.LineDecoder(max_line_bytes=100)
    decoder.feed(b"x" * 100)  # exactly the limit: the newline may still come
    with pytest.raises(ex.LineTooLong):
        decoder.feed(b"x")
