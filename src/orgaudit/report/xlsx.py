"""The workbook admins use (the only module that imports openpyxl)."""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook

from orgaudit.report.tables import ReportData


def write_xlsx(report: ReportData, out_dir: Path, stem: str) -> Path:
    """Placeholder until the full workbook lands: one sheet of findings."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Findings")
    sheet.append(list(report.findings.columns))
    for row in report.findings.astype(object).itertuples(index=False):
        sheet.append([None if v is None else str(v) for v in row])
    path = out_dir / f"{stem}.xlsx"
    workbook.save(path)
    return path
