"""What a key may do: its recorded scopes, what kind of key they make it, and the rights
its owner's roles lend its requests.

A key cannot do more than its owner (help center 8867743; docs/evidence.md#help-8867743):
a request passes only where the key holds the scope and the owner's roles grant it.
"""

from __future__ import annotations

import json

import pandas as pd

from orgaudit.model.access import AccessModel
from orgaudit.model.catalog import ORGANIZATION, PROJECT, Catalog, Preset
from orgaudit.store.snapshot import Snapshot
from orgaudit.vocabulary import ScopeKind

REQUEST_RULE = "request_rights_need_project_role"
# In the request rule's list: every custom org role (one that is no built-in preset).
ORG_CUSTOM_ROLES = "org_custom_roles"


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
    kept = catalog.settled.request_rights_need_project_role
    custom_org = bindings["preset_id"].isna() & (ORG_CUSTOM_ROLES in kept)
    return bindings[(bindings["scope"] == PROJECT) | bindings["preset_id"].isin(kept) | custom_org]


def request_presets(catalog: Catalog) -> tuple[Preset, ...]:
    """The built-in roles whose rights count for a key's requests: every project preset,
    and the org presets rule request_rights_need_project_role keeps."""
    kept = catalog.settled.request_rights_need_project_role
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


def scope_kind(scopes: frozenset[str], catalog: Catalog) -> ScopeKind:
    """``unrestricted`` ("All"), ``read_only`` or ``restricted``, per the catalog's rules."""
    if scopes in catalog.settled.unrestricted_key_scopes:
        return ScopeKind.UNRESTRICTED
    if scopes == frozenset([catalog.settled.read_only_key_scope]):
        return ScopeKind.READ_ONLY
    return ScopeKind.RESTRICTED


def with_scope_kinds(keys: pd.DataFrame, catalog: Catalog) -> pd.DataFrame:
    """Keys with a ``scopes`` JSON column gain ``scope_set`` and ``scope_kind``.

    ``scope_kind`` is ``unknown`` where no scopes were recorded. Each distinct list is
    parsed once.
    """
    parsed = {text: frozenset(json.loads(text)) for text in keys["scopes"].dropna().unique()}
    kinds = {text: scope_kind(scopes, catalog) for text, scopes in parsed.items()}
    return keys.assign(
        scope_set=keys["scopes"].map(parsed),
        scope_kind=keys["scopes"].map(kinds).astype(object).fillna(ScopeKind.UNKNOWN),
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


def owner_gone_reasons(keys: pd.DataFrame, snapshot: Snapshot) -> pd.Series:
    """Why each key's owner can no longer use it, by key row: lost project access, left
    the org, or a vanished service account; keys whose owner is fine are absent.

    ``keys`` are project keys with their ``project_status``.
    """
    users = set(snapshot["users"]["id"])
    accounts = snapshot["project_service_accounts"]
    account_pairs = set(zip(accounts["project_id"], accounts["id"], strict=True))
    pairs = pd.Series(
        list(zip(keys["project_id"], keys["owner_id"], strict=True)), index=keys.index
    )
    inactive = keys["owner_project_access"] != "active"
    left_org = (keys["owner_type"] == "user") & ~keys["owner_id"].isin(users)
    gone_account = (keys["owner_type"] == "service_account") & ~pairs.isin(account_pairs)
    gone_account &= keys["project_status"] != "archived"  # their accounts are not listed
    flagged = keys.index[inactive | left_org | gone_account]
    reason = pd.Series("the owner no longer has access to the project", index=flagged)
    reason = reason.where(~left_org[flagged], "the owner is no longer in the organization")
    return reason.where(~gone_account[flagged], "the owning service account is gone")
