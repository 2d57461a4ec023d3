"""Benchmark: explain on a generated org (default 5,000 users, 500 projects).

Pulls the generated org from the simulator over loopback into a temporary database, then
times loading the snapshot, computing the access model, and answering ``explain user``
and ``explain key`` questions. Run:

    python bench/explain_bench.py [--users 5000] [--projects 500] [--questions 50]

Not part of the test suite; no test asserts a time.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from generated import medium_shape, pulled_org

from orgaudit.explain import explain_key, explain_user
from orgaudit.model.analysis import analyze
from orgaudit.model.catalog import load_catalog
from orgaudit.store.database import SnapshotDatabase


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--projects", type=int, default=500)
    parser.add_argument("--keys-per-project", type=int, default=40)
    parser.add_argument("--questions", type=int, default=50)
    args = parser.parse_args()

    db_path, _ = pulled_org(medium_shape(args.users, args.projects, args.keys_per_project))

    catalog = load_catalog()
    started = time.perf_counter()
    with SnapshotDatabase.open(db_path) as db:
        snapshot = db.load()
    load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    analysis = analyze(snapshot, catalog)
    access_seconds = time.perf_counter() - started
    print(f"load snapshot: {load_seconds:.2f} s; access model: {access_seconds:.2f} s")
    print(f"  {len(analysis.model.bindings)} bindings, {len(analysis.model.levels)} access rows")

    rng = random.Random(0)
    emails = list(snapshot["users"]["email"])
    projects = list(snapshot["projects"]["name"])
    keys = list(snapshot["project_api_keys"]["id"])
    user_times, key_times = [], []
    for _ in range(args.questions):
        started = time.perf_counter()
        explain_user(snapshot, analysis.model, catalog, rng.choice(emails), rng.choice(projects))
        user_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        explain_key(snapshot, analysis.model, catalog, rng.choice(keys), "/v1/responses")
        key_times.append(time.perf_counter() - started)
    print(
        f"explain user --project: median {statistics.median(user_times) * 1000:.0f} ms, "
        f"max {max(user_times) * 1000:.0f} ms over {args.questions}"
    )
    print(
        f"explain key --endpoint: median {statistics.median(key_times) * 1000:.0f} ms, "
        f"max {max(key_times) * 1000:.0f} ms over {args.questions}"
    )
    print(
        "after the snapshot is loaded, one question costs the access model plus one answer: "
        f"{access_seconds + max(user_times):.2f} s at most"
    )


if __name__ == "__main__":
    main()
