"""``orgaudit snapshots`` and ``orgaudit diff``: what the database holds, and what changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from orgaudit.app.audit import DiffOptions, run_diff
from orgaudit.cli.common import CatalogOption, DbOption, JsonOption, out
from orgaudit.render import text as presentation
from orgaudit.render.terminal import json_text
from orgaudit.settings import resolve_db_path
from orgaudit.store.database import SnapshotDatabase


def snapshots_command(
    db: DbOption = None,
    prune: Annotated[
        int | None, typer.Option("--prune", help="Keep only the newest KEEP snapshots.")
    ] = None,
) -> None:
    """List the snapshots in the database (or prune all but the newest KEEP)."""
    with SnapshotDatabase.open(resolve_db_path(db)) as database:
        if prune is not None:
            out.print(presentation.pruned(database.prune(prune)))
        else:
            listed = presentation.snapshot_table(database.snapshots(), database.path)
            if isinstance(listed, str):
                out.print(listed)
            else:
                out.print_table(listed)


def diff_command(
    from_snapshot: Annotated[
        int | None, typer.Option("--from", help="Older snapshot (default: the one before --to).")
    ] = None,
    to_snapshot: Annotated[
        int | None, typer.Option("--to", help="Newer snapshot (default: the latest).")
    ] = None,
    db: DbOption = None,
    catalog: CatalogOption = None,
    config: Annotated[Path | None, typer.Option(help="orgaudit.toml (thresholds).")] = None,
    as_json: JsonOption = False,
) -> None:
    """What changed between two snapshots: people, roles, groups, keys, findings."""
    with SnapshotDatabase.open(resolve_db_path(db)) as database:
        diff = run_diff(database, DiffOptions(from_snapshot, to_snapshot, catalog, config))
    if as_json:
        out.print(json_text(json.dumps(diff.to_dict(), ensure_ascii=False, indent=2)))
    else:
        out.print(presentation.diff_text(diff))
