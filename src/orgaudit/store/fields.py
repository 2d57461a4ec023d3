"""Where each stored column's value sits in the API's JSON: the getters the schema's
columns read items with. Knowledge of the API's shapes, kept beside the schema that uses
it (the request plan, ``orgaudit.collect.sources``, says where the items come from)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orgaudit.collect.records import Scope

Getter = Callable[[Scope, dict[str, Any]], object]

TEXT, INT, REAL = "TEXT", "INTEGER", "REAL"


@dataclass(frozen=True)
class Column:
    """One column of an entity table and how it is read off an API object.

    ``since`` is the schema version that added the column: the first version's tables
    are created with the columns of version 1 only, and each later column arrives by the
    migration of its own version, so a shipped migration never changes.
    """

    name: str
    sql_type: str
    get: Getter
    since: int = 1


def columns_of(*spec: tuple[str, str, Getter] | tuple[str, str, Getter, int]) -> tuple[Column, ...]:
    return tuple(Column(*entry) for entry in spec)


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


def usage_kind(_scope: Scope, item: dict[str, Any]) -> object:
    """What a usage result counts, from its ``object``:
    ``organization.usage.completions.result`` -> ``completions``."""
    kind = item.get("object")
    if not isinstance(kind, str):
        return kind
    return kind.removeprefix("organization.usage.").removesuffix(".result")


# Tool usage (web and file search calls, code interpreter sessions, vector storage) is
# counted as tool calls, not requests: web search results also carry num_model_requests
# (the OpenAPI document's UsageWebSearchCallsResult), which orgaudit takes to be model
# requests the completions list already counts (inferred: no source says either way), so
# a request is never counted twice.
_TOOL_KINDS = ("web_searches", "file_searches", "code_interpreter_sessions", "vector_stores")


def usage_requests(scope: Scope, item: dict[str, Any]) -> object:
    """Model requests a usage result counts (``num_model_requests``; openai/openai-openapi
    openapi.json, the Usage*Result schemas); None for tool usage."""
    if usage_kind(scope, item) in _TOOL_KINDS:
        return None
    return item.get("num_model_requests")


def usage_tool_calls(_scope: Scope, item: dict[str, Any]) -> object:
    """Tool calls or sessions a tool usage result counts (``num_requests``,
    ``num_sessions``); None for model usage."""
    return first_of(at("num_requests"), at("num_sessions"))(_scope, item)


def event_field(*path: str) -> Getter:
    """A field of an audit-log event's payload (under the key named like its type)."""

    def get(scope: Scope, item: dict[str, Any]) -> object:
        return _walk(event_payload(scope, item), path)

    return get


def event_role(scope: Scope, item: dict[str, Any]) -> object:
    """The role an event gives: ``data.role`` when made, ``changes_requested.role`` when
    changed (user, invite and service-account events)."""
    return first_of(event_field("data", "role"), event_field("changes_requested", "role"))(
        scope, item
    )


def actor_field(name: str) -> Getter:
    """A field of whoever acted: a session's user, or an API key's user or service
    account (the OpenAPI document's AuditLogActor)."""

    def get(_scope: Scope, item: dict[str, Any]) -> object:
        actor = item.get("actor")
        if not isinstance(actor, dict):
            return None
        if actor.get("type") == "session":
            return _walk(actor, ("session", "user", name))
        if actor.get("type") != "api_key":
            return None
        key = actor.get("api_key")
        if not isinstance(key, dict):
            return None
        owner = key.get("user") if key.get("type") == "user" else key.get("service_account")
        return owner.get(name) if isinstance(owner, dict) else None

    return get
