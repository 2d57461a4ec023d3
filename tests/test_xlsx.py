"""The workbook: its values (golden), the same facts as the json report, formula safety.

Every test reads the file back with openpyxl, as a reviewer's spreadsheet would read it.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from openpyxl import load_workbook
from openpyxl.workbook.workbook import Workbook

from orgaudit.checks import CHECKS
from orgaudit.checks.findings import AuditSettings, run_checks
from orgaudit.explain import explain_user
from orgaudit.render.report import xlsx_matrix
from orgaudit.render.report.matrix import AccessMatrix
from orgaudit.render.report.start import START_COLUMNS, why_in_words
from orgaudit.render.report.tables import ReportData, build_report
from orgaudit.render.report.text_formats import snake_case
from orgaudit.render.report.xlsx import write_table_workbook, write_xlsx
from orgaudit.render.report.xlsx_cells import SEVERITY_COLOURS

from support import HOSTILE_KEY, HOSTILE_PROJECT, HOSTILE_USER, Audited, check_golden, load_analysis

STEM = "orgaudit-snapshot-1"
SHEETS = [
    "Who cannot create keys",
    "Findings",
    "Access matrix",
    "Users",
    "Projects",
    "Memberships",
    "Roles & permissions",
    "Groups",
    "Service accounts",
    "API keys",
    "Spend",
    "Admin keys",
    "Invites",
    "Access review",
    "Checks",
]


def _open(audited: Audited) -> Workbook:
    return load_workbook(audited.out / f"{STEM}.xlsx")


def _json(audited: Audited) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((audited.out / f"{STEM}.json").read_text("utf-8"))
    return loaded


@pytest.fixture(scope="module")
def demo_book(demo_audit: Audited) -> Workbook:
    return _open(demo_audit)


@pytest.fixture(scope="module")
def demo_report(demo_audit: Audited) -> ReportData:
    """The demo's report tables, for writing variants of the workbook."""
    analysis = load_analysis(demo_audit.db, None, None)
    return build_report(analysis, CHECKS, run_checks(CHECKS, analysis, AuditSettings()))


# -- values --------------------------------------------------------------------------------


def _shown(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).replace("\n", "\\n")


def dump(book: Workbook) -> str:
    """Every sheet's title, then each row's values as text (dates ISO), blanks trimmed."""
    lines = []
    for sheet in book:
        lines.append(f"== {sheet.title}")
        for row in sheet.iter_rows(values_only=True):
            cells = [_shown(value) for value in row]
            while cells and not cells[-1]:
                cells.pop()
            lines.append(" | ".join(cells))
    return "\n".join(lines) + "\n"


def test_workbook_values_match_golden(demo_book: Workbook, regen_golden: bool) -> None:
    check_golden("demo/workbook.txt", dump(demo_book), regen_golden)


def test_sheets_are_in_order(demo_book: Workbook) -> None:
    assert demo_book.sheetnames == SHEETS


def _same(value: object) -> object:
    """One form for both files: dates as ISO UTC text, booleans as words, blank as None."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, bool):  # the workbook writes Yes or No
        return "Yes" if value else "No"
    return None if value == "" else value


def _sheet_records(book: Workbook, title: str) -> list[dict[str, object]]:
    """A sheet's rows keyed as the json report keys them (snake_case)."""
    rows = book[title].iter_rows(values_only=True)
    header = [snake_case(str(name)) for name in next(rows)]
    return [{k: _same(v) for k, v in zip(header, row, strict=True)} for row in rows]


def _json_records(records: list[dict[str, object]]) -> list[dict[str, object]]:
    return [{k: _same(v) for k, v in record.items()} for record in records]


def test_findings_sheet_reads_back_as_the_json_findings(
    demo_audit: Audited, demo_book: Workbook
) -> None:
    findings = _json(demo_audit)["findings"]
    assert findings
    flat = [
        {
            "severity": f["severity"], "status": f["status"], "check": f["check"],
            "title": f["title"], "subject_type": f["subject"]["type"],
            "subject": f["subject"]["name"], "subject_id": f["subject"]["id"],
            "project": (f["project"] or {}).get("name"),
            "project_id": (f["project"] or {}).get("id"),
            "message": f["message"], "remediation": f["remediation"], "evidence": f["evidence"],
            "suppressed": f["suppressed"], "suppression": f["suppression"],
            "contested_rule": f["contested_rules"], "finding_id": f["finding_id"],
        }
        for f in findings
    ]  # fmt: skip
    assert _sheet_records(demo_book, "Findings") == _json_records(flat)


def test_every_table_sheet_reads_back_as_the_json_table(
    demo_audit: Audited, demo_book: Workbook
) -> None:
    document = _json(demo_audit)
    assert list(document["tables"]) == [snake_case(name) for name in SHEETS[3:-1]]
    for name in SHEETS[3:-1]:
        records = document["tables"][snake_case(name)]
        assert records, name
        assert _sheet_records(demo_book, name) == _json_records(records), name
    assert _sheet_records(demo_book, "Checks") == _json_records(document["checks"])


def test_dates_are_date_cells_and_ids_are_text(demo_book: Workbook) -> None:
    users = demo_book["Users"]
    header = [c.value for c in users[1]]
    added, user_id = users.cell(2, header.index("Added") + 1), users.cell(2, 1)
    assert added.is_date and isinstance(added.value, datetime)
    assert added.number_format == "yyyy-mm-dd hh:mm:ss"
    assert user_id.data_type == "s"


# -- layout --------------------------------------------------------------------------------


@pytest.mark.parametrize("title", SHEETS[1:2] + SHEETS[3:])
def test_table_sheets_are_excel_tables_with_a_frozen_header(
    demo_book: Workbook, title: str
) -> None:
    sheet = demo_book[title]
    assert sheet.freeze_panes == "A2"
    (table,) = sheet.tables.values()
    assert table.ref == sheet.dimensions
    assert table.tableStyleInfo.name
    assert [c.name for c in table.tableColumns] == [c.value for c in sheet[1]]
    widths = [sheet.column_dimensions[c.column_letter].width for c in sheet[1]]
    assert all(8 <= w <= 60 for w in widths), widths


def test_findings_severity_cells_are_filled_by_severity(demo_book: Workbook) -> None:
    sheet = demo_book["Findings"]
    seen = set()
    for (cell,) in sheet.iter_rows(min_row=2, max_col=1):
        assert cell.fill.fgColor.rgb == "00" + SEVERITY_COLOURS[cell.value], cell.value
        seen.add(cell.value)
    assert {"high", "medium", "low", "info"} <= seen


def test_first_sheet_counts_and_chart(demo_audit: Audited, demo_book: Workbook) -> None:
    rows = [r for r in demo_book["Who cannot create keys"].iter_rows(values_only=True)]
    start = next(i for i, r in enumerate(rows) if r[:3] == ("Severity", "Findings", "Suppressed"))
    by_severity = {r[0]: r[1] for r in rows[start + 1 : start + 6]}
    findings = demo_audit.result.findings
    assert list(by_severity) == ["critical", "high", "medium", "low", "info"]
    for severity, count in by_severity.items():
        assert count == sum(f.severity == severity and f.counts for f in findings)
    assert ("Snapshot id", 1) in [r[:2] for r in rows]
    coverage = next(i for i, r in enumerate(rows) if r[:2] == ("Source", "Status"))
    # Sources named in words, with the schema's name after them.
    sources = {r[0] for r in rows[coverage + 1 :]}
    assert {
        "the org's users (users)",
        "project members' roles (RBAC) (project_user_roles)",
    } <= sources
    with zipfile.ZipFile(demo_audit.out / f"{STEM}.xlsx") as archive:
        chart = archive.read("xl/charts/chart1.xml").decode()
    sheet = "'Who cannot create keys'"
    assert f"{sheet}!$B${start + 2}:$B${start + 6}" in chart  # the counted column
    assert f"{sheet}!$A${start + 2}:$A${start + 6}" in chart


def test_first_sheet_answers_who_cannot_create_keys_as_explain_does(
    demo_audit: Audited, demo_book: Workbook
) -> None:
    # Every project member the access model says cannot create keys in an active project
    # has a row, in the words `orgaudit explain user` gives; then users in no project.
    analysis = load_analysis(demo_audit.db)
    sheet = demo_book["Who cannot create keys"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "Who cannot create API keys, and why"
    header = rows.index(tuple(START_COLUMNS))
    end = next(i for i in range(header + 1, len(rows)) if rows[i][1] is None)
    table = [dict(zip(START_COLUMNS, row, strict=False)) for row in rows[header + 1 : end]]
    levels = analysis.model.levels
    blocked = levels[
        (levels["principal_type"] == "user")
        & levels["project_id"].notna()
        & ~levels["archived"]
        & (levels["verdict"] != "allowed")
    ]
    emails = analysis.user_names.set_index("principal_id")["name"]
    names = analysis.project_names
    pairs = zip(blocked["principal_id"], blocked["project_id"], strict=True)
    expected = {(emails[user], names[project]) for user, project in pairs}
    members = [r for r in table if r["Project"] != "(no project)"]
    assert {(r["User"], r["Project"]) for r in members} == expected
    assert expected == {("dave@example.com", "Payments"), ("oscar@example.com", "Research")}
    for row in members:
        [verdict] = explain_user(
            analysis.snapshot, analysis.model, analysis.catalog, row["User"], row["Project"]
        )
        assert row["Can they?"] == {"denied": "No", "unknown": "Cannot tell"}[verdict.decision]
        assert row["Why"] == why_in_words(verdict)
        assert row["How to fix"].startswith(verdict.fixes[0].action)
        for binding in verdict.bindings:
            if binding.deciding:
                assert binding.role in row["Why"]
    dave = next(r for r in members if r["User"] == "dave@example.com")
    assert dave["Their roles there"] == "viewer"
    assert "reads keys only" in dave["Why"]
    assert dave["How to fix"].startswith("change dave@example.com's role in Payments from viewer")
    lonely = [r for r in table if r["Project"] == "(no project)"]
    no_project = {
        f.subject_name for f in demo_audit.result.findings if f.check_id == "user-no-project"
    }
    assert {r["User"] for r in lonely} == no_project == {"peggy@example.com"}
    # Wrapped, and the row tall enough for it: nothing runs into the next cell.
    why = START_COLUMNS.index("Why") + 1
    first = sheet.cell(header + 2, why)
    assert first.alignment.wrap_text
    assert sheet.row_dimensions[header + 2].height >= 30


def test_access_review_decision_is_a_keep_change_remove_dropdown(demo_book: Workbook) -> None:
    sheet = demo_book["Access review"]
    header = [c.value for c in sheet[1]]
    column = sheet.cell(1, header.index("Decision") + 1).column_letter
    (validation,) = sheet.data_validations.dataValidation
    assert validation.type == "list"
    assert validation.formula1 == '"Keep,Change,Remove"'
    assert str(validation.sqref) == f"{column}2:{column}{sheet.max_row}"
    for name in ("Decision", "Reviewer", "Comment"):
        index = header.index(name) + 1
        (cells,) = sheet.iter_cols(index, index, 2, values_only=True)
        assert set(cells) == {None}, name


def test_a_left_out_matrix_says_why_in_a1(demo_report: ReportData, tmp_path: Path) -> None:
    note = "left out: 5000 users x 500 projects is more than 250,000 cells"
    report = replace(demo_report, matrix=AccessMatrix(None, None, None, note))
    book = load_workbook(write_xlsx(report, tmp_path, "big"))
    assert book["Access matrix"]["A1"].value == note
    assert book["Access matrix"].max_row == 1


def test_past_the_comment_limit_only_members_who_cannot_keep_their_reason(
    demo_report: ReportData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xlsx_matrix, "MATRIX_COMMENT_LIMIT", 3)
    sheet = load_workbook(write_xlsx(demo_report, tmp_path, "few"))["Access matrix"]
    header = next(row[0].row for row in sheet.iter_rows() if row[0].value == "User")
    cells = [cell for row in sheet.iter_rows(min_row=header + 1, min_col=2) for cell in row]
    commented = {cell.value for cell in cells if cell.comment}
    # Both are org readers who are project viewers: contested (key_rights_need_project_role).
    assert commented == {
        "member, cannot (viewer) (contested)",
        "member, cannot (Responses caller, viewer) (contested)",
    }
    denied = sum(
        not str(c.value).startswith(("can create keys", "can, by org role")) for c in cells
    )
    note = sheet.cell(header, 1).comment.text
    assert f"2 of the {denied} cells that do not allow keys" in note


def test_empty_tables_still_make_a_workbook(demo_report: ReportData, tmp_path: Path) -> None:
    tables = {name: frame.head(0) for name, frame in demo_report.tables.items()}
    report = replace(demo_report, tables=tables, findings=demo_report.findings.head(0))
    book = load_workbook(write_xlsx(report, tmp_path, "empty"))
    assert book.sheetnames == SHEETS
    assert not book["Users"].tables
    assert book["Users"].auto_filter.ref == "A1:H1"
    assert book["Access review"].max_row == 1


def test_the_workbook_is_owner_only(demo_audit: Audited) -> None:
    assert (demo_audit.out / f"{STEM}.xlsx").stat().st_mode & 0o777 == 0o600


# -- formula injection --------------------------------------------------------------------


def _where(book: Workbook, value: str) -> set[str]:
    """The sheets holding ``value``; each such cell must be quoted text, never a formula."""
    sheets = set()
    for sheet in book:
        for row in sheet.iter_rows():
            for cell in row:
                if cell.value == value:
                    assert cell.data_type == "s", (sheet.title, cell.coordinate)
                    assert cell.quotePrefix, (sheet.title, cell.coordinate)
                    sheets.add(sheet.title)
    return sheets


def _json_sheets(document: dict[str, Any], value: str) -> set[str]:
    def flat(record: dict[str, Any]) -> set[object]:
        return {
            inner for v in record.values()
            for inner in (v.values() if isinstance(v, dict) else (v,))
        }  # fmt: skip

    sheet_of = {snake_case(name): name for name in SHEETS}
    tables = {
        "Findings": document["findings"],
        "Who cannot create keys": [
            *document["who_cannot_create_keys"],
            *document["findings"][:10],  # the worst findings are shown there too
        ],
        **{sheet_of[name]: records for name, records in document["tables"].items()},
    }
    return {name for name, records in tables.items() if any(value in flat(r) for r in records)}


@pytest.mark.parametrize("value", [HOSTILE_USER, HOSTILE_PROJECT, HOSTILE_KEY])
def test_hostile_names_are_text_in_every_sheet_they_appear(
    hostile_audit: Audited, value: str
) -> None:
    sheets = _where(_open(hostile_audit), value)
    expected = _json_sheets(_json(hostile_audit), value)
    if value == HOSTILE_PROJECT:
        expected.add("Access matrix")  # a column heading there
    assert sheets == expected
    assert {"Users", "Projects", "API keys"} & sheets


def test_no_cell_of_the_hostile_workbook_is_a_formula(hostile_audit: Audited) -> None:
    with zipfile.ZipFile(hostile_audit.out / f"{STEM}.xlsx") as archive:
        sheets = [n for n in archive.namelist() if n.startswith("xl/worksheets/sheet")]
        assert len(sheets) == len(SHEETS)
        for name in sheets:
            assert not re.search(r"<f[ >]", archive.read(name).decode()), name


TRICKY = ["=1+1", "+1", "-1", "@x", "\t=1", "#N/A", "#REF!", "007", " padded ", "plain"]


def test_formula_like_and_error_like_text_reads_back_exactly(
    demo_report: ReportData, tmp_path: Path
) -> None:
    frame = pd.DataFrame({"Value": TRICKY, "Control": ["a\x01b"] + [""] * (len(TRICKY) - 1)})
    report = replace(demo_report, tables={"Users": frame})
    sheet = load_workbook(write_xlsx(report, tmp_path, "tricky"))["Users"]
    cells = [row[0] for row in sheet.iter_rows(min_row=2)]
    # A control character is shown escaped (XML cannot carry most of them, and a bidi
    # override would reorder what is read), so the tab-led formula is plain text.
    assert [c.value for c in cells] == [v.replace("\t", "\\t") for v in TRICKY]
    assert all(c.data_type == "s" for c in cells)
    assert [bool(c.quotePrefix) for c in cells] == [True] * 4 + [False] + [True] * 2 + [False] * 3
    assert sheet["B2"].value == "a\\x01b"


def test_text_past_excels_cell_limit_is_cut_and_says_so(
    demo_report: ReportData, tmp_path: Path
) -> None:
    report = replace(demo_report, tables={"Groups": pd.DataFrame({"Members": ["x" * 40_000]})})
    value = load_workbook(write_xlsx(report, tmp_path, "long"))["Groups"]["A2"].value
    assert len(value) == 32_767
    assert value.endswith("[cut: 40,000 characters; the json report has them all]")


def test_a_query_result_is_a_one_table_workbook(tmp_path: Path) -> None:
    frame = pd.DataFrame({"Name": [HOSTILE_USER, "plain"], "Keys": [2, 0]})
    path = write_table_workbook(frame, "keys/per owner", tmp_path / "q.xlsx")
    assert path.stat().st_mode & 0o777 == 0o600
    book = load_workbook(path)
    (sheet,) = book.worksheets
    assert sheet.title == "keys-per owner"
    assert list(sheet.iter_rows(values_only=True)) == [
        ("Name", "Keys"),
        (HOSTILE_USER, 2),
        ("plain", 0),
    ]
    assert sheet["A2"].data_type == "s"
    assert list(sheet.tables.items()) == [("KeysPerOwner", "A1:B3")]


# -- readable sheets -------------------------------------------------------------------------


def test_every_cell_is_readable_where_it_is(demo_book: Workbook) -> None:
    # Checked cell by cell on every table sheet: no text runs into the next cell (longer
    # than its column, it wraps and its row is tall enough), times are dates, booleans
    # are words, and nothing reads "[]" (which a person takes for "nothing").
    for name in SHEETS:
        if name in ("Who cannot create keys", "Access matrix"):
            continue  # laid out on their own (tests/test_matrix.py, the first-sheet tests)
        sheet = demo_book[name]
        widths = {c.column_letter: sheet.column_dimensions[c.column_letter].width for c in sheet[1]}
        assert all(8 <= w <= 60 for w in widths.values()), (name, widths)
        for row in sheet.iter_rows(min_row=2):
            for cell in row:
                value = cell.value
                assert not isinstance(value, bool), (name, cell.coordinate)
                assert value != "[]", (name, cell.coordinate)
                if isinstance(value, datetime):
                    assert cell.number_format == "yyyy-mm-dd hh:mm:ss", (name, cell.coordinate)
                if isinstance(value, str) and len(value) > widths[cell.column_letter]:
                    assert cell.alignment.wrap_text, (name, cell.coordinate, value)
                    height = sheet.row_dimensions[cell.row].height
                    assert height is not None and height >= 30, (name, cell.coordinate)


def test_keys_roles_and_invites_read_as_words(demo_book: Workbook) -> None:
    def records(name: str) -> list[dict[str, object]]:
        rows = list(demo_book[name].iter_rows(values_only=True))
        return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]

    keys = {r["Name"]: r for r in records("API keys")}
    assert (keys["bob-laptop"]["Restriction"], keys["bob-laptop"]["Scopes"]) == (
        "all",
        "All (unrestricted)",
    )
    assert keys["grace-responses"]["Restriction"] == "restricted"
    assert keys["grace-responses"]["Scopes"] == (
        "api.responses.write, api.model.chat_completions.request"
    )
    assert {r["Restriction"] for r in keys.values()} <= {
        "all",
        "read only",
        "restricted",
        "unknown",
    }
    roles = records("Roles & permissions")
    viewer = next(r for r in roles if r["Name"] == "viewer" and r["Built-in"] == "Yes")
    assert str(viewer["Permissions"]).endswith("(the catalog's preset project_viewer)")
    assert "api.organization.projects.api_keys.read" in str(viewer["Permissions"])
    assert {r["Built-in"] for r in roles} == {"Yes", "No"}
    invites = {r["Email"]: r for r in records("Invites")}
    assert invites["kate@example.com"]["Projects"] == "Research (member)"
    assert {r["SCIM managed"] for r in records("Groups")} <= {"Yes", "No"}
