"""What each ``orgaudit review`` step returns: values the terminal text is made from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from orgaudit.errors import ExitCode
from orgaudit.review.campaign import Campaign, State, Verified
from orgaudit.review.verify import ItemVerification


@dataclass(frozen=True)
class Opened:
    """A campaign opened: its facts, items and files."""

    campaign: Campaign
    items: int
    pre_marked: int
    workbook: Path
    folder: Path


@dataclass(frozen=True)
class Closed:
    """A campaign closed: its decisions counted and the files of its evidence."""

    campaign: Campaign
    decisions: Mapping[str, int]
    files: tuple[Path, ...]
    state: State


@dataclass(frozen=True)
class Verification:
    """A verification run: what is done, outstanding or unknown, and whether it is late."""

    campaign: Campaign
    items: tuple[ItemVerification, ...]
    verified_at: datetime
    files: tuple[Path, ...]

    @property
    def past_due(self) -> bool:
        """Whether the campaign's due date has passed."""
        return self.verified_at.date() > self.campaign.due_on

    @property
    def not_done(self) -> int:
        """Removals and changes not seen done (outstanding or unknown)."""
        return sum(1 for v in self.items if v.status is not Verified.DONE)

    @property
    def exit_code(self) -> ExitCode:
        """1 while anything is not seen done past the due date: a schedule can nag."""
        return ExitCode.FINDINGS if self.past_due and self.not_done else ExitCode.OK


@dataclass(frozen=True)
class CampaignStatus:
    """Where one campaign stands."""

    campaign: Campaign
    state: State
    items: int
    decided: int  # items with a decision (undecided ones at the close count as not)
    acting: int  # removals and changes decided
    done: int  # of those, seen done by the latest verification
    outstanding: tuple[Mapping[str, object], ...]  # the latest verification's other rows
    verified_at: str | None
    overdue: bool
