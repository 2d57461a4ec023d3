"""The checks on the pull itself: sources not read, and values it did not recognize."""

from __future__ import annotations

import pandas as pd

from orgaudit import store
from orgaudit.checks.findings import AuditContext
from orgaudit.collect.records import NO_USAGE_REASON, PROJECT_KEY_IN_ADMIN_LIST
from orgaudit.model.access import BINDING_SOURCES

_EXAMPLES = 5  # subjects named in one finding; the count says how many there are
_SHOWN = 80  # characters of an odd value shown in a finding


def source_unavailable(context: AuditContext) -> pd.DataFrame:
    """One finding per source not read completely, naming the checks it left unknown."""
    from orgaudit.checks import ACCESS_MODEL_CHECKS, CHECKS  # the registry names this too

    coverage = context.analysis.snapshot.coverage
    # Usage not read on purpose (--usage-days 0) is a choice, not a failure to report
    # per list; the spend checks still say they could not be evaluated.
    chosen = coverage["reason"].str.contains(NO_USAGE_REASON, regex=False)
    degraded = coverage[(coverage["status"] != "complete") & ~chosen]

    def affected(source: str) -> str:
        direct = [c.id for c in CHECKS if source in c.needs]
        through_access = list(ACCESS_MODEL_CHECKS) if source in BINDING_SOURCES else []
        return ", ".join(dict.fromkeys([*direct, *through_access])) or "none directly"

    affected_by = {source: affected(source) for source in degraded["source"]}
    return pd.DataFrame(
        {
            "subject_type": "source",
            "subject_id": degraded["source"],
            "subject_name": degraded["source"],
            "project_id": None,
            "project_name": None,
            "message": degraded["source"]
            + " is "
            + degraded["status"]
            + ": "
            + degraded["reason"]
            + "; checks affected: "
            + degraded["source"].map(affected_by),
        }
    )


def unrecognized_values(context: AuditContext) -> pd.DataFrame:
    """One finding per odd value: a coded field outside the catalog's known values, or a
    value the pull could not store as typed (the snapshot's anomalies), grouped by field
    and value so a thousand users with one new role make one finding."""
    snapshot = context.analysis.snapshot
    anomalies = snapshot.anomalies
    # Project keys the admin-key list also returns are a known quirk, left out on
    # purpose; the admin-key source's coverage counts them.
    anomalies = anomalies[anomalies["problem"] != PROJECT_KEY_IN_ADMIN_LIST]
    # What the pull had to change comes first, then what the catalog does not know.
    parts = [
        pd.DataFrame(
            {
                "field": anomalies["table_name"] + ("." + anomalies["column_name"]).fillna(""),
                "value": _quoted(anomalies["value"]).fillna(""),
                "problem": anomalies["problem"],
                "subject": anomalies["subject_id"].astype("string"),
            }
        )
    ]
    for known in context.analysis.catalog.known_values:  # columns checked at catalog load
        table = snapshot[known.table]
        odd = table[~table[known.column].isin(list(known.values))]
        parts.append(
            pd.DataFrame(
                {
                    "field": known.field,
                    "value": _quoted(odd[known.column]).fillna("missing"),
                    "problem": "is not a value the catalog knows ("
                    + ", ".join(sorted(known.values))
                    + "); add it to the catalog's known_values once its meaning is known",
                    "subject": odd[store.IDENTITY[known.table][-1]].astype("string"),
                }
            )
        )
    odd_values = pd.concat(parts, ignore_index=True).fillna({"subject": "(no id)"})
    if odd_values.empty:
        return pd.DataFrame()
    # A number in a coded text field is both stored as JSON and unknown: one finding.
    grouped = (
        odd_values.groupby(["field", "value"], sort=True)
        .agg(
            problem=("problem", lambda p: " and ".join(dict.fromkeys(p))),
            count=("subject", "nunique"),
            examples=("subject", lambda s: ", ".join(list(dict.fromkeys(s))[:_EXAMPLES])),
        )
        .reset_index()
    )
    more = (grouped["count"] - _EXAMPLES).clip(lower=0)
    tail = more.map(lambda n: f" and {n} more" if n else "")
    label = grouped["field"] + (" " + grouped["value"]).where(grouped["value"] != "", "")
    return pd.DataFrame(
        {
            "subject_type": "value",
            "subject_id": label,
            "subject_name": label,
            "project_id": None,
            "project_name": None,
            "message": label
            + " "
            + grouped["problem"]
            + " ("
            + grouped["count"].astype(str)
            + " item(s): "
            + grouped["examples"]
            + tail
            + ")",
        }
    )


def _quoted(values: pd.Series) -> pd.Series:
    """Values as quoted text, cut to a readable length (a name may be 70,000 characters)."""
    text = values.astype("string")
    cut = text.str.slice(0, _SHOWN) + text.str.len().gt(_SHOWN).map({True: "...", False: ""})
    return cut.map(repr, na_action="ignore")
