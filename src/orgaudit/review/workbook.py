"""The review workbook: written for the reviewers, and read back once they have filled it.

Three sheets: Instructions (the campaign's facts and how to review), Review (one row per
item; the columns orgaudit wrote are protected, the reviewer's are yellow and open) and
Roles (the roles a Change may name, by where). Sheet protection has no password: it
keeps a reviewer from editing an identity cell by accident, and the row's checksum and
the campaign's stored items catch one edited on purpose.

Reading back is reading untrusted input: a file that is not a workbook (or holds
macros), one too large to be a review, a sheet renamed, a header moved or rows added is
one clear line; the rows themselves are judged by :mod:`orgaudit.review.close`.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Protection
from openpyxl.utils import get_column_letter

from orgaudit.errors import UsageError
from orgaudit.files import read_regular_file, replacing
from orgaudit.render.report.xlsx import closed_on_failure, decision_dropdown, table_sheet
from orgaudit.render.report.xlsx_cells import (
    BOLD,
    TITLE_FONT,
    TOP,
    WRAPPED,
    Sheet,
    StyledCell,
    lay_out,
    row_height,
    solid_fill,
    styled,
)
from orgaudit.review.campaign import Campaign
from orgaudit.review.items import (
    FILLED,
    REVIEW_SHEET_COLUMNS,
    ROSTER_DECISION,
    roster_justification,
)

INSTRUCTIONS, REVIEW, ROLES = "Instructions", "Review", "Roles"
CAMPAIGN_LABEL = "Campaign"
FILL_IN = solid_fill("FFF2CC")  # the reviewer's cells: light yellow
OPEN_CELL = Protection(locked=False)
DATE_FORMAT = "yyyy-mm-dd"
# Room for what the reviewer types in their (empty) columns.
FILL_IN_WIDTHS = {
    "Decision": 12.0,
    "New role": 16.0,
    "Justification": 40.0,
    "Reviewer": 26.0,
    "Date": 13.0,
}
# A filled review is a few MB even for a large org; anything far larger is not one, and
# is not unpacked (a zip bomb would be).
MAX_WORKBOOK_BYTES = 200 * 1024 * 1024


def write_review_workbook(
    path: Path,
    campaign: Campaign,
    items: pd.DataFrame,
    roles: Mapping[str, tuple[str, ...]],
    project_names: Mapping[str, str],
    as_of: datetime,
) -> Path:
    """The workbook the reviewers fill in, written whole or not at all."""
    workbook = Workbook(write_only=True)
    with replacing(path) as temporary, closed_on_failure(workbook):
        _instructions(workbook, campaign, len(items), as_of)
        _review(workbook, items)
        _roles(workbook, roles, project_names)
        workbook.save(temporary)
    return path


def _instructions(workbook: Workbook, campaign: Campaign, count: int, as_of: datetime) -> None:
    sheet = workbook.create_sheet(INSTRUCTIONS)
    lay_out(sheet, [24.0, 100.0], None)
    facts: list[tuple[str, object]] = [
        (CAMPAIGN_LABEL, campaign.id),
        ("Snapshot", f"{campaign.snapshot_id}, as of {as_of:%Y-%m-%d %H:%M} UTC"),
        ("Opened", f"{campaign.opened_at:%Y-%m-%d %H:%M} UTC by {campaign.opened_by}"),
        ("Due", campaign.due_on.isoformat()),
        ("Scope", campaign.scope),
        ("Items", f"{count:,}"),
        ("Tool", f"orgaudit {campaign.tool_version}, catalog {campaign.catalog_version}"),
    ]
    if campaign.roster_name:
        facts.append(("Roster", f"{campaign.roster_name} (SHA-256 {campaign.roster_sha256})"))
    steps = [
        "On the Review sheet, decide each row in the Decision column: Keep, Change or Remove.",
        "Change: write the role the subject should hold instead in New role. The Roles sheet "
        "lists the roles that exist where the item is. Keys have no role: keep or remove them.",
        "Justification: why, in a few words (every decided row needs one).",
        "Reviewer: your e-mail address. Nobody reviews their own access or their own key; the "
        "Suggested reviewer column names someone who may.",
        "Date: the day you decided (YYYY-MM-DD), on or after the day the campaign opened.",
        *(
            [
                f"Rows the roster flags (the Roster column) are pre-filled {ROSTER_DECISION}: "
                "confirm or change the decision, and sign them like every other row."
            ]
            if campaign.roster_name
            else []
        ),
        "Leave a row's yellow cells empty to leave it undecided.",
        "Do not edit the other columns, add or delete rows, or rename the sheets: each row's "
        "checksum ties it to this campaign, and the close refuses a workbook whose rows were "
        "changed (it names the cell).",
        "Save as .xlsx (Excel and LibreOffice both do) and return it to whoever runs "
        "`orgaudit review close`.",
    ]
    sheet.append([styled(sheet, f"Access review {campaign.id}", font=TITLE_FONT)])
    sheet.append([])
    for label, value in facts:
        sheet.append([styled(sheet, label, font=BOLD), styled(sheet, value, alignment=WRAPPED)])
    sheet.append([])
    sheet.append([styled(sheet, "How to review", font=BOLD)])
    first_step = 2 + len(facts) + 3
    for number, step in enumerate(steps, start=1):
        height = row_height([(step, 100.0)])
        if height is not None:
            sheet.row_dimensions[first_step + number - 1].height = height
        sheet.append(
            [styled(sheet, f"{number}.", alignment=TOP), styled(sheet, step, alignment=WRAPPED)]
        )


def _open_cell(sheet: Sheet, value: object) -> StyledCell:
    cell = styled(sheet, value, fill=FILL_IN)
    cell.protection = OPEN_CELL
    return cell


def _date_cell(sheet: Sheet, value: object) -> StyledCell:
    cell = _open_cell(sheet, value)
    cell.number_format = DATE_FORMAT
    return cell


def _review(workbook: Workbook, items: pd.DataFrame) -> None:
    frame = items.assign(**{column: None for column in FILLED}).assign(
        Decision=items["Roster"].map(lambda reason: ROSTER_DECISION if reason else None),
        Justification=items["Roster"].map(lambda reason: roster_justification(reason) or None),
    )[REVIEW_SHEET_COLUMNS]
    makers = {column: _open_cell for column in FILLED} | {"Date": _date_cell}
    sheet = table_sheet(workbook, REVIEW, frame, makers, FILL_IN_WIDTHS)
    decision_dropdown(sheet, frame)
    _protect(sheet)


def _protect(sheet: Sheet) -> None:
    """Lock every cell but the reviewer's; filtering and resizing stay allowed."""
    sheet.protection.sheet = True
    sheet.protection.autoFilter = False
    sheet.protection.formatColumns = False
    sheet.protection.formatRows = False


def _roles(
    workbook: Workbook, roles: Mapping[str, tuple[str, ...]], project_names: Mapping[str, str]
) -> None:
    rows = [
        {
            "Where": "organization" if not where else "project",
            "Project": project_names.get(where, where) if where else "",
            "Project id": where,
            "Roles a Change may name": ", ".join(names),
        }
        for where, names in roles.items()
    ]
    frame = pd.DataFrame(
        rows, columns=["Where", "Project", "Project id", "Roles a Change may name"]
    )
    _protect(table_sheet(workbook, ROLES, frame))


# -- reading it back ----------------------------------------------------------------------


@dataclass(frozen=True)
class FilledRow:
    """One row of the Review sheet as the reviewers left it (values by column name), and
    the columns where a cell holds a formula instead of a value."""

    number: int
    values: Mapping[str, Any]
    formulas: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReturnedWorkbook:
    """A filled workbook as it came back: its bytes, read once (what is judged is what
    the evidence keeps), and the campaign its Instructions sheet names."""

    name: str
    data: bytes
    campaign_id: str

    def rows(self, most: int) -> tuple[FilledRow, ...]:
        """The Review sheet's rows that hold anything; one line if there are more than
        ``most`` (rows may not be added: a campaign knows how many it issued)."""
        with _opened(self.name, self.data) as workbook:
            return _rows(self.name, workbook[REVIEW], most)


def read_returned_workbook(path: Path) -> ReturnedWorkbook:
    """A filled review workbook: a regular file, a workbook without macros, not too large
    to be a review, with the Instructions and Review sheets orgaudit wrote."""
    data = read_regular_file(path, MAX_WORKBOOK_BYTES, "the review workbook")
    if len(data) > MAX_WORKBOOK_BYTES:
        raise UsageError(f"{path} is larger than {MAX_WORKBOOK_BYTES:,} bytes: no review is")
    _check_archive(path, data)
    with _opened(str(path), data) as workbook:
        missing = [name for name in (INSTRUCTIONS, REVIEW) if name not in workbook.sheetnames]
        if missing:
            raise UsageError(
                f"{path} has no sheet {missing[0]!r}: it is not a review workbook orgaudit "
                "wrote, or a sheet was renamed"
            )
        campaign_id = _campaign_id(path, workbook[INSTRUCTIONS])
    return ReturnedWorkbook(path.name, data, campaign_id)


@contextmanager
def _opened(name: str, data: bytes) -> Iterator[Any]:
    """The workbook in ``data``, read as stored: a formula is read as its formula, never
    as the value a spreadsheet last worked out (which the file may claim falsely)."""
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception as exc:  # openpyxl raises many kinds on a damaged or foreign file
        raise UsageError(f"cannot read {name} as a workbook: {_reason(exc)}") from None
    try:
        yield workbook
    finally:
        workbook.close()


def _check_archive(path: Path, data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as exc:
        raise UsageError(f"cannot read {path} as a workbook: {_reason(exc)}") from None
    unpacked = sum(entry.file_size for entry in entries)
    if unpacked > MAX_WORKBOOK_BYTES * 5:
        raise UsageError(f"{path} unpacks to {unpacked:,} bytes: too large to be a review")
    if any(entry.filename.casefold().endswith("vbaproject.bin") for entry in entries):
        raise UsageError(f"{path} holds macros: save it as an .xlsx workbook, without them")


def _campaign_id(path: Path, sheet: Any) -> str:
    for row in sheet.iter_rows(min_row=1, max_row=40, max_col=2, values_only=True):
        if row and row[0] == CAMPAIGN_LABEL and isinstance(row[1], str) and row[1].strip():
            return row[1].strip()
    raise UsageError(f"{path}: the {INSTRUCTIONS} sheet names no campaign (cell B3 was cleared?)")


def _rows(name: str, sheet: Any, most: int) -> tuple[FilledRow, ...]:
    # The size a file declares may hide rows past it: every row is read, to the last.
    sheet.reset_dimensions()
    width = len(REVIEW_SHEET_COLUMNS)
    cells = sheet.iter_rows(max_col=width)
    header = [_value(cell) for cell in next(cells, ())]
    header = [str(v) if v is not None else "" for v in header][:width]
    if header != REVIEW_SHEET_COLUMNS:
        padded = [*header, *[""] * width]
        moved = next(
            f"{get_column_letter(i + 1)}1 is {got!r}, not {want!r}"
            for i, (got, want) in enumerate(zip(padded, REVIEW_SHEET_COLUMNS, strict=False))
            if got != want
        )
        raise UsageError(f"{name}: the {REVIEW} sheet's header was changed ({moved})")
    rows: list[FilledRow] = []
    for number, row in enumerate(cells, start=2):
        values = [_value(cell) for cell in row] + [None] * (width - len(row))
        if all(_blank(value) for value in values):
            continue
        if len(rows) >= most:
            raise UsageError(
                f"{name}: the {REVIEW} sheet holds more rows than the {most:,} the campaign "
                "issued: rows may not be added"
            )
        formulas = tuple(
            column
            for column, cell in zip(REVIEW_SHEET_COLUMNS, row, strict=False)
            if getattr(cell, "data_type", None) == "f"
        )
        rows.append(
            FilledRow(number, dict(zip(REVIEW_SHEET_COLUMNS, values, strict=True)), formulas)
        )
    return tuple(rows)


def _value(cell: Any) -> Any:
    return getattr(cell, "value", None)


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def cell_date(value: object) -> date | None:
    """A date cell (or ISO text) as a date; None if it is neither."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] if text else type(exc).__name__
