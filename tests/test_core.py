"""The chat rules, driven with no sockets: bytes in, actions out.

``ChatCore`` never touches a socket or a real clock, so these tests feed it
bytes, move a fake clock by hand and look at the :class:`Send` and
:class:`Close` actions it returns.  Connection ids are plain strings.
"""

from __future__ import annotations

import json
import logging
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chat import protocol
from chat.core import ChatCore, Close, Send
from chat.limits import Limits
from tests.helpers import sent_to


class FakeClock:
    """A clock that moves only when the test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


WALL_TIME = 1_700_000_000.25

#: What every welcome tells the client about the limits it must keep to.
ANNOUNCED = {
    "rate_limit": Limits().rate_limit,
    "rate_burst": Limits().rate_burst,
    "max_frame_bytes": Limits().max_frame_bytes,
    "max_message_chars": protocol.MAX_MESSAGE_CHARS,
    "idle_timeout": Limits().idle_timeout,
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def core(clock: FakeClock) -> ChatCore:
    return ChatCore(Limits(), clock=clock, wallclock=lambda: WALL_TIME)


def frame(message: dict) -> bytes:
    return protocol.encode(message)


def closed(actions: list) -> list[str]:
    return [action.conn for action in actions if isinstance(action, Close)]


def connect_and_join(core: ChatCore, conn: str, name: str | None = None) -> list:
    assert core.connect(conn, ("127.0.0.1", 40000 + len(core.usernames))) == []
    return core.receive(conn, frame(protocol.join(name or conn)))


@pytest.fixture
def room(core: ChatCore) -> ChatCore:
    """A core with alice and bob joined."""
    connect_and_join(core, "alice")
    connect_and_join(core, "bob")
    return core


# --------------------------------------------------------------------------
# Joining


def test_connect_alone_sends_nothing(core):
    assert core.connect("alice", ("127.0.0.1", 5000)) == []
    assert core.connection_count == 1
    assert core.usernames == []


def test_join_is_answered_with_a_welcome_listing_the_users(core):
    connect_and_join(core, "alice")
    actions = connect_and_join(core, "bob")
    assert sent_to(actions, "bob") == [protocol.welcome("bob", ["alice", "bob"], ANNOUNCED)]


def test_first_user_is_welcomed_alone(core):
    actions = connect_and_join(core, "alice")
    assert actions == [Send(("alice",), frame(protocol.welcome("alice", ["alice"], ANNOUNCED)))]


def test_welcome_announces_the_rate_limit_so_programs_can_pace_themselves(clock):
    core = ChatCore(Limits(rate_limit=2, rate_burst=7), clock=clock)
    [welcome] = sent_to(connect_and_join(core, "alice"), "alice")
    assert (welcome["limits"]["rate_limit"], welcome["limits"]["rate_burst"]) == (2, 7)


def test_names_are_unique_without_regard_to_case(room):
    room.connect("mallory", ("127.0.0.1", 6000))
    actions = room.receive("mallory", frame(protocol.join("ALICE")))
    assert sent_to(actions, "mallory") == [protocol.error("Username already taken")]
    assert room.usernames == ["alice", "bob"]


def test_a_name_is_shown_as_its_owner_typed_it(core):
    connect_and_join(core, "alice", "Alice_X")
    actions = connect_and_join(core, "bob")
    assert sent_to(actions, "bob")[0]["users"] == ["Alice_X", "bob"]
    assert sent_to(actions, "alice") == [protocol.user_joined("bob")]


def test_a_name_freed_in_one_case_is_free_in_every_case(room):
    room.disconnect("alice")
    room.connect("carol", ("127.0.0.1", 6001))
    assert sent_to(room.receive("carol", frame(protocol.join("aLiCe"))), "carol")[0]["type"] == (
        "welcome"
    )


def test_join_tells_the_others_but_not_the_newcomer(core):
    connect_and_join(core, "alice")
    actions = connect_and_join(core, "bob")
    assert sent_to(actions, "alice") == [protocol.user_joined("bob")]
    assert protocol.user_joined("bob") not in sent_to(actions, "bob")


def test_welcome_comes_before_the_others_hear_of_the_join(core):
    connect_and_join(core, "alice")
    actions = connect_and_join(core, "bob")
    assert [type(a) for a in actions] == [Send, Send]
    assert actions[0].to == ("bob",)


def test_duplicate_username_is_refused_and_the_connection_stays_open(room):
    room.connect("bob2", ("127.0.0.1", 6000))
    actions = room.receive("bob2", frame(protocol.join("bob")))
    assert sent_to(actions, "bob2") == [protocol.error("Username already taken")]
    assert closed(actions) == []
    assert room.is_open("bob2")
    assert room.usernames == ["alice", "bob"]


def test_refused_name_can_be_followed_by_a_free_one(room):
    room.connect("c", ("127.0.0.1", 6000))
    room.receive("c", frame(protocol.join("bob")))
    actions = room.receive("c", frame(protocol.join("carol")))
    assert sent_to(actions, "c")[0]["type"] == "welcome"
    assert room.usernames == ["alice", "bob", "carol"]


def test_joining_twice_is_refused(room):
    actions = room.receive("alice", frame(protocol.join("alice2")))
    assert sent_to(actions, "alice") == [protocol.error("Already joined as alice")]
    assert room.usernames == ["alice", "bob"]


def test_invalid_username_is_refused_with_the_rule(core):
    core.connect("x", "127.0.0.1:1")
    actions = core.receive("x", frame({"type": "join", "username": "no spaces!"}))
    [error] = sent_to(actions, "x")
    assert error["type"] == "error"
    assert "letters, digits" in error["message"]
    assert closed(actions) == []


def test_name_is_free_again_after_its_owner_leaves(room):
    room.disconnect("bob")
    room.connect("bob-again", "127.0.0.1:2")
    actions = room.receive("bob-again", frame(protocol.join("bob")))
    assert sent_to(actions, "bob-again")[0]["type"] == "welcome"


# --------------------------------------------------------------------------
# Chatting


def test_chat_is_broadcast_to_everyone_including_the_sender(room):
    actions = room.receive("alice", frame(protocol.chat("Hello everyone!")))
    expected = protocol.chat_broadcast("alice", "Hello everyone!", WALL_TIME)
    assert sent_to(actions, "alice") == [expected]
    assert sent_to(actions, "bob") == [expected]


def test_broadcast_is_encoded_once_for_all_receivers(room):
    actions = room.receive("alice", frame(protocol.chat("Hi")))
    assert len(actions) == 1
    assert set(actions[0].to) == {"alice", "bob"}


def test_chat_carries_the_sender_name_from_the_server_not_the_client(room):
    actions = room.receive("alice", frame({"type": "chat", "message": "Hi", "username": "bob"}))
    assert sent_to(actions, "bob")[0]["username"] == "alice"


def test_chat_timestamp_is_the_wall_clock_as_a_float(room):
    [message] = sent_to(room.receive("alice", frame(protocol.chat("Hi"))), "bob")
    assert message["timestamp"] == WALL_TIME
    assert isinstance(message["timestamp"], float)


def test_chat_text_is_cleaned_before_it_is_relayed(room):
    actions = room.receive("alice", frame(protocol.chat("  \x1b[2Jhi\tthere  ")))
    assert sent_to(actions, "bob")[0]["message"] == "[2Jhi there"


def test_chat_is_not_sent_to_connections_that_have_not_joined(room):
    room.connect("lurker", "127.0.0.1:3")
    actions = room.receive("alice", frame(protocol.chat("Hi")))
    assert sent_to(actions, "lurker") == []


def test_chat_before_join_is_refused_and_the_connection_stays_open(core):
    core.connect("x", "127.0.0.1:1")
    actions = core.receive("x", frame(protocol.chat("Hi")))
    [error] = sent_to(actions, "x")
    assert error["type"] == "error"
    assert "Join first" in error["message"]
    assert core.is_open("x")


def test_empty_chat_is_refused(room):
    actions = room.receive("alice", frame(protocol.chat("   ")))
    assert sent_to(actions, "alice") == [protocol.error("Message is empty")]
    assert sent_to(actions, "bob") == []


def test_too_long_chat_is_refused(room):
    text = "x" * (protocol.MAX_MESSAGE_CHARS + 1)
    [error] = sent_to(room.receive("alice", frame(protocol.chat(text))), "alice")
    assert error["type"] == "error"
    assert str(protocol.MAX_MESSAGE_CHARS) in error["message"]


def test_messages_are_relayed_in_the_order_they_arrive(room):
    data = b"".join(frame(protocol.chat(f"m{i}")) for i in range(5))
    actions = room.receive("alice", data)
    assert [m["message"] for m in sent_to(actions, "bob")] == [f"m{i}" for i in range(5)]


def test_frame_split_across_receives_is_handled_once_complete(room):
    data = frame(protocol.chat("héllo 👋"))
    assert room.receive("alice", data[:-3]) == []
    [message] = sent_to(room.receive("alice", data[-3:]), "bob")
    assert message["message"] == "héllo 👋"


# --------------------------------------------------------------------------
# Ping, unknown types and bad frames


def test_ping_is_answered_with_pong_to_the_sender_only(room):
    actions = room.receive("alice", frame(protocol.ping()))
    assert actions == [Send(("alice",), frame(protocol.pong()))]


def test_ping_before_join_is_answered(core):
    core.connect("x", "127.0.0.1:1")
    assert sent_to(core.receive("x", frame(protocol.ping())), "x") == [protocol.pong()]


def test_unknown_type_gets_an_error_and_the_connection_stays_open(room):
    actions = room.receive("alice", frame({"type": "dance"}))
    [error] = sent_to(actions, "alice")
    assert error["type"] == "error"
    assert "Unknown message type 'dance'" in error["message"]
    assert closed(actions) == []
    assert sent_to(room.receive("alice", frame(protocol.ping())), "alice") == [protocol.pong()]


def test_bad_json_gets_an_error_and_the_next_frame_is_still_handled(room):
    actions = room.receive("alice", b"{oops\n" + frame(protocol.chat("still here")))
    assert sent_to(actions, "alice")[0] == protocol.error("Frame is not valid JSON")
    assert sent_to(actions, "bob")[0]["message"] == "still here"
    assert closed(actions) == []


def test_json_that_is_not_an_object_gets_an_error(room):
    [error] = sent_to(room.receive("alice", b"[1,2]\n"), "alice")
    assert error == protocol.error("Frame must be a JSON object")


def test_oversized_line_gets_an_error_then_a_close(room):
    actions = room.receive("alice", b"x" * (protocol.MAX_FRAME_BYTES + 1))
    assert isinstance(actions[0], Send)
    assert actions[0].to == ("alice",)
    assert json.loads(actions[0].data)["type"] == "error"
    assert isinstance(actions[1], Close)
    assert actions[1].conn == "alice"
    assert not room.is_open("alice")


def test_invalid_utf8_gets_an_error_then_a_close_and_the_others_hear_of_it(room):
    actions = room.receive("alice", b'{"type":"chat","message":"\xff"}\n')
    [error] = sent_to(actions, "alice")
    assert "UTF-8" in error["message"]
    assert closed(actions) == ["alice"]
    assert sent_to(actions, "bob") == [protocol.user_left("alice")]
    assert room.usernames == ["bob"]


def test_frames_after_a_fatal_error_are_ignored(room):
    actions = room.receive("alice", b"\xff\n" + frame(protocol.chat("after")))
    assert all(m["type"] != "chat" for m in sent_to(actions, "bob"))


def test_bytes_from_a_closed_connection_are_ignored(room):
    room.disconnect("alice")
    assert room.receive("alice", frame(protocol.chat("ghost"))) == []


# --------------------------------------------------------------------------
# Leaving


def test_disconnect_tells_the_others(room):
    actions = room.disconnect("bob")
    assert actions == [Send(("alice",), frame(protocol.user_left("bob")))]
    assert room.usernames == ["alice"]


def test_disconnect_of_the_last_user_sends_nothing(core):
    connect_and_join(core, "alice")
    assert core.disconnect("alice") == []
    assert core.connection_count == 0


def test_disconnect_before_join_tells_nobody(room):
    room.connect("x", "127.0.0.1:1")
    assert room.disconnect("x") == []


def test_disconnect_is_idempotent(room):
    room.disconnect("bob")
    assert room.disconnect("bob") == []
    assert room.disconnect("never-connected") == []
    assert room.usernames == ["alice"]


def test_disconnect_is_logged_with_the_username(room, caplog):
    caplog.set_level(logging.INFO, logger="chat")
    room.disconnect("bob", "connection closed by client")
    assert "bob disconnected" in caplog.text


# --------------------------------------------------------------------------
# Timeouts


def test_connection_that_does_not_join_in_time_is_closed(clock):
    core = ChatCore(Limits(join_timeout=10, idle_timeout=100), clock=clock)
    core.connect("x", "127.0.0.1:1")
    clock.advance(10)
    assert core.expire() == []
    clock.advance(0.1)
    actions = core.expire()
    [error] = sent_to(actions, "x")
    assert "Join timeout" in error["message"]
    assert closed(actions) == ["x"]
    assert not core.is_open("x")


def test_pings_do_not_extend_the_join_timeout(clock):
    core = ChatCore(Limits(join_timeout=10, idle_timeout=100), clock=clock)
    core.connect("x", "127.0.0.1:1")
    for _ in range(3):
        clock.advance(4)
        core.receive("x", frame(protocol.ping()))
    assert closed(core.expire()) == ["x"]


def test_joined_user_is_not_subject_to_the_join_timeout(clock):
    core = ChatCore(Limits(join_timeout=10, idle_timeout=100), clock=clock)
    connect_and_join(core, "alice")
    clock.advance(50)
    assert core.expire() == []


def test_silent_user_is_closed_after_the_idle_timeout_and_the_others_hear_of_it(clock):
    core = ChatCore(Limits(idle_timeout=60), clock=clock)
    connect_and_join(core, "alice")
    connect_and_join(core, "bob")
    clock.advance(59)
    core.receive("alice", frame(protocol.ping()))
    clock.advance(2)
    actions = core.expire()
    assert "Idle timeout" in sent_to(actions, "bob")[0]["message"]
    assert closed(actions) == ["bob"]
    assert sent_to(actions, "alice") == [protocol.user_left("bob")]
    assert core.usernames == ["alice"]


def test_a_complete_valid_frame_counts_as_activity(clock):
    core = ChatCore(Limits(idle_timeout=60), clock=clock)
    connect_and_join(core, "alice")
    clock.advance(50)
    core.receive("alice", frame(protocol.ping()))
    clock.advance(50)
    assert core.expire() == []


@pytest.mark.parametrize(
    "data",
    [b'{"type":', b"\n", b"   \r\n", b"not json\n", b'{"type": "nonsense"}\n'],
    ids=["half a frame", "blank line", "spaces", "bad JSON", "unknown type"],
)
def test_bytes_that_are_not_a_valid_frame_do_not_count_as_activity(clock, data):
    """Else a client could hold a place for ever by sending a newline now and then."""
    core = ChatCore(Limits(idle_timeout=60), clock=clock)
    connect_and_join(core, "alice")
    clock.advance(50)
    core.receive("alice", data)
    clock.advance(50)
    assert closed(core.expire()) == ["alice"]


# --------------------------------------------------------------------------
# Rate limit and flood


def test_burst_of_frames_is_allowed(clock):
    core = ChatCore(Limits(rate_limit=5, rate_burst=20), clock=clock)
    connect_and_join(core, "alice")  # the join took one token
    data = frame(protocol.chat("x")) * 19
    assert len(sent_to(core.receive("alice", data), "alice")) == 19


def test_frames_past_the_burst_are_refused_with_slow_down(clock):
    core = ChatCore(Limits(rate_limit=5, rate_burst=3), clock=clock)
    connect_and_join(core, "alice")
    messages = sent_to(core.receive("alice", frame(protocol.chat("x")) * 3), "alice")
    assert [m["type"] for m in messages] == ["chat", "chat", "error"]
    assert "Slow down" in messages[2]["message"]
    assert core.is_open("alice")


def test_tokens_come_back_with_time(clock):
    core = ChatCore(Limits(rate_limit=5, rate_burst=1), clock=clock)
    connect_and_join(core, "alice")
    assert sent_to(core.receive("alice", frame(protocol.ping())), "alice")[0]["type"] == "error"
    clock.advance(0.2)  # one token at five a second
    assert sent_to(core.receive("alice", frame(protocol.ping())), "alice") == [protocol.pong()]


def test_flooding_client_is_disconnected_after_the_strikes(clock):
    limits = Limits(rate_limit=5, rate_burst=2, flood_disconnect_strikes=3)
    core = ChatCore(limits, clock=clock)
    connect_and_join(core, "alice")
    connect_and_join(core, "bob")
    actions = core.receive("bob", frame(protocol.ping()) * 10)
    errors = [m["message"] for m in sent_to(actions, "bob") if m["type"] == "error"]
    assert len(errors) == 3
    assert "Excess flood" in errors[-1]
    assert closed(actions) == ["bob"]
    assert sent_to(actions, "alice") == [protocol.user_left("bob")]


def test_flood_strikes_reset_when_the_client_slows_down(clock):
    limits = Limits(rate_limit=5, rate_burst=1, flood_disconnect_strikes=3)
    core = ChatCore(limits, clock=clock)
    connect_and_join(core, "alice")
    for _ in range(5):
        core.receive("alice", frame(protocol.ping()) * 2)  # one too many each time
        clock.advance(0.2)
        core.receive("alice", frame(protocol.ping()))  # an allowed frame
        clock.advance(0.2)
    assert core.is_open("alice")


def test_blank_lines_cost_a_token_each_and_get_no_answer(clock):
    core = ChatCore(Limits(rate_limit=5, rate_burst=3), clock=clock)
    connect_and_join(core, "alice")  # the join took one token: two are left
    messages = sent_to(core.receive("alice", b"\n\r\n" + frame(protocol.ping())), "alice")
    assert [m["type"] for m in messages] == ["error"]
    assert "Slow down" in messages[0]["message"]


def test_a_flood_of_blank_lines_is_disconnected_like_any_flood(clock):
    limits = Limits(rate_limit=5, rate_burst=20, flood_disconnect_strikes=30)
    core = ChatCore(limits, clock=clock)
    connect_and_join(core, "alice")
    connect_and_join(core, "bob")
    actions = core.receive("bob", b"\n" * (4 * 1024 * 1024))  # 4 MiB of newlines
    assert closed(actions) == ["bob"]
    errors = [m["message"] for m in sent_to(actions, "bob")]
    assert len(errors) == 30  # it stopped at the last strike, not after four million lines
    assert "Excess flood" in errors[-1]
    assert sent_to(actions, "alice") == [protocol.user_left("bob")]


def test_a_ping_refused_for_its_rate_gets_an_error_carrying_its_id(clock):
    core = ChatCore(Limits(rate_limit=5, rate_burst=2), clock=clock)
    connect_and_join(core, "alice")
    actions = core.receive("alice", frame(protocol.ping(7)) + frame(protocol.ping(8)))
    pong, refusal = sent_to(actions, "alice")
    assert pong == protocol.pong(7)
    assert refusal["type"] == "error" and refusal["id"] == 8
    assert "Slow down" in refusal["message"]


def test_a_pong_carries_the_id_of_its_ping(core):
    core.connect("alice", ("127.0.0.1", 5000))
    actions = core.receive("alice", frame(protocol.ping("abc")))
    assert sent_to(actions, "alice") == [{"type": "pong", "id": "abc"}]


@pytest.mark.parametrize("bad_id", [True, 1.5, [1], {"a": 1}, "x" * 65])
def test_a_ping_with_a_bad_id_is_refused_and_the_id_not_echoed(core, bad_id):
    core.connect("alice", ("127.0.0.1", 5000))
    [answer] = sent_to(core.receive("alice", frame({"type": "ping", "id": bad_id})), "alice")
    assert answer["type"] == "error" and "id" not in answer
    assert "Ping id must be" in answer["message"]


def test_rate_limit_zero_turns_it_off(clock):
    core = ChatCore(Limits(rate_limit=0, rate_burst=1), clock=clock)
    connect_and_join(core, "alice")
    actions = core.receive("alice", frame(protocol.ping()) * 100)
    assert sent_to(actions, "alice") == [protocol.pong()] * 100


# --------------------------------------------------------------------------
# Connection limits


def test_connection_past_max_clients_gets_server_full_and_is_closed(clock):
    core = ChatCore(Limits(max_clients=2), clock=clock)
    core.connect("a", "10.0.0.1:1")
    core.connect("b", "10.0.0.2:1")
    actions = core.connect("c", "10.0.0.3:1")
    [error] = sent_to(actions, "c")
    assert "Server full" in error["message"]
    assert closed(actions) == ["c"]
    assert core.connection_count == 2


def test_a_place_frees_up_when_a_client_leaves(clock):
    core = ChatCore(Limits(max_clients=1), clock=clock)
    core.connect("a", "10.0.0.1:1")
    core.disconnect("a")
    assert core.connect("b", "10.0.0.2:1") == []


def test_refused_connection_does_not_count(clock):
    core = ChatCore(Limits(max_clients=1), clock=clock)
    core.connect("a", "10.0.0.1:1")
    core.connect("b", "10.0.0.2:1")  # refused
    assert core.disconnect("b") == []
    assert core.connection_count == 1


def test_connections_past_the_per_ip_limit_are_refused(clock):
    core = ChatCore(Limits(max_connections_per_ip=2), clock=clock)
    assert core.connect("a", ("10.0.0.1", 1)) == []
    assert core.connect("b", ("10.0.0.1", 2)) == []
    actions = core.connect("c", ("10.0.0.1", 3))
    assert "Too many connections from 10.0.0.1" in sent_to(actions, "c")[0]["message"]
    assert closed(actions) == ["c"]
    assert core.connect("d", ("10.0.0.2", 1)) == []


def test_per_ip_count_goes_down_when_a_connection_closes(clock):
    core = ChatCore(Limits(max_connections_per_ip=1), clock=clock)
    core.connect("a", ("10.0.0.1", 1))
    core.disconnect("a")
    assert core.connect("b", ("10.0.0.1", 2)) == []


def test_per_ip_limit_is_off_by_default(core):
    for i in range(50):
        assert core.connect(f"c{i}", ("127.0.0.1", 1000 + i)) == []


# --------------------------------------------------------------------------
# Shutdown


def test_shutdown_says_goodbye_to_everyone_then_closes_them(room):
    room.connect("lurker", "127.0.0.1:3")
    actions = room.shutdown()
    goodbye = actions[0]
    assert isinstance(goodbye, Send)
    assert set(goodbye.to) == {"alice", "bob", "lurker"}
    assert json.loads(goodbye.data)["type"] == "server_shutdown"
    assert sorted(closed(actions)) == ["alice", "bob", "lurker"]
    assert room.connection_count == 0
    assert room.usernames == []


def test_shutdown_does_not_announce_departures(room):
    actions = room.shutdown()
    assert all(m["type"] != "user_left" for m in sent_to(actions, "alice"))


def test_shutdown_of_an_empty_server_does_nothing(core):
    assert core.shutdown() == []


def test_disconnects_after_shutdown_send_nothing(room):
    room.shutdown()
    assert room.disconnect("alice") == []


# --------------------------------------------------------------------------
# Whatever a client sends


# Any Unicode, lone surrogates included (json.dumps writes them as "\ud800"
# escapes), and the characters that broke or could break something made common.
NASTY = ["\ud800", "\udfff", "\x00", "\x1b[2J", "\r", "\n", "\t", "\x7f", "\x9b", "\u202e", "👋"]
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=20)
nasty_text = st.lists(st.sampled_from(NASTY) | any_text, max_size=6).map("".join)
any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=6,
)
client_messages = st.one_of(
    st.builds(dict, type=st.just("chat"), message=nasty_text),
    st.builds(dict, type=st.just("join"), username=nasty_text | any_json),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["join", "chat", "ping", "dance"]) | nasty_text},
        optional={"username": any_json, "message": any_json},
    ),
)
client_frames = client_messages.map(lambda m: json.dumps(m).encode() + b"\n") | st.binary(
    max_size=40
)


@given(st.lists(client_frames, max_size=12))
@settings(max_examples=200, deadline=None)
def test_whatever_a_client_sends_the_core_answers_with_valid_frames(frames):
    core = ChatCore(Limits(rate_limit=0), clock=FakeClock(), wallclock=lambda: WALL_TIME)
    connect_and_join(core, "alice")
    connect_and_join(core, "mallory")  # joined: chat text is relayed to alice
    for data in frames:
        for action in core.receive("mallory", data):  # never raises
            if isinstance(action, Send):
                for line in action.data.decode("utf-8").splitlines():
                    message = json.loads(line)
                    assert isinstance(message["type"], str)
                    if message["type"] == "chat":  # relayed text is clean
                        assert not re.search(r"[\x00-\x1f\x7f-\x9f]", message["message"])


# --------------------------------------------------------------------------
# The log: a misbehaving client cannot fill it


def test_repeated_warnings_about_one_client_are_summarised(clock, caplog):
    core = ChatCore(Limits(rate_limit=0), clock=clock)
    connect_and_join(core, "mallory")
    with caplog.at_level(logging.WARNING, logger="chat.core"):
        core.receive("mallory", b"{}\n" * 1000)
        core.disconnect("mallory")
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) <= 6
    assert lines[-1] == "... 995 more warnings from mallory in the last 1 s"


def test_warnings_are_logged_again_once_the_interval_is_over(clock, caplog):
    core = ChatCore(Limits(rate_limit=0), clock=clock)
    connect_and_join(core, "mallory")
    with caplog.at_level(logging.WARNING, logger="chat.core"):
        core.receive("mallory", b"{}\n" * 10)
        clock.advance(60)
        core.expire()  # the housekeeping tick writes the summary of the last interval
        core.receive("mallory", b"{}\n")
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert lines[5].startswith("... 5 more warnings from mallory")
    assert lines[6] == 'Frame has no "type" string from mallory'


def test_refusals_of_a_connection_flood_are_summarised(clock, caplog):
    core = ChatCore(Limits(max_clients=1), clock=clock)
    core.connect("inside", "10.0.0.1:1")
    with caplog.at_level(logging.WARNING, logger="chat.core"):
        for number in range(200):
            core.connect(f"c{number}", f"10.0.0.2:{number}")
        clock.advance(60)
        core.expire()
    lines = [r.getMessage() for r in caplog.records if "efus" in r.getMessage()]
    assert len(lines) == 6  # five refusals, then one line for the other 195
    assert lines[-1] == "... 195 more refusals in the last 10 s"
