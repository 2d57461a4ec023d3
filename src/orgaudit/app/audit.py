"""``orgaudit audit``: analyze a snapshot, run every check, write the reports, decide the exit.

The pull (unless offline) happens first through :mod:`orgaudit.app.pull`; from there
on everything reads the snapshot only, so an audit can be rerun offline at any time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from orgaudit import store
from orgaudit.checks import CHECKS, CHECKS_BY_ID
from orgaudit.checks.config import load_settings
from orgaudit.checks.derived import store_derived
from orgaudit.checks.diff import SnapshotDiff, diff_snapshots
from orgaudit.checks.findings import (
    AuditResult,
    AuditSettings,
    Finding,
    exit_code_for,
    run_checks,
    severity_rank,
)
from orgaudit.errors import UsageError
from orgaudit.files import private_folder
from orgaudit.model.analysis import Analysis, load_analysis
from orgaudit.render.report import WRITERS
from orgaudit.render.report.tables import build_report
from orgaudit.store.queries import query_pack, run_query


@dataclass(frozen=True)
class AuditOptions:
    """What to audit and where the reports go."""

    db_path: Path
    out_dir: Path
    formats: tuple[str, ...]
    snapshot_id: int | None = None
    catalog_path: Path | None = None
    config_path: Path | None = None
    fail_on: str | None = None
    stale_days: int | None = None
    max_owners: int | None = None
    queries_dir: Path | None = None

    def __post_init__(self) -> None:
        unknown = [f for f in self.formats if f not in WRITERS]
        if unknown or not self.formats:
            raise UsageError(
                f"unknown format {', '.join(unknown) or '(none)'}; choose from {', '.join(WRITERS)}"
            )
        if self.fail_on is not None:
            severity_rank(self.fail_on)


def parse_formats(values: list[str] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    """``--format xlsx --format csv`` or ``--format xlsx,csv``, in order, without repeats."""
    if not values:
        return default
    names = [part.strip() for value in values for part in value.split(",") if part.strip()]
    return tuple(dict.fromkeys(names))


def run_audit(options: AuditOptions, analysis: Analysis | None = None) -> AuditResult:
    """Analyze the snapshot, run the checks, write every report format asked for.

    ``analysis`` is the snapshot's analysis when the caller has it already (an online
    audit's pull worked it out): it is not worked out again.
    """
    settings = load_settings(
        options.config_path,
        frozenset(CHECKS_BY_ID),
        stale_days=options.stale_days,
        max_owners=options.max_owners,
    )
    if analysis is None:
        analysis = load_analysis(options.db_path, options.snapshot_id, options.catalog_path)
    findings = run_checks(CHECKS, analysis, settings)
    stored = _store(options.db_path, analysis, findings)
    changes = _changes_since_previous(options, analysis, findings, settings)
    extra = {} if options.queries_dir is None else _query_sheets(options, analysis, settings)
    report = build_report(analysis, CHECKS, findings, changes, extra)
    private_folder(options.out_dir)
    stem = f"orgaudit-snapshot-{analysis.snapshot.id}"
    files = tuple(WRITERS[name](report, options.out_dir, stem) for name in options.formats)
    return AuditResult(
        snapshot_id=analysis.snapshot.id,
        findings=findings,
        files=files,
        exit_code=exit_code_for(findings, options.fail_on),
        fail_on=options.fail_on,
        stored=stored,
    )


@dataclass(frozen=True)
class DiffOptions:
    """Which two snapshots to compare, and how to read them."""

    db_path: Path
    from_snapshot: int | None = None
    to_snapshot: int | None = None
    catalog_path: Path | None = None
    config_path: Path | None = None


def run_diff(options: DiffOptions) -> SnapshotDiff:
    """Compare two snapshots (default: the last two), findings included."""
    settings = load_settings(options.config_path, frozenset(CHECKS_BY_ID))
    with store.connect(options.db_path, create=False) as conn:
        newer = store.resolve_snapshot(conn, options.to_snapshot)
        older = (
            store.resolve_snapshot(conn, options.from_snapshot)
            if options.from_snapshot is not None
            else store.previous_snapshot(conn, newer)
        )
    if older is None:
        raise UsageError(f"snapshot {newer} has no earlier snapshot to compare with; pull again")
    old = load_analysis(options.db_path, older, options.catalog_path)
    new = load_analysis(options.db_path, newer, options.catalog_path)
    return diff_snapshots(
        old,
        new,
        run_checks(CHECKS, old, settings),
        run_checks(CHECKS, new, settings),
        settings.stale_days,
    )


def _changes_since_previous(
    options: AuditOptions,
    analysis: Analysis,
    findings: tuple[Finding, ...],
    settings: AuditSettings,
) -> SnapshotDiff | None:
    """The diff against the snapshot before the audited one, when there is one."""
    with store.connect(options.db_path, create=False) as conn:
        previous = store.previous_snapshot(conn, analysis.snapshot.id)
    if previous is None:
        return None
    old = load_analysis(options.db_path, previous, options.catalog_path)
    return diff_snapshots(
        old, analysis, run_checks(CHECKS, old, settings), findings, settings.stale_days
    )


def _query_sheets(
    options: AuditOptions, analysis: Analysis, settings: AuditSettings
) -> dict[str, pd.DataFrame]:
    """Each pack query's result, by query name (cut to Excel's 31 characters).

    ``:days`` is bound to the stale-days threshold; a query needing any other parameter
    is left out, since the audit cannot guess it.
    """
    assert options.queries_dir is not None
    sheets: dict[str, pd.DataFrame] = {}
    for query in query_pack(options.queries_dir):
        params = {"days": str(settings.stale_days)} if "days" in query.parameters else {}
        if set(query.parameters) - {"snapshot_id", "days"}:
            continue
        name = query.name[:31]
        sheets[name] = run_query(options.db_path, query, analysis.snapshot.id, params)
    return sheets


def _store(db_path: Path, analysis: Analysis, findings: tuple[Finding, ...]) -> bool:
    """Write the access model and the findings back into the snapshot's derived tables.

    A database the user may not write (a copy handed to an auditor, a read-only mount) is
    left as it is and False returned: the reports come from the model and findings
    worked out in memory all the same.
    """
    folder = db_path.parent if db_path.parent != Path() else Path(".")
    if not (os.access(db_path, os.W_OK) and os.access(folder, os.W_OK)):
        return False  # SQLite writes its rollback journal beside the database
    with store.connect(db_path, create=False) as conn:
        store_derived(conn, analysis, findings)
    return True
