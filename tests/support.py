"""Helpers the tests share: the test key, quick client settings, small orgs."""

from __future__ import annotations

import time
from pathlib import Path

from orgaudit.settings import ClientSettings, PullSettings, RetryPolicy
from orgaudit.simulator import Simulator
from orgaudit.simulator.org import OrgBuilder

# A made-up key with a recognisable body, so a search of every byte written can find it.
ADMIN_KEY = "sk-admin-TESTKEY-5f3c9a1b7e2d4c6f8a0b1c2d3e4f5a6b"
NOW = int(time.time())
PULL = PullSettings()


def fast_settings(sim: Simulator, **overrides: object) -> ClientSettings:
    """Client settings against ``sim`` that back off in milliseconds, not seconds."""
    retry = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, max_retry_after=5.0)
    values: dict[str, object] = {
        "base_url": sim.base_url,
        "concurrency": 4,
        "timeout": 2.0,
        "retry": retry,
    }
    values.update(overrides)
    return ClientSettings(**values)  # type: ignore[arg-type]


GOLDEN = Path(__file__).resolve().parent / "golden"


def check_golden(name: str, actual: str, regen: bool) -> None:
    """Compare text with ``tests/golden/NAME``; ``pytest --regen-golden`` rewrites it."""
    path = GOLDEN / name
    if regen:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"no golden file {path}; run pytest --regen-golden once"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} differs from its golden file (pytest --regen-golden)"


def small_org(users: int = 3) -> OrgBuilder:
    """A builder holding ``users`` readers in one project, for tests that add to it."""
    builder = OrgBuilder("org_small", NOW)
    project = builder.project("Only", project_id="proj_only")
    for i in range(users):
        uid = builder.user(f"User {i}", f"u{i}@example.com", user_id=f"user_{i:04d}")
        builder.member(project, uid, "member")
    return builder
