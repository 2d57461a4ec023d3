"""``orgaudit demo``: the whole pipeline against the simulator's demo org, no key needed."""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orgaudit.pipeline import pull_and_analyze
from orgaudit.pull import PullResult
from orgaudit.settings import AdminKey, ClientSettings, PullSettings
from orgaudit.simulator import Simulator
from orgaudit.simulator.demo import DEMO_CASES, demo_org


@dataclass(frozen=True)
class DemoResult:
    """Where the demo wrote its snapshot, and what the pull read."""

    db_path: Path
    pull: PullResult
    cases: dict[str, str]


def run_demo(db_path: Path | None, *, on_response: Callable[[], None] | None = None) -> DemoResult:
    """Serve the demo org on a free loopback port and pull it through real HTTP.

    The simulator's key is made up here and lives only in memory.
    """
    if db_path is None:
        db_path = Path(tempfile.mkdtemp(prefix="orgaudit-demo-")) / "orgaudit.db"
    key = AdminKey(f"sk-admin-demo-{secrets.token_hex(16)}")
    with Simulator(demo_org(int(time.time())), admin_key=key.reveal()) as simulator:
        result = pull_and_analyze(
            key,
            ClientSettings(base_url=simulator.base_url, concurrency=8, timeout=10.0),
            PullSettings(),
            db_path,
            on_response=on_response,
        )
    return DemoResult(db_path, result, dict(DEMO_CASES))
