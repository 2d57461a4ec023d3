"""The simulator's contract, read with the standard library's urllib (no httpx, no mocks).

Every other test, the demo and the benchmark stand on this server behaving like the
Admin API: these tests pin down the behaviour they rely on.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest

from orgaudit.simulator import Fault, OrgBuilder, SimOrg, Simulator
from orgaudit.simulator.demo import DEMO_CASES, KEYS_WRITE, demo_org
from orgaudit.simulator.generate import OrgShape, generate_org
from orgaudit.simulator.usage import expected_cost

from support import ADMIN_KEY, NOW, Answer, Query, assert_error, call, ok


def names(page: dict[str, Any]) -> list[str]:
    return [item["name"] for item in page["data"]]


@pytest.fixture(scope="module")
def served() -> Iterator[Simulator]:
    """One demo-org simulator for the whole module: stopping one takes up to 0.5 s."""
    with Simulator(demo_org(NOW), admin_key=ADMIN_KEY) as sim:
        yield sim


@pytest.fixture
def faulty(served: Simulator) -> Iterator[Simulator]:
    """The shared simulator, for a test that adds faults; they are removed afterwards."""
    assert not served.faults
    try:
        yield served
    finally:
        served.faults.clear()


@contextmanager
def serving(sim: Simulator, org: SimOrg) -> Iterator[Simulator]:
    """Serve another org on the shared simulator for a while (``org`` may be changed)."""
    original = sim.org
    sim.org = org
    try:
        yield sim
    finally:
        sim.org = original


# -- authentication and methods ---------------------------------------------------------------


@pytest.mark.parametrize("key", ["sk-admin-WRONG-0123456789abcdef", None], ids=["wrong", "missing"])
def test_wrong_or_missing_key_is_401_with_an_openai_error(
    served: Simulator, key: str | None
) -> None:
    before = len(served.requests)
    answer = call(served, "/organization/users", key=key)

    assert_error(answer, 401, "invalid_api_key")
    assert "Incorrect API key provided" in answer.body["error"]["message"]
    # The presented key is masked, never echoed whole.
    assert "sk-admin-WRONG-0123456789abcdef" not in answer.body["error"]["message"]
    assert "data" not in answer.body
    [record] = served.requests[before:]
    assert (record.method, record.path, record.status) == ("GET", "/organization/users", 401)


@pytest.mark.parametrize("method", ["POST", "DELETE", "PATCH"])
def test_methods_other_than_get_are_405_and_recorded(served: Simulator, method: str) -> None:
    data = b'{"name": "x"}' if method != "DELETE" else None

    before = len(served.requests)
    answer = call(served, "/organization/projects", method=method, data=data)

    assert_error(answer, 405, "method_not_allowed")
    assert answer.headers["Allow"] == "GET"
    # Refusals are recorded before they are answered: no wait needed.
    [record] = served.requests[before:]
    assert (record.method, record.path, record.status) == (method, "/organization/projects", 405)
    assert served.org.projects == demo_org(NOW).projects  # nothing changed


# -- filters the API applies ------------------------------------------------------------------

PAYMENTS_KEYS = "/organization/projects/proj_payments/api_keys"


def test_project_keys_hide_keys_whose_owner_lost_access_unless_asked(
    served: Simulator,
) -> None:
    default = names(ok(served, PAYMENTS_KEYS))
    active = names(ok(served, PAYMENTS_KEYS, [("owner_project_access", "active")]))
    every = names(ok(served, PAYMENTS_KEYS, [("owner_project_access", "any")]))
    inactive = names(ok(served, PAYMENTS_KEYS, [("owner_project_access", "inactive")]))

    assert "heidi-old" not in default and "victor-proxy" not in default
    assert default == active
    assert sorted(every) == sorted([*default, "heidi-old", "victor-proxy"])
    assert len(every) == len(served.org.project_api_keys["proj_payments"])
    assert inactive == ["heidi-old", "victor-proxy"]


def test_project_keys_reject_an_invalid_owner_project_access(served: Simulator) -> None:
    answer = call(served, PAYMENTS_KEYS, [("owner_project_access", "everyone")])
    assert_error(answer, 400, "invalid_value")


def test_projects_hide_archived_unless_include_archived(served: Simulator) -> None:
    default = {p["id"] for p in ok(served, "/organization/projects")["data"]}
    everything = ok(served, "/organization/projects", [("include_archived", "true")])["data"]

    assert default == {"proj_payments", "proj_research"}
    assert {p["id"]: p["status"] for p in everything} == {
        "proj_payments": "active",
        "proj_research": "active",
        "proj_legacy": "archived",
    }
    explicit_false = ok(served, "/organization/projects", [("include_archived", "false")])
    assert {p["id"] for p in explicit_false["data"]} == default


def test_archived_project_users_are_400(served: Simulator) -> None:
    answer = call(served, "/organization/projects/proj_legacy/users")
    assert_error(answer, 400, "project_archived")
    # Its keys are still listed: the archived-with-keys case depends on it.
    legacy_keys = ok(served, "/organization/projects/proj_legacy/api_keys")
    assert names(legacy_keys) == ["legacy-batch"]


@pytest.mark.parametrize(
    "path",
    [
        "/organization/projects/proj_nope/users",
        "/organization/projects/proj_nope/api_keys",
        "/projects/proj_nope/roles",
        "/organization/groups/group_nope/users",
        "/organization/users/user_nope/roles",
    ],
)
def test_unknown_parent_is_404(served: Simulator, path: str) -> None:
    assert_error(call(served, path), 404, "not_found")


@pytest.mark.parametrize("path", ["/organization/nothing_here", "/organization/users/x/y/z"])
def test_unknown_path_is_404(served: Simulator, path: str) -> None:
    answer = call(served, path)
    assert_error(answer, 404)
    assert path in answer.body["error"]["message"]


# -- pages ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "largest"),
    [
        ("/organization/users", 100),
        ("/organization/projects/proj_payments/api_keys", 100),
        ("/organization/roles", 1000),
        ("/organization/groups", 1000),
    ],
)
def test_page_size_is_capped_as_the_spec_says(served: Simulator, path: str, largest: int) -> None:
    assert call(served, path, [("limit", str(largest))]).status == 200
    too_big = call(served, path, [("limit", str(largest + 1))])
    assert_error(too_big, 400, "invalid_value")
    assert str(largest) in too_big.body["error"]["message"]


def test_last_id_pages_carry_first_id_last_id_has_more(served: Simulator) -> None:
    every_id = [u["id"] for u in served.org.users]
    seen: list[str] = []
    query: list[tuple[str, str]] = [("limit", "4")]
    while True:
        page = ok(served, "/organization/users", query)
        ids = [u["id"] for u in page["data"]]
        assert page["object"] == "list"
        assert set(page) == {"object", "data", "first_id", "last_id", "has_more"}
        assert (page["first_id"], page["last_id"]) == (ids[0], ids[-1])
        seen += ids
        if not page["has_more"]:
            break
        assert len(ids) == 4
        query = [("limit", "4"), ("after", page["last_id"])]
    assert seen == every_id


def test_next_cursor_pages_carry_next_has_more_and_no_last_id(served: Simulator) -> None:
    every_id = [r["id"] for r in served.org.org_roles]
    assert len(every_id) == 3
    first = ok(served, "/organization/roles", [("limit", "2")])
    second = ok(served, "/organization/roles", [("limit", "2"), ("after", first["next"])])

    for page in (first, second):
        assert set(page) == {"object", "data", "has_more", "next"}
        assert "last_id" not in page and "first_id" not in page
    assert first["has_more"] is True and isinstance(first["next"], str)
    assert second["has_more"] is False and second["next"] is None
    assert [r["id"] for r in first["data"] + second["data"]] == every_id


# -- audit logs -------------------------------------------------------------------------------


@pytest.fixture
def audit_sim(served: Simulator) -> Iterator[Simulator]:
    """An org whose audit events were appended out of time order, of four types."""
    b = OrgBuilder("org_audit", NOW)
    pid = b.project("P", project_id="proj_p")
    b.audit_event("api_key.created", b.days_ago(10), pid, {"id": "key_a"})
    b.audit_event("api_key.updated", b.days_ago(1), pid, {"id": "key_a"})
    b.audit_event("project.created", b.days_ago(5), pid, {"id": pid})
    b.audit_event("api_key.deleted", b.days_ago(20), pid, {"id": "key_b"})
    b.audit_event("api_key.created", b.days_ago(3), None, {"id": "key_c"})
    with serving(served, b.org) as sim:
        yield sim


def _events(sim: Simulator, query: Query) -> list[tuple[str, int]]:
    data = ok(sim, "/organization/audit_logs", [*query, ("limit", "100")])["data"]
    return [(event["type"], event["effective_at"]) for event in data]


def test_audit_logs_come_newest_first(audit_sim: Simulator) -> None:
    events = _events(audit_sim, ())
    assert len(events) == 5
    times = [at for _, at in events]
    assert times == sorted(times, reverse=True)


def test_audit_logs_filter_by_repeated_event_types(audit_sim: Simulator) -> None:
    query = [("event_types[]", "api_key.created"), ("event_types[]", "api_key.updated")]
    events = _events(audit_sim, query)

    assert [kind for kind, _ in events] == ["api_key.updated", "api_key.created", "api_key.created"]
    only = _events(audit_sim, [("event_types[]", "project.created")])
    assert [kind for kind, _ in only] == ["project.created"]


def test_audit_logs_filter_by_effective_at_gte(audit_sim: Simulator) -> None:
    since = NOW - 5 * 86400  # exactly the project.created event: gte keeps it
    events = _events(audit_sim, [("effective_at[gte]", str(since))])
    assert [kind for kind, _ in events] == ["api_key.updated", "api_key.created", "project.created"]
    assert all(at >= since for _, at in events)

    both = _events(
        audit_sim, [("event_types[]", "api_key.created"), ("effective_at[gte]", str(since))]
    )
    assert [kind for kind, _ in both] == ["api_key.created"]


# -- faults -----------------------------------------------------------------------------------


def _statuses(sim: Simulator, path: str, n: int) -> list[int]:
    return [call(sim, path).status for _ in range(n)]


def test_fault_after_skips_the_first_matching_requests(faulty: Simulator) -> None:
    faulty.add_fault(Fault("status", path="^/organization/users$", status=503, after=2))
    assert _statuses(faulty, "/organization/users", 4) == [200, 200, 503, 200]


def test_fault_times_counts_down(faulty: Simulator) -> None:
    fault = Fault("status", status=500, times=2)
    faulty.add_fault(fault)
    assert _statuses(faulty, "/organization/users", 4) == [500, 500, 200, 200]
    assert fault.times == 0


def test_fault_times_minus_one_lasts(faulty: Simulator) -> None:
    fault = Fault("status", status=502, times=-1)
    faulty.add_fault(fault)
    assert _statuses(faulty, "/organization/invites", 6) == [502] * 6
    assert fault.times == -1


def test_fault_hits_only_paths_matching_its_regex(faulty: Simulator) -> None:
    faulty.add_fault(Fault("status", path=r"^/organization/invites$", status=503))
    before = len(faulty.requests)
    # Requests to other paths neither hit the fault nor use it up.
    assert _statuses(faulty, "/organization/users", 3) == [200, 200, 200]
    assert _statuses(faulty, "/organization/projects/proj_payments/users", 1) == [200]
    assert _statuses(faulty, "/organization/invites", 2) == [503, 200]
    records = faulty.requests[before:]
    assert [(r.path, r.status) for r in records if r.status != 200] == [
        ("/organization/invites", 503)
    ]


def test_status_fault_sends_its_headers_and_message(faulty: Simulator) -> None:
    faulty.add_fault(
        Fault(
            "status",
            status=429,
            headers={"Retry-After-Ms": "250", "X-Test": "yes"},
            message="Rate limit reached.",
        )
    )
    answer = call(faulty, "/organization/users")
    assert_error(answer, 429)
    assert answer.headers["Retry-After-Ms"] == "250"
    assert answer.headers["X-Test"] == "yes"
    assert answer.body["error"]["message"] == "Rate limit reached."


def test_a_fault_does_not_hit_a_request_with_a_wrong_key(faulty: Simulator) -> None:
    faulty.add_fault(Fault("status", status=503))
    assert call(faulty, "/organization/users", key="sk-wrong-key-000000000000").status == 401
    assert _statuses(faulty, "/organization/users", 2) == [503, 200]


def test_unknown_fault_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode")


# -- concurrency, shutdown, records -----------------------------------------------------------


def test_max_in_flight_answers_429_with_the_throttle_header(demo: SimOrg) -> None:
    throttle = {"Retry-After-Ms": "40"}
    answers: list[Answer] = []
    barrier = threading.Barrier(2)

    def one_request(sim: Simulator) -> None:
        barrier.wait()
        answers.append(call(sim, "/organization/users"))

    with Simulator(
        demo, admin_key=ADMIN_KEY, latency=0.4, max_in_flight=1, throttle_headers=throttle
    ) as sim:
        threads = [threading.Thread(target=one_request, args=(sim,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)

    assert sorted(a.status for a in answers) == [200, 429]
    throttled = next(a for a in answers if a.status == 429)
    assert_error(throttled, 429, "rate_limit_exceeded")
    assert throttled.headers["Retry-After-Ms"] == "40"
    assert sim.max_in_flight_seen == 1
    assert sorted(r.status for r in sim.requests) == [200, 429]


def test_stop_cuts_open_keep_alive_connections(demo: SimOrg) -> None:
    sim = Simulator(demo, admin_key=ADMIN_KEY).start()
    parts = urlsplit(sim.base_url)
    assert parts.hostname is not None and parts.port is not None
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=3)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    try:
        conn.request("GET", "/v1/organization/users", headers=headers)
        first = conn.getresponse()
        assert first.status == 200
        first.read()
        assert not first.will_close  # the connection stays open for the next request

        sim.stop()

        with pytest.raises((OSError, http.client.HTTPException)) as failure:
            conn.request("GET", "/v1/organization/users", headers=headers)
            conn.getresponse().read()
        # Cut, not merely unanswered: a timeout would mean the connection still lived.
        assert not isinstance(failure.value, TimeoutError)
    finally:
        conn.close()
        sim.stop()  # a second stop is harmless
        # The handler thread may report the reset on stderr; let it do so inside this test.
        time.sleep(0.05)


def test_requests_record_method_path_query_and_status(served: Simulator) -> None:
    before = len(served.requests)
    call(served, "/organization/projects", [("include_archived", "true"), ("limit", "5")])
    [record] = served.requests[before:]
    assert record.method == "GET"
    assert record.path == "/organization/projects"
    assert record.query == (("include_archived", "true"), ("limit", "5"))
    assert record.status == 200
    assert served.count("^/organization/projects$", status=200) >= 1


def _big_org() -> SimOrg:
    """One user whose answer (16 MiB) outgrows the loopback socket buffers.

    A client that reads only the status line and headers of it leaves the server's
    handler blocked writing the body, which makes "before the answer is written" and
    "after" tell apart deterministically.
    """
    b = OrgBuilder("org_big", NOW)
    b.user("x" * (16 << 20), "big@example.com", user_id="user_big")
    return b.org


def _open(sim: Simulator) -> http.client.HTTPConnection:
    parts = urlsplit(sim.base_url)
    assert parts.hostname is not None and parts.port is not None
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)


AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def test_a_get_is_recorded_before_its_answer_is_written(served: Simulator) -> None:
    # At HEAD 75bc737 do_GET recorded a GET only after writing its answer, so a test could
    # read sim.requests right after a response and miss the request.
    with serving(served, _big_org()):
        before = len(served.requests)
        conn = _open(served)
        try:
            conn.request("GET", "/v1/organization/users", headers=AUTH)
            response = conn.getresponse()  # status and headers only; the body is pending
            recorded = served.requests[before:]
            assert response.status == 200
            assert [(r.path, r.status) for r in recorded] == [("/organization/users", 200)]
            response.read()
        finally:
            conn.close()


def test_a_request_leaves_the_in_flight_count_before_its_answer_is_written() -> None:
    # A client that sends its next request as it reads an answer must not be throttled by
    # the request it is reading.
    with Simulator(_big_org(), admin_key=ADMIN_KEY, max_in_flight=1) as sim:
        conn = _open(sim)
        try:
            conn.request("GET", "/v1/organization/users", headers=AUTH)
            response = conn.getresponse()  # its handler is still writing the body
            assert response.status == 200
            assert call(sim, "/organization/invites").status == 200
            response.read()
        finally:
            conn.close()


def test_keep_alive_answers_are_not_held_back_by_delayed_acks(served: Simulator) -> None:
    conn = _open(served)
    took: list[float] = []
    try:
        for _ in range(11):
            start = time.perf_counter()
            conn.request("GET", "/v1/organization/invites", headers=AUTH)
            conn.getresponse().read()
            took.append(time.perf_counter() - start)
    finally:
        conn.close()
    # The first request pays for the connection; loopback answers take well under 1 ms.
    assert statistics.median(took[1:]) < 0.02, [f"{t * 1000:.1f} ms" for t in took]


# -- the generator ----------------------------------------------------------------------------

SHAPE = OrgShape(
    users=30,
    projects=6,
    members_per_project=4,
    keys_per_project=3,
    service_accounts_per_project=2,
    custom_roles=4,
    groups=3,
    owners=2,
    archived_share=0.0,
    extra_audit_events=10,
)


def _dump(org: SimOrg) -> str:
    """Every list of the org as JSON (tuple keys spelt out), for comparing orgs."""
    parts: dict[str, object] = {}
    for f in dataclasses.fields(org):
        value = getattr(org, f.name)
        if isinstance(value, dict):
            value = {"|".join(k) if isinstance(k, tuple) else k: v for k, v in value.items()}
        parts[f.name] = value
    return json.dumps(parts, sort_keys=True)


def test_generated_org_is_deterministic_for_a_seed() -> None:
    first = _dump(generate_org(SHAPE, seed=7, now=NOW))
    again = _dump(generate_org(SHAPE, seed=7, now=NOW))
    other = _dump(generate_org(SHAPE, seed=8, now=NOW))
    assert first == again
    assert first != other


def test_generated_org_has_the_shape_asked_for() -> None:
    org = generate_org(SHAPE, seed=3, now=NOW)

    assert len(org.users) == SHAPE.users
    assert sum(u["role"] == "owner" for u in org.users) == SHAPE.owners
    assert len(org.projects) == SHAPE.projects
    assert all(p["status"] == "active" for p in org.projects)  # archived share 0
    assert len(org.groups) == SHAPE.groups
    custom = [r for r in org.org_roles if not r["predefined_role"]] + [
        r for roles in org.project_roles.values() for r in roles if not r["predefined_role"]
    ]
    assert len(custom) == SHAPE.custom_roles
    for project in org.projects:
        pid = project["id"]
        assert len(org.project_api_keys[pid]) == SHAPE.keys_per_project
        assert len(org.project_service_accounts[pid]) == SHAPE.service_accounts_per_project
        # remove_member may take one member out again
        assert SHAPE.members_per_project - 1 <= len(org.project_users[pid])
        assert len(org.project_users[pid]) <= SHAPE.members_per_project
    updates = [e for e in org.audit_logs if e["type"] == "api_key.updated"]
    assert len(updates) == SHAPE.extra_audit_events
    assert [k["name"] for k in org.admin_api_keys] == ["generated-admin"]


def test_generated_archived_share_one_archives_every_project() -> None:
    org = generate_org(dataclasses.replace(SHAPE, archived_share=1.0), seed=1, now=NOW)
    assert {p["status"] for p in org.projects} == {"archived"}
    assert all(p["archived_at"] is not None for p in org.projects)


def test_generated_org_is_served(served: Simulator) -> None:
    org = generate_org(dataclasses.replace(SHAPE, users=150), seed=11, now=NOW)
    with serving(served, org) as sim:
        first = ok(sim, "/organization/users", [("limit", "100")])
        rest = ok(sim, "/organization/users", [("limit", "100"), ("after", first["last_id"])])
    assert first["has_more"] is True and rest["has_more"] is False
    assert len(first["data"]) + len(rest["data"]) == 150


# -- the demo org -----------------------------------------------------------------------------


def _user(org: SimOrg, uid: str) -> dict[str, Any]:
    return next(u for u in org.users if u["id"] == uid)


def _projects_of(org: SimOrg, uid: str) -> set[str]:
    return {
        pid for pid, members in org.project_users.items() if any(m["id"] == uid for m in members)
    }


def _member_role(org: SimOrg, pid: str, uid: str) -> str | None:
    return next((m["role"] for m in org.project_users[pid] if m["id"] == uid), None)


def _group(org: SimOrg, name: str) -> dict[str, Any]:
    return next(g for g in org.groups if g["name"] == name)


def _key(org: SimOrg, name: str) -> tuple[str, dict[str, Any]]:
    return next(
        (pid, key)
        for pid, keys in org.project_api_keys.items()
        for key in keys
        if key["name"] == name
    )


def _scopes_recorded(org: SimOrg, key_id: str) -> list[list[str]]:
    return [
        e["api_key.created"]["data"]["scopes"]
        for e in org.audit_logs
        if e["type"] == "api_key.created" and e["api_key.created"]["id"] == key_id
    ]


def _group_project_role(org: SimOrg, pid: str, group_name: str) -> dict[str, Any] | None:
    gid = _group(org, group_name)["id"]
    assert gid in {g["group_id"] for g in org.project_groups[pid]}
    role_ids = org.project_group_roles[(pid, gid)]
    assert len(role_ids) == 1
    return org.role(role_ids[0], pid)


def _check_reader_not_in_payments(org: SimOrg) -> None:
    assert _user(org, "user_carol")["role"] == "reader"
    assert _projects_of(org, "user_carol") == {"proj_research"}


def _check_project_viewer(org: SimOrg) -> None:
    assert _member_role(org, "proj_payments", "user_dave") == "viewer"


def _check_group_grants_key_write(org: SimOrg) -> None:
    assert _member_role(org, "proj_payments", "user_erin") == "viewer"
    members = {u["id"] for u in org.group_users[_group(org, "Payments Key Managers")["id"]]}
    assert members == {"user_erin"}
    role = _group_project_role(org, "proj_payments", "Payments Key Managers")
    assert role is not None and role["name"] == "Key Manager"
    assert KEYS_WRITE in role["permissions"]


def _check_group_only_member(org: SimOrg) -> None:
    assert _projects_of(org, "user_ivan") == set()
    members = {u["id"] for u in org.group_users[_group(org, "Data Science")["id"]]}
    assert members == {"user_ivan"}
    role = _group_project_role(org, "proj_research", "Data Science")
    assert role is not None and role["name"] == "member"


def _check_owner_in_no_project(org: SimOrg) -> None:
    assert _user(org, "user_frank")["role"] == "owner"
    assert _projects_of(org, "user_frank") == set()


def _check_reader_in_no_project(org: SimOrg) -> None:
    assert _user(org, "user_peggy")["role"] == "reader"
    assert _projects_of(org, "user_peggy") == set()


def _check_custom_role_without_key_write(org: SimOrg) -> None:
    assert _member_role(org, "proj_research", "user_oscar") == "viewer"
    roles = [
        org.role(rid, "proj_research")
        for rid in org.project_user_roles[("proj_research", "user_oscar")]
    ]
    custom = [r for r in roles if r is not None and not r["predefined_role"]]
    assert [r["name"] for r in custom] == ["Responses caller"]
    assert KEYS_WRITE not in custom[0]["permissions"]


def _check_mixed_scope_trap(org: SimOrg) -> None:
    pid, key = _key(org, "grace-responses")
    assert pid == "proj_payments"
    [scopes] = _scopes_recorded(org, key["id"])
    assert {"api.responses.write", "api.model.chat_completions.request"} <= set(scopes)
    assert "model.request" not in scopes


def _check_owner_left_project(org: SimOrg) -> None:
    pid, key = _key(org, "heidi-old")
    assert pid == "proj_payments"
    assert key["owner_project_access"] == "inactive"
    assert key["owner"]["user"]["id"] == "user_heidi"
    assert _member_role(org, "proj_payments", "user_heidi") is None


def _check_service_account_owner(org: SimOrg) -> None:
    [bot] = [
        sa for sa in org.project_service_accounts["proj_payments"] if sa["name"] == "payments-bot"
    ]
    assert bot["role"] == "owner"


def _invite(org: SimOrg, email: str) -> dict[str, Any]:
    return next(i for i in org.invites if i["email"] == email)


def _check_invite_pending(org: SimOrg) -> None:
    invite = _invite(org, "kate@example.com")
    assert (invite["status"], invite["role"]) == ("pending", "reader")
    assert invite["expires_at"] > NOW


def _check_invite_expired(org: SimOrg) -> None:
    invite = _invite(org, "judy@example.com")
    assert (invite["status"], invite["role"]) == ("expired", "owner")
    assert invite["expires_at"] < NOW


def _check_archived_project_with_keys(org: SimOrg) -> None:
    legacy = next(p for p in org.projects if p["id"] == "proj_legacy")
    assert legacy["status"] == "archived" and legacy["archived_at"] is not None
    pid, _ = _key(org, "legacy-batch")
    assert pid == "proj_legacy"


def _check_unrestricted_keys(org: SimOrg) -> None:
    for name, owner_type in (("bob-laptop", "user"), ("payments-bot-prod", "service_account")):
        _, key = _key(org, name)
        assert key["owner"]["type"] == owner_type
        assert _scopes_recorded(org, key["id"]) == [[]]


def _check_never_used_key(org: SimOrg) -> None:
    pid, key = _key(org, "alice-never-used")
    assert pid == "proj_payments"
    assert key["last_used_at"] is None


def _check_scopes_unknown(org: SimOrg) -> None:
    pid, key = _key(org, "alice-ci")
    assert pid == "proj_research"
    assert not any(key["id"] in json.dumps(event) for event in org.audit_logs)


def _admin_key(org: SimOrg, name: str) -> dict[str, Any]:
    return next(k for k in org.admin_api_keys if k["name"] == name)


def _check_admin_key_no_expiry(org: SimOrg) -> None:
    assert _admin_key(org, "audit-key")["expires_at"] is None


def _check_admin_key_unused(org: SimOrg) -> None:
    assert _admin_key(org, "old-admin")["last_used_at"] is None


DAY = 86400


def _check_key_expiring_in_use(org: SimOrg) -> None:
    pid, key = _key(org, "research-etl-rotating")
    assert pid == "proj_research"
    assert key["owner"]["type"] == "service_account"
    assert key["owner"]["service_account"]["name"] == "research-etl"
    assert key["expires_at"] == NOW + 3 * DAY
    assert NOW - key["last_used_at"] < DAY


def _check_key_expired_listed(org: SimOrg) -> None:
    pid, key = _key(org, "carol-expired")
    assert pid == "proj_research"
    assert key["owner"]["type"] == "user"
    assert key["expires_at"] == NOW - 10 * DAY
    assert key["owner_project_access"] == "active"  # listed by default, not hidden
    assert key["last_used_at"] < key["expires_at"]


def _check_key_expiring_later(org: SimOrg) -> None:
    _, key = _key(org, "grace-quarterly")
    assert key["expires_at"] == NOW + 60 * DAY
    expiring = {
        k["name"] for keys in org.project_api_keys.values() for k in keys if k["expires_at"]
    }
    assert expiring == {"research-etl-rotating", "carol-expired", "grace-quarterly"}


def _check_admin_list_has_project_keys(org: SimOrg) -> None:
    assert org.admin_list_includes_project_keys
    listed = {k["id"] for k in org.admin_key_list()}
    project = {k["id"] for keys in org.project_api_keys.values() for k in keys}
    assert project <= listed
    assert listed - project == {k["id"] for k in org.admin_api_keys}


def _check_spend_owner_left(org: SimOrg) -> None:
    pid, key = _key(org, "victor-proxy")
    assert pid == "proj_payments"
    assert key["owner"]["user"]["id"] == "user_victor"
    assert all(u["id"] != "user_victor" for u in org.users)  # left the org
    assert key["owner_project_access"] == "inactive"
    window_start = NOW - 30 * DAY
    assert expected_cost(org, key["id"], window_start, NOW) > 0  # spent in the window


def _check_granted_by_leaver(org: SimOrg) -> None:
    managers = next(g["id"] for g in org.groups if g["name"] == "Payments Key Managers")
    grants = [
        e
        for e in org.audit_logs
        if e["type"] == "role.assignment.created"
        and e["role.assignment.created"]["principal_id"] == managers
    ]
    assert [e["actor"]["session"]["user"]["email"] for e in grants] == ["victor@example.com"]
    assert grants[0]["project"]["id"] == "proj_payments"
    assert all(u["id"] != "user_victor" for u in org.users)


def _check_key_idle(org: SimOrg) -> None:
    _, key = _key(org, "heidi-old")
    assert NOW - key["last_used_at"] > 30 * DAY  # used, but before the usage window
    assert expected_cost(org, key["id"], NOW - 30 * DAY, NOW) == 0


DEMO_CHECKS: dict[str, Callable[[SimOrg], None]] = {
    "reader-not-in-payments": _check_reader_not_in_payments,
    "project-viewer": _check_project_viewer,
    "group-grants-key-write": _check_group_grants_key_write,
    "group-only-member": _check_group_only_member,
    "owner-in-no-project": _check_owner_in_no_project,
    "reader-in-no-project": _check_reader_in_no_project,
    "custom-role-without-key-write": _check_custom_role_without_key_write,
    "mixed-scope-trap": _check_mixed_scope_trap,
    "owner-left-project": _check_owner_left_project,
    "service-account-owner": _check_service_account_owner,
    "invite-pending": _check_invite_pending,
    "invite-expired": _check_invite_expired,
    "archived-project-with-keys": _check_archived_project_with_keys,
    "unrestricted-keys": _check_unrestricted_keys,
    "never-used-key": _check_never_used_key,
    "scopes-unknown": _check_scopes_unknown,
    "admin-key-no-expiry": _check_admin_key_no_expiry,
    "admin-key-unused": _check_admin_key_unused,
    "key-expiring-in-use": _check_key_expiring_in_use,
    "key-expired-listed": _check_key_expired_listed,
    "key-expiring-later": _check_key_expiring_later,
    "admin-list-has-project-keys": _check_admin_list_has_project_keys,
    "spend-owner-left": _check_spend_owner_left,
    "granted-by-leaver": _check_granted_by_leaver,
    "key-idle": _check_key_idle,
}


def test_every_demo_case_has_a_check() -> None:
    assert set(DEMO_CHECKS) == set(DEMO_CASES)


@pytest.mark.parametrize("case", sorted(DEMO_CASES))
def test_demo_org_holds_the_case(demo: SimOrg, case: str) -> None:
    DEMO_CHECKS[case](demo)


def test_demo_cases_are_served_as_the_client_sees_them(served: Simulator) -> None:
    payments_members = {
        m["id"]: m["role"] for m in ok(served, "/organization/projects/proj_payments/users")["data"]
    }
    assert "user_carol" not in payments_members
    assert payments_members["user_dave"] == "viewer"
    accounts = ok(served, "/organization/projects/proj_payments/service_accounts")["data"]
    assert {a["name"]: a["role"] for a in accounts}["payments-bot"] == "owner"
    admin_keys = {k["name"]: k for k in ok(served, "/organization/admin_api_keys")["data"]}
    assert admin_keys["audit-key"]["expires_at"] is None
    assert admin_keys["bob-laptop"]["object"] == "organization.admin_api_key"  # the quirk
    research = ok(served, "/organization/projects/proj_research/api_keys")["data"]
    expiries = {k["name"]: k["expires_at"] for k in research}
    assert expiries["carol-expired"] < NOW < expiries["research-etl-rotating"]
    assert expiries["carol-notebook"] is None
