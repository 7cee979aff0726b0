"""Exercise 23 (notebook 10_extensions): one page of a room's history, from SQLite.

A client that scrolls back through a room's history asks for a *page*: the
messages of that room with an id below ``before``, at most ``limit`` of them,
and whether there are older ones still (``more``), so that it knows when to
stop asking.  Three things make the query right:

* **The latest page, not the oldest.**  ``ORDER BY id LIMIT 3`` gives the
  room's *first* three messages, not the three just below ``before``: sort
  downwards (``DESC``), take ``limit``, and turn them round (oldest first).
* **``more`` for free.**  Ask for ``limit + 1`` rows: if the extra one comes
  back, older messages exist.  It is not part of the page.  No ``count(*)``.
* **Values as parameters, never as SQL text.**  Write ``?`` where each value
  goes and pass the values in a tuple: ``db.execute(sql, (room, before, ...))``.
  A room name such as ``x' OR '1'='1`` pasted into the text would read every
  room's history (notebook 10 shows it); as a parameter it is only a strange
  name.  The tests try it.

The table (:data:`SCHEMA`) and the way messages get in (:func:`store`, a
parameterised ``INSERT``) are given, and :func:`frame_of` turns a row of
:data:`COLUMNS` back into the chat frame it was.  ``INTEGER PRIMARY KEY`` makes
``id`` the row's key; the index on ``(room, id)`` lets SQLite jump straight to
``before`` and read only the rows a page needs, whatever the room's size --
if the query says ``LIMIT``.  Write :func:`page_before` with one ``SELECT``.

Check your work:  python -m exercises 23
Stuck?            python -m exercises --hint 23
"""

from __future__ import annotations

import sqlite3
from typing import Any

#: The table, and an index that makes a page cost the page, not the room.
SCHEMA = """
CREATE TABLE messages (
    id        INTEGER PRIMARY KEY,
    room      TEXT NOT NULL,
    username  TEXT NOT NULL,
    message   TEXT NOT NULL,
    timestamp REAL NOT NULL
);
CREATE INDEX messages_by_room ON messages (room, id);
"""

#: The columns a page reads, in the order frame_of expects them.
COLUMNS = "id, room, username, message, timestamp"

#: A page's size unless the caller asks for another.
HISTORY_PAGE = 50

#: A ``before`` above every id: "the room's latest messages".
NEWEST = 2**63 - 1

Frame = dict[str, Any]


def create(db: sqlite3.Connection) -> None:
    """Make the table (a new, empty database)."""
    db.executescript(SCHEMA)


def store(db: sqlite3.Connection, frame: Frame) -> None:
    """Keep a relayed chat frame.  Every value is a parameter (``?``), never SQL text."""
    db.execute(
        f"INSERT INTO messages ({COLUMNS}) VALUES (?, ?, ?, ?, ?)",  # COLUMNS is ours: safe
        (frame["id"], frame["room"], frame["username"], frame["message"], frame["timestamp"]),
    )


def frame_of(row: tuple[Any, ...]) -> Frame:
    """The chat frame a row of :data:`COLUMNS` was stored from."""
    id_, room, username, message, timestamp = row
    return {
        "type": "chat",
        "id": id_,
        "room": room,
        "username": username,
        "message": message,
        "timestamp": timestamp,
    }


def page_before(
    db: sqlite3.Connection, room: str, before: int | None = None, limit: int = HISTORY_PAGE
) -> tuple[list[Frame], bool]:
    """The latest ``limit`` messages of ``room`` with an id below ``before``, oldest first,
    and whether older ones exist.  ``before=None``: the room's latest messages."""
    # TODO: one parameterised SELECT of COLUMNS (every value a "?"): the room's rows with
    #       an id below before (None: NEWEST), nearest first, limit + 1 of them at most.
    #       more: did the extra row come?  Return the first limit rows, oldest first,
    #       as frames (frame_of), and more.
    raise NotImplementedError("TODO: write page_before()")
