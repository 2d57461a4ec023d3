"""What the terminal says to a new admin (issue item 5): summaries first, details on request,
names in any case, help that shows flags as flags, query parameters checked and shown,
tables whose values are never cut, and a demo whose next commands work as pasted.

Every test runs the real command line (``python -m orgaudit``) on databases pulled over
real HTTP from the simulator, and reads what a user would read.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import typer

from orgaudit.cli import app
from orgaudit.settings import AdminKey
from orgaudit.simulator import Fault, OrgBuilder, SimOrg, Simulator
from orgaudit.simulator.demo import demo_builder, demo_org
from orgaudit.simulator.org import project_role_id

from support import (
    ADMIN_KEY,
    NOW,
    PULL,
    Run,
    cli_env,
    fast_settings,
    pull_and_analyze,
    run_cli,
)

VERDICT_LINE = re.compile(r"^(ALLOWED|DENIED|UNKNOWN): ", re.MULTILINE)


def pulled(org: SimOrg, db: Path, times: int = 1) -> Path:
    """``org`` pulled ``times`` into ``db`` over loopback HTTP, as ``orgaudit pull`` does."""
    with Simulator(org, admin_key=ADMIN_KEY) as sim:
        for _ in range(times):
            pull_and_analyze(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, db)
    return db


def run_all(commands: dict[str, Sequence[str | Path]], cwd: Path) -> dict[str, Run]:
    """Each command through the real CLI, four at a time (each costs a Python start-up)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(run_cli, *args, cwd=cwd) for name, args in commands.items()}
    return {name: future.result() for name, future in futures.items()}


def one_line_error(run: Run) -> str:
    """The run exited 2 with one ``orgaudit: error:`` line and no traceback; return it."""
    assert run.returncode == 2, run
    assert run.stdout == "" and "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("orgaudit: error: "), run.stderr
    return lines[0]


def digest(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` by its relative path, as a hash of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pulled(demo_org(NOW), tmp_path_factory.mktemp("demo") / "demo.db")


# -- audit: the counts, the worst findings, and where the rest are ---------------------------


def test_audit_prints_the_counts_the_worst_and_where_the_rest_are(
    demo_db: Path, tmp_path: Path
) -> None:
    db = ("--db", demo_db)
    runs = run_all(
        {
            "default": ["audit", "--offline", *db, "--out", tmp_path / "a"],
            "csv first": ["audit", "--offline", *db, "--out", tmp_path / "b", "--format", "csv,md"],
        },
        tmp_path,
    )
    run = runs["default"]
    assert run.returncode == 0, run
    lines = run.stdout.splitlines()
    total = int(re.match(r"snapshot 1: (\d+) findings \(", lines[0]).group(1))  # type: ignore[union-attr]
    by_check = re.findall(r"(\d+) [a-z-]+", lines[1].removeprefix("by check: "))
    assert lines[1].startswith("by check: ") and sum(map(int, by_check)) == total
    assert lines[2] == "the worst 5:"
    worst = lines[3:8]
    ranks = ["info", "low", "medium", "high", "critical"]
    severities = [ranks.index(line.split()[0]) for line in worst]
    assert severities == sorted(severities, reverse=True), worst
    high = [line.split()[1] for line in worst if line.split()[0] == "high"]
    assert len(high) == len(set(high)), worst  # one of each check before a second of any
    workbook = tmp_path / "a" / "orgaudit-snapshot-1.xlsx"
    assert lines[8] == f"  and {total - 5} more in {workbook}"
    assert workbook.is_file()
    # Without a workbook, the first report written is named.
    first = runs["csv first"]
    assert first.returncode == 0, first
    assert f"  and {total - 5} more in {tmp_path / 'b' / 'orgaudit-snapshot-1-csv'}\n" in (
        first.stdout
    )


def test_formats_severities_and_query_formats_take_any_case(demo_db: Path, tmp_path: Path) -> None:
    db = ("--db", demo_db)
    runs = run_all(
        {
            "audit": [
                *("audit", "--offline", *db, "--out", tmp_path),
                *("--format", "XLSX,Md", "--fail-on", "HIGH"),
            ],
            "query": ["query", "org-owners", *db, "--format", "JSON"],
            "bad": ["audit", "--offline", *db, "--out", tmp_path, "--format", "PDF"],
        },
        tmp_path,
    )
    audited = runs["audit"]
    assert audited.returncode == 1, audited  # the demo holds high findings
    assert "--fail-on high: the audit fails (exit 1)" in audited.stdout
    assert (tmp_path / "orgaudit-snapshot-1.xlsx").is_file()
    assert (tmp_path / "orgaudit-snapshot-1.md").is_file()
    assert {row["user"] for row in json.loads(runs["query"].stdout)} >= {"alice@example.com"}
    assert "unknown format pdf; choose from xlsx, csv, json, md" in one_line_error(runs["bad"])


# -- help: flags show as flags ------------------------------------------------------------


def _command_paths(command: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command's words, the groups' too (typer vendors click: read, not imported)."""
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from _command_paths(sub, (*path, name))


def test_no_help_text_shows_bool(tmp_path: Path) -> None:
    paths = list(_command_paths(typer.main.get_command(app)))
    assert {("audit",), ("explain", "user"), ("query",), ("pull",)} <= set(paths)
    runs = run_all({" ".join(p) or "orgaudit": [*p, "--help"] for p in paths}, tmp_path)
    for name, run in runs.items():
        assert run.returncode == 0, (name, run)
        assert "<bool>" not in run.stdout, (name, run.stdout)
    # Plain flags, no --no-... twin: --offline takes no value and has no opposite.
    audit = runs["audit"].stdout
    assert re.search(r"^  --offline  +Audit the latest", audit, re.MULTILINE), audit
    assert "--no-offline" not in audit
    assert re.search(r"^  --json  +Print JSON", runs["explain user"].stdout, re.MULTILINE)
    assert "every project's verdict" in " ".join(runs["explain user"].stdout.split())


# -- saved queries: typed parameters, titles with their values, a why, whole values --------


def test_a_query_parameter_is_checked_against_its_type_before_the_query_runs(
    demo_db: Path, tmp_path: Path
) -> None:
    typo = tmp_path / "typo.sql"
    typo.write_text("-- title: t\n-- params: n:integer\nSELECT :n AS n;\n")
    db = ("--db", demo_db)
    runs = run_all(
        {
            "abc": ["query", "keys-unused-for-days", "--param", "days=abc", *db],
            "negative": ["query", "keys-expiring", "--param", "days=-5", *db],
            "90": ["query", "keys-unused-for-days", "--param", "days=90", *db],
            "14": ["query", "keys-expiring", "--param", "days=14", *db, "--format", "csv"],
            "list": ["query", "--list"],
            "typo": ["query", typo, *db],
        },
        tmp_path,
    )
    assert one_line_error(runs["abc"]) == (
        "orgaudit: error: --param days must be a whole number, got 'abc'"
    )
    assert one_line_error(runs["negative"]) == (
        "orgaudit: error: --param days must be a whole number, got '-5'"
    )
    assert runs["90"].returncode == 0, runs["90"]
    assert runs["90"].stdout.startswith("Keys unused for more than 90 days (")
    assert ":days" not in runs["90"].stdout
    assert runs["14"].returncode == 0 and "legacy-batch" not in runs["14"].stdout
    listed = " ".join(runs["list"].stdout.split())
    assert "days (a whole number)" in listed and "project (text)" in listed
    assert "cannot read its params line 'n:integer'" in one_line_error(runs["typo"])


def test_users_who_cannot_create_keys_say_why(demo_db: Path, tmp_path: Path) -> None:
    run = run_cli("query", "users-cannot-create-keys", "--db", demo_db, "--format", "json",
                  cwd=tmp_path)  # fmt: skip
    rows = json.loads(run.stdout)
    assert rows, run
    words = {"read": "may read keys, not create them: ", "none": "no rights on keys: "}
    for row in rows:
        assert row["why"].startswith(words[row["key_access"]]), row
        for role in row["project_roles"].split(", "):
            assert f"{role} (project" in row["why"], row
    dave = next(row for row in rows if row["user"] == "dave@example.com")
    assert "viewer (project role) reads keys only" in dave["why"]
    assert "reader (org role) takes its key rights from the project role" in dave["why"]


def test_query_tables_show_every_value_whole(demo_db: Path, tmp_path: Path) -> None:
    names = ["keys-owner-left", "users-cannot-create-keys", "service-accounts-and-keys"]
    commands: dict[str, Sequence[str | Path]] = {}
    for name in names:
        commands[name] = ["query", name, "--db", demo_db]
        commands[f"{name} json"] = ["query", name, "--db", demo_db, "--format", "json"]
    markup = tmp_path / "markup.sql"  # a name is text, never markup, at any width
    markup.write_text("-- title: markup\nSELECT '[red]x[/red] [link=http://e]y[/link]' AS v;\n")
    commands["markup"] = ["query", markup, "--db", demo_db]
    runs = run_all(commands, tmp_path)
    assert "│ [red]x[/red] [link=http://e]y[/link] │" in runs["markup"].stdout, runs["markup"]
    for name in names:
        table = runs[name].stdout
        assert runs[name].returncode == 0, runs[name]
        assert "…" not in table, table
        rows = json.loads(runs[f"{name} json"].stdout)
        assert rows, name
        lines = table.splitlines()
        for row in rows:  # off a terminal, each row is one line holding every value
            values = [str(v) for v in row.values() if v is not None]
            assert any(all(v in line for v in values) for line in lines), (row, table)


# -- diff: an unchanged org is no change ------------------------------------------------


def test_diff_of_an_unchanged_org_says_so_and_draws_no_arrows(tmp_path: Path) -> None:
    same = pulled(demo_org(NOW), tmp_path / "same.db", times=2)
    builder = demo_builder(NOW)
    changed = tmp_path / "changed.db"
    with Simulator(builder.org, admin_key=ADMIN_KEY) as sim:
        pull_and_analyze(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, changed)
        builder.set_org_role("user_bob", "owner")
        builder.user("Zoe New", "zoe@example.com", user_id="user_zoe")
        pull_and_analyze(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, changed)
    runs = run_all({"same": ["diff", "--db", same], "changed": ["diff", "--db", changed]}, tmp_path)
    lines = runs["same"].stdout.splitlines()
    assert lines[:2] == [
        "changes from snapshot 1 to snapshot 2",
        "no changes to people, roles or keys",
    ]
    assert "->" not in runs["same"].stdout
    assert re.fullmatch(r"findings still open \(\d+\):", lines[2]), lines
    for line in lines[3:]:  # each: check: subject[ in project]: severity message
        assert re.match(r"  [a-z-]+: .+: (info|low|medium|high|critical) \S", line), line
    text = runs["changed"].stdout
    assert "no changes to people, roles or keys" not in text
    assert "  bob@example.com: reader -> owner\n" in text  # a change: before -> after
    assert "  zoe@example.com: reader\n" in text  # added: what it is, no arrow
    assert "- ->" not in text


# -- explain user: a summary first, details where the user holds a role ----------------------


@pytest.fixture(scope="module")
def wide_org_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 projects, one archived; una is an org reader holding a role in three."""
    b = OrgBuilder("org_wide", NOW)
    una = b.user("Una", "una@example.com", user_id="user_una")
    projects = [b.project(f"P{i:02d}", project_id=f"proj_{i:02d}") for i in range(60)]
    b.project("Old", project_id="proj_old", archived_days_ago=5)
    b.member(projects[0], una, "member")
    b.member(projects[1], una, "member")
    b.member(projects[2], una, "viewer")
    return pulled(b.org, tmp_path_factory.mktemp("wide") / "wide.db")


def test_explain_user_sums_up_every_project_then_details_the_ones_they_are_in(
    demo_db: Path, wide_org_db: Path, tmp_path: Path
) -> None:
    runs = run_all(
        {
            "una": ["explain", "user", "una@example.com", "--db", wide_org_db],
            "una all": ["explain", "user", "una@example.com", "--db", wide_org_db, "--all"],
            "una json": ["explain", "user", "una@example.com", "--db", wide_org_db, "--json"],
            "carol": ["explain", "user", "carol@example.com", "--db", demo_db],
            "both": [
                *("explain", "user", "carol@example.com", "--db", demo_db),
                *("--all", "--project", "Payments"),
            ],
        },
        tmp_path,
    )
    una = runs["una"].stdout
    assert runs["una"].returncode == 0, runs["una"]
    summary = una.split("\n\n")[0].splitlines()
    assert summary[:5] == [
        "una@example.com, in the 61 projects of the snapshot:",
        "  can create API keys in P00, P01",
        "  blocked in P02 (a member there, but their roles there do not let them create keys)",
        "  not a member of 57 projects (their org role gives no key rights there): "
        "P03, P04, P05, P06, P07, P08, P09, P10, P11, P12 and 47 more",
        "  1 archived (no keys there): Old",
    ]
    assert summary[-1].startswith("details for the 3 projects where una@example.com holds a role")
    blocks = VERDICT_LINE.findall(una)
    assert blocks == ["ALLOWED", "ALLOWED", "DENIED"]
    assert len(una.splitlines()) < 40  # not 61 verdicts
    assert len(VERDICT_LINE.findall(runs["una all"].stdout)) == 61
    verdicts = json.loads(runs["una json"].stdout)  # a script gets every verdict
    assert len(verdicts) == 61
    assert sorted(v["project"]["name"] for v in verdicts if v["in_project"]) == [
        "P00",
        "P01",
        "P02",
    ]
    assert [v["project"]["name"] for v in verdicts if v["archived"]] == ["Old"]
    carol = runs["carol"].stdout
    assert carol.startswith("carol@example.com, in the 3 projects of the snapshot:\n")
    assert "  not a member of 1 project (their org role gives no key rights there): Payments\n" in (
        carol
    )
    assert VERDICT_LINE.findall(carol) == ["ALLOWED"]
    assert "ALLOWED: carol@example.com can create API keys in Research" in carol
    assert "--all shows every project" in one_line_error(runs["both"])


def test_explain_user_says_where_it_cannot_tell_and_why(tmp_path: Path) -> None:
    """The demo pulled with every RBAC list answering 404: the roles that could grant
    dave keys were not read, so the summary cannot tell, and names what was not read."""
    rbac = r"^/(organization/(roles|groups)|projects/|organization/users/[^/]+/roles)"
    fault = Fault("status", path=rbac, status=404, times=-1, message="Not found")
    db = tmp_path / "no-rbac.db"
    with Simulator(demo_org(NOW), admin_key=ADMIN_KEY, faults=[fault]) as sim:
        pull_and_analyze(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, db)
    run = run_cli("explain", "user", "dave@example.com", "--db", db, cwd=tmp_path)
    assert run.returncode == 0, run
    [line] = [line for line in run.stdout.splitlines() if line.startswith("  cannot tell in ")]
    assert "Payments" in line and "user_org_roles" in line and line.endswith(" not read)")


def test_a_service_account_or_a_key_named_as_a_user_says_what_it_is(
    demo_db: Path, tmp_path: Path
) -> None:
    db = ("--db", demo_db)
    runs = run_all(
        {
            "bot": ["explain", "user", "payments-bot", *db],
            "key": ["explain", "user", "grace-responses", *db],
            "user as key": ["explain", "key", "carol@example.com", *db],
            "bot as key": ["explain", "key", "payments-bot", *db],
            "nobody": ["explain", "user", "carl@example.com", *db],
        },
        tmp_path,
    )
    bot = one_line_error(runs["bot"])
    assert "payments-bot is a service account in project Payments, not a user" in bot
    assert "never creates API keys itself" in bot
    assert "see `orgaudit explain key payments-bot-prod` for its keys" in bot
    assert "grace-responses is an API key in project Payments, not a user" in one_line_error(
        runs["key"]
    )
    as_key = one_line_error(runs["user as key"])
    assert "carol@example.com is a user, not an API key" in as_key
    assert "`orgaudit explain user carol@example.com`" in as_key
    assert "payments-bot is a service account in project Payments, not an API key" in (
        one_line_error(runs["bot as key"])
    )
    assert "closest: carol@example.com" in one_line_error(runs["nobody"])
    # The commands each message names work as given.
    named = [
        re.search(r"`orgaudit (.+?)`", one_line_error(runs[n])) for n in ("bot", "user as key")
    ]
    again = run_all({m.group(1): [*m.group(1).split(), *db] for m in named if m}, tmp_path)
    assert len(again) == 2 and all(run.returncode == 0 for run in again.values()), again


def test_a_fix_is_offered_once(tmp_path: Path) -> None:
    """A viewer directly and through two groups: three bindings, one fix to make."""
    b = OrgBuilder("org_twice", NOW)
    vic = b.user("Vic", "vic@example.com", user_id="user_vic")
    lab = b.project("Lab", project_id="proj_lab")
    b.member(lab, vic, "viewer")
    for name in ("Watchers", "Observers"):
        b.group_in_project(lab, b.group(name, [vic]), project_role_id("viewer"))
    db = pulled(b.org, tmp_path / "twice.db")
    args = ["explain", "user", "vic@example.com", "--project", "Lab", "--db", db]
    runs = run_all({"text": args, "json": [*args, "--json"]}, tmp_path)
    assert runs["text"].stdout.count("change vic@example.com's role in Lab from viewer") == 1
    actions = [fix["action"] for fix in json.loads(runs["json"].stdout)["fixes"]]
    assert actions == list(dict.fromkeys(actions)) and actions


# -- explain error --user: why each scope is lacking, and what grants it ---------------------


def test_a_lacking_scope_says_why_and_what_would_grant_it(demo_db: Path, tmp_path: Path) -> None:
    error = "Missing scopes: model.request"
    base = ["explain", "error", error, "--db", demo_db]
    runs = run_all(
        {
            "dave": [*base, "--user", "dave@example.com", "--project", "Payments"],
            "dave json": [*base, "--user", "dave@example.com", "--project", "Payments", "--json"],
            "oscar": [*base, "--user", "oscar@example.com", "--project", "Research"],
        },
        tmp_path,
    )
    dave = runs["dave"].stdout
    assert runs["dave"].returncode == 0, runs["dave"]
    tail = dave[dave.index("DENIED: dave@example.com in Payments lacks: model.request") :]
    assert (
        "\n- model.request\n    why: dave@example.com's roles in Payments that count for a " in tail
    )
    assert "viewer (project role); none grants model.request" in tail
    assert "not counted (rule request_rights_need_project_role, contested" in tail
    assert "under the rule's other reading reader (org role) would grant it" in tail
    assert (
        "      - give dave@example.com a built-in role in Payments that grants model.request "
        "(Project settings > Members): Project owner or Project member" in tail
    )
    assert "Model capabilities: request" in tail
    payload = json.loads(runs["dave json"].stdout)["user"]
    assert {"user", "project", "decision", "lacking", "contested"} <= set(payload)  # as before
    [gap] = payload["gaps"]
    assert gap["scope"] == "model.request"
    assert gap["roles_weighed"] == ["viewer (project role)"]
    assert "reader (org role)" in gap["roles_not_counted"]
    assert gap["granted_under_other_reading"] == ["reader (org role)"]
    assert {"Project owner", "Project member"} <= set(gap["roles_granting"])
    assert gap["areas_granting"] == ["Model capabilities: request"]
    assert gap["fixes"] and gap["why"]
    # Oscar holds a custom role there: the fix names it.
    assert (
        "or add Model capabilities: request to custom role 'Responses caller', which "
        "oscar@example.com holds in Research" in runs["oscar"].stdout
    )


# -- demo: its database where the next commands look, and next commands that work -----------


def _pasted(stdout: str) -> list[str]:
    """The commands the demo prints after "next, try", as a user would paste them."""
    tail = stdout[stdout.index("\nnext, try") :].splitlines()[2:]
    return [line.strip() for line in tail if line.strip()]


def _paste(commands: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the lines in one shell, as pasted: ``orgaudit`` is the installed command."""
    script = "set -e\n" + "\n".join(commands) + "\n"
    return subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=cli_env(**env), capture_output=True, text=True,
        timeout=240,
    )  # fmt: skip


def test_demo_leaves_its_database_where_the_next_commands_find_it(tmp_path: Path) -> None:
    work, scratch = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    scratch.mkdir()
    env = {"TMPDIR": str(scratch), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    first = run_cli("demo", cwd=work, **env)
    assert first.returncode == 0, first
    assert "database: reports/orgaudit.db\n" in first.stdout
    assert (work / "reports" / "orgaudit.db").is_file()
    commands = _pasted(first.stdout)
    assert "export" not in " ".join(commands)  # found by default
    assert "orgaudit explain user carol@example.com" in commands
    done = _paste(commands, work, env)
    assert done.returncode == 0, done
    assert "carol@example.com, in the 3 projects of the snapshot:" in done.stdout
    assert "Users who cannot create keys, and why" in done.stdout
    assert "granted to the group by victor@example.com" in done.stdout  # who granted what
    assert "victor-proxy" in done.stdout  # the top spending keys

    # Again in the same folder: the database there is left alone, and the export line the
    # demo prints points the same commands at its new one.
    before = digest(work)
    second = run_cli("demo", cwd=work, **env)
    assert second.returncode == 0, second
    assert "(reports/orgaudit.db holds a database already: it was left as it is" in second.stdout
    commands = _pasted(second.stdout)
    assert commands[0].startswith(f"export ORGAUDIT_DB={scratch}/orgaudit-demo-")
    assert digest(work) == before
    done = _paste(commands, work, env)
    assert done.returncode == 0, done
    assert digest(work) == before  # its audit wrote beside its database, not into reports/
    demo_folder = Path(commands[0].removeprefix("export ORGAUDIT_DB=")).parent
    assert f"wrote {demo_folder}/orgaudit-snapshot-1.xlsx" in done.stdout
