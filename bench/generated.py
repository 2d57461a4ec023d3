"""Shared by the benchmarks: the issue's org sizes, the simulator in a process of its own,
and a generated org pulled from it into a database."""

from __future__ import annotations

import multiprocessing
import resource
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from orgaudit.app.pull import pull_and_analyze
from orgaudit.collect.records import PullResult
from orgaudit.settings import AdminKey, ClientSettings, PullSettings
from orgaudit.simulator import Simulator
from orgaudit.simulator.generate import OrgShape, generate_org
from orgaudit.simulator.org import SimOrg
from orgaudit.store.database import SnapshotDatabase

# Issue #6's "large" org: 10,000 users, 1,000 projects, 20 members and 20 keys per
# project, 2 service accounts per project, 40 custom roles, 100 groups, ~50,000 audit
# events (30,000 scope changes besides ~20,000 key creations).
LARGE = OrgShape(
    users=10_000,
    projects=1_000,
    members_per_project=20,
    keys_per_project=20,
    service_accounts_per_project=2,
    custom_roles=40,
    groups=100,
    extra_audit_events=30_000,
)
# Issue #6's "huge" org, for analysis and reports: 50,000 users and 5,000 projects, the
# rest per project as in the large one (100,000 keys).
HUGE = replace(LARGE, users=50_000, projects=5_000)
SHAPES = {"large": LARGE, "huge": HUGE}


def peak_rss_mb() -> float:
    """This process's peak resident memory (MB) since it started or last exec'd.

    Linux's VmHWM belongs to the address space, which exec replaces; ru_maxrss would carry
    a big parent's peak over into a child it spawned (fork, then exec).
    """
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


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


def _serve(
    org: SimOrg | Callable[[], SimOrg],
    key: str,
    latency: float,
    cap: int | None,
    ready: Any,
    stop: Any,
) -> None:
    if callable(org):  # generated here, so the benchmark's own process stays small
        org = org()
    # Its threads sleep out the latency; a thread building a large page must not keep a
    # woken one waiting for Python's default 5 ms switch interval, or the simulated
    # latency grows beyond what was asked.
    sys.setswitchinterval(0.0005)
    with Simulator(
        org,
        admin_key=key,
        latency=latency,
        max_in_flight=cap,
        throttle_headers={"Retry-After": "1"},
    ) as simulator:
        ready.send(simulator.base_url)
        stop.wait()


@contextmanager
def simulator_process(
    org: SimOrg | Callable[[], SimOrg], key: str, *, latency: float = 0.0, cap: int | None = None
) -> Iterator[str]:
    """Serve ``org`` from a process of its own (the real API is another machine).

    ``org`` may be a function that makes the org, run in the simulator's process. Yields
    the base URL. The simulator answers each request ``latency`` after it arrives
    and answers 429 with ``Retry-After`` beyond ``cap`` requests in flight.
    """
    context = multiprocessing.get_context("fork")
    ready_here, ready_there = context.Pipe()
    stop = context.Event()
    server = context.Process(target=_serve, args=(org, key, latency, cap, ready_there, stop))
    server.start()
    try:
        yield ready_here.recv()
    finally:
        stop.set()
        server.join()


def pull_generated(
    shape: OrgShape, db_path: Path, *, concurrency: int = 32, seed: int = 1
) -> PullResult:
    """Generate an org, serve it from its own process and pull and analyze it into a db."""
    started = time.perf_counter()
    org = generate_org(shape, seed=seed, now=int(time.time()))
    print(f"generated org: {time.perf_counter() - started:.1f} s")
    key = AdminKey(f"sk-admin-bench-{secrets.token_hex(16)}")
    with (
        SnapshotDatabase.open(db_path, create=True) as db,
        simulator_process(org, key.reveal()) as base_url,
    ):
        settings = ClientSettings(base_url=base_url, concurrency=concurrency)
        result = pull_and_analyze(db, key, settings, PullSettings())
    print(f"pull + analysis: {result.collected.requests} requests in {result.seconds:.1f} s")
    return result


def pulled_org(shape: OrgShape, *, concurrency: int = 32, seed: int = 1) -> tuple[Path, PullResult]:
    """Generate an org and pull and analyze it into a temporary database."""
    db_path = Path(tempfile.mkdtemp(prefix="orgaudit-bench-")) / "bench.db"
    return db_path, pull_generated(shape, db_path, concurrency=concurrency, seed=seed)
