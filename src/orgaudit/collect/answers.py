"""The Admin API's answers as orgaudit reads them: the shapes of its lists, and bodies
decoded and parsed within bounds that no server can stretch (no httpx here: the client
hands over bytes)."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import quote

from orgaudit.errors import MalformedResponseError

JsonObject = dict[str, Any]

# The Admin API's objects nest a handful of levels (a key's owner's user, an event's
# payload); an answer nested deeper than this is refused, not walked.
MAX_JSON_DEPTH = 64
# A page holds at most 100 items of a few dozen values each; 250,000 values (counted as
# the body's commas, braces and brackets, an upper bound) parse to at most about 60 MB of
# objects besides the body's own text, so no page under the size bound parses to more.
MAX_JSON_VALUES = 250_000
# Decompressed output is produced at most this much at a time, so a small compressed body
# that expands to gigabytes is refused at the size bound, never held whole.
_DECODE_STEP = 1 << 20


class PageStyle(Enum):
    """The two cursor styles of the Admin API (the OpenAPI document; docs/evidence.md)."""

    LAST_ID = "last_id"  # users, projects, keys, audit logs, ...: `last_id` + `has_more`
    NEXT = "next"  # RBAC lists (roles, groups, role assignments): `next` + `has_more`
    # Usage and Costs: `object: "page"`, `data` holds day buckets, each with `results`;
    # the cursor is `next_page`, sent back as `page` (UsageResponse, UsageTimeBucket).
    BUCKETS = "buckets"

    @property
    def cursor_param(self) -> str:
        """The query parameter that carries the cursor to the next page."""
        return "page" if self is PageStyle.BUCKETS else "after"


@dataclass(frozen=True)
class ListEndpoint:
    """One list operation: its path template, cursor style and largest page size."""

    path: str
    style: PageStyle
    max_limit: int
    params: tuple[tuple[str, str], ...] = ()

    def format(self, **path_args: str) -> str:
        """The concrete path, with ``{project_id}`` and the like filled in, each escaped:
        an id from the API holding ``/`` or ``?`` stays one path segment."""
        return self.path.format(
            **{name: quote(value, safe="") for name, value in path_args.items()}
        )


class BodyTooLarge(Exception):
    pass


class BadEncoding(Exception):
    pass


class BoundedBody:
    """A response body decoded (identity or one gzip) and counted as it arrives."""

    def __init__(self, content_encoding: str, limit: int) -> None:
        coding = content_encoding.strip().lower()
        if coding not in ("", "identity", "gzip"):
            raise BadEncoding(f"the response's Content-Encoding {coding[:40]!r} is not accepted")
        self._gzip = zlib.decompressobj(16 + zlib.MAX_WBITS) if coding == "gzip" else None
        self._limit = limit
        self._size = 0
        self._chunks: list[bytes] = []

    def _keep(self, piece: bytes) -> None:
        self._size += len(piece)
        if self._size > self._limit:
            raise BodyTooLarge
        self._chunks.append(piece)

    def feed(self, raw: bytes) -> None:
        """Take the next raw bytes off the wire."""
        if self._gzip is None:
            self._keep(raw)
            return
        data = raw
        while data:
            try:
                self._keep(self._gzip.decompress(data, _DECODE_STEP))
            except zlib.error:
                raise BadEncoding("the response's gzip body is corrupt") from None
            if self._gzip.eof and self._gzip.unused_data:
                raise BadEncoding("the response holds data after its gzip body")
            data = self._gzip.unconsumed_tail

    def finish(self) -> list[bytes]:
        """The decoded body's chunks; a gzip body must have ended."""
        if self._gzip is not None and not self._gzip.eof:
            raise BadEncoding("the response's gzip body is cut short")
        return self._chunks


def parse_json(body: bytes, path: str) -> JsonObject | None:
    """A page's JSON object; None if the body is not JSON (worth another try).

    JSON nested beyond :data:`MAX_JSON_DEPTH`, holding more than :data:`MAX_JSON_VALUES`
    values, or with a number too long to convert, is a hostile or broken answer, not a bug
    of ours: refused with one line, not retried.
    """
    values = body.count(b",") + body.count(b"{") + body.count(b"[")
    if values > MAX_JSON_VALUES:  # counted before parsing: the objects are never made
        raise MalformedResponseError(
            f"GET {path}: the response holds more than {MAX_JSON_VALUES} JSON values; refused"
        )
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    except (RecursionError, ValueError):  # deep nesting; Python's limit on digits
        raise MalformedResponseError(
            f"GET {path}: the response is nested too deeply or holds a number too long to "
            "read; refused"
        ) from None
    if not isinstance(parsed, dict):
        raise MalformedResponseError(f"GET {path}: the response is JSON but not an object")
    if _depth_exceeds(parsed, MAX_JSON_DEPTH):
        raise MalformedResponseError(
            f"GET {path}: the response nests deeper than {MAX_JSON_DEPTH} levels; refused"
        )
    return parsed


def _depth_exceeds(value: object, limit: int) -> bool:
    """Whether JSON nests deeper than ``limit`` (walked without recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def error_message(body: bytes, scrub: Callable[[str], str]) -> str:
    """The message of an API error body, scrubbed, on one line, cut to 300 characters.

    Two shapes are read: the spec's ``{"error": {"message": ...}}`` and a bare string,
    ``{"error": "... Missing scopes: api.model.read ..."}``, which a real answer has been
    seen to carry (community.openai.com thread 1345041; docs/evidence.md#forum-bare-error).
    Scrubbing comes first: cutting first could split the key so it is
    no longer found.
    """
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return ""
    message = error.get("message") if isinstance(error, dict) else error
    if not isinstance(message, str):
        return ""
    one_line = " ".join(scrub(message).split())
    return one_line[:300]


def read_page(
    body: JsonObject, style: PageStyle, path: str, max_items: int
) -> tuple[list[JsonObject], bool, str | None]:
    """Check a list page's shape and return its items, ``has_more`` and next cursor.

    A page holds at most ``max_items`` items (buckets, for a usage page), the ``limit``
    asked for. A usage page's items are its buckets' results, each with its bucket's
    ``start_time`` and ``end_time`` written in, so every row says which day it counts.
    """
    if style is PageStyle.BUCKETS:
        return _read_bucket_page(body, path, max_items)
    data = body.get("data")
    has_more = body.get("has_more")
    if body.get("object") != "list" or not isinstance(data, list) or not isinstance(has_more, bool):
        raise MalformedResponseError(
            f"GET {path}: the page is not a list object with 'data' and 'has_more'"
        )
    _check_count(path, data, max_items)
    if not all(isinstance(item, dict) for item in data):
        raise MalformedResponseError(f"GET {path}: the page holds items that are not objects")
    if style is PageStyle.NEXT:
        cursor = body.get("next")
    else:
        # Style A names the cursor `last_id`; the SDK's admin-keys page reads data[-1].id
        # instead, so fall back to it when last_id is absent (openai/openai-python).
        cursor = body.get("last_id")
        if cursor is None and data:
            cursor = data[-1].get("id")
    return data, has_more, _cursor(path, cursor)


def _read_bucket_page(
    body: JsonObject, path: str, max_buckets: int
) -> tuple[list[JsonObject], bool, str | None]:
    """A Usage or Costs page (openai/openai-openapi openapi.json, UsageResponse):
    ``{"object": "page", "data": [bucket], "has_more", "next_page"}``, each bucket
    ``{"object": "bucket", "start_time", "end_time", "results": [...]}``."""
    buckets = body.get("data")
    has_more = body.get("has_more")
    if (
        body.get("object") != "page"
        or not isinstance(buckets, list)
        or not isinstance(has_more, bool)
    ):
        raise MalformedResponseError(
            f"GET {path}: the page is not a usage page with 'data' and 'has_more'"
        )
    _check_count(path, buckets, max_buckets)
    rows: list[JsonObject] = []
    for bucket in buckets:
        if not isinstance(bucket, dict):
            raise MalformedResponseError(f"GET {path}: the page holds a bucket not an object")
        results, start, end = (
            bucket.get("results"),
            bucket.get("start_time"),
            bucket.get("end_time"),
        )
        if not isinstance(results, list) or not all(
            isinstance(t, int) and not isinstance(t, bool) for t in (start, end)
        ):
            raise MalformedResponseError(
                f"GET {path}: a bucket has no 'results' list or no integer start and end"
            )
        for result in results:
            if not isinstance(result, dict):
                raise MalformedResponseError(f"GET {path}: a bucket holds a result not an object")
            rows.append({**result, "start_time": start, "end_time": end})
    return rows, has_more, _cursor(path, body.get("next_page"))


def _check_count(path: str, items: list[object], max_items: int) -> None:
    if len(items) > max_items:
        raise MalformedResponseError(
            f"GET {path}: a page holds {len(items)} items, more than the {max_items} asked "
            "for; refused"
        )


def _cursor(path: str, cursor: object) -> str | None:
    if cursor is not None and not isinstance(cursor, str):
        raise MalformedResponseError(f"GET {path}: the page's cursor is not a string")
    return cursor
