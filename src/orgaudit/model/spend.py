"""What each key and project spent over the usage window, from the Usage and Costs APIs.

Costs are the money (the Costs endpoint "will reconcile back to your billing invoice",
says the API reference, https://platform.openai.com/docs/api-reference/usage); usage is
the requests. Both
come grouped by key where the API allows (``orgaudit.collect.sources``), so a key's
spend is a sum over one table, never two groupings added together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from orgaudit.collect.sources import COSTS, USAGE_SOURCES
from orgaudit.store.snapshot import Snapshot

SPEND_SOURCES = (COSTS.name,)
USAGE_SOURCE_NAMES = tuple(source.name for source in USAGE_SOURCES)


@dataclass(frozen=True)
class UsageWindow:
    """The days usage and costs were read for: ``since`` (midnight UTC) to the snapshot."""

    since: datetime
    until: datetime

    @property
    def days(self) -> int:
        """Whole days in the window (the pull's own part day not counted)."""
        return int((self.until - self.since).total_seconds()) // 86400

    def words(self) -> str:
        """The window in words: "the 30 days since 2026-11-01"."""
        return f"the {self.days} days since {self.since:%Y-%m-%d}"


def usage_window(snapshot: Snapshot) -> UsageWindow | None:
    """The snapshot's usage window; None where usage and costs were not read."""
    if snapshot.usage_since is None:
        return None
    return UsageWindow(snapshot.usage_since, snapshot.as_of)


def _currency(values: pd.Series) -> str:
    return ", ".join(sorted({str(v).upper() for v in values.dropna()})) or ""


def _in_window(frame: pd.DataFrame, window: UsageWindow | None) -> pd.DataFrame:
    """The rows whose day bucket starts within the window (a hostile or odd answer's
    buckets outside it are not the window's spend)."""
    if window is None:
        return frame.head(0)
    starts = frame["start_at"]
    return frame[starts.notna() & (starts >= window.since) & (starts < window.until)]


def key_spend(snapshot: Snapshot) -> pd.DataFrame:
    """Per key id over the window: ``cost`` (sum of its cost rows; missing where they
    come in several currencies, which are never added up), ``currency`` (upper case, the
    several joined), ``requests`` (model requests over every usage list) and
    ``active_days`` (days with a request or a cost). Keys with no row in either table
    are absent: they spent nothing."""
    window = usage_window(snapshot)
    costs = _in_window(snapshot["costs"], window)
    costs = costs[costs["api_key_id"].notna()]
    by_cost = costs.groupby("api_key_id").agg(
        cost=("amount", "sum"),
        currency=("currency", _currency),
        currencies=("currency", "nunique"),
    )
    usage = _in_window(snapshot["usage"], window)
    usage = usage[usage["api_key_id"].notna()]
    by_use = usage.groupby("api_key_id").agg(requests=("requests", "sum"))
    days = pd.concat(
        [
            costs.loc[costs["amount"].fillna(0) != 0, ["api_key_id", "start_at"]],
            usage.loc[usage["requests"].fillna(0) > 0, ["api_key_id", "start_at"]],
        ]
    ).drop_duplicates()
    by_day = days.groupby("api_key_id").size().rename("active_days")
    joined = by_cost.join(by_use, how="outer", validate="one_to_one").join(
        by_day, how="left", validate="one_to_one"
    )
    several = joined["currencies"].fillna(0) > 1
    joined = joined.assign(cost=joined["cost"].fillna(0.0).where(~several)).drop(
        columns=["currencies"]
    )
    return (
        joined.rename_axis("api_key_id")
        .reset_index()
        .assign(
            # Sums of decimal amounts gather float noise (0.5540930000000001); a millionth
            # of a unit is below any invoice line.
            cost=lambda f: f["cost"].astype(float).round(6),
            currency=lambda f: f["currency"].fillna(""),
            requests=lambda f: f["requests"].fillna(0).astype("int64"),
            active_days=lambda f: f["active_days"].fillna(0).astype("int64"),
        )
    )


def with_spend(keys: pd.DataFrame, spend: pd.DataFrame) -> pd.DataFrame:
    """``keys`` (with their ``id``; index kept) and what each spent over the window:
    ``cost`` (0 where it has no row; missing where its costs came in several
    currencies, never added up), ``currency``, ``requests``, ``active_days`` and
    ``spending`` (any cost or request)."""
    merged = keys.merge(
        spend.rename(columns={"api_key_id": "id"}),
        on="id",
        how="left",
        validate="one_to_one",
        indicator=True,
    ).set_axis(keys.index)
    cost = merged["cost"].where(merged["_merge"] == "both", 0.0)
    requests = merged["requests"].fillna(0).astype("int64")
    return merged.drop(columns=["_merge"]).assign(
        cost=cost,
        currency=merged["currency"].fillna(""),
        requests=requests,
        active_days=merged["active_days"].fillna(0).astype("int64"),
        spending=(cost.fillna(0) > 0) | cost.isna() | (requests > 0),
    )


def spent_words(cost: float, currency: str, requests: int, usage_read: bool) -> str:
    """What a key spent, in words: "412.37 USD and 9,120 requests"; the requests left
    unsaid where a usage list was not read in full."""
    counts = (
        f"{requests:,} requests" if usage_read else "requests not known (usage not read in full)"
    )
    return f"{money(cost, currency)} and {counts}"


def money(amount: float, currency: str) -> str:
    """An amount as people read it: "412.37 USD"; amounts in several currencies, which
    are never added up, as "amounts in EUR, USD"."""
    if math.isnan(amount):  # several currencies
        return f"amounts in {currency.upper()}"
    return f"{amount:,.2f} {currency.upper() or 'USD'}"
