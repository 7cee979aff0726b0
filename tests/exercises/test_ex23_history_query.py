"""Exercise 23: page_before reads one page of a room's history with a parameterised query."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from types import ModuleType

import pytest


@pytest.fixture
def ex(load) -> ModuleType:
    return load("ex23_history_query")


@pytest.fixture
def db(ex) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(":memory:")
    ex.create(connection)
    yield connection
    connection.close()


def say(ex, db, room: str, count: int, start: int = 1, username: str = "alice") -> list[dict]:
    """Store ``count`` messages in ``room`` with ids from ``start``; the frames stored."""
    frames = []
    for number in range(start, start + count):
        frame = {
            "type": "chat",
            "id": number,
            "room": room,
            "username": username,
            "message": f"message {number}",
            "timestamp": 1.7e9 + number,
        }
        ex.store(db, frame)
        frames.append(frame)
    return frames


def ids(frames) -> list[int]:
    return [frame["id"] for frame in frames]


def test_without_before_the_page_is_the_rooms_latest_messages_oldest_first(ex, db):
    say(ex, db, "#rust", 10)
    frames, _ = ex.page_before(db, "#rust", limit=3)
    assert ids(frames) == [8, 9, 10]


def test_before_gives_the_messages_just_below_it_not_the_rooms_first(ex, db):
    say(ex, db, "#rust", 10)
    frames, _ = ex.page_before(db, "#rust", before=8, limit=3)
    assert ids(frames) != [1, 2, 3], "ORDER BY id LIMIT 3 takes the room's first three"
    assert ids(frames) == [5, 6, 7]


def test_more_says_that_older_messages_exist(ex, db):
    say(ex, db, "#rust", 10)
    assert ex.page_before(db, "#rust", before=8, limit=3)[1] is True


def test_more_is_false_when_the_page_holds_the_first_message(ex, db):
    say(ex, db, "#rust", 10)
    frames, more = ex.page_before(db, "#rust", before=4, limit=3)
    assert ids(frames) == [1, 2, 3]
    assert more is False, "exactly `limit` messages were left: nothing older exists"


def test_a_short_last_page_has_what_is_left(ex, db):
    say(ex, db, "#rust", 10)
    frames, more = ex.page_before(db, "#rust", before=3, limit=50)
    assert ids(frames) == [1, 2]
    assert more is False


def test_the_default_limit_is_a_page_of_fifty(ex, db):
    say(ex, db, "#rust", 60)
    frames, more = ex.page_before(db, "#rust")
    assert ids(frames) == list(range(11, 61))
    assert more is True


def test_an_empty_room_gives_an_empty_page_and_no_more(ex, db):
    say(ex, db, "#rust", 3)
    assert ex.page_before(db, "#python") == ([], False)


def test_messages_of_other_rooms_are_never_in_the_page(ex, db):
    say(ex, db, "#rust", 3, start=1)
    say(ex, db, "#python", 3, start=4)
    say(ex, db, "#rust", 3, start=7)
    frames, more = ex.page_before(db, "#rust", limit=10)
    assert ids(frames) == [1, 2, 3, 7, 8, 9]
    assert more is False


def test_each_message_comes_back_exactly_as_it_was_stored(ex, db):
    stored = say(ex, db, "#rust", 3, username="bob")
    frames, _ = ex.page_before(db, "#rust")
    assert frames == stored


def test_paging_back_from_the_newest_visits_every_message_once(ex, db):
    say(ex, db, "#rust", 23)
    seen, before, more = [], None, True
    for _ in range(10):  # 23 messages, 5 a page: 5 pages; 10 tries leave room for a mistake
        frames, more = ex.page_before(db, "#rust", before=before, limit=5)
        seen = ids(frames) + seen
        if not more:
            break
        before = frames[0]["id"]
    assert more is False
    assert seen == list(range(1, 24))


def test_an_injection_attempt_in_the_room_name_is_only_text(ex, db):
    say(ex, db, "#secret", 3)
    # Pasted into the SQL text, this "room" makes the condition true for every row.
    assert ex.page_before(db, "#x' OR '1'='1", limit=10) == ([], False)
    assert ex.page_before(db, "#x' OR 1=1 --", limit=10) == ([], False)


def test_a_room_whose_name_holds_a_quote_is_a_room_like_any_other(ex, db):
    say(ex, db, "it's #rust", 2)
    assert ids(ex.page_before(db, "it's #rust")[0]) == [1, 2]


def test_a_message_full_of_sql_is_stored_and_read_back_as_text(ex, db):
    attack = {
        "type": "chat",
        "id": 1,
        "room": "#lobby",
        "username": "mallory",
        "message": "x'); DROP TABLE messages; --",
        "timestamp": 1.7e9,
    }
    ex.store(db, attack)
    assert ex.page_before(db, "#lobby") == ([attack], False)
    assert db.execute("SELECT count(*) FROM messages").fetchone() == (1,)


class CountingConnection:
    """A connection that counts the rows its queries hand back (sqlite3's own cannot be wrapped)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.rows = 0

    def execute(self, sql: str, parameters=()) -> CountingCursor:
        return CountingCursor(self.db.execute(sql, parameters), self)


class CountingCursor:
    def __init__(self, cursor: sqlite3.Cursor, owner: CountingConnection) -> None:
        self.cursor = cursor
        self.owner = owner

    def _count(self, rows: list) -> list:
        self.owner.rows += len(rows)
        return rows

    def fetchall(self) -> list:
        return self._count(self.cursor.fetchall())

    def fetchmany(self, size: int = 1) -> list:
        return self._count(self.cursor.fetchmany(size))

    def fetchone(self):
        row = self.cursor.fetchone()
        self.owner.rows += row is not None
        return row

    def __iter__(self):
        for row in self.cursor:
            self.owner.rows += 1
            yield row


def test_a_page_reads_only_the_rows_it_needs_not_the_whole_room(ex, db):
    say(ex, db, "#rust", 1000)
    counting = CountingConnection(db)
    frames, more = ex.page_before(counting, "#rust", before=500, limit=10)
    assert ids(frames) == list(range(490, 500))
    assert more is True
    assert counting.rows <= 11, (
        f"the query handed back {counting.rows} rows for a page of 10: let LIMIT do the cutting"
    )
