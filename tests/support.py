"""Helpers the tests share: the test key, quick client settings, small orgs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlencode

import pandas as pd

from orgaudit import store
from orgaudit.app import audit as app_audit
from orgaudit.app import pull as app_pull
from orgaudit.app.audit import AuditOptions, DiffOptions
from orgaudit.app.pull import AnalyzedPull
from orgaudit.checks.diff import SnapshotDiff
from orgaudit.checks.findings import AuditResult
from orgaudit.collect.records import PullResult
from orgaudit.model.analysis import Analysis
from orgaudit.model.analysis import load_analysis as _load_analysis
from orgaudit.render.report import WRITERS
from orgaudit.settings import AdminKey, ClientSettings, PullSettings, RetryPolicy
from orgaudit.simulator import Simulator
from orgaudit.simulator.demo import demo_org
from orgaudit.simulator.org import OrgBuilder, SimOrg
from orgaudit.store.database import SnapshotDatabase
from orgaudit.store.queries import SavedQuery
from orgaudit.store.queries import run_query as _run_query

# A made-up key with a recognisable body, so a search of every byte written can find it.
ADMIN_KEY = "sk-admin-TESTKEY-5f3c9a1b7e2d4c6f8a0b1c2d3e4f5a6b"
NOW = int(time.time())
PULL = PullSettings()


# The app's functions take the database handle a command opens once; these open it for
# one call, as each command does, so a test reads like the command it stands for.


def pull(
    key: AdminKey,
    client: ClientSettings,
    settings: PullSettings,
    db_path: Path,
    **options: Any,
) -> PullResult:
    """``orgaudit pull`` into ``db_path`` (created if missing)."""
    with SnapshotDatabase.open(db_path, create=True) as db:
        return app_pull.pull(db, key, client, settings, **options)


def pull_and_analyze(
    key: AdminKey,
    client: ClientSettings,
    settings: PullSettings,
    db_path: Path,
    **options: Any,
) -> AnalyzedPull:
    """A pull that stores its access model, as ``orgaudit pull`` runs it."""
    with SnapshotDatabase.open(db_path, create=True) as db:
        return app_pull.pull_and_analyze(db, key, client, settings, **options)


def run_audit(db_path: Path, options: AuditOptions) -> AuditResult:
    """``orgaudit audit --offline`` on ``db_path``."""
    with SnapshotDatabase.open(db_path) as db:
        return app_audit.run_audit(db, options)


def run_diff(db_path: Path, options: DiffOptions | None = None) -> SnapshotDiff:
    """``orgaudit diff`` on ``db_path``."""
    with SnapshotDatabase.open(db_path) as db:
        return app_audit.run_diff(db, options or DiffOptions())


def run_query(
    db_path: Path, query: SavedQuery, snapshot_id: int | None, params: dict[str, str]
) -> pd.DataFrame:
    """``orgaudit query`` on ``db_path``."""
    with SnapshotDatabase.open(db_path) as db:
        return _run_query(db, query, snapshot_id, params)


def prune(db_path: Path, keep: int) -> tuple[int, ...]:
    """``orgaudit snapshots --prune KEEP`` on ``db_path``."""
    with SnapshotDatabase.open(db_path) as db:
        return db.prune(keep).deleted


def load_analysis(
    db_path: Path, snapshot_id: int | None = None, catalog_path: Path | None = None
) -> Analysis:
    """A snapshot of ``db_path`` analyzed, as ``orgaudit explain`` reads it."""
    with SnapshotDatabase.open(db_path) as db:
        return _load_analysis(db, snapshot_id, catalog_path)


def fast_settings(sim: Simulator, **overrides: object) -> ClientSettings:
    """Client settings against ``sim`` that back off in milliseconds, not seconds."""
    retry = RetryPolicy(
        max_attempts=4, base_delay=0.01, max_delay=0.05, max_retry_after=5.0, max_wait=10.0
    )
    values: dict[str, object] = {
        "base_url": sim.base_url,
        "concurrency": 4,
        "timeout": 2.0,
        "retry": retry,
    }
    values.update(overrides)
    return ClientSettings(**values)  # type: ignore[arg-type]


GOLDEN = Path(__file__).resolve().parent / "golden"


def check_golden(name: str, actual: str, regen: bool) -> None:
    """Compare text with ``tests/golden/NAME``; ``pytest --regen-golden`` rewrites it."""
    path = GOLDEN / name
    if regen:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"no golden file {path}; run pytest --regen-golden once"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} differs from its golden file (pytest --regen-golden)"


def small_org(users: int = 3) -> OrgBuilder:
    """A builder holding ``users`` readers in one project, for tests that add to it."""
    builder = OrgBuilder("org_small", NOW)
    project = builder.project("Only", project_id="proj_only")
    for i in range(users):
        uid = builder.user(f"User {i}", f"u{i}@example.com", user_id=f"user_{i:04d}")
        builder.member(project, uid, "member")
    return builder


# -- audited orgs (the demo_audit and hostile_audit fixtures of conftest.py) ----------------

# The audited orgs are pulled with the clock fixed, so their reports are reproducible.
FIXED = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HOSTILE_USER = '=HYPERLINK("http://example.com","x")'
HOSTILE_PROJECT = "@SUM(1)"
HOSTILE_KEY = "+cmd|' /C calc'!A0"


@dataclass(frozen=True)
class Audited:
    """An org pulled into ``db`` and audited into every report format in ``out``."""

    db: Path
    out: Path
    result: AuditResult


def pull_fixed(org: SimOrg, db: Path) -> None:
    """Pull ``org`` over loopback HTTP into ``db`` at the fixed time."""
    with Simulator(org, admin_key=ADMIN_KEY) as sim:
        pull_and_analyze(AdminKey(ADMIN_KEY), fast_settings(sim), PULL, db, clock=lambda: FIXED)


def audit_org(org: SimOrg, base: Path, name: str) -> Audited:
    """Pull ``org`` at the fixed time and write every report format."""
    db, out = base / f"{name}.db", base / "out"
    pull_fixed(org, db)
    result = run_audit(db, AuditOptions(out_dir=out, formats=tuple(WRITERS)))
    return Audited(db, out, result)


def demo_audited(base: Path) -> Audited:
    """The demo org pulled at a fixed time and audited into every format."""
    return audit_org(demo_org(int(FIXED.timestamp())), base, "demo")


def hostile_audited(base: Path) -> Audited:
    """An org whose user, project and key names are spreadsheet formulas."""
    builder = OrgBuilder("org_hostile", int(FIXED.timestamp()))
    user = builder.user(HOSTILE_USER, "mallory@example.com", user_id="user_mallory")
    project = builder.project(HOSTILE_PROJECT, project_id="proj_formula")
    builder.member(project, user, "viewer")
    builder.key(project, user, HOSTILE_KEY, scopes=[], last_used_days_ago=None)
    return audit_org(builder.org, base, "hostile")


# -- raw HTTP to the simulator (the standard library, not orgaudit's client) ----------------

# Never go through a proxy from the environment: the simulator is on loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

Query = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Message
    body: dict[str, Any]


def call(
    sim: Simulator,
    path: str,
    query: Query = (),
    *,
    key: str | None = ADMIN_KEY,
    method: str = "GET",
    data: bytes | None = None,
) -> Answer:
    """One request to the simulator; HTTP errors are answers too."""
    url = sim.base_url + path + (f"?{urlencode(list(query))}" if query else "")
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with _OPENER.open(request, timeout=5) as response:
            return Answer(response.status, response.headers, json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        with exc:
            return Answer(exc.code, exc.headers, json.loads(exc.read()))


def ok(sim: Simulator, path: str, query: Query = ()) -> dict[str, Any]:
    """The body of a request that must succeed."""
    answer = call(sim, path, query)
    assert answer.status == 200, answer.body
    return answer.body


def assert_error(answer: Answer, status: int, code: str | None = None) -> None:
    """An OpenAI-shaped error body: {"error": {message, type, param, code}}."""
    assert answer.status == status, answer.body
    assert set(answer.body) == {"error"}
    error = answer.body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert error["type"] == "invalid_request_error"
    if code is not None:
        assert error["code"] == code


def entity_tables(db: Path, snapshot_id: int) -> dict[str, list[tuple[object, ...]]]:
    """Every entity table of a snapshot, its rows as text and sorted: two pulls of the
    same org compare equal."""
    with store.connect(db) as conn:
        return {
            table: sorted(
                map(tuple, store.read_table(conn, table, snapshot_id)
                    .drop(columns=["snapshot_id"]).astype(object).map(str).values.tolist())
            )
            for table in store.TABLES
        }  # fmt: skip


# -- the command line, in a fresh process ---------------------------------------------------


class Run(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a run: this one, without a key or database unless given."""
    env = dict(os.environ)
    # FORCE_COLOR / COLUMNS would change how rich renders; the key and db must be explicit.
    for name in ("OPENAI_ADMIN_KEY", "ORGAUDIT_DB", "FORCE_COLOR", "COLUMNS"):
        env.pop(name, None)
    env.update(extra)
    return env


def run_cli(*args: str | Path, cwd: Path, umask: int = -1, **env: str) -> Run:
    """Run ``python -m orgaudit ARGS`` in ``cwd``; ``env`` adds variables to the run."""
    done = subprocess.run(
        [sys.executable, "-m", "orgaudit", *map(str, args)],
        cwd=cwd,
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        umask=umask,
    )
    return Run(done.returncode, done.stdout, done.stderr)
