"""The pull end to end: real HTTP against the simulator, real SQLite read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orgaudit import store
from orgaudit.errors import AuthError, CollectError
from orgaudit.pull import pull
from orgaudit.settings import AdminKey
from orgaudit.simulator import Fault, Simulator
from orgaudit.simulator.org import SimOrg

from support import PULL, fast_settings, small_org


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
    # After 20 more requests every answer is a 503: the server is gone for good.
    simulator.add_fault(Fault("status", status=503, times=-1, after=20))
    with pytest.raises(CollectError, match="failed after 4 attempts: HTTP 503"):
        pull(admin_key, fast_settings(simulator), PULL, db_path)
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
