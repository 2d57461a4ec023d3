"""``orgaudit demo``: the whole pipeline against the simulator's demo org, no key needed."""

from __future__ import annotations

import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from orgaudit.app.audit import AuditOptions, run_audit
from orgaudit.app.pull import pull_and_analyze
from orgaudit.checks.findings import AuditResult
from orgaudit.collect.pacing import QUIET, Progress
from orgaudit.collect.records import PullResult
from orgaudit.render.report import DEFAULT_FORMATS
from orgaudit.settings import AdminKey, ClientSettings, PullSettings
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


def run_demo(
    db_path: Path | None,
    out_dir: Path | None = None,
    *,
    progress: Progress = QUIET,
) -> DemoResult:
    """Serve the demo org on a free loopback port, pull it through real HTTP, audit it.

    The simulator's key is made up here and lives only in memory. Without ``db_path``
    the database and the reports go to a new temporary folder.
    """
    if db_path is None:
        db_path = Path(tempfile.mkdtemp(prefix="orgaudit-demo-")) / "orgaudit.db"
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
            AuditOptions(
                out_dir=out_dir if out_dir is not None else db_path.parent,
                formats=DEFAULT_FORMATS,
                snapshot_id=pulled.snapshot_id,
            ),
            pulled.analysis,
        )
    return DemoResult(db_path, pulled, audited, dict(DEMO_CASES))
