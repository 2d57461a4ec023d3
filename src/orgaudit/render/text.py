"""Text the commands print: summaries of pulls, snapshot lists, the demo's report."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
from rich.table import Table

from orgaudit.checks.diff import SECTIONS, SnapshotDiff
from orgaudit.checks.findings import AuditResult, Finding
from orgaudit.collect.records import PullResult
from orgaudit.render.terminal import lines_text, shown
from orgaudit.store.database import Pruned
from orgaudit.store.db import SnapshotInfo
from orgaudit.store.queries import PARAM_TYPES, SavedQuery
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
    ("audit_access_events", "access changes"),
    ("costs", "cost rows"),
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


def _table(*headers: str, title: str) -> Table:
    """A table whose values are never cut short: a value too long for its column folds
    onto the next line instead of ending in an ellipsis (``heidi-o…`` names no key)."""
    table = Table(title=title, title_justify="left")
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def snapshot_table(snapshots: list[SnapshotInfo], db_path: Path) -> Table | str:
    """The snapshots of a database as a table, or a hint when there are none."""
    if not snapshots:
        return shown(f"no snapshots in {db_path}; run `orgaudit pull` first")
    table = _table(
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
    pulled: PullResult,
    audited: AuditResult,
    db_path: Path,
    cases: Mapping[str, str],
    *,
    out_dir: Path,
    found_by_default: bool,
    set_aside: Path | None = None,
) -> str:
    """What the demo did, the cases its org holds, and the next commands, to paste."""
    lines = [
        "orgaudit demo: pulled the simulated demo org over real HTTP on loopback.",
        pull_summary(pulled),
        f"database: {db_path}",
    ]
    if set_aside is not None:
        lines.append(
            f"({set_aside} holds a database already: it was left as it is, and the demo's "
            "went to a new temporary folder)"
        )
    lines += [
        "",
        "The demo org holds these cases for the audit to find:",
        *(f"  - {name}: {text}" for name, text in cases.items()),
        "",
        *_audit_lines(audited),
        "",
        f"open the workbook: {_report_file(audited.files)}",
        *_next_commands(db_path, out_dir, found_by_default),
    ]
    return lines_text(lines)


# The folder ``orgaudit audit`` writes to without --out.
AUDIT_OUT_DEFAULT = Path("reports")


def _next_commands(db_path: Path, out_dir: Path, found_by_default: bool) -> list[str]:
    """Commands that work as pasted: on the demo's database, found by default or named
    by ORGAUDIT_DB; and an audit that writes where the demo wrote, never over another
    database's reports in the default folder."""
    if found_by_default:
        where = "from this folder" if not db_path.is_absolute() else "from any folder"
        lines = [f"next, try ({where}; they read {db_path} by default):"]
    else:
        lines = [
            "next, try (run the export line first: the commands read the database it names):",
            f"  export ORGAUDIT_DB={shlex.quote(str(db_path.absolute()))}",
        ]
    same_out = out_dir.absolute() == AUDIT_OUT_DEFAULT.absolute()
    out = "" if same_out else f" --out {shlex.quote(str(out_dir.absolute()))}"
    return [
        *lines,
        "  orgaudit explain user carol@example.com",
        "  orgaudit explain user dave@example.com --project Payments",
        "  orgaudit explain user erin@example.com --project Payments   # who granted what",
        "  orgaudit query users-cannot-create-keys",
        "  orgaudit query top-spending-keys",
        f"  orgaudit audit --offline{out}",
    ]


def audit_summary(result: AuditResult) -> str:
    """Findings by severity and by check, the worst few, where the rest are, where the
    files went, and the exit decision."""
    return lines_text(_audit_lines(result))


def _worst_first(findings: list[Finding]) -> list[Finding]:
    """Most severe first; among equals, one of each check before a second of any, so the
    few shown are not all one check's on an org with a thousand of them."""
    seen: dict[tuple[str, Severity], int] = {}
    order = []
    for finding in findings:
        key = (finding.check_id, finding.severity)  # its n-th finding at this severity
        seen[key] = seen.get(key, 0) + 1
        order.append((-finding.severity.rank, seen[key]))
    ranked = sorted(range(len(findings)), key=order.__getitem__)
    return [findings[i] for i in ranked]


def _report_file(files: tuple[Path, ...]) -> Path | None:
    """The file to read the rest in: the workbook if one was written, else the first."""
    return next((f for f in files if f.suffix == ".xlsx"), files[0] if files else None)


def _audit_lines(result: AuditResult) -> list[str]:
    counted = [f for f in result.findings if f.counts]
    by_severity = {s: sum(1 for f in counted if f.severity == s) for s in reversed(Severity)}
    suppressed = len(result.findings) - len(counted)
    worst = _worst_first(counted)
    by_check: dict[str, int] = {}
    for finding in worst:  # the checks most severe first, then the most numerous
        by_check[finding.check_id] = by_check.get(finding.check_id, 0) + 1
    top_rank = {f.check_id: f.severity.rank for f in reversed(worst)}
    by_check = dict(sorted(by_check.items(), key=lambda item: (-top_rank[item[0]], -item[1])))
    lines = [
        f"snapshot {result.snapshot_id}: {len(counted)} findings ("
        + (", ".join(f"{n} {s}" for s, n in by_severity.items() if n) or "none")
        + f"); {suppressed} suppressed"
    ]
    if by_check:
        lines.append("by check: " + ", ".join(f"{n} {check}" for check, n in by_check.items()))
        lines.append(f"the worst {min(len(worst), _TOP_FINDINGS)}:")
    lines += [
        f"  {f.severity:<8} {f.check_id:<26} {f.subject_name}"
        + (f" in {f.project_name}" if f.project_name else "")
        + (" (unknown)" if f.status == FindingStatus.UNKNOWN else "")
        for f in worst[:_TOP_FINDINGS]
    ]
    rest, where = len(worst) - _TOP_FINDINGS, _report_file(result.files)
    if rest > 0 and where is not None:
        lines.append(f"  and {rest} more in {where}")
    lines += [f"wrote {path}" for path in result.files]
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
    """The query pack: name, title, parameters (each with the kind of value it takes)."""
    table = _table("name", "title", "parameters", title="saved queries")
    for query in queries:
        params = ", ".join(
            f"{p} ({PARAM_TYPES[query.type_of(p)]})" for p in query.parameters if p != "snapshot_id"
        )
        table.add_row(shown(query.name), shown(query.title), shown(params or "-"))
    return table


def frame_table(frame: pd.DataFrame, title: str) -> Table:
    """A query result as a terminal table; no value is cut short."""
    table = _table(*map(shown, frame.columns), title=shown(f"{title} ({len(frame)} rows)"))
    for row in frame.astype(object).where(frame.notna(), "").itertuples(index=False):
        table.add_row(*map(shown, row))
    return table


def pruned(result: Pruned) -> str:
    """What --prune deleted, and what it spared for an access review."""
    lines = []
    if result.deleted:
        ids = ", ".join(map(str, result.deleted))
        lines.append(f"deleted {len(result.deleted)} snapshot(s): {ids}; database compacted")
    else:
        lines.append("nothing to prune")
    if result.spared:
        ids = ", ".join(map(str, result.spared))
        lines.append(
            f"kept snapshot(s) {ids}: an access review still needs them (open, or removals "
            "not yet seen done); `orgaudit review status` says which"
        )
    return "\n".join(lines)


# The sections about findings; every other section is a change to people, roles or keys.
_FINDING_SECTIONS = tuple(section for section in SECTIONS if section.startswith("findings "))


def diff_text(diff: SnapshotDiff) -> str:
    """The changes by section; empty sections are left out. Only a value that changed is
    written ``before -> after``: something added or removed shows what it is, and a
    finding still open shows its severity and message, with no arrow to read as a change."""
    lines = [f"changes from snapshot {diff.from_snapshot} to snapshot {diff.to_snapshot}"]
    if not any(diff.section(s) for s in SECTIONS if s not in _FINDING_SECTIONS):
        lines.append("no changes to people, roles or keys")
    for section in SECTIONS:
        changes = diff.section(section)
        if not changes:
            continue
        lines.append(f"{section} ({len(changes)}):")
        for change in changes:
            where = f" in {change.project}" if change.project else ""
            by = f" (by {change.actor})" if change.actor else ""
            value = _change_value(change.before, change.after)
            lines.append(f"  {change.subject}{where}{value}{by}")
    return lines_text(lines)


def _change_value(before: str, after: str) -> str:
    if before and after:
        return f": {before} -> {after}"
    if after:  # added, created, new or still open: what it is now
        return f": {after}"
    if before:  # removed, deleted or resolved: what it was
        return f": was {before}"
    return ""
