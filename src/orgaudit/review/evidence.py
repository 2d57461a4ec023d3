"""The evidence pack an auditor receives: what was reviewed, by whom, what was decided,
and what the org shows done since, each as markdown to read and json to check, with a
manifest and a ``SHA256SUMS`` file (``sha256sum -c SHA256SUMS`` checks every file).

The texts are built from stored values only (the campaign, its items and decisions, the
snapshot's coverage); the time of each stage is passed in, never read here.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from orgaudit.collect.sources import source_label
from orgaudit.render.report.access import KINDS
from orgaudit.render.report.text_formats import md_cell
from orgaudit.render.terminal import json_text
from orgaudit.review.campaign import ACTING, Campaign, Verified, utc_text
from orgaudit.review.verify import ItemVerification
from orgaudit.store.snapshot import Snapshot
from orgaudit.vocabulary import Decision

MANIFEST, SUMS = "manifest.json", "SHA256SUMS"
# The version of the pack's json files (docs/schemas/review.schema.json): raised on any
# incompatible change.
SCHEMA_VERSION = 1
# Each kind of item: its json key, and the type of its subject.
KIND_KEYS = {kind: kind.lower().replace(" ", "_") for kind in KINDS}
KIND_WORDS = {key: words for words, key in KIND_KEYS.items()}
SUBJECT_TYPES = {
    "user role": "user",
    "service account role": "service_account",
    "API key": "api_key",
    "admin key": "admin_key",
}
Rows = Sequence[Mapping[str, object]]


def pack_folder(out_dir: Path, campaign_id: str) -> Path:
    """Where a campaign's workbook and evidence go."""
    return out_dir / f"review-{campaign_id}"


# A snapshot's gaps (coverage_gaps.status), in words.
_GAP_WORDS = {
    "archived": "{} list(s) of archived projects (the API lists no members of an archived project)",
    "unavailable": "{} list(s) that could not be read",
    "skipped": "{} list(s) skipped",
}


@dataclass(frozen=True)
class Coverage:
    """What the campaign's snapshot read: the completeness statement's facts."""

    as_of: datetime
    base_url: str
    incomplete: tuple[str, ...]  # sources not read in full, as "label (status)"

    @classmethod
    def of(cls, snapshot: Snapshot, base_url: str) -> Coverage:
        """From a snapshot's coverage, and its gaps: lists the pull could not read even
        where a source counts as complete (an archived project's members)."""
        rows = snapshot.coverage[snapshot.coverage["status"] != "complete"]
        sources = [
            f"{source_label(s)} ({st})"
            for s, st in zip(rows["source"], rows["status"], strict=True)
        ]
        gaps = snapshot.gaps[snapshot.gaps["status"] != "derived"]
        counted = gaps.groupby("status")["source"].size()
        lists = [_GAP_WORDS.get(str(status), "{} list(s) " + str(status)).format(count)
                 for status, count in counted.items()]  # fmt: skip
        return cls(snapshot.as_of, base_url, tuple(sources + lists))

    def statement(self) -> str:
        """The completeness statement in words."""
        said = (
            f"The population is every item the Admin API at {self.base_url} listed in the "
            f"snapshot taken {self.as_of:%Y-%m-%d %H:%M} UTC"
        )
        if not self.incomplete:
            return said + "; every source was read in full."
        return (
            said
            + "; these were not read in full, so items there may be missing: "
            + ", ".join(self.incomplete)
            + "."
        )


def population(items: Rows) -> dict[str, int]:
    """Items by kind (keyed as json keys are)."""
    counted = Counter(str(item["kind"]) for item in items)
    return {key: counted.get(kind, 0) for kind, key in KIND_KEYS.items()}


def open_summary(campaign: Campaign, items: Rows, coverage: Coverage) -> dict[str, object]:
    """What the campaign was opened on: the facts an auditor checks the population with."""
    return {
        "schema_version": SCHEMA_VERSION,
        "campaign": campaign.summary(),
        "population": population(items),
        "items": len(items),
        "pre_marked_by_roster": sum(1 for item in items if item["roster"]),
        "completeness": coverage.statement(),
    }


def close_summary(
    campaign: Campaign,
    items: Rows,
    decisions: Mapping[str, Mapping[str, object]],
    coverage: Coverage,
    closed: Mapping[str, object],
) -> dict[str, object]:
    """The close's summary: population, coverage, reviewers, decisions, requested changes."""
    counted = Counter(str(d["decision"]) for d in decisions.values())
    reviewers = Counter(str(d["reviewer"]) for d in decisions.values() if d["reviewer"])
    as_suggested = Counter(
        str(d["reviewer"])
        for item in items
        if (d := decisions[str(item["item_id"])])["reviewer"]
        and str(d["reviewer"]).casefold()
        in {name.strip().casefold() for name in str(item["suggested_reviewer"]).split(",")}
    )
    late = sum(
        1
        for d in decisions.values()
        if d["decided_on"] and date.fromisoformat(str(d["decided_on"])) > campaign.due_on
    )
    requested = [
        _item_line(item, decisions[str(item["item_id"])])
        for item in items
        if decisions[str(item["item_id"])]["decision"] in ACTING
    ]
    undecided = [
        _item_line(item, decisions[str(item["item_id"])])
        for item in items
        if decisions[str(item["item_id"])]["decision"] == Decision.UNDECIDED
    ]
    return {
        "schema_version": SCHEMA_VERSION,
        "campaign": campaign.summary(),
        "closed": {k: v for k, v in closed.items() if k != "campaign_id"},
        "population": population(items),
        "completeness": coverage.statement(),
        "decisions": {d.value: counted.get(d.value, 0) for d in Decision},
        "decided_after_due_date": late,
        "reviewers": [
            {"reviewer": name, "decisions": count, "as_suggested": as_suggested.get(name, 0)}
            for name, count in sorted(reviewers.items())
        ],
        "requested_changes": requested,
        "undecided": undecided,
    }


def verification_summary(
    campaign: Campaign,
    items: Rows,
    decisions: Mapping[str, Mapping[str, object]],
    verified: Sequence[ItemVerification],
    verified_at: datetime,
) -> dict[str, object]:
    """What the snapshots since the campaign show done, and what is still outstanding."""
    by_id = {str(item["item_id"]): item for item in items}
    counted = Counter(v.status.value for v in verified)
    overdue = verified_at.date() > campaign.due_on
    return {
        "schema_version": SCHEMA_VERSION,
        "campaign_id": campaign.id,
        "verified_at": utc_text(verified_at),
        "due_on": campaign.due_on.isoformat(),
        "past_due": overdue,
        "counts": {status.value: counted.get(status.value, 0) for status in Verified},
        "items": [
            {
                **_item_line(by_id[v.item_id], decisions[v.item_id]),
                "asked": v.asked,
                "status": v.status.value,
                "latest_snapshot": v.snapshot_id,
                "first_seen_done_snapshot": v.first_done_snapshot,
                "first_seen_done_at": None
                if v.first_done_at is None
                else utc_text(v.first_done_at),
                "detail": v.detail,
            }
            for v in verified
        ],
    }


def _item_line(item: Mapping[str, object], decision: Mapping[str, object]) -> dict[str, object]:
    kind = str(item["kind"])
    project = None
    if item["project_id"] is not None:
        project = {"type": "project", "id": item["project_id"], "name": item["project"]}
    return {
        "item_id": item["item_id"],
        "kind": KIND_KEYS.get(kind, kind),
        "subject": {
            "type": SUBJECT_TYPES.get(kind, kind),
            "id": item["subject_id"],
            "name": item["subject"],
        },
        "project": project,
        "access": item["access"],
        "decision": decision["decision"],
        "new_role": decision["new_role"],
        "reviewer": decision["reviewer"],
        "decided_on": decision["decided_on"],
        "justification": decision["justification"],
    }


# -- markdown -----------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    if not rows:
        return ["(none)"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(md_cell(v) for v in row) + " |" for row in rows]
    return lines


def _facts(campaign: Campaign) -> list[str]:
    lines = [
        f"- Campaign: {md_cell(campaign.id)}",
        f"- Snapshot: {campaign.snapshot_id}",
        f"- Opened: {campaign.opened_at:%Y-%m-%d %H:%M} UTC by {md_cell(campaign.opened_by)}",
        f"- Due: {campaign.due_on}",
        f"- Scope: {md_cell(campaign.scope)}",
        f"- Tool: orgaudit {campaign.tool_version}; catalog {campaign.catalog_version} "
        f"(SHA-256 {campaign.catalog_sha256})",
        f"- Workbook as issued: {campaign.workbook_name} (SHA-256 {campaign.workbook_sha256})",
    ]
    if campaign.roster_name:
        lines.append(
            f"- Roster: {md_cell(campaign.roster_name)} (SHA-256 {campaign.roster_sha256})"
        )
    return lines


def close_markdown(summary: Mapping[str, object], campaign: Campaign) -> str:
    """The close's summary for people."""
    closed = summary["closed"]
    assert isinstance(closed, Mapping)
    decisions = summary["decisions"]
    assert isinstance(decisions, Mapping)
    lines = [f"# Access review {campaign.id}: decisions", "", *_facts(campaign)]
    lines += [
        f"- Closed: {_when(closed['closed_at'])} by {md_cell(closed['closed_by'])}; "
        f"filled workbook SHA-256 {closed['workbook_sha256']}",
        "",
        "## Population and completeness",
        "",
        str(summary["completeness"]),
        "",
        *_table(
            ["Kind", "Items"],
            [(_shown("kind", k), n) for k, n in _mapping(summary["population"]).items()],
        ),
        "",
        "## Decisions",
        "",
        *_table(["Decision", "Items"], list(decisions.items())),
        "",
        f"Decided after the due date: {summary['decided_after_due_date']}.",
    ]
    if closed["allowed_undecided"]:
        lines += [
            "",
            f"Closed with --allow-undecided: {decisions.get('undecided', 0)} item(s) were "
            "left undecided (listed below).",
        ]
    lines += ["", "## Reviewers", ""]
    lines += _table(
        ["Reviewer", "Decisions", "Of them as the suggested reviewer"],
        [
            (r["reviewer"], r["decisions"], r["as_suggested"])
            for r in _records(summary["reviewers"])
        ],
    )
    columns = [
        "Item",
        "Kind",
        "Subject",
        "Project",
        "Access",
        "Decision",
        "New role",
        "Reviewer",
        "Date",
        "Justification",
    ]
    keys = [
        "item_id",
        "kind",
        "subject",
        "project",
        "access",
        "decision",
        "new_role",
        "reviewer",
        "decided_on",
        "justification",
    ]
    for title, key in (("Requested changes", "requested_changes"), ("Undecided", "undecided")):
        rows = [[_shown(k, r[k]) for k in keys] for r in _records(summary[key])]
        lines += ["", f"## {title}", "", *_table(columns, rows)]
    return "\n".join(lines) + "\n"


def verification_markdown(summary: Mapping[str, object], campaign: Campaign) -> str:
    """The verification for people: what is done, what is outstanding."""
    counts = _mapping(summary["counts"])
    lines = [
        f"# Access review {campaign.id}: verification",
        "",
        *_facts(campaign),
        f"- Verified: {_when(summary['verified_at'])}",
        "",
        f"Done: {counts['done']}; outstanding: {counts['outstanding']}; unknown (not provable "
        f"from what the snapshots read): {counts['unknown']}."
        + (" The campaign is past its due date." if summary["past_due"] else ""),
        "",
    ]
    columns = [
        "Item",
        "Kind",
        "Subject",
        "Project",
        "Decision",
        "New role",
        "Status",
        "First seen done",
        "Detail",
    ]
    rows = [
        [
            r["item_id"], _shown("kind", r["kind"]), _shown("subject", r["subject"]),
            _shown("project", r["project"]), r["decision"], r["new_role"],
            r["status"],
            "" if r["first_seen_done_snapshot"] is None
            else f"snapshot {r['first_seen_done_snapshot']} ({_when(r['first_seen_done_at'])})",
            r["detail"],
        ]
        for r in _records(summary["items"])
    ]  # fmt: skip
    return "\n".join([*lines, *_table(columns, rows)]) + "\n"


def _shown(key: str, value: object) -> object:
    """A summary's value as the markdown shows it: a kind in words, a subject or project
    by name (an org-wide item's project as "(organization)")."""
    if key == "kind":
        return KIND_WORDS.get(str(value), value)
    if key in ("subject", "project"):
        return "(organization)" if value is None else _mapping(value)["name"]
    return value


def _when(value: object) -> str:
    """A stored ISO time as people read it."""
    return f"{datetime.fromisoformat(str(value)):%Y-%m-%d %H:%M} UTC"


def _mapping(value: object) -> Mapping[str, object]:
    assert isinstance(value, Mapping)
    return value


def _records(value: object) -> list[Mapping[str, object]]:
    assert isinstance(value, list)
    return value


# -- files --------------------------------------------------------------------------------


def json_document(data: object) -> str:
    """Indented json, the invisible characters JSON leaves raw (DEL, C1, bidi) written as
    escapes: the same document to a parser, inert on a terminal."""
    return json_text(json.dumps(data, indent=2, ensure_ascii=False, default=str)) + "\n"


def manifest_texts(campaign: Campaign, files: Sequence[Mapping[str, object]]) -> dict[str, str]:
    """The manifest (every file of the pack with its SHA-256, the step that wrote it and
    when) and ``SHA256SUMS``, by file name: rewritten as the pack grows."""
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "campaign_id": campaign.id,
        "snapshot_id": campaign.snapshot_id,
        "tool_version": campaign.tool_version,
        "catalog_version": campaign.catalog_version,
        "catalog_sha256": campaign.catalog_sha256,
        "files": [dict(f) for f in files],
    }
    sums = "".join(f"{f['sha256']}  {f['name']}\n" for f in files)
    return {MANIFEST: json_document(manifest), SUMS: sums}
