"""What the commands share: the consoles, common options, and the run-time state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from orgaudit import presentation
from orgaudit.pipeline import pull_and_analyze
from orgaudit.pull import PullResult
from orgaudit.settings import ClientSettings, PullSettings, RetryPolicy, load_admin_key

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


@contextmanager
def request_progress(label: str) -> Iterator[Callable[[], None]]:
    """Yield a callback to count one response; draws nothing when not on a terminal."""
    if not err.is_terminal:
        yield lambda: None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed} requests"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=None)
        yield lambda: progress.advance(task)


# The options of every command that pulls (pull, audit): one definition, one behaviour.
BaseUrlOption = Annotated[str, typer.Option(help="Admin API base URL.")]
ConcurrencyOption = Annotated[
    int, typer.Option(help="Most requests in flight at once (a ceiling; 429s lower it).")
]
TimeoutOption = Annotated[float, typer.Option(help="Seconds to wait for one response.")]
MaxAttemptsOption = Annotated[
    int, typer.Option(help="Tries per request before giving up (429, 5xx, timeouts).")
]
AuditDaysOption = Annotated[int, typer.Option(help="Days of audit log to read for key scopes.")]
MaxBodyOption = Annotated[int, typer.Option(help="Refuse a response body larger than this (MiB).")]
MaxPagesOption = Annotated[int, typer.Option(help="Refuse a list longer than this many pages.")]
AskEveryRoleListOption = Annotated[
    bool,
    typer.Option(
        "--ask-every-role-list",
        help="Read every per-user role list, even where the role lists show it adds nothing.",
    ),
]


@dataclass(frozen=True)
class PullOptions:
    """What the pulling commands were told, as given on the command line."""

    key_file: Path | None
    base_url: str
    concurrency: int
    timeout: float
    max_attempts: int
    audit_days: int
    max_body_mb: int
    max_pages: int
    ask_every_role_list: bool = False

    def client(self) -> ClientSettings:
        """The client's settings."""
        return ClientSettings(
            base_url=self.base_url,
            concurrency=self.concurrency,
            timeout=self.timeout,
            retry=RetryPolicy(max_attempts=self.max_attempts),
            max_body_bytes=self.max_body_mb * 1024 * 1024,
            max_pages=self.max_pages,
        )

    def pull(self) -> PullSettings:
        """What the pull collects."""
        return PullSettings(
            audit_days=self.audit_days, derive_role_lists=not self.ask_every_role_list
        )


def pull_with_progress(options: PullOptions, db_path: Path, catalog: Path | None) -> PullResult:
    """Pull and analyze with a spinner on a terminal, then print the one-line summary."""
    with request_progress("pulling") as tick:
        result = pull_and_analyze(
            load_admin_key(options.key_file),
            options.client(),
            options.pull(),
            db_path,
            catalog_path=catalog,
            on_response=tick,
        )
    out.print(presentation.pull_summary(result))
    return result
