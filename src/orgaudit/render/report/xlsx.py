"""The workbook admins use (with :mod:`xlsx_cells`, the only modules that import openpyxl).

Written in openpyxl's write-only mode: each sheet's rows stream to a temporary file as
they are appended, so memory stays bounded however large the org. Column widths, frozen
panes and the sheet views go out before the first row, tables, validations and comments
after the last, which is why every sheet is laid out before its rows are written.

Every text value that a spreadsheet would read as something other than text (a formula
by :func:`~orgaudit.render.report.escape.is_formula_like`, or an error code such as ``#N/A``) is
stored as a text cell with Excel's quote prefix: it shows and reads back exactly as it is.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.table import Table, TableColumn, TableStyleInfo

from orgaudit.files import replacing
from orgaudit.render.report.marks import MatrixMark
from orgaudit.render.report.tables import ReportData
from orgaudit.render.report.xlsx_cells import (
    MATRIX_FILLS,
    CellMaker,
    Sheet,
    header_cells,
    severity_cell,
    styled,
    text_cell,
    value_cell,
)
from orgaudit.render.report.xlsx_start import write_start_sheet
from orgaudit.vocabulary import Severity

TABLE_STYLE = "TableStyleMedium2"
WIDTH_CAP = 60
WIDTH_MIN = 8
DATE_WIDTH = 19
_WORST_FIRST = tuple(reversed(Severity))
# A matrix cell where the user holds no project role starts so (report/tables.py).
ORG_ROLE_ONLY = "(org role only)"
# Past this many, matrix cells get no comment of their own (see _commented).
MATRIX_COMMENT_LIMIT = 10_000
REVIEW_DECISIONS = ("Keep", "Change", "Remove")


def write_xlsx(report: ReportData, out_dir: Path, stem: str) -> Path:
    """The workbook: summary, findings, access matrix, every table, the review sheet."""
    path = out_dir / f"{stem}.xlsx"
    with replacing(path) as temporary:  # fails early, before the work
        _write_workbook(report, temporary)
    return path


def _write_workbook(report: ReportData, path: Path) -> None:
    workbook = Workbook(write_only=True)
    with _closed_on_failure(workbook):
        write_start_sheet(workbook, report)
        _table_sheet(workbook, "Findings", report.findings, {"Severity": severity_cell})
        _matrix_sheet(workbook, report)
        for title, frame in report.tables.items():
            sheet = _table_sheet(workbook, _sheet_title(title), frame)
            if title == "Access review":
                _decision_dropdown(sheet, frame)
        _table_sheet(workbook, "Checks", report.checks, {"Severity": severity_cell})
        workbook.save(path)


@contextmanager
def _closed_on_failure(workbook: Workbook) -> Iterator[None]:
    """Close a write-only workbook's sheet streams if writing it fails (a full disk).

    Each stream writes its closing tags as it closes, which fails again; closed here, that
    failure is quiet, where the garbage collector would print it as a traceback later.
    """
    try:
        yield
    except BaseException:
        for sheet in workbook.worksheets:
            writer = getattr(sheet, "_writer", None)  # openpyxl's, made on the first row
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.close()
        raise


# -- tables ------------------------------------------------------------------------------


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Python values, missing ones as None, times as naive UTC (Excel has no time zones)."""
    values = frame.astype(object)
    for index in range(frame.shape[1]):
        column = frame.iloc[:, index]
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            values.isetitem(index, column.dt.tz_convert(None).astype(object))
    return values.where(values.notna(), None)


def _width(name: object, values: pd.Series) -> float:
    """Characters of the header or the longest value, with room for the filter button."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        longest = DATE_WIDTH
    else:
        present = values.dropna()
        text = present if pd.api.types.is_string_dtype(present.dtype) else present.map(str)
        longest = int(text.str.len().max()) if len(text) else 0
    return float(min(max(len(str(name)) + 3, longest + 2, WIDTH_MIN), WIDTH_CAP))


def _lay_out(
    sheet: Sheet, widths: Sequence[float], freeze: str | None, *, fit_width: bool = True
) -> None:
    """What write-only mode needs before the first row: widths, panes, page set-up."""
    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    if freeze is not None:
        sheet.freeze_panes = freeze
    sheet.page_setup.orientation = "landscape"
    if fit_width:  # printed (or exported to PDF) one page wide
        sheet.sheet_properties.pageSetUpPr.fitToPage = True
        sheet.page_setup.fitToWidth = 1
        sheet.page_setup.fitToHeight = 0


def _table_name(title: str) -> str:
    """An Excel table name from a sheet title ("API keys" -> "ApiKeys")."""
    name = "".join(word.capitalize() for word in re.findall(r"[A-Za-z0-9]+", title))
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", name) or re.fullmatch(r"[A-Za-z]{1,3}\d+", name):
        name = f"Table_{name}"  # empty, starting with a digit, or read as a cell reference
    return name


def _table_headers_ok(columns: Sequence[object]) -> bool:
    """Excel tables need distinct (ignoring case), non-empty text headings."""
    names = [str(name).casefold() for name in columns]
    return all(0 < len(name) <= 255 for name in names) and len(set(names)) == len(names)


def _add_table(sheet: Sheet, title: str, columns: Sequence[object], rows: int) -> None:
    """An Excel table (banded, filterable) over the header and ``rows`` rows."""
    last = get_column_letter(len(columns))
    if rows == 0 or not _table_headers_ok(columns):  # Excel would reject the table
        sheet.auto_filter.ref = f"A1:{last}1"
        return
    taken = {t.displayName for ws in sheet.parent.worksheets for t in ws.tables.values()}
    name = base = _table_name(title)
    number = 1
    while name in taken:  # table names are unique per workbook; sheet titles may collide
        number += 1
        name = f"{base}{number}"
    table = Table(
        displayName=name,
        ref=f"A1:{last}{rows + 1}",
        tableStyleInfo=TableStyleInfo(name=TABLE_STYLE, showRowStripes=True),
    )
    table.tableColumns = [
        TableColumn(id=index, name=str(name)) for index, name in enumerate(columns, start=1)
    ]
    with warnings.catch_warnings():  # the columns are set above, as write-only mode needs
        warnings.filterwarnings("ignore", "In write-only mode you must add table columns")
        sheet.add_table(table)


def _table_sheet(
    workbook: Workbook,
    title: str,
    frame: pd.DataFrame,
    special: Mapping[str, CellMaker] | None = None,
) -> Sheet:
    """One table per sheet: frozen header, widths from the content, an Excel table."""
    sheet = workbook.create_sheet(title)
    widths = [_width(name, frame.iloc[:, i]) for i, name in enumerate(frame.columns)]
    _lay_out(sheet, widths, "A2")
    sheet.append(header_cells(sheet, frame.columns))
    makers = [(special or {}).get(str(name), value_cell) for name in frame.columns]
    for row in _plain(frame).itertuples(index=False, name=None):
        sheet.append([make(sheet, value) for make, value in zip(makers, row, strict=True)])
    _add_table(sheet, title, list(frame.columns), len(frame))
    return sheet


def _decision_dropdown(sheet: Sheet, frame: pd.DataFrame) -> None:
    """The reviewer picks Keep, Change or Remove for each row of the Access review."""
    if "Decision" not in frame.columns or frame.empty:
        return
    column = get_column_letter(list(frame.columns).index("Decision") + 1)
    validation = DataValidation(
        type="list",
        formula1='"' + ",".join(REVIEW_DECISIONS) + '"',
        allow_blank=True,
        showErrorMessage=True,
        errorTitle="Decision",
        error="Choose " + ", ".join(REVIEW_DECISIONS),
    )
    validation.add(f"{column}2:{column}{len(frame) + 1}")
    sheet.data_validations.append(validation)


# -- the access matrix ---------------------------------------------------------------------


def _mark(text: object) -> MatrixMark:
    """The mark a matrix cell ends with ("owner: can create keys" -> "can create keys";
    "viewer: cannot (contested)" -> "cannot"); unknown for anything else."""
    mark = str(text).rsplit(": ", 1)[-1].removesuffix(" (contested)")
    return MatrixMark(mark) if mark in tuple(MatrixMark) else MatrixMark.UNKNOWN


def _matrix_cell(sheet: Sheet, text: object, reason: object) -> object:
    if text is None:
        return None
    fill = MATRIX_FILLS.get(_mark(text), MATRIX_FILLS[MatrixMark.UNKNOWN])
    cell = styled(sheet, text, fill=fill)
    if isinstance(reason, str) and reason:
        cell.comment = Comment(reason, "orgaudit", height=80, width=320)
    return cell


def _commented(matrix: pd.DataFrame, reasons: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The reasons to attach as comments, and a note when some are left off.

    openpyxl builds every comment in memory (about 5 kB each) when it saves, so past
    MATRIX_COMMENT_LIMIT only the cells where the user holds a project role (the surprising
    denials) keep their comment, at most MATRIX_COMMENT_LIMIT of them in reading order.
    """
    present = reasons.notna() & (reasons != "")
    total = int(present.to_numpy().sum())
    if total <= MATRIX_COMMENT_LIMIT:
        return reasons, ""
    keep = present & ~matrix.apply(lambda column: column.str.startswith(ORG_ROLE_ONLY))
    flat = keep.to_numpy().ravel()
    flat &= flat.cumsum() <= MATRIX_COMMENT_LIMIT
    kept = reasons.where(flat.reshape(keep.shape), "")
    note = (
        f"{int(flat.sum()):,} of the {total:,} cells that do not allow keys carry their "
        "reason as a comment (the rest are left off to keep the workbook quick to open); "
        "every user's access in each project of theirs is in the Access review sheet, and "
        "`orgaudit explain user USER --project PROJECT` explains any cell"
    )
    return kept, note


def _matrix_sheet(workbook: Workbook, report: ReportData) -> None:
    """Users down, projects across; the reason for each cell that does not allow keys."""
    sheet = workbook.create_sheet("Access matrix")
    matrix, reasons = report.matrix, report.matrix_reasons
    if matrix is None or reasons is None:
        _lay_out(sheet, [WIDTH_CAP * 2], None)
        sheet.append([text_cell(sheet, report.matrix_note or "no access matrix")])
        return
    reasons, note = _commented(matrix, reasons)
    labels = pd.Series(matrix.index, dtype=object)
    widths = [_width(matrix.index.name or "User", labels)]
    widths += [_width(name, matrix.iloc[:, i]) for i, name in enumerate(matrix.columns)]
    _lay_out(sheet, widths, "B2", fit_width=len(widths) <= 20)
    header = header_cells(sheet, [matrix.index.name or "User", *matrix.columns])
    if note:
        header[0].comment = Comment(note, "orgaudit", height=160, width=320)
    sheet.append(header)
    cells = zip(
        labels,
        _plain(matrix).itertuples(index=False, name=None),
        _plain(reasons).itertuples(index=False, name=None),
        strict=True,
    )
    for label, texts, why in cells:
        row = [_matrix_cell(sheet, t, r) for t, r in zip(texts, why, strict=True)]
        sheet.append([value_cell(sheet, label), *row])
    last = get_column_letter(len(matrix.columns) + 1)
    sheet.auto_filter.ref = f"A1:{last}{len(matrix) + 1}"


# -- a single table -----------------------------------------------------------------------


def _sheet_title(title: str) -> str:
    """A valid sheet name: no []:*?/\\, not quoted at either end, at most 31 characters."""
    cleaned = re.sub(r"[\[\]:*?/\\]", "-", title).strip("'")[:31].strip()
    return cleaned or "Result"


def write_table_workbook(frame: pd.DataFrame, title: str, path: Path) -> Path:
    """One table on one sheet (a saved query's result), laid out like the report's tables."""
    workbook = Workbook(write_only=True)
    with replacing(path) as temporary, _closed_on_failure(workbook):
        _table_sheet(workbook, _sheet_title(title), frame)
        workbook.save(temporary)
    return path
