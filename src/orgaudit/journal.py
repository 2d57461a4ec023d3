"""The pull's journal: the lists a pull has finished, on disk, so an interrupted pull
resumes where it stopped instead of starting over.

One SQLite file beside the snapshot database (``orgaudit.db.journal``), created owner-only.
Each finished list is recorded with its items; lists are written in batches (every
:data:`BATCH` lists or :data:`BATCH_SECONDS`), so a crash loses at most the last batch,
which a resumed pull asks for again. A list that failed is not recorded: a resumed pull
asks for it again too. The journal remembers when its pull started, so a resumed pull
keeps that "as of" time and audit-log window, and its snapshot equals an uninterrupted
pull's. It is deleted once the snapshot is written. The key is never written to it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from orgaudit.errors import StoreError

BATCH = 200
BATCH_SECONDS = 0.25
MAX_AGE = timedelta(hours=24)  # an older journal is not resumed: the org has moved on

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lists (
    source TEXT NOT NULL,
    place TEXT NOT NULL,
    items TEXT NOT NULL,
    PRIMARY KEY (source, place)
);
"""


def journal_path(db_path: Path) -> Path:
    """Where the journal of pulls into ``db_path`` lives."""
    return db_path.with_name(db_path.name + ".journal")


def finished_lists(path: Path) -> int:
    """How many finished lists the journal at ``path`` holds (0 if none can be read yet):
    how far an unfinished pull got."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM lists").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


@dataclass(frozen=True)
class Unfinished:
    """An unfinished pull found in a journal."""

    started_at: datetime
    lists: int
    resumable: bool
    why_not: str


class Journal:
    """The finished lists of one pull, by source and place (project, user, group)."""

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection,
        done: dict[tuple[str, str], str],
        started_at: datetime,
    ) -> None:
        self.path = path
        self.started_at = started_at  # the pull's "as of" time, kept across a resume
        self._conn = conn
        self._done = done
        self._pending: list[tuple[str, str, str]] = []
        self._flushed_at = time.monotonic()
        self.replayed = 0

    @staticmethod
    def inspect(path: Path, fingerprint: str, now: datetime) -> Unfinished | None:
        """The unfinished pull the journal at ``path`` holds, if any, and whether it can
        be resumed by a pull with this ``fingerprint`` (what it reads and from where)."""
        if not path.exists():
            return None
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
                lists = conn.execute("SELECT COUNT(*) FROM lists").fetchone()[0]
            finally:
                conn.close()
            started = datetime.fromisoformat(meta["started_at"])
        except (sqlite3.Error, KeyError, ValueError):
            return Unfinished(now, 0, False, "the journal cannot be read")
        if meta.get("fingerprint") != fingerprint:
            return Unfinished(started, lists, False, "it read another org or with other options")
        if now - started > MAX_AGE:
            return Unfinished(started, lists, False, "it is older than 24 hours")
        return Unfinished(started, lists, True, "")

    @classmethod
    def begin(cls, path: Path, fingerprint: str, started_at: datetime, resume: bool) -> Journal:
        """Open the journal: the one found, to resume it, or a new one for ``started_at``."""
        try:
            if not resume:
                path.unlink(missing_ok=True)
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            conn = sqlite3.connect(path, isolation_level=None)
            conn.executescript(_SCHEMA)
            conn.execute("PRAGMA synchronous = NORMAL")
            if not resume:
                conn.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [("fingerprint", fingerprint), ("started_at", started_at.isoformat())],
                )
            done = {
                (source, place): items
                for source, place, items in conn.execute("SELECT source, place, items FROM lists")
            }
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the pull's journal {path}: {exc}") from None
        return cls(path, conn, done, started_at)

    def finished(self, source: str, place: tuple[str | None, ...]) -> list[Any] | None:
        """The items of a list an earlier run of this pull finished, or None."""
        items = self._done.get((source, _place(place)))
        if items is None:
            return None
        self.replayed += 1
        loaded: list[Any] = json.loads(items)
        return loaded

    def record(self, source: str, place: tuple[str | None, ...], items: list[Any]) -> None:
        """Note a finished list; written with the next batch."""
        text = json.dumps(items, ensure_ascii=False, separators=(",", ":"))
        self._pending.append((source, _place(place), text))
        if len(self._pending) >= BATCH or time.monotonic() - self._flushed_at >= BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write the pending lists in one transaction."""
        if self._pending:
            try:
                with self._conn:
                    self._conn.execute("BEGIN")
                    self._conn.executemany(
                        "INSERT OR REPLACE INTO lists VALUES (?, ?, ?)", self._pending
                    )
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write the pull's journal {self.path}: {exc}") from None
            self._pending.clear()
        self._flushed_at = time.monotonic()

    def keep(self) -> None:
        """The pull stopped: write what is pending, so a resumed pull can use it (a
        journal with nothing in it is removed: there is nothing to resume)."""
        try:
            self.flush()
            empty = self._conn.execute("SELECT COUNT(*) FROM lists").fetchone()[0] == 0
        finally:
            self._conn.close()
        if empty:
            self.path.unlink(missing_ok=True)

    def discard(self) -> None:
        """The snapshot is written: the journal has served."""
        self._conn.close()
        self.path.unlink(missing_ok=True)


def _place(place: tuple[str | None, ...]) -> str:
    return json.dumps(place)
