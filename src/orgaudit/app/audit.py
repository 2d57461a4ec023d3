"""``orgaudit audit``: analyze a snapshot, run every check, write the reports, decide the exit.

The pull (unless offline) happens first through :mod:`orgaudit.app.pull`; from there
on everything reads the snapshot only, so an audit can be rerun offline at any time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from orgaudit.checks import CHECKS, CHECKS_BY_ID
from orgaudit.checks.config import load_settings
from orgaudit.checks.derived import findings_basis, store_derived, stored_findings
from orgaudit.checks.diff import SnapshotDiff, SpendChange, diff_snapshots
from orgaudit.checks.findings import (
    AuditResult,
    AuditSettings,
    Finding,
    exit_code_for,
    run_checks,
)
from orgaudit.errors import UsageError
from orgaudit.files import private_folder
from orgaudit.model.analysis import Analysis, load_analysis
from orgaudit.render.report import WRITERS
from orgaudit.render.report.tables import build_report
from orgaudit.store.database import SnapshotDatabase
from orgaudit.store.queries import query_pack, run_query
from orgaudit.vocabulary import Severity


@dataclass(frozen=True)
class AuditOptions:
    """What to audit and where the reports go."""

    out_dir: Path
    formats: tuple[str, ...]
    snapshot_id: int | None = None
    catalog_path: Path | None = None
    config_path: Path | None = None
    fail_on: Severity | None = None
    stale_days: int | None = None
    max_owners: int | None = None
    queries_dir: Path | None = None
    roster_path: Path | None = None  # an HR/IdP roster CSV (checks user-terminated, ...)

    def __post_init__(self) -> None:
        if self.fail_on is not None:  # a caller's plain text is checked, and typed
            object.__setattr__(self, "fail_on", Severity.parse(self.fail_on))
        unknown = [f for f in self.formats if f not in WRITERS]
        if unknown or not self.formats:
            raise UsageError(
                f"unknown format {', '.join(unknown) or '(none)'}; choose from {', '.join(WRITERS)}"
            )


def parse_formats(values: list[str] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    """``--format xlsx --format csv`` or ``--format xlsx,csv``, in any case, in order,
    without repeats."""
    if not values:
        return default
    names = [part.strip().lower() for value in values for part in value.split(",") if part.strip()]
    return tuple(dict.fromkeys(names))


def run_audit(
    db: SnapshotDatabase, options: AuditOptions, analysis: Analysis | None = None
) -> AuditResult:
    """Analyze the snapshot, run the checks, write every report format asked for.

    ``analysis`` is the snapshot's analysis when the caller has it already (an online
    audit's pull worked it out): it is not worked out again.
    """
    settings = load_settings(
        options.config_path,
        frozenset(CHECKS_BY_ID),
        stale_days=options.stale_days,
        max_owners=options.max_owners,
        roster=options.roster_path,
    )
    if analysis is None:
        analysis = load_analysis(db, options.snapshot_id, options.catalog_path)
    findings = run_checks(CHECKS, analysis, settings)
    # A database the user may not write (a copy handed to an auditor, a read-only mount)
    # is left as it is: the reports come from what was worked out in memory all the same.
    stored = db.writable
    if stored:
        store_derived(db, analysis, (findings, settings))
    changes = _changes_since_previous(db, options, analysis, findings, settings)
    extra = {} if options.queries_dir is None else _query_sheets(db, options, analysis, settings)
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

    from_snapshot: int | None = None
    to_snapshot: int | None = None
    catalog_path: Path | None = None
    config_path: Path | None = None


def run_diff(db: SnapshotDatabase, options: DiffOptions) -> SnapshotDiff:
    """Compare two snapshots (default: the last two), findings included."""
    settings = load_settings(options.config_path, frozenset(CHECKS_BY_ID))
    newer = db.resolve(options.to_snapshot)
    older = db.resolve(options.from_snapshot) if options.from_snapshot is not None else None
    older = older if older is not None else db.previous(newer)
    if older is None:
        raise UsageError(f"snapshot {newer} has no earlier snapshot to compare with; pull again")
    old = load_analysis(db, older, options.catalog_path)
    new = load_analysis(db, newer, options.catalog_path)
    return diff_snapshots(
        old,
        new,
        run_checks(CHECKS, old, settings),
        run_checks(CHECKS, new, settings),
        settings.stale_days,
        SpendChange(settings.spend_change_percent, settings.spend_change_min),
    )


def _changes_since_previous(
    db: SnapshotDatabase,
    options: AuditOptions,
    analysis: Analysis,
    findings: tuple[Finding, ...],
    settings: AuditSettings,
) -> SnapshotDiff | None:
    """The diff against the snapshot before the audited one, when there is one.

    Its findings are those the previous audit stored, where it ran under the same catalog
    and settings; otherwise (or where it was never audited) its checks run here.
    """
    previous = db.previous(analysis.snapshot.id)
    if previous is None:
        return None
    old = load_analysis(db, previous, options.catalog_path)
    old_findings = stored_findings(db, previous, findings_basis(old, settings))
    if old_findings is None:
        old_findings = run_checks(CHECKS, old, settings)
    spend_change = SpendChange(settings.spend_change_percent, settings.spend_change_min)
    return diff_snapshots(old, analysis, old_findings, findings, settings.stale_days, spend_change)


def _query_sheets(
    db: SnapshotDatabase, options: AuditOptions, analysis: Analysis, settings: AuditSettings
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
        sheets[name] = run_query(db, query, analysis.snapshot.id, params)
    return sheets
