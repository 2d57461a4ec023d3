"""Who granted each binding, and when, as far as the audit log tells.

The audit log's access events (``audit_access_events``) are matched to the bindings they
made: a member's built-in role to ``user.added`` / ``user.updated`` in that project (or,
at org level, ``user.updated`` without one), a service account's role to
``service_account.created`` / ``.updated``, and an RBAC role held directly or through a
group to ``role.assignment.created`` for that principal and resource. The newest such
event is the grant. A ``role.assignment.created`` payload names the principal and the
resource but no role (the OpenAPI document's AuditLog schema, openai/openai-openapi
openapi.json), so where a principal holds several RBAC roles in one place, the grant is
the newest assignment there: inferred, and said so.
"""

from __future__ import annotations

import pandas as pd

from orgaudit.model.bindings import (
    ORG_GROUP_ROLE,
    ORG_RBAC_ROLE,
    PROJECT_GROUP_ROLE,
    PROJECT_RBAC_ROLE,
)
from orgaudit.model.catalog import ORGANIZATION, PROJECT
from orgaudit.store.snapshot import Snapshot

MEMBER_EVENTS = ("user.added", "user.updated", "service_account.created", "service_account.updated")
ASSIGNMENT_EVENTS = ("role.assignment.created",)
_ASSIGNED_KINDS = (ORG_RBAC_ROLE, PROJECT_RBAC_ROLE, ORG_GROUP_ROLE, PROJECT_GROUP_ROLE)
_GROUP_KINDS = (ORG_GROUP_ROLE, PROJECT_GROUP_ROLE)
ASSIGNMENT_NOTE = (
    "the audit log's role assignment events name no role: this is the newest assignment "
    "to {holder} there (inferred)"
)
GRANT_COLUMNS = [
    "grant_event",
    "granted_at",
    "granted_by",
    "granter_id",
    "granter_in_org",
    "grant_inferred",
]


def _grant_events(snapshot: Snapshot) -> pd.DataFrame:
    """Each granting event with the keys it is matched on: ``family`` (member or
    assignment), ``holder`` (the principal given the role), ``where`` (``scope`` and
    ``project_id``, "" at org level)."""
    events = snapshot["audit_access_events"]
    member = events[events["type"].isin(MEMBER_EVENTS)]
    members = pd.DataFrame(
        {
            "family": "member",
            "holder": member["subject_id"],
            "scope": member["project_id"].notna().map({True: PROJECT, False: ORGANIZATION}),
            "project_id": member["project_id"].fillna(""),
        }
    )
    assigned = events[events["type"].isin(ASSIGNMENT_EVENTS)]
    in_project = assigned["resource_type"].fillna("").str.contains("project")
    assignments = pd.DataFrame(
        {
            "family": "assignment",
            "holder": assigned["principal_id"],
            "scope": in_project.map({True: PROJECT, False: ORGANIZATION}),
            "project_id": assigned["resource_id"].where(in_project, "").fillna(""),
        }
    )
    keys = pd.concat([members, assignments])
    columns = ["id", "type", "effective_at", "actor_type", "actor_id", "actor_email"]
    chosen = pd.concat([keys, events.loc[keys.index, columns]], axis=1)
    # An event without a readable time (stored as missing, and reported) cannot be placed
    # among the others: it grants nothing here.
    return chosen[chosen["effective_at"].notna()]


def binding_grants(snapshot: Snapshot, bindings: pd.DataFrame) -> pd.DataFrame:
    """For each binding (same index): the newest event that granted it, if the log
    holds one: ``grant_event``, ``granted_at``, ``granted_by`` (an e-mail, else an id),
    ``granter_id``, ``granter_in_org`` (whether that user or service account is still
    here) and ``grant_inferred`` (matched by principal and place only, the event naming
    no role)."""
    events = _grant_events(snapshot)
    newest = events.sort_values(["effective_at", "id"]).drop_duplicates(
        ["family", "holder", "scope", "project_id"], keep="last"
    )
    assigned = bindings["kind"].isin(_ASSIGNED_KINDS)
    through_group = bindings["kind"].isin(_GROUP_KINDS)
    wanted = pd.DataFrame(
        {
            "family": assigned.map({True: "assignment", False: "member"}),
            "holder": bindings["via_group_id"].where(through_group, bindings["principal_id"]),
            "scope": bindings["scope"],
            "project_id": bindings["project_id"].fillna("").where(bindings["scope"] == PROJECT, ""),
        },
        index=bindings.index,
    )
    matched = wanted.merge(
        newest, on=["family", "holder", "scope", "project_id"], how="left", validate="many_to_one"
    ).set_axis(bindings.index)
    present = set(snapshot["users"]["id"]) | set(snapshot["project_service_accounts"]["id"])
    found = matched["id"].notna()
    return pd.DataFrame(
        {
            "grant_event": matched["type"],
            "granted_at": matched["effective_at"],
            "granted_by": matched["actor_email"].fillna(matched["actor_id"]),
            "granter_id": matched["actor_id"],
            "granter_in_org": matched["actor_id"]
            .isin(present)
            .where(found & matched["actor_id"].notna()),
            "grant_inferred": assigned & found,
        },
        index=bindings.index,
    )
