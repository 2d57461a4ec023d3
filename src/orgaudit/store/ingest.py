"""Items as SQLite takes them: each column typed, odd values kept as anomalies.

An integer column holding something else stores NULL, a text column holding a number or
an object stores its JSON, text that is not valid Unicode has the bad characters
replaced, and an item listed twice is kept once; each is recorded, never dropped
silently (the audit reports them as unrecognized values).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from typing import Any

from orgaudit.collect.records import Anomaly, Scope
from orgaudit.store.fields import INT, REAL, Column
from orgaudit.store.schema import IDENTITY, TABLES

_INT64 = range(-(2**63), 2**63)
# Unix seconds a point in time (`*_at`) can hold: 1970 up to the end of year 9999, the
# range pandas and spreadsheets read. Beyond it a value is no time anyone meant.
_TIMES = range(0, 253_402_300_800)
_SHOWN = 200  # characters of an odd value kept in the anomalies table
_TWICE = "lists the same item twice; kept once"
_TWO_PROJECTS = "lists the same item in two projects; kept in the first"
# The pull leaves these out of admin_api_keys on purpose (pull.without_project_keys): a
# known quirk of the API, recorded but not reported as a value orgaudit does not know.


def table_rows(
    table: str, rows: Iterable[tuple[Scope, dict[str, Any]]], anomalies: list[Anomaly]
) -> Iterator[tuple[object, ...]]:
    """The column values and raw JSON of each item, as SQLite takes them.

    ``rows`` come in the order of their scopes, each list's items in the order they came
    (as :attr:`Collected.items` gives them), so the item kept when one turns up twice is
    the same every time. An integer column holding something else stores NULL, a text
    column holding a number or an object stores its JSON, text that is not valid Unicode
    has the bad characters replaced, and a second item with the same identity is left
    out; each is appended to
    ``anomalies``. The raw JSON keeps whatever the API sent.
    """
    columns = TABLES[table]
    identity = [i for i, c in enumerate(columns) if c.name in IDENTITY[table]]
    kept_in: dict[tuple[object, ...], str | None] = {}
    for scope, item in rows:
        raw = [c.get(scope, item) for c in columns]
        subject = _text(raw[identity[-1]])
        values: list[object] = []
        for column, value in zip(columns, raw, strict=True):
            stored, problem = _typed(column, value)
            if problem is not None:  # shown as stored where it was (JSON), so it groups
                shown = _shown(value if stored is None else stored)
                anomalies.append((table, column.name, subject, shown, problem))
            values.append(stored)
        key = tuple(values[i] for i in identity)
        if key in kept_in:
            first = kept_in[key]
            if first == scope.project_id:
                anomalies.append((table, None, subject, None, _TWICE))
            else:
                projects = f"{first} and {scope.project_id}"
                anomalies.append((table, None, subject, projects, _TWO_PROJECTS))
            continue
        kept_in[key] = scope.project_id
        raw_json = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
        yield (*values, _valid_text(raw_json)[0])


def _typed(column: Column, value: object) -> tuple[object, str | None]:
    """A value as its column's type, and what was wrong with it (None when nothing)."""
    if value is None:
        return None, None
    if column.sql_type == INT:
        if isinstance(value, bool) and column.name.endswith("_at"):
            return None, "is not an integer; stored as missing"  # true is no point in time
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and value in _INT64:
            if column.name.endswith("_at") and value not in _TIMES:
                return None, "is not a time between 1970 and 9999; stored as missing"
            return value, None
        return None, "is not an integer; stored as missing"
    if column.sql_type == REAL:
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value), None
        return None, "is not a number; stored as missing"
    if not isinstance(value, str):
        as_json = json.dumps(value, ensure_ascii=False)
        return _valid_text(as_json)[0], "is not text; stored as its JSON"
    return _valid_text(value)


def _valid_text(text: str) -> tuple[str, str | None]:
    """Text SQLite can store: lone surrogates (which JSON allows) become U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        fixed = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return fixed, "is not valid Unicode; the bad characters replaced"
    return text, None


def _text(value: object) -> str | None:
    return None if value is None else _valid_text(str(value))[0]


def _shown(value: object) -> str | None:
    text = _text(value)
    return None if text is None else text[:_SHOWN]
