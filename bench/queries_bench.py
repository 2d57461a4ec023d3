"""Benchmark: every saved query on the demo snapshot and on a generated 5,000/500 org.

    python bench/queries_bench.py [--users 5000] [--projects 500]

Not part of the test suite; no test asserts a time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from generated import medium_shape, pulled_org

from orgaudit.app.demo import run_demo
from orgaudit.store.database import SnapshotDatabase
from orgaudit.store.queries import default_pack, query_pack, run_query

PARAMS = {"days": "90", "project": "Project 1"}


def time_pack(db: SnapshotDatabase, label: str) -> None:
    """Run every query of the pack once on ``db`` and print its rows and seconds."""
    print(f"\n{label}")
    for query in query_pack(default_pack()):
        params = {p: PARAMS[p] for p in query.parameters if p != "snapshot_id"}
        started = time.perf_counter()
        frame = run_query(db, query, None, params)
        seconds = time.perf_counter() - started
        print(f"  {query.name:<30} {len(frame):>7} rows  {seconds:6.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--projects", type=int, default=500)
    args = parser.parse_args()
    demo_db = Path(tempfile.mkdtemp(prefix="orgaudit-bench-demo-")) / "demo.db"
    run_demo(demo_db)
    with SnapshotDatabase.open(demo_db) as db:
        time_pack(db, "demo org")
    db_path, _ = pulled_org(medium_shape(args.users, args.projects))
    with SnapshotDatabase.open(db_path) as db:
        time_pack(db, f"generated org: {args.users} users, {args.projects} projects")


if __name__ == "__main__":
    main()
