"""Checks on admin API keys and invites."""

from __future__ import annotations

import pandas as pd

from orgaudit.checks.findings import AuditContext


def _admin_rows(keys: pd.DataFrame, message: pd.Series | str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "subject_type": "admin_key",
            "subject_id": keys["id"],
            "subject_name": keys["name"].fillna(keys["id"]),
            "project_id": None,
            "project_name": None,
            "message": message,
        }
    )


def admin_key_no_expiry(context: AuditContext) -> pd.DataFrame:
    """Admin keys that never expire."""
    keys = context.analysis.snapshot["admin_api_keys"]
    forever = keys[keys["expires_at"].isna()]
    owner = forever["owner_name"].fillna(forever["owner_id"]).fillna("unknown owner")
    return _admin_rows(forever, "admin key owned by " + owner + " has no expiry date")


def admin_key_unused(context: AuditContext) -> pd.DataFrame:
    """Admin keys never used, or unused for longer than ``stale_days``."""
    keys = context.analysis.snapshot["admin_api_keys"]
    stale = context.settings.stale_days
    idle = (context.as_of - keys["last_used_at"]).dt.days
    never = keys["last_used_at"].isna()
    flagged = keys[never | (idle > stale)]
    message = pd.Series(
        "admin key not used for " + idle[flagged.index].astype("Int64").astype(str) + " days",
        index=flagged.index,
    ).where(~never[flagged.index], "admin key never used")
    return _admin_rows(flagged, message)


def _invite_rows(invites: pd.DataFrame, state: str, when: str) -> pd.DataFrame:
    """Findings rows for invites: "invite to X as ROLE <state> <date of column when>"."""
    message = (
        "invite to "
        + invites["email"].fillna("?")
        + " as "
        + invites["role"].fillna("?")
        + f" {state} "
        + invites[when].dt.strftime("%Y-%m-%d")
    )
    return pd.DataFrame(
        {
            "subject_type": "invite",
            "subject_id": invites["id"],
            "subject_name": invites["email"].fillna(invites["id"]),
            "project_id": None,
            "project_name": None,
            "message": message,
            "escalate": invites["role"] == "owner",
        }
    )


def _expired(context: AuditContext, invites: pd.DataFrame) -> pd.Series:
    lapsed = invites["expires_at"].notna() & (invites["expires_at"] < context.as_of)
    return (invites["status"] == "expired") | ((invites["status"] == "pending") & lapsed)


def invite_pending(context: AuditContext) -> pd.DataFrame:
    """Invites sent and not yet accepted; worse when they offer the owner role."""
    invites = context.analysis.snapshot["invites"]
    pending = invites[(invites["status"] == "pending") & ~_expired(context, invites)]
    return _invite_rows(pending, "pending since", "created_at")


def invite_expired(context: AuditContext) -> pd.DataFrame:
    """Invites that expired unaccepted; worse when they offered the owner role."""
    invites = context.analysis.snapshot["invites"]
    return _invite_rows(invites[_expired(context, invites)], "expired on", "expires_at")
