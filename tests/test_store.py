"""The snapshot store with real SQLite files, and how a pull's coverage is summarized."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from orgaudit import store
from orgaudit.collect import sources as src
from orgaudit.collect.coverage import summarize_coverage
from orgaudit.collect.records import (
    ARCHIVED,
    PROJECT_KEY_IN_ADMIN_LIST,
    SKIPPED,
    UNAVAILABLE,
    Collected,
    Gap,
    Scope,
    SourceCoverage,
)
from orgaudit.errors import CollectError, ExitCode, StoreError, UsageError
from orgaudit.settings import AdminKey
from orgaudit.simulator import Simulator
from orgaudit.simulator.demo import demo_org
from orgaudit.simulator.org import SimOrg

from support import ADMIN_KEY, NOW, PULL, fast_settings, pull, pull_and_analyze

# -- helpers ------------------------------------------------------------------------------------


def _snapshot_tables(conn: sqlite3.Connection) -> list[str]:
    """Every table of the database that has a snapshot_id column, whatever the version."""
    names = [
        row[0]
        for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not row[0].startswith("sqlite_")
    ]
    return [
        name
        for name in names
        if any(col[1] == "snapshot_id" for col in conn.execute(f"PRAGMA table_info({name})"))
    ]


def _foreign_rows(conn: sqlite3.Connection, keep: set[int]) -> dict[str, int]:
    """Rows, per table, whose snapshot_id is not one of ``keep``."""
    marks = ", ".join("?" * len(keep)) or "NULL"
    counts = {
        table: conn.execute(
            f"SELECT COUNT(*) FROM {table} WHERE snapshot_id NOT IN ({marks})", tuple(keep)
        ).fetchone()[0]
        for table in _snapshot_tables(conn)
    }
    return {table: n for table, n in counts.items() if n}


def _refuse_inserts(conn: sqlite3.Connection, table: str, message: str) -> None:
    """Make the first row written to ``table`` fail, as a real SQLite error (trigger refuse)."""
    conn.execute(
        f"CREATE TRIGGER refuse BEFORE INSERT ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
    )


def _row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {
        table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        for table in ["snapshots", *_snapshot_tables(conn)]
    }


def _empty_collected(started: datetime) -> Collected:
    """A pull that read nothing: enough for a row in ``snapshots``."""
    return Collected(
        started_at=started,
        finished_at=started + timedelta(seconds=1),
        base_url="http://127.0.0.1:9/v1",
        audit_since=started - timedelta(days=180),
        usage_since=None,
        items=lambda _source: (),
        gaps=(),
        coverage=(),
        requests=0,
        retries=0,
        throttled=0,
    )


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulator]:
    """The demo org, served once for the module (stopping a simulator takes up to 0.5 s).

    The tests here add no faults, so they can share it.
    """
    with Simulator(demo_org(NOW), admin_key=ADMIN_KEY) as sim:
        yield sim


@pytest.fixture
def demo() -> SimOrg:
    return demo_org(NOW)


@pytest.fixture
def pulled(simulator: Simulator, admin_key: AdminKey, db_path: Path) -> int:
    """One snapshot of the demo org in ``db_path``; its id."""
    return pull(admin_key, fast_settings(simulator), PULL, db_path).snapshot_id


# -- a pull's snapshot --------------------------------------------------------------------------


def test_pull_writes_coverage_for_every_source(pulled: int, db_path: Path) -> None:
    with store.connect(db_path) as conn:
        coverage = store.read_table(conn, "coverage", pulled)
        counts = {table: len(store.read_table(conn, table, pulled)) for table in store.TABLES}

    names = [source.name for source in src.ALL_SOURCES]
    assert sorted(coverage["source"]) == sorted(names)  # one row each, no more
    assert set(coverage["status"]) == {"complete"}
    # Rows per source add up to the rows of the table they land in.
    by_table: dict[str, int] = {}
    for source, rows in zip(coverage["source"], coverage["rows"], strict=True):
        table = src.SOURCES_BY_NAME[source].table
        by_table[table] = by_table.get(table, 0) + int(rows)
    assert by_table == counts
    assert (coverage["requests"] >= 1).all()


def test_read_table_keeps_integers_nullable_and_ids_as_strings(
    pulled: int, db_path: Path, demo: SimOrg
) -> None:
    with store.connect(db_path) as conn:
        frames = {table: store.read_table(conn, table, pulled) for table in store.TABLES}

    for table, columns in store.TABLES.items():
        frame = frames[table]
        assert not frame.empty, table
        for column in columns:
            series = frame[column.name]
            if column.sql_type == "INTEGER":
                assert series.dtype == "Int64", (table, column.name, series.dtype)
            elif column.name == "id" or column.name.endswith("_id"):
                values = series.dropna().tolist()
                assert all(isinstance(v, str) for v in values), (table, column.name)

    projects = frames["projects"].set_index("id")
    legacy = next(p for p in demo.projects if p["id"] == "proj_legacy")
    # A column holding NULLs is still integers, exactly, with <NA> for the NULLs.
    assert projects.loc["proj_legacy", "archived_at"] == legacy["archived_at"]
    assert projects.loc["proj_payments", "archived_at"] is pd.NA
    assert frames["invites"]["accepted_at"].isna().all()  # all NULL, still Int64
    keys = frames["admin_api_keys"].set_index("name")
    assert keys.loc["audit-key", "expires_at"] is pd.NA
    assert keys.loc["old-admin", "last_used_at"] is pd.NA
    assert isinstance(keys.loc["old-admin", "expires_at"].item(), int)
    assert set(frames["users"]["is_service_account"]) == {0}


def test_read_table_refuses_an_unknown_table(db_path: Path) -> None:
    with store.connect(db_path) as conn, pytest.raises(UsageError, match="no table"):
        store.read_table(conn, "sqlite_master", 1)


# -- failed writes ------------------------------------------------------------------------------


def test_pull_into_a_locked_database_is_a_store_error_and_writes_nothing(
    pulled: int, simulator: Simulator, admin_key: AdminKey, db_path: Path
) -> None:
    with store.connect(db_path) as conn:
        before = _row_counts(conn)
    locker = sqlite3.connect(db_path, isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        # Waits out the store's 5 s busy timeout.
        with pytest.raises(StoreError) as failure:
            pull(admin_key, fast_settings(simulator), PULL, db_path)
    finally:
        locker.execute("ROLLBACK")
        locker.close()

    assert isinstance(failure.value, CollectError)
    assert failure.value.exit_code == ExitCode.COLLECT
    message = str(failure.value)
    assert message and "\n" not in message
    assert "locked" in message
    with store.connect(db_path) as conn:
        assert [s.id for s in store.list_snapshots(conn)] == [pulled]
        assert _foreign_rows(conn, {pulled}) == {}
        assert _row_counts(conn) == before


def test_write_failing_part_way_rolls_back_every_table(
    pulled: int, simulator: Simulator, admin_key: AdminKey, db_path: Path
) -> None:
    # A real SQLite failure late in the transaction: the snapshot row, coverage and the
    # earlier entity tables are written before audit_key_events refuses its first row.
    with store.connect(db_path) as conn:
        before = _row_counts(conn)
        _refuse_inserts(conn, "audit_key_events", "disk quota exceeded")

    with pytest.raises(StoreError) as failure:
        pull(admin_key, fast_settings(simulator), PULL, db_path)

    assert failure.value.exit_code == ExitCode.COLLECT
    message = str(failure.value)
    assert message == (
        "could not write the snapshot: disk quota exceeded; nothing of it was kept, earlier "
        "snapshots are untouched"
    )
    with store.connect(db_path) as conn:
        assert [s.id for s in store.list_snapshots(conn)] == [pulled]
        assert store.resolve_snapshot(conn, None) == pulled
        assert _foreign_rows(conn, {pulled}) == {}
        assert _row_counts(conn) == before
        conn.execute("DROP TRIGGER refuse")

    # The database is still usable: the next pull is the next snapshot.
    again = pull(admin_key, fast_settings(simulator), PULL, db_path)
    assert again.snapshot_id == pulled + 1


def test_a_failure_storing_the_analysis_takes_the_snapshot_back_too(
    pulled: int, simulator: Simulator, admin_key: AdminKey, db_path: Path
) -> None:
    # The snapshot and its derived tables are one transaction: a latest snapshot without
    # its access model would give the saved queries nothing to join.
    with store.connect(db_path) as conn:
        before = _row_counts(conn)
        _refuse_inserts(conn, "access_levels", "no room")

    with pytest.raises(StoreError, match=r"^could not write the derived tables: no room; nothing"):
        pull_and_analyze(admin_key, fast_settings(simulator), PULL, db_path)

    with store.connect(db_path) as conn:
        assert [s.id for s in store.list_snapshots(conn)] == [pulled]
        assert _foreign_rows(conn, {pulled}) == {}
        assert _row_counts(conn) == before
        conn.execute("DROP TRIGGER refuse")


# -- opening ------------------------------------------------------------------------------------


def test_connect_refuses_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 200)
    with (
        pytest.raises(UsageError, match=r"not a usable orgaudit database") as failure,
        store.connect(path),
    ):
        pass
    assert "\n" not in str(failure.value)
    assert path.read_bytes().startswith(b"these are my notes")  # left as it was


def test_connect_refuses_a_directory(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder.db"
    folder.mkdir()
    with pytest.raises(UsageError, match=str(folder)) as failure, store.connect(folder):
        pass
    assert "\n" not in str(failure.value)


def test_connect_creates_an_owner_only_file_and_its_folders(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "snapshots.db"
    with store.connect(path) as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert version == store.SCHEMA_VERSION


def test_connect_reopens_a_database_without_migrating_it_again(db_path: Path) -> None:
    with store.connect(db_path) as conn:
        store.write_snapshot(conn, _empty_collected(datetime.now(UTC)))
    with store.connect(db_path) as conn:
        assert [s.id for s in store.list_snapshots(conn)] == [1]
        assert conn.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION


def test_connect_refuses_a_newer_schema(db_path: Path) -> None:
    with store.connect(db_path) as conn:
        conn.execute(f"PRAGMA user_version = {store.SCHEMA_VERSION + 1}")
    with pytest.raises(UsageError, match="upgrade orgaudit"), store.connect(db_path):
        pass


# -- resolving snapshots ------------------------------------------------------------------------


def test_resolve_snapshot_on_an_empty_database_says_to_pull(db_path: Path) -> None:
    with store.connect(db_path) as conn, pytest.raises(UsageError, match="orgaudit pull"):
        store.resolve_snapshot(conn, None)


def test_resolve_snapshot_finds_the_latest_or_the_one_asked_for(db_path: Path) -> None:
    started = datetime.now(UTC)
    with store.connect(db_path) as conn:
        first = store.write_snapshot(conn, _empty_collected(started))
        second = store.write_snapshot(conn, _empty_collected(started + timedelta(minutes=1)))

        assert (first, second) == (1, 2)
        assert store.resolve_snapshot(conn, None) == second
        assert store.resolve_snapshot(conn, first) == first
        with pytest.raises(UsageError, match="no snapshot 99") as failure:
            store.resolve_snapshot(conn, 99)
    assert "orgaudit snapshots" in str(failure.value)


# -- summarize_coverage -------------------------------------------------------------------------

KEYS = src.PROJECT_API_KEYS  # a core source read once per project
ROLES = src.PROJECT_USER_ROLES  # an RBAC source read once per project member
ARCHIVED_REASON = "HTTP 400 for an archived project"


def _gap(source: src.Source, status: str, project: str, reason: str) -> Gap:
    scope = Scope(project_id=project, project_archived=status == ARCHIVED)
    # Skipped lists are never sent; the pull records them as not asked.
    return Gap(source.name, scope, status, reason, asked=status != SKIPPED)


def test_coverage_with_no_gap_is_complete() -> None:
    other = _gap(ROLES, UNAVAILABLE, "proj_a", "HTTP 403")  # another source's gap
    coverage = summarize_coverage(KEYS, 3, 2, (other,))
    assert coverage == SourceCoverage(KEYS.name, "complete", "", 2, 3)


def test_coverage_with_some_lists_unavailable_is_partial() -> None:
    gaps = (_gap(KEYS, UNAVAILABLE, "proj_b", "HTTP 403"),)
    coverage = summarize_coverage(KEYS, 3, 1, gaps)
    assert coverage == SourceCoverage(
        KEYS.name, "partial", "1 of 3 lists unavailable: HTTP 403", 1, 3
    )


def test_coverage_with_every_list_unavailable_is_unavailable() -> None:
    gaps = (
        _gap(KEYS, UNAVAILABLE, "proj_a", "HTTP 404"),
        _gap(KEYS, UNAVAILABLE, "proj_b", "HTTP 404"),
    )
    coverage = summarize_coverage(KEYS, 2, 0, gaps)
    assert coverage == SourceCoverage(KEYS.name, "unavailable", "HTTP 404", 0, 2)


def test_coverage_with_every_list_skipped_is_unavailable() -> None:
    reason = "the rbac family is unavailable: HTTP 404"
    gaps = tuple(_gap(ROLES, SKIPPED, project, reason) for project in ("proj_a", "proj_b"))
    # Skipped lists were never asked for, so they are not calls.
    coverage = summarize_coverage(ROLES, 0, 0, gaps)
    assert coverage == SourceCoverage(ROLES.name, "unavailable", reason, 0, 0)


def test_coverage_with_only_archived_gaps_stays_complete_with_a_note() -> None:
    gaps = (_gap(KEYS, ARCHIVED, "proj_old", ARCHIVED_REASON),)
    coverage = summarize_coverage(KEYS, 3, 2, gaps)
    assert coverage.status == "complete"
    assert coverage.reason == f"1 archived project(s) not readable ({ARCHIVED_REASON})"
    assert (coverage.rows, coverage.requests) == (2, 3)


def test_coverage_with_archived_and_unavailable_and_nothing_read_is_unavailable() -> None:
    gaps = (
        _gap(KEYS, ARCHIVED, "proj_old", ARCHIVED_REASON),
        _gap(KEYS, UNAVAILABLE, "proj_b", "HTTP 403"),
    )
    coverage = summarize_coverage(KEYS, 2, 0, gaps)
    assert (coverage.status, coverage.reason) == ("unavailable", "HTTP 403")


def test_coverage_with_archived_and_unavailable_and_many_read_is_partial() -> None:
    gaps = (
        _gap(KEYS, ARCHIVED, "proj_old", ARCHIVED_REASON),
        _gap(KEYS, UNAVAILABLE, "proj_b", "HTTP 403"),
    )
    coverage = summarize_coverage(KEYS, 5, 3, gaps)
    assert coverage.status == "partial"
    assert coverage.reason == "1 of 4 lists unavailable: HTTP 403"


def test_coverage_with_archived_and_unavailable_and_one_read_is_partial() -> None:
    # Three projects: one archived (400), one refused (403), one read with a key in it.
    gaps = (
        _gap(KEYS, ARCHIVED, "proj_old", ARCHIVED_REASON),
        _gap(KEYS, UNAVAILABLE, "proj_b", "HTTP 403"),
    )
    coverage = summarize_coverage(KEYS, 3, 1, gaps)
    assert coverage.status == "partial"
    assert coverage.reason == "1 of 2 lists unavailable: HTTP 403"


def test_a_version_3_database_is_mended_as_a_pull_would_write_it_today(db_path: Path) -> None:
    # A database written by the orgaudit before schema version 4 (project keys had no
    # expires_at column, and the admin-key list's project keys were stored as admin
    # keys): built here from the shipped migrations 1 to 3 as they are.
    raw = sqlite3.connect(db_path, isolation_level=None)
    for script in store.MIGRATIONS[:3]:
        raw.executescript(script)
    raw.execute("PRAGMA user_version = 3")
    raw.execute(
        "INSERT INTO snapshots VALUES (1, '2026-01-01T00:00:00+00:00', "
        "'2026-01-01T00:00:01+00:00', 0, 0, 'https://x', '0.0', 1, 0, 0)"
    )

    def insert(table: str, key_id: str, raw_json: str) -> None:
        columns = [c[1] for c in raw.execute(f"PRAGMA table_info({table})")]
        assert "expires_at" not in columns or table == "admin_api_keys"
        row = {"snapshot_id": 1, "id": key_id, "raw": raw_json}
        values = [row.get(c) for c in columns]
        raw.execute(f"INSERT INTO {table} VALUES ({', '.join('?' * len(columns))})", values)

    insert("project_api_keys", "key_expiring", '{"id": "key_expiring", "expires_at": 1764000000}')
    insert("project_api_keys", "key_forever", '{"id": "key_forever", "expires_at": null}')
    insert("admin_api_keys", "key_expiring", '{"id": "key_expiring"}')  # a project key
    insert("admin_api_keys", "key_admin", '{"id": "key_admin"}')
    raw.close()

    with store.connect(db_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
        keys = store.read_table(conn, "project_api_keys", 1).set_index("id")
        admin = store.read_table(conn, "admin_api_keys", 1)
        anomalies = store.read_table(conn, "anomalies", 1)
        for table, columns in store.DERIVED_TABLES.items():  # in the order rows are written
            have = [c[1] for c in conn.execute(f"PRAGMA table_info({table})")]
            assert have == ["snapshot_id", *columns], table
    assert keys.loc["key_expiring", "expires_at"] == 1764000000
    assert pd.isna(keys.loc["key_forever", "expires_at"])
    assert str(keys["expires_at"].dtype) == "Int64"
    assert admin["id"].tolist() == ["key_admin"]
    assert anomalies[["table_name", "subject_id", "problem"]].values.tolist() == [
        ["admin_api_keys", "key_expiring", PROJECT_KEY_IN_ADMIN_LIST]
    ]
