"""Files written safely, and bad local input refused in one line.

Every output path is attacked as on a shared machine: a symbolic link planted where a
report, a query result or the database goes; a database another user owns or others can
write; a file that is no orgaudit database; umask 000; a disk that fills (a real EFBIG,
from ``RLIMIT_FSIZE``) while each report format is written; a database the user may only
read. Each run is ``python -m orgaudit`` in a fresh process.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from orgaudit import store
from orgaudit.files import replacing
from orgaudit.simulator import Simulator
from orgaudit.simulator.demo import demo_org

from support import ADMIN_KEY, NOW, Run, cli_env, pull_fixed, run_cli

STEM = "orgaudit-snapshot-1"
FORMATS = {"xlsx": f"{STEM}.xlsx", "json": f"{STEM}.json", "md": f"{STEM}.md"}


@pytest.fixture(scope="module")
def pulled_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("pulled") / "db"
    pull_fixed(demo_org(NOW), db)
    return db


@pytest.fixture
def db(pulled_db: Path, tmp_path: Path) -> Path:
    """A copy of the demo database for one test to do with as it likes."""
    copy = tmp_path / "org.db"
    shutil.copyfile(pulled_db, copy)
    copy.chmod(0o600)
    return copy


def _one_line(run: Run, code: int) -> str:
    assert run.returncode == code, run
    assert "Traceback" not in run.stderr
    [line] = run.stderr.strip().splitlines()
    return line


def _files(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and not p.is_symlink()}


# -- symbolic links ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_a_link_planted_at_a_report_is_refused_and_its_target_untouched(
    db: Path, tmp_path: Path, fmt: str
) -> None:
    out, target = tmp_path / "out", tmp_path / "precious"
    out.mkdir()
    target.write_text("precious")
    (out / FORMATS[fmt]).symlink_to(target)
    run = run_cli("audit", "--offline", "--format", fmt, "--out", out, "--db", db, cwd=tmp_path)
    assert "is a symbolic link; orgaudit does not write through one" in _one_line(run, 2)
    assert target.read_text() == "precious"
    assert sorted(p.name for p in out.iterdir()) == [FORMATS[fmt]]  # nothing else left


@pytest.mark.parametrize("where", ["csv folder", "csv file", "out folder", "query out", "db"])
def test_a_link_planted_at_any_other_output_is_refused(
    db: Path, tmp_path: Path, where: str
) -> None:
    out, target = tmp_path / "out", tmp_path / "elsewhere"
    target.mkdir()
    (target / "coverage.csv").write_text("precious")
    args: list[str | Path] = ["audit", "--offline", "--format", "csv", "--out", out, "--db", db]
    if where == "csv folder":
        out.mkdir()
        (out / f"{STEM}-csv").symlink_to(target)
    elif where == "csv file":
        (out / f"{STEM}-csv").mkdir(parents=True)
        (out / f"{STEM}-csv" / "coverage.csv").symlink_to(target / "coverage.csv")
    elif where == "out folder":
        out.symlink_to(target)
    elif where == "query out":
        (tmp_path / "result.csv").symlink_to(target / "coverage.csv")
        args = ["query", "admin-keys", "--format", "csv", "--out", tmp_path / "result.csv",
                "--db", db]  # fmt: skip
    else:
        (tmp_path / "link.db").symlink_to(db)
        args = ["audit", "--offline", "--out", out, "--db", tmp_path / "link.db"]
    before = _files(target)
    run = run_cli(*args, cwd=tmp_path)
    assert "symbolic link" in _one_line(run, 2)
    assert _files(target) == before


# -- modes ---------------------------------------------------------------------------------


def test_files_are_0600_and_folders_0700_even_under_umask_000(tmp_path: Path) -> None:
    db = tmp_path / "a" / "b" / "org.db"
    out = tmp_path / "r" / "s"
    with Simulator(demo_org(NOW), admin_key=ADMIN_KEY) as sim:
        pulled = run_cli("pull", "--base-url", sim.base_url, "--db", db, cwd=tmp_path,
                         umask=0, OPENAI_ADMIN_KEY=ADMIN_KEY)  # fmt: skip
    assert pulled.returncode == 0, pulled
    audited = run_cli("audit", "--offline", "--format", "xlsx,csv,json,md", "--out", out,
                      "--db", db, cwd=tmp_path, umask=0)  # fmt: skip
    assert audited.returncode in (0, 1), audited
    made = [tmp_path / "a", tmp_path / "a" / "b", tmp_path / "r", out, out / f"{STEM}-csv"]
    for folder in made:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    files = [db, *out.rglob("*.*")]
    assert len(files) > 10
    for path in files:
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


# -- the database --------------------------------------------------------------------------


def test_a_database_others_can_write_is_refused_untouched(db: Path, tmp_path: Path) -> None:
    db.chmod(0o666)
    before = db.read_bytes()
    run = run_cli("audit", "--offline", "--out", tmp_path / "out", "--db", db, cwd=tmp_path)
    assert "others can write to the snapshot database" in _one_line(run, 2)
    assert db.read_bytes() == before
    assert not (tmp_path / "out").exists()


def test_a_database_of_another_user_is_refused_untouched(db: Path, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        os.chown(db, 65534, 65534)  # root can hand it to "nobody"
        theirs = db
    else:
        theirs = Path(shutil.which("python3") or sys.executable).resolve()  # root's, surely
    before = theirs.read_bytes()
    run = run_cli("snapshots", "--db", theirs, cwd=tmp_path)
    assert "belongs to another user" in _one_line(run, 2)
    assert theirs.read_bytes() == before


@pytest.mark.parametrize("kind", ["a 1-byte text file", "another application's database"])
def test_a_file_that_is_no_orgaudit_database_is_never_written(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "not-ours.db"
    if kind == "a 1-byte text file":
        path.write_text("x")
    else:
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE contacts (name TEXT)")
    path.chmod(0o600)
    before = path.read_bytes()
    with Simulator(demo_org(NOW), admin_key=ADMIN_KEY) as sim:
        run = run_cli("pull", "--base-url", sim.base_url, "--db", path, cwd=tmp_path,
                      OPENAI_ADMIN_KEY=ADMIN_KEY)  # fmt: skip
        assert sim.requests == []
    assert "is not a usable orgaudit database" in _one_line(run, 2)
    assert path.read_bytes() == before


def test_a_pull_that_fails_leaves_no_new_file(tmp_path: Path) -> None:
    db = tmp_path / "new" / "org.db"
    with Simulator(demo_org(NOW), admin_key=ADMIN_KEY) as sim:
        run = run_cli("pull", "--base-url", sim.base_url, "--db", db, cwd=tmp_path,
                      OPENAI_ADMIN_KEY=ADMIN_KEY[:-4] + "nope")  # fmt: skip
    assert "the admin key was refused" in _one_line(run, 3)
    assert list((tmp_path / "new").iterdir()) == []  # no database, journal or SQLite file


# -- a full disk ---------------------------------------------------------------------------

# `orgaudit audit` as a user runs it, whose disk fills once the database is written: from
# then on no file may grow past 2 KB (RLIMIT_FSIZE), so each report fails with EFBIG.
_FULL_DISK_AUDIT = """
import resource, sys
import orgaudit.app.audit as audit
from orgaudit.cli import main
stored = audit.store_derived
def store_then_fill_the_disk(*args):
    done = stored(*args)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2048, resource.RLIM_INFINITY))
    return done
audit.store_derived = store_then_fill_the_disk
sys.argv = ["orgaudit", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("fmt", ["xlsx", "json", "md", "csv"])
def test_a_disk_that_fills_while_a_report_is_written_leaves_the_old_file(
    db: Path, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / "out"
    run_cli("audit", "--offline", "--format", fmt, "--out", out, "--db", db, cwd=tmp_path)
    old = _files(out)
    assert old
    done = subprocess.run(
        [sys.executable, "-c", _FULL_DISK_AUDIT, "audit", "--offline", "--format", fmt,
         "--out", str(out), "--db", str(db)],
        capture_output=True, text=True, timeout=120, env=cli_env(), cwd=tmp_path,
    )  # fmt: skip
    line = _one_line(Run(done.returncode, done.stdout, done.stderr), 3)
    assert "cannot write" in line and "File too large" in line, line
    assert _files(out) == old  # the old reports, whole; no part of a new one left over


# -- a database the user may only read -----------------------------------------------------


@contextmanager
def read_only(db: Path) -> Iterator[None]:
    """``db`` read-only for this user: chmod 400, or for root (whom modes do not stop) an
    immutable file (chattr +i), where the file system has them."""
    if os.geteuid() != 0:
        db.chmod(0o400)
        yield
        return
    if subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode != 0:
        pytest.skip("run as root on a file system without immutable files: nothing is read-only")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True)


def test_audit_offline_works_on_a_read_only_database(db: Path, tmp_path: Path) -> None:
    before = db.read_bytes()
    with read_only(db):
        run = run_cli("audit", "--offline", "--format", "json", "--out", tmp_path / "out",
                      "--db", db, cwd=tmp_path)  # fmt: skip
    assert run.returncode in (0, 1), run
    assert "the database is read-only: the findings were worked out in memory" in run.stdout
    assert db.read_bytes() == before
    assert (tmp_path / "out" / f"{STEM}.json").stat().st_size > 1000


def test_a_read_only_database_of_an_older_schema_is_one_line_not_a_failed_write(
    db: Path, tmp_path: Path
) -> None:
    # Moving a database to a newer schema writes to it; one the user may not write says
    # so, and what to do, instead of failing half-way.
    older = tmp_path / "older.db"
    older.write_bytes(db.read_bytes())
    older.chmod(0o600)
    raw = sqlite3.connect(older)
    raw.execute("ALTER TABLE derived_info DROP COLUMN findings_basis")
    raw.execute(f"PRAGMA user_version = {store.SCHEMA_VERSION - 1}")
    raw.commit()
    raw.close()
    before = older.read_bytes()
    with read_only(older):
        run = run_cli("audit", "--offline", "--format", "json", "--out", tmp_path / "out",
                      "--db", older, cwd=tmp_path)  # fmt: skip
    line = _one_line(run, 2)
    assert f"must move to version {store.SCHEMA_VERSION}" in line
    assert "copy it to a folder you may write" in line
    assert older.read_bytes() == before


# -- bad local input: exit 2, one line -------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("a config nested 100,000 deep", "nested too deeply to be a configuration"),
        ("a catalog nested 100,000 deep", "nested too deeply to be a catalog"),
        ("a base URL holding a tab", "--base-url holds a space, a control character"),
        ("a base URL with no port number", "--base-url is not a URL"),
    ],
)
def test_bad_local_input_is_exit_2_not_an_internal_error(
    db: Path, tmp_path: Path, case: str, expected: str
) -> None:
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 100_000)
    args: dict[str, list[str | Path]] = {
        "a config nested 100,000 deep": ["audit", "--offline", "--config", deep],
        "a catalog nested 100,000 deep": ["audit", "--offline", "--catalog", deep],
        "a base URL holding a tab": ["pull", "--base-url", "https://api.openai.com/\tv1"],
        "a base URL with no port number": ["pull", "--base-url", "https://api.example:x/v1"],
    }
    run = run_cli(*args[case], "--db", db, cwd=tmp_path, OPENAI_ADMIN_KEY=ADMIN_KEY)
    assert expected in _one_line(run, 2)


def test_an_interrupted_write_leaves_the_old_file_and_nothing_else(tmp_path: Path) -> None:
    # Ctrl-C while a report is written: the temporary file goes, the old report stays.
    report = tmp_path / "report.md"
    report.write_text("old")
    with pytest.raises(KeyboardInterrupt), replacing(report) as temporary:
        temporary.write_text("half of a new")
        raise KeyboardInterrupt
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]
    assert report.read_text() == "old"
