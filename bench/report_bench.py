"""Benchmark: the report writers on a generated org (default 5,000 users, 500 projects,
40 keys per project: 20,000 keys).

Pulls the generated org from the simulator (in a process of its own) into a temporary
database (in a child process, so this process's memory figures are the audit's alone),
then times the analysis (load_analysis, run_checks, build_report) and each writer separately: once
plainly for the time, once under tracemalloc for the peak of Python allocations. Run:

    python bench/report_bench.py [--users 5000] [--projects 500] [--keys-per-project 40]
    python bench/report_bench.py --org large    # or --org huge: issue #6's orgs

``--db PATH`` reuses a database an earlier run kept (``--keep``). Not part of the test
suite; no test asserts a time.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from generated import SHAPES, medium_shape, peak_rss_mb, pull_generated

from orgaudit.checks import CHECKS
from orgaudit.checks.findings import AuditSettings, run_checks
from orgaudit.model.analysis import load_analysis
from orgaudit.render.report import WRITERS
from orgaudit.render.report.tables import ReportData, build_report
from orgaudit.simulator.generate import OrgShape
from orgaudit.store.database import SnapshotDatabase


def _pull(shape: OrgShape, db_path: Path, concurrency: int) -> None:
    """Generate the org, serve it and pull it into ``db_path`` (in a child process)."""
    pull_generated(shape, db_path, concurrency=concurrency)


def _max_rss_mb() -> float:
    """The process's peak resident set so far."""
    return peak_rss_mb()


def _size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(f.stat().st_size for f in files) / 1e6


def _measure(step: Callable[[], object], traced: bool) -> tuple[float, float | None]:
    """Seconds of a plain run, and the tracemalloc peak (MB) of a second, traced run."""
    started = time.perf_counter()
    step()
    seconds = time.perf_counter() - started
    if not traced:
        return seconds, None
    tracemalloc.start()
    try:
        step()
        peak = tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()
    return seconds, peak


def _analyze(db: SnapshotDatabase) -> ReportData:
    analysis = load_analysis(db, None, None)
    findings = run_checks(CHECKS, analysis, AuditSettings())
    return build_report(analysis, CHECKS, findings)


def audit_figures(db_path: Path, out: Path, *, traced: bool) -> None:
    """Print the analysis and each writer's figures for the latest snapshot in ``db_path``.

    Run it in a fresh process: its max RSS figures are then the audit's own.
    """
    print(f"max RSS before the audit: {_max_rss_mb():.0f} MB")
    started = time.perf_counter()
    with SnapshotDatabase.open(db_path) as db:
        report = _analyze(db)
    analysis_seconds = time.perf_counter() - started
    sizes = {name: len(frame) for name, frame in report.tables.items()}
    print(
        f"analysis (load_analysis, run_checks, build_report): {analysis_seconds:.1f} s; "
        f"{len(report.findings)} findings; max RSS {_max_rss_mb():.0f} MB"
    )
    print("rows: " + ", ".join(f"{name} {rows:,}" for name, rows in sizes.items()))
    print(f"access matrix: {'written' if report.matrix is not None else report.matrix_note}")

    out.mkdir(parents=True, exist_ok=True)
    print()
    print(
        f"{'writer':<6} {'seconds':>8} {'tracemalloc peak MB':>20} {'max RSS MB':>11} {'MB out':>7}"
    )
    for name, writer in WRITERS.items():
        written: list[Path] = []

        def step(writer: Callable[..., Path] = writer, written: list[Path] = written) -> None:
            written.append(writer(report, out, "bench"))

        seconds, peak = _measure(step, traced=traced)
        traced_peak = "-" if peak is None else f"{peak:.0f}"
        print(
            f"{name:<6} {seconds:>8.1f} {traced_peak:>20} {_max_rss_mb():>11.0f} "
            f"{_size_mb(written[-1]):>7.1f}"
        )
    print()
    print("max RSS is the process's peak so far (it includes the analysis before it).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--org", choices=sorted(SHAPES), help="the issue's large or huge org (else --users ...)"
    )
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--projects", type=int, default=500)
    parser.add_argument("--keys-per-project", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--db", type=Path, help="audit this database instead of pulling")
    parser.add_argument("--keep", action="store_true", help="keep the database and reports")
    parser.add_argument(
        "--no-trace",
        action="store_true",
        help="skip the tracemalloc runs (they slow openpyxl several-fold on the huge org)",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="orgaudit-report-bench-"))
    db_path = args.db or work / "bench.db"
    if args.db is None:
        shape = (
            SHAPES[args.org]
            if args.org
            else medium_shape(args.users, args.projects, args.keys_per_project)
        )
        child = multiprocessing.get_context("spawn").Process(
            target=_pull, args=(shape, db_path, args.concurrency)
        )
        child.start()
        child.join()
        if child.exitcode != 0:
            raise SystemExit(f"the pull failed (exit {child.exitcode})")

    audit_figures(db_path, work / "out", traced=not args.no_trace)
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
