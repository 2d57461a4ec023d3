"""Checks on project API keys: scope traps, keys beyond their owner, stale and loose keys."""

from __future__ import annotations

import numpy as np
import pandas as pd

from orgaudit.checks.findings import AuditContext, contested_note
from orgaudit.model.access import AccessModel, levels_for_pairs
from orgaudit.model.bindings import SERVICE_ACCOUNT
from orgaudit.model.catalog import ORGANIZATION, PROJECT, Catalog
from orgaudit.model.keys import (
    REQUEST_RULE,
    owner_gone_reasons,
    request_bindings,
    scopes_unknown_reasons,
)
from orgaudit.vocabulary import FindingStatus, ScopeKind

KEY_COLUMNS = ["id", "name", "project_id", "project_name", "owner_type", "owner_id"]


def key_rows(keys: pd.DataFrame, message: pd.Series | str) -> pd.DataFrame:
    """Findings rows for keys: the key is the subject, in its project."""
    return pd.DataFrame(
        {
            "subject_type": "api_key",
            "subject_id": keys["id"],
            "subject_name": keys["name"].fillna(keys["id"]),
            "project_id": keys["project_id"],
            "project_name": keys["project_name"],
            "message": message,
        }
    )


def owner_label(keys: pd.DataFrame) -> pd.Series:
    label = keys["owner_email"].fillna(keys["owner_name"]).fillna(keys["owner_id"]).astype(str)
    return label + " (" + keys["owner_type"].fillna("unknown owner").astype(str) + ")"


def key_scope_trap(context: AuditContext) -> pd.DataFrame:
    """Restricted keys holding trap scopes (sub-options) without the umbrella scope."""
    keys = context.keys
    restricted = keys[keys["scope_kind"] == ScopeKind.RESTRICTED]
    frames = []
    for trap in context.analysis.catalog.traps:
        springs = {s: trap.springs(s) for s in restricted["scope_set"].drop_duplicates()}
        hit = restricted[restricted["scope_set"].map(springs).astype(bool)]
        if hit.empty:
            continue
        held_text = {s: ", ".join(sorted(s & trap.triggers)) for s in springs}
        held = hit["scope_set"].map(held_text)
        message = (
            "restricted key holds "
            + held
            + " but not "
            + trap.umbrella
            + ": its calls fail with 'Missing scopes: "
            + trap.umbrella
            + "'; set "
            + trap.setting
            + " ("
            + trap.advice
            + ")"
        )
        frames.append(key_rows(hit, message))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def key_exceeds_owner(context: AuditContext) -> pd.DataFrame:
    """Restricted keys whose scopes ask for more than the owner's roles grant there.

    Which of the owner's roles count is rule request_rights_need_project_role; where it
    is contested, a key its other reading would let pass is marked so. The keys' scopes
    and what project roles grant are worked out once; only the org roles that count
    differ between the readings.
    """
    catalog = context.analysis.catalog
    requested = _requested_scopes(context)
    if requested.empty:
        return pd.DataFrame()
    model = context.analysis.model
    permissions = pd.DataFrame(
        [(key, p) for key, pset in model.permission_sets.items() for p in pset.permissions],
        columns=["permission_key", "scope"],
    )
    in_project = _granted(requested, model.bindings, permissions, PROJECT)
    beyond = requested[~(in_project | _granted_by_org(requested, catalog, model, permissions))]
    if beyond.empty:
        return pd.DataFrame()
    flagged = _exceeding_rows(context, beyond)
    if not catalog.rule(REQUEST_RULE).contested:
        return flagged
    other = catalog.under_other_reading((REQUEST_RULE,))
    still = requested[~(in_project | _granted_by_org(requested, other, model, permissions))]
    passes_there = ~flagged["subject_id"].isin(set(still["id"]))
    contested = passes_there.map({True: REQUEST_RULE, False: ""})
    note = contested_note(contested, "the owner's org roles grant it")
    return flagged.assign(message=flagged["message"] + note, contested=contested)


def _requested_scopes(context: AuditContext) -> pd.DataFrame:
    """One row per scope each restricted key holds (keys whose owner lost access fail
    whatever they ask: key-owner-without-access says so)."""
    keys = context.keys
    restricted = keys[
        (keys["scope_kind"] == ScopeKind.RESTRICTED) & (keys["owner_project_access"] == "active")
    ]
    as_lists = {s: sorted(s) for s in restricted["scope_set"].drop_duplicates()}
    return (
        restricted[[*KEY_COLUMNS, "owner_email", "owner_name", "scope_set"]]
        .assign(scope=restricted["scope_set"].map(as_lists))
        .explode("scope")
        .dropna(subset=["scope"])
        .reset_index(drop=True)
    )


def _granted_by_org(
    requested: pd.DataFrame, catalog: Catalog, model: AccessModel, permissions: pd.DataFrame
) -> np.ndarray:
    """Whether the owner's org roles that count for requests (under ``catalog``'s rule)
    grant each requested scope."""
    counted = request_bindings(model.bindings, catalog)
    return _granted(requested, counted, permissions, ORGANIZATION)


def _granted(
    requested: pd.DataFrame, bindings: pd.DataFrame, permissions: pd.DataFrame, scope: str
) -> np.ndarray:
    """Whether the owner's ``scope``-level bindings (project: in the key's project) grant
    each requested scope; a ``*`` permission grants every scope (access.grants_scope)."""
    keys = ["principal_id", "project_id"] if scope == PROJECT else ["principal_id"]
    owner_keys = ["owner_id", "project_id"] if scope == PROJECT else ["owner_id"]
    held = (
        bindings.loc[bindings["scope"] == scope, [*keys, "permission_key"]]
        .merge(permissions, on="permission_key", validate="many_to_many")
        .loc[:, [*keys, "scope"]]
        .drop_duplicates()
    )
    exact = requested.merge(
        held.assign(granted=True),
        left_on=[*owner_keys, "scope"],
        right_on=[*keys, "scope"],
        how="left",
        validate="many_to_one",
    )["granted"]
    wild = requested.merge(
        held.loc[held["scope"] == "*", keys].drop_duplicates().assign(wild=True),
        left_on=owner_keys,
        right_on=keys,
        how="left",
        validate="many_to_one",
    )["wild"]
    granted: np.ndarray = (exact.notna() | wild.notna()).to_numpy()
    return granted


def _exceeding_rows(context: AuditContext, beyond: pd.DataFrame) -> pd.DataFrame:
    """key-exceeds-owner's rows: one per key, naming the scopes its owner lacks."""
    catalog = context.analysis.catalog
    unknown_scope = ~beyond["scope"].map(catalog.known_scope).astype(bool)
    per_key = (
        beyond.assign(unknown_scope=unknown_scope)
        .groupby([*KEY_COLUMNS, "owner_email", "owner_name"], dropna=False)
        .agg(scopes=("scope", ", ".join), unknown=("unknown_scope", "all"))
        .reset_index()
    )
    complete = _owner_complete(context, per_key)
    message = (
        "the key asks for "
        + per_key["scopes"]
        + ", which the roles of its owner "
        + owner_label(per_key)
        + " in the project do not grant; those calls fail"
    )
    rows = key_rows(per_key, message)
    return rows.assign(
        status=(per_key["unknown"] | ~complete).map({True: FindingStatus.UNKNOWN, False: None})
    )


def _owner_complete(context: AuditContext, keys: pd.DataFrame) -> pd.Series:
    """Whether every source that could add a role for the key's owner was read."""
    pairs = keys[["owner_id", "project_id"]].rename(columns={"owner_id": "principal_id"})
    rows = levels_for_pairs(context.analysis.model, pairs.drop_duplicates())
    here = pairs.merge(
        rows[["principal_id", "project_id", "complete"]],
        on=["principal_id", "project_id"],
        how="left",
        validate="many_to_one",
    )
    return here["complete"].astype("boolean").fillna(False).astype(bool).set_axis(keys.index)


def key_owner_without_access(context: AuditContext) -> pd.DataFrame:
    """Keys whose owner lost project access, left the org, or is a vanished account."""
    reason = owner_gone_reasons(context.keys, context.analysis.snapshot)
    flagged = context.keys.loc[reason.index]
    message = (
        "key owned by "
        + owner_label(flagged)
        + ": "
        + reason
        + " (owner_project_access "
        + flagged["owner_project_access"].astype(str)
        + ")"
    )
    return key_rows(flagged, message)


def key_unrestricted(context: AuditContext) -> pd.DataFrame:
    """Keys with all permissions; worse when a service account owns them."""
    keys = context.keys
    loose = keys[keys["scope_kind"] == ScopeKind.UNRESTRICTED]
    message = "key with all permissions, owned by " + owner_label(loose)
    return key_rows(loose, message).assign(escalate=loose["owner_type"] == SERVICE_ACCOUNT)


def days_text(delta: pd.Series) -> pd.Series:
    """Whole days of a time difference, as text: "1 day", "3 days"."""
    count = delta.dt.days.astype("Int64")
    days: pd.Series = count.astype(str) + count.map({1: " day"}).fillna(" days")
    return days


def key_unused(context: AuditContext) -> pd.DataFrame:
    """Keys never used, or unused for longer than ``stale_days``."""
    keys = context.keys
    stale = context.settings.stale_days
    idle = context.as_of - keys["last_used_at"]
    never = keys["last_used_at"].isna()
    flagged = keys[never | (idle.dt.days > stale)]
    message = ("not used for " + days_text(idle[flagged.index]) + f" (threshold {stale})").where(
        ~never[flagged.index],
        "never used since it was created "
        + days_text(context.as_of - flagged["created_at"])
        + " ago",
    )
    return key_rows(flagged, message)


def key_expired(context: AuditContext) -> pd.DataFrame:
    """Keys past their expiry that the project still lists."""
    keys = context.keys
    expired = keys[keys["expires_at"].notna() & (keys["expires_at"] < context.as_of)]
    message = (
        "key expired on "
        + expired["expires_at"].dt.strftime("%Y-%m-%d")
        + " ("
        + days_text(context.as_of - expired["expires_at"])
        + " ago) but is still listed; owned by "
        + owner_label(expired)
    )
    return key_rows(expired, message)


def key_expiring(context: AuditContext) -> pd.DataFrame:
    """Keys that expire within ``expiring_within_days``; worse for a service account's
    key (usually a production caller) and for a key used within the same window."""
    keys = context.keys
    # A key of an archived project, or whose owner lost access, is already unusable (and
    # flagged so): its expiry breaks nothing.
    usable = (keys["project_status"] != "archived") & (keys["owner_project_access"] == "active")
    window = pd.Timedelta(days=context.settings.expiring_within_days)
    left = keys["expires_at"] - context.as_of
    soon = keys[usable & keys["expires_at"].notna() & (left >= pd.Timedelta(0)) & (left <= window)]
    idle = context.as_of - soon["last_used_at"]
    in_use = soon["last_used_at"].notna() & (idle <= window)
    ago = (days_text(idle) + " ago").where(idle >= pd.Timedelta(days=1), "within the last day")
    use = ("; last used " + ago).where(in_use, "")
    message = (
        "key expires on "
        + soon["expires_at"].dt.strftime("%Y-%m-%d")
        + " (in "
        + days_text(soon["expires_at"] - context.as_of)
        + "); owned by "
        + owner_label(soon)
        + use.fillna("")
    )
    escalate = (soon["owner_type"] == SERVICE_ACCOUNT) | in_use
    return key_rows(soon, message).assign(escalate=escalate.to_numpy())


def key_no_expiry_too_old(context: AuditContext) -> pd.DataFrame:
    """Keys without an expiry older than the policy's ``max_key_age_days`` (off unless
    the configuration sets the policy)."""
    limit = context.settings.max_key_age_days
    if limit is None:
        return pd.DataFrame()
    keys = context.keys
    age = context.as_of - keys["created_at"]
    old = keys[keys["expires_at"].isna() & (age > pd.Timedelta(days=limit))]
    message = (
        "key has no expiry and was created "
        + days_text(age[old.index])
        + f" ago (policy: at most {limit} days); owned by "
        + owner_label(old)
    )
    return key_rows(old, message)


def key_scopes_unknown(context: AuditContext) -> pd.DataFrame:
    """Keys with no audit record of their scopes."""
    snapshot = context.analysis.snapshot
    keys = context.keys
    unknown = keys[keys["scopes"].isna()]
    before = (unknown["created_at"] < snapshot.audit_since).fillna(False).astype(bool)
    return key_rows(unknown, before.map(scopes_unknown_reasons(snapshot)))


def key_in_archived_project(context: AuditContext) -> pd.DataFrame:
    """Keys still held in archived projects."""
    keys = context.keys
    archived = keys[keys["project_status"] == "archived"]
    return key_rows(archived, "key still exists in archived project " + archived["project_name"])


def service_account_owner(context: AuditContext) -> pd.DataFrame:
    """Service accounts holding the project owner role."""
    accounts = context.analysis.snapshot["project_service_accounts"].merge(
        context.project_names, on="project_id", how="left", validate="many_to_one"
    )
    owners = accounts[accounts["role"] == "owner"]
    return pd.DataFrame(
        {
            "subject_type": "service_account",
            "subject_id": owners["id"],
            "subject_name": owners["name"].fillna(owners["id"]),
            "project_id": owners["project_id"],
            "project_name": owners["project_name"],
            "message": "service account "
            + owners["name"].fillna(owners["id"])
            + " holds the owner role in "
            + owners["project_name"].fillna(owners["project_id"]),
        }
    )
