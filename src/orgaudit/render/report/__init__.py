"""Report writers: a plain registry from format name to writer.

Every writer takes the same :class:`~orgaudit.render.report.tables.ReportData`, an output folder
and a file stem, and returns the path it wrote. Only ``report.xlsx`` imports openpyxl.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from orgaudit.render.report.tables import ReportData
from orgaudit.render.report.text_formats import write_csv, write_json, write_markdown
from orgaudit.render.report.xlsx import write_xlsx

Writer = Callable[[ReportData, Path, str], Path]

WRITERS: dict[str, Writer] = {
    "xlsx": write_xlsx,
    "csv": write_csv,
    "json": write_json,
    "md": write_markdown,
}
DEFAULT_FORMATS = ("xlsx", "md")
