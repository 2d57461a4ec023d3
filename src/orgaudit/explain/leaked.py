"""Tracing a leaked key: which key a pasted value (or its redacted form) is, whose, where,
what it can still do, and where to revoke it.

The value is compared only with the redacted values the snapshot stores (the API never
returns a key's value); a redacted form may match several keys, and every one is listed.
The value itself is never part of the answer: it stays in :class:`~orgaudit.settings.KeyValue`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from orgaudit.explain.keys import explain_key
from orgaudit.explain.lookup import text_or
from orgaudit.explain.records import KeyVerdict
from orgaudit.model.analysis import Analysis
from orgaudit.model.spend import SPEND_SOURCES, USAGE_SOURCE_NAMES, spent_words
from orgaudit.settings import REDACTION, KeyValue
from orgaudit.store.snapshot import Snapshot
from orgaudit.vocabulary import Verdict

# Where a key is deleted: the dashboard (help center, "Where do I find my OpenAI API
# Key?": https://help.openai.com/en/articles/4936850; admin keys: the API reference's
# https://platform.openai.com/settings/organization/admin-keys), or the Admin API's
# delete operations (API reference: delete-project-api-key, admin-api-keys-delete).
PROJECTS_PAGE = "https://platform.openai.com/settings/organization/projects"
ADMIN_KEYS_PAGE = "https://platform.openai.com/settings/organization/admin-keys"
API = "https://api.openai.com/v1"
ADMIN_SPEND = "none counted: the Usage and Costs APIs count the requests of project keys"


@dataclass(frozen=True)
class LeakedKeyMatch:
    """One key the pasted value may be, and what to know about it now."""

    type: str  # "api_key" or "admin_key"
    id: str
    name: str
    redacted_value: str
    project_id: str | None
    project: str
    owner: dict[str, str]
    created_at: datetime | None
    last_used_at: datetime | None
    expires_at: datetime | None
    usable: Verdict  # whether requests with it can still pass (its reach, in short)
    reach: str
    spend: str
    revoke: tuple[str, ...]
    verdict: KeyVerdict | None = None  # a project key's: its scopes and its owner's rights


@dataclass(frozen=True)
class LeakTrace:
    """Every key of the snapshot the pasted value may be."""

    decision: Verdict  # allowed: a matching key is live; denied: none is; unknown: no match
    snapshot_id: int
    matches: tuple[LeakedKeyMatch, ...]
    summary: str
    # What kept some keys from being compared (lists not read in full, keys without a
    # redacted value); empty when every key of the snapshot was compared.
    not_compared: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: times as ISO 8601 UTC text (``Z``), as every json of orgaudit."""
        document = asdict(self)
        for match in document["matches"]:
            for field in ("created_at", "last_used_at", "expires_at"):
                moment = match[field]
                match[field] = None if moment is None else f"{moment:%Y-%m-%dT%H:%M:%SZ}"
        return document


def trace_leaked_key(analysis: Analysis, value: KeyValue) -> LeakTrace:
    """The keys whose redacted value the pasted value fits, each with its owner, place,
    last use, reach and the way to revoke it."""
    snapshot = analysis.snapshot
    keys = snapshot["project_api_keys"]
    admin = snapshot["admin_api_keys"]
    not_compared = _not_compared(snapshot, keys, admin)
    matches = [
        _project_key(analysis, row)
        for row in keys[keys["redacted_value"].map(_fits(value))].itertuples(index=False)
    ]
    fitting_admin = admin[admin["redacted_value"].map(_fits(value))]
    matches += [_admin_key(row, snapshot.as_of) for row in fitting_admin.itertuples(index=False)]
    if not matches:
        if not_compared:
            said = (
                f"no key snapshot {snapshot.id} could compare fits it, but not every key "
                f"could be compared ({not_compared}): it may be one of those"
            )
        else:
            said = (
                f"no key in snapshot {snapshot.id} has a redacted value this key fits: it may "
                "be of another organization, a user's legacy key, or newer than the snapshot "
                "(`orgaudit pull`, then trace it again)"
            )
        return LeakTrace(Verdict.UNKNOWN, snapshot.id, (), said, not_compared)
    live = [m for m in matches if m.usable is not Verdict.DENIED]
    if not live:
        decision = Verdict.DENIED
    elif any(m.usable is Verdict.ALLOWED for m in live):
        decision = Verdict.ALLOWED
    else:
        decision = Verdict.UNKNOWN
    names = ", ".join(f"{m.name} ({m.project if m.project_id else 'admin key'})" for m in matches)
    said = f"it fits {names}"
    if len(matches) > 1:
        said = f"{len(matches)} keys fit it; revoke each that may be it: {names}"
    if not_compared:
        said += f" (other keys could not be compared: {not_compared})"
    return LeakTrace(decision, snapshot.id, tuple(matches), said, not_compared)


def _not_compared(snapshot: Snapshot, keys: pd.DataFrame, admin: pd.DataFrame) -> str:
    """What kept keys from being compared: their lists not read in full, and keys whose
    redacted value is missing or not of the ``start...end`` form."""
    reasons = [
        f"{source} not read in full"
        for source in snapshot.incomplete_sources(("project_api_keys", "admin_api_keys"))
    ]
    values = pd.concat([keys["redacted_value"], admin["redacted_value"]], ignore_index=True)
    odd = int((~values.map(lambda v: isinstance(v, str) and REDACTION in v)).sum())
    if odd:
        reasons.append(f"{odd} key(s) without a redacted value of the form start{REDACTION}end")
    return "; ".join(reasons)


def _fits(value: KeyValue) -> Any:
    return lambda redacted: isinstance(redacted, str) and value.matches(redacted)


def _time(value: Any) -> datetime | None:
    if value is None or pd.isna(value):
        return None
    moment: datetime = pd.Timestamp(value).to_pydatetime()
    return moment


def _project_key(analysis: Analysis, row: Any) -> LeakedKeyMatch:
    project = text_or(analysis.project_names.get(row.project_id), str(row.project_id))
    verdict = explain_key(analysis.snapshot, analysis.model, analysis.catalog, str(row.id))
    return LeakedKeyMatch(
        type="api_key",
        id=str(row.id),
        name=text_or(row.name, str(row.id)),
        redacted_value=str(row.redacted_value),
        project_id=str(row.project_id),
        project=project,
        owner={
            "type": text_or(row.owner_type, "unknown"),
            "id": text_or(row.owner_id),
            "name": text_or(row.owner_name),
            "email": text_or(row.owner_email),
        },
        created_at=_time(row.created_at),
        last_used_at=_time(row.last_used_at),
        expires_at=_time(row.expires_at),
        usable=verdict.decision,
        reach=verdict.summary,
        spend=spend_text(analysis, str(row.id)),
        revoke=(
            f"dashboard: {PROJECTS_PAGE}, project {project}, API keys: delete {text_or(row.name)}",
            f"Admin API: DELETE {API}/organization/projects/{row.project_id}/api_keys/{row.id}",
        ),
        verdict=verdict,
    )


def spend_text(analysis: Analysis, key_id: str) -> str:
    """A project key's spend over the usage window, in words; what was not read, said."""
    window = analysis.usage_window
    if window is None:
        return "not read: the snapshot was pulled with --usage-days 0"
    unread = analysis.snapshot.incomplete_sources(SPEND_SOURCES)
    if unread:
        return f"unknown: {', '.join(unread)} not read in full (see the coverage)"
    usage_read = not analysis.snapshot.incomplete_sources(USAGE_SOURCE_NAMES)
    spend = analysis.key_spend
    row = spend[spend["api_key_id"] == key_id]
    if row.empty:
        unknown = "" if usage_read else " (its requests not known: usage not read in full)"
        return f"none in {window.words()}{unknown}"
    first = row.iloc[0]
    words = spent_words(
        float(first["cost"]), str(first["currency"]), int(first["requests"]), usage_read
    )
    return f"{words} in {window.words()} (active on {int(first['active_days'])} days)"


def _admin_key(row: Any, as_of: datetime) -> LeakedKeyMatch:
    expires_at = _time(row.expires_at)
    expired = expires_at is not None and expires_at < as_of
    return LeakedKeyMatch(
        type="admin_key",
        id=str(row.id),
        name=text_or(row.name, str(row.id)),
        redacted_value=str(row.redacted_value),
        project_id=None,
        project="(organization)",
        owner={
            "type": text_or(row.owner_type, "unknown"),
            "id": text_or(row.owner_id),
            "name": text_or(row.owner_name),
            "email": "",
        },
        created_at=_time(row.created_at),
        last_used_at=_time(row.last_used_at),
        expires_at=expires_at,
        usable=Verdict.DENIED if expired else Verdict.ALLOWED,
        reach="expired: it can no longer be used"
        if expired
        else "the Admin API: the organization's users, projects, keys and roles",
        spend=ADMIN_SPEND,
        revoke=(
            f"dashboard: {ADMIN_KEYS_PAGE}: delete {text_or(row.name)}",
            f"Admin API: DELETE {API}/organization/admin_api_keys/{row.id}",
        ),
    )
