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

from orgaudit.collect.scopes import parse_missing_scopes
from orgaudit.errors import UsageError
from orgaudit.model.access import (
    ALLOWED,
    DENIED,
    READ_ONLY,
    REQUEST_RULE,
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
    request_presets,
    scope_kind,
    scopes_unknown_reasons,
)
from orgaudit.model.catalog import (
    EVIDENCE_DOC,
    ORGANIZATION,
    Catalog,
    DashboardSetting,
    EndpointRule,
    Requirement,
    Rule,
    requirement_text,
    split_endpoint,
)
from orgaudit.store.snapshot import Snapshot


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
class Contested:
    """A verdict that rests on a contested catalog rule, and what the other reading says."""

    rule: str
    reading: str
    other_reading: str
    decision_if_other: str
    evidence: str

    @property
    def text(self) -> str:
        """One sentence for the terminal and the reports."""
        return (
            f"contested: rests on rule {self.rule} ({self.reading}); under the other "
            f"reading ({self.other_reading}): {self.decision_if_other}"
        )


def contested_by(catalog: Catalog, names: str, decision_if_other: str) -> tuple[Contested, ...]:
    """The contested notes for comma-separated rule names (empty where there are none)."""
    return tuple(
        _contested(catalog.rule(name.strip()), decision_if_other)
        for name in names.split(",")
        if name.strip()
    )


def _contested(rule: Rule, decision_if_other: str) -> Contested:
    other = rule.alternative.says if rule.alternative is not None else ""
    ids = ", ".join(rule.evidence.ids)
    return Contested(rule.name, rule.says, other, decision_if_other, f"{EVIDENCE_DOC}: {ids}")


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
    contested: tuple[Contested, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``decision``, ``permission``, ``bindings``, ``fixes``, ...)."""
        return asdict(self)


@dataclass(frozen=True)
class EndpointCheck:
    """One endpoint (or set of scopes) weighed against a key and its owner."""

    target: str
    decision: str
    required: tuple[str, ...]
    missing_in_key: tuple[str, ...]
    missing_in_owner: tuple[str, ...]
    note: str
    evidence: str


@dataclass(frozen=True)
class KeyVerdict:
    """Whether a key's requests (to an endpoint, or at all) would pass, and why.

    Without an endpoint, every endpoint the key's scopes are evidently meant for is
    weighed (``checks``); ``required`` and the ``missing_*`` fields are their union.
    """

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
    checks: tuple[EndpointCheck, ...] = ()
    contested: tuple[Contested, ...] = ()

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
    contested: tuple[Contested, ...] = ()


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
    unknown: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()
    contested: tuple[Contested, ...] = ()

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
    contested = contested_by(catalog, _text(row["contested"]), _text(row["verdict_other"]))
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
        contested=() if archived else contested,
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
    """Whether a key's requests would pass: its scopes, its owner's roles, an endpoint.

    With ``endpoint`` that endpoint is weighed, with ``required_scopes`` those scopes;
    with neither, every endpoint the key's scopes are evidently meant for (a key holding
    Responses Write is meant for ``POST /v1/responses``, and fails there without
    model.request), else its recorded scopes as they are.
    """
    found = find_key(snapshot, key)
    project = find_project(snapshot, str(found["project_id"]))
    project_id = str(project["id"])
    owner_id = _text(found["owner_id"])
    owner_type = _text(found["owner_type"], "unknown owner type")
    owner_row = level_for(model, owner_id, project_id)
    # An owner the snapshot cannot name, or of a type the catalog does not know (when it
    # lists the types at all), has rights nobody can tell: its key's requests are
    # unknown, never passed nor denied on its account (the key's own scopes can still
    # deny them).
    owner_types = catalog.known_values_of("project_api_keys.owner_type")
    owner_recognized = bool(owner_id) and (not owner_types or owner_type in owner_types)
    owner_known = bool(owner_row["complete"]) and owner_recognized
    scopes, kind, note = _key_scopes(snapshot, catalog, found)
    targets = _key_targets(catalog, endpoint, required_scopes, scopes, kind)
    access = str(found["owner_project_access"])
    archived_rule = catalog.rule("archived_projects_allow_no_keys")
    archived = project["status"] == "archived" and bool(archived_rule.value)
    expires_at = found["expires_at"] if "expires_at" in found.index else None
    expired = pd.notna(expires_at) and expires_at < snapshot.as_of
    blocked = archived or access != "active" or expired
    other_catalog = catalog.under_other_reading((REQUEST_RULE,))

    def weigh(rules_catalog: Catalog) -> tuple[EndpointCheck, ...]:
        owner_permissions = request_permissions(model, rules_catalog, owner_id, project_id)
        return tuple(
            _endpoint_check(
                target, needs, note_or_evidence, kind, scopes, owner_permissions, owner_known
            )
            for target, needs, note_or_evidence in targets
        )

    checks = weigh(catalog)
    decision = _key_decision(checks, blocked, owner_recognized)
    contested: tuple[Contested, ...] = ()
    if catalog.rule(REQUEST_RULE).contested:
        other = _key_decision(weigh(other_catalog), blocked, owner_recognized)
        if other != decision:
            contested = (_contested(catalog.rule(REQUEST_RULE), other),)
    missing_in_key = _union(c.missing_in_key for c in checks)
    missing_in_owner = _union(c.missing_in_owner for c in checks)
    advice = _key_advice(catalog, scopes or frozenset(), missing_in_key, missing_in_owner, access)
    if expired:
        advice = (
            Fix(
                f"the key expired on {expires_at:%Y-%m-%d}: requests with it fail; create a "
                "replacement and delete it",
                "documented",
            ),
            *advice,
        )
    if archived:
        advice = (
            Fix(
                f"{project['name']} is archived: its keys cannot be used; delete the key",
                archived_rule.evidence.level,
            ),
            *advice,
        )
    # The summary names the endpoints weighed; the owner's grant of each recorded scope,
    # or a key weighed as a whole, goes without saying.
    named = [c.target for c in checks if c.target not in (RECORDED_SCOPES, ANY_REQUEST)]
    target = f" to {', '.join(named)}" if named else ""
    summary = {
        ALLOWED: f"requests with key {found['name']}{target} would pass",
        DENIED: f"requests with key {found['name']}{target} would fail",
        UNKNOWN: f"cannot tell whether requests with key {found['name']}{target} pass",
    }[decision]
    owner_permissions = request_permissions(model, catalog, owner_id, project_id)
    return KeyVerdict(
        decision=decision,
        key={
            "id": str(found["id"]),
            "name": _text(found["name"]),
            "project_id": project_id,
            "project": _text(project["name"], project_id),
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
        endpoint=checks[0].target if endpoint is not None else None,
        required=_union(c.required for c in checks),
        missing_in_key=missing_in_key,
        missing_in_owner=missing_in_owner,
        owner_permissions=tuple(sorted(owner_permissions)),
        advice=advice,
        summary=summary,
        checks=checks,
        contested=contested,
    )


# What one check weighs: its label, its requirements (None: unknown), and a note (why
# unknown) or the evidence of the rule.
_Target = tuple[str, tuple[Requirement, ...] | None, str]
RECORDED_SCOPES = "its recorded scopes"  # each must be granted by the owner's roles
ANY_REQUEST = "any request"  # an "All", "Read only" or unknown key, weighed as a whole


def _key_targets(
    catalog: Catalog,
    endpoint: str | None,
    required_scopes: tuple[str, ...] | None,
    scopes: frozenset[str] | None,
    kind: str,
) -> list[_Target]:
    if endpoint is not None:
        return [_endpoint_target(catalog, endpoint)]
    if required_scopes is not None:
        return [("the scopes asked for", tuple((s,) for s in required_scopes), "")]
    if kind != "restricted":
        # An "All" or "Read only" key is meant for nothing in particular: what it may do
        # is its owner's rights, weighed with its owner, not a list of scopes.
        return [(ANY_REQUEST, (), "")]
    held = scopes or frozenset()
    meant = [
        (rule.label, rule.requires, str(rule.evidence))
        for rule in catalog.endpoints_meant_for(held)
    ]
    # Every recorded scope must also be granted by the owner's roles (key-exceeds-owner),
    # whether or not an endpoint shows what the key is for.
    return [*meant, (RECORDED_SCOPES, tuple((s,) for s in sorted(held)), "")]


def _endpoint_target(catalog: Catalog, endpoint: str) -> _Target:
    """An endpoint to weigh; one the catalog does not know, or knows no scopes of, is
    weighed as unknown, with the gap in the evidence named."""
    rule = catalog.endpoint(endpoint)
    if rule is None:
        method, path = split_endpoint(endpoint)
        known = [r.label for r in catalog.endpoints]
        gap = "the catalog has no rule for this endpoint" + _closest(endpoint, known)
        return (f"{method or 'POST'} {path}", None, gap)
    if rule.requires is None:
        ids = ", ".join(rule.evidence.ids)
        return (
            rule.label,
            None,
            f"no public source names the scopes it needs ({EVIDENCE_DOC}: {ids})",
        )
    return (rule.label, rule.requires, str(rule.evidence))


def _endpoint_check(
    target: str,
    needs: tuple[Requirement, ...] | None,
    note: str,
    kind: str,
    scopes: frozenset[str] | None,
    owner_permissions: frozenset[str],
    owner_known: bool,
) -> EndpointCheck:
    if needs is None:
        return EndpointCheck(target, UNKNOWN, (), (), (), note, "unknown")
    # A requirement not met is named by its first (narrowest) scope, which the advice
    # then shows how to grant; ``required`` shows the alternatives.
    holds = _scope_test(kind, scopes)
    in_key = tuple(r[0] for r in needs if kind != "unknown" and not any(map(holds, r)))
    in_owner = tuple(r[0] for r in needs if not any(grants_scope(owner_permissions, s) for s in r))
    if in_key or (in_owner and owner_known):
        decision = DENIED
    elif kind == "unknown" or in_owner:
        decision = UNKNOWN
    else:
        decision = ALLOWED
    required = tuple(requirement_text(r) for r in needs)
    return EndpointCheck(target, decision, required, in_key, in_owner, "", note)


def _key_decision(checks: tuple[EndpointCheck, ...], blocked: bool, owner_recognized: bool) -> str:
    """Denied if the key cannot be used at all or any check fails; unknown if any cannot
    be told (or its owner cannot); else allowed."""
    decisions = {c.decision for c in checks}
    if blocked or DENIED in decisions:
        return DENIED
    if UNKNOWN in decisions or not owner_recognized:
        return UNKNOWN
    return ALLOWED


def _union(parts: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(item for part in parts for item in part))


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
    every ``.read`` scope (help center 8867743; docs/evidence.md#help-8867743), a
    restricted key those recorded."""
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
        # A group's settings are exclusive: what the key held through another setting of
        # the same group (Write, when Read is chosen) would be lost.
        lost = sorted(
            held
            for other in catalog.dashboard
            if other.group == setting.group and other != setting
            for held in other.scopes & scopes
            if held not in setting.scopes
        )
        if lost:
            text += (
                f"; but that setting does not grant {', '.join(lost)}, which the key holds "
                f"now: no one {setting.group} setting grants both, so use a second key for "
                "one of them, or an All key"
            )
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
    return (_contested(rule, ", ".join(extra) + " also"),)


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
        evidence=_weakest(levels) if levels else "unknown to the catalog",
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
        uid, pid = str(found["id"]), str(where["id"])
        complete = bool(level_for(model, uid, pid)["complete"])

        def lacking_under(rules: Catalog) -> tuple[str, ...]:
            held = request_permissions(model, rules, uid, pid)
            return tuple(s for s in scopes if not grants_scope(held, s))

        def verdict(lacking: tuple[str, ...]) -> str:
            return ALLOWED if not lacking else (DENIED if complete else UNKNOWN)

        lacking = lacking_under(catalog)
        decision = verdict(lacking)
        contested: tuple[Contested, ...] = ()
        if catalog.rule(REQUEST_RULE).contested:
            other = verdict(lacking_under(catalog.under_other_reading((REQUEST_RULE,))))
            if other != decision:
                contested = (_contested(catalog.rule(REQUEST_RULE), other),)
        user_check = {
            "user": _text(found["email"], uid),
            "project": _text(where["name"], pid),
            "decision": decision,
            "lacking": list(lacking),
            "contested": [asdict(c) for c in contested],
        }
    return ErrorExplanation(decision, scopes, advice, checks, key_verdict, user_check)


# -- least scopes for endpoints -----------------------------------------------------------


def plan_scopes(catalog: Catalog, endpoints: Iterable[str]) -> ScopesPlan:
    """The least dashboard settings and scopes a key needs for the given endpoints.

    Each requirement is met by its narrowest scope. An endpoint the catalog does not
    know, or knows no scopes of, is listed as unknown rather than refused; a group whose
    settings grant its scopes only one at a time (Read or Write) is named as a conflict.
    """
    rules: list[EndpointRule] = []
    unknown: list[str] = []
    for spec in endpoints:
        label, needs, note = _endpoint_target(catalog, spec)
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


def _weakest(levels: list[str]) -> str:
    order = ("contested", "inferred", "observed", "documented")
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
