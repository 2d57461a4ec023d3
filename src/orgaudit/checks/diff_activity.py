"""What a diff adds from the audit log and the Usage and Costs APIs: who made each
change, and keys whose spend moved beyond a threshold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from orgaudit.checks.changes import Change, changes_from, compare
from orgaudit.model.analysis import Analysis


@dataclass(frozen=True)
class SpendChange:
    """A key's spend changed enough to report: by at least ``percent`` of the earlier
    spend and at least ``at_least`` in money (thresholds spend_change_percent and
    spend_change_min of orgaudit.toml)."""

    percent: int = 50
    at_least: int = 10


DEFAULT_SPEND_CHANGE = SpendChange()


# The audit-log events that make each section's changes, matched on the change's subject
# id (and project, where it has one).
_ACTOR_EVENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "users added": ("audit_access_events", ("user.added", "invite.accepted")),
    "users removed": ("audit_access_events", ("user.deleted",)),
    "org roles changed": ("audit_access_events", ("user.updated",)),
    "project roles changed": (
        "audit_access_events",
        (
            "user.added",
            "user.updated",
            "user.deleted",
            "service_account.created",
            "service_account.updated",
            "service_account.deleted",
            "role.assignment.created",
            "role.assignment.deleted",
        ),
    ),
    "role permissions changed": ("audit_access_events", ("role.updated",)),
    "keys created": ("audit_key_events", ("api_key.created",)),
    "keys deleted": ("audit_key_events", ("api_key.deleted",)),
    "key scopes changed": ("audit_key_events", ("api_key.updated",)),
}


def actor_of(new: Analysis, since: datetime, change: Change) -> str:
    """Who made a change: the newest matching event between the two snapshots in the
    newer one's audit log ("" where it holds none)."""
    table, types = _ACTOR_EVENTS.get(change.section, ("", ()))
    if not types or not change.subject_id:
        return ""
    events = new.snapshot[table]
    subject = "key_id" if table == "audit_key_events" else "subject_id"
    mine = events[
        events["type"].isin(types)
        & (events["effective_at"] > since)
        & (
            (events[subject] == change.subject_id)
            | (events.get("principal_id", events[subject]) == change.subject_id)
        )
    ]
    if change.project_id and table == "audit_access_events":
        place = mine["project_id"].fillna(mine["resource_id"])
        mine = mine[place == change.project_id]
    if mine.empty:
        return ""
    newest = mine.sort_values(["effective_at", "id"]).iloc[-1]
    who = newest["actor_email"] if pd.notna(newest["actor_email"]) else newest["actor_id"]
    return "" if pd.isna(who) else str(who)


def spend_changes(old: Analysis, new: Analysis, threshold: SpendChange) -> list[Change]:
    """Keys whose spend over the usage window changed beyond the threshold (both
    snapshots must have read costs)."""
    if old.usage_window is None or new.usage_window is None:
        return []

    def table(analysis: Analysis) -> pd.DataFrame:
        spend = analysis.key_spend[["api_key_id", "cost", "currency"]]
        keys = analysis.keys[["id", "name", "project_id"]].rename(columns={"id": "api_key_id"})
        return keys.merge(spend, on="api_key_id", how="left", validate="one_to_one")

    _, _, both = compare(table(old), table(new), ["api_key_id"])
    before, after = both["cost_old"].fillna(0.0), both["cost_new"].fillna(0.0)
    moved = (after - before).abs()
    changed = both[(moved >= threshold.at_least) & (moved >= before * threshold.percent / 100)]
    if changed.empty:
        return []
    names = new.project_names
    currencies = [
        str(n or o or "usd").upper()
        for n, o in zip(
            changed["currency_new"].fillna(""), changed["currency_old"].fillna(""), strict=True
        )
    ]

    def money(amounts: pd.Series) -> list[str]:
        return [f"{a:,.2f} {c}" for a, c in zip(amounts[changed.index], currencies, strict=True)]

    changed = changed.assign(
        subject=changed["name_new"].fillna(changed["api_key_id"]),
        project=changed["project_id_new"].map(names).fillna(changed["project_id_new"]),
        before=money(before),
        after=money(after),
    )
    return changes_from(
        "key spend changed", changed, "subject", "before", "after", "project",
        ids=("api_key", "api_key_id", "project_id_new"),
    )  # fmt: skip
