"""``orgaudit review``: open a campaign, close it with the reviewers' decisions, verify
its removals against later snapshots, and say where each campaign stands.

Each step stages its files beside the campaign's evidence pack, stores its records in
one transaction, and only then moves the files into place (:mod:`orgaudit.review.pack`):
a step that fails leaves the pack and the database as they were. Only here is the clock
read: each step's time is passed down.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import os
from collections import Counter
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
from orgaudit.files import private_folder
from orgaudit.model.analysis import load_analysis
from orgaudit.model.catalog import load_catalog
from orgaudit.review.campaign import ACTING, Campaign, State, Verified, utc_text
from orgaudit.review.close import judge
from orgaudit.review.evidence import (
    Coverage,
    close_markdown,
    close_summary,
    json_document,
    manifest_texts,
    open_summary,
    pack_folder,
    verification_markdown,
    verification_summary,
)
from orgaudit.review.items import campaign_items, existing_roles, item_records, select_projects
from orgaudit.review.pack import Stage, staged
from orgaudit.review.results import CampaignStatus, Closed, Opened, Verification
from orgaudit.review.verify import asked, verify_items
from orgaudit.review.workbook import read_returned_workbook, write_review_workbook
from orgaudit.store.database import SnapshotDatabase
from orgaudit.vocabulary import Decision

Clock = Callable[[], datetime]
# Rows added to a workbook are each named as a problem, up to this many; past them the
# workbook is refused in one line (it is no longer the campaign's).
ADDED_ROWS_NAMED = 1_000


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
    folder = pack_folder(options.out_dir, campaign_id).absolute()
    workbook = options.out_dir / f"{campaign_id}-review.xlsx"
    for taken in (folder, workbook):  # another database's campaign of the same id
        if os.path.lexists(taken):
            raise UsageError(f"{taken} exists already; open the campaign with another --out")
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
        workbook_name=f"{campaign_id}-issued.xlsx",
        pack_folder=str(folder),
        roster_name=None if settings.roster is None else settings.roster.name,
        roster_sha256=None if settings.roster is None else settings.roster.sha256,
    )
    records = item_records(items, campaign_id)
    coverage = Coverage.of(analysis.snapshot, _base_url(db, analysis.snapshot.id))
    names = {str(k): str(v) for k, v in analysis.project_names.items()}
    roles = existing_roles(analysis.snapshot, analysis.catalog)
    with _new_folder(folder), staged() as stage:
        issued = stage.write(
            folder / campaign.workbook_name,
            lambda path: write_review_workbook(
                path, campaign, items, roles, names, analysis.snapshot.as_of
            ),
        )
        campaign = replace(campaign, workbook_sha256=stage.sha256(issued))
        stage.text(folder / "open.json", json_document(open_summary(campaign, records, coverage)))
        files = stage.records(campaign_id, "open", now)
        _stage_manifest(stage, folder, campaign, files)
        private_folder(workbook.parent)
        stage.data(workbook, stage.read(issued))  # the copy the reviewers fill in
        db.campaigns.open(campaign.record(), records, files)
        stage.place()
    return Opened(campaign, len(records), sum(1 for r in records if r["roster"]), workbook, folder)


@dataclass(frozen=True)
class CloseOptions:
    """What ``review close`` was told."""

    workbook: Path
    allow_undecided: bool = False
    by: str | None = None
    campaign_id: str | None = None
    catalog_path: Path | None = None


def close_campaign(db: SnapshotDatabase, options: CloseOptions, clock: Clock = _now) -> Closed:
    """Read the filled workbook back, judge it, store its decisions and write the evidence."""
    now = clock()
    _must_write(db, "close a campaign")
    returned = read_returned_workbook(options.workbook)
    if options.campaign_id is not None and options.campaign_id != returned.campaign_id:
        raise UsageError(
            f"{options.workbook} is the workbook of campaign {returned.campaign_id}, not "
            f"{options.campaign_id}"
        )
    campaign = Campaign.from_record(db.campaigns.get(returned.campaign_id))
    if db.campaigns.rows("review_closes", campaign.id):
        raise UsageError(f"campaign {campaign.id} is closed already; its decisions stand")
    folder = _pack(campaign)
    items = db.campaigns.rows("review_items", campaign.id)
    snapshot = db.load(campaign.snapshot_id)  # its roles and coverage: no access model
    decided = judge(
        returned.rows(len(items) + ADDED_ROWS_NAMED),
        campaign,
        items,
        existing_roles(snapshot, load_catalog(options.catalog_path)),
        now.date(),
        allow_undecided=options.allow_undecided,
        path_name=options.workbook.name,
    )
    decisions = {d.item_id: d.record(campaign.id) for d in decided}
    counted = Counter(d.decision.value for d in decided)
    closed = {
        "campaign_id": campaign.id,
        "closed_at": utc_text(now),
        "closed_by": _who(options.by),
        "workbook_sha256": hashlib.sha256(returned.data).hexdigest(),
        "undecided": counted[Decision.UNDECIDED.value],
        "allowed_undecided": options.allow_undecided,
    }
    coverage = Coverage.of(snapshot, _base_url(db, campaign.snapshot_id))
    summary = close_summary(campaign, items, decisions, coverage, closed)
    with staged() as stage:
        stage.data(folder / f"{campaign.id}-decisions.xlsx", returned.data)
        stage.text(folder / "close.json", json_document(summary))
        stage.text(folder / "close.md", close_markdown(summary, campaign))
        files = stage.records(campaign.id, "close", now)
        _stage_manifest(stage, folder, campaign, [*_pack_files(db, campaign.id), *files])
        db.campaigns.close(closed, list(decisions.values()), files)
        written = stage.place()
    acting = sum(counted[d.value] for d in ACTING)
    done = not acting and not counted[Decision.UNDECIDED.value]
    by_decision = {decision.value: counted[decision.value] for decision in Decision}
    return Closed(campaign, by_decision, written, State.VERIFIED if done else State.CLOSED)


def verify_campaign(db: SnapshotDatabase, campaign: Campaign, clock: Clock = _now) -> Verification:
    """Check every removal and change of a closed campaign against the snapshots of its
    org taken since its own; store the run and add it to the pack."""
    now = clock()
    _must_write(db, "verify a campaign")
    folder = _pack(campaign)
    items = db.campaigns.rows("review_items", campaign.id)
    decisions = {str(d["item_id"]): d for d in db.campaigns.rows("review_decisions", campaign.id)}
    # Only the same org's snapshots can show its removals: those pulled from the same
    # base URL as the campaign's (a snapshot of the simulator, or of another deployment,
    # in the same database proves nothing about this org).
    origin = _base_url(db, campaign.snapshot_id)
    later = [s.id for s in db.snapshots() if s.id > campaign.snapshot_id and s.base_url == origin]
    verified = verify_items(items, decisions, (db.load(snapshot_id) for snapshot_id in later))
    latest = later[-1] if later else None
    rows = [
        {
            "campaign_id": campaign.id,
            "verified_at": utc_text(now),
            "snapshot_id": latest,
            "item_id": v.item_id,
            "status": v.status.value,
            "first_done_snapshot": v.first_done_snapshot,
            "first_done_at": None if v.first_done_at is None else utc_text(v.first_done_at),
            "detail": v.detail,
        }
        for v in verified
    ]
    summary = verification_summary(campaign, items, decisions, verified, now)
    with staged() as stage:
        stage.text(folder / "verification.json", json_document(summary))
        stage.text(folder / "verification.md", verification_markdown(summary, campaign))
        files = stage.records(campaign.id, "verify", now)
        _stage_manifest(stage, folder, campaign, [*_pack_files(db, campaign.id), *files])
        db.campaigns.verified(campaign.id, rows, files)
        written = stage.place()
    return Verification(campaign, verified, now, written)


def verify_campaigns(
    db: SnapshotDatabase, campaign_id: str | None, clock: Clock = _now
) -> tuple[Verification, ...]:
    """Verify one campaign (``campaign_id``), or every closed one not yet verified, so a
    scheduled run keeps nagging about an older campaign after a newer one closes."""
    if campaign_id is not None:
        campaign = Campaign.from_record(db.campaigns.get(campaign_id))
        if not db.campaigns.rows("review_closes", campaign.id):
            raise UsageError(f"campaign {campaign.id} is not closed yet: `orgaudit review close`")
        return (verify_campaign(db, campaign, clock),)
    pending = [
        status.campaign for status in campaign_status(db, clock) if status.state is State.CLOSED
    ]
    if not pending:
        raise UsageError(
            "no closed campaign awaits verification (`orgaudit review status` lists them); "
            "--campaign ID verifies one again"
        )
    return tuple(verify_campaign(db, campaign, clock) for campaign in pending)


def campaign_status(db: SnapshotDatabase, clock: Clock = _now) -> tuple[CampaignStatus, ...]:
    """Every campaign's progress and what is outstanding."""
    today = clock().date()
    statuses = []
    for row in db.campaigns.all():
        campaign = Campaign.from_record(row)
        items = db.campaigns.rows("review_items", campaign.id)
        decisions = db.campaigns.rows("review_decisions", campaign.id)
        by_item = {str(item["item_id"]): item for item in items}
        by_decision = {str(d["item_id"]): d for d in decisions}
        closed = bool(db.campaigns.rows("review_closes", campaign.id))
        acting = [d for d in decisions if d["decision"] in ACTING]
        latest = db.campaigns.latest_verification(campaign.id)
        done = sum(1 for v in latest if v["status"] == Verified.DONE.value)
        undecided = sum(1 for d in decisions if d["decision"] == Decision.UNDECIDED.value)
        if not closed:
            state = State.OPEN
        elif done == len(acting) and not undecided:
            state = State.VERIFIED  # every item decided, every removal and change seen done
        else:
            state = State.CLOSED
        statuses.append(
            CampaignStatus(
                campaign=campaign,
                state=state,
                items=len(items),
                decided=len(decisions) - undecided,
                acting=len(acting),
                done=done,
                outstanding=tuple(
                    {
                        **v,
                        "asked": asked(by_item[str(v["item_id"])], by_decision[str(v["item_id"])]),
                    }
                    for v in latest
                    if v["status"] != Verified.DONE.value
                ),
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
    """Where the snapshot was pulled from; one line if it was pruned (a verified
    campaign's may be: its org can no longer be told, nor its removals checked again)."""
    found = [s.base_url for s in db.snapshots() if s.id == snapshot_id]
    if not found:
        raise UsageError(
            f"snapshot {snapshot_id} the campaign reviewed was pruned: what it needs of it is "
            "gone (its verification stands in the evidence pack and the database)"
        )
    return found[0]


def _stage_manifest(
    stage: Stage, folder: Path, campaign: Campaign, files: Sequence[Mapping[str, object]]
) -> None:
    """Stage the manifest and SHA256SUMS over every file of the pack, latest of each name."""
    latest = {
        str(f["name"]): {k: f[k] for k in ("name", "sha256", "stage", "written_at")} for f in files
    }
    for name, text in manifest_texts(campaign, list(latest.values())).items():
        stage.text(folder / name, text)


def _pack(campaign: Campaign) -> Path:
    """The campaign's evidence pack, where its opening left it."""
    folder = Path(campaign.pack_folder)
    if not (folder / campaign.workbook_name).is_file():
        raise UsageError(
            f"the evidence pack of campaign {campaign.id} is not at {folder} (moved, or "
            "deleted?); put it back there to close or verify the campaign"
        )
    return folder


@contextmanager
def _new_folder(folder: Path) -> Iterator[None]:
    """Create the pack's folder; remove it again if the step fails (it is new, so empty)."""
    private_folder(folder)
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            folder.rmdir()
        raise


def _pack_files(db: SnapshotDatabase, campaign_id: str) -> list[Mapping[str, object]]:
    """The files the campaign's earlier steps wrote into its pack (the database's record)."""
    return list(db.campaigns.rows("review_files", campaign_id))
