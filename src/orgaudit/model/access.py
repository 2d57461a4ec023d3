"""Effective access: what a principal's bindings let them do with keys, project by project.

Pure functions over a :class:`~orgaudit.store.snapshot.Snapshot` and a
:class:`~orgaudit.model.catalog.Catalog`. Effective permissions are the union of the
bindings (:mod:`orgaudit.model.bindings`) that apply (RBAC guide;
docs/evidence.md#rbac-guide). A principal's
access level for keys in a project is ``manage_all``, ``create_own``, ``read`` or
``none``; the *verdict* on creating keys is ``allowed``, ``denied``, or ``unknown`` when
a source it needed was not read (a union only grows, so a missing source can turn a
denial into a grant, never the reverse: an ``allowed`` stands whatever is missing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from orgaudit.model.bindings import (
    SERVICE_ACCOUNT,
    USER,
    PermissionSet,
    raw_bindings,
    weighed_bindings,
)
from orgaudit.model.catalog import ORGANIZATION, PROJECT, Catalog
from orgaudit.store.snapshot import Snapshot
from orgaudit.vocabulary import CREATING_LEVELS, AccessLevel, Verdict

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


# The catalog rules the access levels rest on. Where one is contested, the levels are
# also worked out under its other reading, and a verdict that differs says so.
LEVEL_RULES = (
    "org_roles_apply_in_every_project",
    "key_rights_need_project_role",
    "service_accounts_create_keys",
    "archived_projects_allow_no_keys",
    "predefined_permissions_from_catalog",
)


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
        level = elsewhere["level"].where(~archived, AccessLevel.NONE)
        complete = elsewhere["complete"].astype(bool) & ~incomplete
        allowed = level.isin(list(CREATING_LEVELS))
        verdict = _verdict(allowed, complete)
        other_allowed = (elsewhere["verdict_other"] == Verdict.ALLOWED) & ~archived
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
    verdict: np.ndarray = np.select(
        [allowed, complete], [Verdict.ALLOWED, Verdict.DENIED], Verdict.UNKNOWN
    )
    return verdict


def compute_access(snapshot: Snapshot, catalog: Catalog) -> AccessModel:
    """Every binding and every access level of a snapshot, under a catalog.

    Where a rule the levels rest on is contested, the levels are worked out under its
    other reading too (from the same bindings), and each verdict carries both.
    """
    raw = raw_bindings(snapshot)
    bindings, permission_sets = weighed_bindings(raw, catalog)
    levels = _levels(bindings, snapshot, catalog)
    contested = catalog.contested_rules(LEVEL_RULES)
    if contested:
        other_catalog = catalog.under_other_reading(LEVEL_RULES)
        other_bindings, _ = weighed_bindings(raw, other_catalog)
        other = _levels(other_bindings, snapshot, other_catalog)
        levels = _with_other_reading(levels, other, ", ".join(r.name for r in contested))
    else:
        levels = levels.assign(verdict_other=levels["verdict"], contested="")
    projects = snapshot["projects"]
    # Projects where no key can be created (rule archived_projects_allow_no_keys).
    archived = (
        frozenset(projects.loc[projects["status"] == "archived", "id"])
        if catalog.settled.archived_projects_allow_no_keys
        else frozenset()
    )
    return AccessModel(
        bindings,
        levels,
        permission_sets,
        incomplete_projects=frozenset(_project_gaps(snapshot)),
        archived_projects=archived,
    )


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


def _levels(bindings: pd.DataFrame, snapshot: Snapshot, catalog: Catalog) -> pd.DataFrame:
    principal = ["principal_type", "principal_id"]
    effective = bindings.assign(
        grants_read=bindings["grants_read"] & ~bindings["conditional"],
        grants_create=bindings["grants_create"] & ~bindings["conditional"],
        grants_manage=bindings["grants_manage"] & ~bindings["conditional"],
    )
    org = _any_flags(effective[effective["scope"] == ORGANIZATION], principal)
    if not catalog.settled.org_roles_apply_in_every_project:
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
        [AccessLevel.MANAGE_ALL, AccessLevel.CREATE_OWN, AccessLevel.READ],
        AccessLevel.NONE,
    )
    if not catalog.settled.service_accounts_create_keys:
        level = np.where(levels["principal_type"] == SERVICE_ACCOUNT, AccessLevel.NONE, level)
    projects = snapshot["projects"][["id", "status"]].rename(columns={"id": "project_id"})
    levels = levels.assign(level=level).merge(
        projects, on="project_id", how="left", validate="many_to_one"
    )
    archived = (levels["status"] == "archived") & bool(
        catalog.settled.archived_projects_allow_no_keys
    )
    levels = levels.assign(
        archived=archived, level=np.where(archived, AccessLevel.NONE, levels["level"])
    )
    complete = _complete(levels, snapshot) & ~levels["unknown_role"]
    allowed = levels["level"].isin(list(CREATING_LEVELS))
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


def members_without_keys(model: AccessModel) -> pd.DataFrame:
    """The ``levels`` rows of users who hold a role in an active project and cannot (or
    cannot be told to) create keys there: the check user-cannot-create-keys and the
    report's first sheet both start from these."""
    levels = model.levels
    return levels[
        (levels["principal_type"] == USER)
        & levels["project_id"].notna()
        & ~levels["archived"].astype(bool)
        & (levels["verdict"] != Verdict.ALLOWED)
    ]


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
        .fillna({"level": AccessLevel.NONE, "complete": False, "verdict": Verdict.UNKNOWN})
        .fillna({"verdict_other": Verdict.UNKNOWN, "contested": ""})
    )
    fallen = model.fallback(placed.assign(complete=placed["complete"].astype(bool)))
    return pd.concat([here[has_row.to_numpy()], fallen], ignore_index=True)


def level_for(model: AccessModel, principal_id: str, project_id: str) -> pd.Series:
    """The access row that applies to a principal in a project (see levels_for_pairs)."""
    pair = pd.DataFrame({"principal_id": [principal_id], "project_id": [project_id]})
    return levels_for_pairs(model, pair).iloc[0]
