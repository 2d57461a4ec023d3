"""The simulator's usage and costs endpoints, and the access events its builder logs.

Over real HTTP (the standard library's urllib, through tests/support.py), against the
OpenAPI document's shapes (openai/openai-openapi, info.version 2.3.0): the ``usage-*`` and
``usage-costs`` operations answer ``UsageResponse`` pages of daily ``UsageTimeBucket``
buckets; the builder's access events carry the ``AuditLog`` payloads. What an answer must
hold is computed from :func:`usage_records` (or by hand), not from the server.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from orgaudit.simulator import Fault, OrgBuilder, Simulator
from orgaudit.simulator.demo import demo_builder, demo_org
from orgaudit.simulator.generate import OrgShape, generate_org
from orgaudit.simulator.usage import (
    SECONDS_PER_DAY,
    USAGE_ENDPOINTS,
    UsageRecord,
    expected_cost,
    page_cursor,
    usage_records,
)

from support import ADMIN_KEY, Query, assert_error, call, ok

# A fixed present (not the wall clock), so every expectation below is reproducible.
PRESENT = 1_780_000_000
DAY = SECONDS_PER_DAY
START_30 = PRESENT - 30 * DAY
COMPLETIONS = "/organization/usage/completions"
EMBEDDINGS = "/organization/usage/embeddings"
COSTS = "/organization/costs"
EMPTY_ENDPOINTS = [
    "/organization/usage/moderations",
    "/organization/usage/images",
    "/organization/usage/audio_speeches",
    "/organization/usage/audio_transcriptions",
    "/organization/usage/vector_stores",
    "/organization/usage/code_interpreter_sessions",
    "/organization/usage/file_search_calls",
    "/organization/usage/web_search_calls",
]
# UsageCompletionsResult's properties in the OpenAPI document.
COMPLETIONS_RESULT_FIELDS = {
    "object",
    "input_tokens",
    "input_cached_tokens",
    "input_cache_write_tokens",
    "input_uncached_tokens",
    "output_tokens",
    "input_text_tokens",
    "output_text_tokens",
    "input_cached_text_tokens",
    "input_audio_tokens",
    "input_cached_audio_tokens",
    "output_audio_tokens",
    "input_image_tokens",
    "input_cached_image_tokens",
    "output_image_tokens",
    "num_model_requests",
    "project_id",
    "user_id",
    "api_key_id",
    "model",
    "batch",
    "service_tier",
}
COSTS_RESULT_FIELDS = {
    "object",
    "amount",
    "line_item",
    "project_id",
    "api_key_id",
    "quantity",
    "quantity_unit",
}


@pytest.fixture(scope="module")
def served() -> Iterator[Simulator]:
    """The demo org as of PRESENT, served for the whole module."""
    with Simulator(demo_org(PRESENT), admin_key=ADMIN_KEY) as sim:
        yield sim


@pytest.fixture
def faulty(served: Simulator) -> Iterator[Simulator]:
    """The shared simulator, for a test that adds faults; they are removed afterwards."""
    assert not served.faults
    try:
        yield served
    finally:
        served.faults.clear()


def day_starts(start: int, end: int) -> list[int]:
    """The buckets a query should answer, worked out by hand: UTC days from start's."""
    first = start - start % DAY
    return [first + i * DAY for i in range(math.ceil((end - first) / DAY))]


def every_page(sim: Simulator, path: str, query: Query) -> list[dict[str, Any]]:
    """Every page of a query, following ``next_page`` (at most 100 pages)."""
    pages = [ok(sim, path, query)]
    while pages[-1]["has_more"]:
        assert len(pages) < 100, "the cursor never ends"
        pages.append(ok(sim, path, [*query, ("page", pages[-1]["next_page"])]))
    return pages


def every_bucket(sim: Simulator, path: str, query: Query) -> list[dict[str, Any]]:
    return [bucket for page in every_page(sim, path, query) for bucket in page["data"]]


def window(start: int = START_30, end: int = PRESENT) -> list[tuple[str, str]]:
    return [("start_time", str(start)), ("end_time", str(end))]


def records_in(
    endpoint: str, start: int = START_30, end: int = PRESENT, org: Any = None
) -> list[UsageRecord]:
    """The records an endpoint reports over the buckets of a window."""
    days = set(day_starts(start, end))
    source = usage_records(org if org is not None else demo_org(PRESENT))
    return [r for r in source if r.endpoint == endpoint and r.day_start in days]


# -- buckets and paging ---------------------------------------------------------------------


def test_limit_7_pages_reach_every_daily_bucket_of_30_days_exactly_once(
    served: Simulator,
) -> None:
    query = [*window(START_30 + 3600, PRESENT), ("limit", "7")]
    pages = every_page(served, COMPLETIONS, query)

    expected = day_starts(START_30 + 3600, PRESENT)
    assert len(expected) == 31  # START_30 + 1 h is not at midnight: 30 days and a part
    assert len(pages) == math.ceil(31 / 7)
    starts = [bucket["start_time"] for page in pages for bucket in page["data"]]
    assert starts == expected
    assert starts[0] % DAY == 0
    for page in pages:
        assert set(page) == {"object", "data", "has_more", "next_page"}
        assert page["object"] == "page"
        assert len(page["data"]) <= 7
        assert (page["next_page"] is None) == (not page["has_more"])
        for bucket in page["data"]:
            assert set(bucket) == {"object", "start_time", "end_time", "results"}
            assert bucket["object"] == "bucket"
            assert bucket["end_time"] - bucket["start_time"] == DAY
    assert all(isinstance(page["next_page"], str) for page in pages[:-1])
    assert pages[-1]["has_more"] is False


def test_default_limit_is_7_and_end_time_defaults_to_the_orgs_present(
    served: Simulator,
) -> None:
    page = ok(served, COMPLETIONS, [("start_time", str(PRESENT - 2 * DAY))])
    assert [b["start_time"] for b in page["data"]] == day_starts(PRESENT - 2 * DAY, PRESENT)
    assert len(page["data"]) == 3 and page["has_more"] is False

    first = ok(served, COSTS, [("start_time", str(START_30))])
    assert len(first["data"]) == 7 and first["has_more"] is True


def test_costs_accept_up_to_180_buckets_in_one_page(served: Simulator) -> None:
    start = PRESENT - 179 * DAY
    page = ok(served, COSTS, [("start_time", str(start)), ("limit", "180")])
    assert len(page["data"]) == len(day_starts(start, PRESENT)) == 180
    assert page["has_more"] is False


# -- aggregation against the records ----------------------------------------------------------


def _sums(records: list[UsageRecord], key: Any) -> dict[Any, tuple[int, int, int]]:
    sums: defaultdict[Any, list[int]] = defaultdict(lambda: [0, 0, 0])
    for record in records:
        total = sums[key(record)]
        total[0] += record.num_model_requests
        total[1] += record.input_tokens
        total[2] += record.output_tokens
    return {k: (v[0], v[1], v[2]) for k, v in sums.items()}


def test_completions_grouped_by_project_key_and_user_equal_the_records(
    served: Simulator,
) -> None:
    query = [
        *window(),
        ("limit", "7"),
        ("group_by", "project_id"),
        ("group_by", "api_key_id"),
        ("group_by[]", "user_id"),
    ]
    got: dict[Any, tuple[int, int, int]] = {}
    for bucket in every_bucket(served, COMPLETIONS, query):
        for result in bucket["results"]:
            assert set(result) == COMPLETIONS_RESULT_FIELDS
            assert result["object"] == "organization.usage.completions.result"
            assert (result["model"], result["batch"], result["service_tier"]) == (None,) * 3
            assert result["input_uncached_tokens"] == result["input_tokens"]
            assert result["input_cached_tokens"] == 0
            key = (
                bucket["start_time"],
                result["project_id"],
                result["api_key_id"],
                result["user_id"],
            )
            assert key not in got
            got[key] = (
                result["num_model_requests"],
                result["input_tokens"],
                result["output_tokens"],
            )

    expected = _sums(
        records_in("completions"), lambda r: (r.day_start, r.project_id, r.api_key_id, r.user_id)
    )
    assert got == expected
    assert len(expected) > 20
    # Service-account keys have no user: their results say so.
    assert any(user is None for (_, _, _, user) in got)


def test_embeddings_grouped_by_user_sum_over_keys_and_projects(served: Simulator) -> None:
    query = [*window(), ("limit", "31"), ("group_by", "user_id"), ("group_by", "model")]
    got = {
        (bucket["start_time"], result["user_id"], result["model"]): (
            result["num_model_requests"],
            result["input_tokens"],
        )
        for bucket in ok(served, EMBEDDINGS, query)["data"]
        for result in bucket["results"]
    }
    records = records_in("embeddings")
    expected = {
        key: (requests, tokens)
        for key, (requests, tokens, _) in _sums(
            records, lambda r: (r.day_start, r.user_id, r.model)
        ).items()
    }
    assert got == expected
    assert records and {r.model for r in records} == {"text-embedding-3-small"}


def test_ungrouped_results_are_one_total_per_used_day_with_null_group_fields(
    served: Simulator,
) -> None:
    buckets = every_bucket(served, COMPLETIONS, [*window(), ("limit", "31")])
    expected = _sums(records_in("completions"), lambda r: r.day_start)
    for bucket in buckets:
        if bucket["start_time"] not in expected:
            assert bucket["results"] == []
            continue
        [result] = bucket["results"]
        assert all(result[name] is None for name in ("project_id", "user_id", "api_key_id"))
        totals = (result["num_model_requests"], result["input_tokens"], result["output_tokens"])
        assert totals == expected[bucket["start_time"]]
    assert expected and len(buckets) == 31


def test_days_without_use_are_empty_buckets(served: Simulator) -> None:
    start, end = PRESENT - 700 * DAY, PRESENT - 690 * DAY
    assert not records_in("completions", start, end) + records_in("embeddings", start, end)
    for path in (COMPLETIONS, EMBEDDINGS, COSTS):
        buckets = every_bucket(served, path, window(start, end))
        assert [b["start_time"] for b in buckets] == day_starts(start, end)
        assert all(bucket["results"] == [] for bucket in buckets)


def test_records_follow_the_documented_derivation() -> None:
    """Recomputed by hand for one key: CRC-32 of its id sets the span and the amounts."""
    import zlib

    org = demo_org(PRESENT)
    key = next(k for k in org.project_api_keys["proj_payments"] if k["name"] == "grace-responses")
    h = zlib.crc32(key["id"].encode())
    mine = [r for r in usage_records(org) if r.api_key_id == key["id"]]
    first = max(key["created_at"], key["last_used_at"] - (3 + h % 25) * DAY)
    assert [r.day_start for r in mine] == day_starts(first, key["last_used_at"] + 1)
    requests = 20 + h % 480
    for record in mine:
        assert record.num_model_requests == requests
        assert record.input_tokens == requests * (1200 + h % 2800)
        assert record.user_id == "user_grace" and record.project_id == "proj_payments"
    never_used = next(
        k for k in org.project_api_keys["proj_payments"] if k["name"] == "alice-never-used"
    )
    assert not [r for r in usage_records(org) if r.api_key_id == never_used["id"]]


# -- costs ----------------------------------------------------------------------------------


def _hand_cost(record: UsageRecord) -> float:
    """A record's cost at the list prices (USD per million tokens), by hand."""
    if record.model == "text-embedding-3-small":
        return round(record.input_tokens * 0.02 / 1e6, 6)
    return round(record.input_tokens * 2.00 / 1e6, 6) + round(record.output_tokens * 8.00 / 1e6, 6)


def test_costs_by_project_line_item_and_key_sum_to_the_expected_usd_for_a_key(
    served: Simulator,
) -> None:
    query = [
        *window(),
        ("limit", "7"),
        ("group_by", "project_id"),
        ("group_by", "line_item"),
        ("group_by", "api_key_id"),
    ]
    buckets = every_bucket(served, COSTS, query)
    results = [result for bucket in buckets for result in bucket["results"]]
    for result in results:
        assert set(result) == COSTS_RESULT_FIELDS
        assert result["object"] == "organization.costs.result"
        assert result["amount"]["currency"] == "usd"
        assert result["quantity_unit"] == "tokens" and isinstance(result["quantity"], int)
    key_id = served.org.project_api_keys["proj_payments"][1]["id"]  # grace-responses
    mine = [r for r in results if r["api_key_id"] == key_id]
    assert {r["line_item"] for r in mine} == {"gpt-4.1, input", "gpt-4.1, output"}
    assert {r["project_id"] for r in mine} == {"proj_payments"}

    total = round(math.fsum(r["amount"]["value"] for r in mine), 6)
    assert total == expected_cost(served.org, key_id, START_30, PRESENT)
    by_hand = math.fsum(_hand_cost(r) for r in records_in("completions") if r.api_key_id == key_id)
    assert total == pytest.approx(by_hand, abs=1e-9)
    assert total > 0
    tokens = sum(r.input_tokens for r in records_in("completions") if r.api_key_id == key_id)
    assert sum(r["quantity"] for r in mine if r["line_item"].endswith("input")) == tokens


def test_ungrouped_costs_total_every_key_with_no_quantity(served: Simulator) -> None:
    buckets = every_bucket(served, COSTS, [*window(), ("limit", "180")])
    results = [result for bucket in buckets for result in bucket["results"]]
    assert all(len(bucket["results"]) <= 1 for bucket in buckets)
    for result in results:
        assert result["line_item"] is None and result["project_id"] is None
        assert result["quantity"] is None and result["quantity_unit"] is None
    total = round(math.fsum(r["amount"]["value"] for r in results), 6)
    every_record = records_in("completions") + records_in("embeddings")
    assert total == expected_cost(served.org, None, START_30, PRESENT)
    assert total == pytest.approx(math.fsum(_hand_cost(r) for r in every_record), abs=1e-9)


# -- filters ----------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["", "[]"])
def test_filters_keep_only_the_projects_users_and_keys_asked(
    served: Simulator, spelling: str
) -> None:
    def totals(query: Query) -> int:
        buckets = every_bucket(served, COMPLETIONS, [*window(), ("limit", "31"), *query])
        return sum(r["num_model_requests"] for b in buckets for r in b["results"])

    records = records_in("completions")
    research = totals([(f"project_ids{spelling}", "proj_research")])
    assert research == sum(r.num_model_requests for r in records if r.project_id == "proj_research")
    assert 0 < research < totals([])

    carol_or_grace = totals(
        [(f"user_ids{spelling}", "user_carol"), (f"user_ids{spelling}", "user_grace")]
    )
    assert carol_or_grace == sum(
        r.num_model_requests for r in records if r.user_id in ("user_carol", "user_grace")
    )
    key_id = records[0].api_key_id
    assert totals([(f"api_key_ids{spelling}", key_id)]) == sum(
        r.num_model_requests for r in records if r.api_key_id == key_id
    )
    assert totals([("models", "gpt-4.1")]) == totals([])
    assert totals([("models", "o3")]) == 0
    assert totals([("batch", "true")]) == 0


def test_costs_filter_by_project(served: Simulator) -> None:
    query = [*window(), ("limit", "31"), ("project_ids[]", "proj_research")]
    buckets = every_bucket(served, COSTS, [*query, ("group_by", "project_id")])
    projects = {r["project_id"] for b in buckets for r in b["results"]}
    assert projects == {"proj_research"}
    total = round(math.fsum(r["amount"]["value"] for b in buckets for r in b["results"]), 6)
    research_keys = {k["id"] for k in served.org.project_api_keys["proj_research"]}
    assert total == round(
        math.fsum(expected_cost(served.org, k, START_30, PRESENT) for k in research_keys), 6
    )


# -- refused requests ---------------------------------------------------------------------------

BAD_REQUESTS = [
    ("missing start_time", COMPLETIONS, [("limit", "7")]),
    ("start_time not an integer", COMPLETIONS, [("start_time", "yesterday")]),
    ("start_time a float", COSTS, [("start_time", "1780000000.5")]),
    ("end_time before start_time", COSTS, [*window(PRESENT, PRESENT - DAY)]),
    ("bucket_width 1h", COMPLETIONS, [*window(), ("bucket_width", "1h")]),
    ("bucket_width 1w", COSTS, [*window(), ("bucket_width", "1w")]),
    ("group_by line_item on usage", COMPLETIONS, [*window(), ("group_by", "line_item")]),
    ("group_by model on costs", COSTS, [*window(), ("group_by", "model")]),
    ("group_by user_id on vector stores", EMPTY_ENDPOINTS[4], [*window(), ("group_by", "user_id")]),
    ("group_by[] unknown", EMBEDDINGS, [*window(), ("group_by[]", "colour")]),
    ("usage limit 0", COMPLETIONS, [*window(), ("limit", "0")]),
    ("usage limit 32", EMBEDDINGS, [*window(), ("limit", "32")]),
    ("costs limit 181", COSTS, [*window(), ("limit", "181")]),
    ("limit not an integer", COSTS, [*window(), ("limit", "seven")]),
    ("unknown cursor", COMPLETIONS, [*window(), ("page", "page_nonsense")]),
    ("cursor without prefix", COSTS, [*window(), ("page", "AAAAAGdGxdE=")]),
    ("cursor before the window", COMPLETIONS, [*window(), ("page", page_cursor(START_30 - DAY))]),
    ("cursor off midnight", COMPLETIONS, [*window(), ("page", page_cursor(START_30 + 60))]),
    ("batch not a boolean", COMPLETIONS, [*window(), ("batch", "maybe")]),
]


@pytest.mark.parametrize(
    ("path", "query"), [(p, q) for _, p, q in BAD_REQUESTS], ids=[n for n, _, _ in BAD_REQUESTS]
)
def test_bad_requests_are_400_with_the_spec_error_body(
    served: Simulator, path: str, query: Query
) -> None:
    before = len(served.requests)
    assert_error(call(served, path, query), 400, "invalid_value")
    [record] = served.requests[before:]
    assert (record.path, record.status) == (path, 400)


def test_a_cursor_from_a_previous_page_is_accepted(served: Simulator) -> None:
    first = ok(served, COSTS, [*window(), ("limit", "3")])
    second = ok(served, COSTS, [*window(), ("limit", "3"), ("page", first["next_page"])])
    assert second["data"][0]["start_time"] == first["data"][-1]["start_time"] + DAY
    assert first["next_page"].startswith("page_")


# -- endpoints without records ------------------------------------------------------------------


@pytest.mark.parametrize("path", EMPTY_ENDPOINTS)
def test_endpoints_without_records_answer_empty_buckets(served: Simulator, path: str) -> None:
    start = PRESENT - 9 * DAY
    pages = every_page(served, path, [("start_time", str(start)), ("group_by", "project_id")])
    buckets = [bucket for page in pages for bucket in page["data"]]
    assert [b["start_time"] for b in buckets] == day_starts(start, PRESENT)
    assert all(bucket["results"] == [] for bucket in buckets)
    assert len(pages) == 2  # 10 buckets, 7 to a page


def test_every_documented_usage_endpoint_is_served(served: Simulator) -> None:
    served_paths = {COMPLETIONS, EMBEDDINGS, COSTS, *EMPTY_ENDPOINTS}
    assert set(USAGE_ENDPOINTS) == served_paths
    for path in served_paths:
        assert ok(served, path, window(PRESENT - DAY))["object"] == "page"
    assert call(served, "/organization/usage/teleportation", window()).status == 404


# -- the org's keys change in place -------------------------------------------------------------


def test_usage_follows_a_key_used_again_between_requests() -> None:
    builder = demo_builder(PRESENT)
    key_id = builder.key_id("proj_legacy", "legacy-batch")  # last used 120 days ago
    query = [*window(PRESENT - 5 * DAY), ("api_key_ids", key_id), ("limit", "31")]
    with Simulator(builder.org, admin_key=ADMIN_KEY) as sim:
        before = every_bucket(sim, COSTS, query)
        builder.use_key("proj_legacy", key_id, days_ago=0)
        after = every_bucket(sim, COSTS, query)
    assert all(bucket["results"] == [] for bucket in before)
    assert after[-1]["results"] != []
    assert expected_cost(builder.org, key_id, PRESENT - 5 * DAY, PRESENT) > 0


def test_a_large_generated_org_serves_30_days_quickly() -> None:
    org = generate_org(OrgShape(users=1000, projects=200, keys_per_project=20), seed=3, now=PRESENT)
    assert sum(len(keys) for keys in org.project_api_keys.values()) == 4000
    with Simulator(org, admin_key=ADMIN_KEY) as sim:
        began = time.monotonic()
        buckets = every_bucket(sim, COMPLETIONS, [*window(), ("group_by", "project_id")])
        costs = every_bucket(sim, COSTS, [*window(), ("limit", "31")])
        elapsed = time.monotonic() - began
    assert len(buckets) == len(costs) == 31
    total = round(math.fsum(r["amount"]["value"] for b in costs for r in b["results"]), 6)
    assert total == expected_cost(org, None, START_30, PRESENT)
    assert elapsed < 10


# -- faults on usage routes ---------------------------------------------------------------------


def test_status_and_malformed_faults_hit_usage_routes(faulty: Simulator) -> None:
    faulty.add_fault(Fault("status", path="^/organization/costs$", status=503))
    assert_error(call(faulty, COSTS, window()), 503)
    faulty.add_fault(Fault("malformed", path="^/organization/usage/"))
    with pytest.raises(ValueError):  # not JSON
        call(faulty, COMPLETIONS, window())
    assert ok(faulty, COMPLETIONS, window())["object"] == "page"


def test_repeat_cursor_keeps_answering_the_first_page(faulty: Simulator) -> None:
    query = [*window(), ("limit", "7")]
    first = ok(faulty, COSTS, query)
    faulty.add_fault(Fault("repeat_cursor", path="^/organization/costs$", times=2))
    stuck = ok(faulty, COSTS, [*query, ("page", first["next_page"])])
    again = ok(faulty, COSTS, [*query, ("page", stuck["next_page"])])
    assert stuck["data"] == again["data"] == first["data"]
    assert stuck["has_more"] and stuck["next_page"] == again["next_page"]
    # Once the fault is spent, the stuck cursor is a valid one: the first page again.
    assert ok(faulty, COSTS, [*query, ("page", again["next_page"])])["data"] == first["data"]


def test_rewind_cursor_repeats_all_but_one_bucket(faulty: Simulator) -> None:
    query = [*window(), ("limit", "7")]
    faulty.add_fault(Fault("rewind_cursor", path="^/organization/usage/completions$"))
    first = ok(faulty, COMPLETIONS, query)
    second = ok(faulty, COMPLETIONS, [*query, ("page", first["next_page"])])
    starts = [b["start_time"] for b in first["data"]]
    assert [b["start_time"] for b in second["data"]] == [*starts[1:], starts[-1] + DAY]


def test_ignore_limit_answers_every_bucket_in_one_page(faulty: Simulator) -> None:
    faulty.add_fault(Fault("ignore_limit", path="^/organization/usage/"))
    page = ok(faulty, EMBEDDINGS, [*window(), ("limit", "2")])
    assert len(page["data"]) == len(day_starts(START_30, PRESENT))
    assert page["has_more"] is False and page["next_page"] is None


# -- access events in the audit log -------------------------------------------------------------


def _access_org() -> tuple[OrgBuilder, dict[str, str]]:
    """A small org whose every access-changing builder call is logged."""
    b = OrgBuilder("org_access", PRESENT)
    ids: dict[str, str] = {}
    ids["ann"] = b.user("Ann Admin", "ann@example.com", "owner", user_id="user_ann")
    ids["ben"] = b.user("Ben", "ben@example.com", user_id="user_ben")
    ids["proj"] = b.project("Alpha", project_id="proj_alpha")
    b.member(ids["proj"], ids["ben"], "member")
    b.acting_as(ids["ann"])
    b.member(ids["proj"], ids["ann"], "owner", at_days_ago=5)
    ids["prole"] = b.custom_project_role(ids["proj"], "Keys", ["k.read"], at_days_ago=4)
    ids["orole"] = b.custom_org_role("Org keys", ["k.read"])
    b.assign_project_role(ids["proj"], ids["ben"], ids["prole"], at_days_ago=3)
    b.assign_org_role(ids["ben"], ids["orole"], at_days_ago=3)
    ids["group"] = b.group("Team", [ids["ben"]], at_days_ago=2)
    b.group_in_project(ids["proj"], ids["group"], ids["prole"], at_days_ago=2)
    b.group_org_role(ids["group"], ids["orole"], at_days_ago=2)
    b.add_group_member(ids["group"], ids["ann"])  # not logged: no documented event
    ids["sa"] = b.service_account(ids["proj"], "bot", "owner", at_days_ago=1)
    ids["invite"] = b.invite(
        "cy@example.com", "reader", "pending", sent_days_ago=1, expires_in_days=7
    )
    b.set_project_role(ids["proj"], ids["ben"], "viewer", at_days_ago=0.5)
    b.set_org_role(ids["ben"], "owner", at_days_ago=0.5)
    ids["key"] = b.key(ids["proj"], ids["sa"], "bot-key", scopes=[])
    b.remove_member(ids["proj"], ids["ben"], at_days_ago=0.25)
    b.remove_member(ids["proj"], ids["ben"])  # no longer a member: nothing to log
    b.acting_as(None)
    b.remove_user(ids["ben"])
    return b, ids


def _events_of(b: OrgBuilder, event_type: str) -> list[dict[str, Any]]:
    return [e for e in b.org.audit_logs if e["type"] == event_type]


def test_access_changes_are_logged_with_the_documented_payloads() -> None:
    b, ids = _access_org()
    at = b.days_ago
    kinds = Counter(e["type"] for e in b.org.audit_logs)
    assert kinds == {
        "user.added": 2,
        "role.created": 2,
        "role.assignment.created": 4,
        "group.created": 1,
        "service_account.created": 1,
        "invite.sent": 1,
        "user.updated": 2,
        "api_key.created": 1,
        "user.deleted": 2,
    }
    for event in b.org.audit_logs:
        assert set(event) - {"project"} == {"id", "type", "effective_at", "actor", event["type"]}

    ben_added, ann_added = _events_of(b, "user.added")
    assert ben_added["user.added"] == {"id": ids["ben"], "data": {"role": "member"}}
    assert ben_added["effective_at"] == at(300)
    # At the membership's added_at (ben has left since; ann is the one member left).
    [ann_membership] = b.org.project_users[ids["proj"]]
    assert ann_added["effective_at"] == ann_membership["added_at"] == at(5)
    assert ann_added["project"] == {"id": ids["proj"], "name": "Alpha"}

    project_role, org_role = _events_of(b, "role.created")
    assert project_role["role.created"] == {
        "id": ids["prole"],
        "role_name": "Keys",
        "permissions": ["k.read"],
        "resource_type": "api.project",
        "resource_id": ids["proj"],
    }
    assert project_role["project"]["id"] == ids["proj"] and project_role["effective_at"] == at(4)
    assert org_role["role.created"]["resource_type"] == "api.organization"
    assert org_role["role.created"]["resource_id"] == "org_access"
    assert "project" not in org_role and org_role["effective_at"] == at(200)

    assignments = [e["role.assignment.created"] for e in _events_of(b, "role.assignment.created")]
    assert [
        (a["principal_id"], a["principal_type"], a["resource_id"], a["resource_type"])
        for a in assignments
    ] == [
        (ids["ben"], "user", ids["proj"], "api.project"),
        (ids["ben"], "user", "org_access", "api.organization"),
        (ids["group"], "group", ids["proj"], "api.project"),
        (ids["group"], "group", "org_access", "api.organization"),
    ]
    assert all(
        set(a) == {"id", "principal_id", "principal_type", "resource_id", "resource_type"}
        for a in assignments
    )
    assert len({a["id"] for a in assignments}) == 4

    [group] = _events_of(b, "group.created")
    assert group["group.created"] == {"id": ids["group"], "data": {"group_name": "Team"}}
    assert group["effective_at"] == b.org.groups[0]["created_at"] == at(2)
    [account] = _events_of(b, "service_account.created")
    assert account["service_account.created"] == {"id": ids["sa"], "data": {"role": "owner"}}
    assert account["project"]["id"] == ids["proj"]
    [invite] = _events_of(b, "invite.sent")
    assert invite["invite.sent"] == {
        "id": ids["invite"],
        "data": {"email": "cy@example.com", "role": "reader"},
    }
    assert invite["effective_at"] == b.org.invites[0]["created_at"]

    project_update, org_update = _events_of(b, "user.updated")
    # The user's id, though the spec's description of this `id` says "The project ID".
    assert project_update["user.updated"] == {
        "id": ids["ben"],
        "changes_requested": {"role": "viewer"},
    }
    assert project_update["project"]["id"] == ids["proj"]
    assert org_update["user.updated"] == {"id": ids["ben"], "changes_requested": {"role": "owner"}}
    assert "project" not in org_update

    left_project, left_org = _events_of(b, "user.deleted")
    assert left_project["user.deleted"] == {"id": ids["ben"]}
    assert left_project["project"]["id"] == ids["proj"]
    assert left_project["effective_at"] == at(0.25)
    assert left_org["user.deleted"] == {"id": ids["ben"]} and "project" not in left_org
    assert left_org["effective_at"] == PRESENT


def test_events_carry_the_acting_user_else_the_first_owner_else_the_system() -> None:
    b, ids = _access_org()
    ann = {
        "type": "session",
        "session": {
            "user": {"id": ids["ann"], "email": "ann@example.com"},
            "ip_address": "127.0.0.1",
        },
    }
    assert all(e["actor"] == ann for e in b.org.audit_logs)  # the org's owner by default
    assert any(e["type"] == "api_key.created" for e in b.org.audit_logs)  # key events too

    ownerless = OrgBuilder("org_ownerless", PRESENT)
    reader = ownerless.user("Rae", "rae@example.com", user_id="user_rae")
    ownerless.member(ownerless.project("P", project_id="proj_p"), reader)
    system = {
        "type": "session",
        "session": {
            "user": {"id": "user_system", "email": "admin@example.com"},
            "ip_address": "127.0.0.1",
        },
    }
    assert [e["actor"] for e in ownerless.org.audit_logs] == [system]


def test_access_events_are_served_newest_first_and_filtered_by_time() -> None:
    b, _ = _access_org()
    with Simulator(b.org, admin_key=ADMIN_KEY) as sim:

        def served_events(*query: tuple[str, str]) -> list[dict[str, Any]]:
            page = ok(sim, "/organization/audit_logs", [*query, ("limit", "100")])
            events: list[dict[str, Any]] = page["data"]
            return events

        every = served_events()
        times = [e["effective_at"] for e in every]
        assert times == sorted(times, reverse=True) and len(every) == len(b.org.audit_logs)

        types = [("event_types[]", "user.added"), ("event_types[]", "user.deleted")]
        assert [e["type"] for e in served_events(*types)] == [
            "user.deleted",
            "user.deleted",
            "user.added",
            "user.added",
        ]
        two_days = str(b.days_ago(2))
        after = served_events(("effective_at[gt]", two_days))
        since = served_events(("effective_at[gte]", two_days))
        before = served_events(("effective_at[lt]", two_days))
        until = served_events(("effective_at[lte]", two_days))
        assert all(e["effective_at"] > int(two_days) for e in after)
        assert all(e["effective_at"] < int(two_days) for e in before)
        at_two_days = [e for e in every if e["effective_at"] == int(two_days)]
        assert len(at_two_days) == 3  # the group, and its two role assignments
        assert len(since) == len(after) + 3 and len(until) == len(before) + 3
        assert len(after) + len(until) == len(every)
        assert_error(call(sim, "/organization/audit_logs", [("effective_at[lt]", "soon")]), 400)


def test_existing_ids_stay_as_they_were() -> None:
    org = demo_org(PRESENT)
    # The demo org's first project key had this id before access events were logged.
    assert org.project_api_keys["proj_payments"][0]["id"] == "key_000009"
    # Key events keep numbering from the builder's one serial; access events have their own.
    key_events = [e for e in org.audit_logs if e["type"].startswith("api_key.")]
    access_events = [e for e in org.audit_logs if not e["type"].startswith("api_key.")]
    assert key_events and all(re.fullmatch(r"audit_log-\d{6}", e["id"]) for e in key_events)
    assert access_events
    assert all(re.fullmatch(r"audit_log-acc-\d{6}", e["id"]) for e in access_events)
    every_id = [e["id"] for e in org.audit_logs]
    assert len(set(every_id)) == len(every_id)


def test_a_builder_that_logs_access_numbers_objects_as_before() -> None:
    """The same calls give the same object ids whether access events are logged or not:
    a builder's ids are those of one serial, never drawn by the access events."""
    b = OrgBuilder("org_ids", PRESENT)
    user = b.user("U", "u@example.com")
    project = b.project("P")
    b.member(project, user)  # logged
    role = b.custom_project_role(project, "R", ["p"])  # logged
    group = b.group("G", [user])  # logged
    account = b.service_account(project, "sa")  # logged
    key = b.key(project, account, "k", scopes=[])
    assert [user, project, role, group, account, key] == [
        "user_000001",
        "proj_000002",
        "role_000003",
        "group_000004",
        "svc_acct_000005",
        "key_000006",
    ]
    assert _events_of(b, "api_key.created")[0]["id"] == "audit_log-000007"
