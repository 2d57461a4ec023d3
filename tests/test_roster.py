"""An HR/IdP roster: ``orgaudit audit --roster`` on the demo org, the roster as untrusted
input (one line naming the row, exit 2), ``[roster]`` in ``orgaudit.toml``, and the
findings' basis following the roster.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import jsonschema
import pandas as pd
import pytest

from orgaudit.checks import CHECKS, CHECKS_BY_ID
from orgaudit.checks import roster as roster_module
from orgaudit.checks.config import load_settings
from orgaudit.checks.derived import findings_basis
from orgaudit.checks.findings import AuditSettings, run_checks
from orgaudit.checks.roster import Roster, RosterColumns, load_roster, roster_standing
from orgaudit.errors import ConfigError

from support import Audited, Run, load_analysis, run_cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DEMO_USERS = {
    "alice@example.com",
    "bob@example.com",
    "carol@example.com",
    "dave@example.com",
    "erin@example.com",
    "frank@example.com",
    "grace@example.com",
    "heidi@example.com",
    "ivan@example.com",
    "oscar@example.com",
    "peggy@example.com",
}
ROSTER_CHECKS = ("user-terminated", "user-not-in-roster")


def _write(path: Path, text: str, *, bom: bool = False) -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def _audit(audited: Audited, tmp_path: Path, *args: str | Path) -> Run:
    """``orgaudit audit --offline`` on a copy of the audited database, json only."""
    db = tmp_path / "copy.db"
    if not db.exists():
        shutil.copyfile(audited.db, db)
    return run_cli(
        "audit", "--offline", "--db", db, "--out", tmp_path / "out", "--format", "json",
        *args, cwd=tmp_path,
    )  # fmt: skip


def _reported(tmp_path: Path) -> dict[str, dict[str, str]]:
    """check id -> subject name -> message, from the json report the audit wrote."""
    document = json.loads((tmp_path / "out" / "orgaudit-snapshot-1.json").read_text())
    found: dict[str, dict[str, str]] = {}
    for finding in document["findings"]:
        found.setdefault(finding["check"], {})[finding["subject"]["name"]] = finding["message"]
    return found


def _one_line_error(run: Run) -> str:
    assert run.returncode == 2, run
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("orgaudit: error: "), run.stderr
    return lines[0]


# -- the audit with a roster ------------------------------------------------------------------


def test_an_audit_with_a_roster_flags_leavers_and_strangers(
    demo_audit: Audited, tmp_path: Path
) -> None:
    # A spreadsheet's export: a byte-order mark, headers and values in any case, spaces,
    # an extra column, a blank row, a person listed twice with the same status.
    roster = _write(
        tmp_path / "hr.csv",
        "Department, EMAIL ,Status\r\n"
        "Platform,ALICE@example.com , Active\r\n"
        "Platform,bob@example.com,ACTIVE\r\n"
        ",,\r\n"
        "Research,Carol@Example.com,Terminated\r\n"
        "Research,carol@example.com,terminated\r\n"
        'Payments,"dave@example.com",active\r\n'
        "Elsewhere,nobody@example.com,terminated\r\n",
        bom=True,
    )
    run = _audit(demo_audit, tmp_path, "--roster", roster)
    assert run.returncode == 0, run
    found = _reported(tmp_path)
    assert set(found["user-terminated"]) == {"carol@example.com"}
    assert found["user-terminated"]["carol@example.com"] == (
        "carol@example.com (org reader) is a member of the organization: terminated in hr.csv"
    )
    absent = DEMO_USERS - {"alice@example.com", "bob@example.com", "carol@example.com"}
    assert set(found["user-not-in-roster"]) == absent - {"dave@example.com"}
    assert found["user-not-in-roster"]["frank@example.com"] == (
        "frank@example.com (org owner) is a member of the organization: not in hr.csv"
    )
    document = json.loads((tmp_path / "out" / "orgaudit-snapshot-1.json").read_text())
    schema = json.loads((ROOT / "docs" / "schemas" / "report.schema.json").read_text())
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
    severities = {f["check"]: f["severity"] for f in document["findings"]}
    assert (severities["user-terminated"], severities["user-not-in-roster"]) == ("high", "medium")
    assert "1 user-terminated" in run.stdout and "7 user-not-in-roster" in run.stdout


def test_without_a_roster_the_roster_checks_are_off(demo_audit: Audited) -> None:
    findings = run_checks(CHECKS, load_analysis(demo_audit.db), AuditSettings())
    assert not [f for f in findings if f.check_id in ROSTER_CHECKS]
    assert {c for c in ROSTER_CHECKS if "(off without --roster)" in CHECKS_BY_ID[c].flags} == set(
        ROSTER_CHECKS
    )


def test_a_roster_listing_everyone_as_active_flags_nobody(demo_audit: Audited) -> None:
    roster = Roster("all.csv", "0" * 64, people=dict.fromkeys(DEMO_USERS, True))
    findings = run_checks(CHECKS, load_analysis(demo_audit.db), AuditSettings(roster=roster))
    assert not [f for f in findings if f.check_id in ROSTER_CHECKS]


def test_a_config_renames_the_columns_and_the_status_values(
    demo_audit: Audited, tmp_path: Path
) -> None:
    config = tmp_path / "orgaudit.toml"
    config.write_text(
        '[roster]\nemail_column = "Work e-mail"\nstatus_column = "Employment"\n'
        'active_values = ["Employed", "on leave"]\nterminated_values = ["Left", "Fired"]\n'
    )
    people = "\n".join(f"{e},Employed" for e in sorted(DEMO_USERS - {"dave@example.com"}))
    roster = _write(
        tmp_path / "idp.csv",
        f"work e-mail,employment\n{people}\nDAVE@example.com,  LEFT \nzed@example.com,On Leave\n",
    )
    run = _audit(demo_audit, tmp_path, "--roster", roster, "--config", config)
    assert run.returncode == 0, run
    found = _reported(tmp_path)
    assert set(found["user-terminated"]) == {"dave@example.com"}
    assert "user-not-in-roster" not in found
    # The default columns no longer apply.
    default = _write(tmp_path / "default.csv", "email,status\nalice@example.com,active\n")
    line = _one_line_error(_audit(demo_audit, tmp_path, "--roster", default, "--config", config))
    assert "row 1: no e-mail column 'Work e-mail' (its columns: 'email', 'status')" in line


# -- the roster is untrusted input: one line naming the row, exit 2 ---------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mail,status\na@example.com,active\n", "row 1: no e-mail column 'email' (its columns: "
         "'mail', 'status'); name the e-mail and status columns with [roster] email_column and "
         "status_column in orgaudit.toml"),
        ("email,state\na@example.com,active\n", "row 1: no status column 'status'"),
        ("email,status,Email\n", "row 1: two columns are named 'email' (columns 1 and 3)"),
        ("email,status\na@example.com,active\n,active\n", "row 3: empty e-mail (column 'email')"),
        ("email,status\na@example.com,active\n  ,terminated\n", "row 3: empty e-mail"),
        ("email,status\na@example.com,active\nb@example.com,on leave\n",
         "row 3: status 'on leave' of 'b@example.com' is neither an active nor a terminated "
         "value (active: 'active'; terminated: 'terminated'; [roster] active_values and "
         "terminated_values in orgaudit.toml list them)"),
        ("email,status\na@example.com\n", "row 2: status '' of 'a@example.com' is neither"),
        ("email,status\na@example.com,active\n\nb@example.com,active\nA@Example.com,terminated\n",
         "row 5: 'A@Example.com' is listed as terminated here and as active in row 2"),
        ('email,status\n"a@example.com\nstill a@",active\nb@example.com,bogus\n',
         "row 3: status 'bogus'"),  # a quoted line break does not start a row
        ("", "roster.csv: empty; expected a header row naming the columns 'email' and 'status'"),
    ],
)  # fmt: skip
def test_a_malformed_roster_is_one_line_naming_the_row(
    demo_audit: Audited, tmp_path: Path, text: str, message: str
) -> None:
    roster = _write(tmp_path / "roster.csv", text)
    line = _one_line_error(_audit(demo_audit, tmp_path, "--roster", roster))
    assert f"roster {roster}" in line
    assert message in line
    assert not (tmp_path / "out").exists()  # nothing was audited


@pytest.mark.parametrize(("bom", "byte"), [(b"", 41), (b"\xef\xbb\xbf", 44)])
def test_a_roster_that_is_not_utf8_names_the_row(
    demo_audit: Audited, tmp_path: Path, bom: bytes, byte: int
) -> None:
    roster = tmp_path / "latin1.csv"
    roster.write_bytes(
        bom + b'email,status\n"a@example.com",active\n"Jos\xe9@example.com",active\n'
    )
    line = _one_line_error(_audit(demo_audit, tmp_path, "--roster", roster))
    assert f"roster {roster} row 3: not UTF-8 text (byte {byte}); save it as CSV UTF-8" in line


@pytest.mark.parametrize("where", ["missing", "folder"])
def test_an_unreadable_roster_is_one_line(demo_audit: Audited, tmp_path: Path, where: str) -> None:
    roster = tmp_path / "nope.csv" if where == "missing" else tmp_path
    line = _one_line_error(_audit(demo_audit, tmp_path, "--roster", roster))
    assert f"cannot read the roster {roster}: " in line


def test_a_roster_too_large_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(roster_module, "MAX_ROSTER_BYTES", 100)
    big = _write(tmp_path / "big.csv", "email,status\n" + "a@example.com,active\n" * 10)
    with pytest.raises(ConfigError, match=r"big\.csv: larger than 100 bytes \(50 MB\)"):
        load_roster(big, RosterColumns())
    monkeypatch.setattr(roster_module, "MAX_ROSTER_BYTES", 50 * 1024 * 1024)
    monkeypatch.setattr(roster_module, "MAX_ROSTER_ROWS", 3)
    rows = _write(tmp_path / "rows.csv", "email,status\n" + "a@example.com,active\n" * 4)
    with pytest.raises(ConfigError, match=r"rows\.csv row 5: more than 3 rows after the header"):
        load_roster(rows, RosterColumns())
    _write(rows, "email,status\n" + "a@example.com,active\n" * 3)
    assert load_roster(rows, RosterColumns()).people == {"a@example.com": True}


def test_a_field_too_large_for_csv_is_one_line(tmp_path: Path) -> None:
    roster = _write(tmp_path / "wide.csv", "email,status\nb@example.com,active\n" + "x" * 200_000)
    with pytest.raises(ConfigError, match=r"wide\.csv row 3: not valid CSV: field larger") as info:
        load_roster(roster, RosterColumns())
    assert "\n" not in str(info.value)


def test_the_readme_shows_the_error_a_bad_status_gives(demo_audit: Audited, tmp_path: Path) -> None:
    _write(
        tmp_path / "hr.csv",
        "email,status\nalice@example.com,active\ncarol@example.com,on leave\n",
    )
    line = _one_line_error(_audit(demo_audit, tmp_path, "--roster", "hr.csv"))
    assert f"$ orgaudit audit --offline --roster hr.csv\n{line}\n(exit 2)" in README.read_text()


# -- loading ----------------------------------------------------------------------------------


def test_a_roster_is_read_with_a_bom_in_any_case(tmp_path: Path) -> None:
    text = "EMAIL,Status\n Alice@Example.COM ,ACTIVE\nbob@example.com,Terminated\n"
    with_bom = load_roster(_write(tmp_path / "a.csv", text, bom=True), RosterColumns())
    without = load_roster(_write(tmp_path / "b.csv", text), RosterColumns())
    assert (
        with_bom.people
        == without.people
        == {
            "alice@example.com": True,
            "bob@example.com": False,
        }
    )
    assert with_bom.name == "a.csv"
    assert with_bom.sha256 == hashlib.sha256((tmp_path / "a.csv").read_bytes()).hexdigest()
    assert with_bom.sha256 != without.sha256


def test_roster_standing_matches_emails_and_leaves_out_service_accounts() -> None:
    users = pd.DataFrame(
        {
            "id": ["u_kept", "u_gone", "u_new", "u_blank", "u_none", "u_bot"],
            "email": [" Kept@Example.com", "GONE@example.com", "new@example.com", "  ", None,
                      "bot@example.com"],
            "name": ["Kept", "Gone", "New", "Blank", "None", "Bot"],
            "role": ["reader"] * 6,
            "is_service_account": pd.array([0, 0, None, 0, 0, 1], dtype="Int64"),
        }
    )  # fmt: skip
    roster = Roster(
        "hr.csv",
        "0" * 64,
        people={"kept@example.com": True, "gone@example.com": False},
    )
    standing = roster_standing(users, roster)
    assert list(standing.columns) == ["principal_id", "email", "standing", "reason"]
    assert standing.to_dict("records") == [
        {"principal_id": "u_gone", "email": "GONE@example.com", "standing": "terminated",
         "reason": "terminated in hr.csv"},
        {"principal_id": "u_new", "email": "new@example.com", "standing": "absent",
         "reason": "not in hr.csv"},
        {"principal_id": "u_blank", "email": "  ", "standing": "absent",
         "reason": "no e-mail to match against hr.csv"},
        {"principal_id": "u_none", "email": None, "standing": "absent",
         "reason": "no e-mail to match against hr.csv"},
    ]  # fmt: skip
    empty = roster_standing(users.iloc[0:0], roster)
    assert empty.empty and list(empty.columns) == list(standing.columns)


# -- [roster] in orgaudit.toml ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[roster]\nemail = "mail"\n', "line 2: unknown roster setting 'email' (expected "
         "email_column, status_column, active_values, terminated_values)"),
        ('[roster]\nemail_column = ""\n', "line 2: [roster] email_column must be a non-empty "
         "string"),
        ("[roster]\nstatus_column = 3\n", "line 2: [roster] status_column must be a non-empty"),
        ("[roster]\nactive_values = []\n", "line 2: [roster] active_values must be a non-empty "
         "list of non-empty strings"),
        ('[roster]\nterminated_values = "left"\n', "line 2: [roster] terminated_values must be"),
        ('[roster]\nactive_values = ["ok", " "]\n', "line 2: [roster] active_values must be"),
        ('[roster]\nactive_values = ["Active", "leave"]\nterminated_values = ["LEAVE"]\n',
         "line 3: [roster] 'LEAVE' is both an active and a terminated value"),
        ('[roster]\nterminated_values = ["active"]\n',
         "line 2: [roster] 'active' is both an active and a terminated value"),
        ('[roster]\nemail_column = "Status"\n',
         "line 2: [roster] email_column and status_column must name two columns"),
        ('roster = "hr.csv"\n', "line 1: roster must be a [roster] table"),
    ],
)  # fmt: skip
def test_a_malformed_roster_section_is_one_line_naming_the_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "orgaudit.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, frozenset(CHECKS_BY_ID))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_the_roster_section_sets_how_the_roster_is_read(tmp_path: Path) -> None:
    config = tmp_path / "orgaudit.toml"
    config.write_text(
        '[roster]\nemail_column = "Mail"\nstatus_column = "State"\n'
        'active_values = ["Current"]\nterminated_values = ["Gone", "Retired"]\n'
    )
    roster = _write(tmp_path / "r.csv", "mail,state\na@x.example,current\nb@x.example,RETIRED\n")
    settings = load_settings(config, frozenset(CHECKS_BY_ID), roster=roster)
    assert settings.roster is not None
    assert settings.roster.columns == RosterColumns(
        "Mail", "State", ("Current",), ("Gone", "Retired")
    )
    assert settings.roster.people == {"a@x.example": True, "b@x.example": False}
    assert load_settings(config, frozenset(CHECKS_BY_ID)).roster is None  # no --roster


# -- the findings' basis ----------------------------------------------------------------------


def test_a_different_roster_changes_the_findings_basis(demo_audit: Audited, tmp_path: Path) -> None:
    analysis = load_analysis(demo_audit.db)
    first = _write(tmp_path / "hr.csv", "email,status\nalice@example.com,active\n")
    roster = load_roster(first, RosterColumns())
    settings = AuditSettings(roster=roster)
    basis = findings_basis(analysis, settings)
    same = AuditSettings(roster=load_roster(first, RosterColumns()))
    assert findings_basis(analysis, same) == basis
    _write(first, "email,status\nalice@example.com,terminated\n")
    changed = load_roster(first, RosterColumns())
    other_columns = replace(roster, columns=RosterColumns(active=("active", "current")))
    renamed = replace(roster, name="idp.csv")
    bases = {
        basis,
        findings_basis(analysis, AuditSettings(roster=changed)),
        findings_basis(analysis, AuditSettings(roster=other_columns)),
        findings_basis(analysis, AuditSettings(roster=renamed)),
        findings_basis(analysis, AuditSettings()),
    }
    assert len(bases) == 5
    # The settings holding a roster are still plain data.
    assert '"people": {"alice@example.com": true}' in json.dumps(asdict(settings), default=str)


def test_without_a_roster_the_basis_is_what_it_was(demo_audit: Audited) -> None:
    """Databases audited before rosters existed keep their stored findings' basis."""
    analysis = load_analysis(demo_audit.db)
    settings = AuditSettings(stale_days=30)
    before = {k: v for k, v in asdict(settings).items() if k != "roster"}
    described = json.dumps(before, sort_keys=True, default=str)
    expected = hashlib.sha256(f"{analysis.catalog.digest}\n{described}".encode()).hexdigest()
    assert findings_basis(analysis, settings) == expected


def test_roster_columns_refuse_what_the_config_refuses() -> None:
    with pytest.raises(ConfigError, match="both an active and a terminated value"):
        RosterColumns(active=("Left",), terminated=(" left ",))
    with pytest.raises(ConfigError, match="must name two columns"):
        RosterColumns(email="Status", status="status")
    with pytest.raises(ConfigError, match="must not be empty"):
        RosterColumns(active=())
