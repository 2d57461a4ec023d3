"""The simulated org: spec-shaped API objects, and a builder that keeps them consistent.

Objects are the dicts the API returns (the schemas of the OpenAPI document, excerpted in
tests/data/openai-admin-openapi-excerpt.yaml), so the server only filters and pages them.
:class:`OrgBuilder` is how the demo org, the generator and the tests make orgs: it adds
the role assignment that goes with a membership, the audit-log event that records a
key's scopes, and the ``owner_project_access`` a key's owner implies.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

JsonObject = dict[str, Any]
_Made = TypeVar("_Made")

# The actor of events logged before the org has an owner (and without acting_as).
SYSTEM_ACTOR_USER: JsonObject = {"id": "user_system", "email": "admin@example.com"}

ORG_ROLE_NAMES = ("owner", "reader")
PROJECT_ROLE_NAMES = ("owner", "member", "viewer")


def org_role_id(name: str, org_id: str) -> str:
    """Org built-in role ids in the long form the community provider builds (repository
    jianyuan/terraform-provider-openai, internal/provider/function_predefined_role_id.go)."""
    return f"role-api-organization-{name}__api-organization__{org_id}"


def project_role_id(name: str) -> str:
    """Project built-in role ids in the short form the official provider uses (repository
    openai/terraform-provider-openai, examples/resources/openai_project_group/resource.tf)."""
    return f"role-api-project-{name}"


@dataclass
class SimOrg:
    """Every object the simulator serves, keyed the way its endpoints look them up."""

    org_id: str
    users: list[JsonObject] = field(default_factory=list)
    invites: list[JsonObject] = field(default_factory=list)
    projects: list[JsonObject] = field(default_factory=list)
    admin_api_keys: list[JsonObject] = field(default_factory=list)
    org_roles: list[JsonObject] = field(default_factory=list)
    groups: list[JsonObject] = field(default_factory=list)
    group_users: defaultdict[str, list[JsonObject]] = field(
        default_factory=lambda: defaultdict(list)
    )
    group_org_roles: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    user_org_roles: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    project_users: defaultdict[str, list[JsonObject]] = field(
        default_factory=lambda: defaultdict(list)
    )
    project_service_accounts: defaultdict[str, list[JsonObject]] = field(
        default_factory=lambda: defaultdict(list)
    )
    project_api_keys: defaultdict[str, list[JsonObject]] = field(
        default_factory=lambda: defaultdict(list)
    )
    project_groups: defaultdict[str, list[JsonObject]] = field(
        default_factory=lambda: defaultdict(list)
    )
    project_roles: defaultdict[str, list[JsonObject]] = field(
        default_factory=lambda: defaultdict(list)
    )
    project_user_roles: defaultdict[tuple[str, str], list[str]] = field(
        default_factory=lambda: defaultdict(list)
    )
    project_group_roles: defaultdict[tuple[str, str], list[str]] = field(
        default_factory=lambda: defaultdict(list)
    )
    audit_logs: list[JsonObject] = field(default_factory=list)
    # The admin-key list also returns every project key, labelled as an admin key: the API
    # reference titles GET /organization/admin_api_keys "List all organization and project
    # API keys" (https://developers.openai.com/api/docs/api-reference/admin-api-keys), and
    # cartography-cncf/cartography pull request 2511 (merged 2026-03-17), "fix(openai):
    # filter project keys from admin API keys endpoint", reports that it "returns all API
    # keys (including project-scoped keys) mislabeled as `organization.admin_api_key`":
    # https://github.com/cartography-cncf/cartography/pull/2511
    # Off unless an org asks; the demo org turns it on.
    admin_list_includes_project_keys: bool = False
    # The org's present (unix seconds): what the usage and costs endpoints take as their
    # default ``end_time``. None: the wall clock at each request.
    now: int | None = None
    _memo: dict[tuple[object, ...], tuple[list[JsonObject], int, object]] = field(
        default_factory=dict, repr=False, compare=False
    )
    _state_memo: dict[str, tuple[object, object]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def memo(self, key: tuple[object, ...], items: list[JsonObject], make: Any) -> Any:
        """``make()``, cached while ``items`` is the same list object at the same length.

        The org's lists are only replaced or appended to between pulls, so this keeps the
        server's lookups constant-time on orgs of tens of thousands of objects. The entry
        holds the list itself, so its identity cannot be reused by another list.
        """
        cached = self._memo.get(key)
        if cached is None or cached[0] is not items or cached[1] != len(items):
            cached = (items, len(items), make())
            self._memo[key] = cached
        return cached[2]

    def memo_while(self, name: str, state: object, make: Callable[[], _Made]) -> _Made:
        """``make()``, cached while ``state`` compares equal to the state it was made for.

        For what derives from values that change in place (a key's ``last_used_at``, which
        :meth:`OrgBuilder.use_key` moves), where :meth:`memo`'s list identity and length
        cannot tell. The caller builds ``state`` from every value ``make`` reads.
        """
        cached = self._state_memo.get(name)
        if cached is None or cached[0] != state:
            cached = (state, make())
            self._state_memo[name] = cached
        return cast(_Made, cached[1])

    def positions(self, name: str, items: list[JsonObject]) -> dict[str, int]:
        """Each item's position by its id (``group_id`` for project groups)."""
        result: dict[str, int] = self.memo(
            ("positions", name),
            items,
            lambda: {str(item.get("id", item.get("group_id"))): i for i, item in enumerate(items)},
        )
        return result

    def admin_key_list(self) -> list[JsonObject]:
        """What ``GET /organization/admin_api_keys`` lists: the admin keys, then (if
        :attr:`admin_list_includes_project_keys`) every project key, project by project,
        in the admin-key shape."""
        if not self.admin_list_includes_project_keys:
            return self.admin_api_keys
        # Built per request, not memoized: keys change in place between pulls (use_key).
        project_keys = [
            project_key_as_admin_key(key) for keys in self.project_api_keys.values() for key in keys
        ]
        return [*self.admin_api_keys, *project_keys]

    def role(self, role_id: str, project_id: str | None = None) -> JsonObject | None:
        """A role object by id, looked up in the project's roles, then the org's."""
        pools = [self.project_roles.get(project_id, [])] if project_id else []
        pools.append(self.org_roles)
        for pool in pools:
            for role in pool:
                if role["id"] == role_id:
                    return role
        return None


def project_key_as_admin_key(key: JsonObject) -> JsonObject:
    """A project key as the admin-key list shows it (same id, name, dates and owner).

    The owner takes the admin-key owner's flat shape. A service account's is the spec's
    own list example for the operation (``"type": "service_account"``, ``"object":
    "organization.service_account"``; openai/openai-openapi openapi.yaml, GET
    /organization/admin_api_keys); how the real list spells a project key's owner is not
    documented, so this is inferred.
    """
    owner = key["owner"]
    kind = owner["type"]
    person = owner.get(kind) or {}
    return {
        "object": "organization.admin_api_key",
        "id": key["id"],
        "name": key["name"],
        "redacted_value": key["redacted_value"],
        "created_at": key["created_at"],
        "expires_at": key.get("expires_at"),
        "last_used_at": key["last_used_at"],
        "owner": {
            "type": kind,
            "object": "organization.service_account"
            if kind == "service_account"
            else "organization.user",
            "id": person.get("id"),
            "name": person.get("name"),
            "created_at": person.get("created_at"),
            "role": person.get("role"),
        },
    }


class OrgBuilder:
    """Adds people, projects, roles and keys to a :class:`SimOrg`, consistently.

    ``now`` is the org's present (unix seconds); ages are given in days before it.
    ``predefined_permissions`` lists what built-in roles report as their permissions:
    the API may return them empty (no public source says either way), which is the
    default here so that the catalog's fallback is exercised.

    Besides the ``api_key.*`` events, the builder logs the events that change access
    (people added, removed or given roles; roles, groups, service accounts and invites
    created), with the payloads of the ``AuditLog`` schema of the OpenAPI document
    (openai/openai-openapi, info.version 2.3.0). Each such method takes ``at_days_ago``
    for the event's time; left out, the event takes the time the builder gives the object
    (or the org's present for a change or a removal). Events carry the actor set by
    :meth:`acting_as`; :attr:`actor_id` None is the system actor.

    Ids: :meth:`_next` numbers every object and ``api_key.*`` event from one serial; the
    access events, and the role-assignment ids they name, take theirs from separate
    serials (``audit_log-acc-000001``, ``role_assignment-acc-000001``), so no id an org
    had before they were logged moves.
    """

    def __init__(self, org_id: str, now: int, *, predefined_permissions: tuple[str, ...] = ()):
        self.org = SimOrg(org_id)
        self.now = now
        self.org.now = now
        self.actor_id: str | None = None
        self._predefined_permissions = list(predefined_permissions)
        self._serial = 0
        # Each prefix of the access ids counts on its own: audit_log-acc-000001, ...
        self._access_serials: dict[str, int] = defaultdict(int)
        self._users: dict[str, JsonObject] = {}
        self._projects: dict[str, JsonObject] = {}
        self._groups: dict[str, JsonObject] = {}
        for name in ORG_ROLE_NAMES:
            self.org.org_roles.append(
                self._role_object(org_role_id(name, org_id), name, "api.organization", True)
            )

    # -- helpers -------------------------------------------------------------------------

    def days_ago(self, days: float) -> int:
        """Unix seconds ``days`` before the org's present."""
        return int(self.now - days * 86400)

    def _next(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}{self._serial:06d}"

    def _next_access(self, prefix: str) -> str:
        """An id from the access events' own serials (never shifts :meth:`_next`'s ids)."""
        self._access_serials[prefix] += 1
        return f"{prefix}acc-{self._access_serials[prefix]:06d}"

    def _event_time(self, at_days_ago: float | None, default_days_ago: float) -> int:
        """Unix seconds of an event: ``at_days_ago`` if given, else the default age."""
        return self.days_ago(default_days_ago if at_days_ago is None else at_days_ago)

    def acting_as(self, user_id: str | None) -> None:
        """Make the events logged from now on carry this org user as their actor (a
        session of theirs); None goes back to the system actor."""
        if user_id is not None and user_id not in self._users:
            raise KeyError(f"no such user: {user_id}")
        self.actor_id = user_id

    def _actor(self) -> JsonObject:
        """The ``actor`` of an event: the spec's ``AuditLogActor`` of type ``session``;
        without :meth:`acting_as`, the org's first owner still in it (an org's changes
        are made by someone in it), else the system actor."""
        acting = self.actor_id
        if acting is None:
            owners = (u["id"] for u in self.org.users if u.get("role") == "owner")
            acting = next(owners, None)
        if acting is None:
            user = dict(SYSTEM_ACTOR_USER)
        else:
            user = {"id": acting, "email": self._users[acting]["email"]}
        return {"type": "session", "session": {"user": user, "ip_address": "127.0.0.1"}}

    def _access_event(
        self, event_type: str, at: int, project_id: str | None, payload: JsonObject
    ) -> str:
        """Log an event that changes access, with an id from the access serial."""
        return self._log(self._next_access("audit_log-"), event_type, at, project_id, payload)

    def _role_assignment_event(
        self,
        at: int,
        principal_id: str,
        principal_type: str,
        project_id: str | None,
    ) -> str:
        """Log ``role.assignment.created`` for a role given on a project (or the org).

        The spec's payload names the assignment, principal and resource, not the role.
        The assignment id is made up here (the simulator serves no assignment objects).
        """
        payload = {
            "id": self._next_access("role_assignment-"),
            "principal_id": principal_id,
            "principal_type": principal_type,
            "resource_id": project_id if project_id is not None else self.org.org_id,
            "resource_type": "api.project" if project_id is not None else "api.organization",
        }
        return self._access_event("role.assignment.created", at, project_id, payload)

    def _role_object(
        self,
        role_id: str,
        name: str,
        resource_type: str,
        predefined: bool,
        permissions: list[str] | None = None,
        description: str = "",
    ) -> JsonObject:
        return {
            "object": "role",
            "id": role_id,
            "name": name,
            "description": description or (f"Built-in {name} role" if predefined else name),
            "permissions": list(self._predefined_permissions)
            if predefined
            else list(permissions or []),
            "resource_type": resource_type,
            "predefined_role": predefined,
        }

    # -- people ------------------------------------------------------------------------

    def user(
        self,
        name: str,
        email: str,
        role: str = "reader",
        *,
        added_days_ago: float = 400,
        user_id: str | None = None,
    ) -> str:
        """Add an org user with an org role; returns the user id."""
        uid = user_id or self._next("user_")
        obj = {
            "object": "organization.user",
            "id": uid,
            "name": name,
            "email": email,
            "role": role,
            "added_at": self.days_ago(added_days_ago),
            "is_service_account": False,
        }
        self.org.users.append(obj)
        self._users[uid] = obj
        if role in ORG_ROLE_NAMES:
            self.org.user_org_roles[uid].append(org_role_id(role, self.org.org_id))
        return uid

    def invite(
        self,
        email: str,
        role: str,
        status: str,
        *,
        sent_days_ago: float,
        expires_in_days: float,
        projects: list[JsonObject] | None = None,
        at_days_ago: float | None = None,
    ) -> str:
        """Add an invite (pending, expired or accepted) and log ``invite.sent``.

        The event is at the invite's ``created_at`` (``sent_days_ago``) unless
        ``at_days_ago`` moves it (the invite object keeps its dates).
        """
        iid = self._next("invite-")
        self.org.invites.append(
            {
                "object": "organization.invite",
                "id": iid,
                "email": email,
                "role": role,
                "status": status,
                "created_at": self.days_ago(sent_days_ago),
                "expires_at": self.days_ago(sent_days_ago - expires_in_days),
                "accepted_at": None,
                "projects": projects or [],
            }
        )
        self._access_event(
            "invite.sent",
            self._event_time(at_days_ago, sent_days_ago),
            None,
            {"id": iid, "data": {"email": email, "role": role}},
        )
        return iid

    # -- projects -----------------------------------------------------------------------

    def project(
        self, name: str, *, archived_days_ago: float | None = None, project_id: str | None = None
    ) -> str:
        """Add a project with the three built-in project roles."""
        pid = project_id or self._next("proj_")
        archived_at = None if archived_days_ago is None else self.days_ago(archived_days_ago)
        self._projects[pid] = {
            "id": pid,
            "object": "organization.project",
            "name": name,
            "created_at": self.days_ago(500),
            "archived_at": archived_at,
            "status": "archived" if archived_at else "active",
            "external_key_id": None,
            "residency": "GLOBAL",
        }
        self.org.projects.append(self._projects[pid])
        for role_name in PROJECT_ROLE_NAMES:
            self.org.project_roles[pid].append(
                self._role_object(project_role_id(role_name), role_name, "api.project", True)
            )
        return pid

    def member(
        self,
        project_id: str,
        user_id: str,
        role: str = "member",
        *,
        at_days_ago: float | None = None,
    ) -> None:
        """Make an org user a direct member of a project with a built-in project role,
        and log ``user.added`` (in the project) at the membership's ``added_at`` (300
        days ago unless ``at_days_ago`` says otherwise)."""
        user = self._users[user_id]
        added_at = self._event_time(at_days_ago, 300)
        self.org.project_users[project_id].append(
            {
                "object": "organization.project.user",
                "id": user_id,
                "name": user["name"],
                "email": user["email"],
                "role": role,
                "added_at": added_at,
            }
        )
        self.org.project_user_roles[(project_id, user_id)].append(project_role_id(role))
        self._access_event(
            "user.added", added_at, project_id, {"id": user_id, "data": {"role": role}}
        )

    def custom_org_role(
        self, name: str, permissions: list[str], *, at_days_ago: float | None = None
    ) -> str:
        """Add a custom org-level role; log ``role.created`` (200 days ago by default)."""
        rid = self._next("role_")
        self.org.org_roles.append(
            self._role_object(rid, name, "api.organization", False, permissions)
        )
        self._role_created_event(rid, name, permissions, None, at_days_ago)
        return rid

    def custom_project_role(
        self,
        project_id: str,
        name: str,
        permissions: list[str],
        *,
        at_days_ago: float | None = None,
    ) -> str:
        """Add a custom role defined in a project; log ``role.created`` in the project
        (200 days ago by default)."""
        rid = self._next("role_")
        self.org.project_roles[project_id].append(
            self._role_object(rid, name, "api.project", False, permissions)
        )
        self._role_created_event(rid, name, permissions, project_id, at_days_ago)
        return rid

    def _role_created_event(
        self,
        role_id: str,
        name: str,
        permissions: list[str],
        project_id: str | None,
        at_days_ago: float | None,
    ) -> None:
        self._access_event(
            "role.created",
            self._event_time(at_days_ago, 200),
            project_id,
            {
                "id": role_id,
                "role_name": name,
                "permissions": list(permissions),
                "resource_type": "api.project" if project_id is not None else "api.organization",
                "resource_id": project_id if project_id is not None else self.org.org_id,
            },
        )

    def assign_project_role(
        self, project_id: str, user_id: str, role_id: str, *, at_days_ago: float | None = None
    ) -> None:
        """Give a user a (custom) project role directly; log ``role.assignment.created``
        in the project (200 days ago by default, as the custom roles are created).

        The role must be one of the project's own (inferred from the OpenAPI document,
        which lists project role assignments beside ``GET /projects/{id}/roles``); the pull
        relies on it.
        """
        if all(role["id"] != role_id for role in self.org.project_roles[project_id]):
            raise ValueError(f"{role_id} is not a role of project {project_id}")
        self.org.project_user_roles[(project_id, user_id)].append(role_id)
        self._role_assignment_event(self._event_time(at_days_ago, 200), user_id, "user", project_id)

    def assign_org_role(
        self, user_id: str, role_id: str, *, at_days_ago: float | None = None
    ) -> None:
        """Give a user a (custom) org role directly; log ``role.assignment.created``
        (200 days ago by default)."""
        self.org.user_org_roles[user_id].append(role_id)
        self._role_assignment_event(self._event_time(at_days_ago, 200), user_id, "user", None)

    # -- groups ---------------------------------------------------------------------------

    def group(self, name: str, members: list[str], *, at_days_ago: float | None = None) -> str:
        """Add a group with these org users as members; log ``group.created`` at its
        ``created_at`` (200 days ago unless ``at_days_ago`` says otherwise).

        Its members are not logged: the spec documents no (non-tenant) audit-log event
        for adding a user to a group.
        """
        gid = self._next("group_")
        created_at = self._event_time(at_days_ago, 200)
        self._groups[gid] = {
            "id": gid,
            "name": name,
            "created_at": created_at,
            "is_scim_managed": False,
            "group_type": "group",
        }
        self.org.groups.append(self._groups[gid])
        for uid in members:
            user = self._users[uid]
            self.org.group_users[gid].append(
                {"id": uid, "name": user["name"], "email": user["email"]}
            )
        self._access_event(
            "group.created", created_at, None, {"id": gid, "data": {"group_name": name}}
        )
        return gid

    def group_in_project(
        self, project_id: str, group_id: str, role_id: str, *, at_days_ago: float | None = None
    ) -> None:
        """Add a group to a project with a project role (built-in or custom id); log
        ``role.assignment.created`` in the project at the project group's ``created_at``
        (100 days ago unless ``at_days_ago`` says otherwise)."""
        group = self._groups[group_id]
        created_at = self._event_time(at_days_ago, 100)
        self.org.project_groups[project_id].append(
            {
                "object": "project.group",
                "project_id": project_id,
                "group_id": group_id,
                "group_name": group["name"],
                "group_type": "group",
                "created_at": created_at,
            }
        )
        self.org.project_group_roles[(project_id, group_id)].append(role_id)
        self._role_assignment_event(created_at, group_id, "group", project_id)

    def group_org_role(
        self, group_id: str, role_id: str, *, at_days_ago: float | None = None
    ) -> None:
        """Give a group an org-level role; log ``role.assignment.created`` (200 days ago
        by default)."""
        self.org.group_org_roles[group_id].append(role_id)
        self._role_assignment_event(self._event_time(at_days_ago, 200), group_id, "group", None)

    # -- service accounts and keys ----------------------------------------------------------

    def service_account(
        self,
        project_id: str,
        name: str,
        role: str = "member",
        *,
        at_days_ago: float | None = None,
    ) -> str:
        """Add a project service account; log ``service_account.created`` in the project
        at its ``created_at`` (250 days ago unless ``at_days_ago`` says otherwise)."""
        sid = self._next("svc_acct_")
        created_at = self._event_time(at_days_ago, 250)
        self.org.project_service_accounts[project_id].append(
            {
                "object": "organization.project.service_account",
                "id": sid,
                "name": name,
                "role": role,
                "created_at": created_at,
            }
        )
        self._access_event(
            "service_account.created", created_at, project_id, {"id": sid, "data": {"role": role}}
        )
        return sid

    def key(
        self,
        project_id: str,
        owner_id: str,
        name: str,
        *,
        scopes: list[str] | None,
        created_days_ago: float = 120,
        last_used_days_ago: float | None = 1,
        owner_has_access: bool = True,
        audit_recorded: bool = True,
        expires_in_days: float | None = None,
    ) -> str:
        """Add a project API key owned by a user or a service account.

        ``scopes=[]`` is an unrestricted ("All") key: "An empty array removes key
        restrictions (All permissions)" says the API reference for updating a key (as in
        https://docs.rs/crate/openai-client-base/0.16.0/source/src/models/update_project_api_key_body.rs);
        how an audit-log event records it is not documented, and the catalog decides.
        ``audit_recorded=False`` leaves no audit-log record of its scopes.
        ``expires_in_days`` sets ``expires_at`` that many days after the org's present
        (negative: already expired); ``None`` is a key that never expires (``null``).
        """
        kid = self._next("key_")
        accounts = self.org.project_service_accounts[project_id]
        account = next((sa for sa in accounts if sa["id"] == owner_id), None)
        if account is not None:
            owner: JsonObject = {
                "type": "service_account",
                "service_account": {
                    "id": account["id"],
                    "name": account["name"],
                    "created_at": account["created_at"],
                    "role": account["role"],
                },
            }
        else:
            user = self._users[owner_id]
            membership = next(
                (m for m in self.org.project_users[project_id] if m["id"] == owner_id), None
            )
            owner = {
                "type": "user",
                "user": {
                    "id": owner_id,
                    "name": user["name"],
                    "email": user["email"],
                    "created_at": user["added_at"],
                    "role": membership["role"] if membership else "member",
                },
            }
        created_at = self.days_ago(created_days_ago)
        self.org.project_api_keys[project_id].append(
            {
                "object": "organization.project.api_key",
                "redacted_value": f"sk-proj-...{kid[-4:]}",
                "name": name,
                "created_at": created_at,
                "last_used_at": None
                if last_used_days_ago is None
                else self.days_ago(last_used_days_ago),
                "id": kid,
                "owner_project_access": "active" if owner_has_access else "inactive",
                "owner": owner,
                # Integer or null in the API reference's project key object, though not in
                # openai/openai-openapi at f85dbe2; as generated from the reference in
                # https://docs.rs/crate/openai-client-base/0.16.0/source/src/models/project_api_key.rs
                "expires_at": None if expires_in_days is None else self.days_ago(-expires_in_days),
            }
        )
        if audit_recorded and scopes is not None:
            self.audit_event(
                "api_key.created",
                created_at,
                project_id,
                {"id": kid, "data": {"scopes": list(scopes)}},
            )
        return kid

    def update_key_scopes(
        self, project_id: str, key_id: str, scopes: list[str], days_ago: float
    ) -> None:
        """Record an ``api_key.updated`` event that changes a key's scopes."""
        self.audit_event(
            "api_key.updated",
            self.days_ago(days_ago),
            project_id,
            {"id": key_id, "changes_requested": {"scopes": list(scopes)}},
        )

    def audit_event(
        self, event_type: str, at: int, project_id: str | None, payload: JsonObject
    ) -> str:
        """Append an audit-log event with its payload under the event type's name."""
        return self._log(self._next("audit_log-"), event_type, at, project_id, payload)

    def _log(
        self, event_id: str, event_type: str, at: int, project_id: str | None, payload: JsonObject
    ) -> str:
        """Append an event (the spec's ``AuditLog``) with the current actor."""
        event: JsonObject = {
            "id": event_id,
            "type": event_type,
            "effective_at": at,
            "actor": self._actor(),
            event_type: payload,
        }
        if project_id is not None:
            event["project"] = {"id": project_id, "name": self._projects[project_id]["name"]}
        self.org.audit_logs.append(event)
        return event_id

    def admin_key(
        self,
        owner_id: str,
        name: str,
        *,
        expires_in_days: float | None,
        last_used_days_ago: float | None = 1,
    ) -> str:
        """Add an admin API key owned by an org user."""
        kid = self._next("key_")
        user = self._users[owner_id]
        self.org.admin_api_keys.append(
            {
                "object": "organization.admin_api_key",
                "id": kid,
                "name": name,
                "redacted_value": f"sk-admin...{kid[-3:]}",
                "created_at": self.days_ago(60),
                "expires_at": None if expires_in_days is None else self.days_ago(-expires_in_days),
                "last_used_at": None
                if last_used_days_ago is None
                else self.days_ago(last_used_days_ago),
                "owner": {
                    "type": "user",
                    "object": "organization.user",
                    "id": owner_id,
                    "name": user["name"],
                    "created_at": user["added_at"],
                    "role": user["role"],
                },
            }
        )
        return kid

    def remove_member(
        self, project_id: str, user_id: str, *, at_days_ago: float | None = None
    ) -> None:
        """A user leaves a project; their keys there lose owner access. If they were a
        member, log ``user.deleted`` in the project (now unless ``at_days_ago``)."""
        if self._leave_project(project_id, user_id):
            self._access_event(
                "user.deleted", self._event_time(at_days_ago, 0), project_id, {"id": user_id}
            )

    def _leave_project(self, project_id: str, user_id: str) -> bool:
        """Take a user out of a project (unlogged); whether they were a member."""
        members = self.org.project_users[project_id]
        self.org.project_users[project_id] = [m for m in members if m["id"] != user_id]
        self.org.project_user_roles.pop((project_id, user_id), None)
        for key in self.org.project_api_keys[project_id]:
            if key["owner"].get("user", {}).get("id") == user_id:
                key["owner_project_access"] = "inactive"
        return len(self.org.project_users[project_id]) < len(members)

    # -- changes between pulls (for diff tests) ------------------------------------------

    def set_org_role(self, user_id: str, role: str, *, at_days_ago: float | None = None) -> None:
        """Change a user's org role (legacy field and built-in assignment); log
        ``user.updated`` without a project (now unless ``at_days_ago``)."""
        self._users[user_id]["role"] = role
        builtins = {org_role_id(name, self.org.org_id) for name in ORG_ROLE_NAMES}
        kept = [r for r in self.org.user_org_roles[user_id] if r not in builtins]
        self.org.user_org_roles[user_id] = [org_role_id(role, self.org.org_id), *kept]
        self._user_updated_event(user_id, role, None, at_days_ago)

    def _user_updated_event(
        self, user_id: str, role: str, project_id: str | None, at_days_ago: float | None
    ) -> None:
        # The spec describes ``user.updated``'s ``id`` as "The project ID", beside
        # ``user.added`` and ``user.deleted`` whose ``id`` is "The user ID"; read as a
        # documentation slip, so the user's id is put there, as for the other two.
        self._access_event(
            "user.updated",
            self._event_time(at_days_ago, 0),
            project_id,
            {"id": user_id, "changes_requested": {"role": role}},
        )

    def set_project_role(
        self, project_id: str, user_id: str, role: str, *, at_days_ago: float | None = None
    ) -> None:
        """Change a member's built-in project role; log ``user.updated`` in the project
        (now unless ``at_days_ago``)."""
        for member in self.org.project_users[project_id]:
            if member["id"] == user_id:
                member["role"] = role
        builtins = {project_role_id(name) for name in PROJECT_ROLE_NAMES}
        kept = [r for r in self.org.project_user_roles[(project_id, user_id)] if r not in builtins]
        self.org.project_user_roles[(project_id, user_id)] = [project_role_id(role), *kept]
        self._user_updated_event(user_id, role, project_id, at_days_ago)

    def remove_user(self, user_id: str, *, at_days_ago: float | None = None) -> None:
        """A user leaves the org: out of every project and group; their keys lose access.

        Logs one ``user.deleted`` without a project (now unless ``at_days_ago``), if they
        were in the org; leaving its projects with it is not logged project by project.
        """
        users = self.org.users
        self.org.users = [u for u in users if u["id"] != user_id]
        for project_id in list(self.org.project_users):
            self._leave_project(project_id, user_id)
        for group_id in list(self.org.group_users):
            self.remove_group_member(group_id, user_id)
        self.org.user_org_roles.pop(user_id, None)
        if len(self.org.users) < len(users):
            self._access_event(
                "user.deleted", self._event_time(at_days_ago, 0), None, {"id": user_id}
            )

    # Group membership changes log nothing: the spec's AuditLog documents no (non-tenant)
    # event for a user joining or leaving a group.

    def add_group_member(self, group_id: str, user_id: str) -> None:
        """Add an org user to a group."""
        user = self._users[user_id]
        self.org.group_users[group_id].append(
            {"id": user_id, "name": user["name"], "email": user["email"]}
        )

    def remove_group_member(self, group_id: str, user_id: str) -> None:
        """Take a user out of a group."""
        members = self.org.group_users[group_id]
        self.org.group_users[group_id] = [m for m in members if m["id"] != user_id]

    def set_role_permissions(
        self, role_id: str, permissions: list[str], project_id: str | None = None
    ) -> None:
        """Change what a custom role grants."""
        role = self.org.role(role_id, project_id)
        if role is None:
            raise KeyError(role_id)
        role["permissions"] = list(permissions)

    def delete_key(self, project_id: str, key_id: str, *, days_ago: float = 0) -> None:
        """Delete a project key (and log it)."""
        keys = self.org.project_api_keys[project_id]
        self.org.project_api_keys[project_id] = [k for k in keys if k["id"] != key_id]
        self.audit_event("api_key.deleted", self.days_ago(days_ago), project_id, {"id": key_id})

    def use_key(self, project_id: str, key_id: str, *, days_ago: float = 0) -> None:
        """Record a use of a key."""
        for key in self.org.project_api_keys[project_id]:
            if key["id"] == key_id:
                key["last_used_at"] = self.days_ago(days_ago)

    def key_id(self, project_id: str, name: str) -> str:
        """A key's id by its name."""
        return str(
            next(k["id"] for k in self.org.project_api_keys[project_id] if k["name"] == name)
        )
