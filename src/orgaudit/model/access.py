"""Effective access: who holds which role where, and what that lets them do with keys.

Pure functions over a :class:`~orgaudit.store.snapshot.Snapshot` and a
:class:`~orgaudit.model.catalog.Catalog`. A *binding* is one role a principal holds, and how:
their org role, their project role, a custom role assigned directly, or a role a group
they belong to holds, at org or project level. Effective permissions are the union of
the bindings that apply (RBAC guide; docs/evidence.md#rbac-guide). A principal's
access level for keys in a project is ``manage_all``, ``create_own``, ``read`` or
``none``; the *verdict* on creating keys is ``allowed``, ``denied``, or ``unknown`` when
a source it needed was not read (a union only grows, so a missing source can turn a
denial into a grant, never the reverse: an ``allowed`` stands whatever is missing).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from orgaudit.model.catalog import ORGANIZATION, PROJECT, Catalog, Preset
from orgaudit.store.snapshot import Snapshot

ORG_ROLE = "org role"
ORG_RBAC_ROLE = "org RBAC role"
ORG_GROUP_ROLE = "org group role"
PROJECT_ROLE = "project role"
PROJECT_RBAC_ROLE = "project RBAC role"
PROJECT_GROUP_ROLE = "project group role"
SERVICE_ACCOUNT_ROLE = "service account role"

USER, GROUP, SERVICE_ACCOUNT = "user", "group", "service_account"
LEVELS = ("none", "read", "create_own", "manage_all")
ALLOWED, DENIED, UNKNOWN = "allowed", "denied", "unknown"
MISSING_ROLE_NAME = "(missing)"

# Sources whose gaps can hide a binding (and so turn a denial into "unknown").
BINDING_SOURCES = (
    "users",
    "groups",
    "project_users",
    "project_service_accounts",
    "user_org_roles",
    "group_users",
    "group_org_roles",
    "project_user_roles",
    "project_groups",
    "project_group_roles",
)


@dataclass(frozen=True)
class PermissionSet:
    """The permissions one binding grants, and where that knowledge comes from."""

    key: str
    permissions: frozenset[str]
    known: bool
    source: str
    evidence: str


# The catalog rules the access levels rest on. Where one is contested, the levels are
# also worked out under its other reading, and a verdict that differs says so.
LEVEL_RULES = (
    "org_roles_apply_in_every_project",
    "key_rights_need_project_role",
    "service_accounts_create_keys",
    "archived_projects_allow_no_keys",
    "predefined_permissions_from_catalog",
)
REQUEST_RULE = "request_rights_need_project_role"
# In the request rule's list: every custom org role (one that is no built-in preset).
ORG_CUSTOM_ROLES = "org_custom_roles"


@dataclass(frozen=True)
class AccessModel:
    """Bindings (one row per role held) and access levels (one row per principal/project).

    ``levels`` holds a row for every (principal, project) where the principal has a
    project binding, and one row with ``project_id`` missing per principal for "every
    other project", where only their org bindings apply. Its ``verdict_other`` is the
    verdict under the other reading of the contested level rules, and ``contested``
    names those rules where the two verdicts differ (empty where they agree).
    """

    bindings: pd.DataFrame
    levels: pd.DataFrame
    permission_sets: Mapping[str, PermissionSet]
    incomplete_projects: frozenset[str] = frozenset()
    archived_projects: frozenset[str] = frozenset()

    def fallback(self, elsewhere: pd.DataFrame) -> pd.DataFrame:
        """ "Every other project" rows placed in given projects: archived projects allow
        nothing, and a project whose role lists were not all read cannot confirm a denial.

        ``elsewhere`` has the columns of ``levels`` with ``project_id`` filled in.
        """
        archived = elsewhere["project_id"].isin(self.archived_projects)
        incomplete = elsewhere["project_id"].isin(self.incomplete_projects)
        level = elsewhere["level"].where(~archived, "none")
        complete = elsewhere["complete"].astype(bool) & ~incomplete
        allowed = level.isin(["create_own", "manage_all"])
        verdict = _verdict(allowed, complete)
        other_allowed = (elsewhere["verdict_other"] == ALLOWED) & ~archived
        other = _verdict(other_allowed, complete)
        contested = elsewhere["contested"].where(verdict != other, "")
        return elsewhere.assign(
            level=level,
            complete=complete,
            archived=archived,
            verdict=verdict,
            verdict_other=other,
            contested=contested,
        )


def _verdict(allowed: pd.Series, complete: pd.Series) -> np.ndarray:
    """Allowed where a binding grants it; else denied where every source that could add
    one was read; else unknown (a union only grows: a gap can hide a grant, not a denial)."""
    verdict: np.ndarray = np.select([allowed, complete], [ALLOWED, DENIED], UNKNOWN)
    return verdict


def compute_access(snapshot: Snapshot, catalog: Catalog) -> AccessModel:
    """Every binding and every access level of a snapshot, under a catalog.

    Where a rule the levels rest on is contested, the levels are worked out under its
    other reading too (from the same bindings), and each verdict carries both.
    """
    raw = _raw_bindings(snapshot)
    bindings, permission_sets = _weighed_bindings(raw, catalog)
    levels = _levels(bindings, snapshot, catalog)
    contested = catalog.contested_rules(LEVEL_RULES)
    if contested:
        other_catalog = catalog.under_other_reading(LEVEL_RULES)
        other_bindings, _ = _weighed_bindings(raw, other_catalog)
        other = _levels(other_bindings, snapshot, other_catalog)
        levels = _with_other_reading(levels, other, ", ".join(r.name for r in contested))
    else:
        levels = levels.assign(verdict_other=levels["verdict"], contested="")
    projects = snapshot["projects"]
    # Projects where no key can be created (rule archived_projects_allow_no_keys).
    archived = (
        frozenset(projects.loc[projects["status"] == "archived", "id"])
        if catalog.rule("archived_projects_allow_no_keys").value
        else frozenset()
    )
    return AccessModel(
        bindings,
        levels,
        permission_sets,
        incomplete_projects=frozenset(_project_gaps(snapshot)),
        archived_projects=archived,
    )


def _weighed_bindings(
    raw: pd.DataFrame, catalog: Catalog
) -> tuple[pd.DataFrame, dict[str, PermissionSet]]:
    """Raw bindings with their permission sets and what each grants on keys."""
    keyed = _with_permission_keys(raw, catalog)
    permission_sets = _permission_sets(keyed["permission_key"].unique(), catalog)
    flags = _flags(permission_sets, catalog)
    bindings = keyed.merge(flags, on="permission_key", how="left", validate="many_to_one")
    conditional_presets = set(catalog.rule("key_rights_need_project_role").value)
    bindings = bindings.assign(
        conditional=(bindings["scope"] == ORGANIZATION)
        & bindings["preset_id"].isin(conditional_presets)
    )
    return bindings, permission_sets


def _with_other_reading(levels: pd.DataFrame, other: pd.DataFrame, rules: str) -> pd.DataFrame:
    """Levels with ``verdict_other`` (the verdict under the other reading) and
    ``contested`` (the rules, where the two verdicts differ)."""
    keys = ["principal_type", "principal_id", "project_id"]
    merged = levels.merge(
        other[[*keys, "verdict"]].rename(columns={"verdict": "verdict_other"}),
        on=keys,
        how="left",
        validate="one_to_one",
    )
    differs = merged["verdict"] != merged["verdict_other"]
    return merged.assign(contested=np.where(differs, rules, ""))


def _binding_gaps(snapshot: Snapshot) -> pd.DataFrame:
    gaps = snapshot.gaps
    return gaps[
        gaps["source"].isin(BINDING_SOURCES) & gaps["status"].isin(["unavailable", "skipped"])
    ]


def missing_binding_sources(snapshot: Snapshot, user_id: str, project_id: str) -> tuple[str, ...]:
    """The sources that could have added a role for this user in this project, unread."""
    unavailable = {s for s in BINDING_SOURCES if snapshot.source_status(s) == "unavailable"}
    gaps = _binding_gaps(snapshot)
    relevant = gaps[
        (gaps["project_id"] == project_id) | (gaps["user_id"] == user_id) | gaps["group_id"].notna()
    ]
    return tuple(sorted(unavailable | set(relevant["source"])))


def _project_gaps(snapshot: Snapshot) -> set[str]:
    """Projects where a project-wide list that could add a binding was not read.

    Per-member lists (a ``user_id`` on the gap) only hide roles of that member, who has a
    row of their own for the project.
    """
    gaps = _binding_gaps(snapshot)
    return set(gaps.loc[gaps["user_id"].isna(), "project_id"].dropna())


def _raw_bindings(snapshot: Snapshot) -> pd.DataFrame:
    users = snapshot["users"]
    assignments = snapshot["role_assignments"]
    group_users = snapshot["group_users"][["group_id", "user_id"]]
    group_names = snapshot["groups"][["id", "name"]].rename(
        columns={"id": "via_group_id", "name": "via_group_name"}
    )
    project_group_names = snapshot["project_groups"][["project_id", "group_id", "group_name"]]

    org_roles = pd.DataFrame(
        {
            "principal_type": USER,
            "principal_id": users["id"],
            "scope": ORGANIZATION,
            "project_id": None,
            "kind": ORG_ROLE,
            "role_id": None,
            "role_name": users["role"],
            "predefined": True,
            "via_group_id": None,
            "via_group_name": None,
            "permission_list": None,
        }
    )
    direct_org = assignments[
        (assignments["principal_type"] == USER) & (assignments["resource_type"] == ORGANIZATION)
    ]
    org_roles, org_rbac = _fold_preset_duplicates(
        org_roles, _from_assignments(direct_org, ORG_RBAC_ROLE, USER), ["principal_id", "role_name"]
    )
    group_org = assignments[
        (assignments["principal_type"] == GROUP) & (assignments["resource_type"] == ORGANIZATION)
    ]
    org_group = _through_groups(
        _from_assignments(group_org, ORG_GROUP_ROLE, USER), group_users, group_names, []
    )

    members = snapshot["project_users"]
    project_roles = pd.DataFrame(
        {
            "principal_type": USER,
            "principal_id": members["user_id"],
            "scope": PROJECT,
            "project_id": members["project_id"],
            "kind": PROJECT_ROLE,
            "role_id": None,
            "role_name": members["role"],
            "predefined": True,
            "via_group_id": None,
            "via_group_name": None,
            "permission_list": None,
        }
    )
    direct_project = assignments[
        (assignments["principal_type"] == USER) & (assignments["resource_type"] == PROJECT)
    ]
    project_roles, project_rbac = _fold_preset_duplicates(
        project_roles,
        _from_assignments(direct_project, PROJECT_RBAC_ROLE, USER),
        ["project_id", "principal_id", "role_name"],
    )
    group_project = assignments[
        (assignments["principal_type"] == GROUP) & (assignments["resource_type"] == PROJECT)
    ]
    project_group = _through_groups(
        _from_assignments(group_project, PROJECT_GROUP_ROLE, USER),
        group_users,
        project_group_names.rename(
            columns={"group_id": "via_group_id", "group_name": "via_group_name"}
        ),
        ["project_id"],
    )

    accounts = snapshot["project_service_accounts"]
    account_roles = pd.DataFrame(
        {
            "principal_type": SERVICE_ACCOUNT,
            "principal_id": accounts["id"],
            "scope": PROJECT,
            "project_id": accounts["project_id"],
            "kind": SERVICE_ACCOUNT_ROLE,
            "role_id": None,
            "role_name": accounts["role"],
            "predefined": True,
            "via_group_id": None,
            "via_group_name": None,
            "permission_list": None,
        }
    )
    frames = [org_roles, org_rbac, org_group, project_roles, project_rbac, project_group]
    frames.append(account_roles)
    present = [f for f in frames if len(f)]
    if not present:  # an org with no roles at all
        present = [pd.DataFrame(columns=list(org_roles.columns))]
    # A role field the API left empty is still a binding whose rights are unknown; it
    # needs a name to be shown and weighed by (check unrecognized-value reports it).
    return pd.concat(present, ignore_index=True).fillna({"role_name": MISSING_ROLE_NAME})


def _from_assignments(rows: pd.DataFrame, kind: str, principal_type: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "principal_type": principal_type,
            "principal_id": rows["principal_id"],
            "scope": rows["resource_type"],
            "project_id": rows["project_id"],
            "kind": kind,
            "role_id": rows["role_id"],
            "role_name": rows["role_name"],
            "predefined": rows["predefined_role"].fillna(0).astype(bool),
            "via_group_id": None,
            "via_group_name": None,
            "permission_list": rows["permissions"],
        }
    )


def _through_groups(
    group_rows: pd.DataFrame,
    group_users: pd.DataFrame,
    group_names: pd.DataFrame,
    name_keys: list[str],
) -> pd.DataFrame:
    """Roles held by groups, as bindings of each member, naming the group they come via."""
    return (
        group_rows.drop(columns=["via_group_id", "via_group_name"])
        .rename(columns={"principal_id": "via_group_id"})
        .merge(group_users, left_on="via_group_id", right_on="group_id", validate="many_to_many")
        .drop(columns=["group_id"])
        .rename(columns={"user_id": "principal_id"})
        .merge(group_names, on=[*name_keys, "via_group_id"], how="left", validate="many_to_one")
    )


def _fold_preset_duplicates(
    legacy: pd.DataFrame, rbac: pd.DataFrame, keys: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Merge a built-in role the API reports twice into one binding.

    The same built-in role appears as the legacy ``role`` field and as a role assignment;
    the legacy binding keeps its name and takes the assignment's id and permission list
    (the API's own word on what the role grants), and the assignment is dropped.
    """
    presets = rbac[rbac["predefined"]].drop_duplicates(keys)[[*keys, "role_id", "permission_list"]]
    enriched = legacy.drop(columns=["role_id", "permission_list"]).merge(
        presets, on=keys, how="left", validate="many_to_one"
    )
    marked = rbac.merge(
        legacy[keys].drop_duplicates().assign(_legacy=True),
        on=keys,
        how="left",
        validate="many_to_one",
    )
    duplicate = marked["predefined"] & marked["_legacy"].fillna(False).astype(bool)
    return enriched[legacy.columns], marked.loc[~duplicate].drop(columns=["_legacy"])


def _with_permission_keys(bindings: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Name each binding's permission set, so sets are worked out once per distinct key.

    Built-in roles whose list is empty or a wildcard, and legacy role fields, read the
    catalog's preset (rule ``predefined_permissions_from_catalog``); every other role
    carries its own list from the snapshot.
    """
    from_catalog = catalog.rule("predefined_permissions_from_catalog").value
    lists = bindings["permission_list"]
    empty_or_wild = lists.isna() | lists.isin(["[]", '["*"]'])
    use_preset = bindings["predefined"] & (lists.isna() | (empty_or_wild & bool(from_catalog)))
    preset_key = "preset:" + bindings["scope"].astype(str) + ":" + bindings["role_name"].astype(str)
    preset_ids = {f"preset:{p.resource}:{p.name}": p.id for p in catalog.presets.values()}
    keys = np.where(use_preset, preset_key, "list:" + lists.fillna("[]").astype(str))
    service_none = (bindings["kind"] == SERVICE_ACCOUNT_ROLE) & (bindings["role_name"] == "none")
    keys = np.where(service_none, "none", keys)
    return bindings.assign(
        permission_key=keys,
        preset_id=preset_key.map(preset_ids).where(bindings["predefined"]),
    ).drop(columns=["permission_list"])


def _permission_sets(keys: np.ndarray, catalog: Catalog) -> dict[str, PermissionSet]:
    """Each distinct permission set, worked out once (there are few)."""
    sets: dict[str, PermissionSet] = {}
    for key in keys:
        key = str(key)
        if key == "none":
            sets[key] = PermissionSet(key, frozenset(), True, "service account role none", "")
        elif key.startswith("preset:"):
            _, resource, name = key.split(":", 2)
            preset = catalog.preset_for(resource, name)
            if preset is None:
                sets[key] = PermissionSet(
                    key, frozenset(), False, f"unknown {resource} role {name!r}", "inferred"
                )
            else:
                sets[key] = PermissionSet(
                    key,
                    preset.permissions,
                    True,
                    f"catalog preset {preset.id}",
                    preset.evidence.level,
                )
        else:
            try:
                parsed = json.loads(key.removeprefix("list:"))
                valid = isinstance(parsed, list) and all(isinstance(p, str) for p in parsed)
            except ValueError:
                valid = False
            sets[key] = PermissionSet(
                key,
                frozenset(parsed) if valid else frozenset(),
                valid,
                "the role's permission list in the snapshot"
                if valid
                else "a permission list that could not be read",
                "snapshot" if valid else "inferred",
            )
    return sets


def _flags(permission_sets: Mapping[str, PermissionSet], catalog: Catalog) -> pd.DataFrame:
    """Per permission set: does it grant reading, creating, managing keys?"""
    keys = catalog.keys
    rows = []
    for key, pset in permission_sets.items():
        everything = "*" in pset.permissions
        manage = everything or keys.manage_all in pset.permissions
        create = everything or manage or keys.create_own in pset.permissions
        read = create or keys.read in pset.permissions
        rows.append((key, read, create, manage, pset.known))
    return pd.DataFrame(
        rows, columns=["permission_key", "grants_read", "grants_create", "grants_manage", "known"]
    )


def _levels(bindings: pd.DataFrame, snapshot: Snapshot, catalog: Catalog) -> pd.DataFrame:
    principal = ["principal_type", "principal_id"]
    effective = bindings.assign(
        grants_read=bindings["grants_read"] & ~bindings["conditional"],
        grants_create=bindings["grants_create"] & ~bindings["conditional"],
        grants_manage=bindings["grants_manage"] & ~bindings["conditional"],
    )
    org = _any_flags(effective[effective["scope"] == ORGANIZATION], principal)
    if not catalog.rule("org_roles_apply_in_every_project").value:
        org = org.assign(grants_read=False, grants_create=False, grants_manage=False)
    project = _any_flags(effective[effective["scope"] == PROJECT], [*principal, "project_id"])
    pairs = project.merge(org, on=principal, how="left", suffixes=("", "_org"), validate="m:1")
    for flag in _FLAG_COLUMNS:
        pairs[flag] = pairs[flag] | pairs[f"{flag}_org"].fillna(False).astype(bool)
    columns = [*principal, "project_id", *_FLAG_COLUMNS]
    elsewhere = org.assign(project_id=None)[columns]
    levels = pd.concat([pairs[columns], elsewhere], ignore_index=True)
    level = np.select(
        [levels["grants_manage"], levels["grants_create"], levels["grants_read"]],
        ["manage_all", "create_own", "read"],
        "none",
    )
    if not catalog.rule("service_accounts_create_keys").value:
        level = np.where(levels["principal_type"] == SERVICE_ACCOUNT, "none", level)
    projects = snapshot["projects"][["id", "status"]].rename(columns={"id": "project_id"})
    levels = levels.assign(level=level).merge(
        projects, on="project_id", how="left", validate="many_to_one"
    )
    archived = (levels["status"] == "archived") & bool(
        catalog.rule("archived_projects_allow_no_keys").value
    )
    levels = levels.assign(archived=archived, level=np.where(archived, "none", levels["level"]))
    complete = _complete(levels, snapshot) & ~levels["unknown_role"]
    allowed = levels["level"].isin(["create_own", "manage_all"])
    verdict = _verdict(allowed, complete)
    return levels.assign(complete=complete, verdict=verdict).drop(columns=["status"])


_FLAG_COLUMNS = ["grants_read", "grants_create", "grants_manage", "unknown_role"]


def _any_flags(bindings: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    flagged = bindings.assign(unknown_role=~bindings["known"].astype(bool))
    grouped = flagged.groupby(keys, dropna=False)[_FLAG_COLUMNS].any()
    return grouped.reset_index()


def _complete(levels: pd.DataFrame, snapshot: Snapshot) -> pd.Series:
    """Whether every source that could add a binding for the row was read."""
    if any(snapshot.source_status(s) == "unavailable" for s in BINDING_SOURCES):
        return pd.Series(False, index=levels.index)
    gaps = _binding_gaps(snapshot)
    if gaps["group_id"].notna().any():  # who is in that group, or what it holds, is unknown
        return pd.Series(False, index=levels.index)
    missing_projects = set(gaps["project_id"].dropna())
    missing_users = set(gaps["user_id"].dropna())
    return ~(
        levels["project_id"].isin(missing_projects) | levels["principal_id"].isin(missing_users)
    )


def levels_for_pairs(model: AccessModel, pairs: pd.DataFrame) -> pd.DataFrame:
    """The access row that applies to each (``principal_id``, ``project_id``) pair.

    A principal's project row where they hold a project role; elsewhere their "every
    other project" row, placed in the project (see :meth:`AccessModel.fallback`); a
    principal with neither holds no role at all (level none, verdict unknown).
    """
    levels = model.levels
    keys = ["principal_id", "project_id"]
    here = pairs[keys].merge(
        levels[levels["project_id"].notna()], on=keys, how="left", validate="one_to_one"
    )
    has_row = here["level"].notna()
    elsewhere = levels[levels["project_id"].isna()].drop(columns=["project_id"])
    placed = (
        pairs.loc[~has_row.to_numpy(), keys]
        .merge(elsewhere, on="principal_id", how="left", validate="many_to_one")
        .fillna({"level": "none", "complete": False, "verdict": UNKNOWN})
        .fillna({"verdict_other": UNKNOWN, "contested": ""})
    )
    fallen = model.fallback(placed.assign(complete=placed["complete"].astype(bool)))
    return pd.concat([here[has_row.to_numpy()], fallen], ignore_index=True)


def level_for(model: AccessModel, principal_id: str, project_id: str) -> pd.Series:
    """The access row that applies to a principal in a project (see levels_for_pairs)."""
    pair = pd.DataFrame({"principal_id": [principal_id], "project_id": [project_id]})
    return levels_for_pairs(model, pair).iloc[0]


def scopes_unknown_reasons(snapshot: Snapshot) -> dict[bool, str]:
    """Why a key's scopes are unknown, by whether it was created before the audit window.

    The one wording ``explain key`` and the key-scopes-unknown check both give.
    """
    window = f"the audit-log window ({snapshot.audit_since:%Y-%m-%d})"
    return {
        True: f"no audit record of its scopes: it was created before {window}; pull with a "
        "larger --audit-days",
        False: "no audit record of its scopes: audit logging may have been off when it was created",
    }


def recorded_key_scopes(snapshot: Snapshot) -> pd.DataFrame:
    """Each key's scopes as its newest audit event that carries scopes recorded them.

    Columns ``key_id``, ``scopes`` (JSON text) and ``recorded_at``; a key with no such
    event is absent (its scopes are unknown).
    """
    events = snapshot["audit_key_events"]
    with_scopes = events[events["scopes"].notna() & events["key_id"].notna()]
    newest = with_scopes.sort_values(["effective_at", "id"]).drop_duplicates("key_id", keep="last")
    return newest[["key_id", "scopes", "effective_at"]].rename(
        columns={"effective_at": "recorded_at"}
    )


def request_bindings(bindings: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """The bindings that count for a key's requests (rule request_rights_need_project_role).

    A key's request passes only where the owner has "some project role" granting each
    scope: project bindings, direct or through a group, the org presets the rule lists,
    and every custom org role where it lists ``org_custom_roles``.
    """
    kept = set(catalog.rule(REQUEST_RULE).value)
    custom_org = bindings["preset_id"].isna() & (ORG_CUSTOM_ROLES in kept)
    return bindings[(bindings["scope"] == PROJECT) | bindings["preset_id"].isin(kept) | custom_org]


def request_presets(catalog: Catalog) -> tuple[Preset, ...]:
    """The built-in roles whose rights count for a key's requests: every project preset,
    and the org presets rule request_rights_need_project_role keeps."""
    kept = set(catalog.rule(REQUEST_RULE).value)
    return tuple(p for p in catalog.presets.values() if p.resource == PROJECT or p.id in kept)


def grants_scope(permissions: frozenset[str], scope: str) -> bool:
    """Whether a permission set grants a scope; ``*`` grants every scope."""
    return "*" in permissions or scope in permissions


def request_permissions(
    model: AccessModel, catalog: Catalog, principal_id: str, project_id: str
) -> frozenset[str]:
    """What a principal's roles let their keys do in a project."""
    bindings = request_bindings(applicable_bindings(model, principal_id, project_id), catalog)
    granted: set[str] = set()
    for key in bindings["permission_key"].unique():
        granted |= model.permission_sets[str(key)].permissions
    return frozenset(granted)


def applicable_bindings(model: AccessModel, principal_id: str, project_id: str) -> pd.DataFrame:
    """The bindings weighed for a principal in a project: org-wide and that project's."""
    bindings = model.bindings
    mine = bindings[bindings["principal_id"] == principal_id]
    return mine[(mine["scope"] == ORGANIZATION) | (mine["project_id"] == project_id)]


UNRESTRICTED, READ_ONLY, RESTRICTED = "unrestricted", "read_only", "restricted"


def scope_kind(scopes: frozenset[str], catalog: Catalog) -> str:
    """``unrestricted`` ("All"), ``read_only`` or ``restricted``, per the catalog's rules."""
    if any(frozenset(marker) == scopes for marker in catalog.rule("unrestricted_key_scopes").value):
        return UNRESTRICTED
    if scopes == frozenset([catalog.rule("read_only_key_scope").value]):
        return READ_ONLY
    return RESTRICTED


def with_scope_kinds(keys: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Keys with a ``scopes`` JSON column gain ``scope_set`` and ``scope_kind``.

    ``scope_kind`` is ``unknown`` where no scopes were recorded. Each distinct list is
    parsed once.
    """
    parsed = {text: frozenset(json.loads(text)) for text in keys["scopes"].dropna().unique()}
    kinds = {text: scope_kind(scopes, catalog) for text, scopes in parsed.items()}
    return keys.assign(
        scope_set=keys["scopes"].map(parsed),
        scope_kind=keys["scopes"].map(kinds).astype(object).fillna("unknown"),
    )


def keys_with_scopes(snapshot: Snapshot) -> pd.DataFrame:
    """Project API keys with their recorded ``scopes`` and ``recorded_at`` (NaN if none)."""
    return snapshot["project_api_keys"].merge(
        recorded_key_scopes(snapshot),
        left_on="id",
        right_on="key_id",
        how="left",
        validate="one_to_one",
    )
