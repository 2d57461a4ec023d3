"""Benchmark: an access-review campaign on a generated org, as a user runs it.

Times ``orgaudit review open`` (its workbook: one row per item), then fills every row
Keep (with openpyxl; not timed: it stands for the reviewers), and times ``orgaudit review
close`` reading it back and writing the evidence, each as a command in its own process
with its default settings. Run:

    python bench/review_bench.py --org large          # issue #6's large org, pulled first
    python bench/review_bench.py --db PATH            # a snapshot database already pulled

The database is copied first: a campaign, once stored, is never deleted. Not part of
the test suite; no test asserts a time.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from generated import SHAPES, pull_generated
from openpyxl import load_workbook


def _timed(*args: str | Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "orgaudit", *map(str, args)], capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"orgaudit {' '.join(map(str, args))} failed:\n{done.stderr}")
    return seconds


def _fill(workbook: Path, filled: Path) -> int:
    """Every row Keep, signed by someone who is no subject."""
    book = load_workbook(workbook)
    sheet = book["Review"]
    columns = {cell.value: cell.column for cell in sheet[1]}
    today = datetime.now(UTC).date()
    for row in range(2, sheet.max_row + 1):
        sheet.cell(row, columns["Decision"]).value = "Keep"
        sheet.cell(row, columns["Justification"]).value = "still needed"
        sheet.cell(row, columns["Reviewer"]).value = "bench-reviewer@example.org"
        sheet.cell(row, columns["Date"]).value = today
    book.save(filled)
    return sheet.max_row - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--org", choices=sorted(SHAPES), default="large")
    parser.add_argument("--db", type=Path, help="a snapshot database to copy instead of pulling")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="orgaudit-review-bench-") as folder:
        work = Path(folder)
        db = work / "orgaudit.db"
        if options.db is not None:
            shutil.copyfile(options.db, db)
            db.chmod(0o600)
        else:
            pull_generated(SHAPES[options.org], db)
        due = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
        opened = _timed("review", "open", "--due", due, "--db", db, "--out", work)
        [workbook] = work.glob("AR-*-review.xlsx")
        size = workbook.stat().st_size / 1e6
        print(f"review open: {opened:.1f} s, workbook {size:.1f} MB")
        rows = _fill(workbook, work / "filled.xlsx")
        closed = _timed("review", "close", work / "filled.xlsx", "--db", db)
        print(f"review close: {closed:.1f} s for {rows:,} rows")


if __name__ == "__main__":
    main()
