"""What the commands share: the consoles, common options, and the run-time state."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

# Markup off: paths, names and server text are printed as they are, never read as markup.
out = Console(highlight=False, soft_wrap=True, markup=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


@dataclass
class State:
    """Set by the global options, read by ``main`` when it reports an error."""

    debug: bool = False


DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="Snapshot database (env ORGAUDIT_DB; default reports/orgaudit.db)."),
]
KeyFileOption = Annotated[
    Path | None,
    typer.Option(
        "--admin-key-file",
        help="File holding the admin key; otherwise OPENAI_ADMIN_KEY is read.",
    ),
]
CatalogOption = Annotated[
    Path | None,
    typer.Option("--catalog", help="Permission catalog to use instead of the shipped one."),
]
SnapshotOption = Annotated[
    int | None, typer.Option("--snapshot", help="Snapshot id (default: the latest).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
