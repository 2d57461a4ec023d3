"""The registry of checks: a tuple of small functions with their stable ids.

Ids are stable: suppressions, saved queries and CI pipelines refer to them. Each entry
says what it flags, why it matters, how to fix it, the evidence level of the catalog
rules it rests on, and the sources it needs (a needed source that was not read turns
the check into one ``unknown`` finding).
"""

from __future__ import annotations

from orgaudit.checks import admin, coverage, keys, provenance, roster, spend, users
from orgaudit.checks.findings import Check
from orgaudit.model.access import BINDING_SOURCES
from orgaudit.model.spend import USAGE_SOURCE_NAMES
from orgaudit.vocabulary import Severity

_KEYS = ("project_api_keys",)
_SCOPES = ("project_api_keys", "audit_key_events")
_COSTS = ("project_api_keys", "costs")
_USAGE = (*_COSTS, *USAGE_SOURCE_NAMES)

CHECKS: tuple[Check, ...] = (
    Check(
        id="user-cannot-create-keys",
        title="User cannot create keys in a project they belong to",
        severity=Severity.MEDIUM,
        flags="an org user with a role in a project (viewer, or custom roles only) that does not "
        "grant creating their own keys there",
        why="they cannot create the API keys their work in the project needs, and nobody can "
        "tell why from the dashboard",
        fix="change their project role to member, or assign a role (or a group holding one) that "
        "grants api.organization.projects.api_keys.write; `orgaudit explain user` shows how",
        evidence="inferred",
        needs=("users", "project_users"),
        run=users.user_cannot_create_keys,
    ),
    Check(
        id="user-no-project",
        title="User in no project",
        severity=Severity.LOW,
        flags="an org user who holds no role in any project, directly or through a group, and "
        "whose org roles give them none either (an org owner holds owner rights everywhere)",
        why="they have nowhere to create keys; often a sign of an unfinished onboarding or a "
        "leaver",
        fix="add them to the project they need, or remove them from the organization",
        evidence="inferred",
        needs=("users", "project_users"),
        run=users.user_no_project,
    ),
    Check(
        id="user-terminated",
        title="User the roster lists as terminated",
        severity=Severity.HIGH,
        flags="an org user the roster lists as terminated (off without --roster)",
        why="a leaver who still holds access to the organization, and to whatever their keys reach",
        fix="remove them from the organization, and delete their keys or hand them over to "
        "whoever takes over their work",
        evidence="documented",
        needs=("users",),
        run=roster.user_terminated,
    ),
    Check(
        id="user-not-in-roster",
        title="User not in the roster",
        severity=Severity.MEDIUM,
        flags="an org user whose e-mail the roster does not list, or who has no e-mail (off "
        "without --roster)",
        why="access nobody in HR or the identity provider vouches for",
        fix="add them to the roster if they belong, else remove them from the organization",
        evidence="documented",
        needs=("users",),
        run=roster.user_not_in_roster,
    ),
    Check(
        id="role-granted-by-departed",
        title="Role granted by someone who has left",
        severity=Severity.LOW,
        flags="a role held today whose granting event in the audit log (within --audit-days) was "
        "made by a user or service account no longer in the organization",
        why="nobody here can say why it was granted; a leaver's grants are the first to review",
        fix="confirm the role is still needed with the project's owner, or remove it",
        evidence="inferred",
        # Every list that can add a role: one not read could hide a role to flag.
        needs=("audit_access_events", *BINDING_SOURCES),
        run=provenance.role_granted_by_departed,
    ),
    Check(
        id="key-scope-trap",
        title="Restricted key without the umbrella scope it needs",
        severity=Severity.HIGH,
        flags="a restricted key holding Responses write or the Chat completions sub-option "
        "without model.request",
        why="its calls fail with 'Missing scopes: model.request' although every box looks ticked "
        "(the dashboard shows 'Mixed')",
        fix="set Model capabilities to Request on the key and leave its sub-options",
        evidence="observed",
        needs=_SCOPES,
        run=keys.key_scope_trap,
    ),
    Check(
        id="key-exceeds-owner",
        title="Key asks for more than its owner has",
        severity=Severity.HIGH,
        flags="a restricted key whose scopes ask for permissions its owner's roles do not grant in "
        "the key's project",
        why="a key cannot do more than its owner: those calls fail",
        fix="give the owner a role granting the scopes, or narrow the key",
        evidence="documented",
        needs=("project_api_keys", "audit_key_events", "project_users"),
        run=keys.key_exceeds_owner,
    ),
    Check(
        id="key-owner-without-access",
        title="Key whose owner has no access",
        severity=Severity.HIGH,
        flags="a key whose owner left the project or the organization (owner_project_access "
        "inactive), or whose service account is gone",
        why="the key fails or lingers unowned; nobody answers for it",
        fix="delete the key, or give its owner a project role again",
        evidence="documented",
        needs=("project_api_keys", "users"),
        run=keys.key_owner_without_access,
    ),
    Check(
        id="key-unrestricted",
        title="Key with all permissions",
        severity=Severity.MEDIUM,
        flags="a key with all permissions (worse when a service account owns it)",
        why="a leaked unrestricted key can do everything its owner can",
        fix="replace it with a restricted key holding only what its caller needs "
        "(`orgaudit explain scopes`)",
        evidence="inferred",
        needs=_SCOPES,
        run=keys.key_unrestricted,
    ),
    Check(
        id="key-unused",
        title="Unused key",
        severity=Severity.LOW,
        flags="a key never used, or unused for more than --stale-days",
        why="unused keys are risk without benefit",
        fix="delete it",
        evidence="documented",
        needs=_KEYS,
        run=keys.key_unused,
    ),
    Check(
        id="key-spend-owner-gone",
        title="Key spending although its owner is gone",
        severity=Severity.HIGH,
        flags="a project key with cost or requests in the usage window (--usage-days) whose "
        "owner left the project or the organization, or whose service account is gone",
        why="money is spent through a key nobody answers for; whoever holds it is not, or no "
        "longer, someone the organization vouches for",
        fix="find the caller (explain key), move it to a key its team owns, then delete this key",
        evidence="documented",
        needs=(*_COSTS, "users"),
        run=spend.key_spend_owner_gone,
    ),
    Check(
        id="key-unrestricted-spend",
        title="Key with all permissions that spends",
        severity=Severity.MEDIUM,
        flags="a project key with all permissions and a cost in the usage window",
        why="a live key that can do everything its owner can: the blast radius of a leak",
        fix="replace it with a restricted key holding only what its caller uses, then delete it",
        evidence="inferred",
        needs=(*_COSTS, "audit_key_events"),
        run=spend.key_unrestricted_spend,
    ),
    Check(
        id="key-idle",
        title="Key idle for the whole usage window",
        severity=Severity.LOW,
        flags="a project key last used before the usage window and with no request and no cost "
        "in it (keys never used, or unused past --stale-days, are key-unused)",
        why="a key nobody uses any more is only a risk: it can leak, and nothing would break "
        "without it",
        fix="ask its owner; delete it if nothing calls it",
        evidence="documented",
        needs=_USAGE,
        run=spend.key_idle,
    ),
    Check(
        id="key-expiring",
        title="Key about to expire",
        severity=Severity.MEDIUM,
        flags="a key that expires within expiring_within_days (default 14; worse when a service "
        "account owns it or it was used within the same window)",
        why="when it expires, whatever calls with it stops working: a production outage",
        fix="create its replacement and move the caller to it before the date, then delete it",
        evidence="documented",
        needs=_KEYS,
        run=keys.key_expiring,
    ),
    Check(
        id="key-expired",
        title="Expired key still listed",
        severity=Severity.LOW,
        flags="a key past its expiry date that the project still lists",
        why="it can no longer be used; it is clutter that hides the keys that matter",
        fix="delete it",
        evidence="documented",
        needs=_KEYS,
        run=keys.key_expired,
    ),
    Check(
        id="key-no-expiry-too-old",
        title="Key without expiry older than policy",
        severity=Severity.MEDIUM,
        flags="a key with no expiry created more than max_key_age_days ago (a [policy] in "
        "orgaudit.toml; off without it)",
        why="a key that never expires outlives its purpose and its owner's memory of it",
        fix="rotate it to a key with an expiry (keys can now be given one)",
        evidence="documented",
        needs=_KEYS,
        run=keys.key_no_expiry_too_old,
    ),
    Check(
        id="key-scopes-unknown",
        title="Key with no record of its scopes",
        severity=Severity.LOW,
        flags="a key with no audit-log record of its scopes",
        why="what the key may do cannot be checked",
        fix="pull with a larger --audit-days, or rotate the key so its scopes are recorded",
        evidence="documented",
        needs=_SCOPES,
        run=keys.key_scopes_unknown,
    ),
    Check(
        id="key-in-archived-project",
        title="Key in an archived project",
        severity=Severity.MEDIUM,
        flags="a key still held in an archived project",
        why="archived projects cannot be used; their keys are leftovers",
        fix="delete the key",
        evidence="documented",
        needs=("project_api_keys", "projects"),
        run=keys.key_in_archived_project,
    ),
    Check(
        id="service-account-owner",
        title="Service account with the owner role",
        severity=Severity.MEDIUM,
        flags="a service account holding the project owner role",
        why="its keys can manage the project's users, keys and service accounts",
        fix="give it the member role",
        evidence="documented",
        needs=("project_service_accounts",),
        run=keys.service_account_owner,
    ),
    Check(
        id="owner-sprawl",
        title="Too many org owners",
        severity=Severity.MEDIUM,
        flags="more org owners than --max-owners",
        why="every owner can do everything, admin keys included",
        fix="make all but a few owners readers",
        evidence="documented",
        needs=("users",),
        run=users.owner_sprawl,
    ),
    Check(
        id="invite-pending",
        title="Pending invite",
        severity=Severity.INFO,
        flags="an invite not yet accepted (worse when it offers the owner role)",
        why="whoever holds the invite e-mail can still join",
        fix="delete the invite if it is no longer wanted",
        evidence="documented",
        needs=("invites",),
        run=admin.invite_pending,
    ),
    Check(
        id="invite-expired",
        title="Expired invite",
        severity=Severity.LOW,
        flags="an invite that expired unaccepted (worse when it offered the owner role)",
        why="clutter that hides real pending invites",
        fix="delete it",
        evidence="documented",
        needs=("invites",),
        run=admin.invite_expired,
    ),
    Check(
        id="admin-key-no-expiry",
        title="Admin key without expiry",
        severity=Severity.MEDIUM,
        flags="an admin key with no expiry date",
        why="admin keys hold the org's most powerful rights; one that never expires outlives "
        "its purpose",
        fix="replace it with a key that expires",
        evidence="documented",
        needs=("admin_api_keys",),
        run=admin.admin_key_no_expiry,
    ),
    Check(
        id="admin-key-unused",
        title="Unused admin key",
        severity=Severity.MEDIUM,
        flags="an admin key never used, or unused for more than --stale-days",
        why="an idle admin key is the worst key to leak",
        fix="delete it",
        evidence="documented",
        needs=("admin_api_keys",),
        run=admin.admin_key_unused,
    ),
    Check(
        id="source-unavailable",
        title="Source not read",
        severity=Severity.MEDIUM,
        flags="a data source that could not be read, and the checks it left unknown",
        why="what could not be read could not be checked",
        fix="pull with an admin key that may read it (a read-only admin key is enough); "
        "suppressing this finding does not suppress the unknown findings it causes",
        evidence="documented",
        needs=(),
        run=coverage.source_unavailable,
    ),
    Check(
        id="unrecognized-value",
        title="Value orgaudit does not recognize",
        severity=Severity.INFO,
        flags="a coded field (a role, a status, a key owner's type) holding a value the catalog "
        "does not list, a value of the wrong type, or an item the API listed twice",
        why="what orgaudit does not recognize it cannot judge: verdicts resting on it are unknown, "
        "not passed",
        fix="look the value up; if the API added it, add it to the catalog's known_values "
        "(--catalog) with what it means",
        evidence="documented",
        needs=(),
        run=coverage.unrecognized_values,
    ),
)

CHECKS_BY_ID = {check.id: check for check in CHECKS}

# Checks that read the access model, so any source that can add a role affects them
# (their rows turn "unknown" where a gap could hide a role).
ACCESS_MODEL_CHECKS = ("user-cannot-create-keys", "user-no-project", "key-exceeds-owner")
