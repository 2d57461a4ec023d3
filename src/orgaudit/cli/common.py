"""What the commands share: the consoles, common options, and the run-time state."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress as RichProgress
from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

from orgaudit.app.pull import AnalyzedPull, pull_and_analyze
from orgaudit.collect.pacing import Progress
from orgaudit.errors import Interrupted
from orgaudit.render import text as presentation
from orgaudit.render.terminal import SafeConsole, shown
from orgaudit.settings import MIB, ClientSettings, PullSettings, RetryPolicy, load_admin_key
from orgaudit.store.database import SnapshotDatabase

# Markup off: paths, names and server text are never read as markup; and no control
# character they hold reaches the terminal (orgaudit.render.terminal).
out = SafeConsole(highlight=False, soft_wrap=True, markup=False)
err = SafeConsole(stderr=True, highlight=False, soft_wrap=True, markup=False)


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


def _notice(text: str) -> None:
    err.print(shown(f"orgaudit: {text}"), markup=False, highlight=False)


@contextmanager
def request_progress(label: str) -> Iterator[Progress]:
    """Yield the hooks a pull reports through: a spinner counting responses, which says
    when and why the pull waits; nothing is drawn when not on a terminal, except the
    waits, which go to standard error one line each."""
    if not err.is_terminal:
        said_at = -float("inf")

        def say(text: str) -> None:  # a line every few seconds at most, not one per request
            nonlocal said_at
            if time.monotonic() - said_at >= 5:
                said_at = time.monotonic()
                err.print(text, markup=False, highlight=False)

        yield Progress(waiting=say, notice=_notice)
        return
    with RichProgress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed} requests"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def waiting(text: str) -> None:
            bar.update(task, description=f"{label} ({text})")

        yield Progress(response=lambda: bar.advance(task), waiting=waiting, notice=_notice)


# The options of every command that pulls (pull, audit): one definition, one behaviour.
BaseUrlOption = Annotated[str, typer.Option(help="Admin API base URL.")]
ConcurrencyOption = Annotated[
    int, typer.Option(help="Most requests in flight at once (a ceiling; 429s lower it).")
]
TimeoutOption = Annotated[float, typer.Option(help="Seconds to wait for one whole response.")]
MaxAttemptsOption = Annotated[
    int,
    typer.Option(help="Tries per request before giving up (5xx, timeouts, dropped connections)."),
]
MaxWaitOption = Annotated[
    float,
    typer.Option(
        help="Seconds the pull may spend, in all, waiting out rate limits (429, and 503 "
        "with Retry-After): these are not counted as tries."
    ),
]
AuditDaysOption = Annotated[
    int, typer.Option(help="Days of audit log to read (key scopes and who changed access).")
]
UsageDaysOption = Annotated[
    int, typer.Option(help="Days of usage and costs to read (0: none).", min=0, max=366)
]
MaxBodyOption = Annotated[int, typer.Option(help="Refuse a response body larger than this (MiB).")]
MaxPagesOption = Annotated[int, typer.Option(help="Refuse a list longer than this many pages.")]
ResumeOption = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Continue the pull that was interrupted (its finished lists are not asked again).",
    ),
]
StrictOption = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="End the pull (exit 3) when a list cannot be finished, instead of keeping what "
        "was read and recording the gap.",
    ),
]
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
    max_wait: float = RetryPolicy.max_wait
    strict: bool = False
    resume: bool = False
    usage_days: int = PullSettings.usage_days

    def client(self) -> ClientSettings:
        """The client's settings."""
        return ClientSettings(
            base_url=self.base_url,
            concurrency=self.concurrency,
            timeout=self.timeout,
            retry=RetryPolicy(max_attempts=self.max_attempts, max_wait=self.max_wait),
            max_body_bytes=self.max_body_mb * MIB,
            max_pages=self.max_pages,
        )

    def pull(self) -> PullSettings:
        """What the pull collects."""
        return PullSettings(
            audit_days=self.audit_days,
            usage_days=self.usage_days,
            derive_role_lists=not self.ask_every_role_list,
            strict=self.strict,
            resume=self.resume,
        )


class _Counter:
    """Counts the calls of a hook it wraps."""

    def __init__(self) -> None:
        self.count = 0

    def add(self, hook: Callable[[], None]) -> Callable[[], None]:
        def counted() -> None:
            self.count += 1
            hook()

        return counted


def pull_with_progress(
    db: SnapshotDatabase, options: PullOptions, catalog: Path | None
) -> AnalyzedPull:
    """Pull and analyze with a spinner on a terminal, then print the one-line summary."""
    key = load_admin_key(options.key_file, strict=options.strict, warn=_notice)
    with request_progress("pulling") as progress:
        answered = _Counter()
        counted = replace(progress, response=answered.add(progress.response))
        try:
            result = pull_and_analyze(
                db,
                key,
                options.client(),
                options.pull(),
                catalog_path=catalog,
                progress=counted,
            )
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted after {answered.count} requests; no snapshot was written, earlier "
                "snapshots are untouched; `orgaudit pull --resume` continues where it stopped"
            ) from None
    out.print(presentation.pull_summary(result))
    return result
