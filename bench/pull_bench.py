"""Benchmark: pull the demo and a large org from the simulator, against the request-plan bound.

The simulator adds ``--latency`` to every request and answers 429 (with ``Retry-After``)
beyond ``--cap`` requests in flight. For each org it prints the requests made, the lower
bound for that plan (requests x latency / cap), our pull's seconds and ratio to the bound,
429s received and peak memory; then the plain sequential approach on the same org and
latency (the same requests, one at a time, as the official SDK's auto-paging list calls
make them) and the ratio. Run:

    python bench/pull_bench.py [--latency 0.025] [--cap 16] [--skip-sequential]

The "large" org: 10,000 users, 1,000 projects, 20 members and 20 keys per project, 2
service accounts per project, 40 custom roles, 100 groups, 50,000 audit events. Each pull
runs in a child process so the memory figure is the pull's own. Not part of the tests.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import secrets
import tempfile
import time
from pathlib import Path

from orgaudit.pull import pull
from orgaudit.settings import AdminKey, ClientSettings, PullSettings, RetryPolicy
from orgaudit.simulator import Simulator
from orgaudit.simulator.demo import demo_org
from orgaudit.simulator.generate import OrgShape, generate_org
from orgaudit.simulator.org import SimOrg

LARGE = OrgShape(
    users=10_000,
    projects=1_000,
    members_per_project=20,
    keys_per_project=20,
    service_accounts_per_project=2,
    custom_roles=40,
    groups=100,
    extra_audit_events=30_000,  # plus ~20,000 key-creation events: ~50,000 in all
)


def _pull_in_child(org: SimOrg, latency: float, cap: int, concurrency: int, queue: object) -> None:
    key = AdminKey(f"sk-admin-bench-{secrets.token_hex(16)}")
    db = Path(tempfile.mkdtemp(prefix="orgaudit-pull-bench-")) / "bench.db"
    with Simulator(
        org,
        admin_key=key.reveal(),
        latency=latency,
        max_in_flight=cap,
        throttle_headers={"Retry-After": "1"},
    ) as simulator:
        settings = ClientSettings(
            base_url=simulator.base_url,
            concurrency=concurrency,
            timeout=60,
            retry=RetryPolicy(max_attempts=10),
        )
        started = time.perf_counter()
        result = pull(key, settings, PullSettings(), db)
        seconds = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((result.collected.requests, result.collected.throttled, seconds, rss_mb))  # type: ignore[attr-defined]


def measure(
    org: SimOrg, latency: float, cap: int, concurrency: int
) -> tuple[int, int, float, float]:
    """Requests, 429s, seconds and peak RSS (MB) of one pull in a child process."""
    queue: multiprocessing.Queue[tuple[int, int, float, float]] = multiprocessing.Queue()
    child = multiprocessing.Process(
        target=_pull_in_child, args=(org, latency, cap, concurrency, queue)
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
    seq_requests, _, seq_seconds, _ = measure(org, args.latency, args.cap, 1)
    print(
        f"{name}, sequential (one request at a time, same requests): {seq_requests} requests "
        f"in {seq_seconds:.1f} s; ours/theirs = {seconds / seq_seconds:.3f} "
        f"({seq_seconds / seconds:.1f}x faster)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.025)
    parser.add_argument("--cap", type=int, default=16)
    parser.add_argument("--skip-sequential", action="store_true")
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
