"""Schema version 7's entity tables: the audit log's access changes, usage and costs.

Part of the snapshot schema (:mod:`orgaudit.store.schema`, documented in
``docs/schema.md``); kept apart so each module stays readable.
"""

from __future__ import annotations

from orgaudit.store.fields import (
    INT,
    REAL,
    TEXT,
    Column,
    actor_field,
    at,
    columns_of,
    event_field,
    event_role,
    first_of,
    usage_kind,
    usage_requests,
    usage_tool_calls,
)

ACCESS_AND_USAGE_TABLES: dict[str, tuple[Column, ...]] = {
    "audit_access_events": columns_of(
        ("id", TEXT, at("id")),
        ("type", TEXT, at("type")),
        ("effective_at", INT, at("effective_at")),
        ("project_id", TEXT, at("project", "id")),
        ("actor_type", TEXT, at("actor", "type")),
        ("actor_id", TEXT, actor_field("id")),
        ("actor_email", TEXT, actor_field("email")),
        ("actor_key_id", TEXT, at("actor", "api_key", "id")),
        ("subject_id", TEXT, event_field("id")),
        ("principal_type", TEXT, event_field("principal_type")),
        ("principal_id", TEXT, event_field("principal_id")),
        ("resource_type", TEXT, event_field("resource_type")),
        ("resource_id", TEXT, event_field("resource_id")),
        ("role", TEXT, event_role),
        (
            "name",
            TEXT,
            first_of(
                event_field("role_name"),
                event_field("data", "group_name"),
                event_field("data", "name"),
                event_field("changes_requested", "role_name"),
                event_field("changes_requested", "group_name"),
            ),
        ),
    ),
    "usage": columns_of(
        ("kind", TEXT, usage_kind),
        ("start_at", INT, at("start_time")),
        ("end_at", INT, at("end_time")),
        ("project_id", TEXT, at("project_id")),
        ("user_id", TEXT, at("user_id")),
        ("api_key_id", TEXT, at("api_key_id")),
        ("model", TEXT, at("model")),
        ("requests", INT, usage_requests),
        ("tool_calls", INT, usage_tool_calls),
        ("input_tokens", INT, at("input_tokens")),
        ("output_tokens", INT, at("output_tokens")),
    ),
    "costs": columns_of(
        ("start_at", INT, at("start_time")),
        ("end_at", INT, at("end_time")),
        ("project_id", TEXT, at("project_id")),
        ("api_key_id", TEXT, at("api_key_id")),
        ("line_item", TEXT, at("line_item")),
        ("amount", REAL, at("amount", "value")),
        ("currency", TEXT, at("amount", "currency")),
        ("quantity", REAL, at("quantity")),
        ("quantity_unit", TEXT, at("quantity_unit")),
    ),
}

# Key events stored before it gain their actor from their raw JSON, as a pull today
# would store it (a session's user, else the acting key's user or service account).
ACTOR_FROM_RAW = """
UPDATE audit_key_events SET
    actor_id = CASE json_extract(raw, '$.actor.type')
        WHEN 'session' THEN json_extract(raw, '$.actor.session.user.id')
        WHEN 'api_key' THEN CASE json_extract(raw, '$.actor.api_key.type')
            WHEN 'user' THEN json_extract(raw, '$.actor.api_key.user.id')
            ELSE json_extract(raw, '$.actor.api_key.service_account.id') END
        END,
    actor_email = CASE json_extract(raw, '$.actor.type')
        WHEN 'session' THEN json_extract(raw, '$.actor.session.user.email')
        WHEN 'api_key' THEN CASE json_extract(raw, '$.actor.api_key.type')
            WHEN 'user' THEN json_extract(raw, '$.actor.api_key.user.email') END
        END;
"""
