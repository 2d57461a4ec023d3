"""``orgaudit pull``: collect the org into the journal, then write one snapshot and its
access model in one transaction, and remove the journal."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from orgaudit.checks.derived import store_derived
from orgaudit.collect.journal import Journal, journal_path
from orgaudit.collect.pacing import QUIET, Progress
from orgaudit.collect.pull import collect
from orgaudit.collect.records import PullResult
from orgaudit.errors import OrgauditError, UsageError
from orgaudit.model.analysis import Analysis, analyze
from orgaudit.model.catalog import load_catalog
from orgaudit.settings import AdminKey, ClientSettings, PullSettings
from orgaudit.store.database import SnapshotDatabase


def pull(
    db: SnapshotDatabase,
    key: AdminKey,
    client_settings: ClientSettings,
    pull_settings: PullSettings,
    *,
    progress: Progress = QUIET,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    then: Callable[[int], None] | None = None,
) -> PullResult:
    """Read the whole org and write it to ``db`` as one new snapshot.

    ``clock`` gives the pull's start and end; the start is the snapshot's "as of" time,
    which every later check uses. Tests pass a fixed clock for reproducible reports.
    ``then`` runs inside the snapshot's transaction (given the new snapshot's id): the
    snapshot lands only if it succeeds too.
    """
    journal = _open_journal(db.path, client_settings, pull_settings, clock(), progress)
    try:
        collected = asyncio.run(
            collect(key, client_settings, pull_settings, journal, progress=progress, clock=clock)
        )
        with db.transaction("write the snapshot"):
            snapshot_id = db.write_snapshot(collected)
            if then is not None:
                then(snapshot_id)
    except BaseException:
        # Whatever stopped the pull, what it read is kept to resume; a journal that
        # cannot be written must not hide why the pull stopped.
        with contextlib.suppress(OrgauditError):
            journal.keep()
        raise
    journal.discard()
    return PullResult(snapshot_id, collected)


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
        [
            client_settings.base_url,
            pull_settings.audit_days,
            pull_settings.usage_days,
            pull_settings.derive_role_lists,
        ]
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
    db: SnapshotDatabase,
    key: AdminKey,
    client_settings: ClientSettings,
    pull_settings: PullSettings,
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

    def store_analysis(snapshot_id: int) -> None:
        analyses.append(analyze(db.load(snapshot_id), catalog))
        store_derived(db, analyses[-1])

    pulled = pull(
        db,
        key,
        client_settings,
        pull_settings,
        progress=progress,
        then=store_analysis,
        **timing,
    )
    return AnalyzedPull(pulled.snapshot_id, pulled.collected, analyses[-1])
