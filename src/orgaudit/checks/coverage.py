"""The check on the pull itself: sources that could not be read."""

from __future__ import annotations

import pandas as pd

from orgaudit.findings import AuditContext


def source_unavailable(context: AuditContext) -> pd.DataFrame:
    """One finding per source not read completely, naming the checks it left unknown."""
    from orgaudit.checks import CHECKS  # the registry names this check too

    coverage = context.analysis.snapshot.coverage
    degraded = coverage[coverage["status"] != "complete"]
    affected = {
        source: ", ".join(c.id for c in CHECKS if source in c.needs) or "none directly"
        for source in degraded["source"]
    }
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
            + degraded["source"].map(affected),
        }
    )
