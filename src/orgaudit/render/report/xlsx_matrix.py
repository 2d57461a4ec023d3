"""The workbook's access matrix sheet: a legend of the six states, then users down and
projects across, each cell coloured by its state, with the reason in words as a comment
on every cell that does not allow keys."""

from __future__ import annotations

import pandas as pd
from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.utils import get_column_letter

from orgaudit.render.report.marks import MARK_MEANING, MatrixMark
from orgaudit.render.report.matrix import AccessMatrix
from orgaudit.render.report.xlsx_cells import (
    BOLD,
    MATRIX_FILLS,
    WIDTH_CAP,
    Sheet,
    column_width,
    header_cells,
    lay_out,
    plain_values,
    styled,
    text_cell,
    value_cell,
)

MATRIX_SHEET = "Access matrix"
# Past this many, matrix cells get no comment of their own (see _commented).
MATRIX_COMMENT_LIMIT = 10_000
LEGEND_ROWS = len(MatrixMark) + 2  # a title, a row per state, and a blank row


def write_matrix_sheet(workbook: Workbook, matrix: AccessMatrix) -> None:
    """The legend, then users down and projects across; the reason for each cell that
    does not allow keys as its comment."""
    sheet = workbook.create_sheet(MATRIX_SHEET)
    text, marks, reasons = matrix.text, matrix.marks, matrix.reasons
    if text is None or marks is None or reasons is None:
        lay_out(sheet, [WIDTH_CAP * 2], None)
        sheet.append([text_cell(sheet, matrix.note or "no access matrix")])
        return
    reasons, note = _commented(marks, reasons)
    labels = pd.Series(text.index, dtype=object)
    widths = [max(column_width(text.index.name or "User", labels), 24.0)]
    widths += [column_width(name, text.iloc[:, i]) for i, name in enumerate(text.columns)]
    header_row = LEGEND_ROWS + 1
    lay_out(sheet, widths, f"B{header_row + 1}", fit_width=len(widths) <= 20)
    _legend(sheet)
    header = header_cells(sheet, [text.index.name or "User", *text.columns])
    if note:
        header[0].comment = Comment(note, "orgaudit", height=160, width=320)
    sheet.append(header)
    rows = zip(
        labels,
        plain_values(text).itertuples(index=False, name=None),
        plain_values(marks).itertuples(index=False, name=None),
        plain_values(reasons).itertuples(index=False, name=None),
        strict=True,
    )
    for label, texts, states, why in rows:
        cells = [_cell(sheet, t, m, r) for t, m, r in zip(texts, states, why, strict=True)]
        sheet.append([value_cell(sheet, label), *cells])
    last = get_column_letter(len(text.columns) + 1)
    sheet.auto_filter.ref = f"A{header_row}:{last}{header_row + len(text)}"


def _legend(sheet: Sheet) -> None:
    sheet.append([styled(sheet, "What each cell says", font=BOLD)])
    for mark in MatrixMark:
        sheet.append([styled(sheet, str(mark), fill=MATRIX_FILLS[mark]), MARK_MEANING[mark]])
    sheet.append([])


def _cell(sheet: Sheet, text: object, mark: object, reason: object) -> object:
    if text is None:
        return None
    state = MatrixMark(str(mark)) if mark in tuple(MatrixMark) else MatrixMark.UNKNOWN
    cell = styled(sheet, text, fill=MATRIX_FILLS[state])
    if isinstance(reason, str) and reason:
        cell.comment = Comment(reason, "orgaudit", height=110, width=340)
    return cell


def _commented(marks: pd.DataFrame, reasons: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The reasons to attach as comments, and a note when some are left off.

    openpyxl builds every comment in memory (about 5 kB each) when it saves, so past
    MATRIX_COMMENT_LIMIT only the members who cannot create keys (the surprising cells)
    keep their comment, at most MATRIX_COMMENT_LIMIT of them in reading order.
    """
    present = reasons.notna() & (reasons != "")
    total = int(present.to_numpy().sum())
    if total <= MATRIX_COMMENT_LIMIT:
        return reasons, ""
    keep = present & (marks == MatrixMark.BLOCKED)
    flat = keep.to_numpy().ravel()
    flat &= flat.cumsum() <= MATRIX_COMMENT_LIMIT
    kept = reasons.where(flat.reshape(keep.shape), "")
    note = (
        f"{int(flat.sum()):,} of the {total:,} cells that do not allow keys carry their "
        "reason as a comment: the members who cannot create keys (the rest are left off "
        "to keep the workbook quick to open); the first sheet and the Access review hold "
        "every member's access"
    )
    return kept, note
