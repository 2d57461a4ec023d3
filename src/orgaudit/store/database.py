"""The handle a command holds on its snapshot database: opened once, passed down.

Every command that reads or writes snapshots opens one :class:`SnapshotDatabase` and
hands it to the functions that need it (as github-to-sqlite hands its ``db`` around):
the pull writes through it, the audit reads the snapshot, stores its findings and runs
its saved queries through it, and nothing opens the file a second time.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from orgaudit.collect.records import Collected
from orgaudit.errors import UsageError
from orgaudit.store import campaigns
from orgaudit.store.campaigns import Row
from orgaudit.store.db import (
    SnapshotInfo,
    connect,
    list_snapshots,
    previous_snapshot,
    prune,
    read_table,
    resolve_snapshot,
    stored_findings_basis,
    transaction,
    writable,
    write_derived,
    write_snapshot,
)
from orgaudit.store.snapshot import Snapshot, load_snapshot

# What SQLite may leave beside a database it was writing.
_SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")


@dataclass(frozen=True)
class Pruned:
    """What ``snapshots --prune`` did: the snapshots deleted, and those it would have
    deleted but spared because an access-review campaign still needs them."""

    deleted: tuple[int, ...]
    spared: tuple[int, ...] = ()


@dataclass(frozen=True)
class CampaignStore:
    """Access-review campaigns, read and written through the command's one connection
    (see :mod:`orgaudit.store.campaigns`)."""

    conn: sqlite3.Connection

    def all(self) -> list[dict[str, object]]:
        """Every campaign, oldest first."""
        return campaigns.campaigns(self.conn)

    def get(self, campaign_id: str) -> dict[str, object]:
        """One campaign (one clear line if there is none of that id)."""
        return campaigns.campaign(self.conn, campaign_id)

    def rows(self, table: str, campaign_id: str) -> list[dict[str, object]]:
        """A campaign's rows of one review table."""
        return campaigns.campaign_rows(self.conn, table, campaign_id)

    def latest_verification(self, campaign_id: str) -> list[dict[str, object]]:
        """The rows of the campaign's latest verification (none if never verified)."""
        return campaigns.latest_verification(self.conn, campaign_id)

    def open(self, campaign: Row, items: Sequence[Row], files: Sequence[Row]) -> None:
        """Store a new campaign, its items and the files it was issued with."""
        campaigns.write_campaign(self.conn, campaign, items, files)

    def close(self, close: Row, decisions: Sequence[Row], files: Sequence[Row]) -> None:
        """Store a campaign's close and decisions (refused if it is closed already)."""
        campaigns.write_close(self.conn, close, decisions, files)

    def verified(
        self, campaign_id: str, verifications: Sequence[Row], files: Sequence[Row]
    ) -> None:
        """Store one verification run of a campaign."""
        campaigns.write_verification(self.conn, campaign_id, verifications, files)


class SnapshotDatabase:
    """One open snapshot database: read snapshots, write them, list and prune them.

    Saved queries, which are untrusted SQL, run on a second connection the handle opens
    read-only on first use (see :func:`orgaudit.store.queries.read_only_connection`).
    """

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn
        self._reader: sqlite3.Connection | None = None

    @classmethod
    @contextmanager
    def open(cls, path: Path, *, create: bool = False) -> Iterator[SnapshotDatabase]:
        """Open (and migrate) the database at ``path`` for one command.

        With ``create`` a missing database is created; if the command then fails before
        the database holds a snapshot, the new file is removed again, so a failed first
        pull leaves nothing behind. Without it, a missing database is one clear line.
        """
        new = create and not os.path.lexists(path)
        handle: SnapshotDatabase | None = None
        try:
            with connect(path, create=create) as conn:
                handle = cls(path, conn)
                try:
                    yield handle
                finally:
                    handle._close_reader()
        except BaseException:
            # Only a file this command created (its handle opened) and left without a
            # snapshot is removed: never one that was there, or another's that won a race.
            if new and handle is not None and not handle._holds_snapshots():
                for leftover in (path, *(Path(f"{path}{end}") for end in _SQLITE_SIDE_FILES)):
                    leftover.unlink(missing_ok=True)
            raise

    def _holds_snapshots(self) -> bool:
        try:
            with connect(self.path, create=False) as conn:
                return bool(list_snapshots(conn))
        except Exception:  # unreadable now: it holds nothing worth keeping
            return False

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    @property
    def writable(self) -> bool:
        """Whether this user may write the file (and the folder SQLite journals in)."""
        return writable(self.path)

    def transaction(self, doing: str) -> AbstractContextManager[None]:
        """One write transaction; ``doing`` names it in an error."""
        return transaction(self.conn, doing)

    def resolve(self, snapshot_id: int | None) -> int:
        """The given snapshot id if it exists, else the latest; one clear line if none."""
        return resolve_snapshot(self.conn, snapshot_id)

    def previous(self, snapshot_id: int) -> int | None:
        """The snapshot taken before this one, if any."""
        return previous_snapshot(self.conn, snapshot_id)

    def load(self, snapshot_id: int | None = None) -> Snapshot:
        """A snapshot (the latest by default) as DataFrames."""
        return load_snapshot(self.conn, snapshot_id)

    def table(self, table: str, snapshot_id: int) -> pd.DataFrame:
        """One table of one snapshot."""
        return read_table(self.conn, table, snapshot_id)

    def snapshots(self) -> list[SnapshotInfo]:
        """Every snapshot, oldest first."""
        return list_snapshots(self.conn)

    def prune(self, keep: int) -> Pruned:
        """Delete all but the newest ``keep`` snapshots, sparing those an access review
        still needs (a campaign not closed, or one whose removals are not all seen done)."""
        in_use = frozenset(campaigns.snapshots_in_use(self.conn))
        ids = [snapshot.id for snapshot in self.snapshots()]
        spared = tuple(sorted(i for i in ids[: max(len(ids) - keep, 0)] if i in in_use))
        return Pruned(prune(self.conn, keep, in_use), spared)

    @property
    def campaigns(self) -> CampaignStore:
        """The access-review campaigns the database holds."""
        return CampaignStore(self.conn)

    def write_snapshot(self, collected: Collected) -> int:
        """Write a pull as a new snapshot (inside the caller's transaction); its id."""
        return write_snapshot(self.conn, collected)

    def write_derived(
        self,
        snapshot_id: int,
        catalog_version: str,
        rows: dict[str, list[tuple[object, ...]]],
        *,
        findings_basis: str | None,
    ) -> None:
        """Replace a snapshot's derived tables in one transaction (``findings_basis``: what
        the findings among the rows were worked out under; None for none)."""
        write_derived(self.conn, snapshot_id, catalog_version, rows, findings_basis=findings_basis)

    def findings_basis(self, snapshot_id: int) -> str | None:
        """What the findings an audit stored with the snapshot were worked out under;
        None if no audit stored any."""
        return stored_findings_basis(self.conn, snapshot_id)

    def reader(self) -> sqlite3.Connection:
        """The read-only connection saved queries run on, opened on first use."""
        if self._reader is None:
            self._reader = read_only_connection(self.path)
        return self._reader


# PRAGMAs with no form that changes anything: a query may read the schema with them.
_READ_ONLY_PRAGMAS = frozenset(
    {
        "collation_list", "compile_options", "database_list", "foreign_key_list",
        "function_list", "index_info", "index_list", "index_xinfo", "module_list",
        "pragma_list", "table_info", "table_list", "table_xinfo",
    }
)  # fmt: skip


_READING = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE})


def _only_reads(action: int, first: str | None, second: str | None, *_: str | None) -> int:
    """SQLite's authorizer for saved queries: reading is allowed, and nothing else.

    Opening the database read-only stops writes to it, but not ATTACH (which creates a
    file anywhere the user can write), VACUUM INTO, or PRAGMAs that change the
    connection; each of those is refused while the statement is prepared, before it runs
    (https://www.sqlite.org/c3ref/set_authorizer.html).
    """
    if action in _READING:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION and second != "load_extension":
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and first in _READ_ONLY_PRAGMAS:
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def read_only_connection(db_path: Path) -> sqlite3.Connection:
    """A connection that cannot write anything anywhere: opened read-only, ``query_only``
    on, no database may be attached, and an authorizer that allows only reading."""
    uri = f"{db_path.resolve().as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
        conn.execute("PRAGMA query_only = ON")
    except sqlite3.Error as exc:
        raise UsageError(f"cannot open {db_path} read-only: {exc}") from None
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.set_authorizer(_only_reads)
    return conn
