"""Checks on who granted access: roles still held that were granted by someone who has
since left the organization."""

from __future__ import annotations

import pandas as pd

from orgaudit.checks.findings import AuditContext
from orgaudit.model.bindings import GROUP


def role_granted_by_departed(context: AuditContext) -> pd.DataFrame:
    """Roles held today whose granting event (the newest in the audit log) was made by a
    user or service account no longer in the org; a group's role is one finding, about
    the group, however many members hold it."""
    bindings = context.analysis.model.bindings
    grants = context.analysis.binding_grants
    gone = grants["granter_in_org"].eq(False).fillna(False).astype(bool)
    departed = bindings[gone].join(grants, validate="one_to_one")
    if departed.empty:
        return pd.DataFrame()
    through_group = departed["via_group_id"].notna()
    held = departed.assign(
        subject_type=departed["principal_type"].where(~through_group, GROUP.value),
        subject_id=departed["principal_id"].where(~through_group, departed["via_group_id"]),
    ).drop_duplicates(["subject_type", "subject_id", "scope", "project_id", "role_id", "kind"])
    names = context.analysis.principal_names.set_index("principal_id")["name"]
    group_names = held["via_group_name"].fillna(held["subject_id"])
    subject_name = (
        held["subject_id"].map(names).fillna(held["subject_id"]).where(~through_group, group_names)
    )
    project_names = held["project_id"].map(context.analysis.project_names)
    where = ("project " + project_names.fillna(held["project_id"])).fillna("the organization")
    inferred = held["grant_inferred"].map({True: " (matched by place: the event names no role)"})
    message = (
        held["role_name"].astype(str)
        + " ("
        + held["kind"].astype(str)
        + ") in "
        + where
        + " was granted by "
        + held["granted_by"].astype(str)
        + " on "
        + held["granted_at"].dt.strftime("%Y-%m-%d")
        + ", who is no longer in the organization"
        + inferred.fillna("")
    )
    return pd.DataFrame(
        {
            "subject_type": held["subject_type"].astype(str),
            "subject_id": held["subject_id"],
            "subject_name": subject_name,
            "project_id": held["project_id"],
            "project_name": project_names,
            "message": message,
        }
    )
