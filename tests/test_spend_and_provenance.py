"""Spend and provenance, end to end: the demo org pulled over real HTTP from the simulator,
its Usage and Costs lists and the audit log's access changes stored in real SQLite, then
the findings, explain, the reports and diff read back.

Expected amounts come from the simulator's own usage history
(:func:`orgaudit.simulator.usage.expected_cost`), never from orgaudit's arithmetic.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from orgaudit.app.audit import AuditOptions, DiffOptions
from orgaudit.checks import CHECKS_BY_ID
from orgaudit.collect import sources as src
from orgaudit.explain import explain_user
from orgaudit.model.spend import money
from orgaudit.render.explain_text import user_text
from orgaudit.settings import AdminKey, PullSettings
from orgaudit.simulator import Fault, Simulator
from orgaudit.simulator.demo import demo_builder, demo_org
from orgaudit.simulator.generate import OrgShape, generate_org
from orgaudit.simulator.usage import expected_cost
from orgaudit.vocabulary import FindingStatus

from support import (
    ADMIN_KEY,
    FIXED,
    PULL,
    Audited,
    fast_settings,
    load_analysis,
    pull_and_analyze,
    run_audit,
    run_cli,
    run_diff,
)

NOW = int(FIXED.timestamp())
DAY = 86400


def _by(audited: Audited, check_id: str) -> dict[str, str]:
    """A check's findings: subject name -> message."""
    return {f.subject_name: f.message for f in audited.result.findings if f.check_id == check_id}


def _window_start(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        (since,) = conn.execute("SELECT usage_since FROM snapshots").fetchone()
    return int(since)


# -- spend ------------------------------------------------------------------------------------


def test_the_spend_of_the_key_whose_owner_left_is_reported_with_its_amount(
    demo_audit: Audited,
) -> None:
    org = demo_org(NOW)
    key = next(k for k in org.project_api_keys["proj_payments"] if k["name"] == "victor-proxy")
    since = _window_start(demo_audit.db)
    amount = expected_cost(org, key["id"], since, NOW)
    assert amount > 1  # the simulator's history: days of use before victor left

    message = _by(demo_audit, "key-spend-owner-gone")["victor-proxy"]
    assert money(amount, "usd").replace("usd", "USD") in message
    assert "the owner is no longer in the organization" in message
    assert "30 days since 2026-05-02" in message
    # The window starts at midnight UTC, --usage-days (30) before the pull.
    assert since == int((FIXED - timedelta(days=30)).replace(hour=0).timestamp())


def test_the_spend_checks_flag_exactly_the_demo_cases(demo_audit: Audited) -> None:
    assert set(_by(demo_audit, "key-spend-owner-gone")) == {"victor-proxy"}
    # heidi-old's owner left the project too, but it spent nothing in the window.
    assert "heidi-old" not in _by(demo_audit, "key-spend-owner-gone")
    unrestricted = _by(demo_audit, "key-unrestricted-spend")
    # legacy-batch has all permissions but was last used 120 days ago: nothing spent.
    assert set(unrestricted) == {"bob-laptop", "payments-bot-prod", "victor-proxy"}
    org = demo_org(NOW)
    since = _window_start(demo_audit.db)
    bot = next(k for k in org.project_api_keys["proj_payments"] if k["name"] == "payments-bot-prod")
    assert (
        money(expected_cost(org, bot["id"], since, NOW), "USD") in unrestricted["payments-bot-prod"]
    )
    idle = _by(demo_audit, "key-idle")
    # heidi-old: last used 45 days ago; alice-never-used (never) and legacy-batch (past
    # --stale-days) are key-unused's, not idle.
    assert set(idle) == {"heidi-old"}
    assert "last used 45 days ago" in idle["heidi-old"]
    never = _by(demo_audit, "key-unused")
    assert "never used" in never["alice-never-used"]


def test_the_spend_sheet_lists_every_key_most_spent_first(demo_audit: Audited) -> None:
    document = json.loads((demo_audit.out / "orgaudit-snapshot-1.json").read_text())
    rows = document["tables"]["spend"]
    assert len(rows) == 13  # every project key of the demo
    costs = [r["cost"] for r in rows]
    assert costs == sorted(costs, reverse=True)
    by_name = {r["name"]: r for r in rows}
    org = demo_org(NOW)
    since = _window_start(demo_audit.db)
    for key in (k for keys in org.project_api_keys.values() for k in keys):
        assert by_name[key["name"]]["cost"] == pytest.approx(
            expected_cost(org, key["id"], since, NOW), abs=1e-6
        )
    assert by_name["victor-proxy"]["owner_standing"] == "the owner is no longer in the organization"
    assert by_name["heidi-old"]["use_in_window"] == "idle over the window"
    assert by_name["alice-never-used"]["use_in_window"] == "never used"
    assert by_name["payments-bot-prod"]["use_in_window"] == "spending"
    assert document["snapshot"]["usage_since"] == "2026-05-02T00:00:00Z"


def test_without_usage_read_the_spend_checks_are_unknown_never_passed(tmp_path: Path) -> None:
    db = tmp_path / "db"
    with Simulator(demo_org(NOW), admin_key=ADMIN_KEY) as sim:
        # A key without api.usage.read: the Costs list, the family's root, answers 403
        # and no usage list is asked at all.
        sim.add_fault(Fault.missing_scopes(r"^/organization/(costs|usage/)", ("api.usage.read",)))
        pulled = pull_and_analyze(
            AdminKey(ADMIN_KEY), fast_settings(sim), PULL, db, clock=lambda: FIXED
        )
        asked = [r.path for r in sim.requests if "/usage/" in r.path or r.path.endswith("/costs")]
    assert asked == ["/organization/costs"]
    coverage = pulled.analysis.snapshot.coverage.set_index("source")["status"]
    assert coverage[src.COSTS.name] == "unavailable"
    assert {coverage[s.name] for s in src.USAGE_SOURCES} == {"unavailable"}
    assert coverage["users"] == "complete"  # the rest of the pull went on

    result = run_audit(db, AuditOptions(out_dir=tmp_path / "out", formats=("json",)))
    by_check = {f.check_id: f for f in result.findings}
    for check_id in ("key-spend-owner-gone", "key-unrestricted-spend", "key-idle"):
        assert by_check[check_id].status is FindingStatus.UNKNOWN, check_id
    document = json.loads((tmp_path / "out" / "orgaudit-snapshot-1.json").read_text())
    assert {r["use_in_window"] for r in document["tables"]["spend"]} == {"not read (see Coverage)"}
    assert {r["cost"] for r in document["tables"]["spend"]} == {None}


def test_usage_days_zero_reads_no_usage_and_says_so(tmp_path: Path) -> None:
    db = tmp_path / "db"
    with Simulator(demo_org(NOW), admin_key=ADMIN_KEY) as sim:
        pulled = pull_and_analyze(
            AdminKey(ADMIN_KEY),
            fast_settings(sim),
            PullSettings(usage_days=0),
            db,
            clock=lambda: FIXED,
        )
        asked = [r.path for r in sim.requests if "/usage/" in r.path or r.path.endswith("/costs")]
    assert asked == []
    assert pulled.analysis.snapshot.usage_since is None
    gaps = pulled.analysis.snapshot.gaps
    assert set(gaps.loc[gaps["source"] == "costs", "reason"]) == {"not asked: --usage-days 0"}
    result = run_audit(db, AuditOptions(out_dir=tmp_path / "out", formats=("md",)))
    statuses = {f.check_id: f.status for f in result.findings}
    assert statuses["key-spend-owner-gone"] is FindingStatus.UNKNOWN
    # Not reading usage was asked for: no source-unavailable finding per usage list.
    assert not [
        f
        for f in result.findings
        if f.check_id == "source-unavailable" and f.subject_id in {"costs", "usage_completions"}
    ]


@pytest.mark.parametrize(
    ("keys_per_project", "days_a_page", "pages"),
    [(None, 31, 1), (40, 10, 4)],  # the demo (13 keys); 10 projects of 40 keys (400 keys)
    ids=["demo", "400-keys"],
)
def test_a_usage_page_holds_as_many_days_as_the_orgs_keys_allow(
    tmp_path: Path, keys_per_project: int | None, days_a_page: int, pages: int
) -> None:
    org = (
        demo_org(NOW)
        if keys_per_project is None
        else generate_org(
            OrgShape(users=40, projects=10, members_per_project=4, keys_per_project=40),
            seed=3,
            now=NOW,
        )
    )
    keys = sum(len(k) for k in org.project_api_keys.values())
    assert src.usage_days_per_page(keys) == days_a_page  # at most 4,000 key-days a page
    with Simulator(org, admin_key=ADMIN_KEY) as sim:
        pull_and_analyze(
            AdminKey(ADMIN_KEY), fast_settings(sim), PULL, tmp_path / "db", clock=lambda: FIXED
        )
        costs = [dict(r.query) for r in sim.requests if r.path.endswith("/costs")]
        grouped = [r.query for r in sim.requests if r.path.endswith("/costs")]
    # 30 days and the pull's part day: 31 day buckets, each asked once.
    assert len(costs) == pages
    assert all(q["bucket_width"] == "1d" and q["limit"] == str(days_a_page) for q in costs)
    assert {v for k, v in grouped[0] if k == "group_by"} == {
        "project_id",
        "line_item",
        "api_key_id",
    }


# -- provenance -------------------------------------------------------------------------------


def test_explain_user_names_who_granted_a_group_held_role(demo_audit: Audited) -> None:
    analysis = load_analysis(demo_audit.db)
    (verdict,) = explain_user(
        analysis.snapshot, analysis.model, analysis.catalog, "erin@example.com", "Payments"
    )
    held = next(b for b in verdict.bindings if b.via_group == "Payments Key Managers")
    assert held.granted is not None
    assert held.granted.by == "victor@example.com"
    assert held.granted.event == "role.assignment.created"
    assert held.granted.by_in_org is False
    assert held.granted.inferred  # the event names no role: matched by principal and place
    text = user_text((verdict,))
    assert "granted to the group by victor@example.com on 2026-02-21" in text
    assert "who is no longer in the organization" in text
    # Her own viewer role was given 300 days ago, before the 180-day audit-log window.
    own = next(b for b in verdict.bindings if b.via_group is None and b.scope == "project")
    assert own.granted is None
    assert "no event that made it in the audit log since 2025-12-03" in text
    assert verdict.to_dict()["grants_logged_since"] == "2025-12-03"


def test_explain_user_says_when_the_log_was_not_read(tmp_path: Path) -> None:
    db = tmp_path / "db"
    with Simulator(demo_org(NOW), admin_key=ADMIN_KEY) as sim:
        sim.add_fault(Fault.missing_scopes(r"^/organization/audit_logs", ("api.audit_logs.read",)))
        pull_and_analyze(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, db, clock=lambda: FIXED)
    analysis = load_analysis(db)
    (verdict,) = explain_user(
        analysis.snapshot, analysis.model, analysis.catalog, "erin@example.com", "Payments"
    )
    assert all(b.granted is None for b in verdict.bindings)
    assert verdict.grants_logged_since is None
    assert "the audit log's access changes were not read" in user_text((verdict,))


def test_a_role_granted_by_a_leaver_is_one_finding_about_the_group(demo_audit: Audited) -> None:
    found = [f for f in demo_audit.result.findings if f.check_id == "role-granted-by-departed"]
    assert [(f.subject_type, f.subject_name, f.project_name) for f in found] == [
        ("group", "Payments Key Managers", "Payments")
    ]
    assert "granted by victor@example.com on 2026-02-21" in found[0].message
    assert CHECKS_BY_ID["role-granted-by-departed"].evidence == "inferred"


def test_diff_names_the_actor_and_the_spend_that_moved(tmp_path: Path) -> None:
    db = tmp_path / "db"
    builder = demo_builder(NOW)
    with Simulator(builder.org, admin_key=ADMIN_KEY) as sim:
        pull_and_analyze(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, db, clock=lambda: FIXED)
        later = FIXED + timedelta(days=3)
        builder.now = int(later.timestamp())
        builder.org.now = builder.now
        builder.acting_as("user_frank")
        builder.set_project_role("proj_payments", "user_dave", "member", at_days_ago=1)
        # alice-never-used is used at last: from nothing to days of spend.
        fresh = builder.key_id("proj_payments", "alice-never-used")
        builder.use_key("proj_payments", fresh)
        spent = expected_cost(builder.org, fresh, builder.now - 30 * DAY, builder.now)
        pull_and_analyze(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, db, clock=lambda: later)
    diff = run_diff(db, DiffOptions())
    role = next(
        c
        for c in diff.changes
        if c.section == "project roles changed" and c.subject_id == "user_dave"
    )
    assert role.actor == "frank@example.com"
    assert role.to_dict()["actor"] == "frank@example.com"
    moved = {c.subject: c for c in diff.changes if c.section == "key spend changed"}
    assert spent >= 10  # past the default threshold (10 and 50%)
    assert moved["alice-never-used"].before == "0.00 USD"
    assert moved["alice-never-used"].after == money(spent, "USD")
    # Keys whose spend moved less than the threshold are not listed.
    assert "grace-quarterly" not in moved
    run = run_cli("diff", "--db", db, "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    changes = json.loads(run.stdout)["changes"]
    assert any(c["actor"] == "frank@example.com" for c in changes)


# -- what the review of this work found: each a test ------------------------------------------


def _two_pulls(tmp_path: Path, fault_second: Fault | None = None, **second: object) -> Path:
    """The demo pulled twice, three days apart: frank gives dave member in Payments,
    alice makes him an org owner, and alice-never-used is used; ``fault_second`` hits
    the second pull only."""
    db = tmp_path / "db"
    builder = demo_builder(NOW)
    with Simulator(builder.org, admin_key=ADMIN_KEY) as sim:
        pull_and_analyze(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, db, clock=lambda: FIXED)
        later = FIXED + timedelta(days=3)
        builder.now = builder.org.now = int(later.timestamp())
        builder.acting_as("user_frank")
        builder.set_project_role("proj_payments", "user_dave", "member", at_days_ago=1)
        builder.acting_as("user_alice")
        builder.set_org_role("user_dave", "owner", at_days_ago=0.5)
        builder.use_key("proj_payments", builder.key_id("proj_payments", "alice-never-used"))
        if fault_second is not None:
            sim.add_fault(fault_second)
        settings = PullSettings(**second)  # type: ignore[arg-type]
        pull_and_analyze(AdminKey(ADMIN_KEY), fast_settings(sim), settings, db, clock=lambda: later)
    return db


def test_each_change_is_matched_to_an_event_at_its_own_place(tmp_path: Path) -> None:
    diff = run_diff(_two_pulls(tmp_path), DiffOptions())
    actors = {(c.section, c.subject_id): c.actor for c in diff.changes}
    # frank's change was in Payments, alice's at org level: neither is taken for the other.
    assert actors[("project roles changed", "user_dave")] == "frank@example.com"
    assert actors[("org roles changed", "user_dave")] == "alice@example.com"
    run = run_cli("diff", "--db", tmp_path / "db", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "dave@example.com in Payments: viewer -> member (by frank@example.com)" in run.stdout


@pytest.mark.parametrize(
    ("fault", "settings"),
    [
        (Fault.missing_scopes(r"^/organization/costs", ("api.usage.read",)), {}),
        (None, {"usage_days": 7}),
    ],
    ids=["costs-not-read", "another-window"],
)
def test_spend_is_compared_only_between_like_readings(
    tmp_path: Path, fault: Fault | None, settings: dict[str, object]
) -> None:
    diff = run_diff(_two_pulls(tmp_path, fault, **settings), DiffOptions())
    # The key that began to spend would be listed; but a reading that cannot be compared
    # (costs unread, or a shorter window) lists nothing rather than invented drops.
    assert [c for c in diff.changes if c.section == "key spend changed"] == []


@pytest.mark.parametrize("when", ["soon", 10**12])
def test_an_event_without_a_readable_time_grants_nothing_and_breaks_nothing(
    tmp_path: Path, when: object
) -> None:
    builder = demo_builder(NOW)
    grant = next(
        e for e in builder.org.audit_logs if e["type"] == "role.assignment.created"
        and e["actor"]["session"]["user"]["id"] == "user_victor"
    )  # fmt: skip
    odd = json.loads(json.dumps(grant)) | {"id": "audit_log-odd", "effective_at": when}
    builder.org.audit_logs.append(odd)
    db = tmp_path / "db"
    with Simulator(builder.org, admin_key=ADMIN_KEY) as sim:
        pull_and_analyze(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, db, clock=lambda: FIXED)
    result = run_audit(db, AuditOptions(out_dir=tmp_path / "out", formats=("xlsx", "md")))
    odd_values = [f for f in result.findings if f.check_id == "unrecognized-value"]
    assert any("audit_access_events.effective_at" in f.subject_id for f in odd_values)
    departed = [f for f in result.findings if f.check_id == "role-granted-by-departed"]
    assert ["granted by victor@example.com on 2026-02-21" in f.message for f in departed] == [True]
    run = run_cli("explain", "user", "erin@example.com", "--project", "Payments", "--db", db,
                  cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "granted to the group by victor@example.com" in run.stdout


def test_costs_in_several_currencies_are_never_added_up(
    demo_audit: Audited, tmp_path: Path
) -> None:
    db = tmp_path / "db"
    db.write_bytes(demo_audit.db.read_bytes())
    org = demo_org(NOW)
    victor = next(k for k in org.project_api_keys["proj_payments"] if k["name"] == "victor-proxy")
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO costs (snapshot_id, start_at, end_at, project_id, api_key_id, "
            "line_item, amount, currency, raw) SELECT snapshot_id, start_at, end_at, "
            "project_id, api_key_id, 'gpt-4.1, input', 100.0, 'eur', '{}' FROM costs "
            "WHERE api_key_id = ? LIMIT 1",
            (victor["id"],),
        )
    result = run_audit(db, AuditOptions(out_dir=tmp_path / "out", formats=("json",)))
    message = next(
        f.message for f in result.findings
        if f.check_id == "key-spend-owner-gone" and f.subject_name == "victor-proxy"
    )  # fmt: skip
    assert message.startswith("spent amounts in EUR, USD and ")
    document = json.loads((tmp_path / "out" / "orgaudit-snapshot-1.json").read_text())
    row = next(r for r in document["tables"]["spend"] if r["name"] == "victor-proxy")
    assert row["cost"] is None and row["currency"] == "EUR, USD"
