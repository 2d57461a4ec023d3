"""Where each stored column's value sits in the API's JSON: the getters the schema's
columns read items with. Knowledge of the API's shapes, kept beside the schema that uses
it (the request plan, ``orgaudit.collect.sources``, says where the items come from)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from orgaudit.collect.records import Scope

Getter = Callable[[Scope, dict[str, Any]], object]


def _walk(item: dict[str, Any], path: tuple[str, ...]) -> object:
    """A nested field of an API object (None where any step is missing)."""
    value: object = item
    for step in path:
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value


def at(*path: str) -> Getter:
    """A getter for a nested field of the API object (None where any step is missing)."""

    def get(_scope: Scope, item: dict[str, Any]) -> object:
        return _walk(item, path)

    return get


def first_of(*getters: Getter) -> Getter:
    """The first getter that finds a value."""

    def get(scope: Scope, item: dict[str, Any]) -> object:
        for getter in getters:
            value = getter(scope, item)
            if value is not None:
                return value
        return None

    return get


def json_at(*path: str) -> Getter:
    """A nested field kept as JSON text (lists of permissions or scopes)."""

    def get(_scope: Scope, item: dict[str, Any]) -> object:
        value = _walk(item, path)
        return None if value is None else json.dumps(value, ensure_ascii=False)

    return get


def scope_value(name: str) -> Getter:
    def get(scope: Scope, _item: dict[str, Any]) -> object:
        return getattr(scope, name)

    return get


def key_owner(name: str) -> Getter:
    """A field of a key's owner, which sits under ``owner.user`` or ``owner.service_account``."""

    def get(scope: Scope, item: dict[str, Any]) -> object:
        owner = item.get("owner")
        if not isinstance(owner, dict):
            return None
        kind = owner.get("type")
        nested = owner.get(kind) if isinstance(kind, str) else None
        return nested.get(name) if isinstance(nested, dict) else owner.get(name)

    return get


def event_payload(_scope: Scope, item: dict[str, Any]) -> dict[str, Any]:
    # The payload sits under a key named exactly like the event type (the OpenAPI
    # document's AuditLog).
    payload = item.get(str(item.get("type")))
    return payload if isinstance(payload, dict) else {}


def event_key_id(scope: Scope, item: dict[str, Any]) -> object:
    return event_payload(scope, item).get("id")


def event_scopes(scope: Scope, item: dict[str, Any]) -> object:
    # api_key.updated documents changes_requested.scopes, but the spec's own example uses
    # data.scopes; read both (docs/evidence.md#openapi-spec).
    payload = event_payload(scope, item)
    for holder in ("data", "changes_requested"):
        part = payload.get(holder)
        if isinstance(part, dict) and "scopes" in part:
            scopes = part["scopes"]
            if isinstance(scopes, list) and all(isinstance(s, str) for s in scopes):
                return json.dumps(scopes, ensure_ascii=False)
            return None  # not a list of scope strings: unreadable, so unknown, not guessed
    return None


def principal_type(scope: Scope, _item: dict[str, Any]) -> object:
    return "group" if scope.group_id is not None else "user"


def principal_id(scope: Scope, _item: dict[str, Any]) -> object:
    return scope.group_id if scope.group_id is not None else scope.user_id


def resource_type(scope: Scope, _item: dict[str, Any]) -> object:
    return "project" if scope.project_id is not None else "organization"
