"""A review workbook filled in and saved by LibreOffice still closes.

The fixture ``tests/data/review/libreoffice-filled.xlsx`` was made once by
``tests/data/review/make_libreoffice_review.py`` (which needs LibreOffice): the demo org
pulled at the fixed time, campaign AR-20261201-1 opened with a fixed clock, every row
decided by typing into the workbook in LibreOffice and saving it as .xlsx. Here the same
campaign is opened the same way (so the same items and row checksums) and the file is
closed against it; LibreOffice is not needed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from orgaudit.app.review import CloseOptions, OpenOptions, close_campaign, open_campaign
from orgaudit.review.campaign import State
from orgaudit.review.close import ReviewRejected
from orgaudit.review.evidence import pack_folder
from orgaudit.review.items import REVIEW_SHEET_COLUMNS
from orgaudit.review.results import Closed
from orgaudit.simulator.demo import demo_org
from orgaudit.store.database import SnapshotDatabase

from support import FIXED, pull_fixed

FIXTURE = Path(__file__).resolve().parent / "data" / "review" / "libreoffice-filled.xlsx"
CAMPAIGN_ID = "AR-20261201-1"
OPENED_AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CLOSED_AT = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
BY = "auditor@example.com"


@pytest.fixture
def opened(tmp_path: Path) -> Path:
    """The demo org's snapshot with campaign AR-20261201-1 open, as the fixture's was."""
    db = tmp_path / "snapshots.db"
    pull_fixed(demo_org(int(FIXED.timestamp())), db)
    with SnapshotDatabase.open(db) as handle:
        result = open_campaign(
            handle,
            OpenOptions(due=date(2026, 12, 31), out_dir=tmp_path / "out", by=BY),
            clock=lambda: OPENED_AT,
        )
    assert result.campaign.id == CAMPAIGN_ID
    return db


def _close(db: Path, workbook: Path, out: Path) -> Closed:
    with SnapshotDatabase.open(db) as handle:
        return close_campaign(
            handle, CloseOptions(workbook=workbook, by=BY), clock=lambda: CLOSED_AT
        )


def test_the_fixture_is_libreoffices_file() -> None:
    """What the other tests stand on: LibreOffice wrote it, and its dates are dates."""
    with zipfile.ZipFile(FIXTURE) as archive:
        app = archive.read("docProps/app.xml").decode()
    assert "<Application>LibreOffice" in app
    book = load_workbook(FIXTURE, read_only=True, data_only=True)
    try:
        rows = list(book["Review"].iter_rows(min_row=2, values_only=True))
    finally:
        book.close()
    dates = {row[REVIEW_SHEET_COLUMNS.index("Date")] for row in rows}
    assert dates == {datetime(2026, 12, 1)}  # a date serial, not text


def test_a_workbook_filled_in_libreoffice_closes(opened: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    filled = tmp_path / "returned" / "AR-20261201-1-review.xlsx"
    filled.parent.mkdir()
    shutil.copyfile(FIXTURE, filled)

    closed = _close(opened, filled, out)

    assert closed.decisions == {"keep": 39, "change": 1, "remove": 1, "undecided": 0}
    assert closed.state is State.CLOSED
    with SnapshotDatabase.open(opened) as handle:
        items = {str(i["item_id"]): i for i in handle.campaigns.rows("review_items", CAMPAIGN_ID)}
        decisions = handle.campaigns.rows("review_decisions", CAMPAIGN_ID)
        assert handle.campaigns.rows("review_closes", CAMPAIGN_ID)
    assert len(decisions) == len(items) == 41
    for decision in decisions:
        item = items[str(decision["item_id"])]
        where = (item["kind"], item["subject"], item["project"])
        if where == ("API key", "bob-laptop", "Payments"):
            assert (decision["decision"], decision["new_role"]) == ("remove", None)
        elif where == ("user role", "dave@example.com", "Payments"):
            assert (decision["decision"], decision["new_role"]) == ("change", "member")
        else:
            assert (decision["decision"], decision["new_role"]) == ("keep", None), where
        assert decision["justification"] == "reviewed"
        assert decision["decided_on"] == "2026-12-01"
        answering = json.loads(str(item["answering_names"]))
        expected = "alice@example.com" if "frank@example.com" in answering else "frank@example.com"
        assert decision["reviewer"] == expected, where

    # The evidence pack: its checksums are the files' own, the workbook kept as judged.
    folder = pack_folder(out, CAMPAIGN_ID)
    sums = (folder / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    listed = dict(reversed(line.split("  ", 1)) for line in sums)
    assert {
        f"{CAMPAIGN_ID}-issued.xlsx",
        "open.json",
        f"{CAMPAIGN_ID}-decisions.xlsx",
        "close.json",
        "close.md",
    } <= set(listed)
    for name, digest in listed.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    fixture_digest = hashlib.sha256(FIXTURE.read_bytes()).hexdigest()
    assert listed[f"{CAMPAIGN_ID}-decisions.xlsx"] == fixture_digest


def test_an_edited_identity_cell_in_the_libreoffice_file_is_refused(
    opened: Path, tmp_path: Path
) -> None:
    edited = tmp_path / "edited.xlsx"
    shutil.copyfile(FIXTURE, edited)
    book = load_workbook(edited)
    sheet = book["Review"]
    assert (sheet["B5"].value, sheet["C5"].value) == ("user role", "bob@example.com")
    sheet["C5"] = "mallory@example.com"
    book.save(edited)

    with pytest.raises(ReviewRejected) as refused:
        _close(opened, edited, tmp_path / "out")

    details = refused.value.details
    assert details[0] == (
        "Review!C5 (Subject): changed from 'bob@example.com' to 'mallory@example.com'"
    )
    # Nothing else is wrong: at most row 5's checksum is named besides.
    assert all(line.startswith(("Review!C5 ", "Review!S5 (Checksum)")) for line in details)
    with SnapshotDatabase.open(opened) as handle:
        assert handle.campaigns.rows("review_decisions", CAMPAIGN_ID) == []
        assert handle.campaigns.rows("review_closes", CAMPAIGN_ID) == []
