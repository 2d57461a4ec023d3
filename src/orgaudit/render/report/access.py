"""The report's access tables: the review of who can create keys where (one row per user
and project, and org-wide), and the access matrix."""

from __future__ import annotations

import pandas as pd

from orgaudit.model.access import levels_for_pairs
from orgaudit.model.analysis import Analysis
from orgaudit.model.bindings import USER
from orgaudit.model.catalog import PROJECT
from orgaudit.render.report.entities import (
    principal_name_table,
    project_name_table,
    project_roles_table,
)
from orgaudit.render.report.marks import MARK_OF_VERDICT
from orgaudit.vocabulary import Verdict

# Past this many cells the access matrix is left out (the Memberships and Access review
# sheets hold the same facts in long form), so the workbook stays fast and small.
MATRIX_CELL_LIMIT = 250_000


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


def access_matrix(analysis: Analysis) -> tuple[pd.DataFrame | None, pd.DataFrame | None, str]:
    """Users down, projects across: the user's roles there and whether they may create keys.

    Cells where the user holds no project role show what their org role gives them there.
    """
    snapshot = analysis.snapshot
    users = snapshot["users"]
    projects = snapshot["projects"]
    cells = len(users) * len(projects)
    if cells > MATRIX_CELL_LIMIT:
        return (
            None,
            None,
            (
                f"left out: {len(users)} users x {len(projects)} projects is more than "
                f"{MATRIX_CELL_LIMIT:,} cells; the Access review sheet has the same facts"
            ),
        )
    grid = pd.MultiIndex.from_product(
        [users["id"], projects["id"]], names=["principal_id", "project_id"]
    ).to_frame(index=False)
    full = levels_for_pairs(analysis.model, grid).merge(
        project_roles_table(analysis),
        on=["principal_id", "project_id"],
        how="left",
        validate="one_to_one",
    )
    verdict = full["verdict"]
    mark = verdict.map(MARK_OF_VERDICT).astype(str)
    contested = full["contested"].fillna("").astype(str) != ""
    text = (
        full["Roles"].fillna("(org role only)")
        + ": "
        + mark.where(~contested, mark + " (contested)")
    )
    explain = (
        "; see `orgaudit explain user "
        + full["principal_id"]
        + " --project "
        + full["project_id"]
        + "`"
    )
    reason = (
        ("key access " + full["level"] + explain)
        .where(~full["archived"].astype(bool), "the project is archived: no keys can be created")
        .where(verdict != Verdict.ALLOWED, "")
    )
    reason = reason.where(
        ~contested,
        (reason + "; ").where(reason != "", "")
        + "contested: rests on rule "
        + full["contested"].astype(str)
        + "; under its other reading: "
        + full["verdict_other"].astype(str),
    )
    user_labels = _unique_labels(users["id"], users["email"].fillna(users["name"]))
    project_labels = _unique_labels(projects["id"], projects["name"])

    def shape(values: pd.Series) -> pd.DataFrame:
        table = full.assign(value=values).pivot(
            index="principal_id", columns="project_id", values="value"
        )
        table = table.reindex(index=users["id"], columns=projects["id"])
        table.index = pd.Index(user_labels, name="User")
        table.columns = pd.Index(project_labels, name="Project")
        return table

    return shape(text), shape(reason), ""


def _unique_labels(ids: pd.Series, names: pd.Series) -> list[str]:
    """A header per row: its name, or its id where the name is missing or not unique.

    Two projects may share a name; a matrix whose headers repeat cannot be read (nor
    written: a header names one column).
    """
    labels = names.astype("string").fillna(ids.astype("string"))
    suffix = " (" + ids.astype("string") + ")"
    # A name may itself read "name (id)" of another row: add ids until the labels differ.
    while labels.duplicated().any():
        labels = labels.where(~labels.duplicated(keep=False), labels + suffix)
    return [str(label) for label in labels]


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
