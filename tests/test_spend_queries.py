"""The spend queries (queries/spend-*.sql, top-spending-keys.sql): the demo org pulled
over loopback HTTP into a real SQLite file, each query run by the real query runner (and
once through `orgaudit query`), and every answer checked against sums worked out here,
with plain SQL and pandas, from the database's `costs` and `usage` tables."""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from orgaudit.settings import AdminKey, PullSettings
from orgaudit.simulator import Simulator
from orgaudit.simulator.demo import DEMO_CASES, demo_org
from orgaudit.store.queries import default_pack, find_query

from support import (
    ADMIN_KEY,
    FIXED,
    fast_settings,
    pull_and_analyze,
    pull_fixed,
    run_cli,
    run_query,
)

SPEND_QUERIES = ("spend-by-project", "spend-by-key", "spend-by-owner", "top-spending-keys")
NOT_LISTED = "(not in the key list)"
KEYS_NOT_LISTED = "(keys not in the key list)"
TOP = 20
# The queries round money to 6 decimals; sums of a few hundred rows stay well inside this.
MONEY = 1e-4


@dataclass(frozen=True)
class Spend:
    """The tables of a database's latest snapshot that spend is worked out from."""

    snapshot_id: int
    usage_since: int | None
    as_of: int
    costs: pd.DataFrame
    usage: pd.DataFrame
    keys: pd.DataFrame
    users: pd.DataFrame


def read_spend(db: Path) -> Spend:
    """The latest snapshot's costs, usage, keys and users, read with plain SQL."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        snapshot_id, usage_since, as_of = conn.execute(
            "SELECT id, usage_since, as_of FROM snapshots ORDER BY id DESC LIMIT 1"
        ).fetchone()

        def table(sql: str) -> pd.DataFrame:
            return pd.read_sql_query(sql, conn, params=(snapshot_id,))

        return Spend(
            snapshot_id,
            usage_since,
            as_of,
            table("SELECT * FROM costs WHERE snapshot_id = ?"),
            table("SELECT * FROM usage WHERE snapshot_id = ?"),
            table("SELECT * FROM project_api_keys WHERE snapshot_id = ?"),
            table("SELECT id, email FROM users WHERE snapshot_id = ?"),
        )


def query(db: Path, name: str) -> pd.DataFrame:
    """A saved query of the pack run by orgaudit's query runner on the latest snapshot."""
    return run_query(db, find_query(name, default_pack()), None, {})


def _keyed(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["api_key_id"].notna()]


def cost_by_key(spend: Spend) -> pd.Series:
    """What each key cost, by (key id, currency), from the costs table."""
    costs = _keyed(spend.costs)
    return costs.groupby(["api_key_id", "currency"])["amount"].sum()


def requests_by_key(spend: Spend) -> pd.Series:
    """The requests each key made, over every usage list, from the usage table."""
    return _keyed(spend.usage).groupby("api_key_id")["requests"].sum()


def spending_keys(spend: Spend) -> set[str]:
    """Every key id with a cost or a usage row."""
    return set(_keyed(spend.costs)["api_key_id"]) | set(_keyed(spend.usage)["api_key_id"])


def owner_label(spend: Spend) -> pd.Series:
    """Each spending key's owner as the queries name them: a user's e-mail, a service
    account's name; keys the key list does not hold are together."""
    keys = spend.keys.set_index("id")
    label = keys["owner_email"].fillna(keys["owner_name"]).fillna(keys["owner_id"])
    ids = sorted(spending_keys(spend))
    return pd.Series([label.get(key, KEYS_NOT_LISTED) for key in ids], index=ids)


def _money(frame: pd.DataFrame, index: list[str]) -> pd.Series:
    """A query's cost column by ``index`` (rows with a currency: the ones with a cost)."""
    billed = frame[frame["currency"].notna()]
    return billed.set_index(index)["cost"].astype(float).sort_index()


def _same_money(got: pd.Series, expected: pd.Series) -> None:
    assert got.index.tolist() == expected.sort_index().index.tolist()
    pd.testing.assert_series_equal(
        got, expected.sort_index(), check_names=False, check_exact=False, atol=MONEY, rtol=0
    )


def _same_counts(got: pd.Series, expected: pd.Series) -> None:
    got = got[got != 0].astype("int64").sort_index()
    expected = expected[expected != 0].astype("int64").sort_index()
    assert got.to_dict() == expected.to_dict()


# -- what each query must say, worked out independently ----------------------------------------


def check_spend_by_project(db: Path) -> pd.DataFrame:
    spend, frame = read_spend(db), query(db, "spend-by-project")
    no_project = "(none)"
    costs = spend.costs.assign(project_id=spend.costs["project_id"].fillna(no_project))
    usage = spend.usage.assign(project_id=spend.usage["project_id"].fillna(no_project))
    got = frame.assign(project_id=frame["project_id"].fillna(no_project))
    # One row per project (and currency) that has a cost or a usage row, and no other.
    assert set(got["project_id"]) == set(costs["project_id"]) | set(usage["project_id"])
    assert not got.duplicated(["project_id", "currency"]).any()
    _same_money(
        _money(got, ["project_id", "currency"]),
        costs.groupby(["project_id", "currency"])["amount"].sum(),
    )
    through_keys = _keyed(costs).groupby(["project_id", "currency"])["amount"].sum()
    billed = got[got["currency"].notna()].set_index(["project_id", "currency"])
    _same_money(
        billed["cost_through_keys"].astype(float).sort_index(),
        through_keys.reindex(billed.index, fill_value=0.0),
    )
    _same_counts(
        got.groupby("project_id")["requests"].sum(),
        usage.groupby("project_id")["requests"].sum(),
    )
    keys_used = pd.concat([_keyed(costs), _keyed(usage)]).groupby("project_id")["api_key_id"]
    _same_counts(got.groupby("project_id")["keys"].sum(), keys_used.nunique())
    # The total is every cost once: the Costs API's grouping counts nothing twice.
    totals = spend.costs.groupby("currency")["amount"].sum()
    for currency, total in totals.items():
        assert got.loc[got["currency"] == currency, "cost"].sum() == pytest.approx(total, abs=MONEY)
    assert all(isinstance(name, str) and name for name in frame["project"])
    return frame


def check_spend_by_key(db: Path) -> pd.DataFrame:
    spend, frame = read_spend(db), query(db, "spend-by-key")
    assert set(frame["key_id"]) == spending_keys(spend)
    assert not frame.duplicated(["key_id", "currency"]).any()
    _same_money(_money(frame, ["key_id", "currency"]), cost_by_key(spend))
    _same_counts(frame.groupby("key_id")["requests"].sum(), requests_by_key(spend))
    # Each key is named as the key list names it, with its owner; keys it does not hold
    # (deleted since they spent) are still there, unnamed.
    keys = spend.keys.set_index("id")
    labels = owner_label(spend)
    for row in frame.itertuples(index=False):
        if row.key_id in keys.index:
            assert row.key == keys.at[row.key_id, "name"]
            assert row.owner == labels[row.key_id]
            assert row.owner_type == keys.at[row.key_id, "owner_type"]
            access = keys.at[row.key_id, "owner_project_access"]
            if access != "active":
                assert row.owner_in_project == "no"
        else:
            assert row.key == NOT_LISTED
            assert pd.isna(row.owner) and pd.isna(row.owner_in_project)
    # Most first.
    assert frame["cost"].fillna(0).is_monotonic_decreasing
    return frame


def check_spend_by_owner(db: Path) -> pd.DataFrame:
    spend, frame = read_spend(db), query(db, "spend-by-owner")
    labels = owner_label(spend)
    costs = _keyed(spend.costs).assign(owner=lambda f: f["api_key_id"].map(labels))
    usage = _keyed(spend.usage).assign(owner=lambda f: f["api_key_id"].map(labels))
    assert set(frame["owner"]) == set(labels)
    _same_money(
        _money(frame, ["owner", "currency"]), costs.groupby(["owner", "currency"])["amount"].sum()
    )
    _same_counts(frame.groupby("owner")["requests"].sum(), usage.groupby("owner")["requests"].sum())
    _same_counts(frame.groupby("owner")["keys"].sum(), labels.groupby(labels).size())
    return frame


def check_top_spending_keys(db: Path) -> pd.DataFrame:
    spend, frame = read_spend(db), query(db, "top-spending-keys")
    by_key = cost_by_key(spend)
    spent = by_key[by_key > 0].sort_values(ascending=False, kind="stable")
    assert len(frame) == min(TOP, len(spent))
    assert frame["rank"].tolist() == list(range(1, len(frame) + 1))
    # The 20 largest costs, largest first, each the key's own sum.
    assert frame["cost"].tolist() == pytest.approx(spent.head(TOP).tolist(), abs=MONEY)
    for row in frame.itertuples(index=False):
        assert row.cost == pytest.approx(by_key[(row.key_id, row.currency)], abs=MONEY)
        total = spend.costs.loc[spend.costs["currency"] == row.currency, "amount"].sum()
        assert row.percent_of_cost == pytest.approx(100 * row.cost / total, abs=0.051)
    requests = requests_by_key(spend)
    assert [int(requests.get(key, 0)) for key in frame["key_id"]] == frame["requests"].tolist()
    return frame


CHECKS = {
    "spend-by-project": check_spend_by_project,
    "spend-by-key": check_spend_by_key,
    "spend-by-owner": check_spend_by_owner,
    "top-spending-keys": check_top_spending_keys,
}


# -- the demo org, as the simulator serves it ----------------------------------------------------


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo org pulled over loopback HTTP at the fixed time (30 days of usage)."""
    db = tmp_path_factory.mktemp("spend") / "demo.db"
    pull_fixed(demo_org(int(FIXED.timestamp())), db)
    return db


def test_the_pack_holds_the_spend_queries_each_with_a_header() -> None:
    for name in SPEND_QUERIES:
        saved = find_query(name, default_pack())
        assert saved.title and saved.title != saved.name, name
        assert saved.answers.endswith("?"), name
        assert saved.parameters == ("snapshot_id",), name


def test_the_demo_pull_read_costs_and_usage(demo_db: Path) -> None:
    spend = read_spend(demo_db)
    with sqlite3.connect(f"file:{demo_db}?mode=ro", uri=True) as conn:
        status = dict(
            conn.execute(
                "SELECT source, status FROM coverage WHERE snapshot_id = ? "
                "AND (source = 'costs' OR source LIKE 'usage\\_%' ESCAPE '\\')",
                (spend.snapshot_id,),
            ).fetchall()
        )
    assert status.get("costs") == "complete", status
    # The simulator's Usage and Costs endpoints must serve the demo some spend: without it
    # every check below would pass on empty tables and prove nothing.
    assert not spend.costs.empty, "the demo pull stored no costs"
    assert not spend.usage.empty, "the demo pull stored no usage"
    assert spend.usage_since is not None
    for table in (spend.costs, spend.usage):
        assert (table["start_at"] >= spend.usage_since).all()
        assert (table["start_at"] <= spend.as_of).all()
        assert (table["end_at"] > table["start_at"]).all()


@pytest.mark.parametrize("name", SPEND_QUERIES)
def test_each_spend_query_matches_the_sums_of_the_demo_tables(demo_db: Path, name: str) -> None:
    spend = read_spend(demo_db)
    assert not spend.costs.empty, "the demo pull stored no costs"
    frame = CHECKS[name](demo_db)
    assert not frame.empty


def test_the_demo_key_that_cost_most_heads_the_spend_by_key_and_the_top_keys(
    demo_db: Path,
) -> None:
    spend = read_spend(demo_db)
    by_key = cost_by_key(spend)
    assert not by_key.empty and by_key.max() > 0, "no key of the demo has a cost"
    key_id, currency = by_key.idxmax()
    listed = spend.keys.set_index("id")
    by_key_frame = query(demo_db, "spend-by-key")
    row = by_key_frame[(by_key_frame["key_id"] == key_id) & (by_key_frame["currency"] == currency)]
    assert len(row) == 1
    assert row["cost"].iloc[0] == pytest.approx(by_key.max(), abs=MONEY)
    if key_id in listed.index:
        assert row["key"].iloc[0] == listed.at[key_id, "name"]
    top = query(demo_db, "top-spending-keys")
    assert top["key_id"].iloc[0] == key_id


def test_the_demo_key_whose_owner_left_still_shows_with_its_spend(demo_db: Path) -> None:
    # The demo's case "spend-owner-left": victor-proxy spent in the window, and victor has
    # since left the org (his user row is gone, the key is still listed).
    assert "victor-proxy" in DEMO_CASES["spend-owner-left"]
    spend = read_spend(demo_db)
    key_id = spend.keys.set_index("name").at["victor-proxy", "id"]
    assert key_id not in set(spend.users["id"]) and "user_victor" not in set(spend.users["id"])
    cost = cost_by_key(spend)[(key_id, "usd")]
    assert cost > 0
    by_key = query(demo_db, "spend-by-key").set_index("key")
    victor = by_key.loc["victor-proxy"]
    assert (victor["owner"], victor["owner_in_org"], victor["owner_in_project"]) == (
        "victor@example.com", "no", "no"
    )  # fmt: skip
    assert victor["cost"] == pytest.approx(cost, abs=MONEY)
    by_owner = query(demo_db, "spend-by-owner").set_index("owner")
    assert by_owner.loc["victor@example.com", "owner_in_org"] == "no"
    assert by_owner.loc["victor@example.com", "cost"] == pytest.approx(cost, abs=MONEY)
    assert "victor-proxy" in set(query(demo_db, "top-spending-keys")["key"])
    # The demo's "key-idle": heidi-old spent nothing in the window, so it has no row.
    assert "heidi-old" in DEMO_CASES["key-idle"]
    assert "heidi-old" not in by_key.index


def test_the_command_line_gives_the_runners_answer(demo_db: Path, tmp_path: Path) -> None:
    run = run_cli("query", "spend-by-key", "--db", demo_db, "--format", "json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)
    frame = query(demo_db, "spend-by-key")
    assert [r["key_id"] for r in rows] == frame["key_id"].tolist()
    assert [r["cost"] for r in rows] == pytest.approx(frame["cost"].fillna(0).tolist())
    assert rows, "spend-by-key returned nothing on the demo"


def test_without_usage_every_spend_query_is_empty(tmp_path: Path) -> None:
    db = tmp_path / "no-usage.db"
    with Simulator(demo_org(int(FIXED.timestamp())), admin_key=ADMIN_KEY) as sim:
        pull_and_analyze(
            AdminKey(ADMIN_KEY),
            fast_settings(sim),
            PullSettings(usage_days=0),
            db,
            clock=lambda: FIXED,
        )
    assert read_spend(db).usage_since is None
    for name in SPEND_QUERIES:
        frame = query(db, name)
        assert frame.empty, name
        assert "cost" in frame.columns, name


# -- the cases the demo may not hold: rows written into a copy of its snapshot ------------------

DAY = 86400
GONE_KEY = "key_deleted_since"


@dataclass(frozen=True)
class Made:
    db: Path
    since: int


def _cost(
    conn: sqlite3.Connection,
    snapshot: int,
    start: int,
    project: str | None,
    key: str | None,
    item: str,
    amount: float,
    currency: str = "usd",
) -> None:
    result = {
        "object": "organization.costs.result",
        "amount": {"value": amount, "currency": currency},
        "line_item": item,
        "project_id": project,
        "api_key_id": key,
        "start_time": start,
        "end_time": start + DAY,
    }
    conn.execute(
        "INSERT INTO costs (snapshot_id, start_at, end_at, project_id, api_key_id, line_item,"
        " amount, currency, quantity, quantity_unit, raw) VALUES (?,?,?,?,?,?,?,?,NULL,NULL,?)",
        (snapshot, start, start + DAY, project, key, item, amount, currency, json.dumps(result)),
    )


def _usage(
    conn: sqlite3.Connection,
    snapshot: int,
    start: int,
    kind: str,
    project: str | None,
    key: str | None,
    requests: int | None,
) -> None:
    result = {
        "object": f"organization.usage.{kind}.result",
        "project_id": project,
        "api_key_id": key,
        "start_time": start,
        "end_time": start + DAY,
    }
    conn.execute(
        "INSERT INTO usage (snapshot_id, kind, start_at, end_at, project_id, user_id,"
        " api_key_id, model, requests, input_tokens, output_tokens, raw)"
        " VALUES (?,?,?,?,?,NULL,?,NULL,?,NULL,NULL,?)",
        (snapshot, kind, start, start + DAY, project, key, requests, json.dumps(result)),
    )


@pytest.fixture(scope="module")
def made(demo_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Made:
    """A copy of the demo snapshot whose costs and usage are replaced by known rows: a key
    whose owner lost project access (heidi-old), one whose owner left the org (grace's,
    her user row removed), a deleted key, costs on no key and in no project, two
    currencies, and usage without cost."""
    db = tmp_path_factory.mktemp("spend-made") / "made.db"
    shutil.copyfile(demo_db, db)
    db.chmod(0o600)
    with sqlite3.connect(db) as conn:
        snapshot, as_of = conn.execute("SELECT MAX(id), MAX(as_of) FROM snapshots").fetchone()
        keys = dict(
            conn.execute(
                "SELECT name, id FROM project_api_keys WHERE snapshot_id = ?", (snapshot,)
            ).fetchall()
        )
        conn.execute("DELETE FROM costs WHERE snapshot_id = ?", (snapshot,))
        conn.execute("DELETE FROM usage WHERE snapshot_id = ?", (snapshot,))
        conn.execute("DELETE FROM users WHERE snapshot_id = ? AND id = 'user_grace'", (snapshot,))
        day = as_of - as_of % DAY - 3 * DAY
        rows = [
            (day, "proj_payments", keys["bob-laptop"], "input", 1.25),
            (day + DAY, "proj_payments", keys["bob-laptop"], "output", 2.5),
            (day, "proj_payments", keys["heidi-old"], "input", 40.0),
            (day, "proj_payments", keys["grace-responses"], "input", 7.5),
            (day, "proj_payments", keys["payments-bot-prod"], "input", 0.1),
            (day, "proj_payments", GONE_KEY, "input", 3.0),
            (day, "proj_payments", None, "storage", 0.7),
            (day, None, None, "support", 9.0),
            (day, "proj_legacy", keys["legacy-batch"], "input", 0.3),
        ]
        for start, project, key, item, amount in rows:
            _cost(conn, snapshot, start, project, key, item, amount)
        _cost(conn, snapshot, day, "proj_legacy", keys["legacy-batch"], "input", 0.2, "eur")
        uses = [
            (day, "completions", "proj_payments", keys["bob-laptop"], 10),
            (day + DAY, "embeddings", "proj_payments", keys["bob-laptop"], 5),
            (day, "completions", "proj_payments", keys["heidi-old"], 30),
            (day, "completions", "proj_research", keys["carol-notebook"], 7),
            (day, "vector_stores", "proj_research", None, None),
            (day, "code_interpreter_sessions", "proj_research", None, 3),
            (day, "completions", "proj_legacy", keys["legacy-batch"], 4),
        ]
        for start, kind, project, key, requests in uses:
            _usage(conn, snapshot, start, kind, project, key, requests)
    return Made(db, day)


@pytest.mark.parametrize("name", SPEND_QUERIES)
def test_each_spend_query_matches_the_sums_of_known_rows(made: Made, name: str) -> None:
    CHECKS[name](made.db)


def test_keys_whose_owner_left_and_deleted_keys_still_show(made: Made) -> None:
    frame = query(made.db, "spend-by-key").set_index(["key", "currency"], drop=False)
    heidi = frame.loc[("heidi-old", "usd")]
    assert (heidi["cost"], heidi["requests"]) == (40.0, 30)
    assert (heidi["owner"], heidi["owner_in_project"], heidi["owner_in_org"]) == (
        "heidi@example.com", "no", "yes"
    )  # fmt: skip
    grace = frame.loc[("grace-responses", "usd")]
    assert (grace["owner"], grace["owner_in_org"], grace["cost"]) == (
        "grace@example.com", "no", 7.5
    )  # fmt: skip
    gone = frame.loc[(NOT_LISTED, "usd")]
    assert (gone["key_id"], gone["cost"]) == (GONE_KEY, 3.0)
    assert pd.isna(gone["owner"]) and pd.isna(gone["last_used"])
    bot = frame.loc[("payments-bot-prod", "usd")]
    assert (bot["owner"], bot["owner_type"], bot["owner_in_project"]) == (
        "payments-bot", "service_account", "yes"
    )  # fmt: skip
    # Requests without a cost, and a key billed in two currencies: its requests once.
    carol = frame.loc[frame["key"] == "carol-notebook"]
    assert carol[["cost", "requests"]].values.tolist() == [[0.0, 7]]
    assert carol["currency"].isna().all()
    legacy = frame.loc[frame["key"] == "legacy-batch"]
    assert sorted(legacy["currency"]) == ["eur", "usd"]
    assert legacy["requests"].sum() == 4
    # Costs on no key are not a key's.
    assert frame["key_id"].notna().all()

    top = query(made.db, "top-spending-keys")
    assert top["key"].tolist()[:3] == ["heidi-old", "grace-responses", "bob-laptop"]
    assert top.loc[0, "owner_in_project"] == "no"
    assert top.loc[0, "percent_of_cost"] == pytest.approx(100 * 40.0 / 64.35, abs=0.05)
    assert NOT_LISTED in set(top["key"])


def test_spend_by_owner_keeps_owners_who_left_and_unlisted_keys(made: Made) -> None:
    frame = query(made.db, "spend-by-owner").set_index(["owner", "currency"], drop=False)
    heidi = frame.loc[("heidi@example.com", "usd")]
    assert (heidi["cost"], heidi["keys"], heidi["keys_without_access"]) == (40.0, 1, 1)
    assert frame.loc[("grace@example.com", "usd"), "owner_in_org"] == "no"
    gone = frame.loc[(KEYS_NOT_LISTED, "usd")]
    assert (gone["cost"], gone["keys"]) == (3.0, 1)
    bob = frame.loc[frame["owner"] == "bob@example.com"]
    assert sorted(bob["currency"]) == ["eur", "usd"]
    assert bob["cost"].sum() == pytest.approx(1.25 + 2.5 + 0.3 + 0.2)
    assert (bob["keys"].sum(), bob["requests"].sum()) == (2, 19)
    assert set(bob["projects"].iloc[0].split(",")) <= {"Payments", "Legacy"}


def test_spend_by_project_counts_every_cost_once(made: Made) -> None:
    frame = query(made.db, "spend-by-project")
    usd = frame[frame["currency"] == "usd"].set_index("project")
    through_keys = 1.25 + 2.5 + 40 + 7.5 + 0.1 + 3
    assert usd.loc["Payments", "cost"] == pytest.approx(through_keys + 0.7)  # + storage, no key
    assert usd.loc["Payments", "cost_through_keys"] == pytest.approx(through_keys)
    assert usd.loc["Payments", "keys"] == 5
    assert usd.loc["(no project)", "cost"] == pytest.approx(9.0)
    assert usd["cost"].sum() == pytest.approx(64.35)
    research = frame[frame["project"] == "Research"]
    assert research[["cost", "requests", "keys"]].values.tolist() == [[0.0, 10, 1]]
    assert frame.loc[frame["project"] == "Legacy", "status"].eq("archived").all()
