"""The derived tables a snapshot stores: its access model and an audit's findings, and
those findings read back for the next audit's Changes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace

import pandas as pd

from orgaudit import store
from orgaudit.checks import CHECKS_BY_ID
from orgaudit.checks.findings import AuditSettings, Finding
from orgaudit.model.analysis import Analysis
from orgaudit.store.database import SnapshotDatabase
from orgaudit.vocabulary import FindingStatus, Severity


def findings_basis(analysis: Analysis, settings: AuditSettings) -> str:
    """A digest of what an audit's findings follow from besides the snapshot: the
    catalog's text and the audit's settings (thresholds, severities, suppressions, and
    the roster by its file's name, digest and columns, not its people one by one).

    Settings without a roster have the basis they had before rosters existed."""
    fields = asdict(replace(settings, roster=None))
    del fields["roster"]
    if settings.roster is not None:
        fields["roster"] = asdict(replace(settings.roster, people={}))
        del fields["roster"]["people"]
    described = json.dumps(fields, sort_keys=True, default=str)
    return hashlib.sha256(f"{analysis.catalog.digest}\n{described}".encode()).hexdigest()


def store_derived(
    db: SnapshotDatabase,
    analysis: Analysis,
    audit: tuple[tuple[Finding, ...], AuditSettings] | None = None,
) -> None:
    """Write the access model (and an audit's findings, with its settings) into the
    derived tables.

    They replace the snapshot's earlier derived rows: the findings table holds the latest
    audit's findings (a pull alone, ``audit`` None, leaves it empty).
    """
    rows = derived_rows(analysis)
    findings, settings = audit if audit is not None else ((), None)
    columns = list(store.DERIVED_TABLES["findings"])
    rows["findings"] = [tuple(_plain(getattr(f, c)) for c in columns) for f in findings]
    basis = None if settings is None else findings_basis(analysis, settings)
    db.write_derived(analysis.snapshot.id, analysis.catalog.version, rows, findings_basis=basis)


def stored_findings(
    db: SnapshotDatabase, snapshot_id: int, basis: str
) -> tuple[Finding, ...] | None:
    """The findings an audit stored with a snapshot, where they were worked out under
    ``basis`` (see :func:`findings_basis`); None where none were, or under another
    catalog or other settings (the checks must run again to compare like with like).

    A check the registry no longer holds keeps its id as its title; what the stored row
    does not hold (the title, the remediation) comes from the registry.
    """
    if db.findings_basis(snapshot_id) != basis:
        return None
    rows = db.table("findings", snapshot_id)
    rows = rows.astype(object).where(rows.notna(), None)
    severities, statuses = frozenset(Severity), frozenset(FindingStatus)
    if not (rows["severity"].isin(severities).all() and rows["status"].isin(statuses).all()):
        return None  # not what an audit writes: the checks are run again instead
    findings = []
    for row in rows.itertuples(index=False):
        check = CHECKS_BY_ID.get(str(row.check_id))
        findings.append(
            Finding(
                check_id=str(row.check_id),
                title=check.title if check else str(row.check_id),
                severity=Severity(str(row.severity)),
                status=FindingStatus(str(row.status)),
                subject_type=str(row.subject_type),
                subject_id=str(row.subject_id),
                subject_name=str(row.subject_name),
                project_id=_text(row.project_id),
                project_name=_text(row.project_name),
                message=str(row.message),
                remediation=check.fix if check else "",
                evidence=str(row.evidence),
                suppressed=bool(row.suppressed),
                suppression=_text(row.suppression) or "",
                contested=_text(row.contested) or "",
            )
        )
    return tuple(findings)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def derived_rows(analysis: Analysis) -> dict[str, list[tuple[object, ...]]]:
    """The derived tables' rows, in their column order (see docs/schema.md)."""
    model = analysis.model
    bindings = model.bindings
    permission_text = {
        key: store.json_list(sorted(pset.permissions))
        for key, pset in model.permission_sets.items()
    }
    sources = {key: pset.source for key, pset in model.permission_sets.items()}
    binding_rows = bindings.assign(
        permissions=bindings["permission_key"].map(permission_text),
        permission_source=bindings["permission_key"].map(sources),
    )[list(store.DERIVED_TABLES["access_bindings"])]
    level_rows = model.levels[list(store.DERIVED_TABLES["access_levels"])]
    kinds = analysis.keys
    recorded_at = (kinds["recorded_at"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    key_rows = pd.DataFrame(
        {
            "key_id": kinds["id"],
            "project_id": kinds["project_id"],
            "scope_kind": kinds["scope_kind"],
            "scopes": kinds["scopes"],
            "recorded_at": recorded_at.astype("Int64"),
        }
    )
    return {
        "access_bindings": _records(binding_rows),
        "access_levels": _records(level_rows),
        "key_scopes": _records(key_rows),
    }


def _records(frame: pd.DataFrame) -> list[tuple[object, ...]]:
    cleaned = frame.astype(object).where(frame.notna(), None)
    return [tuple(_plain(v) for v in row) for row in cleaned.itertuples(index=False)]


def _plain(value: object) -> object:
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return int(bool(value))
    return value
