"""``orgaudit review open|close|verify|status``: the access-review campaign's commands."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from orgaudit.app.review import (
    CloseOptions,
    OpenOptions,
    campaign_status,
    close_campaign,
    open_campaign,
    verify_campaigns,
)
from orgaudit.cli.common import CatalogOption, DbOption, JsonOption, SnapshotOption, out
from orgaudit.errors import UsageError
from orgaudit.render.terminal import json_text
from orgaudit.review import text
from orgaudit.settings import resolve_db_path
from orgaudit.store.database import SnapshotDatabase

app = typer.Typer(
    help="Access-review campaigns: open one, close it with the decisions, verify removals.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

OutOption = Annotated[
    Path,
    typer.Option(
        "--out",
        help="Folder for the workbook to fill in and the evidence pack (review-ID/).",
    ),
]
ByOption = Annotated[
    str | None, typer.Option("--by", help="Who runs this step (default: your login name).")
]
CampaignOption = Annotated[
    str | None,
    typer.Option("--campaign", help="Campaign id (default: every closed one not yet verified)."),
]


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"--due {value!r} is not a date (YYYY-MM-DD)") from None


@app.command("open")
def open_command(
    due: Annotated[
        str,
        typer.Option("--due", metavar="DATE", help="Due date of the decisions (YYYY-MM-DD)."),
    ],
    project: Annotated[
        list[str] | None,
        typer.Option(
            "--project",
            metavar="PROJECT",
            help="Narrow to a project's items (id or name; repeatable).",
        ),
    ] = None,
    roster: Annotated[
        Path | None,
        typer.Option("--roster", help="HR or IdP roster CSV: leavers' rows are pre-marked Remove."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="orgaudit.toml (roster columns, thresholds).")
    ] = None,
    by: ByOption = None,
    out_dir: OutOption = Path("reports"),
    db: DbOption = None,
    snapshot: SnapshotOption = None,
    catalog: CatalogOption = None,
) -> None:
    """Open a campaign on the latest snapshot (or --snapshot) and write its workbook."""
    options = OpenOptions(
        due=_date(due),
        out_dir=out_dir,
        snapshot_id=snapshot,
        projects=tuple(project or ()),
        by=by,
        roster_path=roster,
        config_path=config,
        catalog_path=catalog,
    )
    with SnapshotDatabase.open(resolve_db_path(db)) as database:
        opened = open_campaign(database, options)
    out.print(text.opened_text(opened))


@app.command("close")
def close_command(
    workbook: Annotated[Path, typer.Argument(help="The filled review workbook (.xlsx).")],
    allow_undecided: Annotated[
        bool,
        typer.Option("--allow-undecided", help="Close with undecided rows (the evidence says so)."),
    ] = False,
    campaign: Annotated[
        str | None, typer.Option("--campaign", help="Refuse a workbook of another campaign.")
    ] = None,
    by: ByOption = None,
    db: DbOption = None,
    catalog: CatalogOption = None,
) -> None:
    """Read the filled workbook back, store its decisions, add them to the evidence pack."""
    options = CloseOptions(workbook, allow_undecided, by, campaign, catalog)
    with SnapshotDatabase.open(resolve_db_path(db)) as database:
        closed = close_campaign(database, options)
    out.print(text.closed_text(closed))


@app.command("verify")
def verify_command(campaign: CampaignOption = None, db: DbOption = None) -> None:
    """Check the removals and changes against the snapshots since; exit 1 while any is
    not seen done past the due date."""
    with SnapshotDatabase.open(resolve_db_path(db)) as database:
        verifications = verify_campaigns(database, campaign)
    for verification in verifications:
        out.print(text.verification_text(verification))
    raise typer.Exit(max(verification.exit_code for verification in verifications))


@app.command("status")
def status_command(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Every campaign: its state, progress, and what is still outstanding."""
    with SnapshotDatabase.open(resolve_db_path(db)) as database:
        statuses = campaign_status(database)
    if as_json:
        out.print(json_text(json.dumps(text.status_json(statuses), ensure_ascii=False, indent=2)))
        return
    table = text.status_table(statuses)
    if isinstance(table, str):
        out.print(table)
        return
    out.print_table(table)
    outstanding = text.outstanding_text(statuses)
    if outstanding:
        out.print(outstanding)
