"""The workbook's cells: values stored as what they are (text a spreadsheet cannot
misread, dates, numbers), and the styles the sheets share."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, Cell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from orgaudit.render.report.escape import is_formula_like
from orgaudit.render.report.marks import MatrixMark
from orgaudit.render.terminal import safe_lines
from orgaudit.vocabulary import Severity

Sheet = Any  # openpyxl's WriteOnlyWorksheet (openpyxl ships no type hints)
StyledCell = Any  # openpyxl's WriteOnlyCell
CellMaker = Callable[[Sheet, object], object]

DATE_FORMAT = "yyyy-mm-dd hh:mm:ss"
# Excel holds at most this many characters in a cell; openpyxl would cut longer text silently.
TEXT_LIMIT = 32_767

SEVERITY_COLOURS = {
    Severity.CRITICAL: "8B0000",
    Severity.HIGH: "E03C31",
    Severity.MEDIUM: "F5A623",
    Severity.LOW: "FFE066",
    Severity.INFO: "D9D9D9",
}
MATRIX_COLOURS = {
    MatrixMark.CAN: "C6EFCE",  # green
    MatrixMark.CAN_BY_ORG_ROLE: "DDEBF7",  # light blue
    MatrixMark.BLOCKED: "FFC7CE",  # red: the problem
    MatrixMark.NOT_MEMBER: "FFFFFF",  # white: expected
    MatrixMark.ARCHIVED: "BFBFBF",  # grey
    MatrixMark.UNKNOWN: "FFEB9C",  # amber
}

FONT = "Calibri"  # openpyxl's default body font; a font without a name shows as serif
BOLD = Font(name=FONT, size=11, bold=True)
TITLE_FONT = Font(name=FONT, size=14, bold=True)
WHITE_BOLD = Font(name=FONT, size=11, bold=True, color="FFFFFF")
# Long text wraps within its column (the row grows) instead of running into the next.
WRAPPED = Alignment(wrap_text=True, vertical="top")
TOP = Alignment(vertical="top")
COUNT = Alignment(horizontal="center", vertical="top")  # a count, clear of its neighbours
LINE_HEIGHT = 15.0  # points per line of 11-point Calibri
MAX_ROW_HEIGHT = 409.0  # Excel's limit


def wrapped_cell(sheet: Sheet, value: object) -> object:
    """A value that wraps within its column, read from the top."""
    return (
        styled(sheet, value, alignment=WRAPPED)
        if isinstance(value, str)
        else value_cell(sheet, value)
    )


def top_aligned(sheet: Sheet, cell: object) -> object:
    """A cell (or a plain value) aligned to the top, keeping any alignment it has."""
    if cell is None:
        return None
    styled_cell: StyledCell = cell if isinstance(cell, Cell) else WriteOnlyCell(sheet, value=cell)
    if not styled_cell.alignment.wrap_text:
        styled_cell.alignment = TOP
    return styled_cell


def row_height(texts: Iterable[tuple[str, float]]) -> float | None:
    """The height a row needs for its wrapped ``(text, column width)`` cells; None for one
    line. Spreadsheets do not grow a row for wrapped text written by a program (Excel
    and LibreOffice keep the default height), so the workbook sets it.
    """
    lines = 1
    for text, width in texts:
        per_line = max(int(width) - 2, 1)  # a little lost where lines break at spaces
        needed = sum(max(1, math.ceil(len(part) / per_line)) for part in text.split("\n"))
        lines = max(lines, needed)
    return None if lines == 1 else min(LINE_HEIGHT * lines, MAX_ROW_HEIGHT)


def solid_fill(colour: str) -> PatternFill:
    return PatternFill(fill_type="solid", start_color=colour, end_color=colour)


SEVERITY_FILLS = {name: solid_fill(colour) for name, colour in SEVERITY_COLOURS.items()}
MATRIX_FILLS = {mark: solid_fill(colour) for mark, colour in MATRIX_COLOURS.items()}


def text_cell(sheet: Sheet, value: str) -> object:
    """A text value; one a spreadsheet would read otherwise becomes a quoted text cell.

    Without lxml installed, a carriage return reads back as a line feed (XML end-of-line
    handling: the standard library's serializer leaves it unescaped); it stays text.
    """
    value = cell_text(value)
    if not (is_formula_like(value) or value in ERROR_CODES):
        return value
    cell = WriteOnlyCell(sheet, value=value)
    cell.data_type = "s"  # openpyxl binds "=..." as a formula and "#N/A" as an error
    cell.quotePrefix = True
    return cell


def cell_text(value: str) -> str:
    """Text as a cell holds it: control characters (which XML 1.0 cannot even carry) and
    bidi overrides shown escaped, as everywhere orgaudit writes outside text
    (orgaudit.render.terminal), and cut to Excel's limit, saying so."""
    value = safe_lines(value)
    if len(value) > TEXT_LIMIT:
        note = f"... [cut: {len(value):,} characters; the json report has them all]"
        value = value[: TEXT_LIMIT - len(note)] + note
    return value


def date_cell(sheet: Sheet, value: datetime) -> object:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    cell = WriteOnlyCell(sheet)
    cell.number_format = DATE_FORMAT
    cell.value = value
    return cell


def value_cell(sheet: Sheet, value: object) -> object:
    """Any table value as what the sheet stores: text, a date cell, a number; a boolean
    as Yes or No (a spreadsheet shows TRUE/FALSE or 0/1, which read as data, not words)."""
    if isinstance(value, str):
        return text_cell(sheet, value)
    if isinstance(value, datetime):
        return date_cell(sheet, value)
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if value is None or isinstance(value, int | date | time | timedelta):
        return value
    if isinstance(value, float):  # Excel has no NaN or infinity
        return value if math.isfinite(value) else text_cell(sheet, str(value))
    if isinstance(value, bytes):
        return text_cell(sheet, value.decode("utf-8", "replace"))
    return text_cell(sheet, str(value))


def styled(
    sheet: Sheet,
    value: object,
    *,
    fill: PatternFill | None = None,
    font: Font | None = None,
    alignment: Alignment | None = None,
) -> StyledCell:
    """A value's cell with a fill, a font or an alignment."""
    made = value_cell(sheet, value)
    cell = made if isinstance(made, Cell) else WriteOnlyCell(sheet, value=made)
    if fill is not None:
        cell.fill = fill
    if font is not None:
        cell.font = font
    if alignment is not None:
        cell.alignment = alignment
    return cell


def severity_cell(sheet: Sheet, value: object) -> object:
    """A severity, filled in its colour (anything else as a plain value)."""
    fill = None
    if isinstance(value, str) and value in tuple(Severity):
        fill = SEVERITY_FILLS[Severity(value)]
    if fill is None:
        return value_cell(sheet, value)
    font = WHITE_BOLD if value == Severity.CRITICAL else None
    return styled(sheet, value, fill=fill, font=font, alignment=TOP)


MONEY_FORMAT = "#,##0.00"


def money_cell(sheet: Sheet, value: object) -> object:
    """An amount shown with two decimals (the value keeps every digit); anything else,
    a blank where costs were not read included, as a plain value."""
    if not isinstance(value, float) or not math.isfinite(value):
        return value_cell(sheet, value)
    cell = WriteOnlyCell(sheet, value=value)
    cell.number_format = MONEY_FORMAT
    return cell


def header_cells(sheet: Sheet, names: Iterable[object]) -> list[StyledCell]:
    return [styled(sheet, str(name), font=BOLD) for name in names]


# -- laying out a sheet -------------------------------------------------------------------

WIDTH_CAP = 60
WIDTH_MIN = 8
DATE_WIDTH = 22  # "2026-06-01 12:00:00" and a clear gap before the next column (right-aligned)


def plain_values(frame: pd.DataFrame) -> pd.DataFrame:
    """Python values, missing ones as None, times as naive UTC (Excel has no time zones)."""
    values = frame.astype(object)
    for index in range(frame.shape[1]):
        column = frame.iloc[:, index]
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            values.isetitem(index, column.dt.tz_convert(None).astype(object))
    return values.where(values.notna(), None)


def longest_text(values: pd.Series) -> int:
    """Characters of the longest value as the sheet shows it."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return DATE_WIDTH
    present = values.dropna()
    text = present if pd.api.types.is_string_dtype(present.dtype) else present.map(str)
    return int(text.str.len().max()) if len(text) else 0


def column_width(name: object, values: pd.Series) -> float:
    """Characters of the header or the longest value, with room for the filter button."""
    longest = longest_text(values)
    return float(min(max(len(str(name)) + 3, longest + 2, WIDTH_MIN), WIDTH_CAP))


def lay_out(
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
