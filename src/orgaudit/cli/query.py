"""``orgaudit query``: run a saved query (or any .sql file) on a snapshot, read-only."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orgaudit.cli.common import DbOption, SnapshotOption, out
from orgaudit.errors import UsageError
from orgaudit.render import text as presentation
from orgaudit.render.report.query_output import QUERY_FORMATS, write_query_result
from orgaudit.settings import resolve_db_path
from orgaudit.store.database import SnapshotDatabase
from orgaudit.store.queries import default_pack, find_query, parse_params, query_pack, run_query


def query_command(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME_OR_FILE", help="A saved query's name, or a path to a .sql file."
        ),
    ] = None,
    list_queries: Annotated[bool, typer.Option("--list", help="List the saved queries.")] = False,
    params: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            metavar="NAME=VALUE",
            help="A query parameter, name=value (repeatable); --list shows each query's "
            "parameters and their types.",
        ),
    ] = None,
    output: Annotated[
        str,
        typer.Option(
            "--format", metavar="FORMAT", help=f"Output: {', '.join(QUERY_FORMATS)} (any case)."
        ),
    ] = "table",
    out_file: Annotated[
        Path | None, typer.Option("--out", help="File to write (needed for xlsx).")
    ] = None,
    queries_dir: Annotated[
        Path | None, typer.Option("--queries", help="Query pack folder (env ORGAUDIT_QUERIES).")
    ] = None,
    db: DbOption = None,
    snapshot: SnapshotOption = None,
) -> None:
    """Run a saved query on the latest snapshot (or --snapshot); --list shows the pack."""
    pack = queries_dir or default_pack()
    if list_queries:
        out.print_table(presentation.query_list(query_pack(pack)))
        return
    if name is None:
        raise UsageError("name a saved query (`orgaudit query --list`) or a .sql file")
    query = find_query(name, pack)
    values = parse_params(params)
    output = output.lower()
    with SnapshotDatabase.open(resolve_db_path(db)) as database:
        frame = run_query(database, query, snapshot, values)
    title = query.titled(values)
    text = write_query_result(frame, title, output, out_file)
    if output == "table":
        out.print_table(presentation.frame_table(frame, title))
    else:
        out.print(text)
