"""The snapshot schema: one column list per entity table (its getter, type and first
schema version), the identity and lookups of each, the derived tables, and the
migrations that move a database forward a version at a time.

The schema is a public contract (``docs/schema.md``): saved queries are written against
it. It carries a version in ``PRAGMA user_version``; never edit a migration that shipped.
"""

from __future__ import annotations

from orgaudit.collect.records import PROJECT_KEY_IN_ADMIN_LIST
from orgaudit.store.fields import (
    INT,
    TEXT,
    Column,
    actor_field,
    at,
    columns_of,
    event_key_id,
    event_scopes,
    first_of,
    json_at,
    key_owner,
    principal_id,
    principal_type,
    resource_type,
    scope_value,
)
from orgaudit.store.review_schema import SCHEMA_V6 as _SCHEMA_V6
from orgaudit.store.schema_v7 import ACCESS_AND_USAGE_TABLES, ACTOR_FROM_RAW

# Entity tables: every one also has `snapshot_id` first and `raw` (the object's JSON) last,
# so fields the API adds later are kept.
TABLES: dict[str, tuple[Column, ...]] = {
    "users": columns_of(
        ("id", TEXT, at("id")),
        ("email", TEXT, first_of(at("email"), at("user", "email"))),
        ("name", TEXT, first_of(at("name"), at("user", "name"))),
        ("role", TEXT, at("role")),
        ("added_at", INT, at("added_at")),
        ("is_service_account", INT, at("is_service_account")),
    ),
    "invites": columns_of(
        ("id", TEXT, at("id")),
        ("email", TEXT, at("email")),
        ("role", TEXT, at("role")),
        ("status", TEXT, at("status")),
        ("created_at", INT, at("created_at")),
        ("expires_at", INT, at("expires_at")),
        ("accepted_at", INT, at("accepted_at")),
        ("projects", TEXT, json_at("projects")),
    ),
    "projects": columns_of(
        ("id", TEXT, at("id")),
        ("name", TEXT, at("name")),
        ("status", TEXT, at("status")),
        ("created_at", INT, at("created_at")),
        ("archived_at", INT, at("archived_at")),
    ),
    "admin_api_keys": columns_of(
        ("id", TEXT, at("id")),
        ("name", TEXT, at("name")),
        ("redacted_value", TEXT, at("redacted_value")),
        ("created_at", INT, at("created_at")),
        ("expires_at", INT, at("expires_at")),
        ("last_used_at", INT, at("last_used_at")),
        ("owner_type", TEXT, at("owner", "type")),
        ("owner_id", TEXT, at("owner", "id")),
        ("owner_name", TEXT, at("owner", "name")),
        ("owner_role", TEXT, at("owner", "role")),
    ),
    "roles": columns_of(
        ("resource_type", TEXT, resource_type),
        ("project_id", TEXT, scope_value("project_id")),
        ("id", TEXT, at("id")),
        ("name", TEXT, at("name")),
        ("description", TEXT, at("description")),
        ("role_resource_type", TEXT, at("resource_type")),
        ("predefined_role", INT, at("predefined_role")),
        ("permissions", TEXT, json_at("permissions")),
    ),
    "groups": columns_of(
        ("id", TEXT, at("id")),
        ("name", TEXT, at("name")),
        ("group_type", TEXT, at("group_type")),
        ("is_scim_managed", INT, at("is_scim_managed")),
        ("created_at", INT, at("created_at")),
    ),
    "group_users": columns_of(
        ("group_id", TEXT, scope_value("group_id")),
        ("user_id", TEXT, at("id")),
        ("name", TEXT, at("name")),
        ("email", TEXT, at("email")),
    ),
    "role_assignments": columns_of(
        ("principal_type", TEXT, principal_type),
        ("principal_id", TEXT, principal_id),
        ("resource_type", TEXT, resource_type),
        ("project_id", TEXT, scope_value("project_id")),
        ("role_id", TEXT, at("id")),
        ("role_name", TEXT, at("name")),
        ("role_resource_type", TEXT, at("resource_type")),
        ("predefined_role", INT, at("predefined_role")),
        ("permissions", TEXT, json_at("permissions")),
        ("assignment_sources", TEXT, json_at("assignment_sources")),
    ),
    "project_users": columns_of(
        ("project_id", TEXT, scope_value("project_id")),
        ("user_id", TEXT, at("id")),
        ("email", TEXT, at("email")),
        ("name", TEXT, at("name")),
        ("role", TEXT, at("role")),
        ("added_at", INT, at("added_at")),
    ),
    "project_service_accounts": columns_of(
        ("project_id", TEXT, scope_value("project_id")),
        ("id", TEXT, at("id")),
        ("name", TEXT, at("name")),
        ("role", TEXT, at("role")),
        ("created_at", INT, at("created_at")),
    ),
    "project_api_keys": columns_of(
        ("project_id", TEXT, scope_value("project_id")),
        ("id", TEXT, at("id")),
        ("name", TEXT, at("name")),
        ("redacted_value", TEXT, at("redacted_value")),
        ("created_at", INT, at("created_at")),
        ("last_used_at", INT, at("last_used_at")),
        ("owner_project_access", TEXT, at("owner_project_access")),
        ("owner_type", TEXT, at("owner", "type")),
        ("owner_id", TEXT, key_owner("id")),
        ("owner_name", TEXT, key_owner("name")),
        ("owner_email", TEXT, key_owner("email")),
        ("owner_role", TEXT, key_owner("role")),
        # Project keys carry an expiry since 2026 (API reference, the project API key
        # object; docs/evidence.md#api-ref-project-keys): added in schema version 4.
        ("expires_at", INT, at("expires_at"), 4),
    ),
    "project_groups": columns_of(
        ("project_id", TEXT, scope_value("project_id")),
        ("group_id", TEXT, at("group_id")),
        ("group_name", TEXT, at("group_name")),
        ("group_type", TEXT, at("group_type")),
        ("created_at", INT, at("created_at")),
    ),
    "audit_key_events": columns_of(
        ("id", TEXT, at("id")),
        ("type", TEXT, at("type")),
        ("effective_at", INT, at("effective_at")),
        ("project_id", TEXT, at("project", "id")),
        ("key_id", TEXT, event_key_id),
        ("scopes", TEXT, event_scopes),
        ("actor_type", TEXT, at("actor", "type")),
        # Who made or changed the key, for diff (schema version 7).
        ("actor_id", TEXT, actor_field("id"), 7),
        ("actor_email", TEXT, actor_field("email"), 7),
    ),
    **ACCESS_AND_USAGE_TABLES,
}
# Entity tables a later schema version added (created by that version's migration).
TABLES_SINCE = {"audit_access_events": 7, "usage": 7, "costs": 7}


# What identifies one row of a table within a snapshot. A second item with the same
# identity (a list that repeats an item across pages, or a key id in two projects) is
# not stored; an anomaly row says so. Key, service-account and event ids are global.
IDENTITY: dict[str, tuple[str, ...]] = {
    "users": ("id",),
    "invites": ("id",),
    "projects": ("id",),
    "admin_api_keys": ("id",),
    "roles": ("project_id", "id"),
    "groups": ("id",),
    "group_users": ("group_id", "user_id"),
    "role_assignments": ("principal_type", "principal_id", "project_id", "role_id"),
    "project_users": ("project_id", "user_id"),
    "project_service_accounts": ("id",),
    "project_api_keys": ("id",),
    "project_groups": ("project_id", "group_id"),
    "audit_key_events": ("id",),
    "audit_access_events": ("id",),
    "usage": ("kind", "start_at", "project_id", "user_id", "api_key_id", "model"),
    "costs": ("start_at", "project_id", "api_key_id", "line_item", "currency"),
}


def _entity_table_sql(name: str, columns: tuple[Column, ...]) -> str:
    body = ",\n    ".join(f"{c.name} {c.sql_type}" for c in columns if c.since == 1)
    return (
        f"CREATE TABLE {name} (\n"
        f"    snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,\n"
        f"    {body},\n    raw TEXT NOT NULL\n);\n"
        f"CREATE INDEX {name}_by_snapshot ON {name}(snapshot_id);\n"
    )


_SCHEMA_V1 = """
CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    as_of INTEGER NOT NULL,
    audit_since INTEGER NOT NULL,
    base_url TEXT NOT NULL,
    tool_version TEXT NOT NULL,
    requests INTEGER NOT NULL,
    retries INTEGER NOT NULL,
    throttled INTEGER NOT NULL
);
CREATE TABLE coverage (
    snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('complete', 'partial', 'unavailable')),
    reason TEXT NOT NULL,
    rows INTEGER NOT NULL,
    requests INTEGER NOT NULL,
    PRIMARY KEY (snapshot_id, source)
);
CREATE TABLE coverage_gaps (
    snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    project_id TEXT,
    user_id TEXT,
    group_id TEXT,
    status TEXT NOT NULL CHECK (status IN ('unavailable', 'skipped', 'archived', 'derived')),
    reason TEXT NOT NULL
);
CREATE INDEX coverage_gaps_by_snapshot ON coverage_gaps(snapshot_id);
""" + "".join(
    _entity_table_sql(name, columns) for name, columns in TABLES.items() if name not in TABLES_SINCE
)

# Derived tables: what analysis works out from a snapshot under a catalog, stored back so
# saved queries can use it. Rewritten whenever the snapshot is analyzed again.
_DERIVED_V2: dict[str, dict[str, str]] = {
    "access_bindings": {
        "principal_type": TEXT,
        "principal_id": TEXT,
        "scope": TEXT,
        "project_id": TEXT,
        "kind": TEXT,
        "role_id": TEXT,
        "role_name": TEXT,
        "preset_id": TEXT,
        "via_group_id": TEXT,
        "via_group_name": TEXT,
        "permissions": TEXT,
        "permission_source": TEXT,
        "grants_read": INT,
        "grants_create": INT,
        "grants_manage": INT,
        "conditional": INT,
        "known": INT,
    },
    "access_levels": {
        "principal_type": TEXT,
        "principal_id": TEXT,
        "project_id": TEXT,
        "level": TEXT,
        "verdict": TEXT,
        "complete": INT,
        "archived": INT,
    },
    "key_scopes": {
        "key_id": TEXT,
        "project_id": TEXT,
        "scope_kind": TEXT,
        "scopes": TEXT,
        "recorded_at": INT,
    },
    "findings": {
        "check_id": TEXT,
        "severity": TEXT,
        "status": TEXT,
        "subject_type": TEXT,
        "subject_id": TEXT,
        "subject_name": TEXT,
        "project_id": TEXT,
        "project_name": TEXT,
        "message": TEXT,
        "evidence": TEXT,
        "suppressed": INT,
        "suppression": TEXT,
    },
}


# Derived columns added by schema version 4: a verdict under the other reading of the
# contested catalog rules, and which rules those are where it differs.
_DERIVED_V4: dict[str, dict[str, str]] = {
    "access_levels": {"verdict_other": TEXT, "contested": TEXT},
    "findings": {"contested": TEXT},
}
DERIVED_TABLES: dict[str, dict[str, str]] = {
    table: {**columns, **_DERIVED_V4.get(table, {})} for table, columns in _DERIVED_V2.items()
}


def _derived_table_sql(name: str, columns: dict[str, str]) -> str:
    body = ",\n    ".join(f"{column} {sql_type}" for column, sql_type in columns.items())
    return (
        f"CREATE TABLE {name} (\n"
        f"    snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,\n"
        f"    {body}\n);\n"
        f"CREATE INDEX {name}_by_snapshot ON {name}(snapshot_id);\n"
    )


# Lookup indexes for joins within a snapshot, as the saved queries make them.
_LOOKUPS = {
    "users": ("id",),
    "projects": ("id",),
    "groups": ("id",),
    "group_users": ("group_id", "user_id"),
    "project_users": ("project_id", "user_id"),
    "project_service_accounts": ("project_id", "id"),
    "project_api_keys": ("id",),
    "role_assignments": ("principal_id", "project_id"),
    "audit_key_events": ("key_id",),
    "access_bindings": ("principal_id", "project_id"),
    "access_levels": ("principal_id", "project_id"),
    "key_scopes": ("key_id",),
    "findings": ("check_id", "subject_id"),
}

_SCHEMA_V2 = (
    """
CREATE TABLE derived_info (
    snapshot_id INTEGER PRIMARY KEY REFERENCES snapshots(id) ON DELETE CASCADE,
    catalog_version TEXT NOT NULL
);
"""
    + "".join(_derived_table_sql(name, columns) for name, columns in _DERIVED_V2.items())
    + "".join(
        f"CREATE INDEX {table}_lookup ON {table}(snapshot_id, {', '.join(columns)});\n"
        for table, columns in _LOOKUPS.items()
    )
    + "CREATE INDEX project_api_keys_by_owner ON project_api_keys(snapshot_id, owner_id);\n"
)

# Values the pull could not store as the API's shape says they should be, and items it
# did not store twice. Analysis reports each (check unrecognized-value): never dropped
# silently.
_SCHEMA_V3 = """
CREATE TABLE anomalies (
    snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
    table_name TEXT NOT NULL,
    column_name TEXT,
    subject_id TEXT,
    value TEXT,
    problem TEXT NOT NULL
);
CREATE INDEX anomalies_by_snapshot ON anomalies(snapshot_id);
"""


def _added_columns_sql(version: int) -> str:
    """The ALTER TABLE statements adding the entity columns of a later schema version."""
    return "".join(
        f"ALTER TABLE {table} ADD COLUMN {column.name} {column.sql_type};\n"
        for table, columns in TABLES.items()
        for column in columns
        if column.since == version
    )


# The pull leaves these out of admin_api_keys on purpose (pull.without_project_keys): a
# known quirk of the API, recorded in anomalies but not reported as a value orgaudit does
# not know. (No semicolon: migrations are split into statements at semicolons.)

# Version 4: project API keys' expiry (checks key-expired and key-expiring), and the
# contested-rule columns of the derived tables. Snapshots written before it are mended
# as a pull today would write them: the expiry their raw JSON holds is filled in, and the
# project keys their admin-key list also returned move out of admin_api_keys (each
# recorded in anomalies), so an old snapshot audited again gives today's findings.
_PROJECT_KEY_IN_ADMIN_LIST_SQL = """EXISTS (SELECT 1 FROM project_api_keys p
    WHERE p.snapshot_id = admin_api_keys.snapshot_id AND p.id = admin_api_keys.id)"""
_SCHEMA_V4 = (
    _added_columns_sql(4)
    + "".join(
        f"ALTER TABLE {table} ADD COLUMN {column} {sql_type};\n"
        for table, columns in _DERIVED_V4.items()
        for column, sql_type in columns.items()
    )
    + """
UPDATE project_api_keys SET expires_at = json_extract(raw, '$.expires_at')
    WHERE json_type(raw, '$.expires_at') = 'integer';
INSERT INTO anomalies (snapshot_id, table_name, column_name, subject_id, value, problem)
    SELECT snapshot_id, 'admin_api_keys', NULL, id, NULL, '"""
    + PROJECT_KEY_IN_ADMIN_LIST.replace("'", "''")
    + f"""'
    FROM admin_api_keys WHERE {_PROJECT_KEY_IN_ADMIN_LIST_SQL};
DELETE FROM admin_api_keys WHERE {_PROJECT_KEY_IN_ADMIN_LIST_SQL};
"""
)

# Version 5: what the findings table's findings were worked out under (a digest of the
# catalog and the audit's settings; NULL where only a pull wrote the derived tables), so
# the next audit's Changes read them where it would work out the same, instead of
# running every check again.
_SCHEMA_V5 = "ALTER TABLE derived_info ADD COLUMN findings_basis TEXT;\n"

# Version 7: the audit log's access changes (who granted what), and usage and costs
# over the usage window, which starts at `snapshots.usage_since` (NULL: not read).
_LOOKUPS_V7 = {
    "audit_access_events": ("principal_id", "subject_id"),
    "usage": ("api_key_id",),
    "costs": ("api_key_id",),
}
_SCHEMA_V7 = (
    "ALTER TABLE snapshots ADD COLUMN usage_since INTEGER;\n"
    + _added_columns_sql(7)
    + ACTOR_FROM_RAW
    + "".join(
        _entity_table_sql(name, TABLES[name]) for name, since in TABLES_SINCE.items() if since == 7
    )
    + "".join(
        f"CREATE INDEX {table}_lookup ON {table}(snapshot_id, {', '.join(columns)});\n"
        for table, columns in _LOOKUPS_V7.items()
    )
)

# Each entry moves the schema one version up; never edit one that has shipped.
MIGRATIONS: tuple[str, ...] = (
    _SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3, _SCHEMA_V4, _SCHEMA_V5, _SCHEMA_V6, _SCHEMA_V7,
)  # fmt: skip
SCHEMA_VERSION = len(MIGRATIONS)
