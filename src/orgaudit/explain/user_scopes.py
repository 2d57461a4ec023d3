"""A user weighed against the scopes a pasted error names, in one project: which scopes
their roles lack, and for each, why (the roles weighed, those the request rule leaves
out) and what would grant it (built-in roles, a custom role's permission area).

The rule is the one ``explain key`` and the checks apply (request_rights_need_project_role):
only project roles, and the org owner role, count for a key's requests.
"""

from __future__ import annotations

import pandas as pd

from orgaudit.explain.lookup import find_project, find_user
from orgaudit.explain.records import (
    Fix,
    ProjectRef,
    ScopeGap,
    UserRef,
    UserScopeCheck,
    contested_request_rule,
    unique_fixes,
    weakest,
)
from orgaudit.model.access import AccessModel, level_for, missing_binding_sources
from orgaudit.model.catalog import PROJECT, Area, Catalog, Preset
from orgaudit.model.keys import (
    REQUEST_RULE,
    applicable_bindings,
    grants_scope,
    request_bindings,
    request_permissions,
    request_presets,
)
from orgaudit.store.snapshot import Snapshot
from orgaudit.vocabulary import Verdict


def user_scope_check(
    snapshot: Snapshot,
    model: AccessModel,
    catalog: Catalog,
    scopes: tuple[str, ...],
    user: str,
    project: str,
) -> UserScopeCheck:
    """Whether a user's roles in a project grant the scopes an error names, and for each
    scope they lack, why and how to grant it."""
    found = find_user(snapshot, user)
    where = find_project(snapshot, project)
    complete = bool(level_for(model, found.id, where.id)["complete"])

    def lacking_under(rules: Catalog) -> tuple[str, ...]:
        held = request_permissions(model, rules, found.id, where.id)
        return tuple(s for s in scopes if not grants_scope(held, s))

    def verdict(rules: Catalog) -> Verdict:
        if not lacking_under(rules):
            return Verdict.ALLOWED
        return Verdict.DENIED if complete else Verdict.UNKNOWN

    decision = verdict(catalog)
    contested = contested_request_rule(catalog, verdict, decision)
    lacking = lacking_under(catalog)
    missing = () if complete else missing_binding_sources(snapshot, found.id, where.id)
    gaps = tuple(_gap(model, catalog, found, where, scope, missing) for scope in lacking)
    return UserScopeCheck(found.label, where.label, decision, lacking, contested, gaps)


def _label(binding: pd.Series) -> str:
    via = binding["via_group_name"]
    through = "" if pd.isna(via) else f" via {via}"
    return f"{binding['role_name']} ({binding['kind']}{through})"


def _grants(model: AccessModel, binding: pd.Series, scope: str) -> bool:
    return grants_scope(model.permission_sets[str(binding["permission_key"])].permissions, scope)


def _gap(
    model: AccessModel,
    catalog: Catalog,
    user: UserRef,
    project: ProjectRef,
    scope: str,
    missing: tuple[str, ...],
) -> ScopeGap:
    """Why a user's roles in a project do not grant one scope, and what would."""
    who, where = user.label, project.label
    held = applicable_bindings(model, user.id, project.id)
    counted = request_bindings(held, catalog)
    left_out = held.drop(counted.index)
    rule = catalog.rule(REQUEST_RULE)
    other = (
        request_bindings(held, catalog.under_other_reading((REQUEST_RULE,)))
        if rule.contested
        else counted
    )
    would_grant = tuple(
        _label(b)
        for i, b in other.iterrows()
        if i not in counted.index and _grants(model, b, scope)
    )
    weighed = tuple(_label(b) for _, b in counted.iterrows())
    not_counted = tuple(_label(b) for _, b in left_out.iterrows())
    why = (
        f"{who}'s roles in {where} that count for a key's requests: {', '.join(weighed)}; "
        f"none grants {scope}"
        if weighed
        else f"{who} holds no role in {where} that counts for a key's requests"
    )
    if not_counted:
        why += (
            f"; not counted (rule {REQUEST_RULE}{', contested' if rule.contested else ''}: "
            f"only project roles and the org owner role count): {', '.join(not_counted)}"
        )
    if would_grant:
        why += f"; under the rule's other reading {', '.join(would_grant)} would grant it"
    if missing:
        why += f"; {', '.join(missing)} not read, so a role granting it may be missing"
    presets = [p for p in request_presets(catalog) if grants_scope(p.permissions, scope)]
    areas = catalog.areas_granting(scope)
    return ScopeGap(
        scope=scope,
        why=why,
        roles_weighed=weighed,
        roles_not_counted=not_counted,
        granted_under_other_reading=would_grant,
        roles_granting=tuple(p.label for p in presets),
        areas_granting=tuple(f"{area.name}: {level}" for area, level in areas),
        fixes=_gap_fixes(catalog, who, where, scope, presets, areas, counted),
    )


def _gap_fixes(
    catalog: Catalog,
    who: str,
    where: str,
    scope: str,
    presets: list[Preset],
    areas: tuple[tuple[Area, str], ...],
    counted: pd.DataFrame,
) -> tuple[Fix, ...]:
    """The built-in roles that would grant a scope, then the custom-role permission."""
    fixes: list[Fix] = []
    in_project = [p for p in presets if p.resource == PROJECT]
    org_wide = [p for p in presets if p.resource != PROJECT]
    if in_project:
        also = f"; the org role {' or '.join(p.label for p in org_wide)} grants it too"
        fixes.append(
            Fix(
                f"give {who} a built-in role in {where} that grants {scope} (Project settings "
                f"> Members): {' or '.join(p.label for p in in_project)}"
                + (also if org_wide else ""),
                weakest(p.evidence.level for p in (*in_project, *org_wide)),
            )
        )
    elif org_wide:
        fixes.append(
            Fix(
                f"only the org role {' or '.join(p.label for p in org_wide)} grants {scope} "
                f"among the built-in roles: give {who} that role",
                weakest(p.evidence.level for p in org_wide),
            )
        )
    custom = counted[(counted["scope"] == PROJECT) & counted["preset_id"].isna()]
    for area, level in areas:
        granted = f"{area.name}: {level}"
        if custom.empty:
            action = f"give {who} a custom project role in {where} with {granted}"
        else:
            names = ", ".join(f"'{name}'" for name in dict.fromkeys(custom["role_name"]))
            action = f"add {granted} to custom role {names}, which {who} holds in {where}"
        fixes.append(Fix(("or " if fixes else "") + action, area.evidence.level))
    if not fixes:
        fixes.append(
            Fix(
                f"no role in the catalog grants {scope}: check the scope's name, or describe "
                "what grants it in the catalog (--catalog)",
                "inferred",
            )
        )
    return unique_fixes(fixes)
