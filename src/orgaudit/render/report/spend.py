"""The Spend table: what each project key spent over the usage window, most first, with
its owner's standing and what its scopes allow, so the money nobody answers for and the
money through keys that can do anything stand at the top."""

from __future__ import annotations

import pandas as pd

from orgaudit.model.analysis import Analysis
from orgaudit.model.keys import owner_gone_reasons
from orgaudit.model.spend import SPEND_SOURCES, USAGE_SOURCE_NAMES, with_spend
from orgaudit.render.report.entities import RESTRICTION_WORDS, project_name_table

_NOT_READ = "not read (see Coverage)"


def _use(keys: pd.DataFrame, since: pd.Timestamp) -> pd.Series:
    """How a key was used over the window, in words."""
    never = keys["last_used_at"].isna()
    spent = (keys["cost"] > 0) | keys["cost"].isna()
    asked = keys["requests"] > 0
    before = keys["last_used_at"] < since
    words = pd.Series("used, but not on anything the Usage API counts", index=keys.index)
    words = words.where(~before.fillna(False), "idle over the window")
    words = words.where(~never, "never used")
    words = words.where(~(asked & ~spent), "requests, no cost")
    return words.where(~spent, "spending")


def spend_table(analysis: Analysis) -> pd.DataFrame:
    """One row per project key: cost, currency, requests and active days over the usage
    window, how it was used, whether its owner is still there, and its restriction;
    sorted by cost, most first. Where usage and costs were not read, says so per key."""
    snapshot = analysis.snapshot
    window = analysis.usage_window
    keys = with_spend(
        analysis.keys.merge(analysis.projects, on="project_id", how="left", validate="many_to_one"),
        analysis.key_spend,
    ).merge(project_name_table(analysis), on="project_id", how="left", validate="many_to_one")
    gone = owner_gone_reasons(keys, snapshot)
    costs_read = window is not None and not snapshot.incomplete_sources(SPEND_SOURCES)
    usage_read = window is not None and not snapshot.incomplete_sources(USAGE_SOURCE_NAMES)
    read = costs_read and usage_read
    use = _use(keys, pd.Timestamp(window.since)) if read and window else _NOT_READ
    table = pd.DataFrame(
        {
            "Project": keys["Project"],
            "Key id": keys["id"],
            "Name": keys["name"],
            "Owner": keys["owner_email"].fillna(keys["owner_name"]).fillna(keys["owner_id"]),
            "Owner standing": gone.reindex(keys.index).fillna("still there"),
            "Restriction": keys["scope_kind"].map(RESTRICTION_WORDS),
            "Cost": keys["cost"] if costs_read else None,
            "Currency": keys["currency"].replace("", None).fillna("usd").str.upper(),
            "Requests": keys["requests"] if usage_read else None,
            "Active days": keys["active_days"] if read else None,
            "Use in window": use,
            "Last used": keys["last_used_at"],
        }
    )
    return table.sort_values(
        ["Cost", "Project", "Name"], ascending=[False, True, True], kind="stable"
    )
