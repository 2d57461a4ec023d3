"""The catalog's vocabulary: evidence, areas, presets, dashboard settings, endpoint rules,
scope traps, rules and their readings, known values, and the :class:`Catalog` itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from functools import cached_property
from typing import Any

# documented: official docs or the published OpenAPI document say so; observed: real API
# behaviour (errors, third-party code that called the API); inferred: our reading where
# no source is clear; contested: sources read two ways (the rule names the other reading).
EVIDENCE_LEVELS = ("documented", "observed", "inferred", "contested")
CONTESTED = "contested"
EVIDENCE_DOC = "docs/evidence.md"
ORGANIZATION, PROJECT = "organization", "project"


@dataclass(frozen=True)
class Evidence:
    """How sure an entry is, where it comes from, and its sections of docs/evidence.md."""

    level: str
    source: str
    ids: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f" ({EVIDENCE_DOC}: {', '.join(self.ids)})" if self.ids else ""
        return f"{self.level}: {self.source}{where}"


@dataclass(frozen=True)
class Area:
    """A permission area of the RBAC table and the strings each of its levels grants."""

    id: str
    name: str
    levels: tuple[tuple[str, frozenset[str]], ...]
    evidence: Evidence

    def permissions(self, level: str) -> frozenset[str]:
        """Strings granted at ``level``: its own and those of every lower level."""
        granted: set[str] = set()
        for name, strings in self.levels:
            granted |= strings
            if name == level:
                return frozenset(granted)
        raise KeyError(level)


@dataclass(frozen=True)
class Preset:
    """A built-in role (org owner, project viewer, ...) and the permissions it grants."""

    id: str
    resource: str
    name: str
    label: str
    grants: Mapping[str, str]
    permissions: frozenset[str]
    evidence: Evidence


@dataclass(frozen=True)
class DashboardSetting:
    """One setting of a restricted key in the dashboard and the scopes it grants."""

    group: str
    setting: str
    scopes: frozenset[str]
    evidence: Evidence

    @property
    def label(self) -> str:
        """How the dashboard names it: "*Model capabilities*: *Request*"."""
        return f"{self.group}: {self.setting}"


# One scope a request needs, as the alternatives that satisfy it, preferred first: a key
# with model.request passes where the narrower api.model.audio.request is asked for.
Requirement = tuple[str, ...]


def requirement_text(requirement: Requirement) -> str:
    """``a`` or ``a (or b)``."""
    first, *others = requirement
    return first + (f" (or {', '.join(others)})" if others else "")


@dataclass(frozen=True)
class EndpointRule:
    """The scopes a request to an endpoint needs; ``None`` where no source says."""

    method: str
    path: str
    requires: tuple[Requirement, ...] | None
    evidence: Evidence
    # Scopes whose presence on a key shows it is meant for this endpoint: ``meant_by`` in
    # the catalog, else the scopes its requirements name that no other path's do (an
    # umbrella such as model.request, which many endpoints take, shows nothing).
    meant_by: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        """``METHOD /path``."""
        return f"{self.method} {self.path}"

    @property
    def scopes(self) -> frozenset[str]:
        """Every scope any requirement names (empty where the needs are unknown)."""
        return frozenset(s for requirement in self.requires or () for s in requirement)


@dataclass(frozen=True)
class ScopeTrap:
    """Scopes that are useless without an umbrella scope only one setting grants."""

    id: str
    umbrella: str
    setting: str
    triggers: frozenset[str]
    advice: str
    evidence: Evidence

    def springs(self, scopes: frozenset[str]) -> bool:
        """Whether a restricted key with these scopes falls into the trap."""
        return bool(scopes & self.triggers) and self.umbrella not in scopes


@dataclass(frozen=True)
class Reading:
    """The other reading of a contested rule: its value, in words, and its sources."""

    value: Any
    says: str


@dataclass(frozen=True)
class Rule:
    """A rule the sources leave open, settled as a labelled default.

    A ``contested`` rule also names the reading it follows (``says``) and the other one
    (``alternative``), so a verdict that rests on it can say what the other would answer.
    """

    name: str
    value: Any
    evidence: Evidence
    says: str = ""
    alternative: Reading | None = None

    @property
    def contested(self) -> bool:
        """Whether the sources read this rule two ways."""
        return self.alternative is not None


@dataclass(frozen=True)
class Settled:
    """The rules' values, typed: what the analysis reads (``catalog.settled.<rule>``).

    One field per rule a catalog must hold; a catalog whose rule has a value of the
    wrong type is refused when it is loaded.
    """

    org_roles_apply_in_every_project: bool
    # Presets whose rights on keys come from a project role (their ids).
    key_rights_need_project_role: frozenset[str]
    # Org presets (and "org_custom_roles") whose rights count for a key's requests.
    request_rights_need_project_role: frozenset[str]
    service_accounts_create_keys: bool
    predefined_permissions_from_catalog: bool
    archived_projects_allow_no_keys: bool
    # Recorded scope lists that make a key an "All" key.
    unrestricted_key_scopes: frozenset[frozenset[str]]
    read_only_key_scope: str

    @classmethod
    def of(cls, rules: Mapping[str, Rule]) -> Settled:
        """The typed values of ``rules``; ValueError naming a rule missing or mistyped."""
        missing = [f.name for f in fields(cls) if f.name not in rules]
        if missing:
            raise ValueError(f"rules missing: {', '.join(missing)}")
        values = {f.name: _typed(f.name, str(f.type), rules[f.name].value) for f in fields(cls)}
        return cls(**values)


def _typed(name: str, kind: str, value: Any) -> Any:
    """A rule's value as the type its field names; ValueError if it is not that."""

    def strings(items: Any) -> frozenset[str]:
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValueError(f"rule {name}: value must be a list of strings")
        return frozenset(items)

    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "str" and isinstance(value, str):
        return value
    if kind == "frozenset[str]":
        return strings(value)
    if kind == "frozenset[frozenset[str]]" and isinstance(value, list):
        return frozenset(strings(item) for item in value)
    raise ValueError(f"rule {name}: value must be {kind.replace('frozenset', 'a list of')}")


@dataclass(frozen=True)
class KnownValues:
    """The values a coded field (``table.column`` of the snapshot) may take."""

    table: str
    column: str
    values: frozenset[str]
    evidence: Evidence

    @property
    def field(self) -> str:
        """``table.column``."""
        return f"{self.table}.{self.column}"


@dataclass(frozen=True)
class KeyPermissions:
    """The permission strings that decide who may read, create and manage keys."""

    create_own: str
    read: str
    manage_all: str
    evidence: Evidence


@dataclass(frozen=True)
class Catalog:
    """The whole catalog, validated."""

    version: str
    path: str
    keys: KeyPermissions
    rules: Mapping[str, Rule]
    areas: Mapping[str, Area]
    presets: Mapping[str, Preset]
    dashboard: tuple[DashboardSetting, ...]
    endpoints: tuple[EndpointRule, ...]
    traps: tuple[ScopeTrap, ...]
    known_values: tuple[KnownValues, ...] = ()
    # SHA-256 of the catalog file's text: two catalogs with one version string may differ.
    digest: str = ""

    def known_scope(self, scope: str) -> bool:
        """Whether any area or dashboard setting of the catalog names this scope."""
        return any(scope in s.scopes for s in self.dashboard) or any(
            scope in strings for area in self.areas.values() for _, strings in area.levels
        )

    def known_values_of(self, field: str) -> frozenset[str]:
        """The values ``table.column`` may take (empty when the catalog lists none)."""
        for known in self.known_values:
            if known.field == field:
                return known.values
        return frozenset()

    def rule(self, name: str) -> Rule:
        """A rule by name, with its evidence and readings; a catalog without it is
        refused at load time."""
        return self.rules[name]

    @cached_property
    def settled(self) -> Settled:
        """The rules' values, typed (checked when the catalog was loaded)."""
        return Settled.of(self.rules)

    def contested_rules(self, names: tuple[str, ...]) -> tuple[Rule, ...]:
        """Those of the named rules that are contested."""
        return tuple(self.rules[name] for name in names if self.rules[name].contested)

    def under_other_reading(self, names: tuple[str, ...]) -> Catalog:
        """This catalog with each named contested rule set to its other reading."""
        flipped = {
            rule.name: Rule(rule.name, rule.alternative.value, rule.evidence)
            for rule in self.contested_rules(names)
            if rule.alternative is not None
        }
        return replace(self, rules={**self.rules, **flipped})

    def preset_for(self, resource: str, name: str) -> Preset | None:
        """The built-in role defined at ``resource`` (organization/project) with ``name``."""
        for preset in self.presets.values():
            if preset.resource == resource and preset.name == name:
                return preset
        return None

    def endpoint(self, spec: str) -> EndpointRule | None:
        """The rule for ``"[METHOD] /v1/path"``: the longest matching path prefix.

        Without a method, POST is preferred where the endpoint has one (the request that
        does the work), else GET.
        """
        method, path = split_endpoint(spec)
        candidates = [
            rule
            for rule in self.endpoints
            if path == rule.path or path.startswith(rule.path.rstrip("/") + "/")
        ]
        if method:
            candidates = [rule for rule in candidates if rule.method == method.upper()]
        if not candidates:
            return None
        longest = max(len(rule.path) for rule in candidates)
        best = [rule for rule in candidates if len(rule.path) == longest]
        return next((rule for rule in best if rule.method == "POST"), best[0])

    def endpoints_meant_for(self, scopes: frozenset[str]) -> tuple[EndpointRule, ...]:
        """The endpoints a restricted key with these scopes is evidently meant for."""
        return tuple(rule for rule in self.endpoints if rule.meant_by & scopes)

    def settings_granting(self, scope: str) -> tuple[DashboardSetting, ...]:
        """The dashboard settings whose scopes include ``scope``, narrowest first."""
        matches = [setting for setting in self.dashboard if scope in setting.scopes]
        return tuple(sorted(matches, key=lambda s: len(s.scopes)))

    def areas_granting(self, permission: str) -> tuple[tuple[Area, str], ...]:
        """The (area, lowest level) pairs whose level grants ``permission``."""
        found = []
        for area in self.areas.values():
            for level, _strings in area.levels:
                if permission in area.permissions(level):
                    found.append((area, level))
                    break
        return tuple(found)


def split_endpoint(spec: str) -> tuple[str, str]:
    """``"[METHOD] path"`` as an upper-case method (empty if none) and a ``/v1/...`` path."""
    method, _, path = spec.strip().rpartition(" ")
    path = "/" + path.strip().lstrip("/")
    if not path.startswith("/v1/"):
        path = "/v1" + path
    return method.strip().upper(), path
