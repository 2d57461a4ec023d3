"""What a diff adds from the audit log and the Usage and Costs APIs: who made each
change, and keys whose spend moved beyond a threshold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from orgaudit.checks.changes import Change, changes_from, compare
from orgaudit.model.analysis import Analysis
from orgaudit.model.spend import SPEND_SOURCES, with_spend


@dataclass(frozen=True)
class SpendChange:
    """A key's spend changed enough to report: by at least ``percent`` of the earlier
    spend and at least ``at_least`` in money (thresholds spend_change_percent and
    spend_change_min of orgaudit.toml)."""

    percent: int = 50
    at_least: int = 10


DEFAULT_SPEND_CHANGE = SpendChange()


# The audit-log events that make each section's changes, matched on the change's subject
# id and place: its project, or, for a change without one, no project at all. (An invite's
# acceptance names the invite, not the user, so it cannot say who added a user.)
_ACTOR_EVENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "users added": ("audit_access_events", ("user.added",)),
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


class ActorIndex:
    """The newer snapshot's events since the older one, indexed once by (table,
    subject) so each change's actor is a lookup, not a scan of the log."""

    def __init__(self, new: Analysis, since: datetime) -> None:
        self._by_subject: dict[tuple[str, str], list[tuple[object, str, str, str, str]]] = {}
        for table in ("audit_access_events", "audit_key_events"):
            events = new.snapshot[table]
            events = events[events["effective_at"] > since]
            if table == "audit_key_events":
                subjects, places = events["key_id"], events["project_id"]
            else:
                subjects = events["principal_id"].fillna(events["subject_id"])
                # A role assignment's resource is where it applies; the event's project
                # may be the default project of an admin key's action (the OpenAPI
                # document's AuditLog).
                places = events["resource_id"].where(
                    events["resource_type"].fillna("").str.contains("project"),
                    events["project_id"].where(events["resource_type"].isna()),
                )
            who = events["actor_email"].fillna(events["actor_id"])
            rows = zip(
                subjects, events["effective_at"], events["id"], events["type"],
                places.fillna(""), who, strict=True,
            )  # fmt: skip
            for subject, at, event_id, kind, place, actor in rows:
                if isinstance(subject, str) and isinstance(actor, str):
                    entry = (at, str(event_id), str(kind), str(place), actor)
                    self._by_subject.setdefault((table, subject), []).append(entry)

    def of(self, change: Change) -> str:
        """Who made ``change``: the newest matching event's actor, "" where none is."""
        table, types = _ACTOR_EVENTS.get(change.section, ("", ()))
        if not types or not change.subject_id:
            return ""
        candidates = [
            entry
            for entry in self._by_subject.get((table, change.subject_id), ())
            if entry[2] in types and (table == "audit_key_events" or entry[3] == change.project_id)
        ]
        if not candidates:
            return ""
        return max(candidates, key=lambda entry: (entry[0], entry[1]))[4]


def spend_changes(old: Analysis, new: Analysis, threshold: SpendChange) -> list[Change]:
    """Keys whose spend over the usage window changed beyond the threshold. Both
    snapshots must have read the Costs list in full over windows of the same length:
    otherwise a change would be the reading's, not the spend's."""
    windows = (old.usage_window, new.usage_window)
    if windows[0] is None or windows[1] is None or windows[0].days != windows[1].days:
        return []
    if any(a.snapshot.incomplete_sources(SPEND_SOURCES) for a in (old, new)):
        return []

    def table(analysis: Analysis) -> pd.DataFrame:
        keys = analysis.keys[["id", "name", "project_id"]]
        spent = with_spend(keys, analysis.key_spend)[
            ["id", "name", "project_id", "cost", "currency"]
        ]
        # A missing cost: several currencies, never added up, so not compared either.
        return spent.rename(columns={"id": "api_key_id"})

    _, _, both = compare(table(old), table(new), ["api_key_id"])
    both = both[both["cost_old"].notna() & both["cost_new"].notna()]
    before, after = both["cost_old"], both["cost_new"]
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
