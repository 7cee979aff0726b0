"""PROTOCOL.md is the normative description: every frame the code sends or accepts is in it.

These tests read the table of every frame (PROTOCOL.md, section 14) and hold
the code to it: each type a client may send, each frame the server builds, and
each field of those frames must be listed there, so that the specification
cannot fall behind the code unnoticed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chat import protocol

ROOT = Path(__file__).resolve().parent.parent
SPEC = (ROOT / "PROTOCOL.md").read_text(encoding="utf-8")


def frame_table() -> dict[tuple[str, str], set[str]]:
    """(type, "client" or "server") -> the fields section 14 lists for it."""
    section = SPEC.split("## 14. Every frame at a glance", 1)[1]
    rows: dict[tuple[str, str], set[str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`"):
            continue
        kind = cells[0].strip("`")
        sender = "client" if cells[1].startswith("client") else "server"
        rows[(kind, sender)] = set(re.findall(r"`(\w+)`", cells[3]))
    return rows


TABLE = frame_table()

#: One of each frame the server builds, with every optional field present.
SERVER_FRAMES = [
    protocol.welcome("alice", ["alice"], {"rate_limit": 5}, features=["rooms"], rooms=["#lobby"]),
    protocol.chat_broadcast("alice", "hi", 1.0, message_id=1, room="#lobby", action=True),
    protocol.user_joined("alice", "#lobby"),
    protocol.user_left("alice", "#lobby"),
    protocol.error("no", 7),
    protocol.pong(7),
    protocol.server_shutdown(),
    protocol.room_joined("#rust", ["alice"]),
    protocol.room_left("#rust"),
    protocol.rooms_list([("#lobby", 1)]),
    protocol.users_list("#lobby", ["alice"]),
    protocol.private("alice", "bob", "hi", 1.0, 2),
    protocol.user_renamed("alice", "alicia"),
    protocol.history("#lobby", [], False),
]

#: One of each frame a client may send, with every optional field present.
CLIENT_FRAMES = [
    protocol.join("alice", ["rooms"]),
    protocol.chat("hi", room="#rust", action=True),
    protocol.ping(7),
    protocol.join_room("#rust"),
    protocol.leave_room("#rust"),
    {"type": "rooms"},
    {"type": "users", "room": "#rust"},
    {"type": "private", "to": "bob", "message": "hi"},
    {"type": "nick", "username": "alicia"},
    {"type": "history", "room": "#rust", "before": 5, "after": 5, "limit": 10},
]


def test_the_table_lists_every_type_a_client_may_send():
    assert {kind for kind, sender in TABLE if sender == "client"} == set(protocol.CLIENT_TYPES)


@pytest.mark.parametrize("frame", SERVER_FRAMES, ids=lambda f: f["type"])
def test_every_frame_the_server_builds_is_in_the_table_with_every_field(frame):
    listed = TABLE.get((frame["type"], "server"))
    assert listed is not None, f"{frame['type']} is not in PROTOCOL.md section 14"
    assert set(frame) - {"type"} <= listed


@pytest.mark.parametrize("frame", CLIENT_FRAMES, ids=lambda f: f["type"])
def test_every_field_a_client_may_send_is_in_the_table(frame):
    listed = TABLE.get((frame["type"], "client"))
    assert listed is not None, f"{frame['type']} is not in PROTOCOL.md section 14"
    assert set(frame) - {"type"} <= listed


def test_every_frame_type_named_in_the_code_is_specified():
    """A scan of chat/ for ``"type": "..."`` -- what a builder might have missed."""
    named = set()
    for path in (ROOT / "chat").rglob("*.py"):
        named |= set(re.findall(r"[\"']type[\"']\s*:\s*[\"']([a-z_]+)[\"']", path.read_text()))
    missing = {kind for kind in named if f"`{kind}`" not in SPEC}
    assert not missing, f"frame types used in chat/ but not in PROTOCOL.md: {sorted(missing)}"


def test_every_feature_the_server_offers_is_specified():
    for feature in protocol.FEATURES:
        assert f"| `{feature}` |" in SPEC


def test_every_error_the_table_of_errors_quotes_is_one_the_code_can_say():
    """The quoted messages of section 12 exist in the code (not invented, not stale)."""
    errors = SPEC.split("## 12. Errors", 1)[1].split("## 13.", 1)[0]
    code = "\n".join(p.read_text() for p in (ROOT / "chat").rglob("*.py"))
    for quoted in re.findall(r"`([A-Za-z][^`]{6,}?)`", errors):
        # The fixed words: the longest piece between names, numbers and quotes.
        pieces = re.split(r"[#'\"{}()\d…]|\.\.\.|: ", quoted)
        stem = max((piece.strip() for piece in pieces), key=len)
        assert stem in code, f"PROTOCOL.md quotes an error the code never says: {quoted!r}"
