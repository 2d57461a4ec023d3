"""Bindings: every role a principal holds, and how, with what it grants on keys.

A *binding* is one role a principal holds: their org role, their project role, a custom
role assigned directly, or a role a group they belong to holds, at org or project level
(RBAC guide; docs/evidence.md#rbac-guide). Each binding names its *permission set*,
worked out once per distinct set (there are few), and carries whether that set grants
reading, creating or managing keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from orgaudit.model.catalog import ORGANIZATION, PROJECT, Catalog
from orgaudit.store.snapshot import Snapshot
from orgaudit.vocabulary import PrincipalType

# How a binding is held (the ``kind`` column).
ORG_ROLE = "org role"
ORG_RBAC_ROLE = "org RBAC role"
ORG_GROUP_ROLE = "org group role"
PROJECT_ROLE = "project role"
PROJECT_RBAC_ROLE = "project RBAC role"
PROJECT_GROUP_ROLE = "project group role"
SERVICE_ACCOUNT_ROLE = "service account role"

USER, GROUP, SERVICE_ACCOUNT = PrincipalType
# The name a role field the API left empty is shown and weighed by.
MISSING_ROLE_NAME = "(missing)"


@dataclass(frozen=True)
class PermissionSet:
    """The permissions one binding grants, and where that knowledge comes from."""

    key: str
    permissions: frozenset[str]
    known: bool
    source: str
    evidence: str


def weighed_bindings(
    raw: pd.DataFrame, catalog: Catalog
) -> tuple[pd.DataFrame, dict[str, PermissionSet]]:
    """Raw bindings with their permission sets and what each grants on keys."""
    keyed = _with_permission_keys(raw, catalog)
    permission_sets = _permission_sets(keyed["permission_key"].unique(), catalog)
    flags = _flags(permission_sets, catalog)
    bindings = keyed.merge(flags, on="permission_key", how="left", validate="many_to_one")
    conditional_presets = set(catalog.settled.key_rights_need_project_role)
    bindings = bindings.assign(
        conditional=(bindings["scope"] == ORGANIZATION)
        & bindings["preset_id"].isin(conditional_presets)
    )
    return bindings, permission_sets


def raw_bindings(snapshot: Snapshot) -> pd.DataFrame:
    """Every role every principal holds, one row each, before the catalog weighs them."""
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
    from_catalog = catalog.settled.predefined_permissions_from_catalog
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
