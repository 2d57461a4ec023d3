"""The command line as a user runs it: a real subprocess against the simulator on loopback.

Every test runs ``python -m orgaudit`` in a fresh process with a controlled environment
(no inherited key or database) and checks only what a user sees: the exit code, stdout,
stderr and the files left behind. The simulator runs in the test process.
"""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer

from orgaudit import __version__, store
from orgaudit.cli import app
from orgaudit.collect.journal import finished_lists
from orgaudit.settings import AdminKey, ClientSettings, RetryPolicy
from orgaudit.simulator import Fault, Simulator
from orgaudit.simulator.demo import DEMO_CASES
from orgaudit.simulator.org import SimOrg

from support import ADMIN_KEY, PULL, Run, cli_env, entity_tables, fast_settings, pull, run_cli

# The part of the test key that no redacted form shows (those keep 8 + 4 characters).
KEY_MIDDLE = ADMIN_KEY[len("sk-admin-") : -4]
SUMMARY = re.compile(
    r"^snapshot (\d+): (\d+) users, (\d+) projects, .*; (\d+) requests \((\d+) retried\) "
    r"in [\d.]+ s$"
)


def assert_one_line_error(run: Run, code: int) -> str:
    """The run failed with ``code`` and one ``orgaudit: error:`` line; return that line."""
    assert run.returncode == code, run
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("orgaudit: error: "), run.stderr
    assert run.stdout == ""
    return lines[0]


def snapshot_ids(db: Path) -> list[int]:
    with store.connect(db) as conn:
        return [info.id for info in store.list_snapshots(conn)]


@pytest.fixture
def seeded_db(simulator: Simulator, tmp_path: Path) -> Path:
    """A database holding one snapshot of the demo org, written in this process."""
    db = tmp_path / "seeded.db"
    pull(AdminKey(ADMIN_KEY), fast_settings(simulator), PULL, db)
    assert snapshot_ids(db) == [1]
    return db


def closed_port() -> int:
    """A loopback port nothing listens on (bound, noted and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- 1. demo ---------------------------------------------------------------------------------


def test_demo_pulls_into_the_given_db_and_prints_the_cases(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    run = run_cli("demo", "--db", db, cwd=tmp_path)

    assert run.returncode == 0, run
    assert "Traceback" not in run.stderr
    assert re.search(r"^snapshot 1: .* every source complete;", run.stdout, re.MULTILINE)
    assert f"database: {db}" in run.stdout
    for name in DEMO_CASES:
        assert f"  - {name}: " in run.stdout
    assert db.read_bytes().startswith(b"SQLite format 3\x00")
    with store.connect(db) as conn:
        snapshots = store.list_snapshots(conn)
    assert [s.id for s in snapshots] == [1]
    assert snapshots[0].base_url.startswith("http://127.0.0.1:")


# -- 2. pull and snapshots -------------------------------------------------------------------


def test_pull_twice_then_snapshots_lists_both(
    simulator: Simulator, demo: SimOrg, tmp_path: Path
) -> None:
    db = tmp_path / "org.db"
    base = ("--base-url", simulator.base_url, "--db", str(db))

    first = run_cli("pull", *base, cwd=tmp_path, OPENAI_ADMIN_KEY=ADMIN_KEY)
    assert first.returncode == 0, first
    lines = first.stdout.splitlines()
    assert len(lines) == 1, first.stdout
    match = SUMMARY.match(lines[0])
    assert match, lines[0]
    assert match.group(1, 2, 3) == ("1", str(len(demo.users)), str(len(demo.projects)))
    assert "every source complete" in lines[0]
    assert int(match.group(4)) == simulator.count()  # every request the server saw

    second = run_cli("pull", *base, cwd=tmp_path, OPENAI_ADMIN_KEY=ADMIN_KEY)
    assert second.returncode == 0, second
    assert second.stdout.startswith("snapshot 2: ")
    assert snapshot_ids(db) == [1, 2]

    listed = run_cli("snapshots", "--db", db, cwd=tmp_path)
    assert listed.returncode == 0, listed
    # A rich table: a row starts with its id in the first cell (wrapped lines leave it blank).
    ids = re.findall(r"^\s*[│|]\s*(\d+)\s*[│|]", listed.stdout, re.MULTILINE)
    assert ids == ["1", "2"], listed.stdout


def test_pull_reads_the_key_from_admin_key_file(simulator: Simulator, tmp_path: Path) -> None:
    key_file = tmp_path / "admin.key"
    key_file.write_text(ADMIN_KEY + "\n", encoding="utf-8")
    db = tmp_path / "org.db"

    run = run_cli(
        "pull", "--base-url", simulator.base_url, "--admin-key-file", key_file, "--db", db,
        cwd=tmp_path,
    )  # fmt: skip

    assert run.returncode == 0, run
    assert SUMMARY.match(run.stdout.strip()), run.stdout
    assert snapshot_ids(db) == [1]


def _key_file(case: str, folder: Path) -> Path:
    """A key file as one case of the key-file checks would find it."""
    path = folder / "admin.key"
    contents = {
        "bom": b"\xef\xbb\xbf" + ADMIN_KEY.encode() + b"\r\n",
        "not ascii": ADMIN_KEY.encode()[:-2] + "\u00e9".encode(),
        "a nul byte": ADMIN_KEY.encode()[:-2] + b"\x00x",
        "two lines": f"{ADMIN_KEY}\n{ADMIN_KEY}\n".encode(),
    }
    if case in contents:
        path.write_bytes(contents[case])
        path.chmod(0o600)
    elif case == "a FIFO":
        os.mkfifo(path, 0o600)
    elif case == "a folder":
        path.mkdir(mode=0o700)
    elif case == "300 MB":
        with path.open("wb") as handle:
            handle.truncate(300 * 1024 * 1024)  # sparse: no 300 MB written
        path.chmod(0o600)
    elif case == "a device":
        return Path("/dev/urandom")
    else:
        raise AssertionError(case)
    return path


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("a FIFO", "is a FIFO, not a regular file"),
        ("a folder", "is a folder, not a regular file"),
        ("a device", "is a device, not a regular file"),
        ("300 MB", "is 314,572,800 bytes; a key file holds one key"),
        ("not ascii", "holds a byte that is not ASCII"),
        ("a nul byte", "holds a character no key has"),
        ("two lines", "holds 2 lines of text"),
    ],
)
def test_a_key_file_that_is_no_key_file_is_refused_at_once(
    simulator: Simulator, tmp_path: Path, case: str, expected: str
) -> None:
    # Each is refused before a request, in one line (the FIFO and the device are never
    # waited on or read whole: run_cli's timeout would end a hang).
    key_file = _key_file(case, tmp_path)
    run = run_cli("pull", "--base-url", simulator.base_url, "--admin-key-file", key_file,
                  "--db", tmp_path / "db", cwd=tmp_path)  # fmt: skip
    assert expected in assert_one_line_error(run, 2)
    assert simulator.requests == []
    assert not (tmp_path / "db").exists()


def test_a_key_file_others_can_read_is_said_and_refused_with_strict(
    simulator: Simulator, tmp_path: Path
) -> None:
    key_file = tmp_path / "admin.key"
    key_file.write_text(ADMIN_KEY)
    key_file.chmod(0o644)
    args = ["pull", "--base-url", simulator.base_url, "--admin-key-file", key_file]
    run = run_cli(*args, "--db", tmp_path / "db", cwd=tmp_path)
    assert run.returncode == 0, run
    assert run.stderr.strip() == (
        f"orgaudit: warning: the admin key file {key_file} can be read or written by others "
        f"(mode 0644); `chmod 600 {key_file}`"
    )
    strict = run_cli(*args, "--db", tmp_path / "db2", "--strict", cwd=tmp_path)
    assert "(mode 0644)" in assert_one_line_error(strict, 2)
    key_file.chmod(0o600)
    assert run_cli(*args, "--db", tmp_path / "db3", "--strict", cwd=tmp_path).stderr == ""


def test_a_key_file_with_a_byte_order_mark_is_read(simulator: Simulator, tmp_path: Path) -> None:
    key_file = _key_file("bom", tmp_path)
    run = run_cli("pull", "--base-url", simulator.base_url, "--admin-key-file", key_file,
                  "--db", tmp_path / "db", cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run
    assert run.stderr == ""


def test_a_pull_writes_no_core_file(demo: SimOrg, tmp_path: Path) -> None:
    # A core file would hold the key: the running pull's own limit says none is written.
    with Simulator(demo, admin_key=ADMIN_KEY, latency=0.3) as sim:
        process = _start_pull(sim, tmp_path / "db")
        try:
            _wait_for_requests(sim, 1)
            limits = Path(f"/proc/{process.pid}/limits").read_text()
        finally:
            process.kill()
            process.communicate(timeout=30)
    [core] = [line for line in limits.splitlines() if line.startswith("Max core file size")]
    assert core.split()[4:6] == ["0", "0"], core


# -- 3. usage errors: exit 2 -----------------------------------------------------------------


def _usage_case(case: str, tmp_path: Path, base_url: str) -> tuple[list[str], dict[str, str], str]:
    """Arguments, extra environment and a fragment of the expected error for one case."""
    db = str(tmp_path / "org.db")
    key = {"OPENAI_ADMIN_KEY": ADMIN_KEY}
    if case == "no key":
        return ["pull", "--base-url", base_url, "--db", db], {}, "no admin key"
    if case == "missing key file":
        missing = str(tmp_path / "nope.key")
        args = ["pull", "--base-url", base_url, "--db", db, "--admin-key-file", missing]
        return args, {}, f"cannot read the admin key file {missing}"
    if case == "ftp base url":
        return ["pull", "--base-url", "ftp://x", "--db", db], key, "--base-url must start"
    if case == "concurrency 0":
        args = ["pull", "--base-url", base_url, "--db", db, "--concurrency", "0"]
        return args, key, "--concurrency must be between 1 and 256"
    if case == "db is a directory":
        directory = tmp_path / "adir"
        directory.mkdir()
        args = ["pull", "--base-url", base_url, "--db", str(directory)]
        return args, key, f"cannot open the snapshot database {directory}"
    if case == "db is not sqlite":
        garbage = tmp_path / "garbage.db"
        garbage.write_bytes(bytes(range(256)) * 16)
        args = ["pull", "--base-url", base_url, "--db", str(garbage)]
        return args, key, "is not a usable orgaudit database"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "no key",
        "missing key file",
        "ftp base url",
        "concurrency 0",
        "db is a directory",
        "db is not sqlite",
    ],
)
def test_bad_input_exits_2_with_one_line(case: str, simulator: Simulator, tmp_path: Path) -> None:
    args, env, expected = _usage_case(case, tmp_path, simulator.base_url)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    run = run_cli(*args, cwd=tmp_path, **env)

    line = assert_one_line_error(run, 2)
    assert expected in line
    assert simulator.requests == []  # refused before anything was sent
    # Nothing was created, and an unusable file was left exactly as it was.
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before


def test_unknown_option_is_a_usage_error(tmp_path: Path) -> None:
    run = run_cli("pull", "--no-such-option", cwd=tmp_path)

    assert run.returncode == 2, run
    assert "--no-such-option" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout == ""


# -- 4. collect errors: exit 3, nothing written ----------------------------------------------


def _assert_collect_error_left_db_alone(run: Run, db: Path, before: bytes) -> str:
    line = assert_one_line_error(run, 3)
    assert snapshot_ids(db) == [1]
    assert db.read_bytes() == before
    # No SQLite journal left over; the pull's own journal (what it read, to resume) may be.
    assert sorted(p.name for p in db.parent.iterdir()) in (
        [db.name],
        [db.name, f"{db.name}.journal"],
    )
    return line


def test_a_full_disk_while_writing_exits_3_and_keeps_the_previous_snapshot(
    simulator: Simulator, seeded_db: Path, tmp_path: Path
) -> None:
    # The shell caps the size of any file the run writes a few KiB above the database's
    # size now (ulimit -f) and ignores SIGXFSZ, so SQLite's writes fail with EFBIG as on a
    # full disk: room for a few more pages, not for a second snapshot of the demo org.
    before = seeded_db.read_bytes()
    blocks = len(before) // 1024 + 8
    command = [
        sys.executable, "-m", "orgaudit", "pull", "--base-url", simulator.base_url,
        "--db", str(seeded_db),
    ]  # fmt: skip
    script = f"trap '' XFSZ; ulimit -f {blocks}; exec {shlex.join(command)}"
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=cli_env(OPENAI_ADMIN_KEY=ADMIN_KEY),
        capture_output=True,
        text=True,
        timeout=60,
    )

    run = Run(done.returncode, done.stdout, done.stderr)
    line = _assert_collect_error_left_db_alone(run, seeded_db, before)
    assert line.startswith("orgaudit: error: could not write the snapshot: ")
    assert line.endswith(
        "(is the disk full?); nothing of it was kept, earlier snapshots are untouched"
    )


def test_wrong_key_exits_3(simulator: Simulator, seeded_db: Path, tmp_path: Path) -> None:
    before = seeded_db.read_bytes()
    wrong = "sk-admin-WRONGKEY-00000000000000000000000000000000"

    run = run_cli(
        "pull", "--base-url", simulator.base_url, "--db", seeded_db,
        cwd=tmp_path, OPENAI_ADMIN_KEY=wrong,
    )  # fmt: skip

    line = _assert_collect_error_left_db_alone(run, seeded_db, before)
    assert "the admin key was refused (HTTP 401" in line
    assert "OPENAI_ADMIN_KEY" in line
    assert wrong not in run.stderr


def test_server_failing_for_good_exits_3(
    simulator: Simulator, seeded_db: Path, tmp_path: Path
) -> None:
    before = seeded_db.read_bytes()
    simulator.add_fault(Fault("status", status=503, times=-1))

    run = run_cli(
        "pull", "--base-url", simulator.base_url, "--db", seeded_db, "--max-attempts", "2",
        cwd=tmp_path, OPENAI_ADMIN_KEY=ADMIN_KEY,
    )  # fmt: skip

    line = _assert_collect_error_left_db_alone(run, seeded_db, before)
    assert "failed after 2 attempts: HTTP 503" in line


def test_unreachable_server_exits_3(seeded_db: Path, tmp_path: Path) -> None:
    before = seeded_db.read_bytes()
    base_url = f"http://127.0.0.1:{closed_port()}/v1"

    run = run_cli(
        "pull", "--base-url", base_url, "--db", seeded_db, "--max-attempts", "1",
        "--timeout", "1", cwd=tmp_path, OPENAI_ADMIN_KEY=ADMIN_KEY,
    )  # fmt: skip

    line = _assert_collect_error_left_db_alone(run, seeded_db, before)
    assert "failed after 1 attempts: connection failed" in line
    assert base_url in line


def test_missing_permission_names_the_scope_and_advises_a_read_only_key(
    simulator: Simulator, seeded_db: Path, tmp_path: Path
) -> None:
    before = seeded_db.read_bytes()
    simulator.add_fault(
        Fault(
            "status",
            path="^/organization/users$",
            status=403,
            times=-1,
            message="You have insufficient permissions for this operation. "
            "Missing scopes: api.management.read.",
        )
    )

    run = run_cli(
        "pull", "--base-url", simulator.base_url, "--db", seeded_db,
        cwd=tmp_path, OPENAI_ADMIN_KEY=ADMIN_KEY,
    )  # fmt: skip

    line = _assert_collect_error_left_db_alone(run, seeded_db, before)
    assert "lacks the permission api.management.read" in line
    assert "read-only admin key" in line
    assert "https://platform.openai.com/settings/organization/admin-keys" in line


# -- 5. the key is never shown or written ----------------------------------------------------


def _assert_no_secret(text: str | bytes, where: str) -> None:
    data = text.encode() if isinstance(text, str) else text
    for secret in (ADMIN_KEY, KEY_MIDDLE):
        assert secret.encode() not in data, f"the admin key leaked into {where}"


def test_every_command_sends_only_get_and_writes_no_key(
    simulator: Simulator, demo: SimOrg, tmp_path: Path
) -> None:
    runs: dict[str, Run] = {}
    key = {"OPENAI_ADMIN_KEY": ADMIN_KEY}
    base = ("--base-url", simulator.base_url)

    runs["demo"] = run_cli("demo", "--db", tmp_path / "demo.db", cwd=tmp_path, **key)
    runs["pull"] = run_cli("pull", *base, cwd=tmp_path, **key)  # default reports/orgaudit.db
    runs["audit"] = run_cli(
        "audit", *base, "--format", "xlsx,csv,json,md", "--queries", cwd=tmp_path, **key,
    )  # fmt: skip
    for name, args in {
        "snapshots": ["snapshots"],
        "diff": ["diff"],
        "query": ["query", "users-cannot-create-keys", "--format", "xlsx", "--out", "q.xlsx"],
        "explain user": ["explain", "user", "carol@example.com", "--json"],
        "explain key": ["explain", "key", "carol-notebook", "--endpoint", "/v1/responses"],
        "explain error": ["explain", "error", "Missing scopes: model.request", "--json"],
        "explain scopes": ["explain", "scopes", "/v1/responses"],
        "prune": ["snapshots", "--prune", "1"],
    }.items():
        runs[name] = run_cli(*args, cwd=tmp_path, **key)
    echo = Fault("echo_key", times=-1)
    simulator.add_fault(echo)
    runs["echo"] = run_cli("--debug", "pull", *base, cwd=tmp_path, **key)
    echo.times = 0
    with Simulator(
        demo, admin_key=ADMIN_KEY, faults=[Fault("status", status=503, times=-1)]
    ) as down:
        runs["503"] = run_cli(
            "--debug", "pull", "--base-url", down.base_url, "--max-attempts", "2",
            cwd=tmp_path, **key,
        )  # fmt: skip

    assert {name: run.returncode for name, run in runs.items()} == {
        **{name: 0 for name in runs},
        "echo": 3,
        "503": 3,
    }, runs
    # Every request any command sent was a GET (the simulator answers 405 to anything else).
    assert {record.method for record in simulator.requests} == {"GET"}
    assert "sk-admin...5a6b was revoked" in runs["echo"].stderr  # the hostile echo, scrubbed
    for name in ("echo", "503"):  # --debug shows the traceback, and still no key
        assert "Traceback (most recent call last)" in runs[name].stderr
        assert runs[name].stderr.rstrip().splitlines()[-1].startswith("orgaudit: error: ")
    for name, run in runs.items():
        _assert_no_secret(run.stdout, f"the stdout of {name}")
        _assert_no_secret(run.stderr, f"the stderr of {name}")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.relative_to(tmp_path).as_posix() for p in files} >= {
        "demo.db",
        "reports/orgaudit.db",
    }
    for path in files:
        _assert_no_secret(path.read_bytes(), str(path))


def test_a_long_error_message_echoing_the_key_is_still_scrubbed(
    simulator: Simulator, tmp_path: Path
) -> None:
    # A hostile server echoes the key 270 characters into its message: the cut at 300
    # leaves the key's first 30 characters, which the full-key scrub no longer matches.
    padding = "x" * (270 - len(" presented key "))
    message = f"{padding} presented key {ADMIN_KEY} is not allowed here."
    simulator.add_fault(Fault("status", status=400, times=-1, message=message))

    run = run_cli(
        "pull", "--base-url", simulator.base_url, "--db", tmp_path / "org.db",
        cwd=tmp_path, OPENAI_ADMIN_KEY=ADMIN_KEY,
    )  # fmt: skip

    assert_one_line_error(run, 3)
    assert KEY_MIDDLE[:12] not in run.stderr


# -- 6. the database is owner-only -----------------------------------------------------------


def test_database_is_created_owner_only(simulator: Simulator, tmp_path: Path) -> None:
    db = tmp_path / "new" / "org.db"

    # A permissive umask, so only an explicit mode can make the file private.
    run = run_cli(
        "pull", "--base-url", simulator.base_url, "--db", db,
        cwd=tmp_path, umask=0, OPENAI_ADMIN_KEY=ADMIN_KEY,
    )  # fmt: skip

    assert run.returncode == 0, run
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    for path in db.parent.iterdir():  # and so is anything SQLite left beside it
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


# -- 7. simulate serves until interrupted ----------------------------------------------------


def test_simulate_serves_a_pull_with_its_generated_key_file(tmp_path: Path) -> None:
    announced = re.compile(
        r"key was written to (\S+).*serving the Admin API at (http://127\.0\.0\.1:\d+/v1)", re.S
    )
    lines: queue.Queue[str] = queue.Queue()
    proc = subprocess.Popen(
        [sys.executable, "-m", "orgaudit", "simulate", "--port", "0"],
        cwd=tmp_path,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    stderr = proc.stderr

    def read_stderr() -> None:
        for line in stderr:
            lines.put(line)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        seen = ""
        deadline = time.monotonic() + 20
        while not (match := announced.search(seen)):
            assert proc.poll() is None, f"simulate exited {proc.returncode}: {seen}"
            assert time.monotonic() < deadline, f"no announcement in 20 s: {seen!r}"
            try:
                seen += lines.get(timeout=0.2)
            except queue.Empty:
                continue
        key_file, base_url = tmp_path / match.group(1), match.group(2)
        assert key_file == tmp_path / "reports" / "simulator.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

        run = run_cli(
            "pull", "--base-url", base_url, "--admin-key-file", key_file,
            "--db", tmp_path / "sim.db", cwd=tmp_path,
        )  # fmt: skip
        assert run.returncode == 0, run
        assert SUMMARY.match(run.stdout.strip()), run.stdout

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 130
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        reader.join(timeout=5)
        stderr.close()


# -- 8. version and help ---------------------------------------------------------------------


def test_version(tmp_path: Path) -> None:
    run = run_cli("--version", cwd=tmp_path)

    assert run.returncode == 0, run
    assert run.stdout.strip() == f"orgaudit {__version__}"


def test_no_arguments_shows_help(tmp_path: Path) -> None:
    run = run_cli(cwd=tmp_path)

    # typer's no_args_is_help prints the help; click before 8.2 then exits 0, click 8.2
    # and later exit 2 (the help stands for a usage error). Either way the help is shown.
    assert run.returncode in (0, 2), run
    shown = run.stdout + run.stderr
    assert "Usage:" in shown
    for command in ("pull", "snapshots", "demo", "simulate"):
        assert command in shown
    assert "Traceback" not in shown


# -- paths are printed as they are -----------------------------------------------------------


def test_a_database_path_with_brackets_is_printed_as_it_is(tmp_path: Path) -> None:
    db = tmp_path / "snapshots[/b].db"  # a directory "snapshots[" holding "b].db"
    with store.connect(db):  # an empty database: read commands never create one
        pass

    run = run_cli("snapshots", "--db", db, cwd=tmp_path)

    assert run.returncode == 0, run
    assert run.stdout.strip() == f"no snapshots in {db}; run `orgaudit pull` first"


def test_pull_says_when_and_why_it_waits_on_rate_limits(
    simulator: Simulator, tmp_path: Path
) -> None:
    # More 429s in a row than --max-attempts allows tries: waited out, not a failure.
    simulator.add_fault(Fault("status", status=429, times=12, headers={"Retry-After-Ms": "50"}))
    run = run_cli(
        "pull", "--db", tmp_path / "db", "--base-url", simulator.base_url,
        "--max-attempts", "2", cwd=tmp_path, OPENAI_ADMIN_KEY=ADMIN_KEY,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert SUMMARY.match(run.stdout.strip().splitlines()[-1]), run.stdout
    assert "rate limited (HTTP 429): waiting 0 s, 0 s waited so far" in run.stderr


def _start_pull(sim: Simulator, db: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orgaudit", "pull", "--db", str(db), "--base-url",
         sim.base_url, *args],
        cwd=db.parent,
        env=cli_env(OPENAI_ADMIN_KEY=ADMIN_KEY),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell's background job may inherit SIGINT ignored; a terminal delivers it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def _wait_for_requests(sim: Simulator, count: int) -> None:
    deadline = time.monotonic() + 30
    while len(sim.requests) < count and time.monotonic() < deadline:
        time.sleep(0.02)


def _interrupt_then_resume(
    demo: SimOrg, tmp_path: Path, stop: Callable[[subprocess.Popen[str]], None], lists: int
) -> tuple[subprocess.Popen[str], str, Run, int, int]:
    """Pull the demo (once to compare with), pull it again slowly and stop that pull once
    its journal holds ``lists`` lists, then resume it. The same server throughout, as a
    resumed pull must read the same base URL."""
    reference, db = tmp_path / "reference.db", tmp_path / "db"
    with Simulator(demo, admin_key=ADMIN_KEY) as sim:
        assert run_cli("pull", "--db", reference, "--base-url", sim.base_url,
                       cwd=tmp_path, OPENAI_ADMIN_KEY=ADMIN_KEY).returncode == 0  # fmt: skip
        fresh = len(sim.requests)
        sim.requests.clear()
        sim.latency = 0.5  # slow, so the pull is mid-way when it is stopped
        process = _start_pull(sim, db)
        deadline = time.monotonic() + 30
        while finished_lists(tmp_path / "db.journal") < lists and time.monotonic() < deadline:
            time.sleep(0.02)
        stop(process)
        _, stderr = process.communicate(timeout=30)
        sim.latency = 0.0
        time.sleep(1.0)  # answers the stopped pull still had in flight land in the log first
        sim.requests.clear()
        resumed = run_cli("pull", "--db", db, "--base-url", sim.base_url, "--resume",
                          cwd=tmp_path, OPENAI_ADMIN_KEY=ADMIN_KEY)  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr
        assert entity_tables(db, 1) == entity_tables(reference, 1)
        return process, stderr, resumed, fresh, len(sim.requests)


def test_ctrl_c_is_one_line_exit_130_and_resume_finishes_the_same_snapshot(
    demo: SimOrg, tmp_path: Path
) -> None:
    process, stderr, _, fresh, resumed = _interrupt_then_resume(
        demo, tmp_path, lambda p: p.send_signal(signal.SIGINT), lists=5
    )
    assert process.returncode == 130
    [line] = stderr.strip().splitlines()
    assert re.fullmatch(
        r"orgaudit: interrupted after \d+ requests; no snapshot was written, earlier "
        r"snapshots are untouched; `orgaudit pull --resume` continues where it stopped",
        line,
    ), line
    assert resumed < fresh
    assert not (tmp_path / "db.journal").exists()  # served, and removed


@pytest.mark.parametrize("lists", [1, 10, 25])
def test_a_killed_pull_resumes_to_the_same_tables_with_fewer_requests(
    demo: SimOrg, tmp_path: Path, lists: int
) -> None:
    # SIGKILL: no handler runs and nothing is flushed on the way out.
    process, _, _, fresh, resumed = _interrupt_then_resume(
        demo, tmp_path, lambda p: p.kill(), lists=lists
    )
    assert process.returncode == -signal.SIGKILL
    assert resumed < fresh


def test_a_pull_over_an_unfinished_one_says_it_sets_it_aside(demo: SimOrg, tmp_path: Path) -> None:
    db = tmp_path / "db"
    with Simulator(demo, admin_key=ADMIN_KEY, latency=0.5) as sim:
        process = _start_pull(sim, db)
        deadline = time.monotonic() + 30
        while finished_lists(tmp_path / "db.journal") < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        process.kill()
        process.communicate(timeout=30)
        sim.latency = 0.0
        again = run_cli("pull", "--db", db, "--base-url", sim.base_url,
                        cwd=tmp_path, OPENAI_ADMIN_KEY=ADMIN_KEY)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert re.search(
        r"orgaudit: an unfinished pull from .* UTC \(\d+ lists read\) is set aside and this "
        r"pull starts over; `orgaudit pull --resume` continues an interrupted pull instead",
        again.stderr,
    ), again.stderr


def test_resume_with_nothing_to_resume_is_a_usage_error(
    simulator: Simulator, tmp_path: Path
) -> None:
    run = run_cli("pull", "--db", tmp_path / "db", "--base-url", simulator.base_url,
                  "--resume", cwd=tmp_path, OPENAI_ADMIN_KEY=ADMIN_KEY)  # fmt: skip
    assert "nothing to resume: no unfinished pull was found" in assert_one_line_error(run, 2)


def test_pull_and_audit_share_every_pull_option_and_its_default() -> None:
    # One definition: both commands take the pull's options with the settings' defaults.
    group: Any = typer.main.get_command(app)  # typer's own click group (it vendors click)
    commands = {name: group.commands[name] for name in ("pull", "audit")}
    options = {
        name: {p.name: p.default for p in command.params if p.name != "resume"}
        for name, command in commands.items()
    }
    pull_only = set(options["pull"]) - set(options["audit"])
    assert pull_only == set()
    shared = {name: options["audit"][name] for name in options["pull"]}
    assert shared == options["pull"]
    assert options["pull"]["concurrency"] == ClientSettings().concurrency
    assert options["pull"]["max_body_mb"] * 1024 * 1024 == ClientSettings().max_body_bytes
    assert options["pull"]["max_wait"] == RetryPolicy().max_wait
