"""The pipeline's steps joined up: pull, then analyze into the snapshot's derived tables."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from orgaudit.analysis import analyze, store_derived
from orgaudit.catalog import load_catalog
from orgaudit.client import QUIET, Progress
from orgaudit.pull import PullResult, pull
from orgaudit.settings import AdminKey, ClientSettings, PullSettings
from orgaudit.snapshot import load_snapshot


def pull_and_analyze(
    key: AdminKey,
    client_settings: ClientSettings,
    pull_settings: PullSettings,
    db_path: Path,
    *,
    catalog_path: Path | None = None,
    progress: Progress = QUIET,
    clock: Callable[[], datetime] | None = None,
) -> PullResult:
    """Pull a new snapshot and store its access model as derived tables, in one
    transaction: both land, or neither does.

    The catalog is read first, so a broken ``--catalog`` fails before any request.
    """
    catalog = load_catalog(catalog_path)
    timing = {} if clock is None else {"clock": clock}

    def store_analysis(conn: sqlite3.Connection, snapshot_id: int) -> None:
        store_derived(conn, analyze(load_snapshot(conn, snapshot_id), catalog))

    return pull(
        key,
        client_settings,
        pull_settings,
        db_path,
        progress=progress,
        then=store_analysis,
        **timing,
    )
