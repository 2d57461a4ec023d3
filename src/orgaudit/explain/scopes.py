"""Scopes: where one comes from, the least a key needs for some endpoints, and a pasted
"Missing scopes" error read against the catalog (and, given one, the snapshot)."""

from __future__ import annotations

from collections.abc import Iterable

from orgaudit.collect.scopes import parse_missing_scopes
from orgaudit.errors import UsageError
from orgaudit.explain.keys import endpoint_target, explain_key
from orgaudit.explain.records import (
    Contested,
    ErrorExplanation,
    KeyVerdict,
    ScopeAdvice,
    ScopesPlan,
    UserScopeCheck,
    contested_under,
    weakest,
)
from orgaudit.explain.user_scopes import user_scope_check
from orgaudit.model.access import AccessModel
from orgaudit.model.catalog import Catalog, DashboardSetting, EndpointRule, Requirement
from orgaudit.model.keys import REQUEST_RULE, grants_scope, request_presets
from orgaudit.store.snapshot import Snapshot
from orgaudit.vocabulary import Verdict


def roles_granting(catalog: Catalog, scopes: Iterable[Requirement]) -> tuple[str, ...]:
    """The built-in roles whose holder's keys may make requests needing ``scopes``: the
    same rule (request_rights_need_project_role) ``explain key`` and the checks apply."""
    needs = tuple(scopes)
    return tuple(
        preset.label
        for preset in request_presets(catalog)
        if all(any(grants_scope(preset.permissions, s) for s in r) for r in needs)
    )


def _roles_contested(catalog: Catalog, needs: tuple[Requirement, ...]) -> tuple[Contested, ...]:
    """A note where the other reading of the request rule lets other roles grant it."""
    rule = catalog.rule(REQUEST_RULE)
    if not rule.contested:
        return ()
    ours = roles_granting(catalog, needs)
    other = roles_granting(catalog.under_other_reading((REQUEST_RULE,)), needs)
    extra = [label for label in other if label not in ours]
    if not extra:
        return ()
    return (contested_under(rule, ", ".join(extra) + " also"),)


def scope_advice(catalog: Catalog, scope: str) -> ScopeAdvice:
    """Which dashboard settings, RBAC areas and built-in roles grant one scope."""
    settings = catalog.settings_granting(scope)
    areas = catalog.areas_granting(scope)
    levels = [s.evidence.level for s in settings] + [a.evidence.level for a, _ in areas]
    return ScopeAdvice(
        scope=scope,
        dashboard=tuple(s.label for s in settings),
        areas=tuple(f"{a.name}: {level}" for a, level in areas),
        roles=roles_granting(catalog, [(scope,)]),
        evidence=weakest(levels) if levels else "unknown to the catalog",
        contested=_roles_contested(catalog, ((scope,),)),
    )


def explain_error(
    catalog: Catalog,
    text: str,
    *,
    snapshot: Snapshot | None = None,
    model: AccessModel | None = None,
    key: str | None = None,
    user: str | None = None,
    project: str | None = None,
) -> ErrorExplanation:
    """Read a pasted API error: the scopes it names, where they come from, and checks."""
    scopes = parse_missing_scopes(text)
    if not scopes:
        raise UsageError("no 'Missing scopes: ...' list found in the text")
    advice = tuple(scope_advice(catalog, s) for s in scopes)
    checks = (
        "if the key is restricted, give it the dashboard settings listed",
        "check that the key's owner has a role in the key's project granting each scope "
        "(a key cannot do more than its owner)",
        "if the key's owner left the project, its requests fail whatever its scopes",
    )
    key_verdict: KeyVerdict | None = None
    user_check: UserScopeCheck | None = None
    decision: Verdict | None = None
    if snapshot is not None and model is not None and key is not None:
        key_verdict = explain_key(snapshot, model, catalog, key, required_scopes=scopes)
        decision = key_verdict.decision
    if snapshot is not None and model is not None and user is not None:
        if project is None:
            raise UsageError("--user needs --project")
        user_check = user_scope_check(snapshot, model, catalog, scopes, user, project)
        decision = user_check.decision
    return ErrorExplanation(decision, scopes, advice, checks, key_verdict, user_check)


def plan_scopes(catalog: Catalog, endpoints: Iterable[str]) -> ScopesPlan:
    """The least dashboard settings and scopes a key needs for the given endpoints.

    Each requirement is met by its narrowest scope. An endpoint the catalog does not
    know, or knows no scopes of, is listed as unknown rather than refused; a group whose
    settings grant its scopes only one at a time (Read or Write) is named as a conflict.
    """
    rules: list[EndpointRule] = []
    unknown: list[str] = []
    for spec in endpoints:
        label, needs, note = endpoint_target(catalog, spec)
        if needs is None:
            unknown.append(f"{label}: {note}")
            continue
        rule = catalog.endpoint(spec)
        assert rule is not None
        rules.append(rule)
    needs_all = tuple(dict.fromkeys(r for rule in rules for r in rule.requires or ()))
    scopes = sorted(_least_scopes(needs_all))
    by_group: dict[str, list[DashboardSetting]] = {}
    for scope in scopes:
        narrowest = catalog.settings_granting(scope)[:1]
        for setting in narrowest:
            if setting not in by_group.setdefault(setting.group, []):
                by_group[setting.group].append(setting)
    settings: list[str] = []
    conflicts: list[str] = []
    for group, picked in by_group.items():
        wanted = frozenset(s for setting in picked for s in setting.scopes)
        whole = [d for d in catalog.dashboard if d.group == group and wanted <= d.scopes]
        if whole or len(picked) == 1:
            settings.append(
                min(whole, key=lambda d: len(d.scopes)).label if whole else picked[0].label
            )
            continue
        # No one setting of the group grants all it needs: both are named, never one
        # picked at random that would contradict the scopes listed.
        settings.append(f"{group}: {' or '.join(d.setting for d in picked)} (not both: see below)")
        granted = "; ".join(f"{d.setting} grants {', '.join(sorted(d.scopes))}" for d in picked)
        conflicts.append(
            f"{group}: no one setting grants {', '.join(sorted(wanted))} ({granted}); "
            "a restricted key holds one setting per group: use two keys, or an All key"
        )
    groups = list(dict.fromkeys(d.group for d in catalog.dashboard if " > " not in d.group))
    used = set(by_group)
    leave = tuple(
        g for g in groups if g not in used and not any(u.startswith(g + " > ") for u in used)
    )
    evidence = tuple(f"{rule.label}: {rule.evidence}" for rule in rules)
    if not rules:  # only endpoints nobody knows the scopes of: nothing to advise
        return ScopesPlan((), (), (), (), (), (), unknown=tuple(unknown))
    return ScopesPlan(
        endpoints=tuple(rule.label for rule in rules),
        scopes=tuple(scopes),
        settings=tuple(settings),
        leave_at_none=leave,
        roles=roles_granting(catalog, needs_all),
        evidence=evidence,
        unknown=tuple(unknown),
        conflicts=tuple(conflicts),
        contested=_roles_contested(catalog, needs_all),
    )


def _least_scopes(needs: tuple[Requirement, ...]) -> set[str]:
    """One scope per requirement: the only one where there is no choice, else one already
    taken for another requirement (model.request, taken for POST /v1/responses, also
    serves /v1/audio), else the narrowest."""
    taken = {r[0] for r in needs if len(r) == 1}
    for requirement in needs:
        if not taken & set(requirement):
            taken.add(requirement[0])
    return taken
