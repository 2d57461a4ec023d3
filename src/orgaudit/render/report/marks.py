"""The states of the access matrix: what a cell says of its user and project.

Shared by the table builder (:mod:`~orgaudit.render.report.matrix`), which decides them,
and the workbook (:mod:`~orgaudit.render.report.xlsx_cells`), which colours by them and
writes the legend.
"""

from __future__ import annotations

from enum import StrEnum


class MatrixMark(StrEnum):
    """One cell's state. "Not a member" is expected; "member, cannot" is the problem."""

    CAN = "can create keys"
    CAN_BY_ORG_ROLE = "can, by org role"
    BLOCKED = "member, cannot"
    NOT_MEMBER = "not a member"
    ARCHIVED = "archived project"
    UNKNOWN = "cannot tell"


# What each state means, for the legend.
MARK_MEANING = {
    MatrixMark.CAN: "a member whose roles in the project let them create keys",
    MatrixMark.CAN_BY_ORG_ROLE: "not a member, but their org role lets them create keys "
    "in every project",
    MatrixMark.BLOCKED: "a member whose roles in the project do not let them create keys",
    MatrixMark.NOT_MEMBER: "not a member of the project, so no keys there (expected)",
    MatrixMark.ARCHIVED: "the project is archived: no one can create keys in it",
    MatrixMark.UNKNOWN: "a list that could hold a role was not read, or a role is unknown "
    "to the catalog",
}
