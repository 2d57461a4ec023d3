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
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.table import Table, TableColumn, TableStyleInfo

from orgaudit.files import replacing
from orgaudit.render.report.tables import ReportData
from orgaudit.render.report.xlsx_cells import (
    CellMaker,
    Sheet,
    column_width,
    header_cells,
    lay_out,
    longest_text,
    money_cell,
    plain_values,
    row_height,
    severity_cell,
    top_aligned,
    value_cell,
    wrapped_cell,
)
from orgaudit.render.report.xlsx_matrix import write_matrix_sheet
from orgaudit.render.report.xlsx_start import write_start_sheet
from orgaudit.vocabulary import DECISION_LABELS, Severity

TABLE_STYLE = "TableStyleMedium2"
_WORST_FIRST = tuple(reversed(Severity))
TOP_ALIGN_ROW_LIMIT = 5_000


def write_xlsx(report: ReportData, out_dir: Path, stem: str) -> Path:
    """The workbook: summary, findings, access matrix, every table, the review sheet."""
    path = out_dir / f"{stem}.xlsx"
    with replacing(path) as temporary:  # fails early, before the work
        _write_workbook(report, temporary)
    return path


def _write_workbook(report: ReportData, path: Path) -> None:
    workbook = Workbook(write_only=True)
    with closed_on_failure(workbook):
        write_start_sheet(workbook, report)
        table_sheet(workbook, "Findings", report.findings, {"Severity": severity_cell})
        write_matrix_sheet(workbook, report.matrix)
        for title, frame in report.tables.items():
            makers = {"Cost": money_cell} if title == "Spend" else None
            sheet = table_sheet(workbook, sheet_title(title), frame, makers)
            if title == "Access review":
                decision_dropdown(sheet, frame)
        table_sheet(workbook, "Checks", report.checks, {"Severity": severity_cell})
        workbook.save(path)


@contextmanager
def closed_on_failure(workbook: Workbook) -> Iterator[None]:
    """Close a write-only workbook's sheet streams if writing it fails (a full disk).

    Each stream writes its closing tags as it closes, which fails again; closed here, that
    failure is quiet, where the garbage collector would print it as a traceback later.
    """
    try:
        yield
    except BaseException:
        for sheet in workbook.worksheets:
            rows = getattr(sheet, "_rows", None)  # openpyxl's row stream, ended first
            if rows is not None:
                with contextlib.suppress(Exception):
                    rows.close()
            writer = getattr(sheet, "_writer", None)  # openpyxl's, made on the first row
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.close()
        raise


# -- tables ------------------------------------------------------------------------------


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


def table_sheet(
    workbook: Workbook,
    title: str,
    frame: pd.DataFrame,
    special: Mapping[str, CellMaker] | None = None,
    least_widths: Mapping[str, float] | None = None,
) -> Sheet:
    """One table per sheet: frozen header, widths from the content (at least
    ``least_widths`` where given: room for what a reader will type), an Excel table."""
    sheet = workbook.create_sheet(title)
    widths = [
        max(column_width(name, frame.iloc[:, i]), (least_widths or {}).get(str(name), 0.0))
        for i, name in enumerate(frame.columns)
    ]
    lay_out(sheet, widths, "A2")
    sheet.append(header_cells(sheet, frame.columns))
    # Text longer than its (capped) column wraps, and its row is made tall enough.
    wrapped = [i for i in range(frame.shape[1]) if longest_text(frame.iloc[:, i]) > widths[i]]
    makers = [(special or {}).get(str(name), value_cell) for name in frame.columns]
    for i in wrapped:
        if makers[i] is value_cell:
            makers[i] = wrapped_cell
    # Styling every cell of a tall row costs openpyxl a style lookup each: past this many
    # rows only the wrapped cells are styled (the text is whole either way).
    align_tall_rows = len(frame) <= TOP_ALIGN_ROW_LIMIT
    for number, row in enumerate(plain_values(frame).itertuples(index=False, name=None), 2):
        texts = [(row[i], widths[i]) for i in wrapped if isinstance(row[i], str)]
        height = row_height(texts)
        cells = [make(sheet, value) for make, value in zip(makers, row, strict=True)]
        if height is not None:
            sheet.row_dimensions[number].height = height
            if align_tall_rows:  # read from the top, every cell of it
                cells = [top_aligned(sheet, cell) for cell in cells]
        sheet.append(cells)
    _add_table(sheet, title, list(frame.columns), len(frame))
    return sheet


def decision_dropdown(sheet: Sheet, frame: pd.DataFrame) -> None:
    """The reviewer picks Keep, Change or Remove in each row's Decision cell (the Access
    review sheet, and the review workbook of ``orgaudit review``)."""
    if "Decision" not in frame.columns or frame.empty:
        return
    column = get_column_letter(list(frame.columns).index("Decision") + 1)
    validation = DataValidation(
        type="list",
        formula1='"' + ",".join(DECISION_LABELS) + '"',
        allow_blank=True,
        showErrorMessage=True,
        errorTitle="Decision",
        error="Choose " + ", ".join(DECISION_LABELS),
    )
    validation.add(f"{column}2:{column}{len(frame) + 1}")
    sheet.data_validations.append(validation)


# -- a single table -----------------------------------------------------------------------


def sheet_title(title: str) -> str:
    """A valid sheet name: no []:*?/\\, not quoted at either end, at most 31 characters."""
    cleaned = re.sub(r"[\[\]:*?/\\]", "-", title).strip("'")[:31].strip()
    return cleaned or "Result"


def write_table_workbook(frame: pd.DataFrame, title: str, path: Path) -> Path:
    """One table on one sheet (a saved query's result), laid out like the report's tables."""
    workbook = Workbook(write_only=True)
    with replacing(path) as temporary, closed_on_failure(workbook):
        table_sheet(workbook, sheet_title(title), frame)
        workbook.save(temporary)
    return path
