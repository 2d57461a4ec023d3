"""Findings: what the checks flag, as values, and the registry's runner.

A check is a small function from an :class:`AuditContext` to a DataFrame of flagged
rows; the runner adds the check's id, title, severity, remediation and evidence, turns a
check whose sources were not read into one ``unknown`` finding (never a silent pass), and
applies the configuration's severities and suppressions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path

import pandas as pd

from orgaudit.errors import ConfigError, ExitCode, UsageError
from orgaudit.model.analysis import Analysis
from orgaudit.vocabulary import FindingStatus, Severity

# Columns a check's result has. ``status`` defaults to open; ``escalate`` (default False)
# raises a row one severity above the check's, for "worse when ..." cases; ``contested``
# names the contested catalog rules the row rests on (its answer differs under their
# other reading).
FLAG_COLUMNS = [
    "subject_type",
    "subject_id",
    "subject_name",
    "project_id",
    "project_name",
    "message",
    "status",
    "escalate",
    "contested",
]


def contested_note(rules: pd.Series, other_answer: str) -> pd.Series:
    """The note a finding resting on contested rules ends with (empty where ``rules`` is):
    " (contested: rule R; under its other reading <other_answer>)"."""
    text = rules.fillna("").astype(str)
    note: pd.Series = (
        " (contested: rule " + text + f"; under its other reading {other_answer})"
    ).where(text != "", "")
    return note


@dataclass(frozen=True)
class Suppression:
    """A finding accepted on purpose: which check and subject, why, who, until when."""

    check: str
    subject: str
    reason: str
    owner: str
    expires: datetime

    def matches(self, check_id: str, subject_id: str, subject_name: str) -> bool:
        """Exact or glob match on the check id and on the subject's id or name."""
        from fnmatch import fnmatchcase

        return fnmatchcase(check_id, self.check) and (
            fnmatchcase(subject_id, self.subject) or fnmatchcase(subject_name, self.subject)
        )


@dataclass(frozen=True)
class RosterColumns:
    """How a roster CSV is read: its e-mail and status columns (header names, any case),
    and the status values meaning active and terminated (any case, spaces around them
    ignored). ``orgaudit.toml``'s ``[roster]`` sets them."""

    email: str = "email"
    status: str = "status"
    active: tuple[str, ...] = ("active",)
    terminated: tuple[str, ...] = ("terminated",)

    def __post_init__(self) -> None:
        if not self.email.strip() or not self.status.strip():
            raise ConfigError("[roster] email_column and status_column must not be empty")
        if self.email.strip().casefold() == self.status.strip().casefold():
            raise ConfigError("[roster] email_column and status_column must name two columns")
        if not self.active or not self.terminated:
            raise ConfigError("[roster] active_values and terminated_values must not be empty")
        if not all(value.strip() for value in (*self.active, *self.terminated)):
            raise ConfigError("[roster] status values must not be empty")
        both = set(self.active_values) & set(self.terminated_values)
        if both:
            raise ConfigError(
                f"[roster] {', '.join(map(repr, sorted(both)))} is both an active and a "
                "terminated value"
            )

    @property
    def active_values(self) -> frozenset[str]:
        """The active status values as compared: stripped and casefolded."""
        return frozenset(value.strip().casefold() for value in self.active)

    @property
    def terminated_values(self) -> frozenset[str]:
        """The terminated status values as compared: stripped and casefolded."""
        return frozenset(value.strip().casefold() for value in self.terminated)


@dataclass(frozen=True)
class Roster:
    """An HR or identity-provider roster (``orgaudit.checks.roster.load_roster``).

    ``name`` is the file's name (for messages), ``sha256`` the digest of its bytes and
    ``columns`` how it was read; those three say what the roster is, so ``people`` (each
    casefolded, stripped e-mail: True if active, False if terminated) is left out of
    comparisons and of the findings' basis.
    """

    name: str
    sha256: str
    columns: RosterColumns = field(default_factory=RosterColumns)
    people: Mapping[str, bool] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class AuditSettings:
    """Thresholds, the configuration's severities and suppressions, and the roster."""

    stale_days: int = 90
    max_owners: int = 3
    severities: Mapping[str, Severity] = field(default_factory=dict)
    suppressions: tuple[Suppression, ...] = ()
    # Keys expiring within this many days are flagged (check key-expiring); a key used
    # within the same many days counts as in use.
    expiring_within_days: int = 14
    # Policy: keys without an expiry older than this are flagged (check
    # key-no-expiry-too-old); None, the default, leaves the policy off.
    max_key_age_days: int | None = None
    # An HR/IdP roster to check the org's users against (checks user-terminated and
    # user-not-in-roster); None, the default, leaves those checks off.
    roster: Roster | None = None
    # diff reports a key's spend change of at least this percent and this much money.
    spend_change_percent: int = 50
    spend_change_min: int = 10

    def __post_init__(self) -> None:
        if self.stale_days < 1:
            raise UsageError("--stale-days must be at least 1")
        if self.max_owners < 1:
            raise UsageError("--max-owners must be at least 1")
        if self.expiring_within_days < 1:
            raise UsageError("expiring_within_days must be at least 1")
        if self.max_key_age_days is not None and self.max_key_age_days < 1:
            raise UsageError("max_key_age_days must be at least 1")


@dataclass(frozen=True)
class AuditContext:
    """What every check reads: the analysis, the settings, the audit's "as of" time."""

    analysis: Analysis
    settings: AuditSettings

    @property
    def as_of(self) -> datetime:
        """The snapshot's time: time-based checks never read the clock."""
        return self.analysis.snapshot.as_of

    @cached_property
    def keys(self) -> pd.DataFrame:
        """Project API keys with their recorded scopes and kinds (see ``Analysis.keys``) and
        their project's name and status."""
        keys = self.analysis.keys
        return keys.merge(
            self.analysis.projects, on="project_id", how="left", validate="many_to_one"
        )

    @property
    def project_names(self) -> pd.DataFrame:
        """``project_id``, ``project_name``, ``project_status``."""
        return self.analysis.projects

    @property
    def user_names(self) -> pd.DataFrame:
        """``principal_id``, ``subject_name`` (e-mail, else name, else id) of org users."""
        return self.analysis.user_names.rename(columns={"name": "subject_name"})


CheckFunction = Callable[[AuditContext], pd.DataFrame]


@dataclass(frozen=True, kw_only=True)
class Check:
    """One check of the registry: a stable id and what it means, and its function.

    ``flags`` says what it flags, ``why`` why that matters, ``fix`` how to fix it,
    ``evidence`` the weakest evidence level of the catalog rules it rests on, and
    ``needs`` the sources it reads (one not read makes the check one unknown finding).
    """

    id: str
    title: str
    severity: Severity
    flags: str
    why: str
    fix: str
    evidence: str
    needs: tuple[str, ...]
    run: CheckFunction


@dataclass(frozen=True)
class Finding:
    """One flagged subject."""

    check_id: str
    title: str
    severity: Severity
    status: FindingStatus
    subject_type: str
    subject_id: str
    subject_name: str
    project_id: str | None
    project_name: str | None
    message: str
    remediation: str
    evidence: str
    suppressed: bool = False
    suppression: str = ""
    contested: str = ""

    @property
    def counts(self) -> bool:
        """Whether the finding counts for ``--fail-on`` (suppressed ones never do)."""
        return not self.suppressed

    @property
    def finding_id(self) -> str:
        """The same for the same check, subject and project in every snapshot and audit,
        so a ticket can follow a finding from one audit to the next (the message, which
        holds counts and dates, is left out of it)."""
        key = "\x1f".join(
            [self.check_id, self.subject_type, self.subject_id, self.project_id or ""]
        )
        return "F-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def run_checks(
    checks: tuple[Check, ...], analysis: Analysis, settings: AuditSettings
) -> tuple[Finding, ...]:
    """Every check's findings, in registry order, with suppressions applied."""
    context = AuditContext(analysis, settings)
    findings: list[Finding] = []
    for check in checks:
        severity = settings.severities.get(check.id, check.severity)
        missing = analysis.snapshot.incomplete_sources(check.needs)
        unavailable = [s for s in missing if analysis.snapshot.source_status(s) == "unavailable"]
        if unavailable:
            findings.append(_not_evaluated(check, severity, unavailable))
            continue
        flagged = check.run(context)
        findings.extend(_findings(check, severity, flagged, settings.suppressions, context.as_of))
    return tuple(findings)


def _not_evaluated(check: Check, severity: Severity, sources: list[str]) -> Finding:
    return Finding(
        check_id=check.id,
        title=check.title,
        severity=severity,
        status=FindingStatus.UNKNOWN,
        subject_type="check",
        subject_id=check.id,
        subject_name=check.title,
        project_id=None,
        project_name=None,
        message=f"could not be evaluated: {', '.join(sources)} not read in this snapshot",
        remediation="pull again with an admin key that can read "
        + ", ".join(sources)
        + " (see source-unavailable)",
        evidence=check.evidence,
    )


def _findings(
    check: Check,
    severity: Severity,
    flagged: pd.DataFrame,
    suppressions: tuple[Suppression, ...],
    as_of: datetime,
) -> list[Finding]:
    frame = flagged.reindex(columns=FLAG_COLUMNS)
    raised = severity.raised()
    escalate = frame["escalate"].astype("boolean").fillna(False).astype(bool)
    status = frame["status"].astype(object)
    frame = frame.assign(
        severity=escalate.map({True: raised, False: severity}),
        status=status.where(status.notna(), FindingStatus.OPEN),
    )
    findings = []
    for row in frame.astype(object).where(frame.notna(), None).itertuples(index=False):
        suppression = next(
            (
                s
                for s in suppressions
                if s.matches(check.id, str(row.subject_id), str(row.subject_name))
            ),
            None,
        )
        active = suppression is not None and suppression.expires >= as_of
        note = ""
        if suppression is not None:
            note = (
                _describe(suppression)
                if active
                else (
                    f"suppression expired on {suppression.expires:%Y-%m-%d}: {suppression.reason}"
                )
            )
        findings.append(
            Finding(
                check_id=check.id,
                title=check.title,
                severity=Severity(str(row.severity)),
                status=FindingStatus(str(row.status)),
                subject_type=str(row.subject_type),
                subject_id=str(row.subject_id),
                subject_name=str(row.subject_name),
                project_id=None if row.project_id is None else str(row.project_id),
                project_name=None if row.project_name is None else str(row.project_name),
                message=str(row.message),
                remediation=check.fix,
                evidence=check.evidence,
                suppressed=active,
                suppression=note,
                contested="" if row.contested is None else str(row.contested),
            )
        )
    return findings


def _describe(suppression: Suppression) -> str:
    return f"{suppression.reason} (owner {suppression.owner}, until {suppression.expires:%Y-%m-%d})"


@dataclass(frozen=True)
class AuditResult:
    """The findings, the files written and the exit code they call for."""

    snapshot_id: int
    findings: tuple[Finding, ...]
    files: tuple[Path, ...]
    exit_code: ExitCode
    fail_on: Severity | None
    stored: bool = True  # False: a read-only database; the findings were not written back


def exit_code_for(findings: tuple[Finding, ...], fail_on: Severity | None) -> ExitCode:
    """1 when a finding that counts is at or above ``fail_on``, else 0.

    Suppressed findings never count. ``unknown`` findings count like open ones: what
    could not be checked is not a pass.
    """
    if fail_on is None:
        return ExitCode.OK
    threshold = fail_on.rank
    failing = any(f.counts and f.severity.rank >= threshold for f in findings)
    return ExitCode.FINDINGS if failing else ExitCode.OK
