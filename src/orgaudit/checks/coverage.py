"""The checks on the pull itself: sources not read, and values it did not recognize."""

from __future__ import annotations

import pandas as pd

from orgaudit.access import BINDING_SOURCES
from orgaudit.errors import ConfigError
from orgaudit.findings import AuditContext

_EXAMPLES = 5  # subjects named in one finding; the count says how many there are


def source_unavailable(context: AuditContext) -> pd.DataFrame:
    """One finding per source not read completely, naming the checks it left unknown."""
    from orgaudit.checks import ACCESS_MODEL_CHECKS, CHECKS  # the registry names this too

    coverage = context.analysis.snapshot.coverage
    degraded = coverage[coverage["status"] != "complete"]

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
    value the pull could not store as typed (the snapshot's anomalies), grouped by field,
    value and problem so a thousand users with one new role make one finding."""
    snapshot = context.analysis.snapshot
    parts = []
    for known in context.analysis.catalog.known_values:
        table = snapshot.tables.get(known.table)
        if table is None or known.column not in table.columns:
            raise ConfigError(
                f"the catalog's known_values names {known.field}, which the snapshot has no "
                "column for"
            )
        values = table[known.column]
        odd = table[~values.isin(list(known.values))]
        if odd.empty:
            continue
        ids = odd[_id_column(known.table)].astype("string").fillna("(no id)")
        shown = odd[known.column].astype("string")
        parts.append(
            pd.DataFrame(
                {
                    "field": known.field,
                    "value": shown.map(repr, na_action="ignore").fillna("missing"),
                    "problem": "is not a value the catalog knows ("
                    + ", ".join(sorted(known.values))
                    + "); add it to the catalog's known_values once its meaning is known",
                    "subject": ids,
                }
            )
        )
    anomalies = snapshot.anomalies
    if not anomalies.empty:
        field = anomalies["table_name"] + ("." + anomalies["column_name"]).fillna("")
        parts.append(
            pd.DataFrame(
                {
                    "field": field,
                    "value": anomalies["value"].astype("string").map(repr, na_action="ignore"),
                    "problem": anomalies["problem"],
                    "subject": anomalies["subject_id"].astype("string").fillna("(no id)"),
                }
            )
        )
    if not parts:
        return pd.DataFrame()
    odd_values = pd.concat(parts, ignore_index=True)
    odd_values["value"] = odd_values["value"].fillna("")
    grouped = (
        odd_values.groupby(["field", "value", "problem"], sort=True, dropna=False)["subject"]
        .agg(count="size", examples=lambda s: ", ".join(s.head(_EXAMPLES)))
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


def _id_column(table: str) -> str:
    return {"project_users": "user_id"}.get(table, "id")
