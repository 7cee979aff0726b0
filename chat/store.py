"""Room history in SQLite: one writer thread, batched transactions, nothing on the chat's path.

:mod:`sqlite3` is in the standard library: a whole SQL database in one file,
no server to run.  The chat keeps every room's relayed messages in it, so that
whoever enters a room sees what was said, even after the server restarted.

Four decisions make it safe and fast:

* **One thread owns the database.**  The engines never touch it: they hand
  each relayed message to :meth:`HistoryStore.append`, which only puts it on a
  queue, and ask for history with :meth:`HistoryStore.fetch`, whose answer
  comes back through a callback.  A slow disk can therefore never stall the
  chat -- nor an event loop, which must never wait on anything.
* **Batched transactions.**  Committing makes the disk confirm the write
  (``fsync``), which takes milliseconds; one commit per message would make the
  disk the chat's speed limit.  The writer gathers messages for up to
  :data:`chat.limits.HISTORY_BATCH_SECONDS` and commits them together.  A
  message relayed more than that long before a crash is on disk.
* **WAL mode** (write-ahead log): readers do not wait for the writer, and a
  commit appends to a log instead of rewriting pages.  ``synchronous=NORMAL``
  with WAL survives a killed process (not a power cut in the last moment).
* **Parameterised queries only**: the values travel apart from the SQL text
  (``?`` placeholders), so a message full of quotes and ``'); DROP TABLE`` is
  just text.  Notebook 10 shows what string formatting would do instead.

Ids: every message has one, strictly increasing across restarts -- even when a
crash lost the last messages before they were written.  So the store keeps a
*floor* on disk that no id handed out ever reaches; at start, ids continue
above it, and the writer raises it long before it is reached.

The schema carries a version (``PRAGMA user_version``); :data:`MIGRATIONS` says
how to get from each version to the next, so an older database is upgraded
in place and a newer one is refused rather than misread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chat import protocol
from chat.limits import HISTORY_BATCH_SECONDS, HISTORY_RETENTION
from chat.logthrottle import LogThrottle

__all__ = ["MEMORY", "MIGRATIONS", "HistoryStore", "StoreError", "default_path"]

log = logging.getLogger(__name__)

#: The path that keeps nothing: a database in memory, gone when the server stops.
MEMORY = ":memory:"

#: How far above the highest id the floor is kept.  After a crash, ids continue
#: at the floor, so a restart skips at most this many numbers.
ID_BLOCK = 1_000_000

#: Messages gathered before the writer commits even if the batch time has not passed.
BATCH_SIZE = 1000

#: How to bring a database from version N (index N) to version N + 1.
MIGRATIONS: list[str] = [
    # 0 -> 1: the messages, and a little metadata (the id floor).
    """
    CREATE TABLE messages (
        id        INTEGER PRIMARY KEY,
        room_key  TEXT NOT NULL,
        room      TEXT NOT NULL,
        username  TEXT NOT NULL,
        message   TEXT NOT NULL,
        timestamp REAL NOT NULL,
        action    INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX messages_by_room ON messages (room_key, id);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    """,
]

Frame = dict[str, Any]
Reply = Callable[[list[Frame], bool], None]


class StoreError(Exception):
    """The history database cannot be used; the message says why and what to do."""


def default_path() -> Path:
    """Where ``python -m chat.server`` keeps history unless told (``--db``).

    The platform's place for an application's data: ``$XDG_DATA_HOME`` (or
    ``~/.local/share``) on Linux and other Unixes, ``~/Library/Application
    Support`` on macOS, ``%LOCALAPPDATA%`` on Windows; then ``socket-chat``.
    """
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "socket-chat" / "history.sqlite3"


@dataclass
class _Fetch:
    room: str
    before: int | None
    after: int | None
    limit: int
    reply: Reply


_STOP = object()


class HistoryStore:
    """Every room's history in one SQLite database, written by one thread.

    ``path``: a file, or :data:`MEMORY`.  :meth:`open` (in the caller's
    thread, so that a broken database is reported where it can be) checks the
    file, upgrades its schema and starts the writer; it returns the first
    message id to use.  Then :meth:`append` and :meth:`fetch` may be called
    from any thread, and :meth:`close` writes what is left and stops.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = MEMORY,
        *,
        retention: int = HISTORY_RETENTION,
        batch_seconds: float = HISTORY_BATCH_SECONDS,
    ) -> None:
        self.path = str(path)
        self.retention = retention
        self.batch_seconds = batch_seconds
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._db: sqlite3.Connection | None = None
        self._floor = 0
        self._errors = LogThrottle(log)  # a failing disk is reported now and then

    # -- starting and stopping

    def open(self) -> int:
        """Open (or create) the database and start the writer; return the first id to use."""
        if self._thread is not None:
            raise RuntimeError("the store is already open")
        try:
            db = self._connect()
            first_id = self._prepare(db)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"The history database {self.path} cannot be used ({exc}). "
                "Move it away to start with an empty history, or choose another file (--db)."
            ) from None
        self._db = db
        # The connection was made here but is used only by the writer from now
        # on: check_same_thread=False says we know.
        self._thread = threading.Thread(target=self._run, name="chat-history", daemon=True)
        self._thread.start()
        return first_id

    def close(self, timeout: float = 2.0) -> None:
        """Write what is queued, stop the writer and close the database."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("The history writer did not stop within %g s", timeout)
        self._thread = None

    def _connect(self) -> sqlite3.Connection:
        if self.path != MEMORY:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=2000")
        return db

    def _prepare(self, db: sqlite3.Connection) -> int:
        """Upgrade the schema; raise the id floor; return the first id to use."""
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise sqlite3.DatabaseError(
                f"its schema is version {version}, newer than this program knows "
                f"({len(MIGRATIONS)})"
            )
        for number in range(version, len(MIGRATIONS)):
            # One transaction per step: a step is done completely, or not at all.
            try:
                db.executescript(
                    f"BEGIN; {MIGRATIONS[number]}; PRAGMA user_version = {number + 1}; COMMIT;"
                )
            except sqlite3.Error:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            if self.path != MEMORY:  # worth a line only for a file that outlives us
                log.info("History database %s: schema version %d", self.path, number + 1)
        highest = db.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0]
        floor = db.execute("SELECT value FROM meta WHERE key = 'id_floor'").fetchone()
        first_id = max(highest, floor[0] if floor else 0) + 1
        self._floor = first_id + ID_BLOCK
        with _transaction(db):
            _set_floor(db, self._floor)
        return first_id

    # -- what engines call, from any thread

    def append(self, frame: Frame) -> None:
        """Keep a relayed chat frame (written within the batch time)."""
        self._queue.put(frame)

    def fetch(
        self,
        room: str,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int,
        reply: Reply,
    ) -> None:
        """Read a page of ``room``'s history; ``reply(frames, more)`` is called on the writer.

        Everything appended before this call is included: the writer commits
        what it holds before it reads.  ``before``/``after`` as in
        :meth:`chat.rooms.Room.page`; neither: the room's latest messages.
        """
        self._queue.put(_Fetch(room, before, after, limit, reply))

    # -- the writer thread

    def _run(self) -> None:
        assert self._db is not None
        db = self._db
        pending: list[Frame] = []
        since = 0.0  # when the oldest pending message came
        try:
            while True:
                wait = self.batch_seconds - (time.monotonic() - since) if pending else None
                try:
                    item = self._queue.get(timeout=max(0.0, wait) if wait is not None else None)
                except queue.Empty:
                    item = None  # the batch time is up
                if isinstance(item, dict):
                    if not pending:
                        since = time.monotonic()
                    pending.append(item)
                    if len(pending) < BATCH_SIZE:
                        continue
                self._write(db, pending)  # a read must see everything appended before it
                self._errors.tick()  # failures held back: summarised once their interval is over
                if isinstance(item, _Fetch):
                    self._answer(db, item)
                elif item is _STOP:
                    return
        finally:
            for key in ("write", "read"):  # what is still held back is summarised now
                self._errors.done(key)
            db.close()

    def _write(self, db: sqlite3.Connection, pending: list[Frame]) -> None:
        """Write a batch in one transaction; keep each room within the retention.

        A failure (a full disk, a file gone bad) loses this batch, is logged
        now and then -- never once per message -- and the chat goes on.
        """
        if not pending:
            return
        try:
            self._insert(db, pending)
        except sqlite3.Error as exc:
            self._errors.log(
                "write", logging.ERROR, "failed writes", "History not written: %s", exc
            )
        pending.clear()

    def _insert(self, db: sqlite3.Connection, pending: list[Frame]) -> None:
        rows = [
            (
                f["id"],
                protocol.room_key(f["room"]),
                f["room"],
                f["username"],
                f["message"],
                f["timestamp"],
                1 if f.get("action") else 0,
            )
            for f in pending
        ]
        rooms = {row[1] for row in rows}
        highest = max(row[0] for row in rows)
        with _transaction(db):
            db.executemany(
                "INSERT OR IGNORE INTO messages"
                " (id, room_key, room, username, message, timestamp, action)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            for key in rooms:
                db.execute(
                    "DELETE FROM messages WHERE room_key = ? AND id <= ("
                    " SELECT id FROM messages WHERE room_key = ?"
                    " ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (key, key, self.retention),
                )
            if highest > self._floor - ID_BLOCK // 2:  # keep ids far below the floor
                self._floor = highest + ID_BLOCK
                _set_floor(db, self._floor)

    def _answer(self, db: sqlite3.Connection, fetch: _Fetch) -> None:
        try:
            frames, more = self._read(db, fetch)
        except sqlite3.Error as exc:  # answer anyway: someone may be waiting for it
            self._errors.log("read", logging.ERROR, "failed reads", "History not read: %s", exc)
            frames, more = [], False
        try:
            fetch.reply(frames, more)
        except Exception:  # the engine's callback failed: that is its business, not ours
            log.exception("A history reply failed")

    def _read(self, db: sqlite3.Connection, fetch: _Fetch) -> tuple[list[Frame], bool]:
        key = protocol.room_key(fetch.room)
        columns = "id, room, username, message, timestamp, action"
        if fetch.after is not None:
            rows = db.execute(
                f"SELECT {columns} FROM messages WHERE room_key = ? AND id > ? ORDER BY id LIMIT ?",
                (key, fetch.after, fetch.limit + 1),
            ).fetchall()
            more = len(rows) > fetch.limit
            rows = rows[: fetch.limit]
        else:
            below = fetch.before if fetch.before is not None else 2**63 - 1
            rows = db.execute(
                f"SELECT {columns} FROM messages WHERE room_key = ? AND id < ?"
                " ORDER BY id DESC LIMIT ?",
                (key, below, fetch.limit + 1),
            ).fetchall()
            more = len(rows) > fetch.limit
            rows = rows[: fetch.limit][::-1]  # oldest first
        frames = [
            protocol.chat_broadcast(
                username, message, timestamp, message_id=id_, room=room, action=bool(action)
            )
            for id_, room, username, message, timestamp, action in rows
        ]
        return frames, more


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """``with _transaction(db):`` -- BEGIN, then COMMIT, or ROLLBACK if anything failed."""
    db.execute("BEGIN")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _set_floor(db: sqlite3.Connection, floor: int) -> None:
    db.execute(
        "INSERT INTO meta (key, value) VALUES ('id_floor', ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (floor,),
    )
