"""Judging a filled review workbook against the campaign it belongs to.

Every rule is checked on every row and every problem is named (sheet, row, column), so a
reviewer fixes the workbook in one pass; a workbook with any problem is refused whole.
The stored items are the reference: an identity cell is compared with what the campaign
issued, so an edit is caught even where the row's checksum was recomputed.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from openpyxl.utils import get_column_letter

from orgaudit.errors import UsageError
from orgaudit.review.campaign import Campaign, ItemDecision
from orgaudit.review.items import (
    CHECKSUM,
    IDENTITY_FIELDS,
    REVIEW_SHEET_COLUMNS,
    ROLE_KINDS,
    identity_text,
    roster_justification,
)
from orgaudit.review.workbook import REVIEW, FilledRow, cell_date
from orgaudit.vocabulary import DECISION_LABELS, Decision

SHOWN_PROBLEMS = 100
MAX_PROBLEMS = 10_000  # kept in memory; a workbook this wrong is reported by its first ones
CHECKSUM_MISMATCH = "not this row's as issued: the row was copied from another campaign or edited"
# Columns whose being filled in makes a row decided (a roster row's pre-filled
# justification alone does not).
_SIGNING = ("Decision", "New role", "Reviewer", "Date")


ProblemAt = Callable[[str, str], None]  # (column, message) of the row being judged


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the filled workbook, at a cell."""

    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        if self.row is None:
            return f"{REVIEW}: {self.message}"
        letter = (
            get_column_letter(REVIEW_SHEET_COLUMNS.index(self.column) + 1) if self.column else ""
        )
        where = f"{REVIEW}!{letter}{self.row}" if letter else f"{REVIEW} row {self.row}"
        return (
            f"{where} ({self.column}): {self.message}"
            if self.column
            else f"{where}: {self.message}"
        )


class ReviewRejected(UsageError):
    """The filled workbook breaks the review's rules; ``problems`` names each."""

    def __init__(self, path_name: str, problems: Sequence[Problem]) -> None:
        shown = [str(p) for p in problems[:SHOWN_PROBLEMS]]
        if len(problems) > SHOWN_PROBLEMS:
            shown.append(f"... and {len(problems) - SHOWN_PROBLEMS} more")
        self.details = tuple(shown)
        super().__init__(
            f"{path_name} was not accepted: {len(problems)} problem(s), listed above; fix "
            "them and close again (nothing was stored)"
        )


def judge(
    rows: Sequence[FilledRow],
    campaign: Campaign,
    items: Sequence[Mapping[str, object]],
    roles: Mapping[str, tuple[str, ...]],
    closing_on: date,
    *,
    allow_undecided: bool,
    path_name: str,
) -> tuple[ItemDecision, ...]:
    """Every item's decision, or :class:`ReviewRejected` naming every problem."""
    by_id = {str(item["item_id"]): item for item in items}
    problems: list[Problem] = []
    decisions: dict[str, ItemDecision] = {}
    seen: dict[str, int] = {}
    undecided: list[int] = []
    for row in rows:
        item_id = _text(row.values.get("Item id"))
        if not item_id:
            problems.append(Problem(row.number, "Item id", "no item id: rows may not be added"))
            continue
        if item_id in seen:
            problems.append(
                Problem(
                    row.number,
                    "Item id",
                    f"{_short(item_id)} is listed twice (first at row {seen[item_id]})",
                )
            )
            continue
        seen[item_id] = row.number
        item = by_id.get(item_id)
        if item is None:
            problems.append(
                Problem(
                    row.number,
                    "Item id",
                    f"{_short(item_id)} is not an item of campaign {campaign.id}",
                )
            )
            continue
        if row.formulas:  # a formula's value is whatever a spreadsheet works out next
            problems += [
                Problem(row.number, column, "holds a formula: type the value itself")
                for column in row.formulas
            ]
            continue
        row_problems = _identity_problems(row, item)
        decision, more = _decision(row, item, roles, campaign, closing_on)
        problems += row_problems + more
        if decision is not None:
            decisions[item_id] = decision
            if decision.decision is Decision.UNDECIDED:
                undecided.append(row.number)
    for item_id, item in by_id.items():
        if item_id not in seen:
            problems.append(
                Problem(
                    None,
                    None,
                    f"item {item_id} ({item['kind']} {item['subject']}, {item['project']}; row "
                    f"{item['row_number']} as issued) is missing: rows may not be deleted",
                )
            )
    if undecided and not allow_undecided:
        listed = ", ".join(map(str, undecided[:20])) + (" ..." if len(undecided) > 20 else "")
        noun, them = ("rows", "them") if len(undecided) > 1 else ("row", "it")
        problems.append(
            Problem(
                None,
                None,
                f"{len(undecided)} {noun} undecided ({noun} {listed}): decide {them}, or close "
                "with --allow-undecided to record the undecided in the evidence",
            )
        )
    problems = _one_for_a_foreign_workbook(problems, len(seen), campaign.id)[:MAX_PROBLEMS]
    if problems:
        raise ReviewRejected(path_name, sorted(problems, key=lambda p: (p.row is None, p.row or 0)))
    return tuple(decisions[str(item["item_id"])] for item in items)


def _one_for_a_foreign_workbook(
    problems: list[Problem], rows: int, campaign_id: str
) -> list[Problem]:
    """One problem, not one a row, where no row's checksum is this campaign's: the
    workbook is another campaign's, or its Instructions name the wrong campaign."""
    mismatched = [p for p in problems if p.message == CHECKSUM_MISMATCH]
    if rows < 2 or len(mismatched) < rows:
        return problems
    return [p for p in problems if p.message != CHECKSUM_MISMATCH] + [
        Problem(
            None,
            None,
            f"no row's checksum is one campaign {campaign_id} issued: this is another "
            "campaign's workbook, or the campaign named on its Instructions sheet was changed",
        )
    ]


def _identity_problems(row: FilledRow, item: Mapping[str, object]) -> list[Problem]:
    """Identity cells that differ from the item as issued; where none does, a checksum
    that is not the item's (a row of another campaign's workbook, or an edited one)."""
    problems = []
    for column, field in IDENTITY_FIELDS.items():
        issued = identity_text(item[field])
        now = identity_text(row.values.get(column))
        if now != issued:
            problems.append(
                Problem(row.number, column, f"changed from {_short(issued)} to {_short(now)}")
            )
    if not problems and identity_text(row.values.get(CHECKSUM)) != item["checksum"]:
        problems.append(Problem(row.number, CHECKSUM, CHECKSUM_MISMATCH))
    return problems


def _decision(
    row: FilledRow,
    item: Mapping[str, object],
    roles: Mapping[str, tuple[str, ...]],
    campaign: Campaign,
    closing_on: date,
) -> tuple[ItemDecision | None, list[Problem]]:
    values = row.values
    item_id = str(item["item_id"])
    problems: list[Problem] = []

    def problem(column: str, message: str) -> None:
        problems.append(Problem(row.number, column, message))

    justification = _text(values.get("Justification"))
    if all(not _text(values.get(column)) for column in _SIGNING):
        # Undecided, unless a justification was written (a roster row's own excepted):
        # a reason with no decision is a decision left half-made, not none.
        if justification and justification != roster_justification(str(item["roster"])):
            problem("Decision", "empty, but a justification is written: decide, or clear the row")
            return None, problems
        return ItemDecision(item_id, Decision.UNDECIDED), []
    chosen = _text(values.get("Decision"))
    decision = next((d for d in Decision if d.label.casefold() == chosen.casefold()), None)
    if not chosen:
        problem("Decision", "empty, but the row is filled in: choose " + ", ".join(DECISION_LABELS))
    elif decision is None or decision is Decision.UNDECIDED:
        problem("Decision", f"{_short(chosen)} is not one of {', '.join(DECISION_LABELS)}")
        decision = None
    new_role = _text(values.get("New role"))
    if decision is Decision.CHANGE:
        new_role = _new_role(item, new_role, roles, problem)
    elif new_role:
        problem("New role", "only a Change names a new role")
    if not justification:
        problem("Justification", "empty: say why")
    reviewer = _reviewer(_text(values.get("Reviewer")), item, problem)
    decided_on = _date(values.get("Date"), campaign, closing_on, problem)
    if problems or decision is None:
        return None, problems
    return ItemDecision(
        item_id, decision, new_role or None, justification, reviewer, decided_on
    ), []


def _reviewer(written: str, item: Mapping[str, object], problem: ProblemAt) -> str:
    """The reviewer's e-mail address; problems where the cell is not one bare address, or
    the address is the person's the item is about."""
    if not written:
        problem("Reviewer", "empty: the reviewer signs with their e-mail address")
        return written
    address = unicodedata.normalize("NFKC", written).strip()
    if not _ADDRESS.fullmatch(address):
        # One bare address only: a display name, a list or a quoted part could hide whose
        # address it is (mail clients and parsers disagree about "a@x <b@y>").
        problem("Reviewer", f"{_short(written)} is not one e-mail address alone (name@example.com)")
        return written
    if _mailbox(address) in {_mailbox(n) for n in json.loads(str(item["answering_names"]))}:
        whose = "their own key" if str(item["kind"]).endswith("key") else "their own access"
        problem("Reviewer", f"{_short(written)} reviews {whose}: another reviewer must decide it")
    return address


# A plain e-mail address: a local part of the characters RFC 5322 allows unquoted, and a
# domain of dot-separated labels.
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"{_LOCAL}@{_LABEL}(?:\.{_LABEL})+")


def _mailbox(address: str) -> str:
    """Who an address reaches, for telling reviewers apart: compatibility characters and
    case folded, and a ``+tag`` after the local part dropped (``alice+review@`` reaches
    alice, as most mail systems deliver it)."""
    folded = unicodedata.normalize("NFKC", address).strip().casefold()
    local, at, domain = folded.partition("@")
    return local.split("+", 1)[0] + at + domain


def _date(value: object, campaign: Campaign, closing_on: date, problem: ProblemAt) -> date | None:
    """The decision's date; a problem where it is missing, no date, or outside the
    campaign (a day either side, in UTC: a reviewer dates by their own calendar)."""
    decided_on = cell_date(value)
    first_day = campaign.opened_at.date() - timedelta(days=1)
    last_day = closing_on + timedelta(days=1)
    if value is None or (isinstance(value, str) and not value.strip()):
        problem("Date", "empty: the day the reviewer decided")
    elif decided_on is None:
        problem("Date", f"{_short(str(value))} is not a date (YYYY-MM-DD)")
    elif not first_day <= decided_on <= last_day:
        problem(
            "Date",
            f"{decided_on} is outside the campaign (opened {campaign.opened_at:%Y-%m-%d}, "
            f"closed {closing_on}; a day either side is allowed for time zones)",
        )
    return decided_on


# The roles each way of holding one may change to. The built-in org and project roles
# change among themselves; a service account is an owner or a member of its project
# (API reference, the project service account object:
# https://platform.openai.com/docs/api-reference/project-service-accounts/object); a
# role held through a group changes with the group's, not for one of its members.
_BUILT_IN_CHANGES = {
    "org role": ("owner", "reader"),
    "project role": ("owner", "member", "viewer"),
    "service account role": ("owner", "member"),
}
_THROUGH_GROUPS = ("org group role", "project group role")


def _new_role(
    item: Mapping[str, object],
    named: str,
    roles: Mapping[str, tuple[str, ...]],
    problem: ProblemAt,
) -> str:
    """The role a Change names, as the org spells it; problems where it cannot be one."""
    if item["kind"] not in ROLE_KINDS:
        problem("Decision", "a key has no role to change: decide Keep or Remove")
        return named
    held = str(item["binding_kind"] or "")
    if held in _THROUGH_GROUPS:
        problem(
            "Decision",
            "the role is held through a group: change the group's role (every member's), "
            "or decide Remove (out of the group)",
        )
        return named
    if not named:
        problem("New role", "empty: a Change names the role to hold instead (see the Roles sheet)")
        return named
    where = str(item["project_id"] or "") if item["scope"] != "organization" else ""
    existing = _BUILT_IN_CHANGES.get(held) or roles.get(where, ())
    match = next((role for role in existing if role.casefold() == named.casefold()), None)
    place = "the organization" if not where else str(item["project"])
    if match is None:
        listed = ", ".join(existing) or "none listed"
        problem(
            "New role", f"{_short(named)} is not a role this can change to in {place} ({listed})"
        )
        return named
    if str(item["role_name"] or "").casefold() == match.casefold():
        problem("New role", f"they hold {match} already: decide Keep, or name another role")
    return match


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _short(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")
