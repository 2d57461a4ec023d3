"""The check on the pull itself: sources that could not be read."""

from __future__ import annotations

import pandas as pd

from orgaudit.access import BINDING_SOURCES
from orgaudit.findings import AuditContext


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
