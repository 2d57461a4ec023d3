"""The derived tables a snapshot stores: its access model and an audit's findings."""

from __future__ import annotations

import sqlite3

import pandas as pd

from orgaudit import store
from orgaudit.checks.findings import Finding
from orgaudit.model.access import keys_with_scopes, with_scope_kinds
from orgaudit.model.analysis import Analysis


def store_derived(
    conn: sqlite3.Connection, analysis: Analysis, findings: tuple[Finding, ...] = ()
) -> None:
    """Write the access model (and an audit's findings) into the derived tables.

    They replace the snapshot's earlier derived rows: the findings table holds the latest
    audit's findings (a pull alone leaves it empty).
    """
    rows = derived_rows(analysis)
    columns = list(store.DERIVED_TABLES["findings"])
    rows["findings"] = [tuple(_plain(getattr(f, c)) for c in columns) for f in findings]
    store.write_derived(conn, analysis.snapshot.id, analysis.catalog.version, rows)


def derived_rows(analysis: Analysis) -> dict[str, list[tuple[object, ...]]]:
    """The derived tables' rows, in their column order (see docs/schema.md)."""
    model = analysis.model
    bindings = model.bindings
    permission_text = {
        key: store.json_list(sorted(pset.permissions))
        for key, pset in model.permission_sets.items()
    }
    sources = {key: pset.source for key, pset in model.permission_sets.items()}
    binding_rows = bindings.assign(
        permissions=bindings["permission_key"].map(permission_text),
        permission_source=bindings["permission_key"].map(sources),
    )[list(store.DERIVED_TABLES["access_bindings"])]
    level_rows = model.levels[list(store.DERIVED_TABLES["access_levels"])]
    snapshot = analysis.snapshot
    keys = keys_with_scopes(snapshot)
    kinds = with_scope_kinds(keys, analysis.catalog)
    recorded_at = (kinds["recorded_at"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    key_rows = pd.DataFrame(
        {
            "key_id": kinds["id"],
            "project_id": kinds["project_id"],
            "scope_kind": kinds["scope_kind"],
            "scopes": kinds["scopes"],
            "recorded_at": recorded_at.astype("Int64"),
        }
    )
    return {
        "access_bindings": _records(binding_rows),
        "access_levels": _records(level_rows),
        "key_scopes": _records(key_rows),
    }


def _records(frame: pd.DataFrame) -> list[tuple[object, ...]]:
    cleaned = frame.astype(object).where(frame.notna(), None)
    return [tuple(_plain(v) for v in row) for row in cleaned.itertuples(index=False)]


def _plain(value: object) -> object:
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return int(bool(value))
    return value
