"""A campaign's items: the access review's population, narrowed to its scope, each with
the checksum of its identity, the names of the person who answers for it (who may not
review it), and what the roster says about them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from orgaudit.checks.findings import Finding
from orgaudit.errors import UsageError
from orgaudit.model.analysis import Analysis
from orgaudit.model.catalog import ORGANIZATION, Catalog
from orgaudit.render.report.access import ANSWERING_ID, review_population
from orgaudit.render.report.xlsx_cells import cell_text
from orgaudit.store.snapshot import Snapshot

# The Review sheet's columns: what orgaudit writes (protected), what the reviewer fills
# in, and the checksum of the row's identity (protected, last).
WRITTEN = [
    "Item id", "Kind", "Subject", "Subject id", "Project", "Project id", "Access",
    "How held", "Grants key creation", "Last activity", "Findings", "Suggested reviewer",
    "Roster",
]  # fmt: skip
FILLED = ["Decision", "New role", "Justification", "Reviewer", "Date"]
CHECKSUM = "Checksum"
REVIEW_SHEET_COLUMNS = [*WRITTEN, *FILLED, CHECKSUM]
# What a row is: a reviewer who changes any of these has changed what was reviewed.
IDENTITY = [
    "Item id", "Kind", "Subject", "Subject id", "Project", "Project id", "Access", "How held",
]  # fmt: skip
# The same, as the review_items table names them.
IDENTITY_FIELDS = dict(
    zip(
        IDENTITY,
        ["item_id", "kind", "subject", "subject_id", "project", "project_id", "access", "how_held"],
        strict=True,
    )
)
ROLE_KINDS = ("user role", "service account role")
ROSTER_DECISION = "Remove"


def roster_justification(reason: str) -> str:
    """The justification a row the roster marks comes with ("" for a row it does not)."""
    return f"roster: {reason}" if reason else ""


def identity_text(value: object) -> str:
    """An identity value as the sheet holds it and a reader gets it back (missing: empty)."""
    if _missing(value):
        return ""
    return cell_text(str(value))


def checksum(campaign_id: str, identity: Sequence[str]) -> str:
    """The checksum of a row's identity within its campaign: an edited identity cell, or a
    row copied from another campaign, no longer matches it."""
    text = "\x1f".join([campaign_id, *identity])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def select_projects(analysis: Analysis, wanted: Sequence[str]) -> tuple[str, ...]:
    """The ids of the projects ``--project`` names (by id or name, any case)."""
    projects = analysis.projects
    chosen: list[str] = []
    for name in wanted:
        match = projects[
            (projects["project_id"] == name)
            | (projects["project_name"].astype(str).str.casefold() == name.casefold())
        ]
        if match.empty:
            raise UsageError(f"no project {name!r} in snapshot {analysis.snapshot.id}")
        chosen.extend(match["project_id"].astype(str))
    return tuple(dict.fromkeys(chosen))


def campaign_items(
    analysis: Analysis,
    findings: tuple[Finding, ...],
    campaign_id: str,
    projects: tuple[str, ...] = (),
    standing: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The campaign's items in workbook order: the Review sheet's written columns, the
    checksum, and what the review_items table stores besides.

    ``projects`` narrows the campaign to those projects' items (none: every item);
    ``standing`` is the roster's word on users (see ``checks.roster.roster_standing``):
    their rows, and the keys they own, are marked for removal with its reason.
    """
    items = review_population(analysis, findings)
    if projects:
        items = items[items["Project id"].isin(projects)]
    reasons: Mapping[str, str] = {}
    if standing is not None and not standing.empty:
        reasons = dict(zip(standing["principal_id"], standing["reason"], strict=True))
    roster = items[ANSWERING_ID].map(lambda who: reasons.get(str(who), ""))
    items = items.assign(Roster=roster)
    identities = [
        [identity_text(value) for value in row]
        for row in items[IDENTITY].itertuples(index=False, name=None)
    ]
    return items.assign(
        **{
            CHECKSUM: [checksum(campaign_id, identity) for identity in identities],
            "answering_names": _answering_names(analysis, items[ANSWERING_ID]),
        }
    ).reset_index(drop=True)


def _answering_names(analysis: Analysis, ids: pd.Series) -> list[str]:
    """Each answering person's id, e-mail and name (JSON), the strings a reviewer who is
    that person would sign with."""
    users = analysis.snapshot["users"]
    accounts = analysis.snapshot["project_service_accounts"]
    names: dict[str, list[str]] = {}
    for frame, columns in ((users, ["email", "name"]), (accounts, ["name"])):
        for row in frame[["id", *columns]].itertuples(index=False, name=None):
            known = names.setdefault(str(row[0]), [str(row[0])])
            known.extend(str(value) for value in row[1:] if isinstance(value, str) and value)
    return [json.dumps(sorted(set(names.get(str(who), [str(who)])))) for who in ids]


def item_records(items: pd.DataFrame, campaign_id: str) -> list[dict[str, object]]:
    """The review_items rows of a campaign's items (row numbers as the sheet has them)."""
    records = []
    for number, row in enumerate(items.to_dict("records"), start=2):
        identity = {field: identity_text(row[column]) for column, field in IDENTITY_FIELDS.items()}
        records.append(
            {
                "campaign_id": campaign_id,
                "row_number": number,
                **identity,
                "project_id": identity["project_id"] or None,
                "principal_type": _text(row.get("principal_type")),
                "scope": _text(row.get("scope")),
                "binding_kind": _text(row.get("binding_kind")),
                "role_id": _text(row.get("role_id")),
                "role_name": _text(row.get("role_name")),
                "via_group_id": _text(row.get("via_group_id")),
                "answering_id": _text(row.get(ANSWERING_ID)),
                "answering_names": row["answering_names"],
                "findings": identity_text(row["Findings"]),
                "suggested_reviewer": identity_text(row["Suggested reviewer"]),
                "roster": identity_text(row["Roster"]),
                "checksum": row[CHECKSUM],
            }
        )
    return records


def existing_roles(snapshot: Snapshot, catalog: Catalog) -> dict[str, tuple[str, ...]]:
    """The role names a Change may name, by where: ``""`` for the organization, else the
    project id. They are the roles the snapshot lists there (built-in and custom), and
    the catalog's built-in roles where the snapshot lists none. (No access model is
    needed: a close reads only these.)"""
    roles = snapshot["roles"]
    presets = catalog.presets.values()
    builtin = {
        level: [p.name for p in presets if p.resource == level]
        for level in {p.resource for p in presets}
    }
    found: dict[str, tuple[str, ...]] = {}
    org = roles.loc[roles["resource_type"] == ORGANIZATION, "name"].dropna().astype(str)
    found[""] = tuple(sorted(set(org) or set(builtin.get(ORGANIZATION, [])), key=str.casefold))
    project_roles = roles[roles["resource_type"] != ORGANIZATION].dropna(subset=["name"])
    by_project = project_roles.groupby("project_id")["name"].agg(lambda n: sorted(set(n)))
    for project_id in snapshot["projects"]["id"].astype(str):
        listed = by_project.get(project_id)
        names = listed if listed is not None else builtin.get("project", [])
        found[project_id] = tuple(sorted(names, key=str.casefold))
    return found


def _text(value: object) -> str | None:
    return None if _missing(value) else str(value)


def _missing(value: Any) -> bool:
    """None, NaN, NaT or NA: what a DataFrame holds where a value is missing."""
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))
