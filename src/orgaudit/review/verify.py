"""Verifying a closed campaign's removals and changes against later snapshots.

Each snapshot taken after the campaign's is asked, in order, whether it shows each
removal or change done: the binding gone (and, for a change, the new role held there),
the key deleted. Absence proves a removal only where the source that would list the item
was read in full; otherwise the answer is unknown, never done. An item is done once the
latest snapshot shows it done, and "first seen done" is the start of that run, so access
that came back is outstanding again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from orgaudit.model.bindings import raw_bindings
from orgaudit.review.campaign import ACTING, Verified
from orgaudit.store.snapshot import Snapshot
from orgaudit.vocabulary import Decision

# The sources that list the roles held at each level (collect.sources): a binding
# missing from a snapshot is gone only where every one was read in full.
_ORG_SOURCES = ("users", "user_org_roles", "group_org_roles", "group_users")
_PROJECT_SOURCES = (
    "project_users", "project_user_roles", "project_groups", "project_group_roles", "group_users",
    "project_service_accounts",
)  # fmt: skip
# The table listing each kind of key; its source (collect.sources) has the same name.
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
    asked: str  # what the decision asked for, in words
    status: Verified
    snapshot_id: int | None  # the latest snapshot asked
    first_done_snapshot: int | None
    first_done_at: pd.Timestamp | None
    detail: str


def asked(item: Mapping[str, object], decision: Mapping[str, object]) -> str:
    """What the decision asked for, in words: "remove API key bob-laptop (Payments)"."""
    where = str(item["project"])
    what = f"{item['kind']} {item['subject']} ({where})"
    if decision["decision"] == Decision.CHANGE.value:
        return f"change {what} from {item['role_name']} to {decision['new_role']}"
    return f"{decision['decision']} {what}"


@dataclass(frozen=True)
class _Asked:
    """One snapshot's answer for one item: which snapshot, when, and what it showed."""

    snapshot_id: int
    as_of: pd.Timestamp
    seen: Seen


def verify_items(
    items: Sequence[Mapping[str, object]],
    decisions: Mapping[str, Mapping[str, object]],
    later: Iterable[Snapshot],
) -> tuple[ItemVerification, ...]:
    """Each removal and change of ``decisions`` (by item id) against the ``later``
    snapshots, oldest first (one at a time: only their answers are kept)."""
    acting = [
        item for item in items if decisions.get(str(item["item_id"]), {}).get("decision") in ACTING
    ]
    history: dict[str, list[_Asked]] = {str(item["item_id"]): [] for item in acting}
    for snapshot in later:
        bindings = raw_bindings(snapshot)
        when = pd.Timestamp(snapshot.as_of)
        for item in acting:
            seen = _seen(item, decisions[str(item["item_id"])], snapshot, bindings)
            history[str(item["item_id"])].append(_Asked(snapshot.id, when, seen))
    return tuple(
        _verdict(
            str(item["item_id"]),
            asked(item, decisions[str(item["item_id"])]),
            history[str(item["item_id"])],
        )
        for item in acting
    )


def _verdict(item_id: str, what: str, answers: list[_Asked]) -> ItemVerification:
    if not answers:
        return ItemVerification(
            item_id,
            what,
            Verified.OUTSTANDING,
            None,
            None,
            None,
            "no snapshot since the campaign's: run `orgaudit pull`, then verify again",
        )
    latest = answers[-1]
    first_done: _Asked | None = None
    for answer in reversed(answers):  # the start of the latest run of "done"
        if answer.seen.status is not Verified.DONE:
            break
        first_done = answer
    return ItemVerification(
        item_id,
        what,
        latest.seen.status,
        latest.snapshot_id,
        None if first_done is None else first_done.snapshot_id,
        None if first_done is None else first_done.as_of,
        latest.seen.detail,
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
    where = "the organization" if item["scope"] == "organization" else str(item["project"])
    unlisted = _project_unlisted(item, snapshot)
    if unlisted:
        return Seen(Verified.UNKNOWN, unlisted)
    held = bindings[
        (bindings["principal_id"] == item["subject_id"])
        & (bindings["scope"] == item["scope"])
        & (bindings["project_id"].fillna("") == (item["project_id"] or ""))
    ]
    # The role is still held if the principal holds it by any route (directly, through
    # another group), under its id where it has one (a renamed role is the same role).
    same = held["role_name"] == item["role_name"]
    if item["role_id"] is not None:
        same |= held["role_id"] == item["role_id"]
    if same.any():
        how = ", ".join(sorted(set(held.loc[same, "kind"].astype(str))))
        return Seen(Verified.OUTSTANDING, f"still holds {item['role_name']} in {where} ({how})")
    # Gone from every list that could hold it: proof only where each was read in full.
    scope_sources = _ORG_SOURCES if item["scope"] == "organization" else _PROJECT_SOURCES
    unread = _unread(snapshot, scope_sources)
    if unread:
        return Seen(Verified.UNKNOWN, f"not listed, but {unread} not read in full")
    if decision["decision"] == Decision.REMOVE.value:
        return Seen(Verified.DONE, f"{item['role_name']} in {where} is gone")
    new_role = str(decision["new_role"])
    if (held["role_name"].astype(str).str.casefold() == new_role.casefold()).any():
        return Seen(Verified.DONE, f"holds {new_role} in {where} instead of {item['role_name']}")
    return Seen(
        Verified.OUTSTANDING,
        f"{item['role_name']} is gone from {where}, but {new_role} is not held",
    )


def _project_unlisted(
    item: Mapping[str, object], snapshot: Snapshot, *, members: bool = True
) -> str:
    """Why the snapshot cannot show what the item's project holds, or nothing: the
    projects not read in full, the project not among them (another org's snapshot, or a
    gap), an archived project (the API lists no members of one; ``members``), a gap in
    the project's lists."""
    project_id = item["project_id"]
    if project_id is None:
        return ""
    unread = _unread(snapshot, ("projects",))
    if unread:
        return f"{unread} not read in full"
    projects = snapshot["projects"]
    status = projects.loc[projects["id"] == project_id, "status"]
    if not len(status):
        return f"{item['project']} ({project_id}) is not among this snapshot's projects"
    if members and str(status.iloc[0]) == "archived":
        return f"{item['project']} is archived: the API lists no members of an archived project"
    gaps = snapshot.gaps
    here = gaps[(gaps["project_id"] == project_id) & (gaps["status"] != "derived")]
    if len(here):
        return f"{item['project']}'s lists were not all read: {here['reason'].iloc[0]}"
    return ""


def _key_seen(item: Mapping[str, object], snapshot: Snapshot) -> Seen:
    kind = str(item["kind"])
    listed = snapshot[_KEY_TABLES[kind]]
    if (listed["id"] == item["subject_id"]).any():
        return Seen(Verified.OUTSTANDING, f"the {kind} is still listed")
    unread = _unread(snapshot, (_KEY_TABLES[kind],))
    why = (
        f"{unread} not read in full" if unread else _project_unlisted(item, snapshot, members=False)
    )
    if why:
        return Seen(Verified.UNKNOWN, f"not listed, but {why}")
    return Seen(Verified.DONE, f"the {kind} is deleted")


def _unread(snapshot: Snapshot, sources: tuple[str, ...]) -> str:
    return ", ".join(snapshot.incomplete_sources(sources))
