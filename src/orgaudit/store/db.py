"""The snapshot database: opening it (safely), migrating it, transactions, writing a
snapshot and its derived tables, reading tables back, listing and pruning snapshots.

A snapshot is written in a single transaction, and its row in ``snapshots`` is written
in that same transaction, so a pull that fails part-way leaves no trace and earlier
snapshots untouched.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from orgaudit import __version__
from orgaudit.collect.records import Anomaly, Collected
from orgaudit.collect.sources import SOURCES_BY_NAME
from orgaudit.errors import StoreError, UsageError
from orgaudit.files import private_folder
from orgaudit.store.fields import INT
from orgaudit.store.ingest import table_rows
from orgaudit.store.schema import DERIVED_TABLES, MIGRATIONS, SCHEMA_VERSION, TABLES


@contextmanager
def connect(path: Path, *, create: bool = True) -> Iterator[sqlite3.Connection]:
    """Open and migrate the snapshot database, creating it (owner-only) if ``create``.

    An existing file is opened only if it is an orgaudit database (or empty), is no
    symbolic link, and is the user's own with no group or world write (see
    :func:`check_database_file`); otherwise one line, exit 2, and the file untouched.
    """
    if not create and not path.exists():
        raise UsageError(f"no snapshot database at {path}; run `orgaudit pull` first")
    check_database_file(path)
    try:
        if not path.exists():
            private_folder(path.parent)
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        conn = sqlite3.connect(path, timeout=5.0, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise UsageError(f"cannot open the snapshot database {path}: {_reason(exc)}") from None
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        _refuse_foreign_schema(conn, path)
        _migrate(conn, path)
        yield conn
    finally:
        conn.close()


_SQLITE_HEADER = b"SQLite format 3\x00"


def check_database_file(path: Path) -> None:
    """Refuse a database path orgaudit must not open (nothing is done to the file):
    a symbolic link (it could point anywhere), anything but a regular file, a file of
    another user or one others may write (they could plant or change snapshots), and a
    file with content that is not SQLite (SQLite would write a new database over a
    short one)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UsageError(f"cannot open the snapshot database {path}: {_reason(exc)}") from None
    if stat.S_ISLNK(info.st_mode):
        raise UsageError(
            f"the snapshot database {path} is a symbolic link; give the path of the file itself"
        )
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"cannot open the snapshot database {path}: it is not a regular file")
    if info.st_uid != os.geteuid():
        raise UsageError(
            f"the snapshot database {path} belongs to another user (uid {info.st_uid}); "
            "orgaudit opens only a database of your own"
        )
    if info.st_mode & 0o022:
        raise UsageError(
            f"others can write to the snapshot database {path} (mode "
            f"{stat.S_IMODE(info.st_mode):04o}); `chmod 600 {path}` first"
        )
    if info.st_size:
        try:
            with path.open("rb") as handle:
                header = handle.read(len(_SQLITE_HEADER))
        except OSError as exc:
            raise UsageError(f"cannot open the snapshot database {path}: {_reason(exc)}") from None
        if header != _SQLITE_HEADER:
            raise UsageError(f"{path} is not a usable orgaudit database: it is not SQLite")


def _refuse_foreign_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse an SQLite database of another application: orgaudit adds its tables only to
    a new database or one of its own."""
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as exc:
        if _busy(exc):
            raise StoreError(f"{path} is locked by another process: {_reason(exc)}") from None
        raise UsageError(f"{path} is not a usable orgaudit database: {_reason(exc)}") from None
    if tables and (version == 0 or "snapshots" not in tables):
        raise UsageError(
            f"{path} is not a usable orgaudit database: it holds another application's tables"
        )


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise UsageError(
                f"{path} has schema version {version}, newer than this orgaudit "
                f"({SCHEMA_VERSION}); upgrade orgaudit"
            )
        if version < SCHEMA_VERSION and not writable(path):
            raise UsageError(
                f"{path} has schema version {version} and must move to version "
                f"{SCHEMA_VERSION} before this orgaudit can read it, which needs write access; "
                "copy it to a folder you may write and use the copy"
            )
        for number in range(version, SCHEMA_VERSION):
            conn.execute("BEGIN IMMEDIATE")
            for statement in _statements(MIGRATIONS[number]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number + 1}")
            conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if _busy(exc):
            raise StoreError(f"{path} is locked by another process: {_reason(exc)}") from None
        raise UsageError(f"{path} is not a usable orgaudit database: {_reason(exc)}") from None


def writable(path: Path) -> bool:
    """Whether this user may write the file and the folder SQLite journals in."""
    folder = path.parent if path.parent != Path() else Path(".")
    return os.access(path, os.W_OK) and os.access(folder, os.W_OK)


def _busy(exc: sqlite3.Error) -> bool:
    """Whether an error is another connection holding the database (worth a retry later)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(exc)


def _statements(script: str) -> list[str]:
    """A migration's statements: split at semicolons, a trigger's body kept whole (its
    statements end in semicolons too; SQLite says when a statement is complete)."""
    statements: list[str] = []
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \n;"):
        statements.append(pending.strip())
    return statements


@contextmanager
def transaction(conn: sqlite3.Connection, doing: str) -> Iterator[None]:
    """One write transaction: committed whole, or rolled back (a one-line StoreError for
    a database failure; any other error rolls back and passes through).

    Inside another transaction it adds nothing: the outer one commits or rolls back the
    whole, so a pull's snapshot and its derived tables land together or not at all.
    """
    if conn.in_transaction:
        try:
            yield
        except sqlite3.Error as exc:  # named here; the outer transaction rolls back
            raise _store_error(doing, exc) from None
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        _rollback(conn)
        raise _store_error(doing, exc) from None
    except BaseException:
        _rollback(conn)
        raise


def _store_error(doing: str, exc: sqlite3.Error) -> StoreError:
    hint = " (is the disk full?)" if _write_failed(exc) else ""
    return StoreError(
        f"could not {doing}: {_reason(exc)}{hint}; nothing of it was kept, earlier snapshots "
        "are untouched"
    )


def _write_failed(exc: sqlite3.Error) -> bool:
    """A full disk, or a write the OS refused (SQLite reports EFBIG as an I/O error)."""
    code = getattr(exc, "sqlite_errorcode", 0)
    return code == sqlite3.SQLITE_FULL or code & 0xFF == sqlite3.SQLITE_IOERR


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


# (table, column, subject id, value as text, problem): one row of the anomalies table.


def write_snapshot(conn: sqlite3.Connection, collected: Collected) -> int:
    """Write one pull as a new snapshot in a single transaction and return its id."""
    with transaction(conn, "write the snapshot"):
        cursor = conn.execute(
            "INSERT INTO snapshots (started_at, finished_at, as_of, audit_since, usage_since, "
            "base_url, tool_version, requests, retries, throttled) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                collected.started_at.isoformat(),
                collected.finished_at.isoformat(),
                int(collected.started_at.timestamp()),
                int(collected.audit_since.timestamp()),
                None if collected.usage_since is None else int(collected.usage_since.timestamp()),
                collected.base_url,
                __version__,
                collected.requests,
                collected.retries,
                collected.throttled,
            ),
        )
        snapshot_id = cursor.lastrowid
        assert snapshot_id is not None
        conn.executemany(
            "INSERT INTO coverage VALUES (?, ?, ?, ?, ?, ?)",
            [
                (snapshot_id, c.source, c.status, c.reason, c.rows, c.requests)
                for c in collected.coverage
            ],
        )
        conn.executemany(
            "INSERT INTO coverage_gaps VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    snapshot_id,
                    g.source,
                    g.scope.project_id,
                    g.scope.user_id,
                    g.scope.group_id,
                    g.status,
                    g.reason,
                )
                for g in collected.gaps
            ],
        )
        anomalies: list[Anomaly] = list(collected.anomalies)
        for source_name in SOURCES_BY_NAME:
            rows = collected.items(source_name)
            table = SOURCES_BY_NAME[source_name].table
            columns = TABLES[table]
            placeholders = ", ".join("?" * (len(columns) + 2))
            names = ", ".join(["snapshot_id", *(c.name for c in columns), "raw"])
            conn.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({placeholders})",
                ((snapshot_id, *row) for row in table_rows(table, rows, anomalies)),
            )
        conn.executemany(
            "INSERT INTO anomalies VALUES (?, ?, ?, ?, ?, ?)",
            ((snapshot_id, *anomaly) for anomaly in anomalies),
        )
    return snapshot_id


def write_derived(
    conn: sqlite3.Connection,
    snapshot_id: int,
    catalog_version: str,
    rows: dict[str, list[tuple[object, ...]]],
    *,
    findings_basis: str | None,
) -> None:
    """Replace a snapshot's derived tables in one transaction; ``findings_basis`` is what
    an audit's findings in ``rows["findings"]`` were worked out under (None: a pull's
    derived tables, no findings)."""
    with transaction(conn, "write the derived tables"):
        conn.execute("DELETE FROM derived_info WHERE snapshot_id = ?", (snapshot_id,))
        conn.execute(
            "INSERT INTO derived_info (snapshot_id, catalog_version, findings_basis) "
            "VALUES (?, ?, ?)",
            (snapshot_id, catalog_version, findings_basis),
        )
        for table, columns in DERIVED_TABLES.items():
            conn.execute(f"DELETE FROM {table} WHERE snapshot_id = ?", (snapshot_id,))
            placeholders = ", ".join("?" * (len(columns) + 1))
            conn.executemany(
                f"INSERT INTO {table} VALUES ({placeholders})",
                ((snapshot_id, *row) for row in rows.get(table, [])),
            )


def json_list(values: list[str]) -> str:
    """A list as the JSON text the schema stores lists in."""
    return json.dumps(values, ensure_ascii=False)


@dataclass(frozen=True)
class SnapshotInfo:
    """One row of ``orgaudit snapshots``."""

    id: int
    started_at: str
    finished_at: str
    base_url: str
    tool_version: str
    requests: int
    unavailable: tuple[str, ...]
    rows: int

    @property
    def seconds(self) -> float:
        """How long the pull took."""
        started = datetime.fromisoformat(self.started_at)
        return (datetime.fromisoformat(self.finished_at) - started).total_seconds()


def list_snapshots(conn: sqlite3.Connection) -> list[SnapshotInfo]:
    """Every snapshot in the database, oldest first."""
    rows = conn.execute(
        """
        SELECT s.id, s.started_at, s.finished_at, s.base_url, s.tool_version, s.requests,
               COALESCE(GROUP_CONCAT(CASE WHEN c.status != 'complete'
                                          THEN c.source || ' (' || c.status || ')' END, ', '),
                        ''),
               COALESCE(SUM(c.rows), 0)
        FROM snapshots s LEFT JOIN coverage c ON c.snapshot_id = s.id
        GROUP BY s.id ORDER BY s.id
        """
    ).fetchall()
    return [
        SnapshotInfo(
            r[0], r[1], r[2], r[3], r[4], r[5], tuple(filter(None, r[6].split(", "))), r[7]
        )
        for r in rows
    ]


def resolve_snapshot(conn: sqlite3.Connection, snapshot_id: int | None) -> int:
    """The given snapshot id if it exists, else the latest; a clear error if none."""
    if snapshot_id is None:
        row = conn.execute("SELECT MAX(id) FROM snapshots").fetchone()
        if row[0] is None:
            raise UsageError("the database holds no snapshot yet; run `orgaudit pull` first")
        return int(row[0])
    if conn.execute("SELECT 1 FROM snapshots WHERE id = ?", (snapshot_id,)).fetchone() is None:
        raise UsageError(f"no snapshot {snapshot_id}; `orgaudit snapshots` lists them")
    return snapshot_id


def previous_snapshot(conn: sqlite3.Connection, snapshot_id: int) -> int | None:
    """The snapshot taken before this one, if any."""
    row = conn.execute("SELECT MAX(id) FROM snapshots WHERE id < ?", (snapshot_id,)).fetchone()
    return None if row[0] is None else int(row[0])


def prune(
    conn: sqlite3.Connection, keep: int, spare: frozenset[int] = frozenset()
) -> tuple[int, ...]:
    """Delete all but the newest ``keep`` snapshots and those in ``spare`` (rows
    cascade), then compact the file; the ids deleted."""
    if keep < 1:
        raise UsageError("--prune keeps at least 1 snapshot")
    ids = [row[0] for row in conn.execute("SELECT id FROM snapshots ORDER BY id DESC")]
    doomed = tuple(sorted(i for i in ids[keep:] if i not in spare))
    with transaction(conn, "prune snapshots"):
        conn.executemany("DELETE FROM snapshots WHERE id = ?", [(i,) for i in doomed])
    try:
        conn.execute("VACUUM")  # outside the transaction, as SQLite requires
    except sqlite3.Error as exc:
        raise StoreError(f"could not compact the database: {_reason(exc)}") from None
    return doomed


def stored_findings_basis(conn: sqlite3.Connection, snapshot_id: int) -> str | None:
    """What the snapshot's stored findings were worked out under; None if none were."""
    row = conn.execute(
        "SELECT findings_basis FROM derived_info WHERE snapshot_id = ?", (snapshot_id,)
    ).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def read_table(
    conn: sqlite3.Connection, table: str, snapshot_id: int, *, raw: bool = True
) -> pd.DataFrame:
    """One table of one snapshot as a DataFrame (text columns as strings); ``raw=False``
    leaves an entity table's raw JSON in the database, unread."""
    if table not in TABLES and table not in DERIVED_TABLES and table not in _BOOKKEEPING:
        raise UsageError(f"no table {table!r} in the snapshot schema")
    names = "*"
    if not raw and table in TABLES:
        names = ", ".join(["snapshot_id", *(c.name for c in TABLES[table])])
    frame = pd.read_sql_query(
        f"SELECT {names} FROM {table} WHERE snapshot_id = ?", conn, params=(snapshot_id,)
    )
    # Integers that may be NULL stay integers (pandas would make them floats).
    integer_columns = {c.name: "Int64" for c in TABLES.get(table, ()) if c.sql_type == INT}
    return frame.astype(integer_columns)


_BOOKKEEPING = ("coverage", "coverage_gaps", "derived_info", "anomalies")


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())
