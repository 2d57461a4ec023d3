"""What changed between two snapshots: people, roles, groups, keys and findings.

Pure functions over two analyses (and their findings); each kind of change is one outer
merge of the two snapshots' tables on a stable key.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from orgaudit.checks.changes import (
    DIFF_SCHEMA_VERSION,
    SECTIONS,
    Change,
    SnapshotDiff,
    changes_from,
    compare,
)
from orgaudit.checks.diff_activity import (
    DEFAULT_SPEND_CHANGE,
    ActorIndex,
    SpendChange,
    spend_changes,
)
from orgaudit.checks.findings import Finding
from orgaudit.model.analysis import Analysis
from orgaudit.model.catalog import PROJECT
from orgaudit.vocabulary import FindingStatus


def diff_snapshots(
    old: Analysis,
    new: Analysis,
    old_findings: tuple[Finding, ...],
    new_findings: tuple[Finding, ...],
    stale_days: int,
    spend_change: SpendChange = DEFAULT_SPEND_CHANGE,
) -> SnapshotDiff:
    """Everything that changed from ``old`` to ``new``, each change with who made it
    where the newer snapshot's audit log names them."""
    changes = [
        *_users(old, new),
        *_project_roles(old, new),
        *_group_members(old, new),
        *_role_permissions(old, new),
        *_keys(old, new, stale_days),
        *spend_changes(old, new, spend_change),
        *_findings(old_findings, new_findings),
    ]
    actors = ActorIndex(new, old.snapshot.as_of)
    changes = [replace(c, actor=actors.of(c)) for c in changes]
    order = {name: i for i, name in enumerate(SECTIONS)}
    changes.sort(key=lambda c: (order[c.section], c.project, c.subject))
    return SnapshotDiff(old.snapshot.id, new.snapshot.id, tuple(changes))


def _user_table(analysis: Analysis) -> pd.DataFrame:
    users = analysis.snapshot["users"]
    return pd.DataFrame(
        {"id": users["id"], "who": users["email"].fillna(users["id"]), "role": users["role"]}
    )


def _users(old: Analysis, new: Analysis) -> list[Change]:
    removed, added, both = compare(_user_table(old), _user_table(new), ["id"])
    changed = both[both["role_old"].fillna("") != both["role_new"].fillna("")]
    ids = ("user", "id", None)
    return [
        *changes_from("users added", added, "who_new", after="role_new", ids=ids),
        *changes_from("users removed", removed, "who_old", before="role_old", ids=ids),
        *changes_from("org roles changed", changed, "who_new", "role_old", "role_new", ids=ids),
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
    removed, added, both = compare(_project_role_table(old), _project_role_table(new), keys)
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
    return changes_from(
        "project roles changed", changed, "who", "before", "after", "project", ids=ids
    )


def _group_members(old: Analysis, new: Analysis) -> list[Change]:
    def table(analysis: Analysis) -> pd.DataFrame:
        snapshot = analysis.snapshot
        members = snapshot["group_users"][["group_id", "user_id", "email"]]
        names = snapshot["groups"][["id", "name"]].rename(columns={"id": "group_id"})
        return members.merge(names, on="group_id", how="left", validate="many_to_one")

    removed, added, _ = compare(table(old), table(new), ["group_id", "user_id"])
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
    return changes_from("group membership changed", changed, "subject", "before", "after", ids=ids)


def _role_permissions(old: Analysis, new: Analysis) -> list[Change]:
    def table(analysis: Analysis) -> pd.DataFrame:
        roles = analysis.snapshot["roles"]
        return roles[["resource_type", "project_id", "id", "name", "permissions"]].fillna(
            {"project_id": ""}
        )

    _, _, both = compare(table(old), table(new), ["resource_type", "project_id", "id"])
    changed = both[both["permissions_old"].fillna("") != both["permissions_new"].fillna("")]
    names = new.project_names
    changed = changed.assign(project=changed["project_id"].map(names).fillna(""))
    return changes_from(
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
    deleted, created, both = compare(
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
        *changes_from(
            "keys created", created, "name_new", after="scopes_new", project="project_new",
            ids=new_ids,
        ),
        *changes_from(
            "keys deleted", deleted, "name_old", before="scopes_old", project="project_old",
            ids=("api_key", "id", "project_id_old"),
        ),
        *changes_from(
            "key scopes changed", rescoped, "name_new", "scopes_old", "scopes_new",
            "project_new", ids=new_ids,
        ),
        *changes_from(
            "keys newly used", woke, "name_new", "used_old", "used_new", "project_new",
            ids=new_ids,
        ),
        *changes_from(
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
    resolved, opened, still = compare(_finding_table(old), _finding_table(new), keys)
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
        *changes_from(
            "findings new", labelled(opened, "new"), "label", after="text", project="where",
            ids=ids, finding=finding,
        ),
        *changes_from(
            "findings not evaluated", labelled(unevaluated, "old"), "label", before="text",
            project="where", ids=ids, finding=finding,
        ),
        *changes_from(
            "findings resolved", labelled(resolved, "old"), "label", before="text",
            project="where", ids=ids, finding=finding,
        ),
        *changes_from(
            "findings still open", labelled(still, "new"), "label", after="text",
            project="where", ids=ids, finding=finding,
        ),
    ]  # fmt: skip


__all__ = [
    "DIFF_SCHEMA_VERSION",
    "SECTIONS",
    "Change",
    "SnapshotDiff",
    "SpendChange",
    "diff_snapshots",
]
