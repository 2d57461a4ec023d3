"""Access-review campaigns end to end, on the simulator, through the command line.

A campaign is opened on the demo org; the workbook is filled in as reviewers would (with
openpyxl: decisions, a self-review, a tampered identity cell, an undecided row); the
close refuses it naming each problem, then accepts it once fixed; the simulated org is
changed so some removals happen; a new pull is verified; and the evidence pack's hashes
are checked against the files and the database.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from tests.support import ADMIN_KEY, NOW, PULL, fast_settings, pull_and_analyze, run_cli

from orgaudit.app.review import (
    CloseOptions,
    OpenOptions,
    close_campaign,
    open_campaign,
    verify_campaigns,
)
from orgaudit.errors import UsageError
from orgaudit.review.close import ReviewRejected
from orgaudit.review.results import Verification
from orgaudit.settings import AdminKey
from orgaudit.simulator import Simulator
from orgaudit.simulator.demo import demo_builder
from orgaudit.store.database import SnapshotDatabase

TODAY = datetime.now(UTC).date()
DUE = TODAY + timedelta(days=14)
OWNER = "frank@example.com"  # an org owner: may review everyone but himself
OTHER_OWNER = "alice@example.com"


def _verify_campaign(
    db: SnapshotDatabase, campaign_id: str | None, clock: Callable[[], datetime]
) -> Verification:
    """``review verify`` where one campaign awaits it."""
    [verification] = verify_campaigns(db, campaign_id, clock)
    return verification


def _pull(sim: Simulator, db: Path) -> None:
    pull_and_analyze(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, db)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class Sheet:
    """The Review sheet of a workbook being filled in, by column name."""

    path: Path

    def __post_init__(self) -> None:
        self.book = load_workbook(self.path)
        self.sheet = self.book["Review"]
        self.columns = {cell.value: cell.column for cell in self.sheet[1]}

    def rows(self) -> range:
        return range(2, self.sheet.max_row + 1)

    def get(self, row: int, column: str) -> Any:
        return self.sheet.cell(row, self.columns[column]).value

    def set(self, row: int, column: str, value: object) -> None:
        self.sheet.cell(row, self.columns[column]).value = value

    def find(self, **wanted: str) -> int:
        for row in self.rows():
            if all(self.get(row, column.replace("_", " ").capitalize()) == value
                   for column, value in wanted.items()):  # fmt: skip
                return row
        raise AssertionError(f"no row {wanted}")

    def save(self, path: Path) -> Path:
        self.book.save(path)
        return path


def _decide(sheet: Sheet, row: int, decision: str, reviewer: str = OWNER, role: str = "") -> None:
    sheet.set(row, "Decision", decision)
    sheet.set(row, "New role", role or None)
    sheet.set(row, "Justification", f"{decision.lower()}: reviewed with the team lead")
    sheet.set(row, "Reviewer", reviewer)
    sheet.set(row, "Date", TODAY)


@dataclass(frozen=True)
class Story:
    """What the campaign's story left behind, for the tests that read it."""

    folder: Path
    db: Path
    workbook: Path
    refused: Any
    closed: Any
    verified: Any
    status: Any
    pruned: Any
    rows: dict[str, int]


def _fill(sheet: Sheet) -> dict[str, int]:
    """Decide every row as an org owner would, with the cases the story needs."""
    rows = {
        "bob_key": sheet.find(kind="API key", subject="bob-laptop"),
        "dave_payments": sheet.find(
            kind="user role", subject="dave@example.com", project="Payments"
        ),
        "peggy_org": sheet.find(kind="user role", subject="peggy@example.com"),
        "erin_group": sheet.find(subject="erin@example.com", access="Key Manager"),
        "frank_org": sheet.find(kind="user role", subject=OWNER),
        "old_admin": sheet.find(kind="admin key", subject="old-admin"),
        "ivan": sheet.find(kind="user role", subject="ivan@example.com", project="Research"),
        "carol": sheet.find(kind="user role", subject="carol@example.com", project="Research"),
    }
    for row in sheet.rows():
        _decide(sheet, row, "Keep")
    _decide(sheet, rows["bob_key"], "Remove")
    _decide(sheet, rows["dave_payments"], "Change", role="member")
    _decide(sheet, rows["peggy_org"], "Remove")
    _decide(sheet, rows["erin_group"], "Remove")
    _decide(sheet, rows["old_admin"], "Remove", reviewer=OTHER_OWNER)
    # frank's own org role: frank signs it (a self-review); the fix is another owner
    _decide(sheet, rows["frank_org"], "Keep", reviewer=OWNER.upper())
    return rows


def tell_story(tmp_path_factory: pytest.TempPathFactory) -> Story:
    """The campaign's whole story, through the command line (the session's ``story``
    fixture, in conftest.py: this module and test_review_schema read the same one)."""
    folder = tmp_path_factory.mktemp("review")
    db = folder / "orgaudit.db"
    b = demo_builder(NOW)
    with Simulator(b.org, admin_key=ADMIN_KEY) as sim:
        _pull(sim, db)
        opened = run_cli(
            "review", "open", "--due", DUE.isoformat(), "--by", "auditor@example.com",
            "--db", db, "--out", folder, cwd=folder,
        )  # fmt: skip
        assert opened.returncode == 0, opened.stderr
        campaign_id = f"AR-{TODAY:%Y%m%d}-1"
        workbook = folder / f"{campaign_id}-review.xlsx"
        sheet = Sheet(workbook)
        rows = _fill(sheet)
        # a tampered identity cell, an undecided row, a role that does not exist, a date
        # before the campaign
        sheet.set(rows["carol"], "Access", "viewer")
        for column in ("Decision", "New role", "Justification", "Reviewer", "Date"):
            sheet.set(rows["ivan"], column, None)
        _decide(sheet, rows["dave_payments"], "Change", role="superuser")
        sheet.set(rows["bob_key"], "Date", date(2020, 1, 1))
        filled = sheet.save(folder / "filled.xlsx")
        refused = run_cli("review", "close", filled, "--db", db, cwd=folder)

        sheet.set(rows["carol"], "Access", "member")
        _decide(sheet, rows["frank_org"], "Keep", reviewer=OTHER_OWNER)
        _decide(sheet, rows["dave_payments"], "Change", role="Member")
        _decide(sheet, rows["bob_key"], "Remove")
        sheet.save(filled)
        still_undecided = run_cli("review", "close", filled, "--db", db, cwd=folder)
        assert still_undecided.returncode == 2
        assert "1 row undecided (row " in still_undecided.stderr
        closed = run_cli(
            "review", "close", filled, "--allow-undecided", "--by", "auditor@example.com",
            "--db", db, cwd=folder,
        )  # fmt: skip

        # The org acts on some decisions: bob's key deleted, dave made a member, peggy
        # removed; erin's group role and the old admin key are left in place.
        b.delete_key("proj_payments", b.key_id("proj_payments", "bob-laptop"))
        b.set_project_role("proj_payments", "user_dave", "member")
        b.remove_user("user_peggy")
        _pull(sim, db)
    verified = run_cli("review", "verify", "--db", db, cwd=folder)
    status = run_cli("review", "status", "--json", "--db", db, cwd=folder)
    pruned = run_cli("snapshots", "--prune", "1", "--db", db, cwd=folder)
    return Story(folder, db, workbook, refused, closed, verified, status, pruned, rows)


def test_the_close_names_every_problem_and_stores_nothing(story: Story) -> None:
    assert story.refused.returncode == 2
    lines = story.refused.stderr.splitlines()
    rows = story.rows
    expected = [
        f"Review!G{rows['carol']} (Access): changed from 'member' to 'viewer'",
        f"Review!O{rows['dave_payments']} (New role): 'superuser' is not a role this can change "
        "to in Payments (owner, member, viewer)",
        f"Review!R{rows['bob_key']} (Date): 2020-01-01 is outside the campaign",
        f"Review!Q{rows['frank_org']} (Reviewer): 'FRANK@EXAMPLE.COM' reviews their own access",
        "Review: 1 row undecided",
    ]
    for wanted in expected:
        assert any(wanted in line for line in lines), (wanted, lines)
    assert "nothing was stored" in lines[-1]
    assert "Traceback" not in story.refused.stderr


def test_the_accepted_close_stores_each_decision(story: Story) -> None:
    assert story.closed.returncode == 0, story.closed.stderr
    assert "2 change" not in story.closed.stdout  # one change, three removals, one undecided
    assert "1 change, 4 remove, 1 undecided" in story.closed.stdout
    with SnapshotDatabase.open(story.db) as db:
        [campaign] = db.campaigns.all()
        decisions = {
            d["item_id"]: d for d in db.campaigns.rows("review_decisions", str(campaign["id"]))
        }
        items = {i["subject"] + "|" + i["project"] + "|" + i["access"]: i
                 for i in db.campaigns.rows("review_items", str(campaign["id"]))}  # fmt: skip
    dave = decisions[items["dave@example.com|Payments|viewer"]["item_id"]]
    assert (dave["decision"], dave["new_role"]) == ("change", "member")  # as the org spells it
    assert dave["reviewer"] == OWNER and dave["decided_on"] == TODAY.isoformat()
    assert sum(d["decision"] == "undecided" for d in decisions.values()) == 1
    assert len(decisions) == len(items)


def test_a_second_close_is_refused(story: Story) -> None:
    again = run_cli(
        "review", "close", story.folder / "filled.xlsx", "--allow-undecided", "--db", story.db,
        cwd=story.folder,
    )  # fmt: skip
    assert again.returncode == 2
    assert "is closed already" in again.stderr


def test_decisions_are_never_changed_or_deleted_in_the_database(story: Story) -> None:
    conn = sqlite3.connect(story.db)
    try:
        for statement in (
            "UPDATE review_decisions SET decision = 'keep'",
            "DELETE FROM review_decisions",
            "UPDATE review_items SET subject = 'x'",
            "DELETE FROM review_campaigns",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="never changed or deleted"):
                conn.execute(statement)
    finally:
        conn.close()


def test_verify_shows_what_is_done_and_what_is_outstanding(story: Story) -> None:
    assert story.verified.returncode == 0, story.verified.stderr  # not past due: no nagging yet
    out = story.verified.stdout
    assert "3 done, 2 outstanding, 0 unknown of 5 removal(s) and change(s)" in out
    assert "still holds Key Manager in Payments" in out
    assert "the admin key is still listed" in out
    summary = json.loads((_pack(story) / "verification.json").read_text())
    by_subject = {item["subject"]["name"]: item for item in summary["items"]}
    assert by_subject["bob-laptop"]["status"] == "done"
    assert by_subject["bob-laptop"]["first_seen_done_snapshot"] == 2
    assert by_subject["dave@example.com"]["status"] == "done"
    assert by_subject["peggy@example.com"]["status"] == "done"
    assert by_subject["erin@example.com"]["status"] == "outstanding"


def test_status_lists_the_campaign_and_what_is_outstanding(story: Story) -> None:
    assert story.status.returncode == 0, story.status.stderr
    [campaign] = json.loads(story.status.stdout)["campaigns"]
    assert campaign["state"] == "closed"
    assert (campaign["removals_and_changes"], campaign["done"]) == (5, 3)
    assert {row["status"] for row in campaign["outstanding"]} == {"outstanding"}


def test_prune_never_removes_a_snapshot_an_unverified_campaign_uses(story: Story) -> None:
    assert story.pruned.returncode == 0, story.pruned.stderr
    assert "kept snapshot(s) 1: an access review still needs them" in story.pruned.stdout
    with SnapshotDatabase.open(story.db) as db:
        assert [s.id for s in db.snapshots()] == [1, 2]


def _pack(story: Story) -> Path:
    [folder] = story.folder.glob("review-AR-*")
    return folder


def test_the_evidence_pack_hashes_match_the_files_and_the_database(story: Story) -> None:
    pack = _pack(story)
    sums = dict(
        reversed(line.split("  ", 1)) for line in (pack / "SHA256SUMS").read_text().splitlines()
    )
    assert set(sums) == {
        f"{pack.name[7:]}-issued.xlsx", "open.json", f"{pack.name[7:]}-decisions.xlsx",
        "close.json", "close.md", "verification.json", "verification.md",
    }  # fmt: skip
    for name, digest in sums.items():
        assert _sha256(pack / name) == digest, name
    manifest = json.loads((pack / "manifest.json").read_text())
    assert {f["name"]: f["sha256"] for f in manifest["files"]} == sums
    with SnapshotDatabase.open(story.db) as db:
        [campaign] = db.campaigns.all()
        [close] = db.campaigns.rows("review_closes", str(campaign["id"]))
        recorded = {
            f["name"]: f["sha256"] for f in db.campaigns.rows("review_files", str(campaign["id"]))
        }
    assert recorded == sums
    assert campaign["workbook_sha256"] == sums[f"{campaign['id']}-issued.xlsx"]
    # The pack holds the workbook exactly as it was closed
    assert close["workbook_sha256"] == _sha256(story.folder / "filled.xlsx")


def test_the_close_summary_tells_an_auditor_what_was_decided(story: Story) -> None:
    pack = _pack(story)
    summary = json.loads((pack / "close.json").read_text())
    assert summary["population"] == {
        "user_role": 24,
        "service_account_role": 2,
        "api_key": 13,
        "admin_key": 2,
    }
    # The demo's archived project: its lists cannot be read, so its members are not there
    assert summary["completeness"].endswith(
        "items there may be missing: 3 list(s) of archived projects (the API lists no members "
        "of an archived project)."
    )
    assert summary["decisions"] == {"keep": 35, "change": 1, "remove": 4, "undecided": 1}
    assert {r["reviewer"] for r in summary["reviewers"]} == {OWNER, OTHER_OWNER}
    assert {(c["subject"]["name"], c["decision"]) for c in summary["requested_changes"]} == {
        ("bob-laptop", "remove"), ("dave@example.com", "change"), ("peggy@example.com", "remove"),
        ("erin@example.com", "remove"), ("old-admin", "remove"),
    }  # fmt: skip
    text = (pack / "close.md").read_text()
    assert "Closed with --allow-undecided: 1 item(s) were left undecided" in text
    assert "| `I-" in text and "`ivan@example.com`" in text  # outside text in code spans


def test_a_saved_query_reads_the_campaign_tables(story: Story, tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "review-removals.sql").write_text(
        "-- title: Review removals\n-- answers: What did the review decide to remove?\n"
        "SELECT i.subject, d.decision FROM review_decisions d JOIN review_items i "
        "USING (campaign_id, item_id) WHERE d.decision = 'remove' ORDER BY i.subject;\n"
    )
    ran = run_cli(
        "query", "review-removals", "--queries", pack, "--format", "csv", "--db", story.db,
        cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip().splitlines()[1:] == [
        "bob-laptop,remove",
        "erin@example.com,remove",
        "old-admin,remove",
        "peggy@example.com,remove",
    ]


# -- the rules, one at a time, in process ------------------------------------------------


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("review-rules") / "orgaudit.db"
    with Simulator(demo_builder(NOW).org, admin_key=ADMIN_KEY) as sim:
        _pull(sim, db)
    return db


def _copy_db(db: Path, tmp_path: Path) -> Path:
    tmp_path.mkdir(exist_ok=True)
    copy = tmp_path / "orgaudit.db"
    copy.write_bytes(db.read_bytes())
    copy.chmod(0o600)
    return copy


def _clock(day: date) -> Callable[[], datetime]:
    return lambda: datetime.combine(day, datetime.min.time(), tzinfo=UTC)


def test_open_narrowed_to_a_project_holds_only_its_items(demo_db: Path, tmp_path: Path) -> None:
    db_path = _copy_db(demo_db, tmp_path)
    with SnapshotDatabase.open(db_path) as db:
        opened = open_campaign(db, OpenOptions(DUE, tmp_path, projects=("research",), by="a"))
        items = db.campaigns.rows("review_items", opened.campaign.id)
    assert {item["project"] for item in items} == {"Research"}
    assert opened.campaign.projects == ("proj_research",)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"due": TODAY - timedelta(days=1)}, "is in the past"),
        ({"projects": ("Nowhere",)}, "no project 'Nowhere'"),
        ({"snapshot_id": 9}, "no snapshot 9"),
    ],
)
def test_open_refuses_what_it_cannot_do(
    demo_db: Path, tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    db_path = _copy_db(demo_db, tmp_path)
    with SnapshotDatabase.open(db_path) as db:
        with pytest.raises(UsageError, match=message):
            open_campaign(db, OpenOptions(**{"due": DUE, "out_dir": tmp_path, **options}))
        assert db.campaigns.all() == []
    assert not list(tmp_path.glob("review-*/*"))


def _opened(db_path: Path, tmp_path: Path) -> tuple[Path, str]:
    with SnapshotDatabase.open(db_path) as db:
        opened = open_campaign(db, OpenOptions(DUE, tmp_path, by="auditor"), clock=_clock(TODAY))
    return opened.workbook, opened.campaign.id


def _all_kept(db_path: Path, tmp_path: Path) -> Sheet:
    """A campaign opened on ``db_path``, its workbook with every row decided Keep."""
    workbook, _ = _opened(db_path, tmp_path)
    sheet = Sheet(workbook)
    for row in sheet.rows():
        _decide(sheet, row, "Keep", reviewer="auditor@example.com")
    return sheet


def _close(db_path: Path, workbook: Path, tmp_path: Path, **options: Any) -> Any:
    with SnapshotDatabase.open(db_path) as db:
        return close_campaign(
            db, CloseOptions(workbook, **options), clock=_clock(TODAY + timedelta(days=1))
        )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda s, r: s.set(r, "Decision", "Maybe"),
            "(Decision): 'Maybe' is not one of Keep, Change, Remove",
        ),
        (lambda s, r: s.set(r, "Justification", None), "(Justification): empty"),
        (lambda s, r: s.set(r, "Reviewer", None), "(Reviewer): empty"),
        (lambda s, r: s.set(r, "Date", "next week"), "(Date): 'next week' is not a date"),
        (lambda s, r: s.set(r, "New role", "owner"), "(New role): only a Change names a new role"),
        (lambda s, r: s.set(r, "Item id", "I-000000000000"), "is not an item of campaign"),
        (lambda s, r: s.sheet.delete_rows(r), "is missing: rows may not be deleted"),
        (lambda s, r: s.set(r, "Checksum", "0" * 16), "(Checksum): not this row's as issued"),
        (lambda s, r: s.set(r, "Decision", '="Keep"'), "(Decision): holds a formula"),
        (
            lambda s, r: s.set(r, "Reviewer", "Frank"),
            "(Reviewer): 'Frank' is not one e-mail address alone",
        ),
        (lambda s, r: s.set(r, "Reviewer", "a@x.org\r\nb"), "is not one e-mail address alone"),
        (
            lambda s, r: [s.set(r, c, None) for c in ("Decision", "Reviewer", "Date")],
            "(Decision): empty, but a justification is written",
        ),
    ],
)
def test_each_rule_of_the_close_names_its_cell(
    demo_db: Path, tmp_path: Path, change: Callable[[Sheet, int], None], problem: str
) -> None:
    db_path = _copy_db(demo_db, tmp_path)
    sheet = _all_kept(db_path, tmp_path)
    campaign_id = f"AR-{TODAY:%Y%m%d}-1"
    change(sheet, 3)
    filled = sheet.save(tmp_path / "filled.xlsx")
    with pytest.raises(ReviewRejected) as refused:
        _close(db_path, filled, tmp_path)
    assert any(problem in detail for detail in refused.value.details), refused.value.details
    with SnapshotDatabase.open(db_path) as db:
        assert db.campaigns.rows("review_closes", campaign_id) == []
    assert not (tmp_path / f"review-{campaign_id}" / "close.json").exists()


def test_a_key_cannot_be_changed_only_kept_or_removed(demo_db: Path, tmp_path: Path) -> None:
    db_path = _copy_db(demo_db, tmp_path)
    sheet = _all_kept(db_path, tmp_path)
    key = sheet.find(kind="API key", subject="bob-laptop")
    _decide(sheet, key, "Change", reviewer="auditor@example.com", role="member")
    with pytest.raises(ReviewRejected) as refused:
        _close(db_path, sheet.save(tmp_path / "filled.xlsx"), tmp_path)
    assert f"Review!N{key} (Decision): a key has no role to change" in "\n".join(
        refused.value.details
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a workbook", "cannot read"),
        (b"PK\x03\x04broken zip", "cannot read"),
    ],
)
def test_a_file_that_is_no_review_workbook_is_one_line(
    demo_db: Path, tmp_path: Path, content: bytes, message: str
) -> None:
    db_path = _copy_db(demo_db, tmp_path)
    _opened(db_path, tmp_path)
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(content)
    ran = run_cli("review", "close", bad, "--db", db_path, cwd=tmp_path)
    assert ran.returncode == 2
    assert ran.stderr.count("\n") == 1 and message in ran.stderr


def test_a_workbook_without_the_review_sheet_is_one_line(demo_db: Path, tmp_path: Path) -> None:
    db_path = _copy_db(demo_db, tmp_path)
    workbook, _ = _opened(db_path, tmp_path)
    sheet = Sheet(workbook)
    sheet.sheet.title = "Decisions"
    with pytest.raises(UsageError, match="has no sheet 'Review'"):
        _close(db_path, sheet.save(tmp_path / "renamed.xlsx"), tmp_path)


# -- a roster, and names from a hostile org ------------------------------------------------


def test_a_roster_pre_marks_the_rows_of_leavers_and_strangers(
    demo_db: Path, tmp_path: Path
) -> None:
    db_path = _copy_db(demo_db, tmp_path)
    staff = ("alice", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "oscar")
    people = [f"{name}@example.com,active" for name in staff]
    roster = tmp_path / "hr.csv"
    roster.write_text("email,status\n" + "\n".join(people) + "\npeggy@example.com,terminated\n")
    with SnapshotDatabase.open(db_path) as db:
        opened = open_campaign(db, OpenOptions(DUE, tmp_path, by="a", roster_path=roster))
        items = db.campaigns.rows("review_items", opened.campaign.id)
    marked = {(i["subject"], i["roster"]) for i in items if i["roster"]}
    assert ("peggy@example.com", "terminated in hr.csv") in marked
    assert ("bob@example.com", "not in hr.csv") in marked
    assert ("bob-laptop", "not in hr.csv") in marked  # the keys they own with them
    assert {subject for subject, _ in marked} <= {
        "peggy@example.com",
        "bob@example.com",
        "bob-laptop",
        "legacy-batch",
    }
    sheet = Sheet(opened.workbook)
    peggy = sheet.find(kind="user role", subject="peggy@example.com")
    assert sheet.get(peggy, "Decision") == "Remove"
    assert sheet.get(peggy, "Justification") == "roster: terminated in hr.csv"
    assert sheet.get(peggy, "Reviewer") is None  # a reviewer still signs it
    assert opened.campaign.roster_name == "hr.csv"
    assert opened.campaign.roster_sha256 == _sha256(roster)


HOSTILE_NAME = '=HYPERLINK("http://x","y")\x1b[31m\u202e'


def test_hostile_names_go_through_the_review_unchanged_and_inert(tmp_path: Path) -> None:
    from orgaudit.simulator.org import OrgBuilder

    builder = OrgBuilder("org_hostile", NOW)
    user = builder.user(HOSTILE_NAME, "mallory@example.com", user_id="user_mallory")
    owner = builder.user("Olive Owner", "olive@example.com", user_id="user_olive", role="owner")
    project = builder.project("@SUM(1)\x07", project_id="proj_formula")
    builder.member(project, user, "viewer")
    builder.member(project, owner, "owner")
    builder.key(project, user, "+cmd|' /C calc'!A0", scopes=[], last_used_days_ago=None)
    db = tmp_path / "hostile.db"
    with Simulator(builder.org, admin_key=ADMIN_KEY) as sim:
        _pull(sim, db)
    opened = run_cli("review", "open", "--due", DUE.isoformat(), "--db", db, "--out", tmp_path,
                     "--project", "proj_formula", cwd=tmp_path)  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    assert "\x1b" not in opened.stdout and "\x07" not in opened.stdout
    [workbook] = tmp_path.glob("AR-*-review.xlsx")
    sheet = Sheet(workbook)
    for row in sheet.rows():
        _decide(sheet, row, "Remove", reviewer="olive@example.com")
    olive = sheet.find(kind="user role", subject="olive@example.com")
    _decide(sheet, olive, "Keep", reviewer="auditor@example.com")
    filled = sheet.save(tmp_path / "filled.xlsx")
    closed = run_cli("review", "close", filled, "--db", db, cwd=tmp_path)
    assert closed.returncode == 0, closed.stderr
    verified = run_cli("review", "verify", "--db", db, cwd=tmp_path)
    assert "\x1b" not in verified.stdout and "\x07" not in verified.stdout
    [pack] = tmp_path.glob("review-AR-*")
    text = (pack / "close.md").read_text()
    assert "\x1b" not in text and "\u202e" not in text


def test_verify_exits_1_while_anything_is_outstanding_past_the_due_date(
    demo_db: Path, tmp_path: Path
) -> None:
    db_path = _copy_db(demo_db, tmp_path)
    sheet = _all_kept(db_path, tmp_path)
    _decide(sheet, sheet.find(kind="API key", subject="bob-laptop"), "Remove", "auditor@x.org")
    _close(db_path, sheet.save(tmp_path / "filled.xlsx"), tmp_path)
    with SnapshotDatabase.open(db_path) as db:
        on_time = _verify_campaign(db, None, clock=_clock(DUE))
        late = _verify_campaign(db, None, clock=_clock(DUE + timedelta(days=1)))
    assert (on_time.not_done, on_time.exit_code) == (1, 0)
    assert late.past_due and late.not_done == 1
    assert late.exit_code == 1


@pytest.mark.parametrize(
    ("signed", "whose"),
    [
        ("Alice Admin <alice@example.com>", "is not one e-mail address alone"),
        ("zed@example.com <alice@example.com>", "is not one e-mail address alone"),
        ("ALICE+review@Example.com", "their own access"),
        ("\uff41lice@example.com", "their own access"),  # a full-width a: NFKC folds it
    ],
)
def test_a_reviewer_cannot_sign_their_own_access_under_another_form(
    demo_db: Path, tmp_path: Path, signed: str, whose: str
) -> None:
    db_path = _copy_db(demo_db, tmp_path)
    sheet = _all_kept(db_path, tmp_path)
    alice = sheet.find(kind="user role", subject="alice@example.com", project="Payments")
    _decide(sheet, alice, "Keep", reviewer=signed)
    with pytest.raises(ReviewRejected) as refused:
        _close(db_path, sheet.save(tmp_path / "filled.xlsx"), tmp_path)
    assert [d for d in refused.value.details if f"Review!Q{alice} (Reviewer)" in d and whose in d]


def test_a_role_held_through_a_group_cannot_be_changed_for_one_member(
    demo_db: Path, tmp_path: Path
) -> None:
    db_path = _copy_db(demo_db, tmp_path)
    sheet = _all_kept(db_path, tmp_path)
    erin = sheet.find(subject="erin@example.com", access="Key Manager")
    _decide(sheet, erin, "Change", reviewer="auditor@example.com", role="member")
    with pytest.raises(ReviewRejected) as refused:
        _close(db_path, sheet.save(tmp_path / "filled.xlsx"), tmp_path)
    assert f"Review!N{erin} (Decision): the role is held through a group" in "\n".join(
        refused.value.details
    )


def test_rows_past_the_size_the_sheet_declares_are_still_read(
    demo_db: Path, tmp_path: Path
) -> None:
    db_path = _copy_db(demo_db, tmp_path)
    sheet = _all_kept(db_path, tmp_path)
    filled = sheet.save(tmp_path / "filled.xlsx")
    # A row added after the last, while the sheet still declares its old size (A1:S41)
    import zipfile

    with zipfile.ZipFile(filled) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    review = "xl/worksheets/sheet2.xml"  # the second sheet: Review
    xml = parts[review].decode()
    extra = '<row r="60"><c r="A60" t="inlineStr"><is><t>I-000000000000</t></is></c></row>'
    parts[review] = xml.replace("</sheetData>", extra + "</sheetData>").encode()
    tampered = tmp_path / "tampered.xlsx"
    with zipfile.ZipFile(tampered, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    with pytest.raises(ReviewRejected) as refused:
        _close(db_path, tampered, tmp_path)
    assert any("Review!A60 (Item id)" in d for d in refused.value.details)


def test_a_workbook_with_macros_is_refused(demo_db: Path, tmp_path: Path) -> None:
    db_path = _copy_db(demo_db, tmp_path)
    workbook, _ = _opened(db_path, tmp_path)
    import zipfile

    with_macros = tmp_path / "macros.xlsx"
    with zipfile.ZipFile(workbook) as source, zipfile.ZipFile(with_macros, "w") as target:
        for name in source.namelist():
            target.writestr(name, source.read(name))
        target.writestr("xl/vbaProject.bin", b"\0" * 64)
    with pytest.raises(UsageError, match="holds macros"):
        _close(db_path, with_macros, tmp_path)


def test_a_fifo_given_as_the_workbook_is_refused_at_once(demo_db: Path, tmp_path: Path) -> None:
    import os

    db_path = _copy_db(demo_db, tmp_path)
    _opened(db_path, tmp_path)
    fifo = tmp_path / "pipe.xlsx"
    os.mkfifo(fifo)
    ran = run_cli("review", "close", fifo, "--db", db_path, cwd=tmp_path)
    assert ran.returncode == 2
    assert "is not a regular file" in ran.stderr


def test_a_failed_step_leaves_the_pack_as_it_was(
    demo_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_path = _copy_db(demo_db, tmp_path)
    sheet = _all_kept(db_path, tmp_path)
    campaign_id = f"AR-{TODAY:%Y%m%d}-1"
    _decide(sheet, sheet.find(kind="API key", subject="bob-laptop"), "Remove", "auditor@x.org")
    _close(db_path, sheet.save(tmp_path / "filled.xlsx"), tmp_path)
    with SnapshotDatabase.open(db_path) as db:
        _verify_campaign(db, None, clock=_clock(TODAY))
    pack = tmp_path / f"review-{campaign_id}"
    before = {path.name: path.read_bytes() for path in pack.iterdir()}

    from orgaudit.store.database import CampaignStore

    def locked(*_args: object) -> None:
        raise UsageError("the database is locked (simulated)")

    monkeypatch.setattr(CampaignStore, "verified", locked)
    with SnapshotDatabase.open(db_path) as db, pytest.raises(UsageError, match="locked"):
        _verify_campaign(db, None, clock=_clock(TODAY + timedelta(days=1)))
    assert {path.name: path.read_bytes() for path in pack.iterdir()} == before


def test_a_pack_already_there_is_never_written_over(demo_db: Path, tmp_path: Path) -> None:
    _opened(_copy_db(demo_db, tmp_path / "one"), tmp_path)
    (tmp_path / "two").mkdir()
    other = _copy_db(demo_db, tmp_path / "two")
    with SnapshotDatabase.open(other) as db, pytest.raises(UsageError, match="exists already"):
        open_campaign(db, OpenOptions(DUE, tmp_path, by="auditor"), clock=_clock(TODAY))


def test_verify_never_calls_done_what_a_snapshot_cannot_prove(tmp_path: Path) -> None:
    """A removal is done only when the role is held by no route: not when a group role
    was swapped for a direct one, nor when the role was renamed; and an archived
    project's members cannot be listed, so its removals are unknown."""
    db_path = tmp_path / "orgaudit.db"
    b = demo_builder(NOW)
    with Simulator(b.org, admin_key=ADMIN_KEY) as sim:
        _pull(sim, db_path)
        sheet = _all_kept(db_path, tmp_path)
        erin = sheet.find(subject="erin@example.com", access="Key Manager")
        oscar = sheet.find(subject="oscar@example.com", access="Responses caller")
        carol = sheet.find(kind="user role", subject="carol@example.com", project="Research")
        for row in (erin, oscar, carol):
            _decide(sheet, row, "Remove", reviewer="auditor@example.com")
        _close(db_path, sheet.save(tmp_path / "filled.xlsx"), tmp_path)

        key_manager = next(
            r["id"] for r in b.org.project_roles["proj_payments"] if r["name"] == "Key Manager"
        )
        b.remove_group_member("group_000002", "user_erin")  # out of the group ...
        b.assign_project_role("proj_payments", "user_erin", key_manager)  # ... in directly
        caller = next(
            r for r in b.org.project_roles["proj_research"] if r["name"] == "Responses caller"
        )
        caller["name"] = "Responses user"  # renamed, still held
        research = next(p for p in b.org.projects if p["id"] == "proj_research")
        research.update(status="archived", archived_at=NOW)
        _pull(sim, db_path)
    with SnapshotDatabase.open(db_path) as db:
        verified = {v.asked: v for v in _verify_campaign(db, None, clock=_clock(TODAY)).items}
    erin_v = next(v for asked, v in verified.items() if "erin" in asked)
    oscar_v = next(v for asked, v in verified.items() if "oscar" in asked)
    carol_v = next(v for asked, v in verified.items() if "carol" in asked)
    assert erin_v.status == "outstanding" and "project RBAC role" in erin_v.detail
    assert carol_v.status == "unknown" and "archived" in carol_v.detail
    # Research is archived too, so oscar's role there cannot be seen either way
    assert oscar_v.status == "unknown"


def test_a_renamed_role_is_the_same_role(tmp_path: Path) -> None:
    db_path = tmp_path / "orgaudit.db"
    b = demo_builder(NOW)
    with Simulator(b.org, admin_key=ADMIN_KEY) as sim:
        _pull(sim, db_path)
        sheet = _all_kept(db_path, tmp_path)
        oscar = sheet.find(subject="oscar@example.com", access="Responses caller")
        _decide(sheet, oscar, "Remove", reviewer="auditor@example.com")
        _close(db_path, sheet.save(tmp_path / "filled.xlsx"), tmp_path)
        caller = next(
            r for r in b.org.project_roles["proj_research"] if r["name"] == "Responses caller"
        )
        caller["name"] = "Responses user"
        _pull(sim, db_path)
    with SnapshotDatabase.open(db_path) as db:
        [verification] = _verify_campaign(db, None, clock=_clock(TODAY)).items
    assert verification.status == "outstanding"
    assert "still holds Responses caller" in verification.detail
