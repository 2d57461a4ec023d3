"""Finding what an explanation is asked about, by id or name, in a snapshot.

Each lookup gives a typed reference, or one line naming the closest matches (exit 2);
a name several entries share is refused with the ids to use instead.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from orgaudit.errors import UsageError
from orgaudit.explain.records import ProjectRef, UserRef
from orgaudit.store.snapshot import Snapshot


def text_or(value: object, missing: str = "") -> str:
    """A field as text; ``missing`` where the API left it out (None or NA)."""
    absent = value is None or value is pd.NA or (isinstance(value, float) and value != value)
    return missing if absent else str(value)


def _time(value: object) -> datetime | None:
    """A time column's value; None where the API left it out (NaT)."""
    return value if isinstance(value, datetime) and not pd.isna(value) else None


def closest(wanted: str, choices: Iterable[object]) -> str:
    """ "; closest: a, b" naming up to three close matches, or nothing."""
    options = sorted({c for c in choices if isinstance(c, str)})
    matches = difflib.get_close_matches(wanted, options, n=3, cutoff=0.5)
    return f"; closest: {', '.join(matches)}" if matches else ""


def _only_one(match: pd.DataFrame, wanted: str, what: str) -> None:
    """A name several entries share is ambiguous: say which ids to use instead."""
    if len(match) > 1 and not (match["id"] == wanted).any():
        ids = ", ".join(sorted(match["id"].astype(str)))
        raise UsageError(f"{len(match)} {what} are named {wanted!r}; use an id: {ids}")


def _named(frame: pd.DataFrame, column: str, wanted: str) -> pd.DataFrame:
    """The rows whose id is ``wanted`` or whose ``column`` is, in any case."""
    return frame[(frame["id"] == wanted) | (frame[column].str.lower() == wanted.lower())]


def _project_names(snapshot: Snapshot, ids: Iterable[object]) -> str:
    projects = snapshot["projects"]
    names = dict(zip(projects["id"], projects["name"].fillna(projects["id"]), strict=True))
    found = sorted({str(names.get(i, i)) for i in ids})
    return ("project " if len(found) == 1 else "projects ") + ", ".join(found)


def _their_keys(snapshot: Snapshot, owner_ids: Iterable[object], user: bool = False) -> str:
    """Where to look next for an owner's keys: the command to paste, and their names."""
    keys = snapshot["project_api_keys"]
    mine = keys[keys["owner_id"].isin(list(owner_ids))]
    names = sorted(set(mine["name"].fillna(mine["id"]).astype(str)))
    if not names:
        return "they own no API keys" if user else "it owns no API keys"
    listed = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    whose = "their" if user else "its"
    return f"see `orgaudit explain key {shlex.quote(names[0])}` for {whose} keys: {listed}"


def _service_account(snapshot: Snapshot, wanted: str, not_a: str) -> str | None:
    """The sentence for a name that is a service account's, or None."""
    accounts = _named(snapshot["project_service_accounts"], "name", wanted)
    if accounts.empty:
        return None
    return (
        f"{wanted} is a service account in {_project_names(snapshot, accounts['project_id'])}, "
        f"not {not_a}; a service account never creates API keys itself (a project owner "
        f"creates them for it; rule service_accounts_create_keys): "
        f"{_their_keys(snapshot, accounts['id'])}"
    )


def _not_a_user(snapshot: Snapshot, wanted: str) -> str | None:
    """What a name that is no user's is instead: a service account's or an API key's."""
    said = _service_account(snapshot, wanted, "a user")
    if said is not None:
        return said
    keys = _named(snapshot["project_api_keys"], "name", wanted)
    if keys.empty:
        return None
    name = text_or(keys.iloc[0]["name"]) or str(keys.iloc[0]["id"])
    return (
        f"{wanted} is an API key in {_project_names(snapshot, keys['project_id'])}, not a "
        f"user: see `orgaudit explain key {shlex.quote(name)}`"
    )


def _not_a_key(snapshot: Snapshot, wanted: str) -> str | None:
    """What a name that is no key's is instead: a user's or a service account's."""
    users = _named(snapshot["users"], "email", wanted)
    if users.empty:
        return _service_account(snapshot, wanted, "an API key")
    label = text_or(users.iloc[0]["email"]) or str(users.iloc[0]["id"])
    return (
        f"{wanted} is a user, not an API key: `orgaudit explain user {shlex.quote(label)}` "
        f"says where they can create keys; {_their_keys(snapshot, users['id'], user=True)}"
    )


def find_user(snapshot: Snapshot, wanted: str) -> UserRef:
    """A user by id or e-mail (case-insensitive); a one-line error naming close matches,
    or what the name is instead (a service account, an API key)."""
    users = snapshot["users"]
    match = _named(users, "email", wanted)
    if match.empty:
        instead = _not_a_user(snapshot, wanted)
        if instead is not None:
            raise UsageError(instead)
        choices = [*users["email"].dropna(), *users["id"]]
        raise UsageError(f"no user {wanted!r} in snapshot {snapshot.id}{closest(wanted, choices)}")
    row = match.iloc[0]
    return UserRef(str(row["id"]), text_or(row["email"]), text_or(row["name"]))


def _project_ref(row: pd.Series) -> ProjectRef:
    return ProjectRef(str(row["id"]), text_or(row["name"]), text_or(row["status"]))


def find_project(snapshot: Snapshot, wanted: str) -> ProjectRef:
    """A project by id or name (case-insensitive)."""
    projects = snapshot["projects"]
    match = projects[(projects["id"] == wanted) | (projects["name"].str.lower() == wanted.lower())]
    _only_one(match, wanted, "projects")
    if match.empty:
        choices = [*projects["name"].dropna(), *projects["id"]]
        raise UsageError(
            f"no project {wanted!r} in snapshot {snapshot.id}{closest(wanted, choices)}"
        )
    return _project_ref(match.iloc[0])


def every_user(snapshot: Snapshot) -> tuple[UserRef, ...]:
    """Every user of the snapshot, in its order."""
    users = snapshot["users"]
    return tuple(
        UserRef(str(uid), text_or(email), text_or(name))
        for uid, email, name in zip(users["id"], users["email"], users["name"], strict=True)
    )


def every_project(snapshot: Snapshot) -> tuple[ProjectRef, ...]:
    """Every project of the snapshot, in its order."""
    return tuple(_project_ref(row) for _, row in snapshot["projects"].iterrows())


@dataclass(frozen=True)
class FoundKey:
    """A project API key as the snapshot holds it: the fields its verdict weighs."""

    id: str
    name: str
    project_id: str
    owner_id: str
    owner_type: str
    owner_name: str
    owner_email: str
    owner_project_access: str
    created_at: datetime | None
    expires_at: datetime | None


def find_key(snapshot: Snapshot, wanted: str) -> FoundKey:
    """A project API key by id or name; a one-line error naming close matches, or what
    the name is instead (a user, a service account)."""
    keys = snapshot["project_api_keys"]
    match = keys[(keys["id"] == wanted) | (keys["name"] == wanted)]
    _only_one(match, wanted, "API keys")
    if match.empty:
        instead = _not_a_key(snapshot, wanted)
        if instead is not None:
            raise UsageError(instead)
        choices = [*keys["id"], *keys["name"].dropna()]
        raise UsageError(
            f"no API key {wanted!r} in snapshot {snapshot.id}{closest(wanted, choices)}"
        )
    row = match.iloc[0]
    return FoundKey(
        id=str(row["id"]),
        name=text_or(row["name"]),
        project_id=text_or(row["project_id"]),
        owner_id=text_or(row["owner_id"]),
        owner_type=text_or(row["owner_type"], "unknown owner type"),
        owner_name=text_or(row["owner_name"]),
        owner_email=text_or(row["owner_email"]),
        owner_project_access=str(row["owner_project_access"]),
        created_at=_time(row["created_at"]),
        expires_at=_time(row.get("expires_at")),
    )
