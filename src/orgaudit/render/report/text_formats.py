"""The csv, json and markdown writers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from orgaudit.files import private_folder, replacing, write_private_text
from orgaudit.render.report.escape import csv_text
from orgaudit.render.report.tables import ReportData
from orgaudit.render.terminal import json_text, shown
from orgaudit.vocabulary import Severity

# 2: snake_case keys everywhere; findings with a stable finding_id and their subject and
# project as objects; who_cannot_create_keys (docs/report-json.md says what changed).
JSON_SCHEMA_VERSION = 2


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _iso(frame: pd.DataFrame) -> pd.DataFrame:
    """Datetime columns as ISO 8601 UTC text (seconds), missing as empty."""
    times = {
        column: frame[column].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        for column in frame.columns
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype)
    }
    return frame.assign(**times) if times else frame


def _named_tables(report: ReportData) -> dict[str, pd.DataFrame]:
    tables = {
        "Who cannot create keys": report.key_access.rows,
        "Findings": report.findings,
        "Coverage": report.coverage,
        "Checks": report.checks,
    }
    tables.update(report.tables)
    return tables


def write_csv(report: ReportData, out_dir: Path, stem: str) -> Path:
    """One csv file per table, in a folder; formula-like text is escaped."""
    folder = private_folder(out_dir / f"{stem}-csv")
    for name, frame in _named_tables(report).items():
        text = csv_text(_iso(frame))
        write_private_text(folder / f"{_slug(name)}.csv", text)
    if report.matrix.text is not None:
        text = csv_text(report.matrix.text.reset_index())
        write_private_text(folder / "access-matrix.csv", text)
    return folder


def snake_case(name: str) -> str:
    """A column or table name as a json key: "Subject id" -> "subject_id"."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _records_text(frame: pd.DataFrame) -> str:
    """A table as a JSON array, one record per line, its keys in snake_case."""
    if frame.empty:
        return "[]"
    keyed = _iso(frame).rename(columns=lambda name: snake_case(str(name)))
    lines = keyed.to_json(orient="records", lines=True, force_ascii=False, date_format="iso")
    return json_text("[\n    " + ",\n    ".join(lines.strip().split("\n")) + "\n  ]")


def _finding_records_text(findings: pd.DataFrame) -> str:
    """The findings as JSON, worst first: each with its stable id, and its subject and
    project as objects a script can follow."""
    if findings.empty:
        return "[]"
    rows = findings.astype(object).where(findings.notna(), None).to_dict("records")
    records = [
        {
            "finding_id": row["Finding id"],
            "check": row["Check"],
            "title": row["Title"],
            "severity": row["Severity"],
            "status": row["Status"],
            "subject": {"type": row["Subject type"], "id": row["Subject id"],
                        "name": row["Subject"]},
            "project": None if not row["Project id"] else {
                "type": "project", "id": row["Project id"], "name": row["Project"]},
            "message": row["Message"],
            "remediation": row["Remediation"],
            "evidence": row["Evidence"],
            "suppressed": bool(row["Suppressed"]),
            "suppression": row["Suppression"],
            "contested_rules": row["Contested rule"],
        }
        for row in rows
    ]  # fmt: skip
    lines = [json.dumps(record, ensure_ascii=False) for record in records]
    return json_text("[\n    " + ",\n    ".join(lines) + "\n  ]")


def write_json(report: ReportData, out_dir: Path, stem: str) -> Path:
    """The whole report as one JSON document (its schema: docs/report-json.md).

    Written table by table, so only one table's text is in memory at a time.
    """
    meta = {
        key: value.strftime("%Y-%m-%dT%H:%M:%SZ") if hasattr(value, "strftime") else value
        for key, value in report.meta.items()
    }
    path = out_dir / f"{stem}.json"
    with replacing(path) as temporary, temporary.open("w", encoding="utf-8") as handle:
        handle.write(f'{{\n  "schema_version": {JSON_SCHEMA_VERSION},\n')
        handle.write(f'  "snapshot": {json_text(json.dumps(meta, ensure_ascii=False))},\n')
        answer = report.key_access
        handle.write(f'  "who_cannot_create_keys": {_records_text(answer.rows)},\n')
        handle.write(f'  "coverage": {_records_text(report.coverage)},\n')
        handle.write(f'  "findings": {_finding_records_text(report.findings)},\n')
        handle.write(f'  "checks": {_records_text(report.checks)},\n')
        handle.write('  "tables": {')
        for number, (name, frame) in enumerate(report.tables.items()):
            separator = "," if number else ""
            key = json_text(json.dumps(snake_case(name)))
            handle.write(f"{separator}\n  {key}: {_records_text(frame)}")
        handle.write("\n  }\n}\n")
    return path


def md_cell(value: object) -> str:
    """A table cell that renders inertly wherever the markdown is shown (a wiki, a CI
    summary, a pull request): a code span, in which no HTML, link, image or autolink is
    made of the text (CommonMark 0.31, "Code spans"), control characters shown escaped
    and one line kept. A pipe is escaped even there: GFM splits table cells on it first.
    """
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):  # numpy's too
        return str(value)
    return _code(value).replace("|", "\\|")


def _code(value: object) -> str:
    """``value`` as an inline code span, fenced by more backticks than it holds in a row."""
    text = shown(value)
    if not text:
        return ""
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    padded = f" {text} " if text[0] == "`" or text[-1] == "`" else text
    return f"{fence}{padded}{fence}"


def _md_table(frame: pd.DataFrame) -> list[str]:
    # The headers are orgaudit's own column names; the cells hold outside text.
    header = "| " + " | ".join(shown(c).replace("|", "\\|") for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = [
        "| " + " | ".join(md_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return [header, rule, *rows]


MD_FINDINGS_LIMIT = 100


def write_markdown(report: ReportData, out_dir: Path, stem: str) -> Path:
    """A readable summary for a ticket or a pull request."""
    meta = report.meta
    findings = report.findings
    counted = findings[~findings["Suppressed"].astype(bool)]
    by_severity = counted["Severity"].value_counts()
    lines = [
        f"# orgaudit report: snapshot {meta['snapshot_id']}",
        "",
        f"As of {meta['as_of']:%Y-%m-%d %H:%M} UTC; catalog {_code(meta['catalog_version'])}; "
        f"orgaudit {meta['tool_version']}.",
        "",
        "## Who cannot create API keys, and why",
        "",
        report.key_access.headline,
        "",
        *(_md_table(report.key_access.rows) if len(report.key_access.rows) else []),
        "",
        "## Findings by severity",
        "",
        "| severity | findings |",
        "|---|---|",
        *(f"| {s} | {int(by_severity.get(s, 0))} |" for s in reversed(Severity)),
        "",
        f"{len(findings) - len(counted)} suppressed finding(s) are listed below but not counted.",
        "",
        "## Coverage",
        "",
        *_md_table(_iso(report.coverage)),
        "",
        "## Findings",
        "",
    ]
    shown = findings[["Severity", "Status", "Check", "Subject", "Project", "Message"]]
    if len(shown) > MD_FINDINGS_LIMIT:
        lines.append(
            f"The first {MD_FINDINGS_LIMIT} of {len(shown)}, worst first; the workbook "
            "and the json report hold them all."
        )
        lines.append("")
        shown = shown.head(MD_FINDINGS_LIMIT)
    lines += _md_table(shown) if len(shown) else ["No findings."]
    suppressed = findings[findings["Suppressed"].astype(bool) | (findings["Suppression"] != "")]
    if len(suppressed):
        lines += ["", "## Suppressions", ""]
        lines += _md_table(suppressed[["Check", "Subject", "Suppressed", "Suppression"]])
    lines += ["", "## Checks", ""]
    lines += _md_table(report.checks[["Check", "Severity", "Title"]])
    path = out_dir / f"{stem}.md"
    write_private_text(path, "\n".join(lines) + "\n")
    return path
