"""A snapshot loaded for analysis: DataFrames, coverage, and the audit's "as of" time.

This is the contract between the pull and everything after it: analysis reads only
this, never the network and never the clock. Times become timezone-aware UTC datetimes
here and nowhere else; ids stay strings.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from orgaudit.store.db import read_table, resolve_snapshot
from orgaudit.store.schema import TABLES

# Coverage statuses that leave a source's data incomplete.
INCOMPLETE = ("partial", "unavailable")


@dataclass(frozen=True)
class Snapshot:
    """One snapshot's tables, ready for pure analysis functions."""

    id: int
    as_of: datetime
    audit_since: datetime
    usage_since: datetime | None  # where the usage window starts; None: usage not read
    tables: Mapping[str, pd.DataFrame]
    coverage: pd.DataFrame
    gaps: pd.DataFrame
    anomalies: pd.DataFrame  # values the pull could not store as typed, and repeated items

    def __getitem__(self, table: str) -> pd.DataFrame:
        return self.tables[table]

    def source_status(self, source: str) -> str:
        """``complete``, ``partial`` or ``unavailable`` for one source."""
        rows = self.coverage.loc[self.coverage["source"] == source, "status"]
        return str(rows.iloc[0]) if len(rows) else "unavailable"

    def incomplete_sources(self, sources: tuple[str, ...]) -> tuple[str, ...]:
        """Those of ``sources`` that were not read completely."""
        return tuple(s for s in sources if self.source_status(s) in INCOMPLETE)


def load_snapshot(conn: sqlite3.Connection, snapshot_id: int | None = None) -> Snapshot:
    """Read a snapshot (the latest by default) into DataFrames.

    The ``raw`` JSON column is not read: analysis works on the named columns, and the raw
    objects stay in the database for queries (reading them would double the memory).
    """
    resolved = resolve_snapshot(conn, snapshot_id)
    meta = conn.execute(
        "SELECT as_of, audit_since, usage_since FROM snapshots WHERE id = ?", (resolved,)
    ).fetchone()
    tables = {name: _with_times(read_table(conn, name, resolved, raw=False)) for name in TABLES}
    return Snapshot(
        id=resolved,
        as_of=datetime.fromtimestamp(meta[0], UTC),
        audit_since=datetime.fromtimestamp(meta[1], UTC),
        usage_since=None if meta[2] is None else datetime.fromtimestamp(meta[2], UTC),
        tables=tables,
        coverage=read_table(conn, "coverage", resolved),
        gaps=read_table(conn, "coverage_gaps", resolved),
        anomalies=read_table(conn, "anomalies", resolved),
    )


def _with_times(frame: pd.DataFrame) -> pd.DataFrame:
    """Unix-second columns (``*_at``) as timezone-aware UTC datetimes."""
    times = [c for c in frame.columns if c.endswith("_at")]
    converted = {c: pd.to_datetime(frame[c].astype("Float64"), unit="s", utc=True) for c in times}
    return frame.assign(**converted)


def principal_names(snapshot: Snapshot) -> pd.DataFrame:
    """``principal_id`` and ``name``: a user's e-mail, a service account's name, else the id."""
    users = snapshot["users"]
    accounts = snapshot["project_service_accounts"].drop_duplicates("id")
    return pd.concat(
        [
            pd.DataFrame({"principal_id": users["id"], "name": users["email"].fillna(users["id"])}),
            pd.DataFrame(
                {"principal_id": accounts["id"], "name": accounts["name"].fillna(accounts["id"])}
            ),
        ],
        ignore_index=True,
    ).drop_duplicates("principal_id")


def project_table(snapshot: Snapshot) -> pd.DataFrame:
    """``project_id``, ``project_name`` and ``project_status`` of every project."""
    projects = snapshot["projects"]
    return projects[["id", "name", "status"]].rename(
        columns={"id": "project_id", "name": "project_name", "status": "project_status"}
    )
