"""The marks of the access matrix: what a cell says of its user and project.

Shared by the table builder (:mod:`~orgaudit.render.report.access`), which writes them,
and the workbook (:mod:`~orgaudit.render.report.xlsx_cells`), which colours by them.
"""

from __future__ import annotations

from enum import StrEnum

from orgaudit.vocabulary import Verdict


class MatrixMark(StrEnum):
    """What a matrix cell says of its user and project; the workbook colours by it."""

    CAN = "can create keys"
    CANNOT = "cannot"
    UNKNOWN = "unknown"


MARK_OF_VERDICT = {
    Verdict.ALLOWED: MatrixMark.CAN,
    Verdict.DENIED: MatrixMark.CANNOT,
    Verdict.UNKNOWN: MatrixMark.UNKNOWN,
}
