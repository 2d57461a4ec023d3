"""The fault matrix: every way the API can misbehave, through real HTTP, against a pull.

Each case pulls a clean snapshot first, then pulls again with one fault injected into
the simulator. Either the second pull completes and its data is exactly what the clean
pull read, or it stops with a one-line error of exit code 3 and the database is as it
was: the clean snapshot intact and still the latest, nothing of the failed pull kept.
Faults that stop the pull at the store (a locked database, a full disk) are in
test_store.py and test_cli.py; the server dying mid-pull is in test_pull.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
import pytest

from orgaudit import store
from orgaudit.errors import ExitCode, OrgauditError
from orgaudit.settings import AdminKey, ClientSettings, RetryPolicy
from orgaudit.simulator import Fault, SimOrg, Simulator

from support import ADMIN_KEY, PULL, fast_settings, pull, small_org

USERS = "^/organization/users$"
ANY_LIST = "^/(organization|projects)/"
# A second of waiting on 429s in all (the default is ten minutes): "429 for ever" ends.
PATIENT = RetryPolicy(
    max_attempts=6, base_delay=0.005, max_delay=0.02, max_retry_after=5.0, max_wait=1.0
)


@dataclass(frozen=True)
class Case:
    """One fault, and whether a pull survives it (else: the words of its error)."""

    fault: Fault
    error: str | None = None  # None: the pull must complete with the clean pull's data
    settings: dict[str, object] = field(default_factory=dict)


CASES = {
    "429 storm, Retry-After-Ms": Case(
        Fault("status", path=ANY_LIST, status=429, times=12, headers={"Retry-After-Ms": "5"})
    ),
    "429 storm, Retry-After in seconds": Case(
        Fault("status", path=ANY_LIST, status=429, times=12, headers={"Retry-After": "0"})
    ),
    "429 storm, no Retry-After": Case(Fault("status", path=ANY_LIST, status=429, times=12)),
    "429 for ever": Case(
        Fault("status", path=USERS, status=429, times=-1),
        "still rate limited (HTTP 429) after 1 s of waiting in all (--max-wait 1 s)",
    ),
    # A rate-limit window far longer than --max-attempts (every request answering 429 for
    # 150 answers in a row) is waited out: "slow down" is not "broken".
    "a 429 window longer than the attempts": Case(
        Fault("status", status=429, times=150, headers={"Retry-After-Ms": "2"}),
        settings={"retry": replace(PATIENT, max_wait=60.0)},
    ),
    "503 with Retry-After, a long window": Case(
        Fault("status", status=503, times=40, headers={"Retry-After-Ms": "2"}),
        settings={"retry": replace(PATIENT, max_wait=60.0)},
    ),
    "429 asking for an hour": Case(
        Fault("status", path=USERS, status=429, times=-1, headers={"Retry-After": "3600"}),
        "asks to wait 3600 s",
    ),
    "5xx burst": Case(Fault("status", path=ANY_LIST, status=502, times=10)),
    "5xx for ever": Case(
        Fault("status", path=USERS, status=500, times=-1), "failed after 6 attempts: HTTP 500"
    ),
    "stall past the timeout, once": Case(
        Fault("stall", path=USERS, seconds=0.6), settings={"timeout": 0.3}
    ),
    "stall past the timeout, always": Case(
        Fault("stall", path=USERS, seconds=0.6, times=-1),
        "timed out after 0.3 s",
        {"timeout": 0.3, "retry": RetryPolicy(max_attempts=2, base_delay=0.005)},
    ),
    "connection reset mid-body, once": Case(Fault("drop", path=USERS)),
    "connection reset mid-body, always": Case(
        Fault("drop", path=USERS, times=-1), "connection failed"
    ),
    "truncated non-JSON body, once": Case(Fault("malformed", path=USERS)),
    "non-JSON body, always": Case(Fault("malformed", path=USERS, times=-1), "is not JSON"),
    "a page of the wrong shape": Case(
        Fault("bad_shape", path=USERS), "is not a list object with 'data' and 'has_more'"
    ),
    "has_more true and no cursor": Case(
        Fault("body", path=USERS, status=200, body=b'{"object":"list","data":[],"has_more":true}'),
        "has_more is true but the page gives no cursor",
    ),
    "a cursor that repeats": Case(Fault("repeat_cursor", path=USERS, times=-1), "repeats"),
    "a page that ignores the limit": Case(
        Fault("ignore_limit", path=USERS), "more than the 100 asked for"
    ),
    "401 halfway (key revoked)": Case(
        Fault("status", status=401, times=-1, after=15, message="Incorrect API key provided"),
        "the admin key was refused (HTTP 401",
    ),
    "403 on a core list halfway": Case(
        Fault(
            "status", path="^/organization/projects/[^/]+/api_keys$", status=403, times=-1, after=2
        ),
        "forbidden (HTTP 403",
    ),
}


def _org() -> SimOrg:
    """250 users (the users list takes three pages, so paging faults have pages to hit) and
    four projects with members and keys (so a fault can strike halfway through them)."""
    builder = small_org(250)
    for p in range(3):
        project = builder.project(f"Project {p}", project_id=f"proj_{p}")
        for u in range(5):
            builder.member(project, f"user_{u + 5 * p:04d}", ("owner", "member", "viewer")[u % 3])
        builder.key(project, f"user_{5 * p:04d}", f"key {p}", scopes=["api.all.read"])
    return builder.org


def _snapshot_tables(db: Path, snapshot_id: int) -> dict[str, pd.DataFrame]:
    """Every entity table of a snapshot, in a stable order, without its snapshot id."""
    with store.connect(db) as conn:
        tables = {
            name: store.read_table(conn, name, snapshot_id).drop(columns=["snapshot_id"])
            for name in store.TABLES
        }
    return {
        name: frame.sort_values(list(frame.columns)).reset_index(drop=True)
        for name, frame in tables.items()
    }


def _state(db: Path) -> tuple[list[int], dict[str, int]]:
    with store.connect(db) as conn:
        ids = [info.id for info in store.list_snapshots(conn)]
        tables = ["snapshots", "coverage", "coverage_gaps", "anomalies", *store.TABLES]
        counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
    return ids, counts


@pytest.mark.parametrize("name", list(CASES))
def test_a_fault_is_survived_with_the_same_data_or_stops_with_exit_3(
    name: str, tmp_path: Path
) -> None:
    case = CASES[name]
    key = AdminKey(ADMIN_KEY)
    db = tmp_path / "faults.db"
    with Simulator(_org(), admin_key=ADMIN_KEY) as sim:
        settings = fast_settings(sim, **{"retry": PATIENT, **case.settings})
        pull(key, settings, PULL, db)
        before = _state(db)
        fault = replace(case.fault)  # a fresh copy: a fault counts down as it fires
        sim.add_fault(fault)
        if case.error is None:
            result = pull(key, settings, PULL, db)
            assert result.snapshot_id == 2
            assert fault.times == 0  # every injected failure was met, and survived
        else:
            with pytest.raises(OrgauditError) as failure:
                pull(key, settings, PULL, db)

    if case.error is None:
        clean, faulted = _snapshot_tables(db, 1), _snapshot_tables(db, 2)
        for table, frame in clean.items():
            pd.testing.assert_frame_equal(faulted[table], frame, obj=table)
        with store.connect(db) as conn:
            coverage = store.read_table(conn, "coverage", 2)
        assert set(coverage["status"]) == {"complete"}
    else:
        message = str(failure.value)
        assert failure.value.exit_code == ExitCode.COLLECT
        assert case.error in message
        assert "\n" not in message and ADMIN_KEY not in message
        assert _state(db) == before  # the clean snapshot is intact and still the latest


def test_a_random_mix_of_429s_and_5xx_never_ends_a_pull_inside_the_budget(
    tmp_path: Path,
) -> None:
    # The same storm, ten times over with ten seeds: about a third of all answers 429, and
    # one in ten a 5xx. Before 429s were waited out by time, pulls like these ended now and
    # then with "failed after 6 attempts: HTTP 429".
    key = AdminKey(ADMIN_KEY)
    db = tmp_path / "storm.db"
    settings_retry = replace(PATIENT, max_wait=120.0)
    with Simulator(_org(), admin_key=ADMIN_KEY) as sim:
        settings = fast_settings(sim, retry=settings_retry)
        pull(key, settings, PULL, db)
        for seed in range(10):
            sim.faults = [
                Fault("status", status=429, times=-1, chance=0.33, seed=seed,
                      headers={"Retry-After-Ms": "1"}),
                Fault("status", status=502, times=-1, chance=0.1, seed=100 + seed),
            ]  # fmt: skip
            result = pull(key, settings, PULL, db)
            assert result.collected.throttled > 0
    clean = _snapshot_tables(db, 1)
    for snapshot_id in range(2, 12):
        stormed = _snapshot_tables(db, snapshot_id)
        for table, frame in clean.items():
            pd.testing.assert_frame_equal(stormed[table], frame, obj=f"{table} #{snapshot_id}")


def test_a_cursor_that_goes_back_repeats_items_which_are_stored_once_and_reported(
    tmp_path: Path,
) -> None:
    # Page 1 of the users says "go on after my own first item": page 2 repeats 99 users.
    key = AdminKey(ADMIN_KEY)
    db = tmp_path / "rewind.db"
    with Simulator(small_org(250).org, admin_key=ADMIN_KEY) as sim:
        pull(key, fast_settings(sim), PULL, db)
        sim.add_fault(Fault("rewind_cursor", path=USERS))
        pull(key, fast_settings(sim), PULL, db)

    clean, rewound = _snapshot_tables(db, 1), _snapshot_tables(db, 2)
    pd.testing.assert_frame_equal(rewound["users"], clean["users"])
    with store.connect(db) as conn:
        anomalies = store.read_table(conn, "anomalies", 2)
    assert list(anomalies["table_name"].unique()) == ["users"]
    assert len(anomalies) == 99
    assert set(anomalies["problem"]) == {"lists the same item twice; kept once"}


# -- resource bounds at their defaults ------------------------------------------------------


def _page_of(items: int) -> bytes:
    return (
        b'{"object":"list","has_more":false,"data":['
        + b",".join([b'{"id":"user_x"}'] * items)
        + b"]}"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_page_of(101), "a page holds 101 items, more than the 100 asked for"),
        (_page_of(1_000_000), "the response holds more than 250000 JSON values"),
        (b" " * (100 * 1024 * 1024), "larger than 16777216 bytes (--max-body-mb)"),
    ],
    ids=["a page of 101 items", "a page of a million objects", "a 100 MB body"],
)
def test_oversized_answers_are_refused_at_the_default_bounds(
    body: bytes, message: str, tmp_path: Path
) -> None:
    key = AdminKey(ADMIN_KEY)
    with Simulator(small_org(3).org, admin_key=ADMIN_KEY) as sim:
        sim.add_fault(Fault("body", path=USERS, status=200, body=body, times=-1))
        defaults = ClientSettings(base_url=sim.base_url)  # the shipped limits, not test ones
        with pytest.raises(OrgauditError) as failure:
            pull(key, defaults, PULL, tmp_path / "bounds.db")
    assert failure.value.exit_code == ExitCode.COLLECT
    assert message in str(failure.value)
    assert "\n" not in str(failure.value)
