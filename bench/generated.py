"""Shared by the benchmarks: a generated org pulled from the simulator into a database."""

from __future__ import annotations

import secrets
import tempfile
import time
from pathlib import Path

from orgaudit.pipeline import pull_and_analyze
from orgaudit.pull import PullResult
from orgaudit.settings import AdminKey, ClientSettings, PullSettings
from orgaudit.simulator import Simulator
from orgaudit.simulator.generate import OrgShape, generate_org


def pulled_org(shape: OrgShape, *, concurrency: int = 32, seed: int = 1) -> tuple[Path, PullResult]:
    """Generate an org, serve it on loopback, pull and analyze it into a temporary db."""
    started = time.perf_counter()
    org = generate_org(shape, seed=seed, now=int(time.time()))
    print(f"generated org: {time.perf_counter() - started:.1f} s")
    key = AdminKey(f"sk-admin-bench-{secrets.token_hex(16)}")
    db_path = Path(tempfile.mkdtemp(prefix="orgaudit-bench-")) / "bench.db"
    with Simulator(org, admin_key=key.reveal()) as simulator:
        settings = ClientSettings(base_url=simulator.base_url, concurrency=concurrency)
        result = pull_and_analyze(key, settings, PullSettings(), db_path)
    print(f"pull + analysis: {result.collected.requests} requests in {result.seconds:.1f} s")
    return db_path, result


def medium_shape(users: int = 5000, projects: int = 500, keys_per_project: int = 40) -> OrgShape:
    """The issues' mid-size org: 5,000 users, 500 projects, 20,000 keys by default."""
    return OrgShape(
        users=users,
        projects=projects,
        members_per_project=20,
        keys_per_project=keys_per_project,
        service_accounts_per_project=2,
        custom_roles=40,
        groups=100,
    )
