"""Every limit in README "Limits", one test (or a few) per row, on real sockets.

Each test starts a server with a small value for the limit it checks, so that
nothing waits long, then behaves like the client the limit is there for: too
big, too slow, too many, too fast.  What the client sees (an ``error`` frame,
then the close) is part of the contract and asserted here.

Some rows are covered elsewhere: the join timeout, "Server full" and the
send-queue bound for a client that stops reading in ``test_server.py``;
floods and endless lines among other clients in ``test_faults.py``.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time

import pytest

from chat import protocol
from chat.client import ChatClient
from chat.limits import FLOOD_DISCONNECT_STRIKES, Limits, add_arguments
from chat.protocol import MAX_FRAME_BYTES, MAX_MESSAGE_CHARS, MAX_SERVER_FRAME_BYTES
from chat.server.__main__ import build_parser
from tests.helpers import TIMEOUT, RawPeer, server_program, wait_for


def chat(text: str) -> dict:
    return {"type": "chat", "message": text}


def next_error(peer: RawPeer) -> str:
    return peer.recv_until("error")["message"]


# -- frame and message size


def test_default_frame_limit_holds_the_longest_message_of_four_byte_characters(server):
    assert MAX_FRAME_BYTES >= 16 * 1024
    longest = "👋" * MAX_MESSAGE_CHARS  # 16,000 bytes of UTF-8
    with RawPeer(server.address) as alice:
        alice.join("alice")
        alice.send(protocol.encode(protocol.chat(longest)))
        assert alice.recv_until("chat")["message"] == longest


def test_line_longer_than_frame_limit_gets_error_then_close(make_server):
    server = make_server(Limits(max_frame_bytes=1024))
    with RawPeer(server.address) as peer:
        peer.join("alice")
        peer.send(b'{"type": "chat", "message": "' + b"x" * 2000 + b'"}\n')
        assert "1024 bytes" in next_error(peer)
        assert peer.closed_by_server()


def test_frame_just_under_frame_limit_is_accepted(make_server):
    server = make_server(Limits(max_frame_bytes=1024))
    frame = protocol.encode(protocol.chat("x" * 900))
    assert len(frame) - 1 <= 1024
    with RawPeer(server.address) as peer:
        peer.join("alice")
        peer.send(frame)
        assert peer.recv_until("chat")["message"] == "x" * 900


def test_message_over_character_limit_gets_error_and_connection_stays_open(server):
    with RawPeer(server.address) as peer:
        peer.join("alice")
        peer.send(chat("x" * (MAX_MESSAGE_CHARS + 1)))
        assert f"limit is {MAX_MESSAGE_CHARS}" in next_error(peer)
        peer.send(chat("still here"))
        assert peer.recv_until("chat")["message"] == "still here"


# -- timeouts


def test_joined_connection_that_falls_silent_gets_idle_timeout_then_close(make_server):
    server = make_server(Limits(idle_timeout=0.5))
    with RawPeer(server.address) as peer:
        peer.join("alice")
        assert "Idle timeout" in next_error(peer)
        assert peer.closed_by_server()


def test_client_keep_alive_pings_keep_a_quiet_client_connected(make_server):
    server = make_server(Limits(idle_timeout=0.8))
    with ChatClient(*server.address, keepalive=0.2) as client:
        client.connect("alice")
        time.sleep(2.0)  # well past the idle timeout, saying nothing but pings
        assert client.connected
        assert server.usernames() == ["alice"]


# -- how many connections


def test_a_place_freed_below_max_clients_can_be_taken_again(make_server):
    server = make_server(Limits(max_clients=1))
    with RawPeer(server.address) as first:
        first.join("alice")

    def place_taken() -> bool:  # the place is free once the server has closed its end
        with RawPeer(server.address) as again:
            return again.join("bob")["type"] == "welcome"

    wait_for(place_taken, interval=0.05)


def test_connection_past_max_per_ip_gets_too_many_connections_then_close(make_server):
    server = make_server(Limits(max_connections_per_ip=2))
    with RawPeer(server.address) as first, RawPeer(server.address) as second:
        first.join("alice")
        second.join("bob")
        with RawPeer(server.address) as third:
            assert "Too many connections from 127.0.0.1" in next_error(third)
            assert third.closed_by_server()


def test_per_ip_limit_is_off_by_default(server):
    peers = [RawPeer(server.address) for _ in range(10)]
    try:
        for number, peer in enumerate(peers):
            assert peer.join(f"user{number}")["type"] == "welcome"
    finally:
        for peer in peers:
            peer.close()


# -- rate


def test_frames_past_the_burst_get_slow_down_and_the_connection_stays(make_server):
    server = make_server(Limits(rate_limit=2, rate_burst=3))
    with RawPeer(server.address) as peer:
        peer.join("alice")  # the join takes one token of three
        peer.send(b"".join(protocol.encode(protocol.chat(f"m{i}")) for i in range(4)))
        frames = [peer.recv_frame() for _ in range(4)]
        assert [f["type"] for f in frames].count("chat") == 2
        assert [f["message"] for f in frames if f["type"] == "error"] == [
            "Slow down: at most 2 messages a second"
        ] * 2
        time.sleep(0.6)  # the bucket refills: one more token
        peer.send(chat("later"))
        assert peer.recv_until("chat")["message"] == "later"


def test_sustained_flood_is_disconnected_as_excess_flood(make_server):
    server = make_server(Limits(rate_limit=1, rate_burst=2, flood_disconnect_strikes=5))
    with RawPeer(server.address) as peer:
        peer.join("alice")
        peer.send(b"".join(protocol.encode(protocol.chat(f"m{i}")) for i in range(50)))
        errors = []
        while not errors or "Excess flood" not in errors[-1]:
            errors.append(next_error(peer))
        assert errors[:-1] == ["Slow down: at most 1 messages a second"] * 4
        assert peer.closed_by_server()


def test_bad_frames_count_against_the_rate_too(make_server):
    server = make_server(Limits(rate_limit=1, rate_burst=2, flood_disconnect_strikes=5))
    with RawPeer(server.address) as peer:
        peer.send(b"not json\n" * 100)
        answers = []
        while not answers or "Excess flood" not in answers[-1]:
            answers.append(next_error(peer))
        assert answers[:2] == ["Frame is not valid JSON"] * 2
        assert len(answers) == 2 + 5
        assert peer.closed_by_server()


def test_rate_limit_zero_turns_the_limit_off(make_server):
    server = make_server(Limits(rate_limit=0))
    count = 300
    with RawPeer(server.address) as peer:
        peer.join("alice")
        peer.send(b"".join(protocol.encode(protocol.chat(f"m{i}")) for i in range(count)))
        received = [peer.recv_frame() for _ in range(count)]
        assert [f.get("message") for f in received] == [f"m{i}" for i in range(count)]


def test_default_rate_lets_a_person_paste_a_few_lines_at_once(server):
    assert FLOOD_DISCONNECT_STRIKES > 1
    with RawPeer(server.address) as peer:
        peer.join("alice")
        lines = [f"pasted line {i}" for i in range(15)]
        peer.send(b"".join(protocol.encode(protocol.chat(line)) for line in lines))
        assert [peer.recv_frame()["message"] for _ in lines] == lines


def test_client_drops_a_server_that_sends_a_line_longer_than_its_frame_limit():
    """Clients bound what they buffer too: MAX_SERVER_FRAME_BYTES (1 MiB)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)

    def hostile_server() -> None:
        with listener, listener.accept()[0] as conn:
            conn.recv(4096)  # the join
            conn.sendall(protocol.encode(protocol.welcome("alice", ["alice"])))
            try:
                conn.sendall(b"x" * (MAX_SERVER_FRAME_BYTES + 100_000))  # and no newline
            except OSError:
                pass  # the client hung up on us: what we want

    thread = threading.Thread(target=hostile_server, daemon=True)
    thread.start()
    with ChatClient(*listener.getsockname()[:2], keepalive=None) as client:
        client.connect("alice")
        while (event := client.events.get(timeout=TIMEOUT))["type"] != "disconnected":
            pass
        assert "bad frame" in event["reason"]
    thread.join(TIMEOUT)


# -- the command line


def parse_limits(*flags: str) -> Limits:
    return Limits.from_args(build_parser().parse_args(list(flags)))


def test_no_limit_flags_means_the_documented_defaults():
    assert parse_limits() == Limits()


def test_every_limit_flag_reaches_its_limit():
    limits = parse_limits(
        "--max-clients=7",
        "--max-per-ip=3",
        "--rate-limit=0",
        "--rate-burst=9",
        "--join-timeout=4.5",
        "--idle-timeout=60",
        "--max-frame-bytes=20000",
        "--max-send-queue=100000",
    )
    assert limits == Limits(
        max_clients=7,
        max_connections_per_ip=3,
        rate_limit=0,
        rate_burst=9,
        join_timeout=4.5,
        idle_timeout=60,
        max_frame_bytes=20000,
        max_send_queue_bytes=100000,
    )


@pytest.mark.parametrize(
    "flag",
    [
        "--max-clients=0",
        "--max-per-ip=-1",
        "--rate-limit=-2",
        "--rate-limit=nan",
        "--join-timeout=0",
        "--idle-timeout=soon",
        "--max-frame-bytes=100",
    ],
)
def test_limit_flag_with_impossible_value_is_refused(flag, capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args([flag])
    assert "expected" in capsys.readouterr().err


def test_server_command_applies_its_limit_flags():
    """The real program, in a subprocess: --max-clients 1 turns the second client away."""
    with server_program("--max-clients", "1", "--rate-limit", "0") as program:
        port = program.port
        address = ("127.0.0.1", port)
        with RawPeer(address) as first, RawPeer(address) as second:
            assert first.join("alice")["type"] == "welcome"
            assert "Server full (1 connections)" in next_error(second)
