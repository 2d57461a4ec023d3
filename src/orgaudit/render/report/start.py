"""The answer the report opens with: who cannot create API keys where, why, and the fix.

One row per (user, project) that matters: members of a project (a role there, directly or
through a group) who cannot create keys in it, those the snapshot cannot tell about, then
users in no project at all. Each member's row is ``orgaudit explain user`` in words: the
bindings that decided it and the first fixes, so the sheet and the command never differ.
Users who are simply not members of a project are left out: that is expected, not a
problem (the access matrix shows them).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from orgaudit.checks.findings import Finding
from orgaudit.collect.sources import source_label
from orgaudit.explain import UserVerdict, explain_pairs
from orgaudit.model.access import members_without_keys
from orgaudit.model.analysis import Analysis
from orgaudit.model.bindings import USER
from orgaudit.vocabulary import Verdict

# Each member's row is one explanation (about 10 ms); past this many rows the rest are
# counted, not explained (the Findings and Access review sheets list every one).
START_ROW_LIMIT = 500
NO_PROJECT_CHECK = "user-no-project"
CAN_THEY = {Verdict.DENIED: "No", Verdict.UNKNOWN: "Cannot tell"}
START_COLUMNS = [
    "User",
    "Project",
    "Their roles there",
    "Can they?",
    "Why",
    "How to fix",
    "Evidence",
]


@dataclass(frozen=True)
class KeyAccessAnswer:
    """The first sheet's table, and what it counts."""

    rows: pd.DataFrame  # START_COLUMNS
    blocked_members: int  # members who cannot create keys in their project
    cannot_tell: int  # members the snapshot cannot decide about
    in_no_project: int
    left_out: int  # member rows past START_ROW_LIMIT, counted but not explained

    @property
    def headline(self) -> str:
        """One sentence: the counts the table holds."""
        parts = [
            f"{self.blocked_members} project member(s) cannot create API keys in their project",
            f"{self.cannot_tell} cannot be told about (a source was not read, or a role is "
            "unknown to the catalog)",
            f"{self.in_no_project} user(s) are in no project",
        ]
        text = "; ".join(parts) + "."
        if self.left_out:
            text += (
                f" The first {START_ROW_LIMIT} members are explained below; the other "
                f"{self.left_out} are in the Findings and Access review sheets."
            )
        return text


def key_access_answer(analysis: Analysis, findings: tuple[Finding, ...]) -> KeyAccessAnswer:
    """Who cannot create keys where, and why: blocked members first, then those the
    snapshot cannot tell about, then users in no project."""
    members = _members_without_keys(analysis)
    explained = members.head(START_ROW_LIMIT)
    pairs = list(zip(explained["principal_id"], explained["project_id"], strict=True))
    verdicts = explain_pairs(
        analysis.snapshot, analysis.model, analysis.catalog, pairs, analysis.binding_grants
    )
    member_rows = [_member_row(verdict) for verdict in verdicts]
    lonely = [f for f in findings if f.check_id == NO_PROJECT_CHECK and f.subject_type == USER]
    lonely_rows = [
        (f.subject_name, "(no project)", "", CAN_THEY[Verdict.DENIED], f.message, f.remediation,
         f.evidence)
        for f in sorted(lonely, key=lambda f: f.subject_name.casefold())
    ]  # fmt: skip
    rows = pd.DataFrame([*member_rows, *lonely_rows], columns=START_COLUMNS)
    denied = int((members["verdict"] == Verdict.DENIED).sum())
    return KeyAccessAnswer(
        rows=rows,
        blocked_members=denied,
        cannot_tell=len(members) - denied,
        in_no_project=len(lonely),
        left_out=len(members) - len(explained),
    )


def _members_without_keys(analysis: Analysis) -> pd.DataFrame:
    """(user, project) rows where the user holds a role in an active project and the
    verdict is not "allowed": denied first, then unknown; by user, then project."""
    members = members_without_keys(analysis.model)[["principal_id", "project_id", "verdict"]]
    named = members.merge(
        analysis.user_names, on="principal_id", how="left", validate="many_to_one"
    ).merge(analysis.projects, on="project_id", how="left", validate="many_to_one")
    order = named.assign(
        _denied=named["verdict"] != Verdict.DENIED,
        _user=named["name"].astype(str).str.casefold(),
        _project=named["project_name"].fillna(named["project_id"]).astype(str).str.casefold(),
    )
    return order.sort_values(["_denied", "_user", "_project"], kind="stable").reset_index(drop=True)


def _member_row(verdict: UserVerdict) -> tuple[str, ...]:
    # Each fix is a way on its own; explain's list words the later ones "or ...".
    fixes = list(dict.fromkeys(fix.action.removeprefix("or ") for fix in verdict.fixes))
    evidence = verdict.fixes[0].evidence if verdict.fixes else ""
    return (
        verdict.user.label,
        verdict.project.label,
        roles_there(verdict),
        CAN_THEY[verdict.decision],
        why_in_words(verdict),
        "; or ".join(fixes[:2]),
        evidence,
    )


def roles_there(verdict: UserVerdict) -> str:
    """The roles the user holds in the project (directly or through a group)."""
    held = [
        b.role + (f" (via {b.via_group})" if b.via_group else "")
        for b in verdict.bindings
        if b.scope == "project" and b.source != "project status"
    ]
    return ", ".join(dict.fromkeys(held))


def why_in_words(verdict: UserVerdict) -> str:
    """The bindings that decided a verdict, each with what it grants, in one sentence."""
    if verdict.decision == Verdict.UNKNOWN:
        missing = ", ".join(source_label(s) for s in verdict.missing_sources)
        reason = (
            f"{missing} could not be read, and could hold a role that allows it"
            if missing
            else "a role they hold is unknown to the permission catalog"
        )
    else:
        deciding = [
            f"{b.role} ({b.source}{f' via {b.via_group}' if b.via_group else ''}): {b.note}"
            for b in verdict.bindings
            if b.deciding
        ]
        reason = "; ".join(deciding) or "no role they hold grants it"
    notes = [
        f"contested: under the other reading of rule {note.rule} the answer is "
        f"{note.decision_if_other}"
        for note in verdict.contested
    ]
    return "; ".join([reason, *notes])
