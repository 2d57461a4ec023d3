"""What a pull reads: every list source, its endpoint, its family and its table.

This is the request plan as data. Page sizes are the largest each endpoint allows
(the OpenAPI document, docs/evidence.md#openapi-spec; its ``limit`` maxima), but for usage
and costs (below). Sources in an optional family (RBAC, audit logs, admin keys, usage)
may be missing from an org or
unreadable by a key; their 403/404 is recorded as coverage and the pull goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from orgaudit.collect.answers import ListEndpoint, PageStyle

A, B = PageStyle.LAST_ID, PageStyle.NEXT

# Scope-carrying audit-log events (the OpenAPI document's AuditLog; docs/evidence.md):
# created carries data.scopes,
# updated carries changes_requested.scopes (or data.scopes in the spec's own example).
KEY_EVENT_TYPES = ("api_key.created", "api_key.updated", "api_key.deleted")
# The events that change who may do what (the OpenAPI document's AuditLogEventType and
# AuditLog payloads): people and their roles, invites, service accounts, roles, role
# assignments of users and groups at org and project level, groups and projects. Group
# membership has no documented event outside the tenant-only ones, so it is not read.
ACCESS_EVENT_TYPES = (
    "user.added",
    "user.updated",
    "user.deleted",
    "invite.sent",
    "invite.accepted",
    "invite.deleted",
    "service_account.created",
    "service_account.updated",
    "service_account.deleted",
    "role.created",
    "role.updated",
    "role.deleted",
    "role.assignment.created",
    "role.assignment.deleted",
    "group.created",
    "group.updated",
    "group.deleted",
    "project.created",
    "project.archived",
    "project.deleted",
)


class Family(Enum):
    """Groups of sources that an org has, or a key may read, together."""

    CORE = "core"
    RBAC = "rbac"
    AUDIT_LOGS = "audit_logs"
    ADMIN_KEYS = "admin_keys"
    USAGE = "usage"  # the Usage and Costs APIs: an admin key needs api.usage.read


@dataclass(frozen=True)
class Source:
    """One list the pull reads, and the snapshot table its items land in."""

    name: str
    endpoint: ListEndpoint
    family: Family
    table: str
    label: str  # the source in words, for people (reports, coverage)

    @property
    def optional(self) -> bool:
        """Whether a 403/404 here means "unavailable" rather than a failed pull."""
        return self.family is not Family.CORE


def _source(
    name: str,
    path: str,
    style: PageStyle,
    limit: int,
    family: Family,
    table: str,
    params: tuple[tuple[str, str], ...] = (),
    *,
    label: str,
) -> Source:
    return Source(name, ListEndpoint(path, style, limit, params), family, table, label)


USERS = _source(
    "users", "/organization/users", A, 100, Family.CORE, "users", label="the org's users"
)
INVITES = _source(
    "invites", "/organization/invites", A, 100, Family.CORE, "invites", label="invites"
)
PROJECTS = _source(
    "projects",
    "/organization/projects",
    A,
    100,
    Family.CORE,
    "projects",
    (("include_archived", "true"),),
    label="projects",
)
# The spec gives no maximum for admin keys' `limit`; 100 matches its siblings (inferred).
ADMIN_API_KEYS = _source(
    "admin_api_keys",
    "/organization/admin_api_keys",
    A,
    100,
    Family.ADMIN_KEYS,
    "admin_api_keys",
    label="admin keys",
)
ORG_ROLES = _source(
    "org_roles",
    "/organization/roles",
    B,
    1000,
    Family.RBAC,
    "roles",
    label="the org's roles (RBAC)",
)
GROUPS = _source("groups", "/organization/groups", B, 1000, Family.RBAC, "groups", label="groups")
GROUP_USERS = _source(
    "group_users",
    "/organization/groups/{group_id}/users",
    B,
    1000,
    Family.RBAC,
    "group_users",
    label="who is in each group",
)
GROUP_ORG_ROLES = _source(
    "group_org_roles",
    "/organization/groups/{group_id}/roles",
    B,
    1000,
    Family.RBAC,
    "role_assignments",
    label="groups' org roles (RBAC)",
)
USER_ORG_ROLES = _source(
    "user_org_roles",
    "/organization/users/{user_id}/roles",
    B,
    1000,
    Family.RBAC,
    "role_assignments",
    label="users' org roles (RBAC)",
)
PROJECT_USERS = _source(
    "project_users",
    "/organization/projects/{project_id}/users",
    A,
    100,
    Family.CORE,
    "project_users",
    label="project members",
)
PROJECT_SERVICE_ACCOUNTS = _source(
    "project_service_accounts",
    "/organization/projects/{project_id}/service_accounts",
    A,
    100,
    Family.CORE,
    "project_service_accounts",
    label="service accounts",
)
# Without owner_project_access=any the endpoint hides keys whose owner lost access
# (spec, ListProjectApiKeys `owner_project_access`), which are exactly the keys to audit.
PROJECT_API_KEYS = _source(
    "project_api_keys",
    "/organization/projects/{project_id}/api_keys",
    A,
    100,
    Family.CORE,
    "project_api_keys",
    (("owner_project_access", "any"),),
    label="project API keys",
)
PROJECT_GROUPS = _source(
    "project_groups",
    "/organization/projects/{project_id}/groups",
    B,
    100,
    Family.RBAC,
    "project_groups",
    label="groups added to projects",
)
# Project RBAC lives under /v1/projects, not /v1/organization/projects (the OpenAPI document).
PROJECT_ROLES = _source(
    "project_roles",
    "/projects/{project_id}/roles",
    B,
    1000,
    Family.RBAC,
    "roles",
    label="projects' roles (RBAC)",
)
PROJECT_USER_ROLES = _source(
    "project_user_roles",
    "/projects/{project_id}/users/{user_id}/roles",
    B,
    1000,
    Family.RBAC,
    "role_assignments",
    label="project members' roles (RBAC)",
)
PROJECT_GROUP_ROLES = _source(
    "project_group_roles",
    "/projects/{project_id}/groups/{group_id}/roles",
    B,
    1000,
    Family.RBAC,
    "role_assignments",
    label="groups' project roles (RBAC)",
)


def _audit_events(name: str, types: tuple[str, ...], label: str) -> Source:
    """The audit log read for some event types, into a table named like the source."""
    params = tuple(("event_types[]", event) for event in types)
    return _source(
        name, "/organization/audit_logs", A, 100, Family.AUDIT_LOGS, name, params, label=label
    )


AUDIT_KEY_EVENTS = _audit_events(
    "audit_key_events", KEY_EVENT_TYPES, "API key events in the audit log"
)
AUDIT_ACCESS_EVENTS = _audit_events(
    "audit_access_events", ACCESS_EVENT_TYPES, "access changes in the audit log"
)

# Usage and cost: one page holds day buckets, `limit` of them, and each bucket a result
# per key (and line item) that spent that day, so how many days a page may hold depends on
# the org: usage_days_per_page() asks at most KEY_DAYS_PER_PAGE key-days a page, once the
# project keys are counted. On the huge benchmark org (100,000 keys) seven days of costs
# were 76,059 results, 836,688 JSON values, past the bound on a page (collect.answers
# MAX_JSON_VALUES); a page of 4,000 key-days holds at most about 16,000 cost results (a few
# line items a key) and stays well inside it, while a small org reads its month in one
# page a list. 31 is the most days a usage page may hold (costs allow 180). Grouped by
# project, user and key wherever the endpoint allows it (openai/openai-openapi
# openapi.json, each endpoint's `group_by`).
USAGE_PAGE_DAYS = 31
KEY_DAYS_PER_PAGE = 4_000
_BY_PRINCIPAL = ("project_id", "user_id", "api_key_id")
_USAGE_LISTS = (
    ("completions", _BY_PRINCIPAL, "completions usage"),
    ("embeddings", _BY_PRINCIPAL, "embeddings usage"),
    ("moderations", _BY_PRINCIPAL, "moderations usage"),
    ("images", _BY_PRINCIPAL, "images usage"),
    ("audio_speeches", _BY_PRINCIPAL, "audio speech usage"),
    ("audio_transcriptions", _BY_PRINCIPAL, "audio transcription usage"),
    ("file_search_calls", _BY_PRINCIPAL, "file search usage"),
    ("web_search_calls", _BY_PRINCIPAL, "web search usage"),
    ("vector_stores", ("project_id",), "vector store usage"),
    ("code_interpreter_sessions", ("project_id",), "code interpreter usage"),
)
_DAILY = (("bucket_width", "1d"),)
# Costs come grouped by project, line item and key at once, so spend by any of them is
# a sum over one table and nothing is counted twice.
COSTS = _source(
    "costs",
    "/organization/costs",
    PageStyle.BUCKETS,
    USAGE_PAGE_DAYS,
    Family.USAGE,
    "costs",
    (*_DAILY, *(("group_by", f) for f in ("project_id", "line_item", "api_key_id"))),
    label="costs (Costs API)",
)
USAGE_SOURCES: tuple[Source, ...] = tuple(
    _source(
        f"usage_{name}",
        f"/organization/usage/{name}",
        PageStyle.BUCKETS,
        USAGE_PAGE_DAYS,
        Family.USAGE,
        "usage",
        (*_DAILY, *(("group_by", field) for field in group_by)),
        label=label,
    )
    for name, group_by, label in _USAGE_LISTS
)

ALL_SOURCES: tuple[Source, ...] = (
    USERS,
    INVITES,
    PROJECTS,
    ADMIN_API_KEYS,
    ORG_ROLES,
    GROUPS,
    GROUP_USERS,
    GROUP_ORG_ROLES,
    USER_ORG_ROLES,
    PROJECT_USERS,
    PROJECT_SERVICE_ACCOUNTS,
    PROJECT_API_KEYS,
    PROJECT_GROUPS,
    PROJECT_ROLES,
    PROJECT_USER_ROLES,
    PROJECT_GROUP_ROLES,
    AUDIT_KEY_EVENTS,
    AUDIT_ACCESS_EVENTS,
    COSTS,
    *USAGE_SOURCES,
)
SOURCES_BY_NAME = {source.name: source for source in ALL_SOURCES}


def source_label(name: str) -> str:
    """A source in words ("project_user_roles" -> "project members' roles (RBAC)")."""
    source = SOURCES_BY_NAME.get(name)
    return source.label if source is not None else name.replace("_", " ")


# Lists asked once per item of a parent list: when the parent cannot be read, they cannot
# be asked either, and the coverage must say so rather than call them complete.
CHILDREN: dict[str, tuple[Source, ...]] = {
    GROUPS.name: (GROUP_USERS, GROUP_ORG_ROLES),
    USERS.name: (USER_ORG_ROLES,),
    PROJECTS.name: (
        PROJECT_USERS,
        PROJECT_SERVICE_ACCOUNTS,
        PROJECT_API_KEYS,
        PROJECT_GROUPS,
        PROJECT_ROLES,
    ),
    PROJECT_USERS.name: (PROJECT_USER_ROLES,),
    PROJECT_GROUPS.name: (PROJECT_GROUP_ROLES,),
}

# The org-level list whose failure means the whole family is missing or unreadable, so
# the family's fan-out requests are skipped instead of each failing in turn.
FAMILY_ROOTS = {Family.RBAC: ORG_ROLES.name, Family.USAGE: COSTS.name}


def usage_days_per_page(project_keys: int) -> int:
    """How many day buckets a usage or costs page asks for an org of ``project_keys``
    keys: at most KEY_DAYS_PER_PAGE key-days, at least one day, at most 31."""
    return max(1, min(USAGE_PAGE_DAYS, KEY_DAYS_PER_PAGE // max(project_keys, 1)))


def with_page_days(source: Source, days: int) -> Source:
    """``source`` asking ``days`` day buckets a page."""
    return replace(source, endpoint=replace(source.endpoint, max_limit=days))
