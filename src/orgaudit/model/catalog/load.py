"""Reading a catalog file: TOML in, a checked :class:`Catalog` out, or one clear error
naming what is wrong (exit 2)."""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

from orgaudit.errors import ConfigError
from orgaudit.model.catalog.rules import (
    CONTESTED,
    EVIDENCE_LEVELS,
    ORGANIZATION,
    PROJECT,
    Area,
    Catalog,
    DashboardSetting,
    EndpointRule,
    Evidence,
    KeyPermissions,
    KnownValues,
    Preset,
    Reading,
    Requirement,
    Rule,
    ScopeTrap,
    Settled,
)
from orgaudit.store import TABLES


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
        catalog = _parse(data, where)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"the catalog {where} is malformed: {_describe(exc)}") from None
    return replace(catalog, digest=hashlib.sha256(text.encode()).hexdigest())


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
    Settled.of(rules)  # every rule a catalog must hold, each of its type
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
    catalog = Catalog(
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
    Settled.of(catalog.under_other_reading(tuple(rules)).rules)  # the other readings too
    return catalog


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
