"""The access matrix: users down, projects across, each cell one of six states, with the
reason in words for every cell that does not allow keys.

"Member, cannot" (the problem to fix) and "not a member" (expected) look different, and
an archived project is its own state, whatever the user's roles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from orgaudit.model.access import levels_for_pairs
from orgaudit.model.analysis import Analysis
from orgaudit.render.report.entities import project_roles_table
from orgaudit.render.report.marks import MatrixMark
from orgaudit.vocabulary import AccessLevel, Verdict

# Past this many cells the access matrix is left out (the Memberships and Access review
# sheets hold the same facts in long form), so the workbook stays fast and small.
MATRIX_CELL_LIMIT = 250_000

LEVEL_WORDS = {
    AccessLevel.NONE: "give no rights on keys",
    AccessLevel.READ: "only let them read keys",
    AccessLevel.CREATE_OWN: "let them create their own keys",
    AccessLevel.MANAGE_ALL: "let them manage every key",
}


@dataclass(frozen=True)
class AccessMatrix:
    """The cells' text, their states and the reasons (empty where keys are allowed), each
    a users x projects frame with the same labels; or only a note where it is left out."""

    text: pd.DataFrame | None
    marks: pd.DataFrame | None
    reasons: pd.DataFrame | None
    note: str = ""


def access_matrix(analysis: Analysis) -> AccessMatrix:
    """Every user in every project: their state there, their roles, and why."""
    snapshot = analysis.snapshot
    users = snapshot["users"]
    projects = snapshot["projects"]
    cells = len(users) * len(projects)
    if cells > MATRIX_CELL_LIMIT:
        note = (
            f"left out: {len(users)} users x {len(projects)} projects is more than "
            f"{MATRIX_CELL_LIMIT:,} cells; the Access review sheet has the same facts"
        )
        return AccessMatrix(None, None, None, note)
    grid = pd.MultiIndex.from_product(
        [users["id"], projects["id"]], names=["principal_id", "project_id"]
    ).to_frame(index=False)
    org_roles = users[["id", "role"]].rename(columns={"id": "principal_id", "role": "org_role"})
    full = (
        levels_for_pairs(analysis.model, grid)
        .merge(
            project_roles_table(analysis),
            on=["principal_id", "project_id"],
            how="left",
            validate="one_to_one",
        )
        .merge(org_roles, on="principal_id", how="left", validate="many_to_one")
    )
    marks = _marks(full)
    contested = full["contested"].fillna("").astype(str) != ""
    # The roles behind the state: those held in the project, or the org role that
    # allows keys everywhere.
    org_role = full["org_role"].fillna("").astype(str)
    roles = full["Roles"].fillna("").where(marks != MatrixMark.CAN_BY_ORG_ROLE, org_role)
    text = marks.where(roles == "", marks + " (" + roles + ")")
    text = text.where(~contested, text + " (contested)")
    reason = _reasons(full, marks, contested)
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

    return AccessMatrix(shape(text), shape(marks), shape(reason))


def _marks(full: pd.DataFrame) -> pd.Series:
    member = full["Roles"].notna()
    verdict = full["verdict"]
    mark = np.select(
        [
            full["archived"].astype(bool),
            verdict == Verdict.UNKNOWN,
            member & (verdict == Verdict.ALLOWED),
            member,
            verdict == Verdict.ALLOWED,
        ],
        [
            MatrixMark.ARCHIVED,
            MatrixMark.UNKNOWN,
            MatrixMark.CAN,
            MatrixMark.BLOCKED,
            MatrixMark.CAN_BY_ORG_ROLE,
        ],
        MatrixMark.NOT_MEMBER,
    )
    return pd.Series(mark, index=full.index, dtype=object).astype(str)


def _reasons(full: pd.DataFrame, marks: pd.Series, contested: pd.Series) -> pd.Series:
    """Why a cell does not allow keys, in words, and what would change it."""
    level = full["level"].map(LEVEL_WORDS).fillna("give no rights on keys")
    org_role = full["org_role"].fillna("unknown").astype(str)
    reasons = {
        MatrixMark.BLOCKED: "a member, but their roles here (" + full["Roles"].fillna("")
        + ") " + level + ". To let them create keys, make them a project member (member "
        "role), or give them a role that grants creating keys.",
        MatrixMark.NOT_MEMBER: "not a member of this project; their org role (" + org_role
        + ") gives no rights on keys in projects they are not in. Add them to the project "
        "if they need keys here.",
        MatrixMark.ARCHIVED: pd.Series(
            "the project is archived: no one can create keys in it.", index=full.index
        ),
        MatrixMark.UNKNOWN: pd.Series(
            "cannot tell: a list that could hold a role here was not read (see the coverage "
            "on the first sheet), or a role they hold is unknown to the permission catalog.",
            index=full.index,
        ),
    }  # fmt: skip
    reason = pd.Series("", index=full.index, dtype=object)
    for mark, text in reasons.items():
        reason = reason.where(marks != mark, text)
    note = (
        " Contested: rests on rule " + full["contested"].astype(str)
        + "; under its other reading the answer is " + full["verdict_other"].astype(str) + "."
    )  # fmt: skip
    return reason.where(~contested, reason + note).str.strip()


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
