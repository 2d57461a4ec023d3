"""Benchmark: pull the demo and a large org from the simulator, against the request-plan bound.

The simulator runs in a process of its own (the real API is another machine), answers
each request ``--latency`` after it arrives, and answers 429 (with ``Retry-After``) beyond
``--cap`` requests in flight. For each org it prints the requests made, the lower bound
for that plan (requests x latency / cap), our pull's seconds and ratio to the bound, 429s
received and peak memory; then the plain sequential approach on the same org and latency
and the ratio. The sequential approach is what a script over the official SDK's
auto-paging list calls does: every list, one request at a time, here through our own
client with the same (largest) page sizes, so it is if anything flattered. Run:

    python bench/pull_bench.py [--latency 0.025] [--cap 16] [--skip-sequential]
                               [--same-plan-too]

``--same-plan-too`` also times the sequential approach making only our requests, which
separates what concurrency buys from what asking fewer requests buys.

The "large" org: 10,000 users, 1,000 projects, 20 members and 20 keys per project, 2
service accounts per project, 40 custom roles, 100 groups, 50,000 audit events. Each pull
runs in a child process so the memory figure is the pull's own. Not part of the tests;
the sequential pull of the large org alone takes about 16 minutes.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from generated import LARGE, simulator_process

from orgaudit.pull import pull
from orgaudit.settings import AdminKey, ClientSettings, PullSettings, RetryPolicy
from orgaudit.simulator.demo import demo_org
from orgaudit.simulator.generate import generate_org
from orgaudit.simulator.org import SimOrg


def _pull_in_child(key: str, base_url: str, concurrency: int, derive: bool, queue: Any) -> None:
    db = Path(tempfile.mkdtemp(prefix="orgaudit-pull-bench-")) / "bench.db"
    settings = ClientSettings(
        base_url=base_url, concurrency=concurrency, timeout=60, retry=RetryPolicy(max_attempts=10)
    )
    started = time.perf_counter()
    result = pull(AdminKey(key), settings, PullSettings(derive_role_lists=derive), db)
    seconds = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((result.collected.requests, result.collected.throttled, seconds, rss_mb))


def measure(
    org: SimOrg, latency: float, cap: int, concurrency: int, *, derive: bool = True
) -> tuple[int, int, float, float]:
    """Requests, 429s, seconds and peak RSS (MB) of one pull, each side in its own process."""
    key = f"sk-admin-bench-{secrets.token_hex(16)}"
    with simulator_process(org, key, latency=latency, cap=cap) as base_url:
        queue: multiprocessing.Queue[tuple[int, int, float, float]] = multiprocessing.Queue()
        child = multiprocessing.Process(
            target=_pull_in_child, args=(key, base_url, concurrency, derive, queue)
        )
        child.start()
        outcome = queue.get()
        child.join()
    return outcome


def report(name: str, org: SimOrg, args: argparse.Namespace) -> None:
    """One org: our pull against its bound, then the sequential approach."""
    requests, throttled, seconds, rss = measure(org, args.latency, args.cap, args.cap)
    bound = requests * args.latency / args.cap
    print(
        f"{name}: {requests} requests; bound {bound:.1f} s (x {args.latency * 1000:.0f} ms "
        f"/ {args.cap} in flight); pull {seconds:.1f} s = {seconds / bound:.2f}x the bound; "
        f"{throttled} x 429; peak RSS {rss:.0f} MB"
    )
    if args.skip_sequential:
        return
    plans = (
        {"every list": False, "our request plan": True}
        if args.same_plan_too
        else {"every list": False}
    )
    for plan, derive in plans.items():
        seq_requests, _, seq_seconds, _ = measure(org, args.latency, args.cap, 1, derive=derive)
        print(
            f"{name}, sequential (one request at a time, {plan}): {seq_requests} requests "
            f"in {seq_seconds:.1f} s; ours/theirs = {seconds / seq_seconds:.3f} "
            f"({seq_seconds / seconds:.1f}x faster)"
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
    args = parser.parse_args()
    now = int(time.time())
    report("demo", demo_org(now), args)
    if not args.demo_only:
        started = time.perf_counter()
        large = generate_org(LARGE, seed=7, now=now)
        print(f"(generated the large org in {time.perf_counter() - started:.1f} s)")
        report("large", large, args)


if __name__ == "__main__":
    main()
