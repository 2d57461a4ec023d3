"""What changed between two snapshots: people, roles, groups, keys and findings.

Pure functions over two analyses (and their findings); each kind of change is one outer
merge of the two snapshots' tables on a stable key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from orgaudit.checks.findings import Finding
from orgaudit.model.analysis import Analysis
from orgaudit.model.catalog import PROJECT
from orgaudit.vocabulary import FindingStatus

# 2: a flat list of changes, each with its kind, ids, and a finding's check and severity
# apart (1 grouped display strings by section).
DIFF_SCHEMA_VERSION = 2
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
    """One change: its section, what it is about, and the before and after values.

    ``subject`` and ``project`` are names for a person; the ids, the subject's type and,
    for a finding, its check, severity and message are kept apart for scripts.
    """

    section: str
    subject: str
    project: str
    before: str
    after: str
    subject_type: str = ""
    subject_id: str = ""
    project_id: str = ""
    check: str = ""
    severity: str = ""
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the kind, the subject and project as objects, before and after (a
        finding's message on the side it is on), and a finding's check and severity."""
        finding = bool(self.check)
        return {
            "kind": self.section,
            "subject": {"type": self.subject_type, "id": self.subject_id,
                        "name": self._subject_name},
            "project": {"type": "project", "id": self.project_id, "name": self.project}
            if self.project_id else None,
            "before": (self.message if finding else self.before) if self.before else None,
            "after": (self.message if finding else self.after) if self.after else None,
            "check": self.check or None,
            "severity": self.severity or None,
        }  # fmt: skip

    @property
    def _subject_name(self) -> str:
        """The subject's name without the check id a finding's label starts with."""
        prefix = f"{self.check}: "
        return self.subject.removeprefix(prefix) if self.check else self.subject


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
        """JSON-ready (docs/schemas/diff.schema.json): the two snapshot ids and every
        change, each with its kind, in the order the sections are shown."""
        return {
            "schema_version": DIFF_SCHEMA_VERSION,
            "from_snapshot": self.from_snapshot,
            "to_snapshot": self.to_snapshot,
            "changes": [change.to_dict() for change in self.changes],
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
    *,
    ids: tuple[str, str, str | None] = ("", "", None),
    finding: tuple[str, str, str] | None = None,
) -> list[Change]:
    """Changes from a frame's columns: the subject, before, after and project names;
    ``ids`` the subject's type (or a column of it), id column and project id column;
    ``finding`` the check, severity and message columns of a finding's change."""

    def text(column: str | None) -> list[str]:
        if column is None or column not in frame:
            return [""] * len(frame)
        return ["" if pd.isna(v) else str(v) for v in frame[column]]

    subject_type, subject_id, project_id = ids
    types = text(subject_type) if subject_type in frame else [subject_type] * len(frame)
    check, severity, message = finding if finding is not None else (None, None, None)
    columns = zip(
        text(subject), text(project), text(before), text(after), types, text(subject_id),
        text(project_id), text(check), text(severity), text(message), strict=True,
    )  # fmt: skip
    return [Change(section, *values) for values in columns]


def _user_table(analysis: Analysis) -> pd.DataFrame:
    users = analysis.snapshot["users"]
    return pd.DataFrame(
        {"id": users["id"], "who": users["email"].fillna(users["id"]), "role": users["role"]}
    )


def _users(old: Analysis, new: Analysis) -> list[Change]:
    removed, added, both = _compare(_user_table(old), _user_table(new), ["id"])
    changed = both[both["role_old"].fillna("") != both["role_new"].fillna("")]
    ids = ("user", "id", None)
    return [
        *_changes("users added", added, "who_new", after="role_new", ids=ids),
        *_changes("users removed", removed, "who_old", before="role_old", ids=ids),
        *_changes("org roles changed", changed, "who_new", "role_old", "role_new", ids=ids),
    ]


def _project_role_table(analysis: Analysis) -> pd.DataFrame:
    bindings = analysis.model.bindings
    mine = bindings[bindings["scope"] == PROJECT]
    via = (" (via " + mine["via_group_name"] + ")").fillna("")
    roles = (
        mine.assign(role=mine["role_name"].astype(str) + via)
        .sort_values("role")
        .groupby(["principal_type", "principal_id", "project_id"])["role"]
        .agg(", ".join)
        .reset_index()
    )
    return roles.merge(_names(analysis), on="principal_id", how="left", validate="many_to_one")


def _names(analysis: Analysis) -> pd.DataFrame:
    return analysis.principal_names.rename(columns={"name": "who"})


def _project_roles(old: Analysis, new: Analysis) -> list[Change]:
    keys = ["principal_type", "principal_id", "project_id"]
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
    ids = ("principal_type", "principal_id", "project_id")
    return _changes("project roles changed", changed, "who", "before", "after", "project", ids=ids)


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
    ids = ("user", "user_id", None)
    return _changes("group membership changed", changed, "subject", "before", "after", ids=ids)


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
        ids=("role", "id", "project_id"),
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
            "project_id": keys["project_id"],
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
    new_ids = ("api_key", "id", "project_id_new")
    return [
        *_changes(
            "keys created", created, "name_new", after="scopes_new", project="project_new",
            ids=new_ids,
        ),
        *_changes(
            "keys deleted", deleted, "name_old", before="scopes_old", project="project_old",
            ids=("api_key", "id", "project_id_old"),
        ),
        *_changes(
            "key scopes changed", rescoped, "name_new", "scopes_old", "scopes_new",
            "project_new", ids=new_ids,
        ),
        *_changes(
            "keys newly used", woke, "name_new", "used_old", "used_new", "project_new",
            ids=new_ids,
        ),
        *_changes(
            "keys gone stale", slept, "name_new", "used_old", "used_new", "project_new",
            ids=new_ids,
        ),
    ]  # fmt: skip


def _finding_table(findings: tuple[Finding, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            (
                f.check_id,
                f.subject_id,
                f.project_id or "",
                f.subject_type,
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
            "subject_type",
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
            kind=frame[f"subject_type_{side}"],
            severity=frame[f"severity_{side}"],
            message=frame[f"message_{side}"],
        )

    ids = ("kind", "subject_id", "project_id")
    finding = ("check_id", "severity", "message")
    return [
        *_changes(
            "findings new", labelled(opened, "new"), "label", after="text", project="where",
            ids=ids, finding=finding,
        ),
        *_changes(
            "findings not evaluated", labelled(unevaluated, "old"), "label", before="text",
            project="where", ids=ids, finding=finding,
        ),
        *_changes(
            "findings resolved", labelled(resolved, "old"), "label", before="text",
            project="where", ids=ids, finding=finding,
        ),
        *_changes(
            "findings still open", labelled(still, "new"), "label", after="text",
            project="where", ids=ids, finding=finding,
        ),
    ]  # fmt: skip
