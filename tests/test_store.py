"""The history store: SQLite with one writer thread, in files under tmp_path (or in memory).

What it promises (chat/store.py): what is appended can be read back exactly;
queries are parameterised; each room keeps at most its retention; ids keep
growing across restarts, even after a crash; an old schema is upgraded and a
broken or newer database is refused with a clear error.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
from pathlib import Path

import pytest

from chat import protocol
from chat.limits import LOG_BURST
from chat.store import ID_BLOCK, MEMORY, HistoryStore, StoreError, default_path
from tests.helpers import TIMEOUT


def chat(n: int, room: str = "#lobby", text: str | None = None, name: str = "alice") -> dict:
    return protocol.chat_broadcast(name, text or f"m{n}", 1000.0 + n, message_id=n, room=room)


def fetch(store: HistoryStore, room: str, **bounds: int) -> tuple[list[dict], bool]:
    """Ask the store for a page and wait (bounded) for its answer."""
    answers: queue.Queue = queue.Queue()
    bounds.setdefault("limit", 50)
    store.fetch(room, reply=lambda frames, more: answers.put((frames, more)), **bounds)
    return answers.get(timeout=TIMEOUT)


@pytest.fixture
def store(tmp_path: Path):
    opened = HistoryStore(tmp_path / "history.sqlite3")
    opened.open()
    yield opened
    opened.close()


def test_what_is_appended_is_read_back_exactly_oldest_first(store):
    frames = [chat(n) for n in range(1, 6)]
    for frame in frames:
        store.append(frame)
    assert fetch(store, "#lobby") == (frames, False)


def test_a_read_sees_everything_appended_before_it_without_waiting_for_the_batch(tmp_path):
    slow = HistoryStore(tmp_path / "h.sqlite3", batch_seconds=60)  # a batch would wait a minute
    slow.open()
    try:
        slow.append(chat(1))
        assert fetch(slow, "#lobby")[0] == [chat(1)]
    finally:
        slow.close()


def test_an_action_comes_back_as_an_action(store):
    action = protocol.chat_broadcast("alice", "waves", 1.0, message_id=1, room="#x", action=True)
    store.append(action)
    assert fetch(store, "#x")[0] == [action]


def test_rooms_are_kept_apart_and_found_without_regard_to_case(store):
    store.append(chat(1, "#Rust"))
    store.append(chat(2, "#lobby"))
    assert fetch(store, "#rust")[0] == [chat(1, "#Rust")]


def test_pages_before_and_after_an_id(store):
    for n in range(1, 11):
        store.append(chat(n))
    frames, more = fetch(store, "#lobby", before=6, limit=3)
    assert ([f["id"] for f in frames], more) == ([3, 4, 5], True)
    frames, more = fetch(store, "#lobby", after=7, limit=5)
    assert ([f["id"] for f in frames], more) == ([8, 9, 10], False)


def test_quotes_semicolons_and_sql_in_names_and_text_are_only_text(store):
    """Every query is parameterised: nothing a client sends is ever SQL."""
    evil = "Robert'); DROP TABLE messages; -- \" ` \\ ; '' %s {}"
    frame = chat(1, "#lobby", text=evil, name="x'); DROP TABLE messages;--")
    store.append(frame)
    store.append(chat(2, "#'; DELETE FROM messages; --"))
    assert fetch(store, "#lobby")[0] == [frame]
    assert fetch(store, "#'; DELETE FROM messages; --")[0] == [
        chat(2, "#'; DELETE FROM messages; --")
    ]


def test_each_room_keeps_at_most_its_retention(tmp_path):
    small = HistoryStore(tmp_path / "h.sqlite3", retention=5)
    small.open()
    try:
        for n in range(1, 13):
            small.append(chat(n))
            small.append(chat(100 + n, "#other"))
        frames, more = fetch(small, "#lobby")
        assert ([f["id"] for f in frames], more) == ([8, 9, 10, 11, 12], False)
    finally:
        small.close()


def test_everything_appended_is_on_disk_after_close(tmp_path):
    path = tmp_path / "h.sqlite3"
    first = HistoryStore(path)
    first.open()
    first.append(chat(1))
    first.close()
    again = HistoryStore(path)
    again.open()
    try:
        assert fetch(again, "#lobby")[0] == [chat(1)]
    finally:
        again.close()


def test_ids_continue_above_everything_handed_out_before_even_after_a_crash(tmp_path):
    path = tmp_path / "h.sqlite3"
    first = HistoryStore(path)
    start = first.open()
    assert start == 1
    # A crash: ids up to 700,000 were handed out, but never written.
    first.append(chat(3))
    first.close()
    second = HistoryStore(path)
    resumed = second.open()
    second.close()
    assert resumed > 1 + ID_BLOCK - 1  # above the floor set before any id was used
    third = HistoryStore(path)
    assert third.open() > resumed  # and again above, restart after restart
    third.close()


def test_a_missing_database_is_created_with_its_folders(tmp_path):
    path = tmp_path / "new" / "folder" / "history.sqlite3"
    store = HistoryStore(path)
    assert store.open() == 1
    store.close()
    assert path.exists()


def test_a_file_that_is_not_a_database_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "torn.sqlite3"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)  # a torn, half-written file
    with pytest.raises(StoreError, match="cannot be used") as caught:
        HistoryStore(path).open()
    assert "Move it away" in str(caught.value)


def test_a_database_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "newer.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer"):
        HistoryStore(path).open()


def test_an_empty_database_of_version_0_is_upgraded(tmp_path):
    path = tmp_path / "old.sqlite3"
    sqlite3.connect(path).close()  # an empty file, schema version 0
    store = HistoryStore(path)
    store.open()
    store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] >= 1
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_in_memory_history_works_and_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = HistoryStore(MEMORY)
    store.open()
    try:
        store.append(chat(1))
        assert fetch(store, "#lobby")[0] == [chat(1)]
    finally:
        store.close()
    assert list(tmp_path.iterdir()) == []


def test_the_default_file_is_in_the_users_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    path = default_path()
    assert path.name == "history.sqlite3" and path.parent.name == "socket-chat"


class FullDisk(HistoryStore):
    """A store whose every write fails, as on a full disk."""

    def _insert(self, db: sqlite3.Connection, pending: list[dict]) -> None:
        raise sqlite3.OperationalError("database or disk is full")


def test_failed_writes_are_logged_a_few_times_then_summarised(tmp_path, caplog):
    failing = FullDisk(tmp_path / "h.sqlite3")
    failing.open()
    with caplog.at_level(logging.ERROR, logger="chat.store"):
        for n in range(1, LOG_BURST + 4):
            failing.append(chat(n))
            fetch(failing, "#lobby")  # the writer writes (and fails) before it reads
        failing.close()
    lines = [record.getMessage() for record in caplog.records]
    assert lines[:LOG_BURST] == ["History not written: database or disk is full"] * LOG_BURST
    [summary] = lines[LOG_BURST:]
    assert summary.startswith("... 3 more failed writes in the last")
