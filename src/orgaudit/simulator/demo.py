"""The curated demo org: small, and holding each real case an auditor must catch.

Each case is named in :data:`DEMO_CASES` with the ids it involves, so tests (and later
the findings and explain tests) can check every one of them by name.
"""

from __future__ import annotations

from orgaudit.simulator.org import OrgBuilder, SimOrg, project_role_id

DEMO_ORG_ID = "org_demo"

# Permission strings from the OpenAPI document's role examples ("API Project Key Manager",
# openai/openai-openapi openapi.yaml) and https://developers.openai.com/api/docs/guides/rbac
KEYS_WRITE = "api.organization.projects.api_keys.write"
KEYS_READ = "api.organization.projects.api_keys.read"

# What each curated case is, and the ids that carry it.
DEMO_CASES: dict[str, str] = {
    "reader-not-in-payments": "user_carol: org reader, member of Research only, not of Payments",
    "project-viewer": (
        "user_dave: org reader, viewer in Payments (denied; contested: "
        "key_rights_need_project_role)"
    ),
    "group-grants-key-write": (
        "user_erin: viewer in Payments, but group 'Payments Key Managers' holds the custom "
        "project role 'Key Manager' (api_keys.write) there"
    ),
    "group-only-member": "user_ivan: in Research only through group 'Data Science' (member)",
    "owner-in-no-project": (
        "user_frank: org owner with no project (not user-no-project: owner rights everywhere)"
    ),
    "reader-in-no-project": "user_peggy: org reader with no project",
    "custom-role-without-key-write": (
        "user_oscar: viewer in Research plus custom role 'Responses caller' (no api_keys.write)"
    ),
    "mixed-scope-trap": (
        "key 'grace-responses' in Payments: api.responses.write and "
        "api.model.chat_completions.request, but not model.request"
    ),
    "owner-left-project": "key 'heidi-old' in Payments: heidi left, owner_project_access inactive",
    "service-account-owner": "service account 'payments-bot': project owner in Payments",
    "invite-pending": "kate@example.com: pending reader invite",
    "invite-expired": "judy@example.com: expired owner invite",
    "archived-project-with-keys": "project Legacy (archived) still holds key 'legacy-batch'",
    "unrestricted-keys": "keys 'bob-laptop' (user) and 'payments-bot-prod' (service account)",
    "never-used-key": "key 'alice-never-used' in Payments",
    "scopes-unknown": "key 'alice-ci' in Research: created before the audit-log window",
    "admin-key-no-expiry": "admin key 'audit-key' has no expiry",
    "admin-key-unused": "admin key 'old-admin' was never used",
    "key-expiring-in-use": (
        "key 'research-etl-rotating' (service account research-etl) expires in 3 days and "
        "was used 6 hours ago"
    ),
    "key-expired-listed": "key 'carol-expired' in Research expired 10 days ago, still listed",
    "key-expiring-later": (
        "key 'grace-quarterly' in Payments expires in 60 days; every other project key "
        "has no expiry"
    ),
    "spend-owner-left": (
        "key 'victor-proxy' in Payments: all permissions, spent in the usage window; its owner "
        "victor left the org 5 days ago"
    ),
    "granted-by-leaver": (
        "group 'Payments Key Managers' was given 'Key Manager' in Payments by victor@example.com, "
        "who has since left the org"
    ),
    "key-idle": "key 'heidi-old' in Payments: last used 45 days ago, nothing in the usage window",
    "admin-list-has-project-keys": (
        "the admin-key list also returns every project key, as organization.admin_api_key"
    ),
}


def demo_org(now: int) -> SimOrg:
    """Build the demo org as of ``now`` (unix seconds)."""
    return demo_builder(now).org


def demo_builder(now: int) -> OrgBuilder:
    """The demo org's builder, for tests that change the org between pulls."""
    b = OrgBuilder(DEMO_ORG_ID, now)
    alice = b.user("Alice Admin", "alice@example.com", "owner", user_id="user_alice")
    b.acting_as(alice)  # the audit log names alice for every change but victor's
    bob = b.user("Bob Builder", "bob@example.com", user_id="user_bob")
    carol = b.user("Carol Chen", "carol@example.com", user_id="user_carol")
    dave = b.user("Dave Doe", "dave@example.com", user_id="user_dave")
    erin = b.user("Erin Evans", "erin@example.com", user_id="user_erin")
    frank = b.user("Frank Founder", "frank@example.com", "owner", user_id="user_frank")
    grace = b.user("Grace Hopper", "grace@example.com", user_id="user_grace")
    heidi = b.user("Heidi Klum", "heidi@example.com", user_id="user_heidi")
    ivan = b.user("Ivan Ito", "ivan@example.com", user_id="user_ivan")
    oscar = b.user("Oscar Ortiz", "oscar@example.com", user_id="user_oscar")
    b.user("Peggy Park", "peggy@example.com", user_id="user_peggy")
    victor = b.user("Victor Vance", "victor@example.com", user_id="user_victor")

    payments = b.project("Payments", project_id="proj_payments")
    research = b.project("Research", project_id="proj_research")
    legacy = b.project("Legacy", project_id="proj_legacy", archived_days_ago=30)

    b.member(payments, alice, "owner")
    b.member(payments, bob, "member")
    b.member(payments, dave, "viewer")
    b.member(payments, erin, "viewer")
    b.member(payments, grace, "member")
    b.member(payments, heidi, "member")
    b.member(research, alice, "owner")
    b.member(research, carol, "member")
    b.member(research, heidi, "member")
    b.member(research, oscar, "viewer")
    b.member(legacy, bob, "member")
    b.member(payments, victor, "owner")

    key_manager = b.custom_project_role(payments, "Key Manager", [KEYS_READ, KEYS_WRITE])
    managers = b.group("Payments Key Managers", [erin])
    b.acting_as(victor)  # victor, since gone, gave the group its role
    b.group_in_project(payments, managers, key_manager)
    b.acting_as(alice)

    data_science = b.group("Data Science", [ivan])
    b.group_in_project(research, data_science, project_role_id("member"))

    responses_caller = b.custom_project_role(
        research, "Responses caller", ["api.responses.read", "api.responses.write"]
    )
    b.assign_project_role(research, oscar, responses_caller)

    key_reader = b.custom_org_role("Org Key Reader", [KEYS_READ])
    auditors = b.group("Auditors", [dave])
    b.group_org_role(auditors, key_reader)

    bot = b.service_account(payments, "payments-bot", role="owner")
    etl = b.service_account(research, "research-etl", role="member")

    b.key(payments, bob, "bob-laptop", scopes=[], last_used_days_ago=2)
    b.key(
        payments,
        grace,
        "grace-responses",
        scopes=["api.responses.write", "api.model.chat_completions.request"],
        last_used_days_ago=1,
    )
    b.key(
        payments,
        heidi,
        "heidi-old",
        scopes=["model.request", "api.model.request"],
        last_used_days_ago=45,
    )
    b.key(payments, bot, "payments-bot-prod", scopes=[], last_used_days_ago=0.5)
    b.key(
        payments,
        alice,
        "alice-never-used",
        scopes=["api.model.read", "model.read"],
        created_days_ago=20,
        last_used_days_ago=None,
    )
    carol_key = b.key(
        research,
        carol,
        "carol-notebook",
        scopes=["model.request", "api.model.request"],
        last_used_days_ago=3,
    )
    b.update_key_scopes(
        research,
        carol_key,
        ["model.request", "api.model.request", "api.model.read", "model.read"],
        days_ago=10,
    )
    b.key(research, alice, "alice-ci", scopes=None, created_days_ago=400, audit_recorded=False)
    b.key(
        research,
        etl,
        "research-etl-files",
        scopes=["api.files.read", "api.files.write"],
        last_used_days_ago=7,
    )
    b.key(legacy, bob, "legacy-batch", scopes=[], created_days_ago=170, last_used_days_ago=120)

    b.remove_member(payments, heidi)

    b.invite(
        "kate@example.com",
        "reader",
        "pending",
        sent_days_ago=2,
        expires_in_days=7,
        projects=[{"id": research, "role": "member"}],
    )
    b.invite("judy@example.com", "owner", "expired", sent_days_ago=30, expires_in_days=7)

    b.admin_key(alice, "audit-key", expires_in_days=None, last_used_days_ago=0)
    b.admin_key(frank, "old-admin", expires_in_days=30, last_used_days_ago=None)

    # Keys with an expiry come last, so the ids of everything above stay as they were.
    b.key(
        research,
        etl,
        "research-etl-rotating",
        scopes=["api.files.read", "api.files.write"],
        created_days_ago=87,
        last_used_days_ago=0.25,
        expires_in_days=3,
    )
    b.key(
        research,
        carol,
        "carol-expired",
        scopes=["model.request", "api.model.request"],
        created_days_ago=100,
        last_used_days_ago=12,
        expires_in_days=-10,
    )
    b.key(
        payments,
        grace,
        "grace-quarterly",
        scopes=["model.request", "api.model.request"],
        created_days_ago=30,
        last_used_days_ago=1,
        expires_in_days=60,
    )
    # Victor's key spent in the usage window until he left the org (it comes last, so the
    # ids above stay as they were).
    b.key(
        payments,
        victor,
        "victor-proxy",
        scopes=[],
        created_days_ago=90,
        last_used_days_ago=6,
    )
    b.remove_user(victor, at_days_ago=5)
    # What the real admin-key list does (see SimOrg.admin_list_includes_project_keys).
    b.org.admin_list_includes_project_keys = True
    return b
