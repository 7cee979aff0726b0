"""Fuzzing the running server: random bytes and random JSON from several connections.

Hypothesis invents what hostile or broken peers send -- raw bytes, JSON of
every shape, frames that look almost right -- and sends it on a few
connections while two well-behaved clients chat.  Whatever it invents, three
things must hold:

* the server stays up;
* the well-behaved clients lost nothing, and heard it all in the same order;
* a fresh pair of clients can still join and chat.

One server per engine serves every example, so damage would add up.  When a
property fails, Hypothesis shrinks the input to a small example that shows it.
"""

from __future__ import annotations

import itertools
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat import protocol
from tests.helpers import RawPeer

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)

#: Frames that look like the protocol: known and unknown types, fields of any shape.
almost_frames = st.fixed_dictionaries(
    {"type": st.sampled_from(["join", "chat", "ping", "welcome", "pong", "error", "x"])},
    optional={
        "username": st.from_regex(r"[A-Za-z0-9_-]{1,22}", fullmatch=True) | json_values,
        "message": st.text() | json_values,
    },
)

payloads = st.one_of(
    st.binary(max_size=3000),  # anything at all, maybe with newlines in it
    st.binary(max_size=300).map(lambda b: b + b"\n"),
    json_values.map(lambda v: json.dumps(v).encode() + b"\n"),
    almost_frames.map(lambda f: json.dumps(f, ensure_ascii=False).encode() + b"\n"),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass") + b"\n"),
)

#: Per example: 1-3 hostile connections, each sending 1-6 payloads.
attacks = st.lists(st.lists(payloads, min_size=1, max_size=6), min_size=1, max_size=3)

_names = itertools.count()


def chat(text: str) -> bytes:
    return protocol.encode(protocol.chat(text))


def heard_from(peer: RawPeer, names: set[str], count: int) -> list[tuple[str, str]]:
    """The next ``count`` chat messages from ``names``, skipping everything else."""
    heard = []
    while len(heard) < count:
        frame = peer.recv_until("chat")
        if frame["username"] in names:
            heard.append((frame["username"], frame["message"]))
    return heard


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(attacks=attacks)
def test_random_bytes_and_json_never_hurt_the_server_or_well_behaved_clients(server, attacks):
    number = next(_names)
    alice_name, bob_name = f"fz{number}a", f"fz{number}b"
    with RawPeer(server.address) as alice, RawPeer(server.address) as bob:
        assert alice.join(alice_name)["type"] == "welcome"
        assert bob.join(bob_name)["type"] == "welcome"
        hostile = [RawPeer(server.address) for _ in attacks]
        sent = []
        try:
            for round_number, sends in enumerate(itertools.zip_longest(*attacks)):
                for peer, payload in zip(hostile, sends, strict=True):
                    if payload is not None:
                        try:
                            peer.send(payload)
                        except OSError:
                            pass  # the server may already have closed this one
                if round_number < 3:  # the good clients talk in between
                    for name, peer in ((alice_name, alice), (bob_name, bob)):
                        text = f"{name} says {round_number}"
                        peer.send(chat(text))
                        sent.append((name, text))
        finally:
            for peer in hostile:
                peer.close()
        good = {alice_name, bob_name}
        heard_by_alice = heard_from(alice, good, len(sent))
        heard_by_bob = heard_from(bob, good, len(sent))
        assert sorted(heard_by_alice) == sorted(sent)  # nothing lost
        assert heard_by_alice == heard_by_bob  # everyone heard the same order
    assert server.running
    with RawPeer(server.address) as carol, RawPeer(server.address) as dave:
        assert carol.join(f"fz{number}c")["type"] == "welcome"
        assert dave.join(f"fz{number}d")["type"] == "welcome"
        carol.send(chat("still chatting"))
        assert dave.recv_until("chat")["message"] == "still chatting"
