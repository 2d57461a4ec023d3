"""What an explanation is made of: the people, projects and keys it names, the bindings
it weighed, the fixes it offers and the verdicts themselves, as frozen values.

``to_dict`` gives the JSON form every ``--json`` prints (``dataclasses.asdict``: the
references become objects with the same fields).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from orgaudit.model.catalog import EVIDENCE_DOC, Catalog, Rule
from orgaudit.model.keys import REQUEST_RULE
from orgaudit.vocabulary import AccessLevel, ScopeKind, Verdict


@dataclass(frozen=True)
class UserRef:
    """A user as the snapshot names them (empty text where the API left a field out)."""

    id: str
    email: str
    name: str
    type: str = "user"  # every json subject says what it is (docs/schemas)

    @property
    def label(self) -> str:
        """How a sentence names the user: their e-mail, else their id."""
        return self.email or self.id


@dataclass(frozen=True)
class ProjectRef:
    """A project as the snapshot names it."""

    id: str
    name: str
    status: str
    type: str = "project"

    @property
    def label(self) -> str:
        """How a sentence names the project: its name, else its id."""
        return self.name or self.id


@dataclass(frozen=True)
class KeyRef:
    """A project API key: where it lives, and whether its owner still has access there."""

    id: str
    name: str
    project_id: str
    project: str
    owner_project_access: str
    type: str = "api_key"


@dataclass(frozen=True)
class OwnerRef:
    """Who owns a key (a user or a service account), and their access to keys there."""

    type: str
    id: str
    name: str
    email: str
    level: AccessLevel


@dataclass(frozen=True)
class ScopeGap:
    """One scope a user's roles in a project lack: why, and what would grant it."""

    scope: str
    why: str
    roles_weighed: tuple[str, ...]  # their roles that count for a key's requests: none grants
    roles_not_counted: tuple[str, ...]  # their roles the request rule leaves out
    granted_under_other_reading: tuple[str, ...]  # of those, the ones that would grant it
    roles_granting: tuple[str, ...]  # the built-in roles whose keys it lets through
    areas_granting: tuple[str, ...]  # the permission areas (a custom role's) that grant it
    fixes: tuple[Fix, ...]


@dataclass(frozen=True)
class UserScopeCheck:
    """A user weighed against the scopes a pasted error names, in one project."""

    user: str
    project: str
    decision: Verdict
    lacking: tuple[str, ...]
    contested: tuple[Contested, ...]
    gaps: tuple[ScopeGap, ...] = ()  # why each lacking scope is lacking, and the fixes


@dataclass(frozen=True)
class Grant:
    """Who granted a binding and when, from the audit log's newest event that made it.

    ``by_in_org`` is whether that user or service account is still in the org (None
    where the event names nobody); ``inferred`` marks a match by principal and place
    only, since role assignment events name no role.
    """

    event: str
    at: str  # YYYY-MM-DD, UTC
    by: str
    by_in_org: bool | None
    inferred: bool


@dataclass(frozen=True)
class WeighedBinding:
    """One binding as the verdict weighed it, and who granted it (None: the audit log
    holds no event that made it, or was not read; ``UserVerdict.grants_logged_since``
    tells which)."""

    source: str
    role: str
    via_group: str | None
    scope: str
    grants: bool
    deciding: bool
    note: str
    evidence: str
    granted: Grant | None = None


@dataclass(frozen=True)
class Fix:
    """One way to change the verdict, and how sure the rule behind it is."""

    action: str
    evidence: str


def unique_fixes(fixes: Iterable[Fix]) -> tuple[Fix, ...]:
    """Each fix once, in order, the first kept: several bindings can call for the same
    change (a viewer directly and through two groups is told three times to become a
    member otherwise)."""
    kept: dict[str, Fix] = {}
    for fix in fixes:
        kept.setdefault(fix.action, fix)
    return tuple(kept.values())


# Evidence levels, weakest first: a conclusion is as sure as the least sure rule it uses.
EVIDENCE_ORDER = ("contested", "inferred", "observed", "documented")


def weakest(levels: Iterable[str]) -> str:
    """The least sure of some evidence levels."""
    return min(levels, key=EVIDENCE_ORDER.index)


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


def contested_notes(catalog: Catalog, names: str, decision_if_other: str) -> tuple[Contested, ...]:
    """The contested notes for comma-separated rule names (empty where there are none)."""
    return tuple(
        contested_under(catalog.rule(name.strip()), decision_if_other)
        for name in names.split(",")
        if name.strip()
    )


def contested_under(rule: Rule, decision_if_other: str) -> Contested:
    """The note for a verdict resting on ``rule``, and what its other reading decides."""
    other = rule.alternative.says if rule.alternative is not None else ""
    ids = ", ".join(rule.evidence.ids)
    return Contested(rule.name, rule.says, other, decision_if_other, f"{EVIDENCE_DOC}: {ids}")


def contested_request_rule(
    catalog: Catalog, decide: Callable[[Catalog], Verdict], decision: Verdict
) -> tuple[Contested, ...]:
    """The note for a verdict on a key's requests where the request rule is contested and
    its other reading (``decide`` under it) answers otherwise; empty where it agrees."""
    rule = catalog.rule(REQUEST_RULE)
    if not rule.contested:
        return ()
    other = decide(catalog.under_other_reading((REQUEST_RULE,)))
    return () if other == decision else (contested_under(rule, other),)


@dataclass(frozen=True)
class UserVerdict:
    """Whether a user may create keys in a project, and why."""

    decision: Verdict
    permission: str
    level: AccessLevel
    user: UserRef
    project: ProjectRef
    bindings: tuple[WeighedBinding, ...]
    fixes: tuple[Fix, ...]
    missing_sources: tuple[str, ...]
    summary: str
    contested: tuple[Contested, ...] = ()
    # Whether the user holds a role in the project (directly or through a group), not
    # only their org role: where a verdict is worth reading in detail.
    in_project: bool = False
    archived: bool = False  # the project is archived: no keys there, whatever the roles
    # Since when the audit log's access changes were read (YYYY-MM-DD); None: not read,
    # so who granted what cannot be told.
    grants_logged_since: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``decision``, ``permission``, ``bindings``, ``fixes``, ...)."""
        return asdict(self)


@dataclass(frozen=True)
class EndpointCheck:
    """One endpoint (or set of scopes) weighed against a key and its owner."""

    target: str
    decision: Verdict
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

    decision: Verdict
    key: KeyRef
    owner: OwnerRef
    scopes: tuple[str, ...] | None
    scopes_kind: ScopeKind
    scopes_note: str
    endpoint: str | None
    required: tuple[str, ...]
    missing_in_key: tuple[str, ...]
    missing_in_owner: tuple[str, ...]
    owner_permissions: tuple[str, ...]
    fixes: tuple[Fix, ...]  # named as explain user's are: every form reads alike
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

    decision: Verdict | None
    scopes: tuple[str, ...]
    scope_sources: tuple[ScopeAdvice, ...]  # where each scope comes from
    checks: tuple[str, ...]
    key: KeyVerdict | None
    user: UserScopeCheck | None

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

    @property
    def decision(self) -> Verdict:
        """Whether one restricted key can be given what the endpoints need: allowed;
        denied where a group of settings would have to be set two ways at once; unknown
        where no public source names an endpoint's scopes."""
        if self.conflicts:
            return Verdict.DENIED
        return Verdict.UNKNOWN if self.unknown or not self.endpoints else Verdict.ALLOWED

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, ``decision`` first as in every explain form."""
        return {"decision": self.decision, **asdict(self)}
