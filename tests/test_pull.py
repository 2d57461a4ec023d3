"""The pull end to end: real HTTP against the simulator, real SQLite read back."""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from orgaudit import store
from orgaudit.collect import sources
from orgaudit.collect.journal import finished_lists, journal_path
from orgaudit.collect.records import PROJECT_KEY_IN_ADMIN_LIST
from orgaudit.errors import AuthError, CollectError, UsageError
from orgaudit.explain import explain_user
from orgaudit.settings import AdminKey, PullSettings, RetryPolicy
from orgaudit.simulator import Fault, Simulator
from orgaudit.simulator.org import SimOrg

from support import (
    ADMIN_KEY,
    PULL,
    entity_tables,
    fast_settings,
    load_analysis,
    pull,
    pull_and_analyze,
    small_org,
)


def _rows(db_path: Path, table: str, snapshot_id: int = 1) -> list[dict[str, object]]:
    with store.connect(db_path) as conn:
        frame = store.read_table(conn, table, snapshot_id)
    return frame.to_dict("records")


def test_demo_pull_stores_every_source_complete(
    simulator: Simulator, demo: SimOrg, admin_key: AdminKey, db_path: Path
) -> None:
    result = pull(admin_key, fast_settings(simulator), PULL, db_path)

    assert result.snapshot_id == 1
    coverage = {c.source: c.status for c in result.collected.coverage}
    assert set(coverage.values()) == {"complete"}
    assert len(_rows(db_path, "users")) == len(demo.users)
    assert len(_rows(db_path, "projects")) == len(demo.projects)  # archived included
    keys = {row["name"]: row for row in _rows(db_path, "project_api_keys")}
    assert len(keys) == sum(len(v) for v in demo.project_api_keys.values())
    # owner_project_access=any: the key whose owner left the project is still there
    assert keys["heidi-old"]["owner_project_access"] == "inactive"
    assert keys["payments-bot-prod"]["owner_type"] == "service_account"
    events = {
        row["key_id"]: json.loads(str(row["scopes"]))
        for row in _rows(db_path, "audit_key_events")
        if row["type"] == "api_key.created"
    }
    grace_key = keys["grace-responses"]["id"]
    assert events[grace_key] == ["api.responses.write", "api.model.chat_completions.request"]


def test_updated_event_scopes_are_read_from_changes_requested(
    simulator: Simulator, admin_key: AdminKey, db_path: Path
) -> None:
    pull(admin_key, fast_settings(simulator), PULL, db_path)
    updated = [r for r in _rows(db_path, "audit_key_events") if r["type"] == "api_key.updated"]
    assert len(updated) == 1
    assert "api.model.read" in json.loads(str(updated[0]["scopes"]))


def test_raw_json_keeps_fields_the_schema_does_not_name(admin_key: AdminKey, db_path: Path) -> None:
    builder = small_org(1)
    builder.org.users[0]["brand_new_field"] = {"nested": [1, 2]}
    with Simulator(builder.org, admin_key=admin_key.reveal()) as sim:
        pull(admin_key, fast_settings(sim), PULL, db_path)
    raw = json.loads(str(_rows(db_path, "users")[0]["raw"]))
    assert raw["brand_new_field"] == {"nested": [1, 2]}


def test_missing_rbac_family_is_unavailable_and_pull_goes_on(
    demo: SimOrg, admin_key: AdminKey, db_path: Path
) -> None:
    rbac = r"^/(organization/(roles|groups)|projects/|organization/users/[^/]+/roles)"
    fault = Fault("status", path=rbac, status=404, times=-1, message="Not found")
    with Simulator(demo, admin_key=admin_key.reveal(), faults=[fault]) as sim:
        result = pull(admin_key, fast_settings(sim), PULL, db_path)
        per_user_role_requests = sim.count(r"^/organization/users/[^/]+/roles")
    coverage = {c.source: c for c in result.collected.coverage}
    assert coverage["org_roles"].status == "unavailable"
    assert coverage["user_org_roles"].status == "unavailable"
    assert "rbac family is unavailable" in coverage["user_org_roles"].reason
    assert coverage["users"].status == "complete"
    assert coverage["project_api_keys"].status == "complete"
    # The family's root answered 404, so its fan-out was skipped, not asked user by user.
    assert per_user_role_requests == 0


def test_audit_logs_refused_for_missing_scope_are_unavailable(
    demo: SimOrg, admin_key: AdminKey, db_path: Path
) -> None:
    fault = Fault(
        "status",
        path="^/organization/audit_logs",
        status=401,
        times=-1,
        message="You have insufficient permissions for this operation. "
        "Missing scopes: api.audit_logs.read.",
    )
    with Simulator(demo, admin_key=admin_key.reveal(), faults=[fault]) as sim:
        result = pull(admin_key, fast_settings(sim), PULL, db_path)
    coverage = {c.source: c for c in result.collected.coverage}
    assert coverage["audit_key_events"].status == "unavailable"
    assert "api.audit_logs.read" in coverage["audit_key_events"].reason
    with store.connect(db_path) as conn:
        stored = store.read_table(conn, "coverage", 1)
    assert stored.set_index("source").loc["audit_key_events", "status"] == "unavailable"


def test_core_source_refused_stops_the_pull_and_writes_nothing(
    simulator: Simulator, admin_key: AdminKey, db_path: Path
) -> None:
    pull(admin_key, fast_settings(simulator), PULL, db_path)
    simulator.add_fault(
        Fault(
            "status",
            path="^/organization/users$",
            status=403,
            times=-1,
            message="Missing scopes: api.management.read",
        )
    )
    with pytest.raises(AuthError, match=r"lacks the permission api\.management\.read"):
        pull(admin_key, fast_settings(simulator), PULL, db_path)
    with store.connect(db_path) as conn:
        assert [s.id for s in store.list_snapshots(conn)] == [1]


def test_server_dying_mid_pull_leaves_earlier_snapshot_intact_and_latest(
    simulator: Simulator, admin_key: AdminKey, db_path: Path
) -> None:
    pull(admin_key, fast_settings(simulator), PULL, db_path)
    before = sorted(str(row["raw"]) for row in _rows(db_path, "project_api_keys"))
    # After 20 more requests every answer is a 503: the server is gone for good. With
    # --strict, a list that cannot be finished ends the pull and nothing is written.
    simulator.add_fault(Fault("status", status=503, times=-1, after=20))
    strict = PullSettings(strict=True)
    with pytest.raises(CollectError, match="failed after 4 attempts: HTTP 503"):
        pull(admin_key, fast_settings(simulator), strict, db_path)
    with store.connect(db_path) as conn:
        assert store.resolve_snapshot(conn, None) == 1
        assert [s.id for s in store.list_snapshots(conn)] == [1]
        for table in store.TABLES:
            count = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE snapshot_id != 1")
            assert count.fetchone()[0] == 0, table
    assert sorted(str(row["raw"]) for row in _rows(db_path, "project_api_keys")) == before


def test_every_request_is_a_get(simulator: Simulator, admin_key: AdminKey, db_path: Path) -> None:
    pull(admin_key, fast_settings(simulator), PULL, db_path)
    assert simulator.requests
    assert {record.method for record in simulator.requests} == {"GET"}


def test_each_page_is_asked_once_and_at_the_largest_size(
    simulator: Simulator, admin_key: AdminKey, db_path: Path
) -> None:
    result = pull(admin_key, fast_settings(simulator), PULL, db_path)
    asked = Counter((record.path, record.query) for record in simulator.requests)
    assert set(asked.values()) == {1}  # no page twice, no retry of a success
    assert sum(asked.values()) == result.collected.requests
    for (path, query), _ in asked.items():
        # Sources sharing a path (the audit log's key and access events) differ in their
        # fixed parameters.
        (source,) = [
            s
            for s in sources.ALL_SOURCES
            if re.fullmatch(_pattern(s), path) and set(s.endpoint.params) <= set(query)
        ]
        assert ("limit", str(source.endpoint.max_limit)) in query, path


def _pattern(source: sources.Source) -> str:
    return re.sub(r"\{\w+\}", "[^/]+", source.endpoint.path)


def _no_custom_roles_org() -> SimOrg:
    builder = small_org(30)
    builder.project("Second", project_id="proj_second")
    for i in range(5):
        builder.member("proj_second", f"user_{i:04d}", "viewer")
    builder.group_in_project(
        "proj_second", builder.group("Readers", ["user_0010"]), "role-api-project-member"
    )
    return builder.org


def test_per_user_role_lists_are_not_asked_when_no_custom_role_exists(
    admin_key: AdminKey, db_path: Path, tmp_path: Path
) -> None:

    with Simulator(_no_custom_roles_org(), admin_key=admin_key.reveal()) as sim:
        result = pull(admin_key, fast_settings(sim), PULL, db_path)
        per_user = sim.count(r"/users/[^/]+/roles$")
        group_lists = sim.count(r"/groups/[^/]+/roles$")
    assert per_user == 0  # 30 org users and 35 memberships: 65 requests not sent
    assert group_lists > 0  # groups have no member-list field: still asked
    coverage = {c.source: c for c in result.collected.coverage}
    assert coverage["project_user_roles"].status == "complete"
    assert "role list holds no custom role" in coverage["project_user_roles"].reason
    assert "the org defines no custom org role" in coverage["user_org_roles"].reason
    # The verdicts are what asking would have given: the member lists name the roles.
    levels = load_analysis(db_path, None, None).model.levels.set_index(
        ["principal_id", "project_id"]
    )
    assert levels.loc[("user_0001", "proj_second"), "verdict"] == "denied"  # viewer
    assert levels.loc[("user_0010", "proj_second"), "verdict"] == "allowed"  # via the group


def _custom_roles_in_one_project_org() -> SimOrg:
    builder = small_org(12)
    builder.custom_org_role("Auditor", ["api.groups.read"])
    builder.project("Custom", project_id="proj_custom")
    writer = builder.custom_project_role(
        "proj_custom", "Key writer", ["api.organization.projects.api_keys.write"]
    )
    for i in range(4):
        builder.member("proj_custom", f"user_{i:04d}", "viewer")
    builder.assign_project_role("proj_custom", "user_0002", writer)
    # The project whose member lists are derived holds each built-in role, and a group.
    builder.set_project_role("proj_only", "user_0005", "viewer")
    builder.set_project_role("proj_only", "user_0006", "viewer")
    builder.set_project_role("proj_only", "user_0007", "owner")
    team = builder.group("Team", ["user_0006"])
    builder.group_in_project("proj_only", team, "role-api-project-member")
    return builder.org


def test_a_custom_role_means_the_lists_it_could_appear_in_are_asked(
    admin_key: AdminKey, db_path: Path
) -> None:
    with Simulator(_custom_roles_in_one_project_org(), admin_key=admin_key.reveal()) as sim:
        result = pull(admin_key, fast_settings(sim), PULL, db_path)
        org_lists = sim.count(r"^/organization/users/[^/]+/roles$")
        custom_project_lists = sim.count(r"^/projects/proj_custom/users/[^/]+/roles$")
        plain_project_lists = sim.count(r"^/projects/proj_only/users/[^/]+/roles$")
    assert org_lists == 12  # an org custom role could be held by anyone
    assert custom_project_lists == 4  # this project defines a custom role
    assert plain_project_lists == 0  # this one does not: its member list says it all
    coverage = {c.source: c for c in result.collected.coverage}
    assert coverage["project_user_roles"].status == "complete"
    assert coverage["project_user_roles"].reason == (
        "not asked per member in 1 project(s): the project's role list holds no custom role, "
        "so its members hold only the built-in project role the member list names"
    )


def test_asking_every_role_list_gives_the_same_access_as_deriving(
    admin_key: AdminKey, tmp_path: Path
) -> None:

    levels = {}
    for derive in (True, False):
        db = tmp_path / f"{derive}.db"
        with Simulator(_custom_roles_in_one_project_org(), admin_key=admin_key.reveal()) as sim:
            pull(admin_key, fast_settings(sim), PullSettings(derive_role_lists=derive), db)
            asked = sim.count(r"/users/[^/]+/roles$")
        model = load_analysis(db, None, None).model
        levels[derive] = (
            model.levels.sort_values(["principal_id", "project_id"]).reset_index(drop=True),
            asked,
        )
    (derived, asked_when_deriving), (every, asked_all) = levels[True], levels[False]
    assert asked_all > asked_when_deriving
    pd.testing.assert_frame_equal(derived, every)
    verdicts = derived.set_index(["principal_id", "project_id"])["verdict"]
    assert verdicts[("user_0005", "proj_only")] == "denied"  # a viewer
    assert verdicts[("user_0006", "proj_only")] == "allowed"  # a viewer, and a member group
    assert verdicts[("user_0002", "proj_custom")] == "allowed"  # a custom project role


@pytest.mark.parametrize(
    ("predefined", "permissions", "asked"),
    [
        (True, [], False),  # a plain built-in: the member list says it all
        (True, ["*"], False),
        (True, ["api.files.read"], True),  # a built-in with a list of its own
        ("true", [], True),  # odd shapes are asked about, never assumed
        (True, {"api.files.read": True}, True),
        (None, None, True),
    ],
)
def test_a_project_role_list_is_trusted_only_when_it_holds_plain_built_ins(
    admin_key: AdminKey, db_path: Path, predefined: object, permissions: object, asked: bool
) -> None:
    builder = small_org(4)
    builder.org.project_roles["proj_only"].append(
        {
            "object": "role",
            "id": "role_odd",
            "name": "odd",
            "resource_type": "api.project",
            "predefined_role": predefined,
            "permissions": permissions,
        }
    )
    with Simulator(builder.org, admin_key=admin_key.reveal()) as sim:
        pull(admin_key, fast_settings(sim), PULL, db_path)
        member_lists = sim.count(r"^/projects/proj_only/users/[^/]+/roles$")
    assert member_lists == (4 if asked else 0)


def test_concurrency_backs_off_on_429_and_never_exceeds_the_ceiling(
    admin_key: AdminKey, db_path: Path
) -> None:
    with Simulator(
        small_org(40).org,
        admin_key=admin_key.reveal(),
        latency=0.02,
        max_in_flight=3,
        throttle_headers={"Retry-After-Ms": "20"},
    ) as sim:
        patient = RetryPolicy(max_attempts=10, base_delay=0.01, max_delay=0.05)
        settings = fast_settings(sim, concurrency=8, retry=patient)
        result = pull(admin_key, settings, PULL, db_path)
        seen = sim.max_in_flight_seen
    assert result.collected.throttled > 0  # the server said so ...
    assert seen <= 3  # ... and the pull still finished, within the server's cap
    assert {c.status for c in result.collected.coverage} == {"complete"}


@pytest.mark.parametrize(
    ("fault", "overrides", "message"),
    [
        (
            Fault("ignore_limit", path="^/organization/users$"),
            {},
            "a page holds 250 items, more than the 100 asked for",
        ),
        (None, {"max_body_bytes": 4096}, "larger than 4096 bytes (--max-body-mb)"),
        (None, {"max_pages": 2}, "more than 2 pages (--max-pages)"),
    ],
)
def test_resource_bounds_refuse_oversized_answers(
    admin_key: AdminKey,
    db_path: Path,
    fault: Fault | None,
    overrides: dict[str, int],
    message: str,
) -> None:
    faults = [fault] if fault is not None else []
    with (
        Simulator(small_org(250).org, admin_key=admin_key.reveal(), faults=faults) as sim,
        pytest.raises(CollectError, match=re.escape(message)),
    ):
        pull(admin_key, fast_settings(sim, **overrides), PULL, db_path)


def test_project_keys_in_the_admin_key_list_are_not_admin_keys(
    demo: SimOrg, admin_key: AdminKey, db_path: Path
) -> None:
    # The demo's admin-key list returns every project key too, as the real one does
    # (cartography-cncf/cartography pull request 2511).
    assert demo.admin_list_includes_project_keys
    project_keys = [key for keys in demo.project_api_keys.values() for key in keys]
    real_admin = {str(key["id"]) for key in demo.admin_api_keys}
    with Simulator(demo, admin_key=ADMIN_KEY) as sim:
        result = pull(admin_key, fast_settings(sim), PULL, db_path)

    assert {str(r["id"]) for r in _rows(db_path, "admin_api_keys")} == real_admin
    dropped = [r for r in _rows(db_path, "anomalies") if r["table_name"] == "admin_api_keys"]
    assert sorted(str(r["subject_id"]) for r in dropped) == sorted(
        str(k["id"]) for k in project_keys
    )
    assert {r["problem"] for r in dropped} == {PROJECT_KEY_IN_ADMIN_LIST}
    coverage = {c.source: c for c in result.collected.coverage}["admin_api_keys"]
    assert coverage.status == "complete"
    assert f"{len(project_keys)} project key(s) the list also returned" in coverage.reason
    assert coverage.rows == len(real_admin)


def test_an_admin_key_list_without_project_keys_drops_nothing(
    demo: SimOrg, admin_key: AdminKey, db_path: Path
) -> None:
    demo.admin_list_includes_project_keys = False
    with Simulator(demo, admin_key=ADMIN_KEY) as sim:
        result = pull(admin_key, fast_settings(sim), PULL, db_path)

    assert len(_rows(db_path, "admin_api_keys")) == len(demo.admin_api_keys)
    assert not [r for r in _rows(db_path, "anomalies") if r["table_name"] == "admin_api_keys"]
    coverage = {c.source: c for c in result.collected.coverage}["admin_api_keys"]
    assert "left out" not in coverage.reason


def test_keys_of_a_project_whose_key_list_failed_are_named_in_the_coverage(
    demo: SimOrg, admin_key: AdminKey, db_path: Path
) -> None:
    project_id, keys = next((p, k) for p, k in demo.project_api_keys.items() if k)
    fault = Fault("status", path=f"/organization/projects/{project_id}/api_keys", status=400)
    # The project key list is a core source: a failure there stops the pull, so the
    # stand-in for "not read" is an archived project's list, which the pull tolerates.
    demo_project = next(p for p in demo.projects if p["id"] == project_id)
    demo_project["status"] = "archived"
    with Simulator(demo, admin_key=ADMIN_KEY, faults=[fault]) as sim:
        result = pull(admin_key, fast_settings(sim), PULL, db_path)

    coverage = {c.source: c for c in result.collected.coverage}["admin_api_keys"]
    assert "the key lists of 1 project(s) were not read" in coverage.reason
    stored = {str(r["id"]) for r in _rows(db_path, "admin_api_keys")}
    assert {str(k["id"]) for k in keys} <= stored  # could not be told apart: kept, and said


def test_a_bare_string_refusal_names_the_missing_permission_in_one_line(
    demo: SimOrg, admin_key: AdminKey, db_path: Path
) -> None:
    # Real 403s have been seen as {"error": "... Missing scopes: ..."} (a bare string;
    # community.openai.com thread 1345041): the one-line error still names the scope.
    fault = Fault.missing_scopes(path="^/organization/users$", scopes=("api.management.read",))
    with (
        Simulator(demo, admin_key=ADMIN_KEY, faults=[fault], error_style="string") as sim,
        pytest.raises(AuthError) as failure,
    ):
        pull(admin_key, fast_settings(sim), PULL, db_path)

    assert failure.value.missing_scopes == ("api.management.read",)
    assert "lacks the permission api.management.read" in str(failure.value)
    assert "\n" not in str(failure.value)


# -- lists that cannot be finished ----------------------------------------------------------


def _verdict(db_path: Path, user: str, project: str) -> str:
    analysis = load_analysis(db_path, None, None)
    (verdict,) = explain_user(analysis.snapshot, analysis.model, analysis.catalog, user, project)
    return verdict.decision


def test_a_project_whose_list_stays_5xx_is_a_gap_and_its_denials_unknown(
    demo: SimOrg, admin_key: AdminKey, db_path: Path
) -> None:
    users_of_payments = "^/organization/projects/proj_payments/users$"
    fault = Fault("status", path=users_of_payments, status=500, times=-1)
    with Simulator(demo, admin_key=ADMIN_KEY, faults=[fault]) as sim:
        result = pull_and_analyze(admin_key, fast_settings(sim), PULL, db_path)

    coverage = {c.source: c for c in result.collected.coverage}["project_users"]
    assert coverage.status == "partial"
    assert "not finished (0 item(s) read)" in coverage.reason
    assert "HTTP 500" in coverage.reason
    # A missing list can only hide a role: dave (a viewer there) is no longer denied but
    # unknown, while alice, an org owner, stays allowed on what was read.
    assert _verdict(db_path, "dave@example.com", "Payments") == "unknown"
    assert _verdict(db_path, "alice@example.com", "Payments") == "allowed"
    assert _verdict(db_path, "oscar@example.com", "Research") == "denied"  # another project


def test_a_list_with_more_pages_and_no_cursor_keeps_what_it_read(
    demo: SimOrg, admin_key: AdminKey, db_path: Path
) -> None:
    # A spec-valid page: has_more true, and no cursor to go on from.
    group = demo.groups[0]
    page = {"object": "list", "data": [group], "has_more": True, "next": None}
    fault = Fault("body", path="^/organization/groups$", status=200, body=json.dumps(page).encode())
    with Simulator(demo, admin_key=ADMIN_KEY, faults=[fault]) as sim:
        result = pull_and_analyze(admin_key, fast_settings(sim), PULL, db_path)

    coverage = {c.source: c for c in result.collected.coverage}["groups"]
    assert coverage.status == "unavailable"
    assert "not finished (1 item(s) read)" in coverage.reason
    assert "has_more is true but the page gives no cursor" in coverage.reason
    assert [row["id"] for row in _rows(db_path, "groups")] == [group["id"]]
    assert _verdict(db_path, "dave@example.com", "Payments") == "unknown"


def test_strict_ends_the_pull_at_a_list_that_cannot_be_finished(
    demo: SimOrg, admin_key: AdminKey, db_path: Path
) -> None:
    fault = Fault(
        "status", path="^/organization/projects/proj_payments/users$", status=500, times=-1
    )
    with (
        Simulator(demo, admin_key=ADMIN_KEY, faults=[fault]) as sim,
        pytest.raises(CollectError, match="HTTP 500"),
    ):
        pull(admin_key, fast_settings(sim), PullSettings(strict=True), db_path)
    with store.connect(db_path) as conn:
        assert store.list_snapshots(conn) == []


def test_the_users_list_failing_still_ends_the_pull(
    demo: SimOrg, admin_key: AdminKey, db_path: Path
) -> None:
    fault = Fault("status", path="^/organization/users$", status=500, times=-1)
    with (
        Simulator(demo, admin_key=ADMIN_KEY, faults=[fault]) as sim,
        pytest.raises(CollectError, match="failed after 4 attempts: HTTP 500"),
    ):
        pull(admin_key, fast_settings(sim), PULL, db_path)


# -- the journal -------------------------------------------------------------------------


def test_a_list_cut_short_is_asked_again_whole_on_resume(tmp_path: Path) -> None:
    # 250 users: three pages. The third page fails for good, which ends the pull (the
    # org's users are essential) with two pages journaled; the resumed pull drops them,
    # asks for the list again and writes the same snapshot as an uninterrupted pull.
    org = small_org(250).org
    reference, db = tmp_path / "reference.db", tmp_path / "db"
    with Simulator(org, admin_key=ADMIN_KEY) as sim:
        pull(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, reference)
        sim.add_fault(Fault("status", path="/organization/users$", after=2, times=-1, status=502))
        with pytest.raises(CollectError):
            pull(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, db)
        assert finished_lists(journal_path(db)) > 0
        sim.faults.clear()
        sim.requests.clear()
        pull(AdminKey(ADMIN_KEY), fast_settings(sim), PullSettings(resume=True), db)
        assert sim.count("/organization/users$") == 3
    assert entity_tables(db, 1) == entity_tables(reference, 1)
    assert len(entity_tables(db, 1)["users"]) == 250
    with store.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM anomalies").fetchone()[0] == 0


def test_a_journal_another_version_wrote_is_set_aside_not_misread(tmp_path: Path) -> None:
    db = tmp_path / "db"
    with sqlite3.connect(journal_path(db)) as conn:  # the first journal format: no "format"
        conn.executescript(
            "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE lists (source TEXT, place TEXT, items TEXT);"
            "INSERT INTO lists VALUES ('users', '[null, null, null]', '[]');"
        )
        conn.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("fingerprint", "x"), ("started_at", datetime.now(UTC).isoformat())],
        )
    with Simulator(small_org(3).org, admin_key=ADMIN_KEY) as sim:
        with pytest.raises(UsageError, match="nothing to resume: another version of orgaudit"):
            pull(AdminKey(ADMIN_KEY), fast_settings(sim), PullSettings(resume=True), db)
        result = pull(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, db)
    assert result.snapshot_id == 1
    assert not journal_path(db).exists()
