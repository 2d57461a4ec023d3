"""What changed between two snapshots: people, roles, groups, keys and findings.

Pure functions over two analyses (and their findings); each kind of change is one outer
merge of the two snapshots' tables on a stable key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from orgaudit.checks.findings import Finding
from orgaudit.model.analysis import Analysis
from orgaudit.model.catalog import PROJECT
from orgaudit.vocabulary import FindingStatus

# Sections of a diff, in the order they are shown.
SECTIONS = (
    "users added",
    "users removed",
    "org roles changed",
    "project roles changed",
    "group membership changed",
    "role permissions changed",
    "keys created",
    "keys deleted",
    "key scopes changed",
    "keys newly used",
    "keys gone stale",
    "findings new",
    "findings resolved",
    "findings not evaluated",
    "findings still open",
)


@dataclass(frozen=True)
class Change:
    """One change: its section, what it is about, and the before and after values."""

    section: str
    subject: str
    project: str
    before: str
    after: str


@dataclass(frozen=True)
class SnapshotDiff:
    """Every change from one snapshot to another."""

    from_snapshot: int
    to_snapshot: int
    changes: tuple[Change, ...]

    def section(self, name: str) -> tuple[Change, ...]:
        """The changes of one section."""
        return tuple(c for c in self.changes if c.section == name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the two snapshot ids and the changes by section."""
        return {
            "from": self.from_snapshot,
            "to": self.to_snapshot,
            "changes": {
                name: [
                    {k: v for k, v in asdict(c).items() if k != "section"}
                    for c in self.section(name)
                ]
                for name in SECTIONS
            },
        }

    def to_frame(self) -> pd.DataFrame:
        """The changes as one table (the workbook's Changes sheet)."""
        return pd.DataFrame(
            [asdict(c) for c in self.changes],
            columns=["section", "subject", "project", "before", "after"],
        ).rename(columns=str.capitalize)


def diff_snapshots(
    old: Analysis,
    new: Analysis,
    old_findings: tuple[Finding, ...],
    new_findings: tuple[Finding, ...],
    stale_days: int,
) -> SnapshotDiff:
    """Everything that changed from ``old`` to ``new``."""
    changes = [
        *_users(old, new),
        *_project_roles(old, new),
        *_group_members(old, new),
        *_role_permissions(old, new),
        *_keys(old, new, stale_days),
        *_findings(old_findings, new_findings),
    ]
    order = {name: i for i, name in enumerate(SECTIONS)}
    changes.sort(key=lambda c: (order[c.section], c.project, c.subject))
    return SnapshotDiff(old.snapshot.id, new.snapshot.id, tuple(changes))


def _compare(
    old: pd.DataFrame, new: pd.DataFrame, keys: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Rows only in old, only in new, and in both (columns suffixed _old and _new)."""
    merged = old.merge(
        new,
        on=keys,
        how="outer",
        suffixes=("_old", "_new"),
        indicator=True,
        validate="one_to_one",
    )
    return (
        merged[merged["_merge"] == "left_only"],
        merged[merged["_merge"] == "right_only"],
        merged[merged["_merge"] == "both"],
    )


def _changes(
    section: str,
    frame: pd.DataFrame,
    subject: str,
    before: str | None = None,
    after: str | None = None,
    project: str | None = None,
) -> list[Change]:
    def text(column: str | None) -> Iterable[str]:
        if column is None:
            return [""] * len(frame)
        return ["" if pd.isna(v) else str(v) for v in frame[column]]

    return [
        Change(section, s, p, b, a)
        for s, p, b, a in zip(text(subject), text(project), text(before), text(after), strict=True)
    ]


def _user_table(analysis: Analysis) -> pd.DataFrame:
    users = analysis.snapshot["users"]
    return pd.DataFrame(
        {"id": users["id"], "who": users["email"].fillna(users["id"]), "role": users["role"]}
    )


def _users(old: Analysis, new: Analysis) -> list[Change]:
    removed, added, both = _compare(_user_table(old), _user_table(new), ["id"])
    changed = both[both["role_old"].fillna("") != both["role_new"].fillna("")]
    return [
        *_changes("users added", added, "who_new", after="role_new"),
        *_changes("users removed", removed, "who_old", before="role_old"),
        *_changes("org roles changed", changed, "who_new", "role_old", "role_new"),
    ]


def _project_role_table(analysis: Analysis) -> pd.DataFrame:
    bindings = analysis.model.bindings
    mine = bindings[bindings["scope"] == PROJECT]
    via = (" (via " + mine["via_group_name"] + ")").fillna("")
    roles = (
        mine.assign(role=mine["role_name"].astype(str) + via)
        .sort_values("role")
        .groupby(["principal_id", "project_id"])["role"]
        .agg(", ".join)
        .reset_index()
    )
    return roles.merge(_names(analysis), on="principal_id", how="left", validate="many_to_one")


def _names(analysis: Analysis) -> pd.DataFrame:
    return analysis.principal_names.rename(columns={"name": "who"})


def _project_roles(old: Analysis, new: Analysis) -> list[Change]:
    keys = ["principal_id", "project_id"]
    removed, added, both = _compare(_project_role_table(old), _project_role_table(new), keys)
    names = pd.concat([old.project_names, new.project_names])
    names = names[~names.index.duplicated(keep="last")]
    frames = []
    for frame, who in ((removed, "who_old"), (added, "who_new"), (both, "who_new")):
        part = frame if frame is not both else both[both["role_old"] != both["role_new"]]
        frames.append(
            part.assign(
                who=part[who].fillna(part["principal_id"]),
                project=part["project_id"].map(names).fillna(part["project_id"]),
                before=part["role_old"].fillna("(none)"),
                after=part["role_new"].fillna("(none)"),
            )
        )
    changed = pd.concat(frames, ignore_index=True)
    return _changes("project roles changed", changed, "who", "before", "after", "project")


def _group_members(old: Analysis, new: Analysis) -> list[Change]:
    def table(analysis: Analysis) -> pd.DataFrame:
        snapshot = analysis.snapshot
        members = snapshot["group_users"][["group_id", "user_id", "email"]]
        names = snapshot["groups"][["id", "name"]].rename(columns={"id": "group_id"})
        return members.merge(names, on="group_id", how="left", validate="many_to_one")

    removed, added, _ = _compare(table(old), table(new), ["group_id", "user_id"])
    frames = [
        removed.assign(
            who=removed["email_old"].fillna(removed["user_id"]),
            group=removed["name_old"],
            before="member",
            after="(left)",
        ),
        added.assign(
            who=added["email_new"].fillna(added["user_id"]),
            group=added["name_new"],
            before="(not a member)",
            after="member",
        ),
    ]
    changed = pd.concat(frames, ignore_index=True)
    changed = changed.assign(subject=changed["who"] + " in group " + changed["group"].fillna("?"))
    return _changes("group membership changed", changed, "subject", "before", "after")


def _role_permissions(old: Analysis, new: Analysis) -> list[Change]:
    def table(analysis: Analysis) -> pd.DataFrame:
        roles = analysis.snapshot["roles"]
        return roles[["resource_type", "project_id", "id", "name", "permissions"]].fillna(
            {"project_id": ""}
        )

    _, _, both = _compare(table(old), table(new), ["resource_type", "project_id", "id"])
    changed = both[both["permissions_old"].fillna("") != both["permissions_new"].fillna("")]
    names = new.project_names
    changed = changed.assign(project=changed["project_id"].map(names).fillna(""))
    return _changes(
        "role permissions changed",
        changed,
        "name_new",
        "permissions_old",
        "permissions_new",
        "project",
    )


def _key_table(analysis: Analysis, stale_days: int) -> pd.DataFrame:
    snapshot = analysis.snapshot
    keys = analysis.keys
    idle = (snapshot.as_of - keys["last_used_at"]).dt.days
    fresh = keys["last_used_at"].notna() & (idle <= stale_days)
    names = analysis.project_names
    return pd.DataFrame(
        {
            "id": keys["id"],
            "name": keys["name"].fillna(keys["id"]),
            "project": keys["project_id"].map(names).fillna(keys["project_id"]),
            "scopes": keys["scopes"],
            "used": keys["last_used_at"].dt.strftime("%Y-%m-%d").fillna("never"),
            "fresh": fresh,
        }
    )


def _keys(old: Analysis, new: Analysis, stale_days: int) -> list[Change]:
    deleted, created, both = _compare(
        _key_table(old, stale_days), _key_table(new, stale_days), ["id"]
    )
    rescoped = both[
        both["scopes_old"].notna()
        & both["scopes_new"].notna()
        & (both["scopes_old"] != both["scopes_new"])
    ]
    woke = both[~both["fresh_old"].astype(bool) & both["fresh_new"].astype(bool)]
    slept = both[both["fresh_old"].astype(bool) & ~both["fresh_new"].astype(bool)]
    return [
        *_changes("keys created", created, "name_new", after="scopes_new", project="project_new"),
        *_changes("keys deleted", deleted, "name_old", before="scopes_old", project="project_old"),
        *_changes(
            "key scopes changed", rescoped, "name_new", "scopes_old", "scopes_new", "project_new"
        ),
        *_changes("keys newly used", woke, "name_new", "used_old", "used_new", "project_new"),
        *_changes("keys gone stale", slept, "name_new", "used_old", "used_new", "project_new"),
    ]


def _finding_table(findings: tuple[Finding, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            (
                f.check_id,
                f.subject_id,
                f.project_id or "",
                f.subject_name,
                f.project_name or "",
                f.severity,
                f.message,
            )
            for f in findings
        ],
        columns=[
            "check_id",
            "subject_id",
            "project_id",
            "subject",
            "project",
            "severity",
            "message",
        ],
    )
    return frame.drop_duplicates(["check_id", "subject_id", "project_id"])


def _findings(old: tuple[Finding, ...], new: tuple[Finding, ...]) -> list[Change]:
    keys = ["check_id", "subject_id", "project_id"]
    resolved, opened, still = _compare(_finding_table(old), _finding_table(new), keys)
    # A check that could not run in the new snapshot resolved nothing: its old findings
    # are "not evaluated", not "resolved".
    not_run = {
        f.check_id for f in new if f.subject_type == "check" and f.status == FindingStatus.UNKNOWN
    }
    unevaluated = resolved[resolved["check_id"].isin(not_run)]
    resolved = resolved[~resolved["check_id"].isin(not_run)]

    def labelled(frame: pd.DataFrame, side: str) -> pd.DataFrame:
        return frame.assign(
            label=frame["check_id"] + ": " + frame[f"subject_{side}"],
            where=frame[f"project_{side}"],
            text=frame[f"severity_{side}"] + " " + frame[f"message_{side}"],
        )

    return [
        *_changes("findings new", labelled(opened, "new"), "label", after="text", project="where"),
        *_changes(
            "findings not evaluated",
            labelled(unevaluated, "old"),
            "label",
            before="text",
            project="where",
        ),
        *_changes(
            "findings resolved",
            labelled(resolved, "old"),
            "label",
            before="text",
            project="where",
        ),
        *_changes(
            "findings still open",
            labelled(still, "new"),
            "label",
            after="text",
            project="where",
        ),
    ]
