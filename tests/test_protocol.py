"""The wire protocol: frames, the frame decoder and the rules for messages.

No sockets here: ``chat.protocol`` does no I/O, so bytes go in and messages
come out.  The property-based tests (hypothesis) check the promise every
server and client relies on: however TCP cuts the byte stream into chunks,
the decoder sees the same messages.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat import protocol
from chat.protocol import (
    MAX_FRAME_BYTES,
    MAX_MESSAGE_CHARS,
    MAX_USERNAME_CHARS,
    FrameDecoder,
    ProtocolError,
)


def decode_all(decoder: FrameDecoder) -> list[dict]:
    """Every complete message the decoder holds now."""
    messages = []
    while (message := decoder.next_frame()) is not None:
        messages.append(message)
    return messages


def feed_in_chunks(data: bytes, sizes: list[int], decoder: FrameDecoder | None = None) -> list:
    """Feed ``data`` cut into chunks of the given sizes (cycled), collecting messages."""
    decoder = decoder or FrameDecoder()
    messages: list[dict] = []
    position, index = 0, 0
    while position < len(data):
        size = sizes[index % len(sizes)]
        decoder.feed(data[position : position + size])
        messages += decode_all(decoder)
        position += size
        index += 1
    return messages


# --------------------------------------------------------------------------
# encode


def test_encode_makes_compact_json_ending_in_one_newline():
    frame = protocol.encode({"type": "chat", "message": "Hi"})
    assert frame == b'{"type":"chat","message":"Hi"}\n'


def test_encode_keeps_non_ascii_as_raw_utf8():
    frame = protocol.encode(protocol.chat("héllo 👋"))
    assert "héllo 👋".encode() in frame
    assert b"\\u" not in frame


def test_encode_escapes_newlines_inside_text_so_a_frame_is_one_line():
    frame = protocol.encode(protocol.chat("line 1\nline 2\r\n"))
    assert frame.count(b"\n") == 1
    assert frame.endswith(b"\n")


def test_encode_refuses_nan():
    with pytest.raises(ValueError):
        protocol.encode({"type": "chat", "timestamp": float("nan")})


def test_encoded_message_decodes_to_the_same_message():
    message = protocol.chat_broadcast("alice", 'héllo 👋 "quoted" \\ back', 1234567890.5)
    assert protocol.decode_line(protocol.encode(message)[:-1]) == message


# --------------------------------------------------------------------------
# FrameDecoder: chunking


def test_whole_frame_in_one_chunk_is_delivered():
    decoder = FrameDecoder()
    decoder.feed(b'{"type":"ping"}\n')
    assert decoder.next_frame() == {"type": "ping"}
    assert decoder.next_frame() is None


def test_partial_frame_waits_for_the_rest():
    decoder = FrameDecoder()
    decoder.feed(b'{"type":"pi')
    assert decoder.next_frame() is None
    assert decoder.buffered == len(b'{"type":"pi')
    decoder.feed(b'ng"}\n')
    assert decoder.next_frame() == {"type": "ping"}


def test_second_frame_in_same_chunk_is_delivered():
    decoder = FrameDecoder()
    decoder.feed(b'{"type":"ping"}\n{"type":"chat","message":"x"}\n{"type":"jo')
    assert decode_all(decoder) == [{"type": "ping"}, {"type": "chat", "message": "x"}]
    assert decoder.buffered == len(b'{"type":"jo')


def test_frames_fed_one_byte_at_a_time_are_delivered():
    data = protocol.encode(protocol.join("alice")) + protocol.encode(protocol.chat("Hi"))
    assert feed_in_chunks(data, [1]) == [protocol.join("alice"), protocol.chat("Hi")]


def test_utf8_character_split_across_chunks_is_decoded():
    data = protocol.encode(protocol.chat("👋"))  # four bytes: F0 9F 91 8B
    start = data.index("👋".encode())
    for cut in range(start + 1, start + 4):
        decoder = FrameDecoder()
        decoder.feed(data[:cut])
        assert decoder.next_frame() is None
        decoder.feed(data[cut:])
        assert decoder.next_frame() == protocol.chat("👋")


def test_blank_lines_are_skipped():
    decoder = FrameDecoder()
    decoder.feed(b'\n\r\n   \n{"type":"ping"}\n\n')
    assert decode_all(decoder) == [{"type": "ping"}]


def test_crlf_line_endings_are_tolerated():
    decoder = FrameDecoder()
    decoder.feed(b'{"type":"ping"}\r\n{"type":"chat","message":"x"}\r\n')
    assert decode_all(decoder) == [{"type": "ping"}, {"type": "chat", "message": "x"}]


def test_frame_of_exactly_the_maximum_size_is_accepted():
    message = {"type": "chat", "message": ""}
    padding = MAX_FRAME_BYTES - len(protocol.encode(message)) + 1
    message["message"] = "x" * padding
    frame = protocol.encode(message)
    assert len(frame) == MAX_FRAME_BYTES + 1  # the newline is not counted
    decoder = FrameDecoder()
    decoder.feed(frame)
    assert decoder.next_frame() == message


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"], ids=["LF", "CRLF"])
def test_a_line_of_the_maximum_length_is_accepted_whatever_its_line_ending(ending):
    decoder = FrameDecoder(max_frame_bytes=100)
    line = b'{"type":"ping","pad":"' + b"x" * 76 + b'"}'
    assert len(line) == 100
    decoder.feed(line + ending)
    assert decoder.next_frame() == {"type": "ping", "pad": "x" * 76}


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"], ids=["LF", "CRLF"])
def test_a_line_one_byte_over_the_maximum_is_refused_whatever_its_line_ending(ending):
    decoder = FrameDecoder(max_frame_bytes=100)
    decoder.feed(b"x" * 101 + ending)
    with pytest.raises(ProtocolError) as caught:
        decoder.next_frame()
    assert caught.value.fatal


def test_a_crlf_of_a_maximum_length_line_may_arrive_in_two_reads():
    decoder = FrameDecoder(max_frame_bytes=100)
    line = b'{"type":"ping","pad":"' + b"x" * 76 + b'"}'
    decoder.feed(line + b"\r")  # 101 bytes buffered: the "\n" is on its way
    assert decoder.next_frame() is None
    decoder.feed(b"\n")
    assert decoder.next_frame() == {"type": "ping", "pad": "x" * 76}


def test_next_line_returns_every_line_blank_ones_too_without_its_ending():
    decoder = FrameDecoder()
    decoder.feed(b'\n{"type":"ping"}\r\n  \nrest')
    assert [decoder.next_line() for _ in range(4)] == [b"", b'{"type":"ping"}', b"  ", None]


def test_decoder_never_buffers_more_than_the_maximum_without_a_newline():
    decoder = FrameDecoder(max_frame_bytes=100)
    chunk = b"x" * 7
    with pytest.raises(ProtocolError):
        for _ in range(100):  # bounded: 700 bytes would be far past the limit
            decoder.feed(chunk)
            decoder.next_frame()
            assert decoder.buffered <= 100
    assert decoder.buffered == 0


def test_line_longer_than_the_maximum_without_newline_is_fatal():
    decoder = FrameDecoder(max_frame_bytes=100)
    decoder.feed(b"x" * 101)
    with pytest.raises(ProtocolError) as caught:
        decoder.next_frame()
    assert caught.value.fatal
    assert "100 bytes" in str(caught.value)


def test_complete_frame_longer_than_the_maximum_is_fatal():
    decoder = FrameDecoder(max_frame_bytes=100)
    decoder.feed(protocol.encode(protocol.chat("x" * 200)))
    with pytest.raises(ProtocolError) as caught:
        decoder.next_frame()
    assert caught.value.fatal


def test_decoder_refuses_everything_after_a_fatal_error():
    decoder = FrameDecoder(max_frame_bytes=10)
    decoder.feed(b"x" * 11)
    with pytest.raises(ProtocolError):
        decoder.next_frame()
    decoder.feed(b'{"type":"ping"}\n')
    assert decoder.buffered == 0
    with pytest.raises(ProtocolError) as caught:
        decoder.next_frame()
    assert caught.value.fatal


def test_invalid_utf8_is_fatal():
    decoder = FrameDecoder()
    decoder.feed(b'{"type":"chat","message":"\xff\xfe"}\n{"type":"ping"}\n')
    with pytest.raises(ProtocolError) as caught:
        decoder.next_frame()
    assert caught.value.fatal
    assert "UTF-8" in str(caught.value)


def test_bad_json_is_not_fatal_and_the_next_frame_still_decodes():
    decoder = FrameDecoder()
    decoder.feed(b'{"type": oops\n{"type":"ping"}\n')
    with pytest.raises(ProtocolError) as caught:
        decoder.next_frame()
    assert not caught.value.fatal
    assert "JSON" in str(caught.value)
    assert decoder.next_frame() == {"type": "ping"}


@pytest.mark.parametrize("line", [b"[1, 2]", b'"text"', b"42", b"null", b"true"])
def test_json_that_is_not_an_object_is_refused_but_not_fatal(line):
    decoder = FrameDecoder()
    decoder.feed(line + b'\n{"type":"ping"}\n')
    with pytest.raises(ProtocolError) as caught:
        decoder.next_frame()
    assert not caught.value.fatal
    assert "object" in str(caught.value)
    assert decoder.next_frame() == {"type": "ping"}


@pytest.mark.parametrize("line", [b"{}", b'{"type": 3}', b'{"type": null}', b'{"kind":"ping"}'])
def test_object_without_a_type_string_is_refused(line):
    with pytest.raises(ProtocolError) as caught:
        protocol.decode_line(line)
    assert not caught.value.fatal
    assert "type" in str(caught.value)


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_refused(constant):
    with pytest.raises(ProtocolError) as caught:
        protocol.decode_line(b'{"type":"chat","timestamp":' + constant + b"}")
    assert not caught.value.fatal


def test_deeply_nested_json_is_refused_without_crashing():
    line = b'{"type":"chat","message":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(ProtocolError):
        protocol.decode_line(line)


def test_unknown_fields_are_kept_for_extensions():
    assert protocol.decode_line(b'{"type":"chat","message":"x","room":"a"}')["room"] == "a"


# --------------------------------------------------------------------------
# FrameDecoder: properties that hold for every input

json_text = st.text(st.characters(codec="utf-8"), max_size=30)
json_scalar = st.none() | st.booleans() | st.integers() | json_text
json_scalar |= st.floats(allow_nan=False, allow_infinity=False)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_text, inner, max_size=4),
    max_leaves=8,
)
messages = st.fixed_dictionaries({"type": json_text}, optional={"message": json_value})
message_lists = st.lists(messages, min_size=1, max_size=8)
chunk_sizes = st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=20)


@given(message_lists, chunk_sizes)
@settings(max_examples=150, deadline=None)
def test_any_frames_decode_identically_under_any_chunking(sent, sizes):
    data = b"".join(protocol.encode(m) for m in sent)
    assert feed_in_chunks(data, sizes) == sent


@given(message_lists)
@settings(max_examples=50, deadline=None)
def test_any_frames_decode_identically_one_byte_at_a_time(sent):
    data = b"".join(protocol.encode(m) for m in sent)
    assert feed_in_chunks(data, [1]) == sent


@given(message_lists, chunk_sizes)
@settings(max_examples=50, deadline=None)
def test_bad_json_lines_between_frames_lose_no_good_frame(sent, sizes):
    data = b"".join(b"{not json\n" + protocol.encode(m) for m in sent)
    decoder = FrameDecoder()
    received, errors = [], 0
    position, index = 0, 0
    while position < len(data):
        size = sizes[index % len(sizes)]
        decoder.feed(data[position : position + size])
        position, index = position + size, index + 1
        while True:
            try:
                message = decoder.next_frame()
            except ProtocolError as exc:
                assert not exc.fatal
                errors += 1
                continue
            if message is None:
                break
            received.append(message)
    assert received == sent
    assert errors == len(sent)


@given(st.binary(max_size=300), chunk_sizes)
@settings(max_examples=150, deadline=None)
def test_decoder_survives_arbitrary_bytes_and_stays_bounded(data, sizes):
    decoder = FrameDecoder(max_frame_bytes=64)
    position, index = 0, 0
    while position < len(data):
        size = sizes[index % len(sizes)]
        decoder.feed(data[position : position + size])
        position, index = position + size, index + 1
        while True:
            try:
                if decoder.next_frame() is None:
                    break
            except ProtocolError as exc:
                if exc.fatal:
                    return
        assert decoder.buffered <= 64


# --------------------------------------------------------------------------
# Usernames


@pytest.mark.parametrize("name", ["a", "alice", "Bob_2", "x-y", "A" * MAX_USERNAME_CHARS, "007"])
def test_valid_usernames_are_accepted(name):
    assert protocol.validate_username(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "A" * (MAX_USERNAME_CHARS + 1),
        "al ice",
        "alice\n",
        "élodie",
        "bob!",
        "a.b",
        "\x1b[31m",
        "١٢٣",  # Arabic-Indic digits are digits, but not ASCII ones
    ],
)
def test_invalid_usernames_are_refused(name):
    with pytest.raises(ProtocolError) as caught:
        protocol.validate_username(name)
    assert "username" in str(caught.value).lower()


@pytest.mark.parametrize("name", [None, 42, ["alice"], {"name": "alice"}])
def test_username_that_is_not_a_string_is_refused(name):
    with pytest.raises(ProtocolError, match="string"):
        protocol.validate_username(name)


# --------------------------------------------------------------------------
# Chat text


def test_chat_text_is_stripped_of_surrounding_spaces():
    assert protocol.clean_message("  Hi there  ") == "Hi there"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "\t\n",
        "\x1b\x07",
        "\x00",
        "\u200b\u200b",  # zero-width spaces
        "\u3164",  # HANGUL FILLER, which fonts draw blank
        "\u2800 \u2800",  # BRAILLE PATTERN BLANK
        "\u200e\u200f",  # left-to-right and right-to-left marks
        "\u00ad\ufeff\u2060",  # soft hyphen, byte order mark, word joiner
        "\u00a0\u3000",  # no-break and ideographic spaces
    ],
)
def test_chat_text_with_nothing_visible_is_refused_as_empty(text):
    with pytest.raises(ProtocolError, match="empty"):
        protocol.clean_message(text)


@pytest.mark.parametrize("text", ["\u200bhi", "👍🏽", "👨\u200d👩\u200d👧", "e\u0301", "\u3164x"])
def test_chat_text_with_something_visible_keeps_its_invisible_characters(text):
    assert protocol.clean_message(text) == text


def test_chat_text_of_the_maximum_length_is_accepted():
    assert protocol.clean_message("é" * MAX_MESSAGE_CHARS) == "é" * MAX_MESSAGE_CHARS


def test_chat_text_longer_than_the_maximum_is_refused():
    with pytest.raises(ProtocolError, match=str(MAX_MESSAGE_CHARS)):
        protocol.clean_message("x" * (MAX_MESSAGE_CHARS + 1))


def test_control_characters_are_removed_from_chat_text():
    assert protocol.clean_message("\x1b[2Jhi\x07 there\x00\x7f\x9b") == "[2Jhi there"


def test_lone_surrogates_are_removed_from_chat_text():
    # json.loads turns the escape "\ud800" into a str that no UTF-8 can encode.
    text = protocol.decode_line(b'{"type":"chat","message":"x\\ud800y\\udfff"}')["message"]
    assert protocol.clean_message(text) == "xy"
    protocol.encode(protocol.chat(protocol.clean_message(text)))  # now encodable


def test_escaped_surrogate_pairs_are_kept_as_the_character_they_make():
    text = protocol.decode_line(b'{"type":"chat","message":"\\ud83d\\udc4b"}')["message"]
    assert protocol.clean_message(text) == "👋"


def test_tabs_and_newlines_in_chat_text_become_spaces():
    assert protocol.clean_message("one\ttwo\nthree\r\nfour") == "one two three  four"


@pytest.mark.parametrize("text", [None, 42, ["hi"]])
def test_chat_text_that_is_not_a_string_is_refused(text):
    with pytest.raises(ProtocolError, match="string"):
        protocol.clean_message(text)


# --------------------------------------------------------------------------
# Client messages


def test_valid_join_is_accepted():
    assert protocol.validate_client_message({"type": "join", "username": "bob"}) == {
        "type": "join",
        "username": "bob",
    }


def test_join_with_an_invalid_name_is_refused():
    with pytest.raises(ProtocolError):
        protocol.validate_client_message({"type": "join", "username": "no spaces"})


def test_join_without_a_name_is_refused():
    with pytest.raises(ProtocolError):
        protocol.validate_client_message({"type": "join"})


def test_valid_chat_is_accepted_with_its_text_cleaned():
    message = {"type": "chat", "message": " hi\x1b "}
    assert protocol.validate_client_message(message) == {"type": "chat", "message": "hi"}


def test_chat_without_text_is_refused():
    with pytest.raises(ProtocolError):
        protocol.validate_client_message({"type": "chat"})


def test_ping_is_accepted():
    assert protocol.validate_client_message({"type": "ping"}) == {"type": "ping"}


def test_unknown_fields_in_client_messages_are_dropped():
    message = {"type": "chat", "message": "hi", "username": "mallory", "timestamp": 0}
    assert protocol.validate_client_message(message) == {"type": "chat", "message": "hi"}


@pytest.mark.parametrize("kind", ["welcome", "pong", "dance", ""])
def test_unknown_client_message_type_is_refused_but_not_fatal(kind):
    with pytest.raises(ProtocolError, match="Unknown message type") as caught:
        protocol.validate_client_message({"type": kind})
    assert not caught.value.fatal


# --------------------------------------------------------------------------
# Server messages: the builders give the fields the README lists


def test_server_message_builders_give_the_documented_fields():
    assert protocol.welcome("bob", ["alice", "bob"]) == {
        "type": "welcome",
        "message": "Welcome to the chat, bob!",
        "users": ["alice", "bob"],
    }
    assert protocol.chat_broadcast("alice", "Hi", 1.5) == {
        "type": "chat",
        "username": "alice",
        "message": "Hi",
        "timestamp": 1.5,
    }
    assert protocol.user_joined("bob") == {
        "type": "user_joined",
        "username": "bob",
        "message": "bob joined the chat",
    }
    assert protocol.user_left("bob") == {
        "type": "user_left",
        "username": "bob",
        "message": "bob left the chat",
    }
    assert protocol.error("Username already taken") == {
        "type": "error",
        "message": "Username already taken",
    }
    assert protocol.pong() == {"type": "pong"}
    assert protocol.server_shutdown()["type"] == "server_shutdown"


def test_every_builder_output_is_valid_json_on_one_line():
    built = [
        protocol.join("a"),
        protocol.chat("b"),
        protocol.ping(),
        protocol.welcome("a", ["a"]),
        protocol.chat_broadcast("a", "b", 1.0),
        protocol.user_joined("a"),
        protocol.user_left("a"),
        protocol.error("e"),
        protocol.pong(),
        protocol.server_shutdown(),
    ]
    for message in built:
        frame = protocol.encode(message)
        assert frame.count(b"\n") == 1
        assert json.loads(frame) == message
