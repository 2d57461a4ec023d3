"""``orgaudit demo``: the whole pipeline against the simulator's demo org, no key needed."""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from orgaudit.app.audit import AuditOptions, run_audit
from orgaudit.app.pull import pull_and_analyze
from orgaudit.checks.findings import AuditResult
from orgaudit.collect.pacing import QUIET, Progress
from orgaudit.collect.records import PullResult
from orgaudit.render.report import DEFAULT_FORMATS
from orgaudit.settings import AdminKey, ClientSettings, PullSettings, resolve_db_path
from orgaudit.simulator import Simulator
from orgaudit.simulator.demo import DEMO_CASES, demo_org
from orgaudit.store.database import SnapshotDatabase


@dataclass(frozen=True)
class DemoResult:
    """Where the demo wrote its snapshot and reports, and what it found."""

    db_path: Path
    pull: PullResult
    audit: AuditResult
    cases: dict[str, str]
    out_dir: Path
    # Whether the next commands find the database without --db or ORGAUDIT_DB (it is at
    # the default path); where it is not, they need ``export ORGAUDIT_DB=...`` first.
    found_by_default: bool
    set_aside: Path | None = None  # a database already at the default path, left alone


def demo_location(
    db_path: Path | None, environ: Mapping[str, str] | None = None
) -> tuple[Path, bool, Path | None]:
    """Where the demo's database goes: (path, found by default, the existing database
    left alone).

    Without ``db_path`` it goes where the next commands look by default (settings'
    resolve_db_path: ``$ORGAUDIT_DB``, else ``reports/orgaudit.db``), so what the demo
    prints next works as pasted; but an existing database there is never written to (it
    may be a real org's): the demo then uses a new temporary folder.
    """
    default = resolve_db_path(None, environ)
    if db_path is not None:
        return db_path, _same_file(db_path, default), None
    if not os.path.lexists(default):  # a dangling link counts as taken, too
        return default, True, None
    temporary = Path(tempfile.mkdtemp(prefix="orgaudit-demo-")) / "orgaudit.db"
    return temporary, False, default


def _same_file(one: Path, other: Path) -> bool:
    return one.absolute() == other.absolute()


def run_demo(
    db_path: Path | None,
    out_dir: Path | None = None,
    *,
    progress: Progress = QUIET,
    environ: Mapping[str, str] | None = None,
) -> DemoResult:
    """Serve the demo org on a free loopback port, pull it through real HTTP, audit it.

    The simulator's key is made up here and lives only in memory. Without ``db_path``
    the database goes where the next commands find it by default, unless a database is
    there already (see :func:`demo_location`); the reports go beside it (or ``out_dir``).
    """
    db_path, found_by_default, set_aside = demo_location(db_path, environ)
    out_dir = out_dir if out_dir is not None else db_path.parent
    key = AdminKey(f"sk-admin-demo-{secrets.token_hex(16)}")
    with SnapshotDatabase.open(db_path, create=True) as db:
        with Simulator(demo_org(int(time.time())), admin_key=key.reveal()) as simulator:
            pulled = pull_and_analyze(
                db,
                key,
                ClientSettings(
                    base_url=simulator.base_url, concurrency=8, timeout=10.0, trust_env=False
                ),
                PullSettings(),
                progress=progress,
            )
        audited = run_audit(
            db,
            AuditOptions(out_dir=out_dir, formats=DEFAULT_FORMATS, snapshot_id=pulled.snapshot_id),
            pulled.analysis,
        )
    return DemoResult(
        db_path, pulled, audited, dict(DEMO_CASES), out_dir, found_by_default, set_aside
    )
