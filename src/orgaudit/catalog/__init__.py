"""The permission catalog: what roles grant and what keys need, as labelled data.

The catalog is a TOML file shipped in the package (``default.toml``) and replaceable
with ``--catalog FILE``. Code never branches on a role or a scope name; it asks the
catalog. Every entry carries its :class:`Evidence`, which findings and explanations show.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from orgaudit.errors import ConfigError
from orgaudit.store import TABLES

EVIDENCE_LEVELS = ("documented", "observed", "inferred")
ORGANIZATION, PROJECT = "organization", "project"


@dataclass(frozen=True)
class Evidence:
    """How sure an entry is, and where it comes from."""

    level: str
    source: str

    def __str__(self) -> str:
        return f"{self.level}: {self.source}"


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


@dataclass(frozen=True)
class EndpointRule:
    """The scopes a request to an endpoint needs."""

    method: str
    path: str
    requires: tuple[str, ...]
    evidence: Evidence

    @property
    def label(self) -> str:
        """``METHOD /path``."""
        return f"{self.method} {self.path}"


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
class Rule:
    """A rule the sources leave open, settled as a labelled default."""

    name: str
    value: Any
    evidence: Evidence


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
        method, _, path = spec.strip().rpartition(" ")
        path = "/" + path.strip().lstrip("/")
        if not path.startswith("/v1/"):
            path = "/v1" + path
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
    return Evidence(level, " ".join(source.split()))


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
    rules = {
        name: Rule(name, entry["value"], _evidence(entry, f"rule {name}"))
        for name, entry in data["rules"].items()
    }
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
    endpoints = tuple(
        EndpointRule(
            str(entry["method"]).upper(),
            entry["path"],
            tuple(sorted(_strings(entry["requires"], f"endpoint {entry.get('path')}"))),
            _evidence(entry, f"endpoint {entry.get('path')}"),
        )
        for entry in data["endpoints"]
    )
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


def _known_values(entry: Mapping[str, Any]) -> KnownValues:
    what = f"known_values {entry.get('field')}"
    table, dot, column = str(entry["field"]).partition(".")
    if not dot or not table or not column:
        raise ValueError(f"{what}: field must be written table.column")
    if column not in {c.name for c in TABLES.get(table, ())}:
        raise ValueError(f"{what}: the snapshot has no such table and column")
    return KnownValues(table, column, _strings(entry["values"], what), _evidence(entry, what))
