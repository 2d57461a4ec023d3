"""The audit end to end: findings on the demo org, the four report formats, exit codes.

The demo org is pulled over real HTTP with the clock fixed, so every report is
reproducible and compared with its golden file (``pytest --regen-golden`` rewrites them).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from orgaudit.app.audit import AuditOptions, parse_formats
from orgaudit.checks import CHECKS, CHECKS_BY_ID
from orgaudit.checks.config import load_settings
from orgaudit.checks.findings import Finding, exit_code_for
from orgaudit.cli import main
from orgaudit.errors import ConfigError, ExitCode, UsageError
from orgaudit.model import analysis as analysis_module
from orgaudit.render.report import WRITERS
from orgaudit.settings import AdminKey
from orgaudit.simulator import Simulator
from orgaudit.simulator.demo import demo_org
from orgaudit.simulator.org import OrgBuilder
from orgaudit.vocabulary import FindingStatus, Severity

from support import (
    ADMIN_KEY,
    FIXED,
    HOSTILE_PROJECT,
    HOSTILE_USER,
    PULL,
    Audited,
    check_golden,
    fast_settings,
    load_analysis,
    pull_and_analyze,
    pull_fixed,
    run_audit,
)


def _ids(findings: tuple[Finding, ...], check_id: str) -> set[str]:
    return {f.subject_name for f in findings if f.check_id == check_id}


# Each curated demo case and the finding that must name it.
EXPECTED_DEMO_FINDINGS = {
    "user-cannot-create-keys": {"dave@example.com", "oscar@example.com"},
    "user-no-project": {"peggy@example.com"},  # frank is an org owner: owner rights everywhere
    "key-scope-trap": {"grace-responses"},
    "key-owner-without-access": {"heidi-old", "victor-proxy"},
    "key-unrestricted": {"bob-laptop", "payments-bot-prod", "legacy-batch", "victor-proxy"},
    # Spend over the usage window (the simulator's history follows each key's last use).
    "key-spend-owner-gone": {"victor-proxy"},
    "key-unrestricted-spend": {"bob-laptop", "payments-bot-prod", "victor-proxy"},
    "key-idle": {"heidi-old"},  # last used 45 days ago: before the 30-day window
    "role-granted-by-departed": {"Payments Key Managers"},
    "key-unused": {"alice-never-used", "legacy-batch"},
    "key-scopes-unknown": {"alice-ci"},
    "key-in-archived-project": {"legacy-batch"},
    "service-account-owner": {"payments-bot"},
    "invite-pending": {"kate@example.com"},
    "invite-expired": {"judy@example.com"},
    "admin-key-no-expiry": {"audit-key"},
    "admin-key-unused": {"old-admin"},
    "key-expiring": {"research-etl-rotating"},
    "key-expired": {"carol-expired"},
    "key-no-expiry-too-old": set(),  # off without a [policy]
}


@pytest.mark.parametrize("check_id", sorted(EXPECTED_DEMO_FINDINGS))
def test_every_curated_demo_case_is_the_right_finding(demo_audit: Audited, check_id: str) -> None:
    assert _ids(demo_audit.result.findings, check_id) == EXPECTED_DEMO_FINDINGS[check_id]


def test_the_worse_cases_are_escalated(demo_audit: Audited) -> None:
    severities = {(f.check_id, f.subject_name): f.severity for f in demo_audit.result.findings}
    assert severities[("key-unrestricted", "payments-bot-prod")] == "high"  # a service account
    assert severities[("key-unrestricted", "bob-laptop")] == "medium"
    assert severities[("invite-expired", "judy@example.com")] == "medium"  # an owner invite
    assert severities[("invite-pending", "kate@example.com")] == "info"
    assert severities[("key-expiring", "research-etl-rotating")] == "high"  # SA, in use


def test_a_complete_pull_leaves_no_unknown_finding(demo_audit: Audited) -> None:
    assert {f.status for f in demo_audit.result.findings} == {"open"}
    assert not _ids(demo_audit.result.findings, "source-unavailable")


def test_findings_are_stored_back_into_the_snapshot(demo_audit: Audited) -> None:
    import sqlite3

    with sqlite3.connect(demo_audit.db) as conn:
        stored = conn.execute("SELECT check_id, subject_name FROM findings").fetchall()
    expected = {(f.check_id, f.subject_name) for f in demo_audit.result.findings}
    assert set(stored) == expected


# -- golden files -------------------------------------------------------------------------


def test_json_report_matches_golden(demo_audit: Audited, regen_golden: bool) -> None:
    text = (demo_audit.out / "orgaudit-snapshot-1.json").read_text(encoding="utf-8")
    check_golden("demo/report.json", text, regen_golden)


def test_markdown_report_matches_golden(demo_audit: Audited, regen_golden: bool) -> None:
    text = (demo_audit.out / "orgaudit-snapshot-1.md").read_text(encoding="utf-8")
    check_golden("demo/report.md", text, regen_golden)


def test_csv_reports_match_golden(demo_audit: Audited, regen_golden: bool) -> None:
    folder = demo_audit.out / "orgaudit-snapshot-1-csv"
    files = sorted(folder.glob("*.csv"))
    assert {f.name for f in files} >= {"findings.csv", "users.csv", "api-keys.csv"}
    for path in files:
        check_golden(f"demo/csv/{path.name}", path.read_text(encoding="utf-8"), regen_golden)


def test_json_report_has_its_documented_top_level(demo_audit: Audited) -> None:
    document = json.loads((demo_audit.out / "orgaudit-snapshot-1.json").read_text())
    assert set(document) == {
        "schema_version",
        "snapshot",
        "who_cannot_create_keys",
        "coverage",
        "findings",
        "checks",
        "tables",
    }
    assert document["snapshot"]["as_of"] == "2026-06-01T12:00:00Z"
    assert len(document["findings"]) == len(demo_audit.result.findings)


def test_report_files_are_owner_only(demo_audit: Audited) -> None:
    for path in demo_audit.out.rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o077 == 0, path


# -- formula injection --------------------------------------------------------------------


def test_formula_like_names_are_text_in_csv(hostile_audit: Audited) -> None:
    folder = hostile_audit.out / "orgaudit-snapshot-1-csv"
    users = (folder / "users.csv").read_text(encoding="utf-8")
    projects = (folder / "projects.csv").read_text(encoding="utf-8")
    keys = (folder / "api-keys.csv").read_text(encoding="utf-8")
    # OWASP: a leading single quote makes the cell text; nothing starts with a live formula.
    assert "'=HYPERLINK" in users
    assert "'@SUM(1)" in projects
    assert "'+cmd|" in keys
    for text in (users, projects, keys):
        for line in text.splitlines():
            for cell in line.split(","):
                assert not cell.lstrip('"').startswith(("=", "+", "@")), cell


def test_formula_like_names_survive_as_plain_text_in_json_and_markdown(
    hostile_audit: Audited,
) -> None:
    document = json.loads((hostile_audit.out / "orgaudit-snapshot-1.json").read_text())
    names = {row["name"] for row in document["tables"]["users"]}
    assert HOSTILE_USER in names
    assert HOSTILE_PROJECT in {row["name"] for row in document["tables"]["projects"]}
    markdown = (hostile_audit.out / "orgaudit-snapshot-1.md").read_text()
    assert HOSTILE_PROJECT in markdown


# -- exit codes, formats, config -----------------------------------------------------------


def _finding(severity: str, suppressed: bool = False, status: str = "open") -> Finding:
    return Finding(
        "key-unused",
        "Unused key",
        Severity(severity),
        FindingStatus(status),
        "api_key",
        "key_1",
        "k",
        None,
        None,
        "m",
        "fix",
        "documented",
        suppressed,
        "",
    )


def test_exit_code_follows_fail_on_and_ignores_suppressed_findings() -> None:
    findings = (_finding("medium"), _finding("high", suppressed=True))
    assert exit_code_for(findings, None) is ExitCode.OK
    assert exit_code_for(findings, Severity.MEDIUM) is ExitCode.FINDINGS
    assert exit_code_for(findings, Severity.HIGH) is ExitCode.OK  # the high one is suppressed
    unknown = (_finding("high", status="unknown"),)
    assert exit_code_for(unknown, Severity.HIGH) is ExitCode.FINDINGS


def test_cli_format_choices_are_the_registry(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "orgaudit", "audit", "--help"],
        capture_output=True,
        text=True,
        env={"COLUMNS": "200", "PATH": ""},
        check=False,
    )
    assert run.returncode == 0
    for name in WRITERS:
        assert name in run.stdout
    assert parse_formats(["xlsx,csv", "json", "csv"], ("md",)) == ("xlsx", "csv", "json")
    with pytest.raises(UsageError, match="choose from xlsx, csv, json, md"):
        AuditOptions(out_dir=tmp_path, formats=("pdf",))


def _run(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orgaudit", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )


def test_fail_on_and_suppressions_decide_the_exit_code(demo_audit: Audited, tmp_path: Path) -> None:
    out = tmp_path / "out"
    failing = _run(
        "audit",
        "--offline",
        "--db",
        demo_audit.db,
        "--out",
        out,
        "--fail-on",
        "high",
        "--format",
        "md",
        cwd=tmp_path,
    )
    assert failing.returncode == 1, failing.stderr
    assert "the audit fails (exit 1)" in failing.stdout
    config = tmp_path / "orgaudit.toml"
    config.write_text(
        "\n".join(
            f'[[suppress]]\ncheck = "{check}"\nsubject = "{subject}"\nreason = "accepted"\n'
            f'owner = "alice@example.com"\nexpires = 2026-12-31\n'
            for check, subject in [
                ("key-scope-trap", "grace-*"),
                ("key-owner-without-access", "heidi-old"),
                ("key-owner-without-access", "victor-proxy"),
                ("key-spend-owner-gone", "victor-proxy"),
                ("key-unrestricted", "payments-bot-*"),
                ("key-expiring", "research-etl-rotating"),
            ]
        )
    )
    passing = _run(
        "audit",
        "--offline",
        "--db",
        demo_audit.db,
        "--out",
        out,
        "--fail-on",
        "high",
        "--config",
        config,
        "--format",
        "md",
        cwd=tmp_path,
    )
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "6 suppressed" in passing.stdout
    markdown = (out / "orgaudit-snapshot-1.md").read_text()
    assert "accepted (owner alice@example.com, until 2026-12-31)" in markdown


def test_an_expired_suppression_no_longer_suppresses_and_says_so(demo_audit: Audited) -> None:
    from orgaudit.checks.findings import run_checks

    config_text = (
        '[[suppress]]\ncheck = "key-scope-trap"\nsubject = "grace-responses"\n'
        'reason = "temporary"\nowner = "alice"\nexpires = 2026-05-01\n'
    )
    path = demo_audit.out / "expired.toml"
    path.write_text(config_text)
    settings = load_settings(path, frozenset(CHECKS_BY_ID))
    findings = run_checks(CHECKS, load_analysis(demo_audit.db, None, None), settings)
    trap = next(f for f in findings if f.check_id == "key-scope-trap")
    assert not trap.suppressed
    assert trap.suppression.startswith("suppression expired on 2026-05-01")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[thresholds]\nstale_days = 0\n", "line 2: stale_days must be a whole number"),
        ('[severity]\n"no-such-check" = "high"\n', "line 2: unknown check 'no-such-check'"),
        ('[severity]\n"key-unused" = "urgent"\n', "line 2: severity of key-unused must be one of"),
        ('[[suppress]]\ncheck = "key-unused"\nsubject = "x"\n', "lacks expires, owner, reason"),
        ("[thresholds\n", "line 1"),
        ("[bogus]\n", "line 1: unknown section 'bogus'"),
        ("[policy]\nmax_key_age = 30\n", "line 2: unknown policy 'max_key_age'"),
        ("[policy]\nmax_key_age_days = 0\n", "line 2: max_key_age_days must be a whole number"),
        ("[thresholds]\nexpiring_within_days = true\n", "line 2: expiring_within_days must be"),
        ('policy = "strict"\n', "line 1: policy must be a [policy] table"),
    ],
)
def test_a_malformed_config_is_one_line_naming_the_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "orgaudit.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")) as info:
        load_settings(path, frozenset(CHECKS_BY_ID))
    assert "\n" not in str(info.value)


def test_a_source_left_unread_makes_unknown_findings_not_silent_passes(tmp_path: Path) -> None:
    from orgaudit.simulator import Fault

    db, out = tmp_path / "db", tmp_path / "out"
    fault = Fault(
        "status", path="^/organization/audit_logs", status=403, times=-1, message="Forbidden"
    )
    with Simulator(demo_org(int(FIXED.timestamp())), admin_key=ADMIN_KEY, faults=[fault]) as sim:
        pull_and_analyze(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, db, clock=lambda: FIXED)
    result = run_audit(db, AuditOptions(out_dir=out, formats=("json",)))
    by_check = {f.check_id: f for f in result.findings if f.subject_type in ("check", "source")}
    assert by_check["key-scope-trap"].status == "unknown"
    assert by_check["key-unrestricted"].status == "unknown"
    assert "audit_key_events" in by_check["source-unavailable"].message
    assert "key-scope-trap" in by_check["source-unavailable"].message
    assert exit_code_for(result.findings, Severity.HIGH) is ExitCode.FINDINGS


def test_readme_lists_every_check_of_the_registry() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for check in CHECKS:
        assert f"| `{check.id}` | {check.severity} |" in readme, check.id


def test_key_exceeds_owner_names_the_scopes_the_owner_lacks(tmp_path: Path) -> None:
    from orgaudit.checks.findings import AuditSettings, run_checks

    builder = OrgBuilder("org_exceeds", int(FIXED.timestamp()))
    viewer = builder.user("Vic Viewer", "vic@example.com", user_id="user_vic")
    member = builder.user("Meg Member", "meg@example.com", user_id="user_meg")
    project = builder.project("Ops", project_id="proj_ops")
    builder.member(project, viewer, "viewer")
    builder.member(project, member, "member")
    # Created while Vic was a member; a viewer's roles grant neither scope any more.
    builder.key(project, viewer, "vic-old", scopes=["api.responses.write", "model.request"])
    builder.key(project, member, "meg-ok", scopes=["api.responses.write", "model.request"])
    builder.key(project, member, "meg-new-scope", scopes=["api.vector_stores.write"])
    db = tmp_path / "db"
    pull_fixed(builder.org, db)
    findings = run_checks(CHECKS, load_analysis(db, None, None), AuditSettings())
    exceeding = {f.subject_name: f for f in findings if f.check_id == "key-exceeds-owner"}
    assert set(exceeding) == {"vic-old", "meg-new-scope"}
    assert exceeding["vic-old"].status == "open"
    assert "api.responses.write, model.request" in exceeding["vic-old"].message
    # A scope the catalog does not know cannot be judged: unknown, not a false alarm.
    assert exceeding["meg-new-scope"].status == "unknown"


def test_an_online_audit_works_out_the_access_model_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pull works it out to store it, and hands it on to the audit (it used to be
    # worked out again). Counted by wrapping the one function that computes it.
    calls: list[int] = []
    real = analysis_module.compute_access

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(analysis_module, "compute_access", counted)
    monkeypatch.setenv("OPENAI_ADMIN_KEY", ADMIN_KEY)
    with Simulator(demo_org(int(FIXED.timestamp())), admin_key=ADMIN_KEY) as sim:
        argv = ["orgaudit", "audit", "--base-url", sim.base_url, "--db", str(tmp_path / "db"),
                "--out", str(tmp_path / "out")]  # fmt: skip
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as done:
            main()
    assert done.value.code in (0, 1)
    assert len(calls) == 1


# -- the json contract ---------------------------------------------------------------------

REPORT_SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "schemas" / "report.schema.json"


@pytest.mark.parametrize("which", ["demo", "hostile"])
def test_the_json_report_is_valid_against_its_published_schema(
    which: str, demo_audit: Audited, hostile_audit: Audited
) -> None:
    import jsonschema

    audited = demo_audit if which == "demo" else hostile_audit
    document = json.loads((audited.out / "orgaudit-snapshot-1.json").read_text())
    schema = json.loads(REPORT_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
    assert document["schema_version"] == 2
    # Every key a script reads is snake_case, tables included.
    for records in [document["coverage"], document["checks"], *document["tables"].values()]:
        for record in records:
            assert all(key == key.lower() and " " not in key for key in record)


def test_a_finding_keeps_its_id_from_one_pull_to_the_next(tmp_path: Path) -> None:
    # The same unchanged org pulled a day apart: messages carry dates that move, the ids
    # do not, and every finding is found again under its id.
    ids = []
    for day, name in ((0, "first"), (1, "second")):
        db = tmp_path / f"{name}.db"
        org = demo_org(int(FIXED.timestamp()))
        with Simulator(org, admin_key=ADMIN_KEY) as sim:
            at = FIXED + timedelta(days=day)
            clock = partial(lambda moment: moment, at)
            pull_and_analyze(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, db, clock=clock)
        result = run_audit(db, AuditOptions(out_dir=tmp_path / name, formats=("json",)))
        document = json.loads(result.files[0].read_text())
        ids.append({f["finding_id"]: f["check"] for f in document["findings"]})
    assert ids[0] == ids[1]
    assert len(ids[0]) == len(set(ids[0])) > 10  # distinct per check, subject and project
