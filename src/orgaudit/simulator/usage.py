"""The simulated org's usage and costs: ``GET /organization/usage/*`` and ``/costs``.

Shapes are the OpenAPI document's (openai/openai-openapi, info.version 2.3.0): the
operations ``usage-completions`` ... ``usage-web-search-calls`` and ``usage-costs``, their
query parameters, the ``UsageResponse`` page of ``UsageTimeBucket`` buckets, and the
``Usage*Result`` and ``CostsResult`` schemas of what a bucket holds.

The history is derived from the project keys themselves, with no randomness and no clock,
so every org (the demo's, a generated one of 20,000 keys) has one: a key with a
``last_used_at`` was used every UTC day from ``max(created_at, last_used_at - span days)``
through the day of its last use, ``span`` and the daily amounts following from a CRC-32 of
its id (:func:`usage_records`). Completions and embeddings carry that history; the other
usage endpoints answer empty buckets. Tests compute what an answer must hold from
:func:`usage_records` and :func:`expected_cost`, independently of the server.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from orgaudit.simulator.org import JsonObject, SimOrg

SECONDS_PER_DAY = 86400
Query = Mapping[str, list[str]]

COMPLETIONS_MODEL = "gpt-4.1"
EMBEDDINGS_MODEL = "text-embedding-3-small"
# List prices in USD per million tokens, from https://openai.com/api/pricing/ (gpt-4.1:
# $2.00 input, $8.00 output; text-embedding-3-small: $0.02).
USD_PER_MILLION_TOKENS: dict[tuple[str, str], float] = {
    (COMPLETIONS_MODEL, "input"): 2.00,
    (COMPLETIONS_MODEL, "output"): 8.00,
    (EMBEDDINGS_MODEL, "input"): 0.02,
}
# Costs are rounded to this many decimals, per line item and day and again when summed.
COST_DECIMALS = 6


class UsageQueryError(Exception):
    """A usage or costs request the simulator answers with 400 (the spec's error body)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class CostLine:
    """One line item of one key's costs on one UTC day (a ``CostsResult`` before grouping)."""

    day_start: int
    project_id: str
    api_key_id: str
    line_item: str
    amount_usd: float
    quantity: int
    quantity_unit: str = "tokens"


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One project key's use of one model on one UTC day.

    ``endpoint`` is the usage endpoint that reports it (``completions`` or
    ``embeddings``); ``user_id`` is the key owner's user id, None for a service account's
    key. Embeddings have no output tokens.
    """

    day_start: int
    endpoint: str
    project_id: str
    api_key_id: str
    user_id: str | None
    model: str
    num_model_requests: int
    input_tokens: int
    output_tokens: int

    def cost_lines(self) -> tuple[CostLine, ...]:
        """The day's costs as line items ``"<model>, input"`` and ``"<model>, output"``
        (embeddings: input only), each rounded to :data:`COST_DECIMALS`."""
        kinds = (("input", self.input_tokens), ("output", self.output_tokens))
        return tuple(
            CostLine(
                self.day_start,
                self.project_id,
                self.api_key_id,
                f"{self.model}, {kind}",
                round(tokens * USD_PER_MILLION_TOKENS[(self.model, kind)] / 1e6, COST_DECIMALS),
                tokens,
            )
            for kind, tokens in kinds
            if (self.model, kind) in USD_PER_MILLION_TOKENS
        )


def utc_day_start(unix_seconds: int) -> int:
    """The UTC midnight at or before ``unix_seconds``."""
    return unix_seconds - unix_seconds % SECONDS_PER_DAY


def bucket_starts(start_time: int, end_time: int) -> range:
    """The start of every daily bucket a query from ``start_time`` to ``end_time``
    (exclusive) answers: from ``start_time``'s UTC midnight, a day apart."""
    return range(utc_day_start(start_time), end_time, SECONDS_PER_DAY)


def org_present(org: SimOrg) -> int:
    """The org's present (unix seconds): :attr:`SimOrg.now`, else the wall clock."""
    return org.now if org.now is not None else int(time.time())


def _owner_user_id(key: JsonObject) -> str | None:
    owner = key.get("owner") or {}
    if owner.get("type") != "user":
        return None
    user_id = (owner.get("user") or {}).get("id")
    return str(user_id) if user_id is not None else None


def _key_records(project_id: str, key: JsonObject) -> Iterable[UsageRecord]:
    """One key's daily records (none if it was never used)."""
    last_used = key.get("last_used_at")
    if last_used is None:
        return
    key_id = str(key["id"])
    # A stable hash (Python's hash() of a str changes from run to run).
    h = zlib.crc32(key_id.encode())
    span_days = 3 + h % 25
    requests = 20 + h % 480
    embeddings = h % 5 == 0
    input_tokens = requests * (1200 + h % 2800)
    output_tokens = 0 if embeddings else requests * (200 + h % 800)
    user_id = _owner_user_id(key)
    first_use = max(int(key["created_at"]), int(last_used) - span_days * SECONDS_PER_DAY)
    for day in range(utc_day_start(first_use), int(last_used) + 1, SECONDS_PER_DAY):
        yield UsageRecord(
            day_start=day,
            endpoint="embeddings" if embeddings else "completions",
            project_id=project_id,
            api_key_id=key_id,
            user_id=user_id,
            model=EMBEDDINGS_MODEL if embeddings else COMPLETIONS_MODEL,
            num_model_requests=requests,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )


def _key_state(org: SimOrg) -> tuple[tuple[object, ...], ...]:
    """Every value the usage history derives from (keys change in place: ``use_key``)."""
    return tuple(
        (project_id, key["id"], key["created_at"], key.get("last_used_at"), _owner_user_id(key))
        for project_id, keys in list(org.project_api_keys.items())
        for key in keys
    )


class _UsageHistory:
    """An org's usage records by UTC day, and each day's cost lines once asked for."""

    def __init__(self, by_day: dict[int, tuple[UsageRecord, ...]]) -> None:
        self.by_day = by_day
        self._cost_lines: dict[int, tuple[CostLine, ...]] = {}

    def cost_lines(self, day: int) -> tuple[CostLine, ...]:
        """The day's cost lines (computed once; a race computes the same value twice)."""
        lines = self._cost_lines.get(day)
        if lines is None:
            records = self.by_day.get(day, ())
            lines = tuple(line for record in records for line in record.cost_lines())
            self._cost_lines[day] = lines
        return lines


def _history(org: SimOrg) -> _UsageHistory:
    """The org's usage history, computed once per state of its keys."""

    def build() -> _UsageHistory:
        days: defaultdict[int, list[UsageRecord]] = defaultdict(list)
        for project_id, keys in list(org.project_api_keys.items()):
            for key in keys:
                for record in _key_records(project_id, key):
                    days[record.day_start].append(record)
        return _UsageHistory({day: tuple(records) for day, records in sorted(days.items())})

    return org.memo_while("usage_history", _key_state(org), build)


def records_by_day(org: SimOrg) -> Mapping[int, tuple[UsageRecord, ...]]:
    """The org's usage records by UTC day (the start of the day), oldest day first."""
    return _history(org).by_day


def usage_records(org: SimOrg) -> list[UsageRecord]:
    """Every usage record of the org: by day, then project and key in the org's order."""
    return [record for records in records_by_day(org).values() for record in records]


def expected_cost(org: SimOrg, api_key_id: str | None, start_time: int, end_time: int) -> float:
    """What the costs endpoint must total (USD) for one key (None: every key) over the
    daily buckets of ``start_time`` to ``end_time``, computed from the records alone."""
    days = bucket_starts(start_time, end_time)
    amounts = [
        line.amount_usd
        for record in usage_records(org)
        if record.day_start in days and api_key_id in (None, record.api_key_id)
        for line in record.cost_lines()
    ]
    return round(math.fsum(amounts), COST_DECIMALS)


# -- the endpoints -----------------------------------------------------------------------

# The id filters (query name -> the record field it filters), where an endpoint documents
# them; undocumented query parameters are ignored, as the simulator's other routes do.
_FILTER_FIELDS = {
    "project_ids": "project_id",
    "user_ids": "user_id",
    "api_key_ids": "api_key_id",
    "models": "model",
}
_FOUR_FILTERS = ("project_ids", "user_ids", "api_key_ids", "models")
_FOUR_GROUPS = ("project_id", "user_id", "api_key_id", "model")


@dataclass(frozen=True)
class UsageEndpoint:
    """One usage (or the costs) endpoint as the OpenAPI document describes it.

    ``group_fields`` is its ``group_by`` enum, which are also its results' group fields;
    ``filters`` the id filters it documents; ``max_limit`` and ``default_limit`` its
    ``limit`` range for ``bucket_width=1d``; ``records`` which usage records it reports
    (None: none, so its buckets are empty).
    """

    path: str
    result_object: str
    group_fields: tuple[str, ...]
    filters: tuple[str, ...]
    max_limit: int = 31
    default_limit: int = 7
    records: str | None = None
    has_batch_filter: bool = False

    @property
    def is_costs(self) -> bool:
        """Whether this is ``/organization/costs``."""
        return self.path == "/organization/costs"


def _usage(
    name: str, result: str, groups: tuple[str, ...], filters: tuple[str, ...]
) -> UsageEndpoint:
    return UsageEndpoint(f"/organization/usage/{name}", result, groups, filters)


# Group-by enums, filters and result objects per operation of the OpenAPI document; limits
# from its `limit` descriptions ("bucket_width=1d: default: 7, max: 31"; costs: "between 1
# and 180, and the default is 7").
USAGE_ENDPOINTS: dict[str, UsageEndpoint] = {
    endpoint.path: endpoint
    for endpoint in (
        UsageEndpoint(
            "/organization/usage/completions",
            "organization.usage.completions.result",
            (*_FOUR_GROUPS, "batch", "service_tier"),
            _FOUR_FILTERS,
            records="completions",
            has_batch_filter=True,
        ),
        UsageEndpoint(
            "/organization/usage/embeddings",
            "organization.usage.embeddings.result",
            _FOUR_GROUPS,
            _FOUR_FILTERS,
            records="embeddings",
        ),
        _usage("moderations", "organization.usage.moderations.result", _FOUR_GROUPS, _FOUR_FILTERS),
        _usage(
            "images",
            "organization.usage.images.result",
            (*_FOUR_GROUPS, "size", "source"),
            _FOUR_FILTERS,
        ),
        _usage(
            "audio_speeches",
            "organization.usage.audio_speeches.result",
            _FOUR_GROUPS,
            _FOUR_FILTERS,
        ),
        _usage(
            "audio_transcriptions",
            "organization.usage.audio_transcriptions.result",
            _FOUR_GROUPS,
            _FOUR_FILTERS,
        ),
        _usage(
            "vector_stores",
            "organization.usage.vector_stores.result",
            ("project_id",),
            ("project_ids",),
        ),
        _usage(
            "code_interpreter_sessions",
            "organization.usage.code_interpreter_sessions.result",
            ("project_id",),
            ("project_ids",),
        ),
        _usage(
            "file_search_calls",
            "organization.usage.file_searches.result",
            ("project_id", "user_id", "api_key_id", "vector_store_id"),
            ("project_ids", "user_ids", "api_key_ids"),
        ),
        _usage(
            "web_search_calls",
            "organization.usage.web_searches.result",
            (*_FOUR_GROUPS, "context_level"),
            _FOUR_FILTERS,
        ),
        UsageEndpoint(
            "/organization/costs",
            "organization.costs.result",
            ("project_id", "line_item", "api_key_id"),
            ("project_ids", "api_key_ids"),
            max_limit=180,
        ),
    )
}


@dataclass(frozen=True)
class UsageQuery:
    """A usage or costs request, checked: the buckets asked for and how to group them.

    ``filters`` maps a record field to the values kept; ``page_start`` is the bucket the
    ``page`` cursor points at (None: the first).
    """

    start_time: int
    end_time: int
    group_by: tuple[str, ...]
    filters: Mapping[str, frozenset[str]]
    batch: bool | None
    limit: int
    page_start: int | None


def _values(query: Query, name: str) -> list[str]:
    """A repeated parameter's values, spelt ``name`` or ``name[]``."""
    return [*query.get(name, ()), *query.get(f"{name}[]", ())]


_INTEGER = re.compile(r"-?[0-9]+")


def _integer(query: Query, name: str) -> int | None:
    values = query.get(name)
    if not values:
        return None
    if not _INTEGER.fullmatch(values[-1]):
        raise UsageQueryError(f"Invalid value for '{name}': expected an integer.")
    return int(values[-1])


_CURSOR_PREFIX = "page_"


def page_cursor(bucket_start: int) -> str:
    """The opaque ``next_page`` cursor of the page that starts at ``bucket_start``:
    ``page_`` and the URL-safe base64 of the bucket's start as 8 big-endian bytes."""
    return _CURSOR_PREFIX + base64.urlsafe_b64encode(bucket_start.to_bytes(8, "big")).decode()


def _cursor_bucket(cursor: str, buckets: range) -> int:
    """The bucket a cursor points at, which must be one of ``buckets``."""
    try:
        raw = base64.urlsafe_b64decode(cursor.removeprefix(_CURSOR_PREFIX).encode())
    except (binascii.Error, ValueError):
        raw = b""
    start = int.from_bytes(raw, "big") if len(raw) == 8 else None
    if not cursor.startswith(_CURSOR_PREFIX) or start is None or start not in buckets:
        raise UsageQueryError(f"Invalid page cursor: {cursor!r}.")
    return start


def parse_usage_query(endpoint: UsageEndpoint, query: Query, now: int) -> UsageQuery:
    """Check a request's query against the endpoint's parameters (UsageQueryError if bad)."""
    start_time = _integer(query, "start_time")
    if start_time is None:
        raise UsageQueryError("Missing required parameter: 'start_time'.")
    end_time = _integer(query, "end_time")
    if end_time is None:
        # Left out: the present. A start_time in a later day than it gets no buckets.
        end_time = now
    elif end_time <= start_time:
        raise UsageQueryError("'end_time' must be after 'start_time'.")
    # The spec also documents 1m and 1h for usage; the simulator serves daily buckets only.
    width = query.get("bucket_width", ["1d"])[-1]
    if width != "1d":
        raise UsageQueryError(f"Invalid value for 'bucket_width': {width!r}; only '1d' is served.")
    group_by = tuple(dict.fromkeys(_values(query, "group_by")))
    for field in group_by:
        if field not in endpoint.group_fields:
            raise UsageQueryError(
                f"Invalid value for 'group_by': {field!r}; "
                f"expected one of {', '.join(endpoint.group_fields)}."
            )
    filters = {
        _FILTER_FIELDS[name]: frozenset(_values(query, name))
        for name in endpoint.filters
        if _values(query, name)
    }
    batch: bool | None = None
    if endpoint.has_batch_filter and "batch" in query:
        raw_batch = query["batch"][-1]
        if raw_batch not in ("true", "false"):
            raise UsageQueryError(f"Invalid value for 'batch': {raw_batch!r}.")
        batch = raw_batch == "true"
    limit = _integer(query, "limit")
    limit = endpoint.default_limit if limit is None else limit
    if not 1 <= limit <= endpoint.max_limit:
        raise UsageQueryError(f"'limit' must be between 1 and {endpoint.max_limit}.")
    cursor = query.get("page", [None])[-1]
    buckets = bucket_starts(start_time, end_time)
    page_start = None if cursor is None else _cursor_bucket(cursor, buckets)
    return UsageQuery(start_time, end_time, group_by, filters, batch, limit, page_start)


# -- answering -----------------------------------------------------------------------------

GroupKey = tuple[Any, ...]
# Group fields whose value is the same for every simulated request: each is a non-batch
# request of the default service tier.
_CONSTANT_GROUP_VALUES: dict[str, Any] = {"batch": False, "service_tier": "default"}


def _grouper(grouped: list[str]) -> Callable[[Any], GroupKey]:
    """What an item's group is: its values of the grouped fields (constants left out)."""
    read = [name for name in grouped if name not in _CONSTANT_GROUP_VALUES]
    if not read:
        return lambda item: ()
    if len(read) == 1:
        get_one = attrgetter(read[0])
        return lambda item: (get_one(item),)
    get_many: Callable[[Any], GroupKey] = attrgetter(*read)
    return get_many


def _group_fields(endpoint: UsageEndpoint, request: UsageQuery, key: GroupKey) -> JsonObject:
    """A result's group fields: the group's values where grouped, null elsewhere."""
    grouped = [name for name in endpoint.group_fields if name in request.group_by]
    read = iter(key)
    values = {
        name: _CONSTANT_GROUP_VALUES[name] if name in _CONSTANT_GROUP_VALUES else next(read)
        for name in grouped
    }
    return {name: values.get(name) for name in endpoint.group_fields}


def _kept(item: UsageRecord | CostLine, request: UsageQuery) -> bool:
    """Whether the request's id filters keep an item."""
    return all(getattr(item, field) in kept for field, kept in request.filters.items())


def _sort_key(key: GroupKey) -> tuple[tuple[bool, str], ...]:
    return tuple((value is None, str(value)) for value in key)


def _usage_results(
    endpoint: UsageEndpoint, records: Iterable[UsageRecord], request: UsageQuery
) -> list[JsonObject]:
    """One bucket's results: the records summed per group, ordered by the group values."""
    if request.batch is True:  # no simulated request is a batch request
        return []
    group_of = _grouper([name for name in endpoint.group_fields if name in request.group_by])
    totals: dict[GroupKey, list[int]] = {}
    for record in records:
        if record.endpoint != endpoint.records:
            continue
        if request.filters and not _kept(record, request):
            continue
        sums = totals.setdefault(group_of(record), [0, 0, 0])
        sums[0] += record.num_model_requests
        sums[1] += record.input_tokens
        sums[2] += record.output_tokens
    results = []
    for key in sorted(totals, key=_sort_key):
        requests, input_tokens, output_tokens = totals[key]
        result: JsonObject = {"object": endpoint.result_object, "input_tokens": input_tokens}
        if endpoint.records == "completions":
            # UsageCompletionsResult: every simulated token is uncached text.
            result.update(
                output_tokens=output_tokens,
                input_cached_tokens=0,
                input_cache_write_tokens=0,
                input_uncached_tokens=input_tokens,
                input_text_tokens=input_tokens,
                output_text_tokens=output_tokens,
                input_cached_text_tokens=0,
                input_audio_tokens=0,
                input_cached_audio_tokens=0,
                output_audio_tokens=0,
                input_image_tokens=0,
                input_cached_image_tokens=0,
                output_image_tokens=0,
            )
        result["num_model_requests"] = requests
        result.update(_group_fields(endpoint, request, key))
        results.append(result)
    return results


def _cost_results(
    endpoint: UsageEndpoint, lines: Iterable[CostLine], request: UsageQuery
) -> list[JsonObject]:
    """One bucket's costs (CostsResult): line items summed per group. ``quantity`` and
    ``quantity_unit`` are set only when grouped by line item."""
    group_of = _grouper([name for name in endpoint.group_fields if name in request.group_by])
    amounts: dict[GroupKey, list[float]] = {}
    quantities: dict[GroupKey, int] = defaultdict(int)
    for line in lines:
        if request.filters and not _kept(line, request):
            continue
        key = group_of(line)
        amounts.setdefault(key, []).append(line.amount_usd)
        quantities[key] += line.quantity
    by_line_item = "line_item" in request.group_by
    results = []
    for key in sorted(amounts, key=_sort_key):
        result: JsonObject = {
            "object": endpoint.result_object,
            "amount": {"value": round(math.fsum(amounts[key]), COST_DECIMALS), "currency": "usd"},
        }
        result.update(_group_fields(endpoint, request, key))
        result["quantity"] = quantities[key] if by_line_item else None
        result["quantity_unit"] = "tokens" if by_line_item else None
        results.append(result)
    return results


def usage_page(
    org: SimOrg, endpoint: UsageEndpoint, request: UsageQuery, *, every_bucket: bool = False
) -> JsonObject:
    """The ``UsageResponse`` page a request gets: ``limit`` daily buckets from its cursor
    (every bucket left, if ``every_bucket``), empty buckets included."""
    buckets = bucket_starts(request.start_time, request.end_time)
    first = 0 if request.page_start is None else buckets.index(request.page_start)
    count = len(buckets) - first if every_bucket else request.limit
    has_more = first + count < len(buckets)
    history = _history(org) if endpoint.records or endpoint.is_costs else None

    def results(day: int) -> list[JsonObject]:
        if history is None:
            return []
        if endpoint.is_costs:
            return _cost_results(endpoint, history.cost_lines(day), request)
        return _usage_results(endpoint, history.by_day.get(day, ()), request)

    data = [
        {
            "object": "bucket",
            "start_time": start,
            "end_time": start + SECONDS_PER_DAY,
            "results": results(start),
        }
        for start in buckets[first : first + count]
    ]
    return {
        "object": "page",
        "data": data,
        "has_more": has_more,
        "next_page": page_cursor(buckets[first + count]) if has_more else None,
    }
