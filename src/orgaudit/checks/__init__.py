"""The registry of checks: a tuple of small functions with their stable ids.

Ids are stable: suppressions, saved queries and CI pipelines refer to them. Each entry
says what it flags, why it matters, how to fix it, the evidence level of the catalog
rules it rests on, and the sources it needs (a needed source that was not read turns
the check into one ``unknown`` finding).
"""

from __future__ import annotations

from orgaudit.checks import admin, coverage, keys, users
from orgaudit.checks.findings import Check

_KEYS = ("project_api_keys",)
_SCOPES = ("project_api_keys", "audit_key_events")

CHECKS: tuple[Check, ...] = (
    Check(
        "user-cannot-create-keys",
        "User cannot create keys in a project they belong to",
        "medium",
        "an org user with a role in a project (viewer, or custom roles only) that does not "
        "grant creating their own keys there",
        "they cannot create the API keys their work in the project needs, and nobody can "
        "tell why from the dashboard",
        "change their project role to member, or assign a role (or a group holding one) that "
        "grants api.organization.projects.api_keys.write; `orgaudit explain user` shows how",
        "inferred",
        ("users", "project_users"),
        users.user_cannot_create_keys,
    ),
    Check(
        "user-no-project",
        "User in no project",
        "low",
        "an org user who holds no role in any project, directly or through a group, and whose "
        "org roles give them none either (an org owner holds owner rights everywhere)",
        "they have nowhere to create keys; often a sign of an unfinished onboarding or a leaver",
        "add them to the project they need, or remove them from the organization",
        "inferred",
        ("users", "project_users"),
        users.user_no_project,
    ),
    Check(
        "key-scope-trap",
        "Restricted key without the umbrella scope it needs",
        "high",
        "a restricted key holding Responses write or the Chat completions sub-option "
        "without model.request",
        "its calls fail with 'Missing scopes: model.request' although every box looks ticked "
        "(the dashboard shows 'Mixed')",
        "set Model capabilities to Request on the key and leave its sub-options",
        "observed",
        _SCOPES,
        keys.key_scope_trap,
    ),
    Check(
        "key-exceeds-owner",
        "Key asks for more than its owner has",
        "high",
        "a restricted key whose scopes ask for permissions its owner's roles do not grant in "
        "the key's project",
        "a key cannot do more than its owner: those calls fail",
        "give the owner a role granting the scopes, or narrow the key",
        "documented",
        ("project_api_keys", "audit_key_events", "project_users"),
        keys.key_exceeds_owner,
    ),
    Check(
        "key-owner-without-access",
        "Key whose owner has no access",
        "high",
        "a key whose owner left the project or the organization (owner_project_access "
        "inactive), or whose service account is gone",
        "the key fails or lingers unowned; nobody answers for it",
        "delete the key, or give its owner a project role again",
        "documented",
        ("project_api_keys", "users"),
        keys.key_owner_without_access,
    ),
    Check(
        "key-unrestricted",
        "Key with all permissions",
        "medium",
        "a key with all permissions (worse when a service account owns it)",
        "a leaked unrestricted key can do everything its owner can",
        "replace it with a restricted key holding only what its caller needs "
        "(`orgaudit explain scopes`)",
        "inferred",
        _SCOPES,
        keys.key_unrestricted,
    ),
    Check(
        "key-unused",
        "Unused key",
        "low",
        "a key never used, or unused for more than --stale-days",
        "unused keys are risk without benefit",
        "delete it",
        "documented",
        _KEYS,
        keys.key_unused,
    ),
    Check(
        "key-expiring",
        "Key about to expire",
        "medium",
        "a key that expires within expiring_within_days (default 14; worse when a service "
        "account owns it or it was used within the same window)",
        "when it expires, whatever calls with it stops working: a production outage",
        "create its replacement and move the caller to it before the date, then delete it",
        "documented",
        _KEYS,
        keys.key_expiring,
    ),
    Check(
        "key-expired",
        "Expired key still listed",
        "low",
        "a key past its expiry date that the project still lists",
        "it can no longer be used; it is clutter that hides the keys that matter",
        "delete it",
        "documented",
        _KEYS,
        keys.key_expired,
    ),
    Check(
        "key-no-expiry-too-old",
        "Key without expiry older than policy",
        "medium",
        "a key with no expiry created more than max_key_age_days ago (a [policy] in "
        "orgaudit.toml; off without it)",
        "a key that never expires outlives its purpose and its owner's memory of it",
        "rotate it to a key with an expiry (keys can now be given one)",
        "documented",
        _KEYS,
        keys.key_no_expiry_too_old,
    ),
    Check(
        "key-scopes-unknown",
        "Key with no record of its scopes",
        "low",
        "a key with no audit-log record of its scopes",
        "what the key may do cannot be checked",
        "pull with a larger --audit-days, or rotate the key so its scopes are recorded",
        "documented",
        _SCOPES,
        keys.key_scopes_unknown,
    ),
    Check(
        "key-in-archived-project",
        "Key in an archived project",
        "medium",
        "a key still held in an archived project",
        "archived projects cannot be used; their keys are leftovers",
        "delete the key",
        "documented",
        ("project_api_keys", "projects"),
        keys.key_in_archived_project,
    ),
    Check(
        "service-account-owner",
        "Service account with the owner role",
        "medium",
        "a service account holding the project owner role",
        "its keys can manage the project's users, keys and service accounts",
        "give it the member role",
        "documented",
        ("project_service_accounts",),
        keys.service_account_owner,
    ),
    Check(
        "owner-sprawl",
        "Too many org owners",
        "medium",
        "more org owners than --max-owners",
        "every owner can do everything, admin keys included",
        "make all but a few owners readers",
        "documented",
        ("users",),
        users.owner_sprawl,
    ),
    Check(
        "invite-pending",
        "Pending invite",
        "info",
        "an invite not yet accepted (worse when it offers the owner role)",
        "whoever holds the invite e-mail can still join",
        "delete the invite if it is no longer wanted",
        "documented",
        ("invites",),
        admin.invite_pending,
    ),
    Check(
        "invite-expired",
        "Expired invite",
        "low",
        "an invite that expired unaccepted (worse when it offered the owner role)",
        "clutter that hides real pending invites",
        "delete it",
        "documented",
        ("invites",),
        admin.invite_expired,
    ),
    Check(
        "admin-key-no-expiry",
        "Admin key without expiry",
        "medium",
        "an admin key with no expiry date",
        "admin keys hold the org's most powerful rights; one that never expires outlives "
        "its purpose",
        "replace it with a key that expires",
        "documented",
        ("admin_api_keys",),
        admin.admin_key_no_expiry,
    ),
    Check(
        "admin-key-unused",
        "Unused admin key",
        "medium",
        "an admin key never used, or unused for more than --stale-days",
        "an idle admin key is the worst key to leak",
        "delete it",
        "documented",
        ("admin_api_keys",),
        admin.admin_key_unused,
    ),
    Check(
        "source-unavailable",
        "Source not read",
        "medium",
        "a data source that could not be read, and the checks it left unknown",
        "what could not be read could not be checked",
        "pull with an admin key that may read it (a read-only admin key is enough); "
        "suppressing this finding does not suppress the unknown findings it causes",
        "documented",
        (),
        coverage.source_unavailable,
    ),
    Check(
        "unrecognized-value",
        "Value orgaudit does not recognize",
        "info",
        "a coded field (a role, a status, a key owner's type) holding a value the catalog "
        "does not list, a value of the wrong type, or an item the API listed twice",
        "what orgaudit does not recognize it cannot judge: verdicts resting on it are unknown, "
        "not passed",
        "look the value up; if the API added it, add it to the catalog's known_values "
        "(--catalog) with what it means",
        "documented",
        (),
        coverage.unrecognized_values,
    ),
)

CHECKS_BY_ID = {check.id: check for check in CHECKS}

# Checks that read the access model, so any source that can add a role affects them
# (their rows turn "unknown" where a gap could hide a role).
ACCESS_MODEL_CHECKS = ("user-cannot-create-keys", "user-no-project", "key-exceeds-owner")
