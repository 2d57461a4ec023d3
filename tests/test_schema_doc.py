"""docs/schema.md is a public contract: it must name every table and column there is."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from orgaudit import store
from orgaudit.errors import UsageError

SCHEMA_DOC = Path(__file__).resolve().parents[1] / "docs" / "schema.md"


def _documented() -> dict[str, list[str]]:
    tables: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in SCHEMA_DOC.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^### (\w+)$", line)
        if heading:
            current = tables.setdefault(heading.group(1), [])
            continue
        row = re.match(r"^\| (\w+) \| (TEXT|INTEGER|REAL) \|", line)
        if row and current is not None:
            current.append(row.group(1))
    return tables


def _actual(tmp_path: Path) -> dict[str, list[str]]:
    with store.connect(tmp_path / "schema.db") as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {name: [c[1] for c in conn.execute(f"PRAGMA table_info({name})")] for name in names}


def test_schema_doc_names_every_table_and_column_in_order(tmp_path: Path) -> None:
    assert _documented() == _actual(tmp_path)


def test_schema_version_is_recorded_and_newer_databases_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "schema.db"
    with store.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == store.SCHEMA_VERSION
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {store.SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(UsageError, match="newer than this orgaudit"), store.connect(path):
        pass
