"""``orgaudit review``: open a campaign, close it with the reviewers' decisions, verify
its removals against later snapshots, and say where each campaign stands.

Each step writes its files into the campaign's evidence pack first and stores its
records after, in one transaction; if storing fails, the files it wrote are removed, so
the pack and the database never disagree. Only here is the clock read: each step's
time is passed down.
"""

from __future__ import annotations

import getpass
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path

from orgaudit import __version__
from orgaudit.checks import CHECKS, CHECKS_BY_ID
from orgaudit.checks.config import load_settings
from orgaudit.checks.findings import run_checks
from orgaudit.checks.roster import roster_standing
from orgaudit.errors import UsageError
from orgaudit.files import private_folder, replacing, write_private_text
from orgaudit.model.analysis import load_analysis
from orgaudit.review.campaign import Campaign, State, Verified
from orgaudit.review.close import judge
from orgaudit.review.evidence import (
    Coverage,
    close_markdown,
    close_summary,
    open_summary,
    pack_folder,
    sha256_of,
    verification_markdown,
    verification_summary,
    write_json,
    write_manifest,
)
from orgaudit.review.items import campaign_items, existing_roles, item_records, select_projects
from orgaudit.review.results import CampaignStatus, Closed, Opened, Verification
from orgaudit.review.verify import verify_items
from orgaudit.review.workbook import read_review_workbook, write_review_workbook
from orgaudit.store.database import SnapshotDatabase

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


def _who(by: str | None) -> str:
    """Who runs the step: ``--by``, else the login name."""
    name = by if by is not None else getpass.getuser()
    if not name.strip():
        raise UsageError("--by is empty: name who runs the review step")
    return name.strip()


@dataclass(frozen=True)
class OpenOptions:
    """What ``review open`` was told."""

    due: date
    out_dir: Path = Path("reports")
    snapshot_id: int | None = None
    projects: tuple[str, ...] = ()
    by: str | None = None
    roster_path: Path | None = None
    config_path: Path | None = None
    catalog_path: Path | None = None


def open_campaign(db: SnapshotDatabase, options: OpenOptions, clock: Clock = _now) -> Opened:
    """Open a campaign on a snapshot: write the review workbook and its manifest, store
    the campaign and its items."""
    now = clock()
    if options.due < now.date():
        raise UsageError(f"--due {options.due} is in the past")
    _must_write(db, "open a campaign")
    settings = load_settings(
        options.config_path, frozenset(CHECKS_BY_ID), roster=options.roster_path
    )
    analysis = load_analysis(db, options.snapshot_id, options.catalog_path)
    projects = select_projects(analysis, options.projects)
    campaign_id = _next_id(db, now)
    standing = None
    if settings.roster is not None:
        standing = roster_standing(analysis.snapshot["users"], settings.roster)
    findings = run_checks(CHECKS, analysis, settings)
    items = campaign_items(analysis, findings, campaign_id, projects, standing)
    if items.empty:
        raise UsageError(f"snapshot {analysis.snapshot.id} holds nothing to review in that scope")
    folder = private_folder(pack_folder(options.out_dir, campaign_id))
    # The pack keeps the workbook as issued; the reviewers fill in a copy beside it.
    issued = folder / f"{campaign_id}-issued.xlsx"
    workbook = options.out_dir / f"{campaign_id}-review.xlsx"
    campaign = Campaign(
        id=campaign_id,
        snapshot_id=analysis.snapshot.id,
        opened_at=now,
        opened_by=_who(options.by),
        due_on=options.due,
        projects=projects,
        tool_version=__version__,
        catalog_version=analysis.catalog.version,
        catalog_sha256=analysis.catalog.digest,
        workbook_name=issued.name,
        roster_name=None if settings.roster is None else settings.roster.name,
        roster_sha256=None if settings.roster is None else settings.roster.sha256,
    )
    with _undone_on_failure() as written:  # the manifest follows once the campaign is stored
        names = dict(
            zip(
                analysis.projects["project_id"],
                analysis.projects["project_name"].astype(str),
                strict=True,
            )
        )
        written.append(
            write_review_workbook(
                issued, campaign, items, existing_roles(analysis), names, analysis.snapshot.as_of
            )
        )
        campaign = _with_workbook(campaign, sha256_of(issued))
        records = item_records(items, campaign_id)
        coverage = Coverage.of(
            analysis.snapshot.coverage, analysis.snapshot.as_of, _base_url(db, analysis.snapshot.id)
        )
        written.append(write_json(folder / "open.json", open_summary(campaign, records, coverage)))
        files = _file_records(campaign_id, "open", written, now)
        written.append(_copy(issued, workbook))
        db.campaigns.open(campaign.record(), records, files)
    write_manifest(folder, campaign, _pack_files(db, campaign_id))
    return Opened(campaign, len(records), sum(1 for r in records if r["roster"]), workbook, folder)


def _with_workbook(campaign: Campaign, sha256: str) -> Campaign:
    return replace(campaign, workbook_sha256=sha256)


@dataclass(frozen=True)
class CloseOptions:
    """What ``review close`` was told."""

    workbook: Path
    out_dir: Path = Path("reports")
    allow_undecided: bool = False
    by: str | None = None
    campaign_id: str | None = None
    catalog_path: Path | None = None


def close_campaign(db: SnapshotDatabase, options: CloseOptions, clock: Clock = _now) -> Closed:
    """Read the filled workbook back, judge it, store its decisions and write the evidence."""
    now = clock()
    _must_write(db, "close a campaign")
    filled = read_review_workbook(options.workbook)
    if options.campaign_id is not None and options.campaign_id != filled.campaign_id:
        raise UsageError(
            f"{options.workbook} is the workbook of campaign {filled.campaign_id}, not "
            f"{options.campaign_id}"
        )
    campaign = Campaign.from_record(db.campaigns.get(filled.campaign_id))
    if db.campaigns.rows("review_closes", campaign.id):
        raise UsageError(f"campaign {campaign.id} is closed already; its decisions stand")
    items = db.campaigns.rows("review_items", campaign.id)
    analysis = load_analysis(db, campaign.snapshot_id, options.catalog_path)
    decided = judge(
        filled,
        campaign,
        items,
        existing_roles(analysis),
        now.date(),
        allow_undecided=options.allow_undecided,
        path_name=options.workbook.name,
    )
    decisions = {d.item_id: d.record(campaign.id) for d in decided}
    folder = private_folder(pack_folder(options.out_dir, campaign.id))
    undecided = sum(1 for d in decided if d.decision == "undecided")
    with _undone_on_failure() as written:
        copy = folder / f"{campaign.id}-decisions.xlsx"
        written.append(_copy(options.workbook, copy))
        closed = {
            "campaign_id": campaign.id,
            "closed_at": now.isoformat(),
            "closed_by": _who(options.by),
            "workbook_sha256": sha256_of(copy),
            "undecided": undecided,
            "allowed_undecided": int(options.allow_undecided),
        }
        coverage = Coverage.of(
            analysis.snapshot.coverage, analysis.snapshot.as_of, _base_url(db, campaign.snapshot_id)
        )
        summary = close_summary(campaign, items, decisions, coverage, closed)
        written.append(write_json(folder / "close.json", summary))
        written.append(write_private_text(folder / "close.md", close_markdown(summary, campaign)))
        files = _file_records(campaign.id, "close", written, now)
        db.campaigns.close(closed, list(decisions.values()), files)
    written += write_manifest(folder, campaign, _pack_files(db, campaign.id))
    counted = {
        kind: sum(1 for d in decided if d.decision == kind)
        for kind in ("keep", "change", "remove", "undecided")
    }
    acting = counted["change"] + counted["remove"]
    return Closed(campaign, counted, tuple(written), State.CLOSED if acting else State.VERIFIED)


def verify_campaign(
    db: SnapshotDatabase,
    campaign_id: str | None,
    out_dir: Path = Path("reports"),
    clock: Clock = _now,
) -> Verification:
    """Check every removal and change of a closed campaign (default: the latest closed)
    against the snapshots taken since its own; store the run and add it to the pack."""
    now = clock()
    _must_write(db, "verify a campaign")
    campaign = _closed_campaign(db, campaign_id)
    items = db.campaigns.rows("review_items", campaign.id)
    decisions = {str(d["item_id"]): d for d in db.campaigns.rows("review_decisions", campaign.id)}
    later = [db.load(s.id) for s in db.snapshots() if s.id > campaign.snapshot_id]
    verified = verify_items(items, decisions, later)
    folder = private_folder(pack_folder(out_dir, campaign.id))
    latest = later[-1].id if later else campaign.snapshot_id
    rows = [
        {
            "campaign_id": campaign.id,
            "verified_at": now.isoformat(),
            "snapshot_id": latest,
            "item_id": v.item_id,
            "status": v.status.value,
            "first_done_snapshot": v.first_done_snapshot,
            "first_done_at": None if v.first_done_at is None else v.first_done_at.isoformat(),
            "detail": v.detail,
        }
        for v in verified
    ]
    with _undone_on_failure() as written:
        summary = verification_summary(campaign, items, decisions, verified, now)
        written.append(write_json(folder / "verification.json", summary))
        written.append(
            write_private_text(folder / "verification.md", verification_markdown(summary, campaign))
        )
        db.campaigns.verified(rows, _file_records(campaign.id, "verify", written, now))
    written += write_manifest(folder, campaign, _pack_files(db, campaign.id))
    return Verification(campaign, verified, now, tuple(written))


def _closed_campaign(db: SnapshotDatabase, campaign_id: str | None) -> Campaign:
    if campaign_id is not None:
        campaign = Campaign.from_record(db.campaigns.get(campaign_id))
        if not db.campaigns.rows("review_closes", campaign.id):
            raise UsageError(f"campaign {campaign.id} is not closed yet: `orgaudit review close`")
        return campaign
    closed = [
        Campaign.from_record(c) for c in db.campaigns.all()
        if db.campaigns.rows("review_closes", str(c["id"]))
    ]  # fmt: skip
    if not closed:
        raise UsageError("no closed review campaign to verify; `orgaudit review status` lists them")
    return closed[-1]


def campaign_status(db: SnapshotDatabase, clock: Clock = _now) -> tuple[CampaignStatus, ...]:
    """Every campaign's progress and what is outstanding."""
    today = clock().date()
    statuses = []
    for row in db.campaigns.all():
        campaign = Campaign.from_record(row)
        items = db.campaigns.rows("review_items", campaign.id)
        decisions = db.campaigns.rows("review_decisions", campaign.id)
        closed = bool(db.campaigns.rows("review_closes", campaign.id))
        acting = [d for d in decisions if d["decision"] in ("change", "remove")]
        latest = db.campaigns.latest_verification(campaign.id)
        done = sum(1 for v in latest if v["status"] == Verified.DONE.value)
        if not closed:
            state = State.OPEN
        elif done == len(acting):
            state = State.VERIFIED
        else:
            state = State.CLOSED
        statuses.append(
            CampaignStatus(
                campaign=campaign,
                state=state,
                items=len(items),
                decided=sum(1 for d in decisions if d["decision"] != "undecided"),
                acting=len(acting),
                done=done,
                outstanding=tuple(v for v in latest if v["status"] != Verified.DONE.value),
                verified_at=str(latest[0]["verified_at"]) if latest else None,
                overdue=state is not State.VERIFIED and today > campaign.due_on,
            )
        )
    return tuple(statuses)


# -- shared ---------------------------------------------------------------------------------


def _must_write(db: SnapshotDatabase, doing: str) -> None:
    if not db.writable:
        raise UsageError(f"cannot {doing}: {db.path} is read-only here, and campaigns live in it")


def _next_id(db: SnapshotDatabase, now: datetime) -> str:
    """``AR-YYYYMMDD-N``: the date it opened and its number that day."""
    stem = f"AR-{now:%Y%m%d}-"
    taken = {str(c["id"]) for c in db.campaigns.all()}
    number = 1
    while f"{stem}{number}" in taken:
        number += 1
    return f"{stem}{number}"


def _base_url(db: SnapshotDatabase, snapshot_id: int) -> str:
    return next(s.base_url for s in db.snapshots() if s.id == snapshot_id)


def _copy(source: Path, target: Path) -> Path:
    """The filled workbook as it was judged, into the pack."""
    with replacing(target) as temporary:
        shutil.copyfile(source, temporary)
    return target


def _file_records(
    campaign_id: str, stage: str, paths: Sequence[Path], now: datetime
) -> list[dict[str, object]]:
    return [
        {
            "campaign_id": campaign_id,
            "stage": stage,
            "written_at": now.isoformat(),
            "name": path.name,
            "sha256": sha256_of(path),
        }
        for path in paths
    ]


def _pack_files(db: SnapshotDatabase, campaign_id: str) -> list[Mapping[str, object]]:
    """Each file of the campaign's pack once, as last written (the database's record)."""
    latest: dict[str, Mapping[str, object]] = {}
    for record in db.campaigns.rows("review_files", campaign_id):
        latest[str(record["name"])] = {
            k: record[k] for k in ("name", "sha256", "stage", "written_at")
        }
    return list(latest.values())


@contextmanager
def _undone_on_failure() -> Iterator[list[Path]]:
    """Collect the files a step writes; remove them if the step fails."""
    written: list[Path] = []
    try:
        yield written
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
