"""Judging a filled review workbook against the campaign it belongs to.

Every rule is checked on every row and every problem is named (sheet, row, column), so a
reviewer fixes the workbook in one pass; a workbook with any problem is refused whole.
The stored items are the reference: an identity cell is compared with what the campaign
issued, so an edit is caught even where the row's checksum was recomputed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from openpyxl.utils import get_column_letter

from orgaudit.errors import UsageError
from orgaudit.review.campaign import Campaign, ItemDecision
from orgaudit.review.items import (
    CHECKSUM,
    IDENTITY_FIELDS,
    REVIEW_SHEET_COLUMNS,
    ROLE_KINDS,
    checksum,
    identity_text,
)
from orgaudit.review.workbook import REVIEW, FilledRow, FilledWorkbook, cell_date
from orgaudit.vocabulary import DECISION_LABELS, Decision

SHOWN_PROBLEMS = 100
# Columns whose being filled in makes a row decided (a roster row's pre-filled
# justification alone does not).
_SIGNING = ("Decision", "New role", "Reviewer", "Date")


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
    filled: FilledWorkbook,
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
    for row in filled.rows:
        item_id = _text(row.values.get("Item id"))
        if not item_id:
            problems.append(Problem(row.number, "Item id", "no item id: rows may not be added"))
            continue
        if item_id in seen:
            problems.append(
                Problem(
                    row.number,
                    "Item id",
                    f"{item_id} is listed twice (first at row {seen[item_id]})",
                )
            )
            continue
        seen[item_id] = row.number
        item = by_id.get(item_id)
        if item is None:
            problems.append(
                Problem(
                    row.number, "Item id", f"{item_id} is not an item of campaign {campaign.id}"
                )
            )
            continue
        row_problems = _identity_problems(row, item, campaign.id)
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
        rows = ", ".join(map(str, undecided[:20])) + (" ..." if len(undecided) > 20 else "")
        problems.append(
            Problem(
                None,
                None,
                f"{len(undecided)} row(s) undecided (rows {rows}): decide them, or close with "
                "--allow-undecided to record them as undecided in the evidence",
            )
        )
    if problems:
        raise ReviewRejected(path_name, sorted(problems, key=lambda p: (p.row is None, p.row or 0)))
    return tuple(decisions[str(item["item_id"])] for item in items)


def _identity_problems(
    row: FilledRow, item: Mapping[str, object], campaign_id: str
) -> list[Problem]:
    """Identity cells that differ from the item as issued, and a checksum that does not
    match the row (the workbook alone shows an edit) or the item (a row copied in)."""
    problems = []
    identity = []
    for column, field in IDENTITY_FIELDS.items():
        issued = identity_text(item[field])
        now = identity_text(row.values.get(column))
        identity.append(now)
        if now != issued:
            problems.append(
                Problem(row.number, column, f"changed from {_short(issued)} to {_short(now)}")
            )
    written = identity_text(row.values.get(CHECKSUM))
    if written != item["checksum"]:
        problems.append(
            Problem(row.number, CHECKSUM, "does not match the row as issued (edited or copied)")
        )
    elif checksum(campaign_id, identity) != written:
        problems.append(
            Problem(
                row.number, CHECKSUM, "the row's identity cells no longer match it: one was edited"
            )
        )
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
    if all(not _text(values.get(column)) for column in _SIGNING):
        return ItemDecision(item_id, Decision.UNDECIDED), []
    problems: list[Problem] = []

    def problem(column: str, message: str) -> None:
        problems.append(Problem(row.number, column, message))

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
    justification = _text(values.get("Justification"))
    if not justification:
        problem("Justification", "empty: say why")
    reviewer = _text(values.get("Reviewer"))
    if not reviewer:
        problem("Reviewer", "empty: the reviewer signs with their e-mail address")
    elif reviewer.casefold() in {n.casefold() for n in json.loads(str(item["answering_names"]))}:
        whose = "their own key" if str(item["kind"]).endswith("key") else "their own access"
        problem("Reviewer", f"{_short(reviewer)} reviews {whose}: another reviewer must decide it")
    decided_on = cell_date(values.get("Date"))
    raw_date = values.get("Date")
    # A day either side of the campaign, in UTC: a reviewer dates by their own calendar.
    first_day = campaign.opened_at.date() - timedelta(days=1)
    last_day = closing_on + timedelta(days=1)
    if raw_date is None or (isinstance(raw_date, str) and not raw_date.strip()):
        problem("Date", "empty: the day the reviewer decided")
    elif decided_on is None:
        problem("Date", f"{_short(str(raw_date))} is not a date (YYYY-MM-DD)")
    elif not first_day <= decided_on <= last_day:
        problem(
            "Date",
            f"{decided_on} is outside the campaign (opened {campaign.opened_at:%Y-%m-%d}, "
            f"closed {closing_on}; a day either side is allowed for time zones)",
        )
    if problems or decision is None:
        return None, problems
    return ItemDecision(
        item_id, decision, new_role or None, justification, reviewer, decided_on
    ), []


def _new_role(
    item: Mapping[str, object],
    named: str,
    roles: Mapping[str, tuple[str, ...]],
    problem: Any,
) -> str:
    """The role a Change names, as the org spells it; problems where it cannot be one."""
    if item["kind"] not in ROLE_KINDS:
        problem("Decision", "a key has no role to change: decide Keep or Remove")
        return named
    if not named:
        problem("New role", "empty: a Change names the role to hold instead (see the Roles sheet)")
        return named
    where = str(item["project_id"] or "") if item["scope"] != "organization" else ""
    existing = roles.get(where, ())
    match = next((role for role in existing if role.casefold() == named.casefold()), None)
    place = "the organization" if not where else str(item["project"])
    if match is None:
        listed = ", ".join(existing) or "none listed"
        problem("New role", f"no role {_short(named)} in {place} (roles there: {listed})")
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
