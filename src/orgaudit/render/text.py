"""Text the commands print: summaries of pulls, snapshot lists, the demo's report."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd
from rich.table import Table

from orgaudit.checks.diff import SECTIONS, SnapshotDiff
from orgaudit.checks.findings import AuditResult
from orgaudit.collect.records import PullResult
from orgaudit.render.terminal import lines_text, shown
from orgaudit.store.db import SnapshotInfo
from orgaudit.store.queries import SavedQuery
from orgaudit.vocabulary import FindingStatus, Severity

# The counts a pull summary names, in this order: (source, label).
_SUMMARY_COUNTS = (
    ("users", "users"),
    ("projects", "projects"),
    ("project_users", "memberships"),
    ("project_service_accounts", "service accounts"),
    ("project_api_keys", "API keys"),
    ("groups", "groups"),
    ("invites", "invites"),
    ("admin_api_keys", "admin keys"),
    ("audit_key_events", "key events"),
)


def pull_summary(result: PullResult) -> str:
    """One line: snapshot id, counts, what was unavailable, requests and seconds."""
    collected = result.collected
    rows = {c.source: c.rows for c in collected.coverage}
    counts = ", ".join(f"{rows.get(source, 0)} {label}" for source, label in _SUMMARY_COUNTS)
    degraded = [
        f"{c.source} ({c.status}: {c.reason})" for c in collected.coverage if c.status != "complete"
    ]
    unavailable = f"; unavailable: {'; '.join(degraded)}" if degraded else "; every source complete"
    return shown(
        f"snapshot {result.snapshot_id}: {counts}{unavailable}; "
        f"{collected.requests} requests ({collected.retries} retried) in {result.seconds:.1f} s"
    )


def snapshot_table(snapshots: list[SnapshotInfo], db_path: Path) -> Table | str:
    """The snapshots of a database as a table, or a hint when there are none."""
    if not snapshots:
        return shown(f"no snapshots in {db_path}; run `orgaudit pull` first")
    table = Table(
        "id",
        "started (UTC)",
        "seconds",
        "rows",
        "requests",
        "not complete",
        "base URL",
        title=shown(db_path),
    )
    for info in snapshots:
        table.add_row(
            str(info.id),
            info.started_at[:19].replace("T", " "),
            f"{info.seconds:.1f}",
            str(info.rows),
            str(info.requests),
            ", ".join(info.unavailable) or "-",
            shown(info.base_url),
        )
    return table


def demo_report(
    pulled: PullResult, audited: AuditResult, db_path: Path, cases: Mapping[str, str]
) -> str:
    """What the demo did, and the cases its org holds."""
    lines = [
        "orgaudit demo: pulled the simulated demo org over real HTTP on loopback.",
        pull_summary(pulled),
        f"database: {db_path}",
        "",
        "The demo org holds these cases for the audit to find:",
        *(f"  - {name}: {text}" for name, text in cases.items()),
        "",
        *_audit_lines(audited),
        "",
        f"open the workbook: {audited.files[0]}",
        f"ask why: orgaudit explain user carol@example.com --project Payments --db {db_path}",
    ]
    return lines_text(lines)


def audit_summary(result: AuditResult) -> str:
    """Findings by severity, the worst few, where the files went, and the exit decision."""
    return lines_text(_audit_lines(result))


def _audit_lines(result: AuditResult) -> list[str]:
    counted = [f for f in result.findings if f.counts]
    by_severity = {s: sum(1 for f in counted if f.severity == s) for s in reversed(Severity)}
    suppressed = len(result.findings) - len(counted)
    worst = sorted(counted, key=lambda f: -f.severity.rank)[:_TOP_FINDINGS]
    lines = [
        f"snapshot {result.snapshot_id}: {len(counted)} findings ("
        + ", ".join(f"{n} {s}" for s, n in by_severity.items() if n)
        + f"); {suppressed} suppressed",
        *(
            f"  {f.severity:<8} {f.check_id:<26} {f.subject_name}"
            + (f" in {f.project_name}" if f.project_name else "")
            + (" (unknown)" if f.status == FindingStatus.UNKNOWN else "")
            for f in worst
        ),
        *(f"wrote {path}" for path in result.files),
    ]
    if not result.stored:
        lines.append(
            "the database is read-only: the findings were worked out in memory and not "
            "stored in it (saved queries over them read the last stored audit)"
        )
    if result.fail_on is not None:
        verdict = "fails" if result.exit_code else "passes"
        lines.append(
            f"--fail-on {result.fail_on}: the audit {verdict} (exit {int(result.exit_code)})"
        )
    return lines


_TOP_FINDINGS = 5


def query_list(queries: tuple[SavedQuery, ...]) -> Table:
    """The query pack: name, title, parameters."""
    table = Table("name", "title", "parameters", title="saved queries")
    for query in queries:
        params = ", ".join(p for p in query.parameters if p != "snapshot_id")
        table.add_row(shown(query.name), shown(query.title), shown(params or "-"))
    return table


def frame_table(frame: pd.DataFrame, title: str) -> Table:
    """A query result as a terminal table."""
    table = Table(*map(shown, frame.columns), title=shown(f"{title} ({len(frame)} rows)"))
    for row in frame.astype(object).where(frame.notna(), "").itertuples(index=False):
        table.add_row(*map(shown, row))
    return table


def pruned(deleted: tuple[int, ...]) -> str:
    """What --prune deleted."""
    if not deleted:
        return "nothing to prune"
    return f"deleted {len(deleted)} snapshot(s): {', '.join(map(str, deleted))}; database compacted"


def diff_text(diff: SnapshotDiff) -> str:
    """The changes by section; empty sections are left out."""
    lines = [f"changes from snapshot {diff.from_snapshot} to snapshot {diff.to_snapshot}"]
    for section in SECTIONS:
        changes = diff.section(section)
        if not changes:
            continue
        lines.append(f"{section} ({len(changes)}):")
        for change in changes:
            where = f" in {change.project}" if change.project else ""
            arrow = ""
            if change.before or change.after:
                arrow = f": {change.before or '-'} -> {change.after or '-'}"
            lines.append(f"  {change.subject}{where}{arrow}")
    if len(lines) == 1:
        lines.append("no changes")
    return lines_text(lines)
