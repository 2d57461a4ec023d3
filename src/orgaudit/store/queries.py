"""Saved queries: plain SQL files over the snapshot schema, run read-only.

Each file in ``queries/`` opens with a comment header::

    -- title: Users who cannot create keys, and why
    -- answers: Which org users hold a role in a project that ...
    -- params: days (e.g. --param days=90)

and uses ``:snapshot_id`` (bound by orgaudit to the latest snapshot or ``--snapshot``) and
any other ``:name`` parameters, given with ``--param name=value``.
"""

from __future__ import annotations

import difflib
import os
import re
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from orgaudit.errors import UsageError
from orgaudit.store.database import SnapshotDatabase

QUERIES_ENV = "ORGAUDIT_QUERIES"
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_HEADER = re.compile(r"^--\s*(title|answers|params):\s*(.*)$")


@dataclass(frozen=True)
class SavedQuery:
    """One saved query: its name (file stem), header and SQL."""

    name: str
    path: Path
    title: str
    answers: str
    sql: str

    @property
    def parameters(self) -> tuple[str, ...]:
        """The ``:name`` parameters the SQL uses, in order of first use."""
        code = _strip_comments_and_strings(self.sql)
        return tuple(dict.fromkeys(_PARAM.findall(code)))


def default_pack() -> Path:
    """Where the query pack is: $ORGAUDIT_QUERIES, the checkout's queries/, or the install's."""
    if os.environ.get(QUERIES_ENV):
        return Path(os.environ[QUERIES_ENV])
    checkout = Path(__file__).resolve().parents[3] / "queries"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "orgaudit" / "queries"


def load_query(path: Path) -> SavedQuery:
    """Read one .sql file and its header."""
    try:
        sql = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the query {path}: {exc}") from None
    header: dict[str, str] = {}
    for line in sql.splitlines():
        match = _HEADER.match(line.strip())
        if match:
            header.setdefault(match.group(1), match.group(2).strip())
        elif line.strip() and not line.strip().startswith("--"):
            break
    return SavedQuery(
        name=path.stem,
        path=path,
        title=header.get("title", path.stem),
        answers=header.get("answers", ""),
        sql=sql,
    )


def query_pack(folder: Path) -> tuple[SavedQuery, ...]:
    """Every saved query of a pack, by name."""
    if not folder.is_dir():
        raise UsageError(f"no query pack at {folder}; set {QUERIES_ENV} to the queries folder")
    return tuple(load_query(path) for path in sorted(folder.glob("*.sql")))


def find_query(name_or_file: str, folder: Path) -> SavedQuery:
    """A query of the pack by name, or any .sql file; a clear error naming close names."""
    candidate = Path(name_or_file)
    if candidate.suffix == ".sql" and candidate.is_file():
        return load_query(candidate)
    pack = {query.name: query for query in query_pack(folder)}
    if name_or_file in pack:
        return pack[name_or_file]
    close = difflib.get_close_matches(name_or_file, list(pack), n=3, cutoff=0.4)
    hint = f"; closest: {', '.join(close)}" if close else "; `orgaudit query --list` shows them"
    raise UsageError(f"no saved query {name_or_file!r}{hint}")


def parse_params(values: list[str] | None) -> dict[str, str]:
    """``--param name=value`` options as a dict."""
    params: dict[str, str] = {}
    for value in values or []:
        name, sep, text = value.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--param takes name=value, got {value!r}")
        params[name.strip()] = text
    return params


def run_query(
    db: SnapshotDatabase, query: SavedQuery, snapshot_id: int | None, params: dict[str, str]
) -> pd.DataFrame:
    """Run a query on the database's read-only connection, on one snapshot (the latest by
    default)."""
    needed = query.parameters
    missing = [name for name in needed if name != "snapshot_id" and name not in params]
    if missing:
        raise UsageError(
            f"query {query.name} needs " + ", ".join(f"--param {name}=..." for name in missing)
        )
    unknown = [name for name in params if name not in needed]
    if unknown:
        raise UsageError(f"query {query.name} takes no parameter {', '.join(unknown)}")
    resolved = db.resolve(snapshot_id)
    bound = {name: params.get(name) for name in needed}
    if "snapshot_id" in needed:
        bound["snapshot_id"] = str(resolved)
    try:
        cursor = db.reader().execute(query.sql, bound)
        if cursor.description is None:  # ATTACH, a PRAGMA setting: nothing to show
            raise UsageError(f"query {query.name} returns no table; a saved query is one SELECT")
        columns = [column[0] for column in cursor.description]
        return pd.DataFrame.from_records(cursor.fetchall(), columns=columns, coerce_float=True)
    except sqlite3.Error as exc:
        raise UsageError(_describe_sql_error(query, exc)) from None


def _describe_sql_error(query: SavedQuery, exc: Exception) -> str:
    """The database's message, one line, with the line of the query it points at."""
    message = " ".join(str(exc).split())
    message = re.sub(r"^Execution failed on sql .*?: ", "", message)
    refusals = ("readonly", "read-only", "query_only", "not authorized", "authorization denied")
    if any(refusal in message for refusal in refusals):
        return (
            f"query {query.name} tried to write or change state (a write, ATTACH, VACUUM or a "
            f"PRAGMA that sets something); saved queries are read-only ({message})"
        )
    if "one statement at a time" in message:
        return f"query {query.name} holds more than one statement; a saved query is one SELECT"
    token = re.search(r'near "([^"]+)"|no such (?:column|table|function): (\S+)', message)
    where = ""
    if token:
        needle = token.group(1) or token.group(2)
        for number, line in enumerate(query.sql.splitlines(), start=1):
            if needle in line and not line.lstrip().startswith("--"):
                where = f" (line {number}: {line.strip()})"
                break
    return f"query {query.name} failed: {message}{where}"


def _strip_comments_and_strings(sql: str) -> str:
    without_comments = re.sub(r"--[^\n]*", " ", sql)
    return re.sub(r"'(?:[^']|'')*'", "''", without_comments)
