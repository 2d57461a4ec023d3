"""An HR or identity-provider roster, and the org users it does not vouch for.

The roster is a CSV file with a header row naming (at least) an e-mail column and a
status column (``[roster]`` in ``orgaudit.toml`` says which, and which status values mean
active and which terminated). It comes from outside the tool, so it is read as untrusted
input: every problem with it is one line naming the file and the row (as a spreadsheet
numbers it, the header being row 1), and its size is bounded.

Checks ``user-terminated`` and ``user-not-in-roster`` compare the org's users with it by
e-mail (casefolded, spaces around it ignored); without a roster they are off.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from pathlib import Path

import pandas as pd

from orgaudit.checks.findings import AuditContext, Roster, RosterColumns
from orgaudit.errors import ConfigError, UsageError
from orgaudit.files import read_regular_file

__all__ = [
    "MAX_ROSTER_BYTES",
    "MAX_ROSTER_ROWS",
    "Roster",
    "RosterColumns",
    "load_roster",
    "roster_standing",
    "user_not_in_roster",
    "user_terminated",
]

MAX_ROSTER_BYTES = 50 * 1024 * 1024
MAX_ROSTER_ROWS = 1_000_000  # rows after the header, blank ones included

TERMINATED = "terminated"
ABSENT = "absent"
STANDING_COLUMNS = ["principal_id", "email", "standing", "reason"]


def load_roster(path: Path, columns: RosterColumns) -> Roster:
    """The roster in the CSV file ``path`` (UTF-8, a byte-order mark allowed), read with
    ``columns``; a one-line :class:`ConfigError` naming the file and row for anything
    wrong with it."""
    try:
        data = read_regular_file(path, MAX_ROSTER_BYTES, "the roster")
    except UsageError as exc:  # a configuration input: the same exit, its own kind
        raise ConfigError(str(exc)) from None
    if len(data) > MAX_ROSTER_BYTES:
        raise ConfigError(
            f"roster {path}: larger than {MAX_ROSTER_BYTES:,} bytes (50 MB), the most "
            "orgaudit reads; leave out the columns it does not need, or split the roster"
        )
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"roster {path} row {_row_at(data[bom:], exc.start)}: not UTF-8 text (byte "
            f"{bom + exc.start + 1}); save it as CSV UTF-8"
        ) from None
    people = _read_people(path, text, columns)
    return Roster(
        name=path.name,
        sha256=hashlib.sha256(data).hexdigest(),
        columns=columns,
        people=people,
    )


def _row_at(data: bytes, offset: int) -> int:
    """The row (as a spreadsheet numbers it) holding byte ``offset`` of ``data``, which
    is valid UTF-8 up to there."""
    before = data[:offset].decode("utf-8")
    try:
        rows = sum(1 for _ in csv.reader(io.StringIO(before, newline="")))
    except csv.Error:  # cannot tell the rows apart: count the lines
        return before.count("\n") + 1
    return rows + 1 if not before or before.endswith(("\n", "\r")) else rows


def _read_people(path: Path, text: str, columns: RosterColumns) -> dict[str, bool]:
    """E-mail (casefolded, stripped) -> active, from the CSV text; rows are numbered as a
    spreadsheet numbers them (a quoted line break does not start a row)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    people: dict[str, bool] = {}
    first_row: dict[str, int] = {}
    active, terminated = columns.active_values, columns.terminated_values
    listed = (
        f"active: {', '.join(map(repr, columns.active))}; "
        f"terminated: {', '.join(map(repr, columns.terminated))}"
    )
    row = 0
    email_at = status_at = -1
    try:
        for row, cells in enumerate(reader, start=1):
            if row == 1:
                email_at, status_at = _header(path, cells, columns)
                continue
            if row > MAX_ROSTER_ROWS + 1:
                raise ConfigError(
                    f"roster {path} row {row}: more than {MAX_ROSTER_ROWS:,} rows after the "
                    "header, the most orgaudit reads; split the roster"
                )
            if not any(cell.strip() for cell in cells):
                continue  # a blank row
            written = _cell(cells, email_at).strip()
            email = written.casefold()
            if not email:
                raise ConfigError(
                    f"roster {path} row {row}: empty e-mail (column {columns.email!r})"
                )
            status = _cell(cells, status_at).strip()
            if status.casefold() in active:
                is_active = True
            elif status.casefold() in terminated:
                is_active = False
            else:
                raise ConfigError(
                    f"roster {path} row {row}: status {_shown(status)} of {_shown(written)} is "
                    f"neither an active nor a terminated value ({listed}; [roster] "
                    "active_values and terminated_values in orgaudit.toml list them)"
                )
            if email in people and people[email] != is_active:
                raise ConfigError(
                    f"roster {path} row {row}: {_shown(written)} is listed as "
                    f"{_standing_word(is_active)} here and as {_standing_word(people[email])} "
                    f"in row {first_row[email]}"
                )
            people.setdefault(email, is_active)
            first_row.setdefault(email, row)
    except csv.Error as exc:
        raise ConfigError(f"roster {path} row {row + 1}: not valid CSV: {exc}") from None
    if row == 0:
        raise ConfigError(
            f"roster {path}: empty; expected a header row naming the columns "
            f"{columns.email!r} and {columns.status!r}"
        )
    return people


def _header(path: Path, cells: list[str], columns: RosterColumns) -> tuple[int, int]:
    """The positions of the e-mail and status columns in the header row (names compared
    casefolded, spaces around them ignored)."""
    names = [cell.strip().casefold() for cell in cells]
    positions = []
    for wanted, label in ((columns.email, "e-mail"), (columns.status, "status")):
        found = [i for i, name in enumerate(names) if name == wanted.strip().casefold()]
        if not found:
            has = ", ".join(_shown(cell) for cell in cells[:20]) or "none"
            more = f" and {len(cells) - 20} more" if len(cells) > 20 else ""
            raise ConfigError(
                f"roster {path} row 1: no {label} column {wanted!r} (its columns: {has}{more}); "
                "name the e-mail and status columns with [roster] email_column and "
                "status_column in orgaudit.toml (--config)"
            )
        if len(found) > 1:
            raise ConfigError(
                f"roster {path} row 1: two columns are named {wanted!r} "
                f"(columns {found[0] + 1} and {found[1] + 1}); rename one"
            )
        positions.append(found[0])
    return positions[0], positions[1]


def _cell(cells: list[str], at: int) -> str:
    return cells[at] if at < len(cells) else ""


def _shown(value: str) -> str:
    """A value from the file, quoted and cut short, fit for a one-line message."""
    return repr(value if len(value) <= 80 else value[:77] + "...")


def _standing_word(active: bool) -> str:
    return "active" if active else "terminated"


def roster_standing(users: pd.DataFrame, roster: Roster) -> pd.DataFrame:
    """One row per org user the roster does not list as active: ``principal_id``,
    ``email``, ``standing`` ("terminated" or "absent") and ``reason`` in words.

    ``users`` is a snapshot's ``users`` table (``id``, ``email``, ``is_service_account``
    ...). E-mails match casefolded, spaces around them ignored; a user with no e-mail is
    absent (nothing to match), and service-account users are left out.
    """
    if users.empty:
        return pd.DataFrame(columns=STANDING_COLUMNS)
    service = (
        users["is_service_account"]
        if "is_service_account" in users
        else pd.Series(False, index=users.index)
    )
    people = users[~service.astype("boolean").fillna(False).astype(bool)]
    email = people["email"].astype(object).where(people["email"].notna(), None)
    key = email.map(lambda value: str(value).strip().casefold() if value is not None else "")
    listed = pd.DataFrame(
        {"key": list(roster.people), "active": pd.Series(list(roster.people.values()), dtype=bool)}
    )
    matched = pd.DataFrame(
        {"principal_id": people["id"].astype(object), "email": email, "key": key}
    ).merge(listed, on="key", how="left", validate="many_to_one")
    matched = matched[matched["active"].ne(True)]
    terminated = matched["active"].eq(False)
    standing = terminated.map({True: TERMINATED, False: ABSENT})
    reason = pd.Series(f"not in {roster.name}", index=matched.index, dtype=object)
    reason = reason.where(matched["key"] != "", f"no e-mail to match against {roster.name}")
    reason = reason.where(~terminated, f"terminated in {roster.name}")
    return pd.DataFrame(
        {
            "principal_id": matched["principal_id"],
            "email": matched["email"],
            "standing": standing,
            "reason": reason,
        },
        columns=STANDING_COLUMNS,
    ).reset_index(drop=True)


def user_terminated(context: AuditContext) -> pd.DataFrame:
    """Org users the roster lists as terminated (off without a roster)."""
    return _flags(context, TERMINATED)


def user_not_in_roster(context: AuditContext) -> pd.DataFrame:
    """Org users whose e-mail the roster does not list, or who have none (off without a
    roster)."""
    return _flags(context, ABSENT)


def _flags(context: AuditContext, standing: str) -> pd.DataFrame:
    roster = context.settings.roster
    if roster is None:
        return pd.DataFrame()
    users = context.analysis.snapshot["users"]
    rows = roster_standing(users, roster)
    rows = rows[rows["standing"] == standing]
    if rows.empty:
        return pd.DataFrame()
    roles = users[["id", "role"]].rename(columns={"id": "principal_id"})
    rows = rows.merge(context.user_names, on="principal_id", how="left", validate="one_to_one")
    rows = rows.merge(roles, on="principal_id", how="left", validate="one_to_one")
    return pd.DataFrame(
        {
            "subject_type": "user",
            "subject_id": rows["principal_id"],
            "subject_name": rows["subject_name"],
            "project_id": None,
            "project_name": None,
            "message": rows["subject_name"]
            + " (org "
            + rows["role"].fillna("?")
            + ") is a member of the organization: "
            + rows["reason"],
        }
    )
