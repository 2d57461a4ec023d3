"""The vocabulary of an access-review campaign: its facts, the decisions, the states."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum

from orgaudit.vocabulary import Decision


def utc_text(moment: datetime) -> str:
    """A time as every json of orgaudit writes it: ISO 8601 in UTC, to the second, ``Z``."""
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


# Decisions that ask for something to be done in the org, which `review verify` checks.
ACTING = (Decision.CHANGE, Decision.REMOVE)


class Verified(StrEnum):
    """What a later snapshot shows of a removal or change."""

    DONE = "done"
    OUTSTANDING = "outstanding"
    UNKNOWN = "unknown"  # the snapshot could not show it: a source not read in full


class State(StrEnum):
    """Where a campaign stands."""

    OPEN = "open"  # issued, decisions not yet read back
    CLOSED = "closed"  # decided; removals and changes not all seen done yet
    VERIFIED = "verified"  # every removal and change seen done (or none asked for)


@dataclass(frozen=True)
class Campaign:
    """One campaign's facts, as stored in ``review_campaigns``."""

    id: str
    snapshot_id: int
    opened_at: datetime
    opened_by: str
    due_on: date
    projects: tuple[str, ...]  # the projects it is narrowed to (none: every item)
    tool_version: str
    catalog_version: str
    catalog_sha256: str
    workbook_name: str = ""
    workbook_sha256: str = ""
    pack_folder: str = ""  # where its evidence goes (absolute)
    roster_name: str | None = None
    roster_sha256: str | None = None

    @property
    def scope(self) -> str:
        """The scope in words."""
        if not self.projects:
            return (
                "every principal: users and their roles (users in no project by their org "
                "role), service accounts, API keys, admin keys"
            )
        return "the items of project(s) " + ", ".join(self.projects)

    def record(self) -> dict[str, object]:
        """The review_campaigns row."""
        return {
            "id": self.id,
            "snapshot_id": self.snapshot_id,
            "opened_at": utc_text(self.opened_at),
            "opened_by": self.opened_by,
            "due_on": self.due_on.isoformat(),
            "scope": json.dumps({"projects": list(self.projects)}),
            "tool_version": self.tool_version,
            "catalog_version": self.catalog_version,
            "catalog_sha256": self.catalog_sha256,
            "roster_name": self.roster_name,
            "roster_sha256": self.roster_sha256,
            "workbook_name": self.workbook_name,
            "workbook_sha256": self.workbook_sha256,
            "pack_folder": self.pack_folder,
        }

    def summary(self) -> dict[str, object]:
        """The campaign as the evidence's json gives it (its scope a list, not text)."""
        record = self.record()
        del record["scope"], record["pack_folder"]  # the pack's place on this machine
        return {**record, "projects": list(self.projects)}

    @classmethod
    def from_record(cls, row: dict[str, object]) -> Campaign:
        """The campaign a review_campaigns row holds."""
        scope = json.loads(str(row["scope"]))
        return cls(
            id=str(row["id"]),
            snapshot_id=int(str(row["snapshot_id"])),
            opened_at=datetime.fromisoformat(str(row["opened_at"])),
            opened_by=str(row["opened_by"]),
            due_on=date.fromisoformat(str(row["due_on"])),
            projects=tuple(scope.get("projects", [])),
            tool_version=str(row["tool_version"]),
            catalog_version=str(row["catalog_version"]),
            catalog_sha256=str(row["catalog_sha256"]),
            workbook_name=str(row["workbook_name"]),
            workbook_sha256=str(row["workbook_sha256"]),
            pack_folder=str(row["pack_folder"]),
            roster_name=None if row["roster_name"] is None else str(row["roster_name"]),
            roster_sha256=None if row["roster_sha256"] is None else str(row["roster_sha256"]),
        )


@dataclass(frozen=True)
class ItemDecision:
    """One row's decision as read back from the filled workbook."""

    item_id: str
    decision: Decision
    new_role: str | None = None
    justification: str | None = None
    reviewer: str | None = None
    decided_on: date | None = None

    def record(self, campaign_id: str) -> dict[str, object]:
        """The review_decisions row."""
        return {
            "campaign_id": campaign_id,
            "item_id": self.item_id,
            "decision": self.decision.value,
            "new_role": self.new_role,
            "justification": self.justification,
            "reviewer": self.reviewer,
            "decided_on": None if self.decided_on is None else self.decided_on.isoformat(),
        }
