"""Saved queries: plain SQL files over the snapshot schema, run read-only.

Each file in ``queries/`` opens with a comment header::

    -- title: Keys unused for more than :days days
    -- answers: Which keys were never used, or not used for more than :days days ...?
    -- params: days:int (e.g. --param days=90)

and uses ``:snapshot_id`` (bound by orgaudit to the latest snapshot or ``--snapshot``) and
any other ``:name`` parameters, given with ``--param name=value``. The ``params`` line
declares each parameter's type, ``name:int`` (a whole number) or ``name:text`` (the
default): a value is checked against it before the query runs, because SQLite would
quietly turn ``abc`` into 0 and answer a different question. A ``:name`` in the title is
shown with the value given.
"""

from __future__ import annotations

import difflib
import os
import re
import sqlite3
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from orgaudit.errors import UsageError
from orgaudit.store.database import SnapshotDatabase

QUERIES_ENV = "ORGAUDIT_QUERIES"
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_HEADER = re.compile(r"^--\s*(title|answers|params):\s*(.*)$")
# The types a ``params`` line may declare, and how a value of each is described.
PARAM_TYPES = {"int": "a whole number", "text": "text"}
_WHOLE_NUMBER = re.compile(r"^\s*\d+\s*$")


@dataclass(frozen=True)
class SavedQuery:
    """One saved query: its name (file stem), header and SQL."""

    name: str
    path: Path
    title: str
    answers: str
    sql: str
    types: Mapping[str, str] = field(default_factory=dict)  # declared by ``-- params:``

    @property
    def parameters(self) -> tuple[str, ...]:
        """The ``:name`` parameters the SQL uses, in order of first use."""
        code = _strip_comments_and_strings(self.sql)
        return tuple(dict.fromkeys(_PARAM.findall(code)))

    def type_of(self, name: str) -> str:
        """A parameter's declared type (``int`` or ``text``); undeclared ones are text."""
        return self.types.get(name, "text")

    def titled(self, params: Mapping[str, str]) -> str:
        """The title with each ``:name`` given a value written as that value."""
        return _filled(self.title, params)


def _filled(text: str, params: Mapping[str, str]) -> str:
    return _PARAM.sub(lambda m: params.get(m.group(1), m.group(0)).strip(), text)


def _declared_types(query: str, line: str) -> dict[str, str]:
    """``days:int, project:text (e.g. --param days=90)`` as {name: type}; the examples in
    brackets are for the reader."""
    types: dict[str, str] = {}
    for part in re.sub(r"\([^)]*\)", " ", line).split(","):
        name, _, kind = part.strip().partition(":")
        if not name.strip():
            continue
        kind = kind.strip().lower() or "text"
        if kind not in PARAM_TYPES or not re.fullmatch(r"[A-Za-z_]\w*", name.strip()):
            raise UsageError(
                f"query {query}: cannot read its params line {line!r}; write "
                "name:int or name:text, comma-separated (e.g. -- params: days:int)"
            )
        types[name.strip()] = kind
    return types


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
        types=_declared_types(path.stem, header.get("params", "")),
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


def checked_param(query: SavedQuery, name: str, value: str) -> object:
    """A ``--param`` value as its declared type; one line naming what was expected if it
    is not one (a whole number: digits only, so ``-5`` and ``9.5`` are refused too)."""
    if query.type_of(name) == "int":
        if not _WHOLE_NUMBER.match(value):
            raise UsageError(f"--param {name} must be a whole number, got {value!r}")
        return int(value)
    return value


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
    bound: dict[str, object] = {name: checked_param(query, name, params[name]) for name in params}
    resolved = db.resolve(snapshot_id)
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
