"""Make ``libreoffice-filled.xlsx``: a review workbook filled in and saved by LibreOffice.

Why it exists
    Reviewers fill the review workbook in with more than Excel, and a workbook filled in
    and saved by LibreOffice must still close (``tests/test_review_libreoffice.py``).
    LibreOffice rewrites the whole file when it saves (its own styles, shared strings,
    dates as serial numbers, its own sheet protection), so the test needs a file that
    LibreOffice really wrote. This script made the committed fixture once; the test runs
    without LibreOffice.

How to run it (from the repository root, with the project's venv active)
    python tests/data/review/make_libreoffice_review.py

    It rewrites tests/data/review/libreoffice-filled.xlsx. Run it again only if the
    demo org, the campaign's items or the workbook's layout change (the test then fails
    on the checksums or the header), and commit the new file.

What it needs
    LibreOffice (``soffice`` on PATH) and its Python-UNO bridge for the system Python
    (Debian/Ubuntu: ``apt-get install libreoffice-calc python3-uno``; the system
    ``/usr/bin/python3`` must ``import uno``). Override with ``ORGAUDIT_UNO_PYTHON`` and
    ``ORGAUDIT_SOFFICE``.

What it does
    1. Pulls the demo org (at the tests' fixed time, ``support.FIXED``) from the
       simulator into a snapshot database in a temporary folder, as the tests do.
    2. Opens a campaign in-process with a fixed clock (2026-12-01 09:00 UTC, due
       2026-12-31, by auditor@example.com): campaign AR-20261201-1.
    3. Re-runs itself under the UNO Python, which starts a headless LibreOffice with a
       throw-away profile, opens the issued workbook, and types into the yellow cells
       of the (still protected) Review sheet, row by row: Decision (Remove for the
       API key bob-laptop, Change to "member" for dave@example.com's user role in
       Payments, Keep elsewhere), Justification "reviewed", Reviewer
       frank@example.com (alice@example.com where frank answers for the row, so no row
       is a self-review), and Date 2026-12-01 entered as typed input, so LibreOffice
       parses it into a date serial number in the yyyy-mm-dd formatted cell. It then
       saves the document as "Excel 2007-365" (.xlsx).
    4. Reads the file back with openpyxl, checks the dates came back as dates, closes
       the campaign with it in the temporary database, and copies it here.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent.parent
FIXTURE = HERE / "libreoffice-filled.xlsx"
FILL_FLAG = "--fill-with-libreoffice"

CAMPAIGN_ID = "AR-20261201-1"
DECIDED_ON = "2026-12-01"
JUSTIFICATION = "reviewed"
REVIEWER = "frank@example.com"
STAND_IN = "alice@example.com"  # signs the rows frank answers for
REMOVED_KEY = "bob-laptop"
CHANGED = ("dave@example.com", "Payments", "member")  # subject, project, new role


# -- the venv half: build, plan, check ------------------------------------------------------


def _plan(items: list[dict[str, object]], columns: list[str]) -> dict[str, object]:
    """What to type in each row: every row decided, none a self-review."""
    rows = []
    changed = 0
    for item in sorted(items, key=lambda i: int(str(i["row_number"]))):
        kind, subject, project = item["kind"], item["subject"], item["project"]
        new_role = ""
        if kind == "API key" and subject == REMOVED_KEY:
            decision = "Remove"
        elif kind == "user role" and (subject, project) == CHANGED[:2]:
            decision, new_role = "Change", CHANGED[2]
            changed += 1
        else:
            decision = "Keep"
        answering = {n.casefold() for n in json.loads(str(item["answering_names"]))}
        reviewer = STAND_IN if REVIEWER in answering else REVIEWER
        assert reviewer not in answering, item
        rows.append(
            {
                "row": int(str(item["row_number"])),
                "Decision": decision,
                "New role": new_role,
                "Justification": JUSTIFICATION,
                "Reviewer": reviewer,
                "Date": DECIDED_ON,
            }
        )
    assert changed == 1, f"expected one user role of {CHANGED[0]} in {CHANGED[1]}"
    assert any(r["Decision"] == "Remove" for r in rows), f"no API key {REMOVED_KEY}"
    # Columns as LibreOffice numbers them (from 0).
    indexes = {name: columns.index(name) for name in ("Decision", "New role", "Justification")}
    indexes |= {name: columns.index(name) for name in ("Reviewer", "Date")}
    return {"sheet": "Review", "columns": indexes, "rows": rows}


def main() -> None:
    sys.path.insert(0, str(TESTS))
    from datetime import UTC, date, datetime

    from openpyxl import load_workbook

    from orgaudit.app.review import CloseOptions, OpenOptions, close_campaign, open_campaign
    from orgaudit.review.close import ReviewRejected
    from orgaudit.review.items import REVIEW_SHEET_COLUMNS
    from orgaudit.simulator.demo import demo_org
    from orgaudit.store.database import SnapshotDatabase

    from support import FIXED, pull_fixed

    uno_python = os.environ.get("ORGAUDIT_UNO_PYTHON", "/usr/bin/python3")
    with tempfile.TemporaryDirectory(prefix="orgaudit-lo-") as temporary:
        base = Path(temporary)
        db = base / "snapshots.db"
        pull_fixed(demo_org(int(FIXED.timestamp())), db)
        with SnapshotDatabase.open(db) as handle:
            opened = open_campaign(
                handle,
                OpenOptions(due=date(2026, 12, 31), out_dir=base / "out", by="auditor@example.com"),
                clock=lambda: datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
            )
            assert opened.campaign.id == CAMPAIGN_ID, opened.campaign.id
            items = handle.campaigns.rows("review_items", CAMPAIGN_ID)
        plan = _plan(items, list(REVIEW_SHEET_COLUMNS))
        plan_path = base / "plan.json"
        plan_path.write_text(json.dumps(plan, indent=1), encoding="utf-8")
        filled = base / "filled.xlsx"
        subprocess.run(
            [uno_python, __file__, FILL_FLAG, str(opened.workbook), str(filled), str(plan_path)],
            check=True,
            timeout=300,
        )

        # What a reader gets back from LibreOffice's file.
        book = load_workbook(filled, read_only=True, data_only=True)
        try:
            values = list(book["Review"].iter_rows(values_only=True))
        finally:
            book.close()
        header = list(values[0][: len(REVIEW_SHEET_COLUMNS)])
        print("header:", header)
        date_at = REVIEW_SHEET_COLUMNS.index("Date")
        dates = {repr(row[date_at]) for row in values[1:] if any(v is not None for v in row)}
        print("Date cells read back as:", sorted(dates))
        assert all(isinstance(row[date_at], datetime) for row in values[1 : len(items) + 1])

        with SnapshotDatabase.open(db) as handle:
            try:
                closed = close_campaign(
                    handle,
                    CloseOptions(workbook=filled, by="auditor@example.com"),
                    clock=lambda: datetime(2026, 12, 2, 9, 0, tzinfo=UTC),
                )
            except ReviewRejected as refused:
                print(*refused.details, sep="\n", file=sys.stderr)
                shutil.copyfile(filled, HERE / "refused.xlsx")  # to look at; not committed
                raise
        print("closed:", dict(closed.decisions))
        shutil.copyfile(filled, FIXTURE)
    print(f"wrote {FIXTURE}")


# -- the UNO half: run under the Python that has LibreOffice's bridge -----------------------


def fill_with_libreoffice(issued: Path, target: Path, plan_path: Path) -> None:
    """Type the plan into ``issued`` with a headless LibreOffice; save it as ``target``."""
    import uno  # the system Python's LibreOffice bridge (python3-uno)
    from com.sun.star.beans import PropertyValue  # type: ignore[import-not-found]

    def props(**values: object) -> tuple[object, ...]:
        out = []
        for name, value in values.items():
            prop = PropertyValue()
            prop.Name, prop.Value = name, value
            out.append(prop)
        return tuple(out)

    plan = json.loads(plan_path.read_text(encoding="utf-8"))
    soffice = os.environ.get("ORGAUDIT_SOFFICE", "soffice")
    with tempfile.TemporaryDirectory(prefix="orgaudit-lo-profile-") as profile:
        pipe = f"orgaudit_review_{os.getpid()}"
        office = subprocess.Popen(
            [
                soffice,
                "--headless",
                "--invisible",
                "--nologo",
                "--norestore",
                "--nodefault",
                f"-env:UserInstallation={Path(profile).as_uri()}",
                f"--accept=pipe,name={pipe};urp;StarOffice.ComponentContext",
            ]
        )
        try:
            local = uno.getComponentContext()
            resolver = local.ServiceManager.createInstanceWithContext(
                "com.sun.star.bridge.UnoUrlResolver", local
            )
            context = None
            for _ in range(120):
                try:
                    context = resolver.resolve(
                        f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext"
                    )
                    break
                except Exception:  # NoConnectException until soffice listens
                    time.sleep(0.5)
            if context is None:
                raise SystemExit("LibreOffice did not start (no UNO connection)")
            desktop = context.ServiceManager.createInstanceWithContext(
                "com.sun.star.frame.Desktop", context
            )
            document = desktop.loadComponentFromURL(
                issued.resolve().as_uri(), "_blank", 0, props(Hidden=True)
            )
            try:
                sheet = document.Sheets.getByName(plan["sheet"])
                print("Review sheet protected in LibreOffice:", sheet.isProtected())
                columns = plan["columns"]
                for row in plan["rows"]:
                    at = row["row"] - 1  # LibreOffice counts rows from 0
                    for name in ("Decision", "New role", "Justification", "Reviewer"):
                        if row[name]:
                            sheet.getCellByPosition(columns[name], at).setString(row[name])
                    # As typed into the cell: LibreOffice parses the input, and an ISO date
                    # becomes a date serial number (the cell is formatted yyyy-mm-dd).
                    cell = sheet.getCellByPosition(columns["Date"], at)
                    cell.setFormula(row["Date"])
                    value_type = uno.Enum("com.sun.star.table.CellContentType", "VALUE")
                    if cell.getType() != value_type:
                        raise SystemExit(f"row {row['row']}: {row['Date']} was not read as a date")
                print("Date serial:", cell.getValue(), "shown as", cell.getString())
                document.storeAsURL(
                    target.resolve().as_uri(),
                    props(FilterName="Calc MS Excel 2007 XML", Overwrite=True),
                )
            finally:
                document.close(True)
            with contextlib.suppress(Exception):  # the bridge drops as soffice exits
                desktop.terminate()
            office.wait(timeout=60)
        finally:
            if office.poll() is None:
                office.kill()
                office.wait()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == FILL_FLAG:
        fill_with_libreoffice(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        main()
