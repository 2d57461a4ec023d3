"""``explain`` end to end: the demo org pulled over HTTP, then verdicts in objects and the CLI.

The demo org is served and pulled once per module through the pipeline (so the database
is what ``orgaudit pull`` writes); every verdict is then asked of the functions, and the
command line is run as a user runs it: ``python -m orgaudit explain ...`` in a fresh
process. The CLI runs are started together once (``cli``), a few at a time, because each
costs a Python start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from orgaudit import store
from orgaudit.errors import UsageError
from orgaudit.explain import (
    UserVerdict,
    explain_error,
    explain_key,
    explain_user,
    plan_scopes,
)
from orgaudit.model.analysis import Analysis, analyze
from orgaudit.model.catalog import load_catalog
from orgaudit.render import explain_text as explain_view
from orgaudit.settings import AdminKey
from orgaudit.simulator import Fault, OrgBuilder, SimOrg, Simulator
from orgaudit.simulator.demo import DEMO_CASES, demo_org
from orgaudit.store.snapshot import load_snapshot
from orgaudit.vocabulary import Verdict

from support import (
    ADMIN_KEY,
    NOW,
    PULL,
    fast_settings,
    load_analysis,
    pull,
    pull_and_analyze,
    run_cli,
)

ALLOWED, DENIED, UNKNOWN = Verdict

KEYS_WRITE = "api.organization.projects.api_keys.write"
PASTED = (
    "You have insufficient permissions for this operation. Missing scopes: "
    "api.responses.read, api.responses.write. Check that you have the correct role in your "
    "organization (Reader, Writer, Owner) and project (Member, Owner), and if you're using a "
    "restricted API key, that it has the necessary scopes."
)

Binding = tuple[str, str, str | None]  # (source, role, via group)


class Case(NamedTuple):
    name: str  # in DEMO_CASES
    user: str
    project: str
    decision: str
    deciding: frozenset[Binding]
    fix: str | None  # a piece of one fix's text; None: no fixes (allowed)


CASES = [
    Case(
        "reader-not-in-payments",
        "carol@example.com",
        "Payments",
        DENIED,
        frozenset({("org role", "reader", None)}),
        "add carol@example.com to Payments as a member",
    ),
    Case(
        "project-viewer",
        "dave@example.com",
        "Payments",
        DENIED,
        frozenset({("project role", "viewer", None)}),
        "role in Payments from viewer to member",
    ),
    Case(
        "group-grants-key-write",
        "erin@example.com",
        "Payments",
        ALLOWED,
        frozenset({("project group role", "Key Manager", "Payments Key Managers")}),
        None,
    ),
    Case(
        "group-only-member",
        "ivan@example.com",
        "Research",
        ALLOWED,
        frozenset({("project group role", "member", "Data Science")}),
        None,
    ),
    Case(
        "owner-in-no-project",
        "frank@example.com",
        "Payments",
        ALLOWED,
        frozenset({("org role", "owner", None)}),
        None,
    ),
    Case(
        "custom-role-without-key-write",
        "oscar@example.com",
        "Research",
        DENIED,
        frozenset(
            {("project role", "viewer", None), ("project RBAC role", "Responses caller", None)}
        ),
        f"add {KEYS_WRITE} to custom role 'Responses caller'",
    ),
    Case(
        "archived-project-with-keys",
        "bob@example.com",
        "Legacy",
        DENIED,
        frozenset({("project status", "archived", None)}),
        "Legacy is archived: create keys in an active project",
    ),
]


def deciding(bindings: list[dict[str, Any]]) -> frozenset[Binding]:
    return frozenset((b["source"], b["role"], b["via_group"]) for b in bindings if b["deciding"])


def check_case(case: Case, verdict: dict[str, Any]) -> None:
    """A verdict (as ``to_dict`` or the CLI's JSON gives it) is the one the case expects."""
    assert verdict["decision"] == case.decision
    assert verdict["permission"] == KEYS_WRITE
    if case.project == "Legacy":  # the archived status decides, whatever else is weighed
        assert case.deciding <= deciding(verdict["bindings"])
    else:
        assert deciding(verdict["bindings"]) == case.deciding
    actions = [fix["action"] for fix in verdict["fixes"]]
    if case.fix is None:
        assert actions == []
    else:
        assert any(case.fix in action for action in actions), actions


# -- fixtures: the demo org pulled once, and the CLI runs ------------------------------------


@pytest.fixture(scope="module")
def demo() -> SimOrg:
    """Module-scoped stand-in for conftest's ``demo``, so the demo is pulled once here."""
    return demo_org(NOW)


@pytest.fixture(scope="module")
def simulator(demo: SimOrg) -> Iterator[Simulator]:
    """Module-scoped stand-in for conftest's ``simulator``: the demo org on loopback."""
    with Simulator(demo, admin_key=ADMIN_KEY) as sim:
        yield sim


@pytest.fixture(scope="module")
def demo_db(simulator: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("demo") / "demo.db"
    result = pull_and_analyze(AdminKey(ADMIN_KEY), fast_settings(simulator), PULL, db)
    assert {c.status for c in result.collected.coverage} == {"complete"}
    return db


@pytest.fixture(scope="module")
def demo_analysis(demo_db: Path) -> Analysis:
    with store.connect(demo_db, create=False) as conn:
        snapshot = load_snapshot(conn)
    return analyze(snapshot, load_catalog())


def user_verdict(a: Analysis, user: str, project: str) -> UserVerdict:
    (verdict,) = explain_user(a.snapshot, a.model, a.catalog, user, project)
    return verdict


class Run(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def run_cli_all(commands: dict[str, list[str]], cwd: Path) -> dict[str, Run]:
    """Run ``python -m orgaudit ARGS`` for each command, four at a time."""
    env = dict(os.environ)
    for name in ("OPENAI_ADMIN_KEY", "ORGAUDIT_DB", "FORCE_COLOR", "COLUMNS"):
        env.pop(name, None)

    def run(args: list[str]) -> Run:
        done = subprocess.run(
            [sys.executable, "-m", "orgaudit", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return Run(done.returncode, done.stdout, done.stderr)

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(run, args) for name, args in commands.items()}
    return {name: future.result() for name, future in futures.items()}


@pytest.fixture(scope="module")
def cli(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every CLI run the tests below look at, by name."""
    cwd = tmp_path_factory.mktemp("cli")
    empty_db = cwd / "empty.db"
    with store.connect(empty_db):  # a database with the schema and no snapshot
        pass
    db = ["--db", str(demo_db)]
    commands = {
        case.name: ["explain", "user", case.user, "--project", case.project, *db, "--json"]
        for case in CASES
    }
    commands.update(
        {
            "erin-text": ["explain", "user", "erin@example.com", "--project", "Payments", *db],
            "dave-everywhere": ["explain", "user", "dave@example.com", *db, "--json"],
            "grace-key": [
                "explain",
                "key",
                "grace-responses",
                "--endpoint",
                "/v1/responses",
                *db,
                "--json",
            ],
            "scopes": ["explain", "scopes", "/v1/responses", "GET /v1/models", "--json"],
            "error-without-scopes": ["explain", "error", "Something went wrong."],
            "unknown-user": ["explain", "user", "carl@example.com", *db],
            "empty-db": ["explain", "user", "carol@example.com", "--db", str(empty_db)],
        }
    )
    return run_cli_all(commands, cwd)


def json_of(run: Run) -> Any:
    assert run.returncode == 0, run
    assert "Traceback" not in run.stderr
    return json.loads(run.stdout)


def one_line_error(run: Run) -> str:
    """The run exited 2 with one ``orgaudit: error:`` line on stderr; return it."""
    assert run.returncode == 2, run
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("orgaudit: error: ")
    return lines[0]


# -- explain user -------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_demo_case_verdict(demo_analysis: Analysis, case: Case) -> None:
    assert case.name in DEMO_CASES
    check_case(case, user_verdict(demo_analysis, case.user, case.project).to_dict())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_demo_case_verdict_through_the_cli(cli: dict[str, Run], case: Case) -> None:
    payload = json_of(cli[case.name])
    assert {"decision", "permission", "bindings", "fixes"} <= set(payload)
    check_case(case, payload)


def test_reader_outside_the_project_is_told_why(demo_analysis: Analysis) -> None:
    verdict = user_verdict(demo_analysis, "carol@example.com", "Payments")
    (org_role,) = verdict.bindings
    assert not org_role.grants
    assert "project role" in org_role.note
    assert verdict.level == "none"
    # She can in Research, where she is a member.
    assert user_verdict(demo_analysis, "carol@example.com", "Research").decision == ALLOWED


def test_custom_role_is_weighed_and_does_not_grant(demo_analysis: Analysis) -> None:
    verdict = user_verdict(demo_analysis, "oscar@example.com", "Research")
    (custom,) = [b for b in verdict.bindings if b.role == "Responses caller"]
    assert (custom.source, custom.grants, custom.evidence) == (
        "project RBAC role",
        False,
        "snapshot",
    )
    assert verdict.level == "read"
    # The group that would grant it in Research is offered too.
    assert any("Data Science" in fix.action for fix in verdict.fixes)


def test_text_output_shows_the_verdict_and_the_deciding_mark(cli: dict[str, Run]) -> None:
    run = cli["erin-text"]
    assert run.returncode == 0, run
    lines = run.stdout.splitlines()
    assert lines[0] == "ALLOWED: erin@example.com can create API keys in Payments (create own)"
    deciding_lines = [line for line in lines if line.startswith("  > ")]
    assert len(deciding_lines) == 1
    assert deciding_lines[0].startswith(
        "  > project group role: Key Manager via group 'Payments Key Managers' (project) grants"
    )
    assert "    project role: viewer (project) does not grant" in run.stdout


def test_text_view_of_a_denial_lists_the_fixes(demo_analysis: Analysis) -> None:
    a = demo_analysis
    verdicts = explain_user(a.snapshot, a.model, a.catalog, "user_dave", "Payments")
    text = explain_view.user_text(verdicts)
    assert text.startswith("DENIED: dave@example.com cannot create API keys in Payments")
    assert "  > project role: viewer (project) does not grant" in text
    assert "to change it:\n  - change dave@example.com's role in Payments from viewer" in text


def test_user_without_project_gets_one_verdict_per_project(
    demo_analysis: Analysis, cli: dict[str, Run]
) -> None:
    a = demo_analysis
    verdicts = explain_user(a.snapshot, a.model, a.catalog, "carol@example.com")
    by_project = {v.project.name: v.decision for v in verdicts}
    assert len(verdicts) == len(a.snapshot["projects"]) == 3
    assert by_project == {"Payments": DENIED, "Research": ALLOWED, "Legacy": DENIED}

    payload = json_of(cli["dave-everywhere"])
    assert isinstance(payload, list)
    assert {v["project"]["name"]: v["decision"] for v in payload} == {
        "Payments": DENIED,
        "Research": DENIED,
        "Legacy": DENIED,
    }
    assert {v["level"] for v in payload if v["project"]["name"] == "Research"} == {"read"}


# -- explain key --------------------------------------------------------------------------


def test_mixed_key_lacks_model_request(demo_analysis: Analysis, cli: dict[str, Run]) -> None:
    a = demo_analysis
    verdict = explain_key(a.snapshot, a.model, a.catalog, "grace-responses", "/v1/responses")
    assert verdict.decision == DENIED
    assert verdict.endpoint == "POST /v1/responses"
    assert verdict.missing_in_key == ("model.request",)
    assert verdict.missing_in_owner == ()
    assert verdict.scopes_kind == "restricted"
    (advice,) = verdict.fixes
    assert "Model capabilities" in advice.action
    assert "Mixed" in advice.action

    payload = json_of(cli["grace-key"])
    assert payload["decision"] == DENIED
    assert payload["missing_in_key"] == ["model.request"]
    assert payload["key"]["name"] == "grace-responses"
    assert "Mixed" in payload["fixes"][0]["action"]


def test_key_scopes_follow_the_updated_event(demo_analysis: Analysis) -> None:
    a = demo_analysis
    verdict = explain_key(a.snapshot, a.model, a.catalog, "carol-notebook", "/v1/models")
    # Created with model.request only; api_key.updated added api.model.read.
    assert "api.model.read" in (verdict.scopes or ())
    assert (verdict.endpoint, verdict.decision) == ("GET /v1/models", ALLOWED)
    created_only = explain_key(
        a.snapshot, a.model, a.catalog, "carol-notebook", "POST /v1/chat/completions"
    )
    assert created_only.decision == ALLOWED


def test_key_created_before_the_audit_window_is_unknown(demo_analysis: Analysis) -> None:
    a = demo_analysis
    verdict = explain_key(a.snapshot, a.model, a.catalog, "alice-ci")
    assert (verdict.decision, verdict.scopes, verdict.scopes_kind) == (UNKNOWN, None, "unknown")
    assert "created before the audit-log window" in verdict.scopes_note
    assert "--audit-days" in verdict.scopes_note


def test_key_whose_owner_left_the_project_is_denied(demo_analysis: Analysis) -> None:
    a = demo_analysis
    verdict = explain_key(a.snapshot, a.model, a.catalog, "heidi-old", "/v1/chat/completions")
    assert verdict.decision == DENIED
    assert verdict.key.owner_project_access == "inactive"
    assert verdict.missing_in_key == ()  # its scopes would do
    assert "no longer has access to the project" in verdict.fixes[0].action


def test_unrestricted_key_passes(demo_analysis: Analysis) -> None:
    a = demo_analysis
    verdict = explain_key(a.snapshot, a.model, a.catalog, "bob-laptop", "/v1/responses")
    assert (verdict.decision, verdict.scopes_kind) == (ALLOWED, "unrestricted")
    assert verdict.required == ("api.responses.write", "model.request")
    assert verdict.missing_in_key == verdict.missing_in_owner == ()


def test_key_of_an_archived_project_does_not_pass(demo_analysis: Analysis) -> None:
    a = demo_analysis
    verdict = explain_key(a.snapshot, a.model, a.catalog, "legacy-batch", "/v1/responses")
    assert verdict.key.project == "Legacy"
    assert verdict.decision == DENIED


@pytest.fixture(scope="module")
def viewer_bot(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    """A small org: an unrestricted key owned by a service account with the viewer role."""
    b = OrgBuilder("org_bots", NOW)
    lab = b.project("Lab", project_id="proj_lab")
    bot = b.service_account(lab, "viewer-bot", role="viewer")
    b.key(lab, bot, "viewer-bot-all", scopes=[])
    db = tmp_path_factory.mktemp("bots") / "bots.db"
    with Simulator(b.org, admin_key=ADMIN_KEY) as sim:
        pull(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, db)
    return load_analysis(db, None, None)


def test_key_cannot_do_more_than_its_owner(viewer_bot: Analysis) -> None:
    a = viewer_bot
    verdict = explain_key(a.snapshot, a.model, a.catalog, "viewer-bot-all", "/v1/responses")
    assert verdict.scopes_kind == "unrestricted"
    assert verdict.missing_in_key == ()
    assert verdict.missing_in_owner == ("api.responses.write", "model.request")
    assert verdict.decision == DENIED
    actions = [fix.action for fix in verdict.fixes]
    assert any("do not grant api.responses.write (Responses API: write)" in a for a in actions)
    assert any("do not grant model.request (Model capabilities: request)" in a for a in actions)
    # What the viewer does hold passes.
    reads = explain_key(a.snapshot, a.model, a.catalog, "viewer-bot-all", "GET /v1/models")
    assert reads.decision == ALLOWED


# -- explain error ------------------------------------------------------------------------


def test_pasted_error_names_each_scope_and_where_it_comes_from(demo_analysis: Analysis) -> None:
    explanation = explain_error(demo_analysis.catalog, PASTED)
    assert explanation.scopes == ("api.responses.read", "api.responses.write")
    assert explanation.decision is None
    advice = {a.scope: a for a in explanation.scope_sources}
    assert advice["api.responses.read"].dashboard[0] == "Responses API: Read"
    assert advice["api.responses.write"].dashboard == ("Responses API: Write",)
    assert advice["api.responses.write"].areas == ("Responses API: write",)
    assert "Project member" in advice["api.responses.write"].roles
    assert "Project viewer" not in advice["api.responses.write"].roles
    text = explain_view.error_text(explanation)
    assert "the error names 2 missing scope(s): api.responses.read, api.responses.write" in text


def test_pasted_error_against_a_key(demo_analysis: Analysis) -> None:
    a = demo_analysis
    explanation = explain_error(
        a.catalog, PASTED, snapshot=a.snapshot, model=a.model, key="grace-responses"
    )
    assert explanation.key is not None
    assert explanation.key.required == ("api.responses.read", "api.responses.write")
    assert explanation.key.missing_in_key == ("api.responses.read",)
    assert explanation.decision == explanation.key.decision == DENIED
    # Responses Write does not grant read (docs/evidence.md#forum-1292912): Read is the
    # setting that does, and it would drop the write scope the key holds.
    fix = next(f.action for f in explanation.key.fixes if "Responses API to Read" in f.action)
    assert "does not grant api.responses.write" in fix
    assert "no one Responses API setting grants both" in fix


def test_pasted_error_against_a_user_in_a_project(demo_analysis: Analysis) -> None:
    a = demo_analysis
    text = f"Missing scopes: {KEYS_WRITE}, api.responses.write."
    against = {"snapshot": a.snapshot, "model": a.model, "project": "Payments"}
    dave = explain_error(a.catalog, text, user="dave@example.com", **against)
    # For a key's requests only project roles count (rule request_rights_need_project_role):
    # dave's viewer role grants neither scope. The rule is contested: under its other
    # reading his org reader role counts, and grants both.
    assert dave.user is not None
    assert {k: v for k, v in asdict(dave.user).items() if k not in ("contested", "gaps")} == {
        "user": "dave@example.com",
        "project": "Payments",
        "decision": DENIED,
        "lacking": (KEYS_WRITE, "api.responses.write"),
    }
    assert dave.decision == DENIED
    [contested] = dave.user.contested
    assert contested.rule == "request_rights_need_project_role"
    assert contested.decision_if_other == ALLOWED
    assert "org roles count" in contested.other_reading
    erin = explain_error(a.catalog, text, user="erin@example.com", **against)
    assert erin.user is not None  # her group's custom role grants the key right only
    assert (erin.decision, erin.user.lacking) == (DENIED, ("api.responses.write",))
    bob = explain_error(a.catalog, text, user="bob@example.com", **against)
    assert bob.user is not None  # a member
    assert (bob.decision, bob.user.lacking) == (ALLOWED, ())
    with pytest.raises(UsageError, match="--user needs --project"):
        explain_error(a.catalog, text, snapshot=a.snapshot, model=a.model, user="user_dave")


def test_text_without_scopes_is_a_usage_error(demo_analysis: Analysis, cli: dict[str, Run]) -> None:
    with pytest.raises(UsageError, match=r"no 'Missing scopes: \.\.\.' list found"):
        explain_error(demo_analysis.catalog, "Something went wrong.")
    assert "no 'Missing scopes: ...' list found" in one_line_error(cli["error-without-scopes"])


# -- explain scopes -----------------------------------------------------------------------


def test_least_scopes_for_endpoints(demo_analysis: Analysis, cli: dict[str, Run]) -> None:
    plan = plan_scopes(demo_analysis.catalog, ["/v1/responses", "GET /v1/models"])
    assert plan.endpoints == ("POST /v1/responses", "GET /v1/models")
    assert plan.scopes == ("api.model.read", "api.responses.write", "model.request")
    assert set(plan.settings) == {
        "Model capabilities: Request",
        "Responses API: Write",
        "Models: Read",
    }
    # The same rule as explain key: project roles, and the org owner (rule
    # request_rights_need_project_role); the org reader only under its other reading.
    assert plan.roles == ("Org owner", "Project owner", "Project member")
    [contested] = plan.contested
    assert contested.rule == "request_rights_need_project_role"
    assert "Org reader" in contested.decision_if_other
    assert "Files" in plan.leave_at_none
    assert "Responses API" not in plan.leave_at_none

    payload = json_of(cli["scopes"])
    assert payload["scopes"] == list(plan.scopes)
    assert payload["settings"] == list(plan.settings)
    assert payload["roles"] == ["Org owner", "Project owner", "Project member"]


def test_an_unknown_endpoint_is_unknown_and_names_the_closest(demo_analysis: Analysis) -> None:
    plan = plan_scopes(demo_analysis.catalog, ["/v1/respnses", "GET /v1/models"])
    assert plan.endpoints == ("GET /v1/models",)
    [unknown] = plan.unknown
    assert "the catalog has no rule for this endpoint; closest: " in unknown
    assert "/v1/responses" in unknown
    a = demo_analysis
    verdict = explain_key(a.snapshot, a.model, a.catalog, "bob-laptop", "/v1/respnse")
    assert verdict.decision == UNKNOWN
    assert "closest: " in verdict.checks[0].note
    assert "/v1/responses" in verdict.checks[0].note


# -- names that do not exist, databases without snapshots -----------------------------------


def test_unknown_names_are_usage_errors_naming_the_closest(demo_analysis: Analysis) -> None:
    a = demo_analysis
    with pytest.raises(UsageError, match=r"no user 'carl@example\.com' .*closest: carol@"):
        explain_user(a.snapshot, a.model, a.catalog, "carl@example.com", "Payments")
    with pytest.raises(UsageError, match=r"no project 'Paymnts' .*closest: Payments"):
        explain_user(a.snapshot, a.model, a.catalog, "carol@example.com", "Paymnts")
    with pytest.raises(UsageError, match=r"no API key 'grace-respnses' .*closest: grace-responses"):
        explain_key(a.snapshot, a.model, a.catalog, "grace-respnses")


def test_unknown_user_through_the_cli(cli: dict[str, Run]) -> None:
    line = one_line_error(cli["unknown-user"])
    assert "no user 'carl@example.com'" in line
    assert "closest: carol@example.com" in line


def test_no_snapshot_tells_to_pull(cli: dict[str, Run], tmp_path: Path) -> None:
    line = one_line_error(cli["empty-db"])
    assert "holds no snapshot yet; run `orgaudit pull` first" in line
    with pytest.raises(UsageError, match=r"no snapshot database at .*; run `orgaudit pull` first"):
        load_analysis(tmp_path / "missing.db", None, None)


# -- sources that were not read -----------------------------------------------------------


@pytest.fixture(scope="module")
def without_rbac(demo: SimOrg, tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    """The demo org pulled with every RBAC list answering 404."""
    rbac = r"^/(organization/(roles|groups)|projects/|organization/users/[^/]+/roles)"
    fault = Fault("status", path=rbac, status=404, times=-1, message="Not found")
    db = tmp_path_factory.mktemp("no-rbac") / "no-rbac.db"
    with Simulator(demo, admin_key=ADMIN_KEY, faults=[fault]) as sim:
        pull(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, db)
    return load_analysis(db, None, None)


def test_missing_rbac_makes_a_viewer_unknown(without_rbac: Analysis) -> None:
    assert without_rbac.snapshot.source_status("user_org_roles") == "unavailable"
    verdict = user_verdict(without_rbac, "dave@example.com", "Payments")
    assert verdict.decision == UNKNOWN
    assert verdict.level == "read"
    assert {"project_user_roles", "project_groups", "user_org_roles"} <= set(
        verdict.missing_sources
    )
    assert verdict.summary.startswith("cannot tell whether dave@example.com can create")
    assert verdict.fixes[0].action.startswith("pull again with an admin key that can read ")
    text = explain_view.user_text((verdict,))
    assert text.startswith("UNKNOWN: ")
    assert "not read in this snapshot: " in text


def test_missing_rbac_hides_a_group_grant_but_leaves_allowances(without_rbac: Analysis) -> None:
    # Erin's key right came through her group's role, which was not read.
    assert user_verdict(without_rbac, "erin@example.com", "Payments").decision == UNKNOWN
    carol = user_verdict(without_rbac, "carol@example.com", "Payments")
    assert carol.decision == UNKNOWN
    assert carol.missing_sources
    bob = user_verdict(without_rbac, "bob@example.com", "Payments")
    assert (bob.decision, bob.missing_sources) == (ALLOWED, ())
    assert user_verdict(without_rbac, "frank@example.com", "Research").decision == ALLOWED


# -- the json contract ---------------------------------------------------------------------

EXPLAIN_SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "schemas" / "explain.schema.json"


def _snake_keys(value: object) -> bool:
    if isinstance(value, dict):
        return all(k == k.lower() and " " not in k and _snake_keys(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_snake_keys(v) for v in value)
    return True


@pytest.mark.parametrize(
    ("form", "args"),
    [
        ("user", ["user", "dave@example.com", "--project", "Payments"]),
        ("user list", ["user", "carol@example.com"]),
        ("key", ["key", "grace-responses", "--endpoint", "/v1/responses"]),
        ("error", ["error", "Missing scopes: model.request", "--key", "grace-responses",
                   "--user", "dave@example.com", "--project", "Payments"]),
        ("scopes", ["scopes", "/v1/responses", "/v1/audio/speech"]),
    ],
)  # fmt: skip
def test_every_explain_form_prints_json_valid_against_its_schema(
    demo_analysis: Analysis, demo_db: Path, form: str, args: list[str]
) -> None:
    import jsonschema

    schema = json.loads(EXPLAIN_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    db = [] if form == "scopes" else ["--db", str(demo_db)]
    run = run_cli("explain", *args, *db, "--json", cwd=demo_db.parent)
    assert run.returncode == 0, run.stderr
    payload = json.loads(run.stdout)
    name = form.split()[0]
    expected = {"$ref": f"#/$defs/{name}"}
    if form == "user list":
        expected = {"type": "array", "items": expected, "minItems": 2}
    jsonschema.validate(payload, {**schema, **expected, "anyOf": [expected]})
    assert _snake_keys(payload)
    for verdict in payload if isinstance(payload, list) else [payload]:
        assert verdict["decision"] in ("allowed", "denied", "unknown")
    if name in ("user", "key"):
        verdicts = payload if isinstance(payload, list) else [payload]
        assert all("fixes" in v and "advice" not in v for v in verdicts)
