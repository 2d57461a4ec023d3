"""A spinner counting responses, shown only when stderr is a terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from orgaudit.cli.common import err


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
