"""Benchmark of issue #6, in one command: pull, analyze and report the demo, large and huge orgs.

The simulator runs in a process of its own (the real API is another machine), answers
each request ``--latency`` after it arrives, and answers 429 (with ``Retry-After``) beyond
``--cap`` requests in flight. For the demo and the large org it prints the requests made,
the lower bound for that plan (requests x latency / cap), our pull's seconds and ratio to
the bound, 429s received and peak memory; then the analysis, workbook, csv and json
seconds and peak memory on the snapshot just pulled; then the plain sequential approach
on the same org and latency and the ratio. The sequential approach is what a script over
the official SDK's auto-paging list calls does: every list, one request at a time, here
through our own client with the same (largest) page sizes, so it is if anything
flattered. The huge org is analyzed and reported only, from a snapshot pulled without
latency. Run:

    python bench/scale_bench.py [--latency 0.025] [--cap 16] [--skip-sequential]
                                [--same-plan-too] [--skip-huge] [--demo-only]

``--same-plan-too`` also times the sequential approach making only our requests, which
separates what concurrency buys from what asking fewer requests buys.

The "large" org: 10,000 users, 1,000 projects, 20 members and 20 keys per project, 2
service accounts per project, 40 custom roles, 100 groups, 50,000 audit events; "huge":
50,000 users and 5,000 projects, the rest alike. Every pull and every audit runs in a
process of its own, so each memory figure is its own. Not part of the tests. The
sequential pull of the large org alone takes about 16 minutes, the huge org's pull and
audit about 5.
"""

from __future__ import annotations

import argparse
import multiprocessing
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from generated import HUGE, LARGE, peak_rss_mb, pull_generated, simulator_process
from report_bench import audit_figures

from orgaudit.app.pull import pull
from orgaudit.settings import AdminKey, ClientSettings, PullSettings
from orgaudit.simulator.demo import demo_org
from orgaudit.simulator.generate import generate_org
from orgaudit.simulator.org import SimOrg
from orgaudit.store.database import SnapshotDatabase


def _pull_in_child(
    key: str, base_url: str, concurrency: int, derive: bool, db_path: Path, queue: Any
) -> None:
    # The pull's defaults, as a user runs it (429s are waited out by time, not counted).
    settings = ClientSettings(base_url=base_url, concurrency=concurrency)
    started = time.perf_counter()
    with SnapshotDatabase.open(db_path, create=True) as db:
        result = pull(db, AdminKey(key), settings, PullSettings(derive_role_lists=derive))
    seconds = time.perf_counter() - started
    rss_mb = peak_rss_mb()
    queue.put((result.collected.requests, result.collected.throttled, seconds, rss_mb))


def measure(
    org: SimOrg,
    latency: float,
    cap: int,
    concurrency: int,
    *,
    derive: bool = True,
    db_path: Path | None = None,
) -> tuple[int, int, float, float]:
    """Requests, 429s, seconds and peak RSS (MB) of one pull, each side in its own process.

    The snapshot goes to ``db_path`` (a temporary file when None).
    """
    key = f"sk-admin-bench-{secrets.token_hex(16)}"
    db_path = db_path or Path(tempfile.mkdtemp(prefix="orgaudit-pull-bench-")) / "bench.db"
    with simulator_process(org, key, latency=latency, cap=cap) as base_url:
        # Spawned, not forked: the child must not start out holding this process's orgs.
        spawn = multiprocessing.get_context("spawn")
        queue: multiprocessing.Queue[tuple[int, int, float, float]] = spawn.Queue()
        child = spawn.Process(
            target=_pull_in_child, args=(key, base_url, concurrency, derive, db_path, queue)
        )
        child.start()
        outcome = queue.get()
        child.join()
    return outcome


def in_child(target: Callable[..., object], *args: object, **kwargs: object) -> None:
    """Run ``target`` in a fresh process (its memory figures its own) and wait for it."""
    sys.stdout.flush()
    child = multiprocessing.get_context("spawn").Process(target=target, args=args, kwargs=kwargs)
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"{target.__name__} failed (exit {child.exitcode})")


def ours(name: str, org: SimOrg, args: argparse.Namespace) -> float:
    """Our pull of one org against its bound, then the audit of that snapshot; its seconds."""
    work = Path(tempfile.mkdtemp(prefix="orgaudit-scale-bench-"))
    db_path = work / "bench.db"
    requests, throttled, seconds, rss = measure(
        org, args.latency, args.cap, args.cap, db_path=db_path
    )
    bound = requests * args.latency / args.cap
    print(
        f"{name}: {requests} requests; bound {bound:.1f} s (x {args.latency * 1000:.0f} ms "
        f"/ {args.cap} in flight); pull {seconds:.1f} s = {seconds / bound:.2f}x the bound; "
        f"{throttled} x 429; peak RSS {rss:.0f} MB"
    )
    print(f"{name}, audit of that snapshot:")
    in_child(audit_figures, db_path, work / "out", traced=False)
    shutil.rmtree(work)
    return seconds


def theirs(name: str, org: SimOrg, our_seconds: float, args: argparse.Namespace) -> None:
    """The plain sequential approach on the same org and latency, against our pull."""
    plans = {"every list": False, "our request plan": True}
    if not args.same_plan_too:
        del plans["our request plan"]
    for plan, derive in plans.items():
        requests, _, seconds, _ = measure(org, args.latency, args.cap, 1, derive=derive)
        print(
            f"{name}, sequential (one request at a time, {plan}): {requests} requests "
            f"in {seconds:.1f} s; ours/theirs = {our_seconds / seconds:.3f} "
            f"({seconds / our_seconds:.1f}x faster)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.025)
    parser.add_argument("--cap", type=int, default=16)
    parser.add_argument("--skip-sequential", action="store_true")
    parser.add_argument(
        "--same-plan-too",
        action="store_true",
        help="also time the sequential approach with our request plan (fewer requests)",
    )
    parser.add_argument("--demo-only", action="store_true")
    parser.add_argument("--skip-huge", action="store_true")
    args = parser.parse_args()
    now = int(time.time())
    orgs = {"demo": demo_org(now)}
    if not args.demo_only:
        started = time.perf_counter()
        orgs["large"] = generate_org(LARGE, seed=7, now=now)
        print(f"(generated the large org in {time.perf_counter() - started:.1f} s)")
    seconds = {name: ours(name, org, args) for name, org in orgs.items()}
    if not (args.demo_only or args.skip_huge):
        work = Path(tempfile.mkdtemp(prefix="orgaudit-scale-bench-"))
        print("huge: a generated snapshot (pulled without latency), then its audit:")
        in_child(pull_generated, HUGE, work / "bench.db")
        in_child(audit_figures, work / "bench.db", work / "out", traced=False)
        shutil.rmtree(work)
    # Last, as they take longest: the sequential runs are mostly waiting.
    if not args.skip_sequential:
        for name, org in orgs.items():
            theirs(name, org, seconds[name], args)


if __name__ == "__main__":
    main()
