"""Verdicts and their explanations: for a user in a project, for a key, for a pasted error.

Like a cloud policy troubleshooter: a verdict, then every binding weighed, whether it
grants the permission and through whom, the deciding rows marked, and the ways to fix
it, each with the evidence of the catalog rule it rests on. Pure functions over a
snapshot, its access model and the catalog; the results are frozen values that the
command line prints as text or JSON.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from orgaudit.access import (
    ALLOWED,
    DENIED,
    READ_ONLY,
    SERVICE_ACCOUNT,
    UNKNOWN,
    UNRESTRICTED,
    AccessModel,
    grants_scope,
    level_for,
    levels_for_pairs,
    missing_binding_sources,
    recorded_key_scopes,
    request_permissions,
    scope_kind,
    scopes_unknown_reasons,
)
from orgaudit.catalog import ORGANIZATION, Catalog, DashboardSetting
from orgaudit.errors import UsageError
from orgaudit.scopes import parse_missing_scopes
from orgaudit.snapshot import Snapshot


@dataclass(frozen=True)
class WeighedBinding:
    """One binding as the verdict weighed it."""

    source: str
    role: str
    via_group: str | None
    scope: str
    grants: bool
    deciding: bool
    note: str
    evidence: str


@dataclass(frozen=True)
class Fix:
    """One way to change the verdict, and how sure the rule behind it is."""

    action: str
    evidence: str


@dataclass(frozen=True)
class UserVerdict:
    """Whether a user may create keys in a project, and why."""

    decision: str
    permission: str
    level: str
    user: dict[str, str]
    project: dict[str, str]
    bindings: tuple[WeighedBinding, ...]
    fixes: tuple[Fix, ...]
    missing_sources: tuple[str, ...]
    summary: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``decision``, ``permission``, ``bindings``, ``fixes``, ...)."""
        return asdict(self)


@dataclass(frozen=True)
class KeyVerdict:
    """Whether a key's requests (to an endpoint, or at all) would pass, and why."""

    decision: str
    key: dict[str, str]
    owner: dict[str, str]
    scopes: tuple[str, ...] | None
    scopes_kind: str
    scopes_note: str
    endpoint: str | None
    required: tuple[str, ...]
    missing_in_key: tuple[str, ...]
    missing_in_owner: tuple[str, ...]
    owner_permissions: tuple[str, ...]
    advice: tuple[Fix, ...]
    summary: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class ScopeAdvice:
    """Where one scope comes from: dashboard settings, RBAC areas, built-in roles."""

    scope: str
    dashboard: tuple[str, ...]
    areas: tuple[str, ...]
    roles: tuple[str, ...]
    evidence: str


@dataclass(frozen=True)
class ErrorExplanation:
    """A pasted "Missing scopes" error, read against the catalog (and the snapshot)."""

    decision: str | None
    scopes: tuple[str, ...]
    advice: tuple[ScopeAdvice, ...]
    checks: tuple[str, ...]
    key: KeyVerdict | None
    user: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class ScopesPlan:
    """The least a restricted key needs for a set of endpoints."""

    endpoints: tuple[str, ...]
    scopes: tuple[str, ...]
    settings: tuple[str, ...]
    leave_at_none: tuple[str, ...]
    roles: tuple[str, ...]
    evidence: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


# -- finding things by name ---------------------------------------------------------------


def _text(value: object, missing: str = "") -> str:
    """A field as text; ``missing`` where the API left it out (None or NA)."""
    absent = value is None or value is pd.NA or (isinstance(value, float) and value != value)
    return missing if absent else str(value)


def _closest(wanted: str, choices: Iterable[str]) -> str:
    options = sorted({c for c in choices if isinstance(c, str)})
    matches = difflib.get_close_matches(wanted, options, n=3, cutoff=0.5)
    return f"; closest: {', '.join(matches)}" if matches else ""


def _only_one(match: pd.DataFrame, wanted: str, what: str) -> None:
    """A name several entries share is ambiguous: say which ids to use instead."""
    if len(match) > 1 and not (match["id"] == wanted).any():
        ids = ", ".join(sorted(match["id"].astype(str)))
        raise UsageError(f"{len(match)} {what} are named {wanted!r}; use an id: {ids}")


def find_user(snapshot: Snapshot, wanted: str) -> pd.Series:
    """A user by id or e-mail (case-insensitive); a one-line error naming close matches."""
    users = snapshot["users"]
    match = users[(users["id"] == wanted) | (users["email"].str.lower() == wanted.lower())]
    if match.empty:
        choices = [*users["email"].dropna(), *users["id"]]
        raise UsageError(f"no user {wanted!r} in snapshot {snapshot.id}{_closest(wanted, choices)}")
    return match.iloc[0]


def find_project(snapshot: Snapshot, wanted: str) -> pd.Series:
    """A project by id or name (case-insensitive)."""
    projects = snapshot["projects"]
    match = projects[(projects["id"] == wanted) | (projects["name"].str.lower() == wanted.lower())]
    _only_one(match, wanted, "projects")
    if match.empty:
        choices = [*projects["name"].dropna(), *projects["id"]]
        raise UsageError(
            f"no project {wanted!r} in snapshot {snapshot.id}{_closest(wanted, choices)}"
        )
    return match.iloc[0]


def find_key(snapshot: Snapshot, wanted: str) -> pd.Series:
    """A project API key by id or name."""
    keys = snapshot["project_api_keys"]
    match = keys[(keys["id"] == wanted) | (keys["name"] == wanted)]
    _only_one(match, wanted, "API keys")
    if match.empty:
        choices = [*keys["id"], *keys["name"].dropna()]
        raise UsageError(
            f"no API key {wanted!r} in snapshot {snapshot.id}{_closest(wanted, choices)}"
        )
    return match.iloc[0]


# -- users ---------------------------------------------------------------------------------


def explain_user(
    snapshot: Snapshot,
    model: AccessModel,
    catalog: Catalog,
    user: str,
    project: str | None = None,
) -> tuple[UserVerdict, ...]:
    """Whether a user may create their own keys, in one project or in each project."""
    found = find_user(snapshot, user)
    if project is not None:
        projects = find_project(snapshot, project).to_frame().T
    else:
        projects = snapshot["projects"]
    uid = str(found["id"])
    # One lookup for every project, and the user's bindings picked out once.
    pairs = pd.DataFrame({"principal_id": uid, "project_id": projects["id"].astype(str)})
    rows = {str(r["project_id"]): r for _, r in levels_for_pairs(model, pairs).iterrows()}
    mine = model.bindings[model.bindings["principal_id"] == uid]
    return tuple(
        _user_in_project(
            snapshot,
            model,
            catalog,
            found,
            p,
            rows[str(p["id"])],
            mine[(mine["scope"] == ORGANIZATION) | (mine["project_id"] == p["id"])],
        )
        for _, p in projects.iterrows()
    )


def _user_in_project(
    snapshot: Snapshot,
    model: AccessModel,
    catalog: Catalog,
    user: pd.Series,
    project: pd.Series,
    row: pd.Series,
    weighed: pd.DataFrame,
) -> UserVerdict:
    uid, pid = str(user["id"]), str(project["id"])
    permission = catalog.keys.create_own
    archived = project["status"] == "archived" and bool(
        catalog.rule("archived_projects_allow_no_keys").value
    )
    decision = DENIED if archived else str(row["verdict"])
    has_project_role = bool((weighed["scope"] != ORGANIZATION).any())
    rows = tuple(
        _weigh(b, model, catalog, decision, has_project_role, archived)
        for _, b in weighed.iterrows()
    )
    if archived:
        rule = catalog.rule("archived_projects_allow_no_keys")
        rows += (
            WeighedBinding(
                "project status",
                "archived",
                None,
                "project",
                False,
                True,
                "no keys can be created in an archived project",
                rule.evidence.level,
            ),
        )
    missing = missing_binding_sources(snapshot, uid, pid) if decision == UNKNOWN else ()
    who = _text(user["email"], uid)
    where = _text(project["name"], pid)
    summary = {
        ALLOWED: f"{who} can create API keys in {where} ({row['level'].replace('_', ' ')})",
        DENIED: f"{who} cannot create API keys in {where}",
        UNKNOWN: f"cannot tell whether {who} can create API keys in {where}: "
        + (f"{', '.join(missing)} not read" if missing else "a role unknown to the catalog"),
    }[decision]
    return UserVerdict(
        decision=decision,
        permission=permission,
        level=str(row["level"]),
        user={"id": uid, "email": _text(user["email"]), "name": _text(user["name"])},
        project={"id": pid, "name": _text(project["name"]), "status": _text(project["status"])},
        bindings=rows,
        fixes=_user_fixes(model, catalog, user, project, weighed, decision, archived, missing),
        missing_sources=missing,
        summary=summary,
    )


def _weigh(
    binding: pd.Series,
    model: AccessModel,
    catalog: Catalog,
    decision: str,
    has_project_role: bool,
    archived_here: bool,
) -> WeighedBinding:
    pset = model.permission_sets[str(binding["permission_key"])]
    conditional = bool(binding["conditional"])
    grants = bool(binding["grants_create"]) and not conditional
    if conditional:
        rule = catalog.rule("key_rights_need_project_role")
        note = "its rights on keys come from a project role" + (
            "" if has_project_role else "; the user has none in this project"
        )
        evidence = rule.evidence.level
    elif not pset.known:
        note, evidence = pset.source, pset.evidence
    else:
        level = (
            "manages all keys"
            if binding["grants_manage"]
            else "creates own keys"
            if binding["grants_create"]
            else "reads keys only"
            if binding["grants_read"]
            else "no rights on keys"
        )
        note, evidence = f"{level} ({pset.source})", pset.evidence
    if archived_here:
        deciding = False  # the project's status decides, whatever the roles say
    elif decision == ALLOWED:
        deciding = grants
    else:  # what to change: the project's roles if any, else the org role
        deciding = (binding["scope"] != ORGANIZATION) if has_project_role else True
    via = binding["via_group_name"]
    return WeighedBinding(
        source=str(binding["kind"]),
        role=str(binding["role_name"]),
        via_group=None if pd.isna(via) else str(via),
        scope=str(binding["scope"]),
        grants=grants,
        deciding=bool(deciding),
        note=note,
        evidence=evidence,
    )


def _user_fixes(
    model: AccessModel,
    catalog: Catalog,
    user: pd.Series,
    project: pd.Series,
    weighed: pd.DataFrame,
    decision: str,
    archived: bool,
    missing: tuple[str, ...],
) -> tuple[Fix, ...]:
    if decision == ALLOWED:
        return ()
    who = _text(user["email"], str(user["id"]))
    where = _text(project["name"], str(project["id"]))
    member = catalog.preset_for("project", "member")
    member_evidence = member.evidence.level if member else "inferred"
    if archived:
        rule = catalog.rule("archived_projects_allow_no_keys")
        return (Fix(f"{where} is archived: create keys in an active project", rule.evidence.level),)
    fixes: list[Fix] = []
    if missing:
        fixes.append(
            Fix(
                f"pull again with an admin key that can read {', '.join(missing)}, then ask again",
                "documented",
            )
        )
    project_rows = weighed[weighed["scope"] != ORGANIZATION]
    if project_rows.empty:
        fixes.append(
            Fix(f"add {who} to {where} as a member (Project settings > Members)", member_evidence)
        )
    for _, row in project_rows.iterrows():
        if row["grants_create"]:
            continue
        if not bool(row["known"]):
            fixes.append(
                Fix(
                    f"find out what the role {row['role_name']} that {who} holds in {where} "
                    "grants and describe it in the catalog (--catalog; see the "
                    f"unrecognized-value finding), or give {who} the member role in {where}",
                    "inferred",
                )
            )
        elif row["preset_id"] is not None and not pd.isna(row["preset_id"]):
            fixes.append(
                Fix(
                    f"change {who}'s role in {where} from {row['role_name']} to member",
                    member_evidence,
                )
            )
        elif pd.isna(row["via_group_name"]):
            fixes.append(
                Fix(
                    f"add {catalog.keys.create_own} to custom role '{row['role_name']}', "
                    f"or give {who} the member role in {where}",
                    catalog.keys.evidence.level,
                )
            )
    bindings = model.bindings
    granting_groups = sorted(
        set(
            bindings.loc[
                (bindings["project_id"] == project["id"])
                & bindings["grants_create"]
                & bindings["via_group_name"].notna(),
                "via_group_name",
            ]
        )
    )
    if granting_groups:
        fixes.append(
            Fix(
                f"or add {who} to a group whose role in {where} grants it: "
                + ", ".join(granting_groups),
                catalog.keys.evidence.level,
            )
        )
    return tuple(fixes)


# -- keys ----------------------------------------------------------------------------------


def explain_key(
    snapshot: Snapshot,
    model: AccessModel,
    catalog: Catalog,
    key: str,
    endpoint: str | None = None,
    required_scopes: tuple[str, ...] | None = None,
) -> KeyVerdict:
    """Whether a key's requests would pass: its scopes, its owner's roles, an endpoint."""
    found = find_key(snapshot, key)
    rule = None
    if endpoint is not None:
        rule = catalog.endpoint(endpoint)
        if rule is None:
            known = [r.label for r in catalog.endpoints]
            raise UsageError(f"the catalog has no endpoint {endpoint!r}{_closest(endpoint, known)}")
        required_scopes = rule.requires
    project = find_project(snapshot, str(found["project_id"]))
    owner_id = _text(found["owner_id"])
    owner_type = _text(found["owner_type"], "unknown owner type")
    owner_permissions = request_permissions(model, catalog, owner_id, str(project["id"]))
    owner_row = level_for(model, owner_id, str(project["id"]))
    # An owner the snapshot cannot name, or of a type the catalog does not know (when it
    # lists the types at all), has rights
    # nobody can tell: its key's requests are unknown, never passed nor denied on its
    # account (the key's own scopes can still deny them).
    owner_types = catalog.known_values_of("project_api_keys.owner_type")
    owner_recognized = bool(owner_id) and (not owner_types or owner_type in owner_types)
    owner_known = bool(owner_row["complete"]) and owner_recognized
    scopes, kind, note = _key_scopes(snapshot, catalog, found)
    holds = _scope_test(kind, scopes)
    asked = tuple(required_scopes) if required_scopes is not None else tuple(sorted(scopes or ()))
    missing_in_key = tuple(s for s in asked if not holds(s)) if kind != "unknown" else ()
    missing_in_owner = tuple(s for s in asked if not grants_scope(owner_permissions, s))
    access = str(found["owner_project_access"])
    advice = _key_advice(catalog, scopes or frozenset(), missing_in_key, missing_in_owner, access)
    archived_rule = catalog.rule("archived_projects_allow_no_keys")
    archived = project["status"] == "archived" and bool(archived_rule.value)
    if archived:
        advice = (
            Fix(
                f"{project['name']} is archived: its keys cannot be used; delete the key",
                archived_rule.evidence.level,
            ),
            *advice,
        )
    if archived or access != "active" or missing_in_key or (missing_in_owner and owner_known):
        decision = DENIED
    elif kind == "unknown" or missing_in_owner or not owner_recognized:
        decision = UNKNOWN
    else:
        decision = ALLOWED
    if rule is not None:
        target = rule.label
    elif required_scopes is not None:
        target = "the scopes asked for"
    else:
        target = "its recorded scopes"
    summary = {
        ALLOWED: f"requests with key {found['name']} to {target} would pass",
        DENIED: f"requests with key {found['name']} to {target} would fail",
        UNKNOWN: f"cannot tell whether requests with key {found['name']} to {target} pass",
    }[decision]
    return KeyVerdict(
        decision=decision,
        key={
            "id": str(found["id"]),
            "name": _text(found["name"]),
            "project_id": str(project["id"]),
            "project": _text(project["name"], str(project["id"])),
            "owner_project_access": access,
        },
        owner={
            "type": owner_type,
            "id": owner_id,
            "name": _text(found["owner_name"]),
            "email": _text(found["owner_email"]),
            "level": str(owner_row["level"]),
        },
        scopes=None if scopes is None else tuple(sorted(scopes)),
        scopes_kind=kind,
        scopes_note=note,
        endpoint=rule.label if rule else None,
        required=asked,
        missing_in_key=missing_in_key,
        missing_in_owner=missing_in_owner,
        owner_permissions=tuple(sorted(owner_permissions)),
        advice=advice,
        summary=summary,
    )


def _key_scopes(
    snapshot: Snapshot, catalog: Catalog, key: pd.Series
) -> tuple[frozenset[str] | None, str, str]:
    """The key's recorded scopes, what kind of key that makes it, and a note why."""
    recorded = recorded_key_scopes(snapshot)
    mine = recorded[recorded["key_id"] == key["id"]]
    if mine.empty:
        if snapshot.source_status("audit_key_events") == "unavailable":
            why = "the audit log could not be read in this snapshot"
        else:
            before = pd.notna(key["created_at"]) and key["created_at"] < snapshot.audit_since
            why = scopes_unknown_reasons(snapshot)[bool(before)]
        return None, "unknown", why
    scopes_set = frozenset(str(s) for s in json.loads(str(mine.iloc[0]["scopes"])))
    kind = scope_kind(scopes_set, catalog)
    if kind == UNRESTRICTED:
        level = catalog.rule("unrestricted_key_scopes").evidence.level
        return scopes_set, kind, f"an 'All' key ({level})"
    if kind == READ_ONLY:
        level = catalog.rule("read_only_key_scope").evidence.level
        return scopes_set, kind, f"a 'Read only' key ({level})"
    recorded_at = mine.iloc[0]["recorded_at"]
    return scopes_set, "restricted", f"recorded on {recorded_at:%Y-%m-%d}"


def _scope_test(kind: str, scopes: frozenset[str] | None) -> Callable[[str], bool]:
    """Whether the key holds a scope: an "All" key holds every one, a "Read only" key
    every ``.read`` scope (reference §6.1), a restricted key those recorded."""
    if kind == UNRESTRICTED:
        return lambda scope: True
    if kind == READ_ONLY:
        return lambda scope: scope.endswith(".read")
    held = scopes or frozenset()
    return lambda scope: scope in held


def _key_advice(
    catalog: Catalog,
    scopes: frozenset[str],
    missing_in_key: tuple[str, ...],
    missing_in_owner: tuple[str, ...],
    access: str,
) -> tuple[Fix, ...]:
    advice: list[Fix] = []
    if access != "active":
        advice.append(
            Fix(
                "the key's owner no longer has access to the project: delete the key, or give "
                "the owner a project role again",
                "documented",
            )
        )
    wanted = set(missing_in_key) | scopes
    chosen: list[DashboardSetting] = []
    for scope in missing_in_key:
        settings = catalog.settings_granting(scope)
        if not settings:
            advice.append(Fix(f"no dashboard setting in the catalog grants {scope}", "inferred"))
            continue
        # The setting that covers most of what the key holds and lacks: Write over Read
        # when the key already writes; narrowest among equals.
        setting = max(settings, key=lambda s: (len(s.scopes & wanted), -len(s.scopes)))
        if setting in chosen:
            continue
        chosen.append(setting)
        granted = ", ".join(sorted(setting.scopes & set(missing_in_key)))
        text = f"set {setting.group} to {setting.setting} on the key (grants {granted})"
        for trap in catalog.traps:
            if trap.umbrella in setting.scopes and trap.springs(scopes):
                text += f"; {trap.advice}"
        advice.append(Fix(text, setting.evidence.level))
    for scope in missing_in_owner:
        areas = catalog.areas_granting(scope)
        where = ", ".join(f"{a.name}: {level}" for a, level in areas) or "no known area"
        advice.append(
            Fix(
                f"the owner's roles in the project do not grant {scope} ({where}); a key cannot "
                "do more than its owner",
                "documented",
            )
        )
    return tuple(advice)


# -- pasted errors -------------------------------------------------------------------------


def scope_advice(catalog: Catalog, scope: str) -> ScopeAdvice:
    """Which dashboard settings, RBAC areas and built-in roles grant one scope."""
    settings = catalog.settings_granting(scope)
    areas = catalog.areas_granting(scope)
    roles = tuple(p.label for p in catalog.presets.values() if scope in p.permissions)
    levels = [s.evidence.level for s in settings] + [a.evidence.level for a, _ in areas]
    return ScopeAdvice(
        scope=scope,
        dashboard=tuple(s.label for s in settings),
        areas=tuple(f"{a.name}: {level}" for a, level in areas),
        roles=roles,
        evidence=_weakest(levels) if levels else "unknown to the catalog",
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
    key_verdict = None
    user_check = None
    decision = None
    if snapshot is not None and model is not None and key is not None:
        key_verdict = explain_key(snapshot, model, catalog, key, required_scopes=scopes)
        decision = key_verdict.decision
    if snapshot is not None and model is not None and user is not None:
        if project is None:
            raise UsageError("--user needs --project")
        found = find_user(snapshot, user)
        where = find_project(snapshot, project)
        held = request_permissions(model, catalog, str(found["id"]), str(where["id"]))
        lacking = tuple(s for s in scopes if not grants_scope(held, s))
        complete = bool(level_for(model, str(found["id"]), str(where["id"]))["complete"])
        decision = ALLOWED if not lacking else (DENIED if complete else UNKNOWN)
        user_check = {
            "user": _text(found["email"], str(found["id"])),
            "project": _text(where["name"], str(where["id"])),
            "decision": decision,
            "lacking": list(lacking),
        }
    return ErrorExplanation(decision, scopes, advice, checks, key_verdict, user_check)


# -- least scopes for endpoints -----------------------------------------------------------


def plan_scopes(catalog: Catalog, endpoints: Iterable[str]) -> ScopesPlan:
    """The least dashboard settings and scopes a key needs for the given endpoints."""
    rules = []
    for spec in endpoints:
        rule = catalog.endpoint(spec)
        if rule is None:
            known = [r.label for r in catalog.endpoints]
            raise UsageError(f"the catalog has no endpoint {spec!r}{_closest(spec, known)}")
        rules.append(rule)
    scopes = sorted({s for rule in rules for s in rule.requires})
    chosen: dict[str, DashboardSetting] = {}
    for scope in scopes:
        settings = catalog.settings_granting(scope)
        if not settings:
            continue
        setting = settings[0]
        current = chosen.get(setting.group)
        if current is None or len(setting.scopes) > len(current.scopes):
            chosen[setting.group] = setting
    groups = []
    for setting in catalog.dashboard:
        if " > " not in setting.group and setting.group not in groups:
            groups.append(setting.group)
    leave = tuple(g for g in groups if g not in chosen)
    roles = tuple(
        p.label
        for p in catalog.presets.values()
        if p.resource == "project" and set(scopes) <= p.permissions
    )
    evidence = tuple(f"{rule.label}: {rule.evidence}" for rule in rules)
    return ScopesPlan(
        endpoints=tuple(rule.label for rule in rules),
        scopes=tuple(scopes),
        settings=tuple(s.label for s in chosen.values()),
        leave_at_none=leave,
        roles=roles,
        evidence=evidence,
    )


def _weakest(levels: list[str]) -> str:
    order = ("inferred", "observed", "documented")
    return min(levels, key=order.index)


__all__ = [
    "SERVICE_ACCOUNT",
    "ErrorExplanation",
    "KeyVerdict",
    "ScopesPlan",
    "UserVerdict",
    "explain_error",
    "explain_key",
    "explain_user",
    "plan_scopes",
]
