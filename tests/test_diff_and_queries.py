"""Saved queries, diffs between pulls, and pruning: real HTTP, real SQLite, real files."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orgaudit import store
from orgaudit.app.audit import AuditOptions
from orgaudit.checks.derived import findings_basis, stored_findings
from orgaudit.checks.diff import SECTIONS
from orgaudit.checks.findings import AuditSettings
from orgaudit.errors import UsageError
from orgaudit.settings import AdminKey
from orgaudit.simulator import Simulator
from orgaudit.simulator.demo import demo_builder
from orgaudit.store.database import SnapshotDatabase
from orgaudit.store.queries import default_pack, find_query, query_pack

from support import (
    ADMIN_KEY,
    NOW,
    PULL,
    fast_settings,
    load_analysis,
    prune,
    pull_and_analyze,
    run_audit,
    run_diff,
    run_query,
)


@dataclass(frozen=True)
class Pulled:
    db: Path


def _pull(sim: Simulator, db: Path) -> None:
    pull_and_analyze(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, db)


@pytest.fixture(scope="module")
def two_pulls(tmp_path_factory: pytest.TempPathFactory) -> Pulled:
    """The demo org pulled, changed through the simulator, and pulled again."""
    db = tmp_path_factory.mktemp("diff") / "db"
    b = demo_builder(NOW)
    with Simulator(b.org, admin_key=ADMIN_KEY) as sim:
        _pull(sim, db)
        b.user("Zoe New", "zoe@example.com", user_id="user_zoe")  # users added
        b.member("proj_research", "user_zoe", "member")
        b.remove_user("user_peggy")  # users removed
        b.set_org_role("user_bob", "owner")  # org role changed
        b.set_project_role("proj_payments", "user_dave", "member")  # project role changed
        b.add_group_member("group_000006", "user_carol")  # group membership changed
        key_manager = b.org.project_roles["proj_payments"][-1]["id"]
        b.set_role_permissions(
            key_manager, ["api.organization.projects.api_keys.read"], "proj_payments"
        )  # role permissions changed (erin loses key creation)
        b.key("proj_research", "user_zoe", "zoe-key", scopes=["model.request"])  # key created
        b.delete_key("proj_payments", b.key_id("proj_payments", "bob-laptop"))  # key deleted
        grace = b.key_id("proj_payments", "grace-responses")
        b.update_key_scopes(
            "proj_payments", grace, ["api.responses.write", "model.request"], days_ago=0
        )  # key scopes changed, and the scope trap resolved
        b.use_key("proj_payments", b.key_id("proj_payments", "alice-never-used"))  # newly used
        b.use_key("proj_research", b.key_id("proj_research", "carol-notebook"), days_ago=100)
        _pull(sim, db)
    return Pulled(db)


def _section(diff_dict: dict[str, Any], name: str) -> list[dict[str, str]]:
    """One kind's changes, each as names: its subject (a finding's with its check),
    project, before and after (empty where the json has null)."""
    return [
        {
            "subject": (f"{c['check']}: " if c["check"] else "") + c["subject"]["name"],
            "project": (c["project"] or {}).get("name") or "",
            "before": c["before"] or "",
            "after": c["after"] or "",
        }
        for c in diff_dict["changes"]
        if c["kind"] == name
    ]


def test_diff_lists_exactly_the_changes_made_between_pulls(two_pulls: Pulled) -> None:
    diff = run_diff(two_pulls.db).to_dict()
    assert (diff["from_snapshot"], diff["to_snapshot"]) == (1, 2)
    subjects = {name: [c["subject"] for c in _section(diff, name)] for name in SECTIONS}
    assert subjects["users added"] == ["zoe@example.com"]
    assert subjects["users removed"] == ["peggy@example.com"]
    assert _section(diff, "org roles changed") == [
        {"subject": "bob@example.com", "project": "", "before": "reader", "after": "owner"}
    ]
    roles = {
        (c["subject"], c["project"]): (c["before"], c["after"])
        for c in _section(diff, "project roles changed")
    }
    assert roles == {
        ("dave@example.com", "Payments"): ("viewer", "member"),
        ("zoe@example.com", "Research"): ("(none)", "member"),
    }
    assert subjects["group membership changed"] == ["carol@example.com in group Auditors"]
    assert subjects["role permissions changed"] == ["Key Manager"]
    assert subjects["keys created"] == ["zoe-key"]
    assert subjects["keys deleted"] == ["bob-laptop"]
    assert subjects["key scopes changed"] == ["grace-responses"]
    assert subjects["keys newly used"] == ["alice-never-used"]
    assert subjects["keys gone stale"] == ["carol-notebook"]
    new = {c["subject"] for c in _section(diff, "findings new")}
    resolved = {c["subject"] for c in _section(diff, "findings resolved")}
    assert "key-scope-trap: grace-responses" in resolved
    assert "key-unrestricted: bob-laptop" in resolved
    assert "user-no-project: peggy@example.com" in resolved
    assert "user-cannot-create-keys: dave@example.com" in resolved
    assert "key-unused: carol-notebook" in new
    assert "key-unused: alice-never-used" in resolved
    still = {c["subject"] for c in _section(diff, "findings still open")}
    assert "key-owner-without-access: heidi-old" in still


def test_audit_adds_a_changes_table_when_a_previous_snapshot_exists(
    two_pulls: Pulled, tmp_path: Path
) -> None:
    result = run_audit(two_pulls.db, AuditOptions(out_dir=tmp_path, formats=("json",)))
    document = json.loads(result.files[0].read_text())
    changes = document["tables"]["changes"]
    assert {"section": "keys deleted", "subject": "bob-laptop"}.items() <= changes[
        [c["section"] for c in changes].index("keys deleted")
    ].items()


def test_diff_on_the_command_line(two_pulls: Pulled, tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "orgaudit", "diff", "--db", str(two_pulls.db)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "changes from snapshot 1 to snapshot 2" in run.stdout
    assert "keys deleted (1):" in run.stdout
    as_json = subprocess.run(
        [
            sys.executable,
            "-m",
            "orgaudit",
            "diff",
            "--db",
            str(two_pulls.db),
            "--json",
            "--from",
            "2",
            "--to",
            "2",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert as_json.returncode == 0, as_json.stderr
    same = json.loads(as_json.stdout)["changes"]
    assert same  # a snapshot against itself: every finding still open, nothing else
    assert {c["kind"] for c in same} == {"findings still open"}


def test_diff_needs_two_snapshots(tmp_path: Path) -> None:
    db = tmp_path / "db"
    with Simulator(demo_builder(NOW).org, admin_key=ADMIN_KEY) as sim:
        _pull(sim, db)
    with pytest.raises(UsageError, match="no earlier snapshot"):
        run_diff(db)


# -- saved queries --------------------------------------------------------------------------

# Every query of the pack: the columns it must return and one row it must hold on the demo.
EXPECTED = {
    "users-cannot-create-keys": (
        "under_other_reading",
        ("dave@example.com", "Payments", "key_rights_need_project_role", "allowed"),
    ),
    "org-owners": ("user", ("alice@example.com",)),
    "keys-per-owner": ("owner", ("bob@example.com",)),
    "keys-owner-left": ("key", ("Payments", "heidi-old")),
    "unrestricted-keys": ("key", ("Payments", "payments-bot-prod")),
    "keys-with-recorded-scopes": ("key", ("Payments", "grace-responses")),
    "service-accounts-and-keys": ("service_account", ("Payments", "payments-bot")),
    "members-per-project-by-role": ("role", ("Payments", "viewer")),
    "users-in-no-project": ("user", ("peggy@example.com",)),
    "group-granted-roles": ("via_group", ("erin@example.com", "Payments Key Managers")),
    "admin-keys": ("key", ("audit-key",)),
    "keys-unused-for-days": ("key", ("Legacy", "legacy-batch")),
    "project-members": ("user", ("erin@example.com",)),
    "keys-expiring": ("key", ("Research", "research-etl-rotating", "service_account")),
    "spend-by-key": ("key", ("Payments", "victor-proxy")),
    "spend-by-owner": ("owner", ("victor@example.com",)),
    "spend-by-project": ("project", ("Payments",)),
    "top-spending-keys": ("key", ("Payments", "victor-proxy")),
}
PARAMS = {
    "keys-unused-for-days": {"days": "90"},
    "project-members": {"project": "Payments"},
    "keys-expiring": {"days": "14"},
}


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("queries") / "db"
    with Simulator(demo_builder(NOW).org, admin_key=ADMIN_KEY) as sim:
        _pull(sim, db)
    return db


def test_the_pack_is_exactly_the_queries_tested_and_each_has_a_header() -> None:
    pack = query_pack(default_pack())
    assert {q.name for q in pack} == set(EXPECTED)
    for query in pack:
        assert query.title and query.title != query.name, query.name
        assert query.answers.endswith("?"), query.name
        assert "snapshot_id" in query.parameters, query.name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_query_runs_on_the_demo_and_holds_a_known_row(demo_db: Path, name: str) -> None:
    column, row = EXPECTED[name]
    frame = run_query(demo_db, find_query(name, default_pack()), None, PARAMS.get(name, {}))
    assert column in frame.columns
    values = [tuple(str(v) for v in r) for r in frame.astype(object).itertuples(index=False)]
    assert any(set(row) <= set(r) for r in values), (name, values[:5])


def test_queries_cannot_write(demo_db: Path, tmp_path: Path) -> None:
    sql = tmp_path / "evil.sql"
    sql.write_text("-- title: evil\nDELETE FROM users WHERE snapshot_id = :snapshot_id;\n")
    with pytest.raises(UsageError, match=r"tried to write or change state .*saved queries are"):
        run_query(demo_db, find_query(str(sql), default_pack()), None, {})
    with sqlite3.connect(demo_db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 11


def _cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orgaudit", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_query_errors_are_one_line_and_exit_2(demo_db: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.sql"
    broken.write_text(
        "-- title: broken\nSELECT id\nFROM userz\nWHERE snapshot_id = :snapshot_id;\n"
    )
    write = tmp_path / "write.sql"
    write.write_text("UPDATE users SET role = 'owner';\n")
    cases = [
        (("query", broken, "--db", demo_db), "line 3: FROM userz"),
        (("query", write, "--db", demo_db), "read-only"),
        (
            ("query", "users-cannot-create-key", "--db", demo_db),
            "closest: users-cannot-create-keys",
        ),
        (("query", "keys-unused-for-days", "--db", demo_db), "needs --param days=..."),
    ]
    for args, expected in cases:
        run = _cli(*args)
        assert run.returncode == 2, (args, run.stdout, run.stderr)
        assert expected in run.stderr, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_query_output_formats(demo_db: Path, tmp_path: Path) -> None:
    listed = _cli("query", "--list")
    assert listed.returncode == 0 and "users-cannot-create-keys" in listed.stdout
    as_json = _cli("query", "unrestricted-keys", "--db", demo_db, "--format", "json")
    assert {row["key"] for row in json.loads(as_json.stdout)} >= {"bob-laptop", "legacy-batch"}
    as_csv = _cli(
        "query",
        "project-members",
        "--db",
        demo_db,
        "--format",
        "csv",
        "--param",
        "project=Research",
    )
    assert as_csv.stdout.splitlines()[0].startswith("user,how,role")
    workbook = tmp_path / "q.xlsx"
    as_xlsx = _cli("query", "admin-keys", "--db", demo_db, "--format", "xlsx", "--out", workbook)
    assert as_xlsx.returncode == 0, as_xlsx.stderr
    from openpyxl import load_workbook

    sheet = load_workbook(workbook).worksheets[0]
    assert [c.value for c in sheet[1]][:2] == ["key", "key_id"]


def test_audit_with_queries_adds_each_pack_query(demo_db: Path, tmp_path: Path) -> None:
    result = run_audit(
        demo_db, AuditOptions(out_dir=tmp_path, formats=("json",), queries_dir=default_pack())
    )
    tables = json.loads(result.files[0].read_text())["tables"]
    assert "users_cannot_create_keys" in tables
    assert "keys_unused_for_days" in tables  # :days bound to the stale threshold
    assert "project_members" not in tables  # needs a project the audit cannot guess


# -- retention -------------------------------------------------------------------------------


def test_prune_keeps_the_newest_and_compacts(tmp_path: Path) -> None:
    db = tmp_path / "db"
    with Simulator(demo_builder(NOW).org, admin_key=ADMIN_KEY) as sim:
        for _ in range(3):
            _pull(sim, db)
    size_before = db.stat().st_size
    assert prune(db, 1) == (1, 2)
    with store.connect(db) as conn:
        assert [s.id for s in store.list_snapshots(conn)] == [3]
        for table in [*store.TABLES, *store.DERIVED_TABLES, "coverage", "coverage_gaps"]:
            stray = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE snapshot_id != 3")
            assert stray.fetchone()[0] == 0, table
    assert db.stat().st_size < size_before
    assert prune(db, 5) == ()
    run = _cli("snapshots", "--db", db, "--prune", "0")
    assert run.returncode == 2 and "keeps at least 1" in run.stderr


@pytest.mark.parametrize(
    "sql",
    [
        "ATTACH DATABASE '{folder}/planted.db' AS planted",
        "VACUUM INTO '{folder}/planted.db'",
        "PRAGMA journal_mode = WAL",
        "PRAGMA user_version = 7",
        "CREATE TEMP TABLE planted (a)",
        "SELECT load_extension('{folder}/planted')",
    ],
    ids=["attach", "vacuum-into", "journal-mode", "user-version", "temp-table", "extension"],
)
def test_a_query_that_would_create_or_change_anything_is_refused_before_it_runs(
    demo_db: Path, tmp_path: Path, sql: str
) -> None:
    query = tmp_path / "evil.sql"
    query.write_text("-- title: evil\n" + sql.format(folder=tmp_path) + ";\n")
    before = demo_db.read_bytes()
    run = _cli("query", query, "--db", demo_db)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert "saved queries are read-only" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["evil.sql"]  # nothing made
    assert demo_db.read_bytes() == before


def test_a_query_may_read_the_schema_and_one_returning_no_table_is_one_line(
    demo_db: Path, tmp_path: Path
) -> None:
    schema = tmp_path / "schema.sql"
    schema.write_text("-- title: schema\nPRAGMA table_info(users);\n")
    frame = run_query(demo_db, find_query(str(schema), default_pack()), None, {})
    assert "email" in set(frame["name"])
    nothing = tmp_path / "nothing.sql"
    nothing.write_text("-- title: nothing\n-- SELECT 1;\n")  # nothing but comments
    run = _cli("query", nothing, "--db", demo_db)
    assert run.returncode == 2, (run.stdout, run.stderr)
    assert "returns no table; a saved query is one SELECT" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr


def _count_calls(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[int]:
    """Wrap ``module.name`` so each call is counted in the list returned."""
    calls: list[int] = []
    real = getattr(module, name)

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_changes_read_the_previous_audits_stored_findings_instead_of_running_the_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orgaudit.app.audit as app_audit

    b = demo_builder(NOW)
    db = tmp_path / "db"
    with Simulator(b.org, admin_key=ADMIN_KEY) as sim:
        _pull(sim, db)
        first = run_audit(db, AuditOptions(out_dir=tmp_path / "first", formats=("json",)))
        b.set_project_role("proj_payments", "user_dave", "member")
        _pull(sim, db)
    analysis = load_analysis(db, 1)
    basis = findings_basis(analysis, AuditSettings())
    with SnapshotDatabase.open(db) as handle:
        assert (handle.findings_basis(1), handle.findings_basis(2)) == (basis, None)
        assert stored_findings(handle, 2, basis) is None  # a pull alone stores no findings
        assert stored_findings(handle, 1, basis) == first.findings  # read back as they were

    calls = _count_calls(monkeypatch, app_audit, "run_checks")
    second = run_audit(db, AuditOptions(out_dir=tmp_path / "second", formats=("json",)))
    assert len(calls) == 1  # the new snapshot's checks; snapshot 1's come from the store
    changes = json.loads(second.files[0].read_text())["tables"]["changes"]
    resolved = [c["subject"] for c in changes if c["section"] == "findings resolved"]
    assert "user-cannot-create-keys: dave@example.com" in resolved

    # The same Changes as running snapshot 1's checks again (with unchanged settings).
    with SnapshotDatabase.open(db) as handle:
        handle.conn.execute("UPDATE derived_info SET findings_basis = NULL WHERE snapshot_id = 1")
    calls.clear()
    again = run_audit(db, AuditOptions(out_dir=tmp_path / "again", formats=("json",)))
    assert len(calls) == 2
    assert json.loads(again.files[0].read_text())["tables"]["changes"] == changes

    # Findings stored under other settings (or another catalog) are not compared with:
    # snapshot 2's were stored with --stale-days 90, so an audit of snapshot 3 with 30
    # runs snapshot 2's checks again.
    with Simulator(b.org, admin_key=ADMIN_KEY) as sim:
        _pull(sim, db)
    calls.clear()
    options = AuditOptions(out_dir=tmp_path / "third", formats=("json",), stale_days=30)
    run_audit(db, options)
    assert len(calls) == 2


def test_stored_findings_that_an_audit_could_not_have_written_are_not_trusted(
    demo_db: Path, tmp_path: Path
) -> None:
    db = tmp_path / "copy.db"
    db.write_bytes(demo_db.read_bytes())
    db.chmod(0o600)
    run_audit(db, AuditOptions(out_dir=tmp_path, formats=("json",)))
    with SnapshotDatabase.open(db) as handle:
        snapshot = handle.resolve(None)
        basis = handle.findings_basis(snapshot)
        assert basis is not None and stored_findings(handle, snapshot, basis)
        handle.conn.execute("UPDATE findings SET severity = 'dire' WHERE rowid = 1")
        assert stored_findings(handle, snapshot, basis) is None  # the checks run again


@pytest.mark.parametrize(
    "args",
    [
        ["audit", "--offline", "--queries", "--format", "json"],
        ["diff"],
        ["query", "users-cannot-create-keys"],
        ["explain", "user", "bob@example.com"],
        ["snapshots"],
    ],
)
def test_each_command_opens_the_database_once(
    two_pulls: Pulled, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    import orgaudit.store.database as database
    from orgaudit.cli import main

    db = tmp_path / "db"
    db.write_bytes(two_pulls.db.read_bytes())
    db.chmod(0o600)
    opened = _count_calls(monkeypatch, database, "connect")
    argv = ["orgaudit", *args, "--db", str(db)]
    if args[0] == "audit":
        argv += ["--out", str(tmp_path / "out")]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code in (0, 1, None)
    assert len(opened) == 1


DIFF_SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "schemas" / "diff.schema.json"


def test_diff_json_is_structured_and_valid_against_its_schema(two_pulls: Pulled) -> None:
    import jsonschema

    run = _cli("diff", "--db", two_pulls.db, "--json")
    assert run.returncode == 0, run.stderr
    document = json.loads(run.stdout)
    schema = json.loads(DIFF_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
    assert {c["kind"] for c in document["changes"]} <= set(SECTIONS)
    # Every change names its subject by id, and a finding keeps its severity apart.
    assert all(c["subject"]["id"] for c in document["changes"])
    deleted = next(c for c in document["changes"] if c["kind"] == "keys deleted")
    assert deleted["subject"] == {"type": "api_key", "id": deleted["subject"]["id"],
                                  "name": "bob-laptop"}  # fmt: skip
    assert deleted["project"]["id"] == "proj_payments"
    trap = next(
        c for c in document["changes"]
        if c["kind"] == "findings resolved" and c["check"] == "key-scope-trap"
    )  # fmt: skip
    assert trap["severity"] == "high"
    assert trap["before"].startswith("restricted key holds")  # the message alone
    assert trap["after"] is None
    roles = next(c for c in document["changes"] if c["kind"] == "org roles changed")
    assert (roles["subject"]["type"], roles["before"], roles["after"]) == (
        "user", "reader", "owner"
    )  # fmt: skip
