"""Schema version 6: the tables of access-review campaigns (``orgaudit review``).

Documented with the snapshot tables in ``docs/schema.md``; part of the migrations in
:mod:`orgaudit.store.schema`, never edited once shipped.
"""

from __future__ import annotations

# Version 6: access-review campaigns (``orgaudit review``). They stand beside the
# snapshots rather than under them: a campaign keeps its items, decisions and
# verifications when the snapshot it reviewed is pruned, and what was decided is never
# changed or deleted afterwards (the triggers refuse it), so the database is evidence.
_REVIEW_TABLES = {
    "review_campaigns": """
    id TEXT PRIMARY KEY,
    snapshot_id INTEGER NOT NULL,
    opened_at TEXT NOT NULL,
    opened_by TEXT NOT NULL,
    due_on TEXT NOT NULL,
    scope TEXT NOT NULL,
    tool_version TEXT NOT NULL,
    catalog_version TEXT NOT NULL,
    catalog_sha256 TEXT NOT NULL,
    roster_name TEXT,
    roster_sha256 TEXT,
    workbook_name TEXT NOT NULL,
    workbook_sha256 TEXT NOT NULL,
    pack_folder TEXT NOT NULL""",
    "review_items": """
    campaign_id TEXT NOT NULL REFERENCES review_campaigns(id),
    item_id TEXT NOT NULL,
    row_number INTEGER NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    project TEXT NOT NULL,
    project_id TEXT,
    access TEXT NOT NULL,
    how_held TEXT NOT NULL,
    principal_type TEXT,
    scope TEXT,
    binding_kind TEXT,
    role_id TEXT,
    role_name TEXT,
    via_group_id TEXT,
    answering_id TEXT,
    answering_names TEXT NOT NULL,
    findings TEXT NOT NULL,
    suggested_reviewer TEXT NOT NULL,
    roster TEXT NOT NULL,
    checksum TEXT NOT NULL,
    PRIMARY KEY (campaign_id, item_id)""",
    "review_closes": """
    campaign_id TEXT PRIMARY KEY REFERENCES review_campaigns(id),
    closed_at TEXT NOT NULL,
    closed_by TEXT NOT NULL,
    workbook_sha256 TEXT NOT NULL,
    undecided INTEGER NOT NULL,
    allowed_undecided INTEGER NOT NULL""",
    "review_decisions": """
    campaign_id TEXT NOT NULL REFERENCES review_closes(campaign_id),
    item_id TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('keep', 'change', 'remove', 'undecided')),
    new_role TEXT,
    justification TEXT,
    reviewer TEXT,
    decided_on TEXT,
    PRIMARY KEY (campaign_id, item_id),
    FOREIGN KEY (campaign_id, item_id) REFERENCES review_items(campaign_id, item_id)""",
    "review_verifications": """
    campaign_id TEXT NOT NULL REFERENCES review_closes(campaign_id),
    run INTEGER NOT NULL,
    verified_at TEXT NOT NULL,
    snapshot_id INTEGER,
    item_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'outstanding', 'unknown')),
    first_done_snapshot INTEGER,
    first_done_at TEXT,
    detail TEXT NOT NULL,
    FOREIGN KEY (campaign_id, item_id) REFERENCES review_items(campaign_id, item_id)""",
    "review_files": """
    campaign_id TEXT NOT NULL REFERENCES review_campaigns(id),
    stage TEXT NOT NULL CHECK (stage IN ('open', 'close', 'verify')),
    written_at TEXT NOT NULL,
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL""",
}
# Rows of these are written once and never changed or removed.
REVIEW_RECORDS = ("review_campaigns", "review_items", "review_closes", "review_decisions")
SCHEMA_V6 = (
    "".join(f"CREATE TABLE {name} ({body}\n);\n" for name, body in _REVIEW_TABLES.items())
    + "CREATE INDEX review_verifications_by_campaign ON review_verifications(campaign_id);\n"
    + "CREATE INDEX review_files_by_campaign ON review_files(campaign_id);\n"
    + "".join(
        f"CREATE TRIGGER {table}_never_{change} BEFORE {change.upper()} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, 'a review record is never changed or deleted'); END;\n"
        for table in REVIEW_RECORDS
        for change in ("update", "delete")
    )
)
