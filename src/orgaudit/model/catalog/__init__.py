"""The permission catalog: what roles grant and what keys need, as labelled data.

The catalog is a TOML file shipped in the package (``default.toml``) and replaceable
with ``--catalog FILE``. Code never branches on a role or a scope name; it asks the
catalog. Every entry carries its :class:`Evidence`, which findings and explanations show.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from orgaudit.errors import ConfigError
from orgaudit.store import TABLES

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
        """A rule by name; a catalog without it is refused at load time."""
        return self.rules[name]

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


REQUIRED_RULES = (
    "org_roles_apply_in_every_project",
    "key_rights_need_project_role",
    "request_rights_need_project_role",
    "service_accounts_create_keys",
    "predefined_permissions_from_catalog",
    "archived_projects_allow_no_keys",
    "unrestricted_key_scopes",
    "read_only_key_scope",
)


def split_endpoint(spec: str) -> tuple[str, str]:
    """``"[METHOD] path"`` as an upper-case method (empty if none) and a ``/v1/...`` path."""
    method, _, path = spec.strip().rpartition(" ")
    path = "/" + path.strip().lstrip("/")
    if not path.startswith("/v1/"):
        path = "/v1" + path
    return method.strip().upper(), path


def load_catalog(path: Path | None = None) -> Catalog:
    """The shipped catalog, or the one at ``path``; a clear error if it is malformed."""
    if path is None:
        text = resources.files(__package__).joinpath("default.toml").read_text(encoding="utf-8")
        where = "default.toml (shipped)"
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the catalog {path}: {exc}") from None
        where = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the catalog {where} is not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per level of nesting
        raise ConfigError(f"the catalog {where} is nested too deeply to be a catalog") from None
    try:
        return _parse(data, where)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"the catalog {where} is malformed: {_describe(exc)}") from None


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing {exc.args[0]!r}"
    return str(exc)


def _evidence(entry: Mapping[str, Any], what: str) -> Evidence:
    level = entry["evidence"]
    if level not in EVIDENCE_LEVELS:
        raise ValueError(f"{what}: evidence must be one of {', '.join(EVIDENCE_LEVELS)}")
    source = entry["source"]
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"{what}: every entry needs a source")
    ids = entry.get("evidence_ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise ValueError(f"{what}: evidence_ids must be a list of section ids")
    return Evidence(level, " ".join(source.split()), tuple(ids))


def _rule(name: str, entry: Mapping[str, Any]) -> Rule:
    """A rule; a contested one must name its reading and the other, and only it may."""
    what = f"rule {name}"
    evidence = _evidence(entry, what)
    other = entry.get("alternative")
    if (evidence.level == CONTESTED) != (other is not None):
        raise ValueError(f"{what}: a contested rule, and only one, names an [alternative]")
    if other is None:
        return Rule(name, entry["value"], evidence)
    if not isinstance(other, Mapping) or type(other["value"]) is not type(entry["value"]):
        raise ValueError(f"{what}: alternative needs a value of the rule's own type")
    says = " ".join(str(entry["says"]).split())
    return Rule(
        name,
        entry["value"],
        evidence,
        says,
        Reading(other["value"], " ".join(str(other["says"]).split())),
    )


def _requirements(value: Any, what: str) -> tuple[Requirement, ...] | None:
    """An endpoint's ``requires``: scopes, each a string or a list of alternatives; or
    ``"unknown"`` where no source names them."""
    if value == "unknown":
        return None
    if not isinstance(value, list):
        raise ValueError(f'{what}: requires must be a list or "unknown"')
    requirements = []
    for item in value:
        options = [item] if isinstance(item, str) else item
        if (
            not options
            or not isinstance(options, list)
            or not all(isinstance(o, str) and o for o in options)
        ):
            raise ValueError(f"{what}: each requirement is a scope or a list of scopes")
        requirements.append(tuple(options))
    return tuple(sorted(requirements))


def _strings(value: Any, what: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what}: expected a list of strings")
    return frozenset(value)


def _parse(data: Mapping[str, Any], where: str) -> Catalog:
    keys_entry = data["keys"]
    keys = KeyPermissions(
        keys_entry["create_own"],
        keys_entry["read"],
        keys_entry["manage_all"],
        _evidence(keys_entry, "keys"),
    )
    rules = {name: _rule(name, entry) for name, entry in data["rules"].items()}
    missing = [name for name in REQUIRED_RULES if name not in rules]
    if missing:
        raise ValueError(f"rules missing: {', '.join(missing)}")
    areas: dict[str, Area] = {}
    for entry in data["areas"]:
        what = f"area {entry.get('id')}"
        levels = tuple((str(level), _strings(strings, what)) for level, strings in entry["levels"])
        areas[entry["id"]] = Area(entry["id"], entry["name"], levels, _evidence(entry, what))
    presets: dict[str, Preset] = {}
    for preset_id, entry in data["presets"].items():
        what = f"preset {preset_id}"
        if entry["resource"] not in (ORGANIZATION, PROJECT):
            raise ValueError(f"{what}: resource must be organization or project")
        permissions: set[str] = set()
        for area_id, level in entry["grants"].items():
            if area_id not in areas:
                raise ValueError(f"{what}: unknown area {area_id!r}")
            try:
                permissions |= areas[area_id].permissions(level)
            except KeyError:
                raise ValueError(f"{what}: area {area_id} has no level {level!r}") from None
        presets[preset_id] = Preset(
            preset_id,
            entry["resource"],
            entry["name"],
            entry["label"],
            dict(entry["grants"]),
            frozenset(permissions),
            _evidence(entry, what),
        )
    dashboard = tuple(
        DashboardSetting(
            entry["group"],
            entry["setting"],
            _strings(entry["scopes"], f"dashboard {entry.get('group')}"),
            _evidence(entry, f"dashboard {entry.get('group')}"),
        )
        for entry in data["dashboard"]
    )
    endpoints = _endpoints(data["endpoints"])
    traps = tuple(
        ScopeTrap(
            entry["id"],
            entry["umbrella"],
            entry["setting"],
            _strings(entry["triggers"], f"trap {entry.get('id')}"),
            " ".join(str(entry["advice"]).split()),
            _evidence(entry, f"trap {entry.get('id')}"),
        )
        for entry in data.get("traps", [])
    )
    known_values = tuple(_known_values(entry) for entry in data.get("known_values", []))
    return Catalog(
        str(data["version"]),
        where,
        keys,
        rules,
        areas,
        presets,
        dashboard,
        endpoints,
        traps,
        known_values,
    )


def _endpoints(entries: list[Mapping[str, Any]]) -> tuple[EndpointRule, ...]:
    rules = [
        EndpointRule(
            str(entry["method"]).upper(),
            entry["path"],
            _requirements(entry["requires"], f"endpoint {entry.get('path')}"),
            _evidence(entry, f"endpoint {entry.get('path')}"),
        )
        for entry in entries
    ]
    paths_taking: dict[str, set[str]] = {}
    for rule in rules:
        for scope in rule.scopes:
            paths_taking.setdefault(scope, set()).add(rule.path)
    return tuple(
        replace(
            rule,
            meant_by=_strings(entry["meant_by"], f"endpoint {rule.path}")
            if "meant_by" in entry
            else frozenset(s for s in rule.scopes if paths_taking[s] == {rule.path}),
        )
        for rule, entry in zip(rules, entries, strict=True)
    )


def _known_values(entry: Mapping[str, Any]) -> KnownValues:
    what = f"known_values {entry.get('field')}"
    table, dot, column = str(entry["field"]).partition(".")
    if not dot or not table or not column:
        raise ValueError(f"{what}: field must be written table.column")
    if column not in {c.name for c in TABLES.get(table, ())}:
        raise ValueError(f"{what}: the snapshot has no such table and column")
    return KnownValues(table, column, _strings(entry["values"], what), _evidence(entry, what))
