"""Benchmark: the requests a resumed pull saves, killed at 25%, 50% and 90% of the lists.

The large org (scale_bench's) is served by the simulator in a process of its own with
25 ms of latency. One uninterrupted pull gives the requests and lists a whole pull takes;
then, for each fraction, a pull is started with the defaults a user runs it with (``orgaudit
pull``: it journals as it goes), killed with SIGKILL once its journal holds that fraction
of the lists, and resumed with ``orgaudit pull --resume``; the resumed pull's requests and
seconds are printed against the whole pull's. Run:

    python bench/resume_bench.py [--latency 0.025] [--users N --projects N]

Not part of the tests; no test asserts a time.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from generated import SHAPES, simulator_process

from orgaudit.collect.journal import finished_lists, journal_path
from orgaudit.simulator.generate import generate_org

SUMMARY_REQUESTS = " requests ("


def _pull(db: Path, base_url: str, key_file: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orgaudit", "pull", "--db", str(db), "--base-url", base_url,
         "--admin-key-file", str(key_file), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "OPENAI_ADMIN_KEY"},
    )  # fmt: skip


def _requests(summary: str) -> int:
    """The request count of the pull's one-line summary ("...; 16344 requests (0 retried) ...")."""
    head = summary.split(SUMMARY_REQUESTS)[0]
    return int(head.rsplit(" ", 1)[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.025)
    parser.add_argument("--org", choices=sorted(SHAPES), default="large")
    args = parser.parse_args()
    org = generate_org(SHAPES[args.org], seed=1, now=int(time.time()))
    work = Path(tempfile.mkdtemp(prefix="orgaudit-resume-bench-"))
    key = f"sk-admin-bench-{secrets.token_hex(16)}"
    key_file = work / "key"
    key_file.write_text(key)
    with simulator_process(org, key, latency=args.latency, cap=16) as base_url:
        whole_db = work / "whole.db"
        started = time.perf_counter()
        done = _pull(whole_db, base_url, key_file)
        summary, _ = done.communicate()
        whole_seconds = time.perf_counter() - started
        whole = _requests(summary.strip().splitlines()[-1])
        # The lists a whole pull reads, each journaled once: coverage counts them.
        with sqlite3.connect(whole_db) as conn:
            most = int(conn.execute("SELECT SUM(requests) FROM coverage").fetchone()[0])
        print(
            f"{args.org} org, whole pull: {whole} requests in {whole_seconds:.1f} s; {most} lists"
        )
        for fraction in (0.25, 0.5, 0.9):
            db = work / f"cut-{fraction}.db"
            cut = _pull(db, base_url, key_file)
            while cut.poll() is None and finished_lists(journal_path(db)) < fraction * most:
                time.sleep(0.02)
            cut.send_signal(signal.SIGKILL)
            cut.communicate()
            time.sleep(1.0)  # let the killed pull's last answers land
            started = time.perf_counter()
            resumed = _pull(db, base_url, key_file, "--resume")
            out, err = resumed.communicate()
            seconds = time.perf_counter() - started
            if resumed.returncode != 0:
                raise SystemExit(f"the resumed pull failed: {err.strip()}")
            requests = _requests(out.strip().splitlines()[-1])
            print(
                f"killed at {fraction:.0%} of the lists: resumed with {requests} requests in "
                f"{seconds:.1f} s; {whole - requests} requests saved "
                f"({(whole - requests) / whole:.0%} of a whole pull)"
            )


if __name__ == "__main__":
    main()
