"""Whether a key's requests would pass, and why: its recorded scopes, its owner's roles in
the key's project, the endpoints weighed, and what to change on the key or its owner.

A key cannot do more than its owner (help center 8867743; docs/evidence.md#help-8867743);
a key whose scopes are not recorded, or whose owner's rights cannot be told, gets an
``unknown`` verdict, never a pass.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from orgaudit.explain.lookup import FoundKey, closest, find_key, find_project
from orgaudit.explain.records import (
    EndpointCheck,
    Fix,
    KeyRef,
    KeyVerdict,
    OwnerRef,
    contested_request_rule,
    unique_fixes,
)
from orgaudit.model.access import AccessModel, level_for
from orgaudit.model.catalog import (
    EVIDENCE_DOC,
    Catalog,
    DashboardSetting,
    Requirement,
    requirement_text,
    split_endpoint,
)
from orgaudit.model.keys import (
    grants_scope,
    recorded_key_scopes,
    request_permissions,
    scope_kind,
    scopes_unknown_reasons,
)
from orgaudit.store.snapshot import Snapshot
from orgaudit.vocabulary import AccessLevel, ScopeKind, Verdict


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
    project = find_project(snapshot, found.project_id)
    owner_id, owner_type = found.owner_id, found.owner_type
    owner_row = level_for(model, owner_id, project.id)
    # An owner the snapshot cannot name, or of a type the catalog does not know (when it
    # lists the types at all), has rights nobody can tell: its key's requests are
    # unknown, never passed nor denied on its account (the key's own scopes can still
    # deny them).
    owner_types = catalog.known_values_of("project_api_keys.owner_type")
    owner_recognized = bool(owner_id) and (not owner_types or owner_type in owner_types)
    owner_known = bool(owner_row["complete"]) and owner_recognized
    scopes, kind, note = _key_scopes(snapshot, catalog, found)
    targets = _key_targets(catalog, endpoint, required_scopes, scopes, kind)
    access = found.owner_project_access
    # The access model settled which projects allow no keys (archived_projects_allow_no_keys).
    archived = project.id in model.archived_projects
    expires_at = found.expires_at
    expired = expires_at is not None and expires_at < snapshot.as_of
    blocked = archived or access != "active" or expired

    def weigh(rules_catalog: Catalog) -> tuple[EndpointCheck, ...]:
        owner_permissions = request_permissions(model, rules_catalog, owner_id, project.id)
        return tuple(
            _endpoint_check(
                target, needs, note_or_evidence, kind, scopes, owner_permissions, owner_known
            )
            for target, needs, note_or_evidence in targets
        )

    checks = weigh(catalog)
    decision = _key_decision(checks, blocked, owner_recognized)
    contested = contested_request_rule(
        catalog, lambda other: _key_decision(weigh(other), blocked, owner_recognized), decision
    )
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
                f"{project.label} is archived: its keys cannot be used; delete the key",
                catalog.rule("archived_projects_allow_no_keys").evidence.level,
            ),
            *advice,
        )
    advice = unique_fixes(advice)
    # The summary names the endpoints weighed; the owner's grant of each recorded scope,
    # or a key weighed as a whole, goes without saying.
    named = [c.target for c in checks if c.target not in (RECORDED_SCOPES, ANY_REQUEST)]
    target = f" to {', '.join(named)}" if named else ""
    named_key = found.name or found.id
    summary = {
        Verdict.ALLOWED: f"requests with key {named_key}{target} would pass",
        Verdict.DENIED: f"requests with key {named_key}{target} would fail",
        Verdict.UNKNOWN: f"cannot tell whether requests with key {named_key}{target} pass",
    }[decision]
    owner_permissions = request_permissions(model, catalog, owner_id, project.id)
    return KeyVerdict(
        decision=decision,
        key=KeyRef(found.id, found.name, project.id, project.label, access),
        owner=OwnerRef(
            owner_type,
            owner_id,
            found.owner_name,
            found.owner_email,
            AccessLevel(owner_row["level"]),
        ),
        scopes=None if scopes is None else tuple(sorted(scopes)),
        scopes_kind=kind,
        scopes_note=note,
        endpoint=checks[0].target if endpoint is not None else None,
        required=_union(c.required for c in checks),
        missing_in_key=missing_in_key,
        missing_in_owner=missing_in_owner,
        owner_permissions=tuple(sorted(owner_permissions)),
        fixes=advice,
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
    kind: ScopeKind,
) -> list[_Target]:
    if endpoint is not None:
        return [endpoint_target(catalog, endpoint)]
    if required_scopes is not None:
        return [("the scopes asked for", tuple((s,) for s in required_scopes), "")]
    if kind != ScopeKind.RESTRICTED:
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


def endpoint_target(catalog: Catalog, endpoint: str) -> _Target:
    """An endpoint to weigh; one the catalog does not know, or knows no scopes of, is
    weighed as unknown, with the gap in the evidence named."""
    rule = catalog.endpoint(endpoint)
    if rule is None:
        method, path = split_endpoint(endpoint)
        known = [r.label for r in catalog.endpoints]
        gap = "the catalog has no rule for this endpoint" + closest(endpoint, known)
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
    kind: ScopeKind,
    scopes: frozenset[str] | None,
    owner_permissions: frozenset[str],
    owner_known: bool,
) -> EndpointCheck:
    if needs is None:
        return EndpointCheck(target, Verdict.UNKNOWN, (), (), (), note, "unknown")
    # A requirement not met is named by its first (narrowest) scope, which the advice
    # then shows how to grant; ``required`` shows the alternatives.
    holds = _scope_test(kind, scopes)
    in_key = tuple(r[0] for r in needs if kind != ScopeKind.UNKNOWN and not any(map(holds, r)))
    in_owner = tuple(r[0] for r in needs if not any(grants_scope(owner_permissions, s) for s in r))
    if in_key or (in_owner and owner_known):
        decision = Verdict.DENIED
    elif kind == ScopeKind.UNKNOWN or in_owner:
        decision = Verdict.UNKNOWN
    else:
        decision = Verdict.ALLOWED
    required = tuple(requirement_text(r) for r in needs)
    return EndpointCheck(target, decision, required, in_key, in_owner, "", note)


def _key_decision(
    checks: tuple[EndpointCheck, ...], blocked: bool, owner_recognized: bool
) -> Verdict:
    """Denied if the key cannot be used at all or any check fails; unknown if any cannot
    be told (or its owner cannot); else allowed."""
    decisions = {c.decision for c in checks}
    if blocked or Verdict.DENIED in decisions:
        return Verdict.DENIED
    if Verdict.UNKNOWN in decisions or not owner_recognized:
        return Verdict.UNKNOWN
    return Verdict.ALLOWED


def _union(parts: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(item for part in parts for item in part))


def _key_scopes(
    snapshot: Snapshot, catalog: Catalog, key: FoundKey
) -> tuple[frozenset[str] | None, ScopeKind, str]:
    """The key's recorded scopes, what kind of key that makes it, and a note why."""
    recorded = recorded_key_scopes(snapshot)
    mine = recorded[recorded["key_id"] == key.id]
    if mine.empty:
        if snapshot.source_status("audit_key_events") == "unavailable":
            why = "the audit log could not be read in this snapshot"
        else:
            before = key.created_at is not None and key.created_at < snapshot.audit_since
            why = scopes_unknown_reasons(snapshot)[before]
        return None, ScopeKind.UNKNOWN, why
    scopes_set = frozenset(str(s) for s in json.loads(str(mine.iloc[0]["scopes"])))
    kind = scope_kind(scopes_set, catalog)
    if kind == ScopeKind.UNRESTRICTED:
        level = catalog.rule("unrestricted_key_scopes").evidence.level
        return scopes_set, kind, f"an 'All' key ({level})"
    if kind == ScopeKind.READ_ONLY:
        level = catalog.rule("read_only_key_scope").evidence.level
        return scopes_set, kind, f"a 'Read only' key ({level})"
    recorded_at = mine.iloc[0]["recorded_at"]
    return scopes_set, ScopeKind.RESTRICTED, f"recorded on {recorded_at:%Y-%m-%d}"


def _scope_test(kind: ScopeKind, scopes: frozenset[str] | None) -> Callable[[str], bool]:
    """Whether the key holds a scope: an "All" key holds every one, a "Read only" key
    every ``.read`` scope (help center 8867743; docs/evidence.md#help-8867743), a
    restricted key those recorded."""
    if kind == ScopeKind.UNRESTRICTED:
        return lambda scope: True
    if kind == ScopeKind.READ_ONLY:
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
