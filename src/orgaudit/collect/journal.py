"""The pull's journal: every page a pull reads, on disk as it arrives, so the pull's
memory does not grow with the org and an interrupted pull resumes where it stopped.

One SQLite file beside the snapshot database (``orgaudit.db.journal``), created owner-only.
Each list the pull reads has a row in ``lists`` and its pages in ``pages``, in the order
they came; a list is marked finished once its last page is in. Writes are batched (every
:data:`BATCH` writes, :data:`BATCH_BYTES` of pages or :data:`BATCH_SECONDS`), so a crash
loses at most the last batch. A resumed pull takes the finished lists from the journal
without asking for them and asks for every other list again, its earlier pages dropped.
The journal remembers when its pull started, so a resumed pull keeps that "as of" time and
audit-log window, and its snapshot equals an uninterrupted pull's. The snapshot is written
from the journal, and the journal deleted once it is. The key is never written to it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from orgaudit.errors import StoreError

BATCH = 200
BATCH_BYTES = 8 * 1024 * 1024
BATCH_SECONDS = 0.25
MAX_AGE = timedelta(hours=24)  # an older journal is not resumed: the org has moved on
FORMAT = "2"  # a journal another version wrote is set aside, never misread

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lists (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    place TEXT NOT NULL,
    finished INTEGER NOT NULL,
    UNIQUE (source, place)
);
CREATE TABLE IF NOT EXISTS pages (
    list_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    items TEXT NOT NULL,
    PRIMARY KEY (list_id, seq)
);
"""

Place = tuple[str | None, ...]


def journal_path(db_path: Path) -> Path:
    """Where the journal of pulls into ``db_path`` lives."""
    return db_path.with_name(db_path.name + ".journal")


def finished_lists(path: Path) -> int:
    """How many finished lists the journal at ``path`` holds (0 if none can be read yet):
    how far an unfinished pull got."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return int(conn.execute(_COUNT_FINISHED).fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


_COUNT_FINISHED = "SELECT COUNT(*) FROM lists WHERE finished = 1"
_COUNT_ALL = "SELECT COUNT(*) FROM lists"


@dataclass(frozen=True)
class Unfinished:
    """An unfinished pull found in a journal."""

    started_at: datetime
    lists: int
    resumable: bool
    why_not: str


@dataclass
class JournaledList:
    """One list of the pull in the journal (mutable: its pages are still coming)."""

    id: int
    finished: bool
    stale: bool  # holds pages an earlier run read: dropped before it is asked again
    pages: int = 0


class Journal:
    """The lists of one pull and their pages, by source and place (project, user, group)."""

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection,
        lists: dict[tuple[str, str], JournaledList],
        started_at: datetime,
    ) -> None:
        self.path = path
        self.started_at = started_at  # the pull's "as of" time, kept across a resume
        self._conn = conn
        self._lists = lists
        self._next_id = max((entry.id for entry in lists.values()), default=0) + 1
        self._stale: list[tuple[int]] = []
        self._new_lists: list[tuple[int, str, str]] = []
        self._pages: list[tuple[int, int, str]] = []
        self._finished: list[tuple[int]] = []
        self._pending_bytes = 0
        self._flushed_at = time.monotonic()

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
                # The first format kept finished lists only; this one marks them.
                count = _COUNT_FINISHED if meta.get("format") == FORMAT else _COUNT_ALL
                lists = conn.execute(count).fetchone()[0]
            finally:
                conn.close()
            started = datetime.fromisoformat(meta["started_at"])
        except (sqlite3.Error, KeyError, ValueError):
            return Unfinished(now, 0, False, "the journal cannot be read")
        if meta.get("format") != FORMAT:
            return Unfinished(started, lists, False, "another version of orgaudit wrote it")
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
                    [
                        ("format", FORMAT),
                        ("fingerprint", fingerprint),
                        ("started_at", started_at.isoformat()),
                    ],
                )
            lists = {
                (source, place): JournaledList(list_id, bool(finished), stale=True)
                for list_id, source, place, finished in conn.execute(
                    "SELECT id, source, place, finished FROM lists"
                )
            }
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the pull's journal {path}: {exc}") from None
        return cls(path, conn, lists, started_at)

    def finished(self, source: str, place: Place) -> JournaledList | None:
        """The list, if an earlier run of this pull finished it."""
        entry = self._lists.get((source, _place(place)))
        return entry if entry is not None and entry.finished else None

    def start(self, source: str, place: Place) -> JournaledList:
        """A list about to be asked for, with whatever an earlier run read of it dropped.

        A list asked twice in one run (a server that lists a project twice) goes on
        where its first asking ended, so both askings' items reach the snapshot.
        """
        key = (source, _place(place))
        entry = self._lists.get(key)
        if entry is None:
            entry = self._lists[key] = JournaledList(self._next_id, finished=False, stale=False)
            self._next_id += 1
            self._new_lists.append((entry.id, source, key[1]))
        elif entry.stale:
            self._stale.append((entry.id,))
            entry.stale, entry.finished = False, False
        return entry

    def add_page(self, entry: JournaledList, items: list[Any]) -> None:
        """Note a page of a list; written with the next batch."""
        # ASCII: a lone surrogate (which JSON allows) cannot be stored as UTF-8 text.
        text = json.dumps(items, separators=(",", ":"))
        self._pages.append((entry.id, entry.pages, text))
        entry.pages += 1
        self._pending_bytes += len(text)
        self._maybe_flush()

    def finish(self, entry: JournaledList) -> None:
        """Note that a list's last page is in; written with the next batch."""
        entry.finished = True
        self._finished.append((entry.id,))
        self._maybe_flush()

    def pages(self, entry: JournaledList) -> Iterator[list[Any]]:
        """The pages of a list, in the order they came, read back from disk."""
        self.flush()
        try:  # a page at a time: a list's pages are never all in memory at once
            for (text,) in self._conn.execute(
                "SELECT items FROM pages WHERE list_id = ? ORDER BY seq", (entry.id,)
            ):
                page: list[Any] = json.loads(text)
                yield page
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the pull's journal {self.path}: {exc}") from None

    def _maybe_flush(self) -> None:
        writes = len(self._pages) + len(self._finished) + len(self._new_lists)
        if (
            writes >= BATCH
            or self._pending_bytes >= BATCH_BYTES
            or time.monotonic() - self._flushed_at >= BATCH_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        """Write the pending pages and lists in one transaction."""
        if self._stale or self._new_lists or self._pages or self._finished:
            try:
                with self._conn:
                    self._conn.execute("BEGIN")
                    self._conn.executemany("DELETE FROM pages WHERE list_id = ?", self._stale)
                    self._conn.executemany(
                        "UPDATE lists SET finished = 0 WHERE id = ?", self._stale
                    )
                    self._conn.executemany("INSERT INTO lists VALUES (?, ?, ?, 0)", self._new_lists)
                    self._conn.executemany("INSERT INTO pages VALUES (?, ?, ?)", self._pages)
                    self._conn.executemany(
                        "UPDATE lists SET finished = 1 WHERE id = ?", self._finished
                    )
            except sqlite3.Error as exc:
                raise StoreError(f"cannot write the pull's journal {self.path}: {exc}") from None
            for pending in (self._stale, self._new_lists, self._pages, self._finished):
                pending.clear()
            self._pending_bytes = 0
        self._flushed_at = time.monotonic()

    def keep(self) -> None:
        """The pull stopped: write what is pending, so a resumed pull can use it (a
        journal with no finished list is removed: there is nothing to resume)."""
        try:
            self.flush()
            empty = self._conn.execute(_COUNT_FINISHED).fetchone()[0] == 0
        finally:
            self._conn.close()
        if empty:
            self.path.unlink(missing_ok=True)

    def discard(self) -> None:
        """The snapshot is written: the journal has served."""
        self._conn.close()
        self.path.unlink(missing_ok=True)


def _place(place: Place) -> str:
    return json.dumps(place)
