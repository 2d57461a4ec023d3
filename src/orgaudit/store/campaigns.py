"""Access-review campaigns in the snapshot database: written once, read back.

A campaign, its items, its close and its decisions are written once each and never
changed (schema version 6's triggers refuse an update or a delete); verifications and
the files of its evidence pack are added, run by run. Rows go in and come out as plain
dictionaries keyed by column name, so the tables in ``docs/schema.md`` are the contract.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence

from orgaudit.errors import UsageError
from orgaudit.store.db import transaction

Row = Mapping[str, object]


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def _insert(conn: sqlite3.Connection, table: str, rows: Iterable[Row]) -> None:
    columns = _columns(conn, table)
    placeholders = ", ".join("?" * len(columns))
    conn.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})",
        ([row.get(column) for column in columns] for row in rows),
    )


def _select(
    conn: sqlite3.Connection, table: str, where: str, params: Sequence[object], order: str
) -> list[dict[str, object]]:
    cursor = conn.execute(f"SELECT * FROM {table} WHERE {where} ORDER BY {order}", params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def write_campaign(
    conn: sqlite3.Connection, campaign: Row, items: Sequence[Row], files: Sequence[Row]
) -> None:
    """A new campaign with its items and the files it was issued with, in one transaction."""
    with transaction(conn, "store the review campaign"):
        _insert(conn, "review_campaigns", [campaign])
        _insert(conn, "review_items", items)
        _insert(conn, "review_files", files)


def write_close(
    conn: sqlite3.Connection, close: Row, decisions: Sequence[Row], files: Sequence[Row]
) -> None:
    """A campaign's close and its decisions, once: a second close is refused."""
    with transaction(conn, "store the review's decisions"):
        campaign_id = close["campaign_id"]
        if conn.execute(
            "SELECT 1 FROM review_closes WHERE campaign_id = ?", (campaign_id,)
        ).fetchone():
            raise UsageError(f"campaign {campaign_id} is closed already; its decisions stand")
        _insert(conn, "review_closes", [close])
        _insert(conn, "review_decisions", decisions)
        _insert(conn, "review_files", files)


def write_verification(
    conn: sqlite3.Connection, campaign_id: str, verifications: Sequence[Row], files: Sequence[Row]
) -> None:
    """One verification run's results (numbered after the campaign's last run, in the same
    transaction) and the files it added to the evidence pack."""
    with transaction(conn, "store the review's verification"):
        run = last_run(conn, campaign_id) + 1
        _insert(conn, "review_verifications", [{**row, "run": run} for row in verifications])
        _insert(conn, "review_files", files)


def campaigns(conn: sqlite3.Connection) -> list[dict[str, object]]:
    """Every campaign, oldest first."""
    return _select(conn, "review_campaigns", "1", (), "opened_at, id")


def campaign(conn: sqlite3.Connection, campaign_id: str) -> dict[str, object]:
    """One campaign; one clear line if there is none of that id."""
    found = _select(conn, "review_campaigns", "id = ?", (campaign_id,), "id")
    if not found:
        raise UsageError(f"no review campaign {campaign_id}; `orgaudit review status` lists them")
    return found[0]


def campaign_rows(
    conn: sqlite3.Connection, table: str, campaign_id: str
) -> list[dict[str, object]]:
    """A campaign's rows of one review table (items in workbook order; verifications and
    files in the order they were written)."""
    order = "row_number" if table == "review_items" else "rowid"
    return _select(conn, table, "campaign_id = ?", (campaign_id,), order)


def latest_verification(conn: sqlite3.Connection, campaign_id: str) -> list[dict[str, object]]:
    """The rows of a campaign's latest verification run (none if never verified)."""
    run = last_run(conn, campaign_id)
    if run == 0:
        return []
    return _select(
        conn, "review_verifications", "campaign_id = ? AND run = ?", (campaign_id, run), "rowid"
    )


def last_run(conn: sqlite3.Connection, campaign_id: str) -> int:
    """The number of the campaign's latest verification run; 0 if it was never verified."""
    row = conn.execute(
        "SELECT COALESCE(MAX(run), 0) FROM review_verifications WHERE campaign_id = ?",
        (campaign_id,),
    ).fetchone()
    return int(row[0])


def snapshots_in_use(conn: sqlite3.Connection) -> set[int]:
    """Snapshots a campaign still needs: those of campaigns not closed, and of closed
    ones whose removals and changes the latest verification has not all seen done."""
    rows = conn.execute(
        """
        SELECT c.snapshot_id FROM review_campaigns c
        WHERE NOT EXISTS (SELECT 1 FROM review_closes x WHERE x.campaign_id = c.id)
           OR EXISTS (
                SELECT 1 FROM review_decisions d
                WHERE d.campaign_id = c.id AND d.decision IN ('change', 'remove')
                  AND NOT EXISTS (
                      SELECT 1 FROM review_verifications v
                      WHERE v.campaign_id = c.id AND v.item_id = d.item_id
                        AND v.status = 'done'
                        AND v.run = (SELECT MAX(run) FROM review_verifications
                                     WHERE campaign_id = c.id)))
        """
    ).fetchall()
    return {int(row[0]) for row in rows}
