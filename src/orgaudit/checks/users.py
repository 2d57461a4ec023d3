"""Checks on people: who cannot create keys where, who has no project, owner sprawl."""

from __future__ import annotations

import pandas as pd

from orgaudit.checks.findings import AuditContext, contested_note
from orgaudit.model.access import members_without_keys
from orgaudit.model.bindings import USER
from orgaudit.model.catalog import ORGANIZATION, PROJECT
from orgaudit.vocabulary import CREATING_LEVELS, AccessLevel, FindingStatus, Verdict

_LEVEL_TEXT = {
    AccessLevel.NONE: "no rights on keys",
    AccessLevel.READ: "only read keys",
    AccessLevel.CREATE_OWN: "create own keys",
    AccessLevel.MANAGE_ALL: "manage all keys",
}


def user_cannot_create_keys(context: AuditContext) -> pd.DataFrame:
    """Users with a role in a project that does not let them create keys there."""
    model = context.analysis.model
    denied = members_without_keys(model)
    if denied.empty:
        return pd.DataFrame()
    bindings = model.bindings
    roles = (
        bindings.loc[
            (bindings["scope"] == PROJECT) & (bindings["principal_type"] == USER),
            ["principal_id", "project_id", "role_name"],
        ]
        .drop_duplicates()
        .sort_values("role_name")
        .groupby(["principal_id", "project_id"])["role_name"]
        .agg(", ".join)
        .rename("roles")
        .reset_index()
    )
    rows = (
        denied.merge(roles, on=["principal_id", "project_id"], how="left", validate="one_to_one")
        .merge(context.user_names, on="principal_id", how="left", validate="many_to_one")
        .merge(context.project_names, on="project_id", how="left", validate="many_to_one")
    )
    message = (
        rows["subject_name"]
        + " holds "
        + rows["roles"].fillna("no role")
        + " in "
        + rows["project_name"].fillna(rows["project_id"])
        + ", which lets them "
        + rows["level"].map(_LEVEL_TEXT)
        + "; they cannot create API keys there"
    )
    why_unknown = (
        rows["unknown_role"]
        .astype(bool)
        .map(
            {
                True: " (unknown: they hold a role orgaudit does not recognize; see "
                "unrecognized-value)",
                False: " (unknown: a source that could add a role was not read)",
            }
        )
    )
    message = message.where(rows["verdict"] != Verdict.UNKNOWN, message + why_unknown)
    contested = rows["contested"].fillna("").astype(str)
    message = message + contested_note(contested, "they can")
    return pd.DataFrame(
        {
            "subject_type": "user",
            "subject_id": rows["principal_id"],
            "subject_name": rows["subject_name"],
            "project_id": rows["project_id"],
            "project_name": rows["project_name"],
            "message": message,
            "status": rows["verdict"].map({Verdict.UNKNOWN: FindingStatus.UNKNOWN}),
            "contested": contested,
        }
    )


def user_no_project(context: AuditContext) -> pd.DataFrame:
    """Org users who hold no role in any project and whose org roles give them no project
    either (an org owner holds owner rights in every project: not flagged)."""
    levels = context.analysis.model.levels
    users = context.analysis.snapshot["users"]
    in_a_project = set(levels.loc[levels["project_id"].notna(), "principal_id"])
    elsewhere = levels[levels["project_id"].isna()][
        ["principal_id", "complete", "level", "contested"]
    ]
    lonely = (
        users[~users["id"].isin(in_a_project)]
        .rename(columns={"id": "principal_id"})
        .merge(elsewhere, on="principal_id", how="left", validate="one_to_one")
        .merge(context.user_names, on="principal_id", how="left", validate="one_to_one")
    )
    lonely = lonely[~lonely["level"].isin(CREATING_LEVELS)]
    if lonely.empty:
        return pd.DataFrame()
    incomplete = bool(context.analysis.model.incomplete_projects)
    contested = lonely["contested"].fillna("").astype(str)
    return pd.DataFrame(
        {
            "subject_type": "user",
            "subject_id": lonely["principal_id"],
            "subject_name": lonely["subject_name"],
            "project_id": None,
            "project_name": None,
            "message": lonely["subject_name"]
            + " (org "
            + lonely["role"].fillna("?")
            + ") holds no role in any project, so has no project to create keys in"
            + contested_note(contested, "their org role lets them create keys in every project"),
            # A project whose role lists were not all read could hold a role for them.
            "status": (~lonely["complete"].fillna(False).astype(bool) | incomplete).map(
                {True: FindingStatus.UNKNOWN}
            ),
            "contested": contested,
        }
    )


def owner_sprawl(context: AuditContext) -> pd.DataFrame:
    """More org owners than the threshold."""
    bindings = context.analysis.model.bindings
    owner = context.analysis.catalog.preset_for(ORGANIZATION, "owner")
    owners = bindings.loc[
        (bindings["preset_id"] == (owner.id if owner else None))
        & (bindings["principal_type"] == USER),
        "principal_id",
    ].drop_duplicates()
    limit = context.settings.max_owners
    if len(owners) <= limit:
        return pd.DataFrame()
    names = context.user_names.set_index("principal_id")["subject_name"]
    listed = ", ".join(sorted(names.reindex(owners).fillna("?")))
    return pd.DataFrame(
        {
            "subject_type": ["organization"],
            "subject_id": ["organization"],
            "subject_name": ["organization"],
            "message": [f"{len(owners)} org owners (threshold {limit}): {listed}"],
        }
    )
