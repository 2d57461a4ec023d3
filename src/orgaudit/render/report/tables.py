"""The presentation tables every report format writes: one source of truth for all four.

Built once per audit from the analysis and the findings; the writers only lay them out.
Times stay timezone-aware UTC datetimes here; each writer renders them its own way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from orgaudit import __version__
from orgaudit.checks.diff import SnapshotDiff
from orgaudit.checks.findings import Check, Finding
from orgaudit.model.analysis import Analysis
from orgaudit.render.report.access import access_review_table
from orgaudit.render.report.entities import (
    admin_keys_table,
    api_keys_table,
    findings_per_subject,
    groups_table,
    invites_table,
    memberships_table,
    projects_table,
    roles_table,
    service_accounts_table,
    users_table,
)
from orgaudit.render.report.matrix import AccessMatrix, access_matrix
from orgaudit.render.report.spend import spend_table
from orgaudit.render.report.start import KeyAccessAnswer, key_access_answer
from orgaudit.vocabulary import Severity

FINDING_COLUMNS = {
    "severity": "Severity",
    "status": "Status",
    "check_id": "Check",
    "title": "Title",
    "subject_type": "Subject type",
    "subject_name": "Subject",
    "subject_id": "Subject id",
    "project_name": "Project",
    "project_id": "Project id",
    "message": "Message",
    "remediation": "Remediation",
    "evidence": "Evidence",
    "suppressed": "Suppressed",
    "suppression": "Suppression",
    "contested": "Contested rule",
    "finding_id": "Finding id",
}


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows, as plain tables."""

    meta: Mapping[str, Any]
    coverage: pd.DataFrame
    findings: pd.DataFrame
    checks: pd.DataFrame
    tables: Mapping[str, pd.DataFrame]
    matrix: AccessMatrix
    key_access: KeyAccessAnswer


def findings_frame(findings: tuple[Finding, ...]) -> pd.DataFrame:
    """Findings as a table, worst first, with the reports' column names."""
    records = [{**asdict(f), "finding_id": f.finding_id} for f in findings]
    frame = pd.DataFrame(records, columns=list(FINDING_COLUMNS))
    rank = frame["severity"].map({s: -s.rank for s in Severity})
    ordered = frame.assign(_rank=rank).sort_values(
        ["_rank", "check_id", "project_name", "subject_name"], kind="stable", na_position="first"
    )
    return ordered.drop(columns=["_rank"]).rename(columns=FINDING_COLUMNS).reset_index(drop=True)


def build_report(
    analysis: Analysis,
    checks: tuple[Check, ...],
    findings: tuple[Finding, ...],
    changes: SnapshotDiff | None = None,
    extra: Mapping[str, pd.DataFrame] | None = None,
) -> ReportData:
    """The report's tables for one analyzed snapshot and its findings.

    ``changes`` (the diff from the previous snapshot) adds a *Changes* table; ``extra``
    adds further tables (saved queries) after the standard ones.
    """
    snapshot = analysis.snapshot
    frame = findings_frame(findings)
    meta = {
        "snapshot_id": snapshot.id,
        "as_of": snapshot.as_of,
        "audit_since": snapshot.audit_since,
        "usage_since": snapshot.usage_since,
        "catalog_version": analysis.catalog.version,
        "tool_version": __version__,
        "findings": len(findings),
        "findings_counted": sum(1 for f in findings if f.counts),
    }
    coverage = snapshot.coverage[["source", "status", "reason", "rows", "requests"]].rename(
        columns=str.capitalize
    )
    per_subject = findings_per_subject(findings)
    return ReportData(
        meta=meta,
        coverage=coverage,
        findings=frame,
        checks=pd.DataFrame(
            [(c.id, c.title, c.severity, c.flags, c.why, c.fix, c.evidence) for c in checks],
            columns=["Check", "Title", "Severity", "Flags", "Why", "Fix", "Evidence"],
        ),
        tables={
            "Users": users_table(analysis, per_subject),
            "Projects": projects_table(analysis),
            "Memberships": memberships_table(analysis),
            "Roles & permissions": roles_table(analysis),
            "Groups": groups_table(analysis),
            "Service accounts": service_accounts_table(analysis, per_subject),
            "API keys": api_keys_table(analysis, per_subject),
            "Spend": spend_table(analysis),
            "Admin keys": admin_keys_table(analysis, per_subject),
            "Invites": invites_table(analysis, per_subject),
            "Access review": access_review_table(analysis, findings),
            **({} if changes is None else {"Changes": changes.to_frame()}),
            **(extra or {}),
        },
        matrix=access_matrix(analysis),
        key_access=key_access_answer(analysis, findings),
    )
