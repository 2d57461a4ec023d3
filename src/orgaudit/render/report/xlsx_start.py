"""The workbook's first sheet: who cannot create API keys where, why and the fix, then the
worst findings, and below them the counts and the coverage, with sources in words.

A manager opening the workbook reads the answer here without any other tool; every
other sheet holds the detail behind it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.chart.marker import DataPoint
from openpyxl.utils import get_column_letter

from orgaudit.collect.sources import source_label
from orgaudit.render.report.start import START_COLUMNS, KeyAccessAnswer
from orgaudit.render.report.tables import ReportData
from orgaudit.render.report.xlsx_cells import (
    COUNT,
    SEVERITY_COLOURS,
    TITLE_FONT,
    TOP,
    WRAPPED,
    Sheet,
    header_cells,
    plain_values,
    row_height,
    severity_cell,
    styled,
    value_cell,
)
from orgaudit.vocabulary import Severity

START_SHEET = "Who cannot create keys"
# Fixed widths (write-only mode sets them before the first row): the answer's columns;
# the sections below reuse them. Why and How to fix wrap, so nothing is clipped.
START_WIDTHS = (34.0, 24.0, 26.0, 12.0, 60.0, 60.0, 12.0)
WRAPPED_COLUMNS = frozenset(
    {"Why", "How to fix", "Message", "Remediation", "Title", "Reason", "Source"}
)
WORST_SHOWN = 10
_WORST_FIRST = tuple(reversed(Severity))

# The kinds of row, each written its own way.
TITLE, NOTE, SECTION, HEADER, SEVERITY, PLAIN = (
    "title", "note", "section", "header", "severity", "plain",
)  # fmt: skip
Row = tuple[str, list[object]]


def write_start_sheet(workbook: Workbook, report: ReportData) -> None:
    """The first sheet: the answer, the worst findings, the facts, counts and coverage."""
    sheet = workbook.create_sheet(START_SHEET)
    for index, width in enumerate(START_WIDTHS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = None
    sheet.page_setup.orientation = "landscape"
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    gap: list[Row] = [(PLAIN, [])]
    rows = [*_answer(report.meta, report.key_access), *gap, *_worst(report.findings), *gap]
    rows += [*_facts(report.meta), *gap]
    severity_header = len(rows) + 2  # 1-based row of the severity table's header
    rows += [*_by_severity(report.findings), *gap, *_by_check(report.findings, report.checks)]
    rows += [*gap, *_coverage(report.coverage)]
    header: list[object] = []
    for number, (kind, values) in enumerate(rows, start=1):
        if kind == HEADER:
            header = values
        wrapped = [
            (value, START_WIDTHS[index])
            for index, value in enumerate(values)
            if kind in (PLAIN, SEVERITY, SEVERITY_SECOND)
            and index < len(header)
            and header[index] in WRAPPED_COLUMNS
            and isinstance(value, str)
        ]
        height = row_height(wrapped)
        if height is not None:
            sheet.row_dimensions[number].height = height
        sheet.append(_row(sheet, kind, values, header))
    _severity_chart(sheet, severity_header)


def _answer(meta: Mapping[str, Any], answer: KeyAccessAnswer) -> list[Row]:
    rows: list[Row] = [
        (TITLE, ["Who cannot create API keys, and why"]),
        (NOTE, [f"Snapshot {meta['snapshot_id']}, as of {meta['as_of']:%Y-%m-%d %H:%M} UTC. "
                + answer.headline]),
        (PLAIN, []),
        (HEADER, list(START_COLUMNS)),
    ]  # fmt: skip
    if answer.rows.empty:
        rows.append(
            (PLAIN, ["Every project member can create keys in their project, and every user "
                     "is in a project."])
        )  # fmt: skip
    rows += [(PLAIN, list(row)) for row in _tuples(answer.rows)]
    rows.append(
        (NOTE, ["Users who are not members of a project are left out: the Access matrix "
                "shows every user in every project."])
    )  # fmt: skip
    return rows


def _worst(findings: pd.DataFrame) -> list[Row]:
    counted = findings[~findings["Suppressed"].astype(bool)]
    worst = counted.head(WORST_SHOWN)  # the Findings table is worst first
    columns: list[object] = ["Severity", "Check", "Subject", "Project", "Message", "Remediation"]
    rows: list[Row] = [(SECTION, ["The worst findings"]), (HEADER, columns)]
    rows += [(SEVERITY, list(row)) for row in _tuples(worst[[str(c) for c in columns]])]
    rest = len(counted) - len(worst)
    if rest > 0:
        rows.append((NOTE, [f"and {rest} more on the Findings sheet"]))
    return rows


def _facts(meta: Mapping[str, Any]) -> list[Row]:
    return [
        (SECTION, ["This report"]),
        (PLAIN, ["Snapshot id", meta["snapshot_id"]]),
        (PLAIN, ["As of (UTC)", meta["as_of"]]),
        (PLAIN, ["Audit log read since (UTC)", meta.get("audit_since")]),
        (PLAIN, ["Usage and costs read since (UTC)", meta.get("usage_since") or "not read"]),
        (PLAIN, ["Permission catalog", meta["catalog_version"]]),
        (PLAIN, ["orgaudit", meta["tool_version"]]),
        (PLAIN, ["Findings", meta["findings"]]),
        (PLAIN, ["Findings counted (not suppressed)", meta["findings_counted"]]),
    ]


def _counts(findings: pd.DataFrame, by: str) -> tuple[pd.Series, pd.Series]:
    """Findings per value of ``by``: those that count, and the suppressed ones."""
    suppressed = findings["Suppressed"].astype(bool)
    return findings[~suppressed][by].value_counts(), findings[suppressed][by].value_counts()


def _by_severity(findings: pd.DataFrame) -> list[Row]:
    counted, suppressed = _counts(findings, "Severity")
    return [
        (SECTION, ["Findings by severity"]),
        (HEADER, ["Severity", "Findings", "Suppressed"]),
        *((SEVERITY, [s, int(counted.get(s, 0)), int(suppressed.get(s, 0))]) for s in _WORST_FIRST),
    ]


def _by_check(findings: pd.DataFrame, checks: pd.DataFrame) -> list[Row]:
    counted, suppressed = _counts(findings, "Check")
    rows: list[Row] = [
        (SECTION, ["Findings by check"]),
        (HEADER, ["Check", "Severity", "Findings", "Suppressed", "Title"]),
    ]
    for check, title, severity in checks[["Check", "Title", "Severity"]].itertuples(
        index=False, name=None
    ):
        found, hidden = int(counted.get(check, 0)), int(suppressed.get(check, 0))
        rows.append((SEVERITY_SECOND, [check, severity, found, hidden, title]))
    return rows


SEVERITY_SECOND = "severity-second"  # a row whose second cell is a severity


def _coverage(coverage: pd.DataFrame) -> list[Row]:
    """What was read, each source in words (its name in the schema after it)."""
    named = coverage.assign(
        Source=coverage["Source"].map(lambda name: f"{source_label(name)} ({name})")
    )
    columns: list[object] = ["Source", "Status", "Rows", "Requests", "Reason"]
    return [
        (SECTION, ["What was read (coverage)"]),
        (HEADER, columns),
        *(
            (PLAIN, list(row))
            for row in plain_values(named[[str(c) for c in columns]]).itertuples(
                index=False, name=None
            )
        ),
    ]


def _tuples(frame: pd.DataFrame) -> list[tuple[object, ...]]:
    return list(plain_values(frame).itertuples(index=False, name=None))


def _row(sheet: Sheet, kind: str, values: list[object], header: Sequence[object]) -> list[object]:
    if kind == TITLE:
        return [styled(sheet, values[0], font=TITLE_FONT)]
    if kind in (SECTION, HEADER):
        return header_cells(sheet, values)
    if kind == NOTE:
        return [value_cell(sheet, values[0])]
    cells = []
    for index, value in enumerate(values):
        severity = (kind == SEVERITY and index == 0) or (kind == SEVERITY_SECOND and index == 1)
        name = header[index] if index < len(header) else ""
        if severity:
            cells.append(severity_cell(sheet, value))
        elif name in WRAPPED_COLUMNS and isinstance(value, str):
            cells.append(styled(sheet, value, alignment=WRAPPED))
        elif isinstance(value, int) and not isinstance(value, bool):
            cells.append(styled(sheet, value, alignment=COUNT))
        else:  # read from the top, beside the wrapped text
            cells.append(styled(sheet, value, alignment=TOP) if value is not None else None)
    return cells


def _severity_chart(sheet: Sheet, header_row: int) -> None:
    """A column per severity, coloured as in the Findings sheet, from the counts' cells."""
    chart = BarChart()
    chart.type = "col"
    chart.title = "Findings by severity"
    chart.legend = None
    chart.y_axis.title = "Findings (counted)"
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    last = header_row + len(_WORST_FIRST)
    data = Reference(sheet, min_col=2, min_row=header_row, max_row=last)
    chart.add_data(data, titles_from_data=True)
    chart.set_categories(Reference(sheet, min_col=1, min_row=header_row + 1, max_row=last))
    for index, severity in enumerate(_WORST_FIRST):
        point = DataPoint(idx=index)
        point.graphicalProperties.solidFill = SEVERITY_COLOURS[severity]
        chart.series[0].dPt.append(point)
    chart.width, chart.height = 14, 7.5
    sheet.add_chart(chart, f"H{header_row - 1}")  # right of every table, over empty cells
