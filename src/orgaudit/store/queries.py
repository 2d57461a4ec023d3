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

from orgaudit import store
from orgaudit.errors import UsageError

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
    db_path: Path, query: SavedQuery, snapshot_id: int | None, params: dict[str, str]
) -> pd.DataFrame:
    """Run a query on a read-only connection to the snapshot database."""
    needed = query.parameters
    missing = [name for name in needed if name != "snapshot_id" and name not in params]
    if missing:
        raise UsageError(
            f"query {query.name} needs " + ", ".join(f"--param {name}=..." for name in missing)
        )
    unknown = [name for name in params if name not in needed]
    if unknown:
        raise UsageError(f"query {query.name} takes no parameter {', '.join(unknown)}")
    with store.connect(db_path, create=False) as conn:  # migrates, then closes
        resolved = store.resolve_snapshot(conn, snapshot_id)
    bound = {name: params.get(name) for name in needed}
    if "snapshot_id" in needed:
        bound["snapshot_id"] = str(resolved)
    reader = _read_only(db_path)
    try:
        cursor = reader.execute(query.sql, bound)
        if cursor.description is None:  # ATTACH, a PRAGMA setting: nothing to show
            raise UsageError(f"query {query.name} returns no table; a saved query is one SELECT")
        columns = [column[0] for column in cursor.description]
        return pd.DataFrame.from_records(cursor.fetchall(), columns=columns, coerce_float=True)
    except sqlite3.Error as exc:
        raise UsageError(_describe_sql_error(query, exc)) from None
    finally:
        reader.close()


# PRAGMAs with no form that changes anything: a query may read the schema with them.
_READ_ONLY_PRAGMAS = frozenset(
    {
        "collation_list", "compile_options", "database_list", "foreign_key_list",
        "function_list", "index_info", "index_list", "index_xinfo", "module_list",
        "pragma_list", "table_info", "table_list", "table_xinfo",
    }
)  # fmt: skip
_READING = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE})


def _only_reads(action: int, first: str | None, second: str | None, *_: str | None) -> int:
    """SQLite's authorizer for saved queries: reading is allowed, and nothing else.

    Opening the database read-only stops writes to it, but not ATTACH (which creates a
    file anywhere the user can write), VACUUM INTO, or PRAGMAs that change the
    connection; each of those is refused while the statement is prepared, before it runs
    (https://www.sqlite.org/c3ref/set_authorizer.html).
    """
    if action in _READING:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION and second != "load_extension":
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and first in _READ_ONLY_PRAGMAS:
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def _read_only(db_path: Path) -> sqlite3.Connection:
    """A connection that cannot write anything anywhere: opened read-only, ``query_only``
    on, no database may be attached, and an authorizer that allows only reading."""
    uri = f"{db_path.resolve().as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
        conn.execute("PRAGMA query_only = ON")
    except sqlite3.Error as exc:
        raise UsageError(f"cannot open {db_path} read-only: {exc}") from None
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.set_authorizer(_only_reads)
    return conn


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
