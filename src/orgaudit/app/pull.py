"""``orgaudit pull``: collect the org into the journal, then write one snapshot and its
access model in one transaction, and remove the journal."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from orgaudit import store
from orgaudit.checks.derived import store_derived
from orgaudit.collect.journal import Journal, journal_path
from orgaudit.collect.pacing import QUIET, Progress
from orgaudit.collect.pull import collect
from orgaudit.collect.records import PullResult
from orgaudit.errors import OrgauditError, UsageError
from orgaudit.model.analysis import Analysis, analyze
from orgaudit.model.catalog import load_catalog
from orgaudit.settings import AdminKey, ClientSettings, PullSettings
from orgaudit.store.snapshot import load_snapshot


def pull(
    key: AdminKey,
    client_settings: ClientSettings,
    pull_settings: PullSettings,
    db_path: Path,
    *,
    progress: Progress = QUIET,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    then: Callable[[sqlite3.Connection, int], None] | None = None,
) -> PullResult:
    """Read the whole org and write it to ``db_path`` as one new snapshot.

    ``clock`` gives the pull's start and end; the start is the snapshot's "as of" time,
    which every later check uses. Tests pass a fixed clock for reproducible reports.
    ``then`` runs inside the snapshot's transaction (given the connection and the new
    snapshot's id): the snapshot lands only if it succeeds too.
    """
    new_database = not os.path.lexists(db_path)
    try:
        with store.connect(db_path) as conn:  # opened first: a bad path fails before any request
            journal = _open_journal(db_path, client_settings, pull_settings, clock(), progress)
            try:
                collected = asyncio.run(
                    collect(
                        key, client_settings, pull_settings, journal, progress=progress, clock=clock
                    )
                )
                with store.transaction(conn, "write the snapshot"):
                    snapshot_id = store.write_snapshot(conn, collected)
                    if then is not None:
                        then(conn, snapshot_id)
            except BaseException:
                # Whatever stopped the pull, what it read is kept to resume; a journal that
                # cannot be written must not hide why the pull stopped.
                with contextlib.suppress(OrgauditError):
                    journal.keep()
                raise
            journal.discard()
    except BaseException:
        if new_database:  # a pull that wrote no snapshot leaves no new file behind
            for leftover in (db_path, *(Path(f"{db_path}{end}") for end in _SQLITE_SIDE_FILES)):
                leftover.unlink(missing_ok=True)
        raise
    return PullResult(snapshot_id, collected)


# What SQLite may leave beside a database it was writing.
_SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")


def _open_journal(
    db_path: Path,
    client_settings: ClientSettings,
    pull_settings: PullSettings,
    now: datetime,
    progress: Progress,
) -> Journal:
    """The journal to resume (``--resume``), or a new one; a pull set aside is said."""
    path = journal_path(db_path)
    fingerprint = json.dumps(
        [client_settings.base_url, pull_settings.audit_days, pull_settings.derive_role_lists]
    )
    found = Journal.inspect(path, fingerprint, now)
    if pull_settings.resume:
        if found is None or not found.resumable:
            why = "no unfinished pull was found" if found is None else found.why_not
            raise UsageError(f"nothing to resume: {why}; run `orgaudit pull` without --resume")
        return Journal.begin(path, fingerprint, found.started_at, resume=True)
    if found is not None and found.lists:
        progress.notice(
            f"an unfinished pull from {found.started_at:%Y-%m-%d %H:%M} UTC ({found.lists} lists "
            "read) is set aside and this pull starts over; `orgaudit pull --resume` continues "
            "an interrupted pull instead"
        )
    return Journal.begin(path, fingerprint, now, resume=False)


@dataclass(frozen=True)
class AnalyzedPull(PullResult):
    """A pull and the analysis of the snapshot it wrote: worked out once, stored with the
    snapshot, and handed on, so an online audit does not work it out again."""

    analysis: Analysis


def pull_and_analyze(
    key: AdminKey,
    client_settings: ClientSettings,
    pull_settings: PullSettings,
    db_path: Path,
    *,
    catalog_path: Path | None = None,
    progress: Progress = QUIET,
    clock: Callable[[], datetime] | None = None,
) -> AnalyzedPull:
    """Pull a new snapshot and store its access model as derived tables, in one
    transaction: both land, or neither does.

    The catalog is read first, so a broken ``--catalog`` fails before any request.
    """
    catalog = load_catalog(catalog_path)
    timing = {} if clock is None else {"clock": clock}
    analyses: list[Analysis] = []

    def store_analysis(conn: sqlite3.Connection, snapshot_id: int) -> None:
        analyses.append(analyze(load_snapshot(conn, snapshot_id), catalog))
        store_derived(conn, analyses[-1])

    pulled = pull(
        key,
        client_settings,
        pull_settings,
        db_path,
        progress=progress,
        then=store_analysis,
        **timing,
    )
    return AnalyzedPull(pulled.snapshot_id, pulled.collected, analyses[-1])
