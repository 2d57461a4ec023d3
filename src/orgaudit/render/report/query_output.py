"""How a query's result leaves: a terminal table, csv or json on stdout, or a workbook."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from orgaudit.errors import UsageError
from orgaudit.files import write_private_text
from orgaudit.render.report.escape import csv_text
from orgaudit.render.terminal import json_text

QUERY_FORMATS = ("table", "csv", "json", "xlsx")


def write_query_result(frame: pd.DataFrame, title: str, output: str, out_file: Path | None) -> str:
    """Render or write a result; returns the text to print (empty for the table form)."""
    if output not in QUERY_FORMATS:
        raise UsageError(f"unknown format {output!r}; choose from {', '.join(QUERY_FORMATS)}")
    if output == "table":
        return ""
    if output == "csv":
        text = csv_text(frame)
    elif output == "json":
        text = json_text(frame.to_json(orient="records", force_ascii=False, indent=2) or "[]")
    else:
        if out_file is None:
            raise UsageError("--format xlsx needs --out FILE.xlsx")
        from orgaudit.render.report.xlsx import write_table_workbook

        write_table_workbook(frame, title, out_file)
        return f"wrote {out_file}"
    if out_file is not None:
        write_private_text(out_file, text)
        return f"wrote {out_file}"
    return text
