"""Verifying a closed campaign's removals and changes against later snapshots.

Each snapshot taken after the campaign's is asked, in order, whether it shows each
removal or change done: the binding gone (and, for a change, the new role held there),
the key deleted. Absence proves a removal only where the source that would list the item
was read in full; otherwise the answer is unknown, never done. An item is done once the
latest snapshot shows it done, and "first seen done" is the start of that run, so access
that came back is outstanding again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from orgaudit.model.bindings import raw_bindings
from orgaudit.review.campaign import Verified
from orgaudit.store.snapshot import Snapshot
from orgaudit.vocabulary import Decision

# The sources that list each way a role is held (collect.sources): a binding missing
# from a snapshot is gone only where these were read in full.
_SOURCES_BY_KIND = {
    "org role": ("users",),
    "org RBAC role": ("users", "user_org_roles"),
    "org group role": ("users", "group_org_roles", "group_users"),
    "project role": ("project_users",),
    "project RBAC role": ("project_users", "project_user_roles"),
    "project group role": ("project_groups", "project_group_roles", "group_users"),
    "service account role": ("project_service_accounts",),
}
_ORG_SOURCES = ("users", "user_org_roles", "group_org_roles", "group_users")
_PROJECT_SOURCES = (
    "project_users", "project_user_roles", "project_groups", "project_group_roles", "group_users",
    "project_service_accounts",
)  # fmt: skip
_KEY_SOURCES = {"API key": ("project_api_keys",), "admin key": ("admin_api_keys",)}
_KEY_TABLES = {"API key": "project_api_keys", "admin key": "admin_api_keys"}


@dataclass(frozen=True)
class Seen:
    """One item as one snapshot shows it."""

    status: Verified
    detail: str


@dataclass(frozen=True)
class ItemVerification:
    """What the snapshots since the campaign show of one removal or change."""

    item_id: str
    status: Verified
    snapshot_id: int | None  # the latest snapshot asked
    first_done_snapshot: int | None
    first_done_at: pd.Timestamp | None
    detail: str


def verify_items(
    items: Sequence[Mapping[str, object]],
    decisions: Mapping[str, Mapping[str, object]],
    later: Sequence[Snapshot],
) -> tuple[ItemVerification, ...]:
    """Each removal and change of ``decisions`` (by item id) against the ``later``
    snapshots, oldest first."""
    acting = [
        item
        for item in items
        if decisions.get(str(item["item_id"]), {}).get("decision")
        in (Decision.REMOVE.value, Decision.CHANGE.value)
    ]
    history: dict[str, list[tuple[Snapshot, Seen]]] = {str(i["item_id"]): [] for i in acting}
    for snapshot in later:
        bindings = raw_bindings(snapshot)
        for item in acting:
            decision = decisions[str(item["item_id"])]
            seen = _seen(item, decision, snapshot, bindings)
            history[str(item["item_id"])].append((snapshot, seen))
    return tuple(_verdict(str(item["item_id"]), history[str(item["item_id"])]) for item in acting)


def _verdict(item_id: str, seen: list[tuple[Snapshot, Seen]]) -> ItemVerification:
    if not seen:
        return ItemVerification(
            item_id,
            Verified.OUTSTANDING,
            None,
            None,
            None,
            "no snapshot since the campaign's: run `orgaudit pull`, then verify again",
        )
    latest_snapshot, latest = seen[-1]
    first_done: Snapshot | None = None
    if latest.status is Verified.DONE:
        first_done = latest_snapshot
        for snapshot, state in reversed(seen):
            if state.status is not Verified.DONE:
                break
            first_done = snapshot
    return ItemVerification(
        item_id,
        latest.status,
        latest_snapshot.id,
        None if first_done is None else first_done.id,
        None if first_done is None else pd.Timestamp(first_done.as_of),
        latest.detail,
    )


def _seen(
    item: Mapping[str, object],
    decision: Mapping[str, object],
    snapshot: Snapshot,
    bindings: pd.DataFrame,
) -> Seen:
    kind = str(item["kind"])
    if kind in _KEY_TABLES:
        return _key_seen(item, snapshot)
    held = bindings[
        (bindings["principal_id"] == item["subject_id"])
        & (bindings["scope"] == item["scope"])
        & (bindings["project_id"].fillna("") == (item["project_id"] or ""))
    ]
    same = held[
        (held["role_name"] == item["role_name"])
        & (held["via_group_id"].fillna("") == (item["via_group_id"] or ""))
    ]
    where = "the organization" if item["scope"] == "organization" else str(item["project"])
    if not same.empty:
        return Seen(Verified.OUTSTANDING, f"still holds {item['role_name']} in {where}")
    unread = _unread(snapshot, _SOURCES_BY_KIND.get(_binding_kind(item), _PROJECT_SOURCES))
    if decision["decision"] == Decision.REMOVE.value:
        if unread:
            return Seen(Verified.UNKNOWN, f"not listed, but {unread} not read in full")
        return Seen(Verified.DONE, f"{item['role_name']} in {where} is gone")
    new_role = str(decision["new_role"])
    if (held["role_name"].astype(str).str.casefold() == new_role.casefold()).any():
        if unread:
            return Seen(Verified.UNKNOWN, f"holds {new_role}; {unread} not read in full")
        return Seen(Verified.DONE, f"holds {new_role} in {where} instead of {item['role_name']}")
    scope_sources = _ORG_SOURCES if item["scope"] == "organization" else _PROJECT_SOURCES
    unread = _unread(snapshot, scope_sources)
    if unread:
        return Seen(Verified.UNKNOWN, f"{new_role} not listed, but {unread} not read in full")
    return Seen(
        Verified.OUTSTANDING,
        f"{item['role_name']} is gone from {where}, but {new_role} is not held",
    )


def _binding_kind(item: Mapping[str, object]) -> str:
    """How the item's role was held, from the words of its How held column."""
    held = str(item["how_held"])
    return next((kind for kind in _SOURCES_BY_KIND if held.startswith(kind)), "")


def _key_seen(item: Mapping[str, object], snapshot: Snapshot) -> Seen:
    kind = str(item["kind"])
    listed = snapshot[_KEY_TABLES[kind]]
    if (listed["id"] == item["subject_id"]).any():
        return Seen(Verified.OUTSTANDING, f"the {kind} is still listed")
    unread = _unread(snapshot, _KEY_SOURCES[kind])
    if unread:
        return Seen(Verified.UNKNOWN, f"not listed, but {unread} not read in full")
    return Seen(Verified.DONE, f"the {kind} is deleted")


def _unread(snapshot: Snapshot, sources: tuple[str, ...]) -> str:
    return ", ".join(snapshot.incomplete_sources(sources))
