"""The access model end to end: an org served over real HTTP, pulled into SQLite, analyzed.

Every test builds an org with :class:`OrgBuilder`, serves it with the simulator, pulls it
into a real database and reads the verdicts the access model gives. Each rule of the
permission catalog is pinned both ways: one case it grants, one it does not. Most tests
share one pull of a rich org (``rich``); the ones that need faults or another org pull
their own (a pull of these orgs takes a fraction of a second).
"""

from __future__ import annotations

import json
import re
import sqlite3
import tomllib
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import pandas as pd
import pytest

from orgaudit import store
from orgaudit.errors import ConfigError
from orgaudit.explain import explain_key, explain_user
from orgaudit.model.access import level_for
from orgaudit.model.analysis import Analysis, analyze
from orgaudit.model.bindings import (
    ORG_GROUP_ROLE,
    ORG_ROLE,
    PROJECT_GROUP_ROLE,
    PROJECT_RBAC_ROLE,
    SERVICE_ACCOUNT_ROLE,
)
from orgaudit.model.catalog import Catalog, load_catalog
from orgaudit.model.keys import request_permissions
from orgaudit.settings import AdminKey
from orgaudit.simulator import Fault, OrgBuilder, SimOrg, Simulator
from orgaudit.simulator.org import project_role_id
from orgaudit.store.snapshot import load_snapshot
from orgaudit.vocabulary import Verdict

from support import ADMIN_KEY, NOW, PULL, fast_settings, pull, pull_and_analyze

ALLOWED, DENIED, UNKNOWN = Verdict

KEYS_WRITE = "api.organization.projects.api_keys.write"
KEYS_READ = "api.organization.projects.api_keys.read"
ALPHA, BETA, OLD = "proj_alpha", "proj_beta", "proj_old"
ELSEWHERE = None  # the "every other project" row of a principal

# What each user of the rich org is there to show.
USERS: dict[str, str] = {
    "u_owner_out": "org owner, in no project",
    "u_reader_out": "org reader, in no project and no group",
    "u_member": "org reader, member of Alpha only",
    "u_viewer": "org reader, viewer of Alpha only",
    "u_powner": "org reader, owner of Alpha",
    "u_direct_writer": "viewer of Alpha, plus custom role 'Key Writer' (api_keys.write) directly",
    "u_direct_caller": "viewer of Alpha, plus custom role 'Responses caller' (no api_keys.write)",
    "u_group_writer": "in Alpha only through group 'Alpha Key Writers' ('Key Writer')",
    "u_group_member": "in Beta only through group 'Beta Team' (built-in member)",
    "u_org_writer": "group 'Org Key Writers' holds an org role with api_keys.write; viewer of Beta",
    "u_org_keyreader": "group 'Org Key Readers' holds an org role with api_keys.read only",
    "u_legacy_role": "org role 'writer' (unknown to the catalog); member of Alpha, viewer of Beta",
    "u_archived": "member of archived Old, directly and through group 'Old Team'",
}


def rich_org(*, predefined_permissions: tuple[str, ...] = ()) -> SimOrg:
    """An org holding one principal per case of :data:`USERS`, and a service account."""
    b = OrgBuilder("org_rich", NOW, predefined_permissions=predefined_permissions)
    alpha = b.project("Alpha", project_id=ALPHA)
    beta = b.project("Beta", project_id=BETA)
    old = b.project("Old", project_id=OLD, archived_days_ago=10)
    for uid in USERS:
        role = {"u_owner_out": "owner", "u_legacy_role": "writer"}.get(uid, "reader")
        name = uid.removeprefix("u_").replace("_", " ").title()
        b.user(name, f"{uid}@example.com", role, user_id=uid)

    b.member(alpha, "u_member", "member")
    b.member(alpha, "u_viewer", "viewer")
    b.member(alpha, "u_powner", "owner")
    key_writer = b.custom_project_role(alpha, "Key Writer", [KEYS_READ, KEYS_WRITE])
    b.member(alpha, "u_direct_writer", "viewer")
    b.assign_project_role(alpha, "u_direct_writer", key_writer)
    caller = b.custom_project_role(alpha, "Responses caller", ["api.responses.write"])
    b.member(alpha, "u_direct_caller", "viewer")
    b.assign_project_role(alpha, "u_direct_caller", caller)
    b.group_in_project(alpha, b.group("Alpha Key Writers", ["u_group_writer"]), key_writer)
    b.group_in_project(beta, b.group("Beta Team", ["u_group_member"]), project_role_id("member"))

    b.group_org_role(
        b.group("Org Key Writers", ["u_org_writer"]),
        b.custom_org_role("Org Key Writer", [KEYS_READ, KEYS_WRITE]),
    )
    b.member(beta, "u_org_writer", "viewer")
    b.group_org_role(
        b.group("Org Key Readers", ["u_org_keyreader"]),
        b.custom_org_role("Org Key Reader", [KEYS_READ]),
    )
    b.member(alpha, "u_legacy_role", "member")
    b.member(beta, "u_legacy_role", "viewer")
    # The simulator answers 400 for the users of an archived project (as the spec does),
    # so this direct membership never reaches the snapshot; the group's role in Old does.
    b.member(old, "u_archived", "member")
    b.group_in_project(old, b.group("Old Team", ["u_archived"]), project_role_id("member"))

    b.service_account(alpha, "alpha-bot", role="owner")
    b.key(alpha, "u_member", "member-all", scopes=[])
    b.key(alpha, "u_member", "member-readonly", scopes=["api.all.read"])
    return b.org


def analysis_of(
    org: SimOrg,
    db_path: Path,
    *,
    faults: Iterable[Fault] = (),
    catalog: Catalog | None = None,
) -> Analysis:
    """Serve ``org``, pull it over HTTP into ``db_path``, and analyze the snapshot."""
    with Simulator(org, admin_key=ADMIN_KEY, faults=list(faults)) as sim:
        pull(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, db_path)
    with store.connect(db_path, create=False) as conn:
        snapshot = load_snapshot(conn)
    return analyze(snapshot, catalog or load_catalog())


def access(analysis: Analysis, principal: str, project: str | None) -> tuple[str, str]:
    """(level, verdict) of a principal in a project (None: in every other project)."""
    if project is None:
        levels = analysis.model.levels
        row = levels[(levels["principal_id"] == principal) & levels["project_id"].isna()]
        assert len(row) == 1, f"{principal} has no 'every other project' row"
        found = row.iloc[0]
    else:
        found = level_for(analysis.model, principal, project)
    return str(found["level"]), str(found["verdict"])


def bindings_of(analysis: Analysis, principal: str, project: str | None) -> pd.DataFrame:
    bindings = analysis.model.bindings
    mine = bindings[bindings["principal_id"] == principal]
    if project is None:
        return mine[mine["project_id"].isna()]
    return mine[mine["project_id"] == project]


def service_account_id(analysis: Analysis, name: str) -> str:
    accounts = analysis.snapshot["project_service_accounts"]
    return str(accounts.loc[accounts["name"] == name, "id"].iloc[0])


class Pulled(NamedTuple):
    db: Path
    analysis: Analysis


@pytest.fixture(scope="module")
def rich(tmp_path_factory: pytest.TempPathFactory) -> Pulled:
    """The rich org, pulled once through the pipeline (which also stores derived tables)."""
    db = tmp_path_factory.mktemp("rich") / "rich.db"
    with Simulator(rich_org(), admin_key=ADMIN_KEY) as sim:
        result = pull_and_analyze(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, db)
    assert {c.status for c in result.collected.coverage} == {"complete"}
    with store.connect(db, create=False) as conn:
        snapshot = load_snapshot(conn, result.snapshot_id)
    return Pulled(db, analyze(snapshot, load_catalog()))


# -- org roles ----------------------------------------------------------------------------


def test_org_owner_in_no_project_manages_keys_everywhere(rich: Pulled) -> None:
    a = rich.analysis
    assert access(a, "u_owner_out", ELSEWHERE) == ("manage_all", ALLOWED)
    assert access(a, "u_owner_out", ALPHA) == ("manage_all", ALLOWED)
    assert access(a, "u_owner_out", BETA) == ("manage_all", ALLOWED)


def test_org_reader_in_no_project_has_no_key_rights(rich: Pulled) -> None:
    a = rich.analysis
    assert access(a, "u_reader_out", ELSEWHERE) == ("none", DENIED)
    assert access(a, "u_reader_out", ALPHA) == ("none", DENIED)
    (org_role,) = bindings_of(a, "u_reader_out", ELSEWHERE).itertuples()
    assert (org_role.kind, org_role.role_name, org_role.preset_id) == (
        ORG_ROLE,
        "reader",
        "org_reader",
    )
    # The reader preset does grant api_keys.write; the rule makes it conditional.
    assert org_role.grants_create
    assert org_role.conditional


def test_only_project_roles_count_for_a_keys_requests(rich: Pulled) -> None:
    # Rule request_rights_need_project_role (RBAC guide: "the user has some project role
    # that grants them those permissions"): a reader with no role in Alpha has nothing
    # there for their keys to use; a member has the member preset.
    a = rich.analysis
    assert request_permissions(a.model, a.catalog, "u_reader_out", ALPHA) == frozenset()
    as_member = request_permissions(a.model, a.catalog, "u_member", ALPHA)
    assert {KEYS_WRITE, "api.responses.write", "model.request"} <= as_member
    # ... except the org presets the rule keeps: an org owner's rights count everywhere.
    assert "model.request" in request_permissions(a.model, a.catalog, "u_owner_out", ALPHA)


def test_reader_key_rights_come_from_their_project_role(rich: Pulled) -> None:
    a = rich.analysis
    assert access(a, "u_member", ALPHA) == ("create_own", ALLOWED)
    assert access(a, "u_viewer", ALPHA) == ("read", DENIED)
    # A member of Alpha holds no role in Beta: there, nothing but the conditional reader.
    assert access(a, "u_member", BETA) == ("none", DENIED)
    assert access(a, "u_member", ELSEWHERE) == ("none", DENIED)


@pytest.mark.parametrize(
    ("user", "level", "verdict"),
    [
        ("u_powner", "manage_all", ALLOWED),
        ("u_member", "create_own", ALLOWED),
        ("u_viewer", "read", DENIED),
    ],
)
def test_project_built_in_roles(rich: Pulled, user: str, level: str, verdict: str) -> None:
    assert access(rich.analysis, user, ALPHA) == (level, verdict)


# -- custom roles and groups ---------------------------------------------------------------


def test_custom_project_role_with_key_write_assigned_directly(rich: Pulled) -> None:
    a = rich.analysis
    assert access(a, "u_direct_writer", ALPHA) == ("create_own", ALLOWED)
    rbac = bindings_of(a, "u_direct_writer", ALPHA)
    rbac = rbac[rbac["kind"] == PROJECT_RBAC_ROLE]
    assert list(rbac["role_name"]) == ["Key Writer"]
    assert bool(rbac["grants_create"].iloc[0])
    assert a.model.permission_sets[rbac["permission_key"].iloc[0]].permissions == {
        KEYS_READ,
        KEYS_WRITE,
    }


def test_custom_project_role_without_key_write_grants_nothing_on_keys(rich: Pulled) -> None:
    a = rich.analysis
    assert access(a, "u_direct_caller", ALPHA) == ("read", DENIED)
    rbac = bindings_of(a, "u_direct_caller", ALPHA)
    rbac = rbac[rbac["kind"] == PROJECT_RBAC_ROLE]
    assert list(rbac["role_name"]) == ["Responses caller"]
    assert not rbac[["grants_read", "grants_create", "grants_manage"]].any(axis=None)
    # ... while its own permission does count towards what the user may call.
    assert "api.responses.write" in request_permissions(
        a.model, a.catalog, "u_direct_caller", ALPHA
    )


def test_group_with_custom_project_role_grants_its_members_and_names_the_group(
    rich: Pulled,
) -> None:
    a = rich.analysis
    assert access(a, "u_group_writer", ALPHA) == ("create_own", ALLOWED)
    (via_group,) = bindings_of(a, "u_group_writer", ALPHA).itertuples()
    assert via_group.kind == PROJECT_GROUP_ROLE
    assert via_group.role_name == "Key Writer"
    assert via_group.via_group_name == "Alpha Key Writers"
    assert via_group.grants_create
    # A user outside the group is not touched by it.
    assert access(a, "u_viewer", ALPHA) == ("read", DENIED)
    assert access(a, "u_reader_out", ALPHA) == ("none", DENIED)
    groups = a.model.bindings["via_group_name"]
    holders = a.model.bindings.loc[groups == "Alpha Key Writers", "principal_id"]
    assert set(holders) == {"u_group_writer"}


def test_group_with_built_in_member_role_grants_its_members(rich: Pulled) -> None:
    a = rich.analysis
    assert access(a, "u_group_member", BETA) == ("create_own", ALLOWED)
    (via_group,) = bindings_of(a, "u_group_member", BETA).itertuples()
    assert (via_group.kind, via_group.role_name, via_group.via_group_name) == (
        PROJECT_GROUP_ROLE,
        "member",
        "Beta Team",
    )
    # Beta Team is in Beta only.
    assert access(a, "u_group_member", ALPHA) == ("none", DENIED)


def test_org_level_group_role_with_key_write_applies_in_every_project(rich: Pulled) -> None:
    a = rich.analysis
    for project in (ELSEWHERE, ALPHA, BETA):
        assert access(a, "u_org_writer", project) == ("create_own", ALLOWED), project
    org_bindings = bindings_of(a, "u_org_writer", ELSEWHERE)
    via_group = org_bindings[org_bindings["kind"] == ORG_GROUP_ROLE]
    assert list(via_group["via_group_name"]) == ["Org Key Writers"]
    assert not bool(via_group["conditional"].iloc[0])  # a custom role is not the reader preset


def test_org_level_group_role_with_key_read_only_gives_read(rich: Pulled) -> None:
    a = rich.analysis
    assert access(a, "u_org_keyreader", ELSEWHERE) == ("read", DENIED)
    assert access(a, "u_org_keyreader", ALPHA) == ("read", DENIED)


# -- service accounts, built-in permission lists, archived projects -----------------------


def test_service_account_owner_creates_no_keys_but_holds_the_owner_permissions(
    rich: Pulled,
) -> None:
    a = rich.analysis
    bot = service_account_id(a, "alpha-bot")
    assert access(a, bot, ALPHA) == ("none", DENIED)
    (binding,) = bindings_of(a, bot, ALPHA).itertuples()
    assert (binding.kind, binding.preset_id) == (SERVICE_ACCOUNT_ROLE, "project_owner")
    assert binding.grants_manage  # the role would; the rule says service accounts do not
    held = request_permissions(a.model, a.catalog, bot, ALPHA)
    assert {"model.request", "api.responses.write", KEYS_WRITE} <= held


def test_built_in_role_with_an_empty_list_reads_the_catalog_preset(rich: Pulled) -> None:
    a = rich.analysis
    # The simulator reports [] for built-in roles; the group's member role then reads the
    # catalog's project_member preset (rule predefined_permissions_from_catalog).
    roles = a.snapshot["roles"]
    assert set(roles.loc[roles["predefined_role"] == 1, "permissions"]) == {"[]"}
    (via_group,) = bindings_of(a, "u_group_member", BETA).itertuples()
    assert via_group.preset_id == "project_member"
    pset = a.model.permission_sets[via_group.permission_key]
    assert pset.source == "catalog preset project_member"
    assert pset.permissions == a.catalog.presets["project_member"].permissions


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    """The rich org whose built-in roles report a real list: only "some.permission"."""
    db = tmp_path_factory.mktemp("listed") / "listed.db"
    return analysis_of(rich_org(predefined_permissions=("some.permission",)), db)


def test_built_in_role_with_a_real_list_uses_it_through_a_group(listed: Analysis) -> None:
    roles = listed.snapshot["roles"]
    assert set(roles.loc[roles["predefined_role"] == 1, "permissions"]) == {'["some.permission"]'}
    (via_group,) = bindings_of(listed, "u_group_member", BETA).itertuples()
    assert listed.model.permission_sets[via_group.permission_key].permissions == {"some.permission"}
    assert access(listed, "u_group_member", BETA) == ("none", DENIED)


def test_built_in_role_with_a_real_list_uses_it_when_held_directly(listed: Analysis) -> None:
    # "some.permission" grants nothing on keys: a member whose list lacks api_keys.write
    # is denied, and a viewer whose list lacks api_keys.read reads nothing.
    assert access(listed, "u_member", ALPHA) == ("none", DENIED)
    assert access(listed, "u_viewer", ALPHA) == ("none", DENIED)


def test_member_of_an_archived_project_creates_no_keys(rich: Pulled) -> None:
    a = rich.analysis
    # The direct membership in Old is not in the snapshot (the API answers 400 for an
    # archived project's users), but the group's member role there is.
    assert a.snapshot["project_users"].query("project_id == @OLD").empty
    gaps = a.snapshot.gaps
    assert set(gaps.loc[gaps["project_id"] == OLD, "status"]) == {"archived"}
    (via_group,) = bindings_of(a, "u_archived", OLD).itertuples()
    assert via_group.grants_create  # member would create keys in an active project
    row = level_for(a.model, "u_archived", OLD)
    assert (row["level"], row["verdict"], bool(row["archived"])) == ("none", DENIED, True)


def test_org_owner_creates_no_keys_in_an_archived_project(rich: Pulled) -> None:
    assert access(rich.analysis, "u_owner_out", OLD) == ("none", DENIED)


# -- what was not read --------------------------------------------------------------------


def test_unknown_legacy_role_makes_a_denial_unknown(rich: Pulled) -> None:
    a = rich.analysis
    (org_role,) = bindings_of(a, "u_legacy_role", ELSEWHERE).itertuples()
    assert org_role.role_name == "writer"
    assert not org_role.known
    assert not a.model.permission_sets[org_role.permission_key].known
    assert access(a, "u_legacy_role", ELSEWHERE) == ("none", UNKNOWN)
    assert access(a, "u_legacy_role", BETA) == ("read", UNKNOWN)  # viewer, and an unknown
    # ... but an allowance stands: member of Alpha whatever "writer" grants.
    assert access(a, "u_legacy_role", ALPHA) == ("create_own", ALLOWED)


def test_missing_project_user_roles_make_denials_unknown_and_leave_allowances(
    tmp_path: Path,
) -> None:
    fault = Fault("status", path=f"^/projects/{ALPHA}/users/[^/]+/roles$", status=403, times=-1)
    a = analysis_of(rich_org(), tmp_path / "db", faults=[fault])
    assert a.snapshot.source_status("project_user_roles") == "partial"
    assert access(a, "u_member", ALPHA) == ("create_own", ALLOWED)  # from the project's users
    assert access(a, "u_powner", ALPHA) == ("manage_all", ALLOWED)
    assert access(a, "u_owner_out", ALPHA) == ("manage_all", ALLOWED)
    assert access(a, "u_viewer", ALPHA) == ("read", UNKNOWN)
    # The custom role that lets this viewer create keys is exactly what was not read.
    assert access(a, "u_direct_writer", ALPHA) == ("read", UNKNOWN)
    # Someone in no project: Alpha's member list was read, so those lists cannot add to them.
    assert access(a, "u_reader_out", ALPHA) == ("none", DENIED)
    # Beta's lists were read.
    assert access(a, "u_group_member", BETA) == ("create_own", ALLOWED)


def test_missing_group_members_make_every_denial_unknown(tmp_path: Path) -> None:
    fault = Fault("status", path="^/organization/groups/[^/]+/users$", status=404, times=-1)
    a = analysis_of(rich_org(), tmp_path / "db", faults=[fault])
    assert a.snapshot.source_status("group_users") == "unavailable"
    # Anyone may be in any group: every denial becomes unknown ...
    assert access(a, "u_reader_out", ELSEWHERE) == ("none", UNKNOWN)
    assert access(a, "u_viewer", ALPHA) == ("read", UNKNOWN)
    assert access(a, "u_group_writer", ALPHA) == ("none", UNKNOWN)
    # ... and every allowance stands.
    assert access(a, "u_member", ALPHA) == ("create_own", ALLOWED)
    assert access(a, "u_owner_out", BETA) == ("manage_all", ALLOWED)


def test_missing_project_group_list_makes_non_members_unknown(tmp_path: Path) -> None:
    fault = Fault("status", path=f"^/organization/projects/{BETA}/groups$", status=404, times=-1)
    a = analysis_of(rich_org(), tmp_path / "db", faults=[fault])
    assert a.snapshot.source_status("project_groups") == "partial"
    assert access(a, "u_org_writer", BETA) == ("create_own", ALLOWED)
    assert access(a, "u_group_member", BETA) == ("none", UNKNOWN)


def test_missing_group_list_makes_denials_unknown(tmp_path: Path) -> None:
    fault = Fault("status", path="^/organization/groups$", status=404, times=-1)
    a = analysis_of(rich_org(), tmp_path / "db", faults=[fault])
    assert a.snapshot.source_status("groups") == "unavailable"
    assert access(a, "u_member", ALPHA) == ("create_own", ALLOWED)
    assert access(a, "u_group_writer", ALPHA) == ("none", UNKNOWN)
    assert access(a, "u_viewer", ALPHA) == ("read", UNKNOWN)


# -- the catalog as data ------------------------------------------------------------------

DEFAULT_TOML = resources.files("orgaudit.model.catalog").joinpath("default.toml").read_text("utf-8")


def catalog_with_rule(tmp_path: Path, name: str, value: str) -> Catalog:
    """A copy of the shipped catalog with one rule's value replaced, loaded from disk."""
    pattern = re.compile(rf"(\[rules\.{name}\]\n(?:#[^\n]*\n)*value = )[^\n]*")
    text, count = pattern.subn(lambda m: m.group(1) + value, DEFAULT_TOML)
    assert count == 1, name
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    catalog = load_catalog(path)
    assert catalog.rule(name).value == tomllib.loads(f"v = {value}")["v"]
    return catalog


@pytest.mark.parametrize(
    ("rule", "value", "principal", "project", "shipped", "changed"),
    [
        # Readers hold their preset's key rights everywhere.
        ("key_rights_need_project_role", "[]", "u_reader_out", ELSEWHERE, DENIED, ALLOWED),
        ("key_rights_need_project_role", "[]", "u_viewer", ALPHA, DENIED, ALLOWED),
        # Org roles stop at the projects' door.
        ("org_roles_apply_in_every_project", "false", "u_owner_out", ALPHA, ALLOWED, DENIED),
        ("org_roles_apply_in_every_project", "false", "u_org_writer", BETA, ALLOWED, DENIED),
        ("service_accounts_create_keys", "true", "alpha-bot", ALPHA, DENIED, ALLOWED),
        ("archived_projects_allow_no_keys", "false", "u_archived", OLD, DENIED, ALLOWED),
        # An empty built-in list is then taken as it is: no permissions.
        ("predefined_permissions_from_catalog", "false", "u_group_member", BETA, ALLOWED, DENIED),
    ],
)
def test_changing_a_rule_in_the_catalog_changes_the_verdict(
    rich: Pulled,
    tmp_path: Path,
    rule: str,
    value: str,
    principal: str,
    project: str | None,
    shipped: str,
    changed: str,
) -> None:
    a = rich.analysis
    if principal == "alpha-bot":
        principal = service_account_id(a, principal)
    assert access(a, principal, project)[1] == shipped
    edited = analyze(a.snapshot, catalog_with_rule(tmp_path, rule, value))
    assert access(edited, principal, project)[1] == changed


def test_unrestricted_key_scopes_rule(rich: Pulled, tmp_path: Path) -> None:
    a = rich.analysis
    shipped = explain_key(a.snapshot, a.model, a.catalog, "member-all", "/v1/responses")
    assert (shipped.scopes_kind, shipped.decision) == ("unrestricted", ALLOWED)
    # Read only the wildcard as "All", a key that recorded [] holds nothing.
    edited = analyze(a.snapshot, catalog_with_rule(tmp_path, "unrestricted_key_scopes", '[["*"]]'))
    verdict = explain_key(
        edited.snapshot, edited.model, edited.catalog, "member-all", "/v1/responses"
    )
    assert (verdict.scopes_kind, verdict.decision) == ("restricted", DENIED)
    assert verdict.missing_in_key == ("api.responses.write", "model.request")


def test_read_only_key_scope_rule(rich: Pulled, tmp_path: Path) -> None:
    a = rich.analysis
    reads = explain_key(a.snapshot, a.model, a.catalog, "member-readonly", "GET /v1/models")
    assert (reads.scopes_kind, reads.decision) == ("read_only", ALLOWED)
    writes = explain_key(a.snapshot, a.model, a.catalog, "member-readonly", "/v1/responses")
    assert writes.decision == DENIED
    assert writes.missing_in_key == ("api.responses.write", "model.request")
    edited = analyze(a.snapshot, catalog_with_rule(tmp_path, "read_only_key_scope", '"api.x.read"'))
    verdict = explain_key(
        edited.snapshot, edited.model, edited.catalog, "member-readonly", "GET /v1/models"
    )
    assert (verdict.scopes_kind, verdict.decision) == ("restricted", DENIED)
    assert verdict.missing_in_key == ("api.model.read",)


def test_catalog_key_permission_strings_are_data(rich: Pulled, tmp_path: Path) -> None:
    # Make "create own keys" a string only the custom role 'Responses caller' holds.
    text = DEFAULT_TOML.replace(
        f'create_own = "{KEYS_WRITE}"', 'create_own = "api.responses.write"', 1
    )
    path = tmp_path / "keys.toml"
    path.write_text(text, encoding="utf-8")
    edited = analyze(rich.analysis.snapshot, load_catalog(path))
    assert access(rich.analysis, "u_direct_caller", ALPHA)[1] == DENIED
    assert access(edited, "u_direct_caller", ALPHA) == ("create_own", ALLOWED)
    (verdict,) = explain_user(
        edited.snapshot, edited.model, edited.catalog, "u_direct_caller", ALPHA
    )
    assert verdict.permission == "api.responses.write"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('version = "2026.11.30"', "version = = 1", r"is not valid TOML: .*line 15"),
        (
            'evidence = "documented"\nevidence_ids = ["rbac-guide"]\nsource = "RBAC guide, preset',
            'evidence = "rumoured"\nevidence_ids = ["rbac-guide"]\nsource = "RBAC guide, preset',
            r"is malformed: preset org_owner: evidence must be one of documented, observed, "
            r"inferred, contested$",
        ),
        (
            "[rules.key_rights_need_project_role.alternative]",
            "[rules.key_rights_need_project_role.elsewise]",
            r"is malformed: rule key_rights_need_project_role: a contested rule, and only one, "
            r"names an \[alternative\]$",
        ),
        (
            'value = ["org_owner", "org_reader", "org_custom_roles"]',
            'value = "org_reader"',
            r"is malformed: rule request_rights_need_project_role: alternative needs a value of "
            r"the rule's own type$",
        ),
        (
            'path = "/v1/models"\nrequires = ["api.model.read"]',
            'path = "/v1/models"\nrequires = "perhaps"',
            r'is malformed: endpoint /v1/models: requires must be a list or "unknown"$',
        ),
        (
            'path = "/v1/models"\nrequires = ["api.model.read"]',
            'path = "/v1/models"\nrequires = [[]]',
            r"is malformed: endpoint /v1/models: each requirement is a scope or a list of scopes$",
        ),
        (
            'evidence_ids = ["rbac-guide"]\nsource = "RBAC guide, preset',
            'evidence_ids = "rbac-guide"\nsource = "RBAC guide, preset',
            r"is malformed: preset org_owner: evidence_ids must be a list of section ids$",
        ),
        (
            'grants = { models = "read", assistants',
            'grants = { telepathy = "read", assistants',
            r"is malformed: preset project_viewer: unknown area 'telepathy'$",
        ),
        (
            "[rules.read_only_key_scope]",
            "[rules.some_other_rule]",
            r"is malformed: rules missing: read_only_key_scope$",
        ),
        (
            "[rules.archived_projects_allow_no_keys]\nvalue = true",
            '[rules.archived_projects_allow_no_keys]\nvalue = "yes"',
            r"is malformed: rule archived_projects_allow_no_keys: value must be bool$",
        ),
        (
            'value = "api.all.read"',
            "value = 7",
            r"is malformed: rule read_only_key_scope: value must be str$",
        ),
        (
            'value = [[], ["*"]]',
            'value = [[], "*"]',
            r"is malformed: rule unrestricted_key_scopes: value must be a list of strings$",
        ),
        (
            'value = ["org_owner", "org_reader", "org_custom_roles"]',
            'value = ["org_owner", 3]',
            r"is malformed: rule request_rights_need_project_role: value must be a list of "
            r"strings$",
        ),
        (
            'field = "users.role"',
            'field = "users.rank"',
            r"is malformed: known_values users.rank: the snapshot has no such table and column$",
        ),
        (
            'field = "users.role"',
            'field = "role"',
            r"is malformed: known_values role: field must be written table.column$",
        ),
    ],
)
def test_a_malformed_catalog_is_one_clear_line(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in DEFAULT_TOML
    path = tmp_path / "catalog.toml"
    path.write_text(DEFAULT_TOML.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_catalog(path)
    text = str(caught.value)
    assert text.startswith(f"the catalog {path} ")
    assert re.search(message, text), text
    assert "\n" not in text


def test_a_malformed_catalog_stops_the_pipeline_before_any_request(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(DEFAULT_TOML.replace("[keys]", "[keys", 1), encoding="utf-8")
    db = tmp_path / "db"
    with Simulator(rich_org(), admin_key=ADMIN_KEY) as sim, pytest.raises(ConfigError):
        pull_and_analyze(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, db, catalog_path=path)
    assert sim.requests == []


# -- derived tables -----------------------------------------------------------------------


def verdicts_by_row(levels: pd.DataFrame) -> dict[tuple[str, str | None], tuple[str, str]]:
    """(principal, project or None) -> (level, verdict), for comparing two level tables."""
    return {
        (str(row.principal_id), None if pd.isna(row.project_id) else str(row.project_id)): (
            str(row.level),
            str(row.verdict),
        )
        for row in levels.itertuples()
    }


def test_derived_tables_hold_the_model(rich: Pulled) -> None:
    a = rich.analysis
    with store.connect(rich.db, create=False) as conn:
        conn.row_factory = sqlite3.Row
        sid = a.snapshot.id
        (info,) = conn.execute("SELECT * FROM derived_info WHERE snapshot_id = ?", (sid,))
        levels = store.read_table(conn, "access_levels", sid)
        bindings = store.read_table(conn, "access_bindings", sid)
    assert info["catalog_version"] == a.catalog.version
    assert len(levels) == len(a.model.levels) > 0
    assert len(bindings) == len(a.model.bindings) > 0

    stored, model = verdicts_by_row(levels), verdicts_by_row(a.model.levels)
    assert stored == model
    assert stored[("u_owner_out", None)] == ("manage_all", ALLOWED)
    assert stored[("u_member", ALPHA)] == ("create_own", ALLOWED)
    assert stored[("u_viewer", ALPHA)] == ("read", DENIED)
    assert stored[("u_archived", OLD)] == ("none", DENIED)
    assert stored[("u_legacy_role", None)] == ("none", UNKNOWN)

    via = bindings[bindings["via_group_name"] == "Alpha Key Writers"]
    assert list(zip(via["principal_id"], via["role_name"], strict=True)) == [
        ("u_group_writer", "Key Writer")
    ]
    assert via["grants_create"].tolist() == [1]
    assert sorted(json.loads(via["permissions"].iloc[0])) == [KEYS_READ, KEYS_WRITE]
