"""Seeded generated orgs of any size, for tests of scale and for the benchmark."""

from __future__ import annotations

import random
from dataclasses import dataclass

from orgaudit.simulator.org import OrgBuilder, SimOrg, project_role_id

# Scope sets a generated key draws from: unrestricted; the "Mixed" trap (responses and chat
# without the model.request they also need; forum thread
# https://community.openai.com/t/restricted-api-key-and-scopes-for-responses-api/1143672);
# a sound restricted key; and a read-only key ("Use ["api.all.read"] for read-only
# access", the API reference on updating a key, as generated in
# https://docs.rs/crate/openai-client-base/0.16.0/source/src/models/update_project_api_key_body.rs).
_SCOPE_CHOICES: tuple[list[str], ...] = (
    [],
    ["api.responses.write", "api.model.chat_completions.request"],
    ["model.request", "api.model.request", "api.responses.write"],
    ["api.all.read"],
)
_CUSTOM_PERMISSIONS = (
    ["api.organization.projects.api_keys.read", "api.organization.projects.api_keys.write"],
    ["api.responses.read", "api.responses.write"],
    ["api.files.read", "api.files.write"],
    ["api.groups.read"],
)


@dataclass(frozen=True)
class OrgShape:
    """How big a generated org is; every count is a total or a per-project average.

    ``expiring_share`` is the share of project keys given an ``expires_at``.
    """

    users: int = 50
    projects: int = 5
    members_per_project: int = 5
    keys_per_project: int = 3
    service_accounts_per_project: int = 1
    custom_roles: int = 4
    groups: int = 3
    owners: int = 2
    archived_share: float = 0.05
    extra_audit_events: int = 0
    expiring_share: float = 0.2


def _expiry(rng: random.Random, share: float, created_days_ago: float) -> float | None:
    """Days from now to a key's expiry (negative: expired), or None for no expiry.

    A key lives 1 to 365 days from its creation: ``expires_in_seconds`` is at most
    31536000, a year (openai/openai-openapi openapi.yaml, POST /organization/admin_api_keys;
    the API reference gives project keys the same range).
    """
    if rng.random() >= share:
        return None
    return rng.uniform(1, 365) - created_days_ago


def generate_org(shape: OrgShape, *, seed: int, now: int) -> SimOrg:
    """A random but reproducible org of the given shape."""
    rng = random.Random(seed)
    # Expiries draw from their own generator, so an org of a given seed is otherwise what
    # it was before keys had expiries (but for the last use of an expired key).
    expiry_rng = random.Random(f"{seed}:expiry")
    b = OrgBuilder("org_generated", now)
    user_ids = [
        b.user(
            f"User {i}",
            f"user{i}@example.com",
            "owner" if i < shape.owners else "reader",
            added_days_ago=rng.uniform(1, 900),
        )
        for i in range(shape.users)
    ]
    project_ids = [
        b.project(
            f"Project {i}",
            archived_days_ago=rng.uniform(1, 300) if rng.random() < shape.archived_share else None,
        )
        for i in range(shape.projects)
    ]
    custom_roles: list[tuple[str | None, str]] = []
    for i in range(shape.custom_roles):
        permissions = _CUSTOM_PERMISSIONS[i % len(_CUSTOM_PERMISSIONS)]
        if i % 2 == 0 and project_ids:
            pid = rng.choice(project_ids)
            custom_roles.append((pid, b.custom_project_role(pid, f"Custom {i}", permissions)))
        else:
            custom_roles.append((None, b.custom_org_role(f"Custom {i}", permissions)))
    group_ids = [
        b.group(f"Group {i}", rng.sample(user_ids, min(len(user_ids), rng.randint(1, 10))))
        for i in range(shape.groups)
    ]
    for project_id in project_ids:
        members = rng.sample(user_ids, min(len(user_ids), shape.members_per_project))
        for uid in members:
            b.member(project_id, uid, rng.choices(("owner", "member", "viewer"), (1, 7, 2))[0])
        accounts = [
            b.service_account(
                project_id, f"sa-{project_id}-{j}", rng.choice(("member", "member", "owner"))
            )
            for j in range(shape.service_accounts_per_project)
        ]
        owners = members + accounts
        for j in range(shape.keys_per_project if owners else 0):
            owner = rng.choice(owners)
            scopes = list(rng.choice(_SCOPE_CHOICES))
            created = rng.uniform(1, 400)
            last_used = None if rng.random() < 0.1 else rng.uniform(0, 200)
            expires = _expiry(expiry_rng, shape.expiring_share, created)
            if expires is not None and expires < 0 and last_used is not None:
                last_used = max(last_used, -expires)  # an expired key was last used before
            b.key(
                project_id,
                owner,
                f"key-{project_id}-{j}",
                scopes=scopes,
                created_days_ago=created,
                last_used_days_ago=last_used,
                audit_recorded=rng.random() > 0.1,
                expires_in_days=expires,
            )
        if group_ids and rng.random() < 0.3:
            b.group_in_project(project_id, rng.choice(group_ids), project_role_id("member"))
        if members and rng.random() < 0.1:
            b.remove_member(project_id, members[0])
    for role_project, role_id in custom_roles:
        if role_project is None and group_ids:
            b.group_org_role(rng.choice(group_ids), role_id)
        elif role_project is not None and b.org.project_users[role_project]:
            first_member = b.org.project_users[role_project][0]["id"]
            b.assign_project_role(role_project, first_member, role_id)
    keyed_projects = [p for p in project_ids if b.org.project_api_keys[p]]
    for _ in range(shape.extra_audit_events if keyed_projects else 0):
        pid = rng.choice(keyed_projects)
        key = rng.choice(b.org.project_api_keys[pid])
        b.update_key_scopes(pid, key["id"], list(rng.choice(_SCOPE_CHOICES)), rng.uniform(0, 170))
    if user_ids:
        b.admin_key(user_ids[0], "generated-admin", expires_in_days=None)
    return b.org
