"""Checks on what keys spend: money through keys nobody answers for, money through keys
that can do anything, and keys idle for the whole usage window."""

from __future__ import annotations

import pandas as pd

from orgaudit.checks.findings import AuditContext
from orgaudit.checks.keys import days_text, key_rows, owner_label
from orgaudit.model.keys import owner_gone_reasons
from orgaudit.model.spend import USAGE_SOURCE_NAMES, spent_words, with_spend
from orgaudit.vocabulary import ScopeKind


def keys_with_spend(context: AuditContext) -> pd.DataFrame:
    """The project keys, with their projects, and what each spent over the usage window
    (:func:`orgaudit.model.spend.with_spend`)."""
    return with_spend(context.keys, context.analysis.key_spend)


def _spent(context: AuditContext, keys: pd.DataFrame) -> pd.Series:
    """What each key spent, in words (built as text whatever the rows: an empty float
    column would stay float)."""
    usage_read = not context.analysis.snapshot.incomplete_sources(USAGE_SOURCE_NAMES)
    words = [
        spent_words(cost, str(currency), int(requests), usage_read)
        for cost, currency, requests in zip(
            keys["cost"], keys["currency"], keys["requests"], strict=True
        )
    ]
    return pd.Series(words, index=keys.index, dtype=object)


def _window(context: AuditContext) -> str:
    window = context.analysis.usage_window
    return window.words() if window is not None else "the usage window"


def key_spend_owner_gone(context: AuditContext) -> pd.DataFrame:
    """Keys that spent money (or made requests) in the usage window although their owner
    has left the project or the org, or the owning service account is gone."""
    keys = keys_with_spend(context)
    reason = owner_gone_reasons(context.keys, context.analysis.snapshot)
    gone = keys.loc[reason.index]
    spending = gone[gone["spending"]]
    message = (
        "spent "
        + _spent(context, spending)
        + f" in {_window(context)}; "
        + reason[spending.index]
        + " (owned by "
        + owner_label(spending)
        + ")"
    )
    return key_rows(spending, message)


def key_unrestricted_spend(context: AuditContext) -> pd.DataFrame:
    """Keys with all permissions that spent in the usage window: live keys whose leak
    reaches everything their owner can."""
    keys = keys_with_spend(context)
    costs = keys["cost"]
    loose = keys[(keys["scope_kind"] == ScopeKind.UNRESTRICTED) & ((costs > 0) | costs.isna())]
    message = (
        "key with all permissions spent "
        + _spent(context, loose)
        + f" in {_window(context)}; owned by "
        + owner_label(loose)
    )
    return key_rows(loose, message)


def key_idle(context: AuditContext) -> pd.DataFrame:
    """Keys last used before the usage window, with no request and no cost in it.

    Keys never used, and keys unused past ``stale_days``, are key-unused's; a key whose
    ``last_used_at`` falls in the window but that has no usage row called endpoints the
    Usage API does not count (files, models), so it is not idle.
    """
    window = context.analysis.usage_window
    if window is None:
        return pd.DataFrame()
    keys = keys_with_spend(context)
    last = keys["last_used_at"]
    # Whole days, as key-unused counts them, so every key falls to one check or the other.
    not_stale = (context.as_of - last).dt.days <= context.settings.stale_days
    before_window = last.notna() & (last < window.since) & not_stale.fillna(False)
    idle = keys[before_window & ~keys["spending"]]
    message = (
        f"idle: no request and no cost in {window.words()}; last used "
        + days_text(context.as_of - idle["last_used_at"])
        + " ago"
    )
    return key_rows(idle, message)
