"""The simulator's quirks of the real API, over real HTTP with the standard library.

Three behaviours the published spec does not describe but the API shows: project keys
with an ``expires_at``, an admin-key list that also returns every project key, and error
bodies whose ``error`` is a bare string. Each is an option, tested on and off here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from orgaudit.simulator import Fault, OrgBuilder, SimOrg, Simulator
from orgaudit.simulator.demo import demo_org
from orgaudit.simulator.generate import OrgShape, generate_org
from orgaudit.simulator.org import project_key_as_admin_key
from orgaudit.simulator.server import missing_scopes_message

from support import ADMIN_KEY, NOW, Answer, assert_error, call, ok

DAY = 86400
ADMIN_KEYS = "/organization/admin_api_keys"


def _org() -> OrgBuilder:
    """Two projects (one archived), a user key, a service-account key, an admin key."""
    b = OrgBuilder("org_quirks", NOW)
    alice = b.user("Alice", "alice@example.com", "owner", user_id="user_alice")
    bob = b.user("Bob", "bob@example.com", user_id="user_bob")
    live = b.project("Live", project_id="proj_live")
    old = b.project("Old", project_id="proj_old", archived_days_ago=5)
    b.member(live, bob, "member")
    b.member(old, bob, "member")
    bot = b.service_account(live, "live-bot", role="owner")
    b.key(live, bob, "bob-soon", scopes=[], expires_in_days=2, last_used_days_ago=0.5)
    b.key(live, bot, "bot-forever", scopes=[], last_used_days_ago=None)
    b.key(old, bob, "bob-expired", scopes=[], expires_in_days=-10, last_used_days_ago=20)
    b.remove_member(old, bob)  # an inactive owner: hidden from the default project list
    b.admin_key(alice, "admin", expires_in_days=30)
    return b


@pytest.fixture
def quirky() -> Iterator[Simulator]:
    """The small org above, with the admin list quirk on, served on loopback."""
    org = _org().org
    org.admin_list_includes_project_keys = True
    with Simulator(org, admin_key=ADMIN_KEY) as sim:
        yield sim


def _every(sim: Simulator, path: str, limit: int) -> list[dict[str, Any]]:
    """Every item of a last_id list, page by page."""
    items: list[dict[str, Any]] = []
    query = [("limit", str(limit))]
    while True:
        page = ok(sim, path, query)
        items.extend(page["data"])
        if not page["has_more"]:
            return items
        query = [("limit", str(limit)), ("after", page["last_id"])]


# -- a. expires_at on project keys --------------------------------------------------------------


def test_project_keys_carry_expires_at_in_unix_seconds_or_null(quirky: Simulator) -> None:
    live = ok(quirky, "/organization/projects/proj_live/api_keys")["data"]
    old = ok(quirky, "/organization/projects/proj_old/api_keys", [("owner_project_access", "any")])
    expiries = {k["name"]: k["expires_at"] for k in [*live, *old["data"]]}
    assert expiries == {
        "bob-soon": NOW + 2 * DAY,
        "bot-forever": None,
        "bob-expired": NOW - 10 * DAY,
    }
    assert all(k["object"] == "organization.project.api_key" for k in live)


def test_a_key_without_an_expiry_says_null_not_nothing() -> None:
    b = OrgBuilder("org_plain", NOW)
    project = b.project("P", project_id="proj_p")
    uid = b.user("U", "u@example.com")
    b.member(project, uid)
    b.key(project, uid, "k", scopes=None)
    with Simulator(b.org, admin_key=ADMIN_KEY) as sim:
        [key] = ok(sim, "/organization/projects/proj_p/api_keys")["data"]
    assert "expires_at" in key and key["expires_at"] is None


def test_generated_orgs_give_a_share_of_keys_an_expiry_deterministically() -> None:
    shape = OrgShape(users=40, projects=10, keys_per_project=10, archived_share=0.0)

    def expiries(seed: int, share: float = 0.2) -> list[int | None]:
        org = generate_org(dataclasses.replace(shape, expiring_share=share), seed=seed, now=NOW)
        return [k["expires_at"] for keys in org.project_api_keys.values() for k in keys]

    first = expiries(5)
    assert first == expiries(5)
    assert first != expiries(6)
    dated = [e for e in first if e is not None]
    assert 0.1 * len(first) <= len(dated) <= 0.35 * len(first)
    assert any(e < NOW for e in dated) and any(e > NOW for e in dated)
    assert set(expiries(5, share=0.0)) == {None}


def test_an_expiry_leaves_the_rest_of_a_generated_org_as_it_was() -> None:
    shape = OrgShape(users=30, projects=6, keys_per_project=5)
    with_expiry = generate_org(shape, seed=9, now=NOW)
    without = generate_org(dataclasses.replace(shape, expiring_share=0.0), seed=9, now=NOW)

    def stable(org: SimOrg) -> list[tuple[str, str, int]]:
        keys = [k for keys in org.project_api_keys.values() for k in keys]
        return [(k["id"], k["name"], k["created_at"]) for k in keys]

    assert stable(with_expiry) == stable(without)
    assert with_expiry.users == without.users
    assert with_expiry.audit_logs == without.audit_logs


def test_an_expired_generated_key_was_last_used_before_it_expired() -> None:
    org = generate_org(OrgShape(projects=20, keys_per_project=10), seed=2, now=NOW)
    keys = [k for keys in org.project_api_keys.values() for k in keys]
    expired = [k for k in keys if k["expires_at"] is not None and k["expires_at"] < NOW]
    assert expired
    for key in expired:
        assert key["last_used_at"] is None or key["last_used_at"] <= key["expires_at"]
        assert key["created_at"] < key["expires_at"]


# -- b. the admin-key list also returns project keys --------------------------------------------


def test_admin_list_appends_every_project_key_as_an_admin_key(quirky: Simulator) -> None:
    listed = ok(quirky, ADMIN_KEYS)["data"]
    project_keys = [k for keys in quirky.org.project_api_keys.values() for k in keys]

    assert [k["name"] for k in listed] == ["admin", "bob-soon", "bot-forever", "bob-expired"]
    assert {k["object"] for k in listed} == {"organization.admin_api_key"}
    # Keys of an archived project and of an owner without access are listed too.
    for key, shown in zip(project_keys, listed[1:], strict=True):
        for name in ("id", "name", "redacted_value", "created_at", "last_used_at", "expires_at"):
            assert shown[name] == key[name], name
        person = key["owner"][key["owner"]["type"]]
        assert shown["owner"]["type"] == key["owner"]["type"]
        assert {f: shown["owner"][f] for f in ("id", "name", "role", "created_at")} == {
            f: person[f] for f in ("id", "name", "role", "created_at")
        }
    owners = {k["name"]: k["owner"]["object"] for k in listed}
    assert owners["bot-forever"] == "organization.service_account"
    assert owners["bob-soon"] == owners["admin"] == "organization.user"


def test_admin_list_pages_run_through_admin_and_project_keys(quirky: Simulator) -> None:
    whole = ok(quirky, ADMIN_KEYS)["data"]
    assert _every(quirky, ADMIN_KEYS, limit=1) == whole
    first = ok(quirky, ADMIN_KEYS, [("limit", "2")])
    assert (first["first_id"], first["last_id"], first["has_more"]) == (
        whole[0]["id"],
        whole[1]["id"],
        True,
    )


def test_admin_list_shows_a_change_to_a_project_key_at_once(quirky: Simulator) -> None:
    before = {k["name"]: k for k in ok(quirky, ADMIN_KEYS)["data"]}
    assert before["bot-forever"]["last_used_at"] is None
    key = next(k for k in quirky.org.project_api_keys["proj_live"] if k["name"] == "bot-forever")
    key["last_used_at"] = NOW
    after = {k["name"]: k for k in ok(quirky, ADMIN_KEYS)["data"]}
    assert after["bot-forever"]["last_used_at"] == NOW


def test_admin_list_holds_only_admin_keys_when_the_quirk_is_off() -> None:
    org = _org().org
    assert org.admin_list_includes_project_keys is False  # the default
    with Simulator(org, admin_key=ADMIN_KEY) as sim:
        assert [k["name"] for k in ok(sim, ADMIN_KEYS)["data"]] == ["admin"]


def test_the_demo_org_lists_project_keys_among_its_admin_keys() -> None:
    org = demo_org(NOW)
    with Simulator(org, admin_key=ADMIN_KEY) as sim:
        listed = _every(sim, ADMIN_KEYS, limit=5)
    project = [k for keys in org.project_api_keys.values() for k in keys]
    assert [k["id"] for k in listed] == [k["id"] for k in [*org.admin_api_keys, *project]]
    assert listed[len(org.admin_api_keys) :] == [project_key_as_admin_key(k) for k in project]


# -- c. error bodies whose error is a bare string -----------------------------------------------


def _assert_bare(answer: Answer, status: int) -> str:
    assert answer.status == status, answer.body
    assert set(answer.body) == {"error"}
    message = answer.body["error"]
    assert isinstance(message, str) and message
    return message


@pytest.fixture
def stringy() -> Iterator[Simulator]:
    """The demo org, answering errors as bare strings."""
    with Simulator(demo_org(NOW), admin_key=ADMIN_KEY, error_style="string") as sim:
        yield sim


def test_string_style_makes_the_wrong_key_401_a_bare_string(stringy: Simulator) -> None:
    message = _assert_bare(call(stringy, "/organization/users", key="sk-wrong-000000000000"), 401)
    assert message.startswith("Incorrect API key provided")
    assert "sk-wrong-000000000000" not in message


@pytest.mark.parametrize("status", [401, 403])
def test_missing_scopes_fault_answers_in_the_style_asked(status: int) -> None:
    fault = Fault.missing_scopes("^/organization/projects$", status=status)
    with Simulator(demo_org(NOW), admin_key=ADMIN_KEY, faults=[fault]) as sim:
        spec_shaped = call(sim, "/organization/projects")
        sim.error_style = "string"
        bare = call(sim, "/organization/projects")
        other = call(sim, "/organization/users")

    expected = missing_scopes_message(["api.management.read"])
    assert "Missing scopes: api.management.read." in expected
    assert_error(spec_shaped, status)
    assert spec_shaped.body["error"]["message"] == expected
    assert _assert_bare(bare, status) == expected
    assert other.status == 200  # the fault hits only its path
    assert fault.times == -1  # and keeps hitting it


def test_missing_scopes_names_every_scope_asked() -> None:
    fault = Fault.missing_scopes(scopes=["api.audit_logs.read", "api.management.read"], times=1)
    assert (fault.kind, fault.status, fault.times) == ("status", 403, 1)
    assert "Missing scopes: api.audit_logs.read, api.management.read." in fault.message


def test_string_style_applies_to_every_status_fault(stringy: Simulator) -> None:
    stringy.add_fault(Fault("status", status=503, message="Service unavailable."))
    assert _assert_bare(call(stringy, "/organization/users"), 503) == "Service unavailable."


def test_string_style_leaves_other_errors_spec_shaped(stringy: Simulator) -> None:
    assert_error(call(stringy, "/organization/nowhere"), 404)
    assert_error(call(stringy, "/organization/users", [("limit", "1001")]), 400, "invalid_value")
    assert_error(call(stringy, "/organization/users", method="DELETE"), 405, "method_not_allowed")


def test_object_style_is_the_default_and_unknown_styles_are_refused() -> None:
    with Simulator(demo_org(NOW), admin_key=ADMIN_KEY) as sim:
        assert sim.error_style == "object"
        assert_error(call(sim, "/organization/users", key="sk-wrong-000000000000"), 401)
    with pytest.raises(ValueError, match="unknown error style"):
        Simulator(demo_org(NOW), admin_key=ADMIN_KEY, error_style="xml")  # type: ignore[arg-type]
