"""The access matrix tells its six states apart, in the table and in the workbook.

"Member, cannot" (the problem) is not "not a member" (expected); an archived project is
its own state whatever the roles; what could not be read is "cannot tell". Each cell's
state agrees with `orgaudit explain user` for that user and project, and each cell that
does not allow keys carries its reason in words, with no command to run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import load_workbook

from orgaudit.app.audit import AuditOptions
from orgaudit.explain import explain_user
from orgaudit.model.analysis import Analysis
from orgaudit.render.report.marks import MARK_MEANING, MatrixMark
from orgaudit.render.report.matrix import access_matrix
from orgaudit.render.report.xlsx_cells import MATRIX_COLOURS
from orgaudit.settings import AdminKey
from orgaudit.simulator import Fault, Simulator
from orgaudit.simulator.demo import demo_org

from support import ADMIN_KEY, FIXED, PULL, Audited, fast_settings, load_analysis, pull, run_audit

STEM = "orgaudit-snapshot-1"


@pytest.fixture(scope="module")
def demo(demo_audit: Audited) -> Analysis:
    return load_analysis(demo_audit.db)


def _cell(frame: object, user: str, project: str) -> str:
    return str(frame.loc[user, project])  # type: ignore[attr-defined]


def test_the_demo_shows_five_states_each_where_explain_says(demo: Analysis) -> None:
    matrix = access_matrix(demo)
    assert matrix.marks is not None and matrix.text is not None and matrix.reasons is not None
    expected = {
        ("bob@example.com", "Payments"): MatrixMark.CAN,  # a member
        ("frank@example.com", "Payments"): MatrixMark.CAN_BY_ORG_ROLE,  # an org owner
        ("dave@example.com", "Payments"): MatrixMark.BLOCKED,  # a viewer
        ("carol@example.com", "Payments"): MatrixMark.NOT_MEMBER,
        ("alice@example.com", "Legacy"): MatrixMark.ARCHIVED,  # even for an org owner
    }
    for (user, project), mark in expected.items():
        assert _cell(matrix.marks, user, project) == mark, (user, project)
    # Every cell agrees with explain: allowed states where it allows, and back.
    for user in matrix.marks.index:
        for project in matrix.marks.columns:
            [verdict] = explain_user(demo.snapshot, demo.model, demo.catalog, user, project)
            mark = _cell(matrix.marks, user, project)
            allows = mark in (MatrixMark.CAN, MatrixMark.CAN_BY_ORG_ROLE)
            assert allows == (verdict.decision == "allowed"), (user, project, mark)
            has_reason = _cell(matrix.reasons, user, project) != ""
            assert has_reason == (not allows), (user, project)


def test_reasons_are_words_with_the_fix_and_no_command(demo: Analysis) -> None:
    matrix = access_matrix(demo)
    assert matrix.reasons is not None and matrix.text is not None
    dave = _cell(matrix.reasons, "dave@example.com", "Payments")
    assert "a member, but their roles here (viewer) only let them read keys" in dave
    assert "make them a project member" in dave
    carol = _cell(matrix.reasons, "carol@example.com", "Payments")
    assert carol.startswith("not a member of this project; their org role (reader)")
    assert "archived" in _cell(matrix.reasons, "alice@example.com", "Legacy")
    assert not any("orgaudit" in str(v) for v in matrix.reasons.to_numpy().ravel())
    assert _cell(matrix.text, "frank@example.com", "Payments") == "can, by org role (owner)"
    assert _cell(matrix.text, "dave@example.com", "Payments").startswith("member, cannot (viewer)")


def test_what_could_not_be_read_is_cannot_tell(tmp_path: Path) -> None:
    # Project members' roles unreadable: a viewer might hold another role there.
    fault = Fault("status", path=r"^/projects/[^/]+/users/[^/]+/roles", status=403, times=-1)
    db = tmp_path / "db"
    with Simulator(demo_org(int(FIXED.timestamp())), admin_key=ADMIN_KEY, faults=[fault]) as sim:
        pull(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, db)
    analysis = load_analysis(db)
    matrix = access_matrix(analysis)
    assert matrix.marks is not None and matrix.reasons is not None
    assert _cell(matrix.marks, "dave@example.com", "Payments") == MatrixMark.UNKNOWN
    assert _cell(matrix.reasons, "dave@example.com", "Payments").startswith("cannot tell")
    # A member whose roles already allow it stays allowed: a union only grows.
    assert _cell(matrix.marks, "bob@example.com", "Payments") == MatrixMark.CAN


def test_the_workbook_colours_each_state_and_has_its_legend(
    demo_audit: Audited, tmp_path: Path
) -> None:
    book = load_workbook(demo_audit.out / f"{STEM}.xlsx")
    sheet = book["Access matrix"]
    rows = list(sheet.iter_rows())
    assert rows[0][0].value == "What each cell says"
    legend = {row[0].value: row for row in rows[1 : 1 + len(MatrixMark)]}
    assert set(legend) == {str(mark) for mark in MatrixMark}
    for mark in MatrixMark:
        cell, meaning = legend[str(mark)][0], legend[str(mark)][1]
        assert cell.fill.fgColor.rgb == "00" + MATRIX_COLOURS[mark]
        assert meaning.value == MARK_MEANING[mark]
    header = next(i for i, row in enumerate(rows) if row[0].value == "User")
    assert sheet.freeze_panes == f"B{header + 2}"
    projects = [c.value for c in rows[header]][1:]
    seen = set()
    for row in rows[header + 1 :]:
        for project, cell in zip(projects, row[1:], strict=True):
            mark = next(m for m in MatrixMark if str(cell.value).startswith(str(m)))
            seen.add(mark)
            assert cell.fill.fgColor.rgb == "00" + MATRIX_COLOURS[mark], (project, cell.value)
            allows = mark in (MatrixMark.CAN, MatrixMark.CAN_BY_ORG_ROLE)
            assert (cell.comment is None) == allows, (project, cell.value)
            if cell.comment is not None:
                assert "orgaudit explain" not in cell.comment.text
            if str(cell.value).endswith(" (contested)"):  # says so, and why
                assert cell.comment is not None
                assert "Contested: rests on rule" in cell.comment.text
    assert seen == set(MatrixMark) - {MatrixMark.UNKNOWN}


def test_matrix_states_survive_the_audit_with_an_unread_source(tmp_path: Path) -> None:
    fault = Fault("status", path=r"^/projects/[^/]+/users/[^/]+/roles", status=403, times=-1)
    db = tmp_path / "db"
    with Simulator(demo_org(int(FIXED.timestamp())), admin_key=ADMIN_KEY, faults=[fault]) as sim:
        pull(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, db)
    result = run_audit(db, AuditOptions(out_dir=tmp_path / "out", formats=("xlsx",)))
    sheet = load_workbook(result.files[0])["Access matrix"]
    values = [str(c.value) for row in sheet.iter_rows() for c in row if c.value]
    assert any(v.startswith(str(MatrixMark.UNKNOWN)) for v in values[len(MatrixMark) + 1 :])


# -- the access review --------------------------------------------------------------------


def test_the_access_review_has_every_principal_and_no_self_review(
    demo_audit: Audited, demo: Analysis
) -> None:
    book = load_workbook(demo_audit.out / f"{STEM}.xlsx")
    rows = list(book["Access review"].iter_rows(values_only=True))
    table = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    kinds = {r["Kind"] for r in table}
    assert kinds == {"user role", "service account role", "API key", "admin key"}
    # Every user (the one in no project too), service account, key and admin key.
    subjects = {r["Subject id"] for r in table}
    snapshot = demo.snapshot
    for table_name in ("users", "project_service_accounts", "project_api_keys", "admin_api_keys"):
        assert set(snapshot[table_name]["id"]) <= subjects, table_name
    # One row per role held: the access model's bindings, each once.
    bindings = demo.model.bindings
    assert sum(r["Kind"] in ("user role", "service account role") for r in table) == len(bindings)
    peggy = [r for r in table if r["Subject"] == "peggy@example.com"]
    assert [(r["Project"], r["Findings"]) for r in peggy] == [("(organization)", "user-no-project")]
    # A reviewer is suggested for every row, and is never the subject (nor a key's owner).
    names = demo.principal_names.set_index("principal_id")["name"]
    keys = snapshot["project_api_keys"].set_index("id")
    admin = snapshot["admin_api_keys"].set_index("id")
    owners = {**keys["owner_id"].to_dict(), **admin["owner_id"].to_dict()}
    for row in table:
        reviewers = str(row["Suggested reviewer"]).split(", ")
        assert reviewers and reviewers != [""], row
        subject = str(row["Subject id"])
        excluded = {names.get(subject), names.get(owners.get(subject))}
        assert not excluded & set(reviewers), row
    # A project's items go to its owners; the org's, and an owner's own, to the org's.
    dave_payments = next(
        r for r in table if r["Subject"] == "dave@example.com" and r["Project"] == "Payments"
    )
    assert dave_payments["Suggested reviewer"] == "alice@example.com"
    assert dave_payments["Findings"] == "user-cannot-create-keys"
    alice_org = next(
        r for r in table if r["Subject"] == "alice@example.com" and r["Project"] == "(organization)"
    )
    assert alice_org["Suggested reviewer"] == "frank@example.com"
    bob_laptop = next(r for r in table if r["Subject"] == "bob-laptop")
    assert bob_laptop["Access"] == "all: All (unrestricted)"
    assert bob_laptop["Last activity"] is not None
    assert "key-unrestricted" in str(bob_laptop["Findings"])
    assert {r["Decision"] for r in table} == {None}  # blank for the reviewer
