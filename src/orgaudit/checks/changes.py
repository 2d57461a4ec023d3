"""The vocabulary of a diff: one change, a diff's changes, and the two helpers every
section is built with (an outer comparison of two tables, and changes from its columns).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

# 3: each change names its actor (who made it, from the audit log), and key spend
# changes; 2: a flat list of changes, each with its kind, ids, and a finding's check and
# severity apart (1 grouped display strings by section).
DIFF_SCHEMA_VERSION = 3
# Sections of a diff, in the order they are shown.
SECTIONS = (
    "users added",
    "users removed",
    "org roles changed",
    "project roles changed",
    "group membership changed",
    "role permissions changed",
    "keys created",
    "keys deleted",
    "key scopes changed",
    "keys newly used",
    "keys gone stale",
    "key spend changed",
    "findings new",
    "findings resolved",
    "findings not evaluated",
    "findings still open",
)


@dataclass(frozen=True)
class Change:
    """One change: its section, what it is about, and the before and after values.

    ``subject`` and ``project`` are names for a person; the ids, the subject's type and,
    for a finding, its check, severity and message are kept apart for scripts.
    """

    section: str
    subject: str
    project: str
    before: str
    after: str
    subject_type: str = ""
    subject_id: str = ""
    project_id: str = ""
    check: str = ""
    severity: str = ""
    message: str = ""
    actor: str = ""  # who made it, where the newer snapshot's audit log says

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the kind, the subject and project as objects, before and after (a
        finding's message on the side it is on), and a finding's check and severity."""
        finding = bool(self.check)
        return {
            "kind": self.section,
            "subject": {"type": self.subject_type, "id": self.subject_id,
                        "name": self._subject_name},
            "project": {"type": "project", "id": self.project_id, "name": self.project}
            if self.project_id else None,
            "before": (self.message if finding else self.before) if self.before else None,
            "after": (self.message if finding else self.after) if self.after else None,
            "check": self.check or None,
            "severity": self.severity or None,
            "actor": self.actor or None,
        }  # fmt: skip

    @property
    def _subject_name(self) -> str:
        """The subject's name without the check id a finding's label starts with."""
        prefix = f"{self.check}: "
        return self.subject.removeprefix(prefix) if self.check else self.subject


@dataclass(frozen=True)
class SnapshotDiff:
    """Every change from one snapshot to another."""

    from_snapshot: int
    to_snapshot: int
    changes: tuple[Change, ...]

    def section(self, name: str) -> tuple[Change, ...]:
        """The changes of one section."""
        return tuple(c for c in self.changes if c.section == name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (docs/schemas/diff.schema.json): the two snapshot ids and every
        change, each with its kind, in the order the sections are shown."""
        return {
            "schema_version": DIFF_SCHEMA_VERSION,
            "from_snapshot": self.from_snapshot,
            "to_snapshot": self.to_snapshot,
            "changes": [change.to_dict() for change in self.changes],
        }

    def to_frame(self) -> pd.DataFrame:
        """The changes as one table (the workbook's Changes sheet)."""
        return pd.DataFrame(
            [asdict(c) for c in self.changes],
            columns=["section", "subject", "project", "before", "after", "actor"],
        ).rename(columns=str.capitalize)


def compare(
    old: pd.DataFrame, new: pd.DataFrame, keys: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Rows only in old, only in new, and in both (columns suffixed _old and _new)."""
    merged = old.merge(
        new,
        on=keys,
        how="outer",
        suffixes=("_old", "_new"),
        indicator=True,
        validate="one_to_one",
    )
    return (
        merged[merged["_merge"] == "left_only"],
        merged[merged["_merge"] == "right_only"],
        merged[merged["_merge"] == "both"],
    )


def changes_from(
    section: str,
    frame: pd.DataFrame,
    subject: str,
    before: str | None = None,
    after: str | None = None,
    project: str | None = None,
    *,
    ids: tuple[str, str, str | None] = ("", "", None),
    finding: tuple[str, str, str] | None = None,
) -> list[Change]:
    """Changes from a frame's columns: the subject, before, after and project names;
    ``ids`` the subject's type (or a column of it), id column and project id column;
    ``finding`` the check, severity and message columns of a finding's change."""

    def text(column: str | None) -> list[str]:
        if column is None or column not in frame:
            return [""] * len(frame)
        return ["" if pd.isna(v) else str(v) for v in frame[column]]

    subject_type, subject_id, project_id = ids
    types = text(subject_type) if subject_type in frame else [subject_type] * len(frame)
    check, severity, message = finding if finding is not None else (None, None, None)
    columns = zip(
        text(subject), text(project), text(before), text(after), types, text(subject_id),
        text(project_id), text(check), text(severity), text(message), strict=True,
    )  # fmt: skip
    return [Change(section, *values) for values in columns]
