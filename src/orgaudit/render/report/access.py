"""The access review: who can create keys where, one row per user and project, and
org-wide, with columns for the reviewer."""

from __future__ import annotations

import pandas as pd

from orgaudit.model.analysis import Analysis
from orgaudit.model.bindings import USER
from orgaudit.model.catalog import PROJECT
from orgaudit.render.report.entities import (
    principal_name_table,
    project_name_table,
    project_roles_table,
)
from orgaudit.vocabulary import Verdict


def access_review_table(analysis: Analysis) -> pd.DataFrame:
    levels = analysis.model.levels
    pairs = levels[levels["project_id"].notna() & (levels["principal_type"] == USER)]
    table = (
        pairs.merge(
            project_roles_table(analysis),
            on=["principal_id", "project_id"],
            how="left",
            validate="one_to_one",
        )
        .merge(
            principal_name_table(analysis), on="principal_id", how="left", validate="many_to_one"
        )
        .merge(project_name_table(analysis), on="project_id", how="left", validate="many_to_one")
    )
    review = _review_rows(table, table["Project"], table["project_id"])
    return pd.concat([review, _org_wide_review(analysis)], ignore_index=True).sort_values(
        ["User", "Project"], kind="stable"
    )


def _org_wide_review(analysis: Analysis) -> pd.DataFrame:
    """One review row per user whose org roles alone allow keys in every project."""
    levels = analysis.model.levels
    allowed = levels[
        levels["project_id"].isna()
        & (levels["principal_type"] == USER)
        & (levels["verdict"] == Verdict.ALLOWED)
    ]
    bindings = analysis.model.bindings
    granting = bindings[
        (bindings["scope"] != PROJECT) & bindings["grants_create"] & ~bindings["conditional"]
    ]
    via = (" (via " + granting["via_group_name"] + ")").fillna("")
    roles = (
        granting.assign(role="org " + granting["role_name"].astype(str) + via)
        .groupby("principal_id")["role"]
        .agg(", ".join)
        .rename("Roles")
        .reset_index()
    )
    table = allowed.merge(roles, on="principal_id", how="left", validate="one_to_one").merge(
        principal_name_table(analysis), on="principal_id", how="left", validate="many_to_one"
    )
    return _review_rows(table, "(every project)", "")


def _review_rows(table: pd.DataFrame, project: object, project_id: object) -> pd.DataFrame:
    """The Access review's rows for verdicts in ``table`` (a project's, or org-wide with
    ``project`` "(every project)"), with empty columns for the reviewer to fill."""
    return pd.DataFrame(
        {
            "User": table["Principal"].fillna(table["principal_id"]),
            "User id": table["principal_id"],
            "Project": project,
            "Project id": project_id,
            "Roles": table["Roles"].fillna(""),
            "Key access": table["level"],
            "Can create keys": table["verdict"],
            # A verdict resting on a contested catalog rule, and its other reading's answer.
            "Contested rule": table["contested"],
            "Under the other reading": table["verdict_other"].where(table["contested"] != "", ""),
            "Decision": "",
            "Reviewer": "",
            "Comment": "",
        }
    )
