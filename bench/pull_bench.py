"""Benchmark: `orgaudit pull` (or an online `orgaudit audit`) as a user runs it: its time
and its peak memory.

The org is generated and served by the simulator in a process of its own (the real API
is another machine) with ``--latency`` per response and 429s beyond 16 requests in flight.
Each run is ``python -m orgaudit pull --db ... --base-url ... --admin-key-file ...`` in a
fresh process with every other option at its default (the pull, its journal, and the
analysis it stores); the benchmark prints its wall time and its peak resident memory
(the child's own ``ru_maxrss``, from ``wait4``). Run:

    python bench/pull_bench.py [--org large] [--org huge] [--runs 3] [--latency 0.025]
                               [--source DIR ...] [--command pull|audit|audit-again]

``--command audit`` runs ``orgaudit audit`` instead (pull, analysis, checks and the
default reports, into a fresh folder), every other option at its default.
``--command audit-again`` times the audit a periodic user runs: one ``orgaudit audit``
first (not timed), then the timed ``orgaudit audit`` on the same database, whose report
holds the Changes since the earlier, audited snapshot.

``--source`` runs the pull of another source tree (a ``src`` folder, e.g. of a git worktree
of an older commit) instead of the installed one; given several times, their runs
alternate, so a before/after comparison shares the machine's state. Not part of the
tests; no test asserts a time.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from generated import SHAPES, simulator_process

from orgaudit.simulator.generate import generate_org


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mb: float
    summary: str


def _pull(source: str | None, db: Path, base_url: str, key_file: Path, command: str) -> Run:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_ADMIN_KEY"}
    if source is not None:
        env["PYTHONPATH"] = source
    argv = [sys.executable, "-m", "orgaudit", command, "--db", str(db),
            "--base-url", base_url, "--admin-key-file", str(key_file)]  # fmt: skip
    if command == "audit":
        argv += ["--out", str(db.with_suffix(".reports"))]
    started = time.perf_counter()
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    ) as child:
        assert child.stdout is not None
        out = child.stdout.read()
        _pid, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if child.returncode not in (0, 1):  # 1: an audit's findings under --fail-on
        raise SystemExit(f"{command} exited {child.returncode}: {out.strip()[-300:]}")
    lines = out.strip().splitlines()
    return Run(seconds, usage.ru_maxrss / 1024, lines[0] if lines else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--org", choices=sorted(SHAPES), action="append")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.025)
    parser.add_argument("--source", action="append", help="a src folder to run instead")
    parser.add_argument("--command", choices=("pull", "audit", "audit-again"), default="pull")
    args = parser.parse_args()
    sources: list[str | None] = args.source or [None]
    work = Path(tempfile.mkdtemp(prefix="orgaudit-pull-bench-"))
    key = f"sk-admin-bench-{secrets.token_hex(16)}"
    key_file = work / "key"
    key_file.write_text(key)
    for org in args.org or ["large"]:
        make = partial(generate_org, SHAPES[org], seed=1, now=int(time.time()))
        with simulator_process(make, key, latency=args.latency, cap=16) as base_url:
            runs: dict[str | None, list[Run]] = {source: [] for source in sources}
            for attempt in range(args.runs):
                for source in sources:
                    db = work / f"{org}-{attempt}-{len(runs[source])}-{id(source)}.db"
                    command = "audit" if args.command == "audit-again" else args.command
                    if args.command == "audit-again":  # last week's audit, not timed
                        _pull(source, db, base_url, key_file, command)
                    run = _pull(source, db, base_url, key_file, command)
                    db.unlink()
                    shutil.rmtree(db.with_suffix(".reports"), ignore_errors=True)
                    runs[source].append(run)
                    print(f"{org} {args.command} {source or 'installed'}: {run.seconds:.1f} s, "
                          f"peak {run.peak_mb:.0f} MB | {run.summary}", flush=True)  # fmt: skip
            for source, done in runs.items():
                seconds = [run.seconds for run in done]
                median = statistics.median(seconds)
                print(
                    f"== {org} org, {source or 'installed'}: median {median:.1f}"
                    f" s (min {min(seconds):.1f}, max {max(seconds):.1f}) over {len(done)} runs; "
                    f"peak memory {max(run.peak_mb for run in done):.0f} MB"
                )


if __name__ == "__main__":
    main()
