"""The words orgaudit's answers are made of: verdicts, access levels, kinds of key, finding
statuses and severities.

Each is a :class:`~enum.StrEnum`: a member *is* its text, so it compares equal to the
string stored in the snapshot database, a DataFrame column or a JSON report, and those
stay exactly as documented in ``docs/schema.md``. Code names the member, never the
string, so a typo is an error where it is written rather than a silent mismatch.
"""

from __future__ import annotations

from enum import StrEnum

from orgaudit.errors import UsageError


class Verdict(StrEnum):
    """Whether something is possible: a user creating keys, a key's request passing.

    ``unknown`` is its own answer, never a pass: a source the verdict needed was not
    read, or a rule or role it rests on is unknown to the catalog.
    """

    ALLOWED = "allowed"
    DENIED = "denied"
    UNKNOWN = "unknown"


class AccessLevel(StrEnum):
    """What a principal may do with API keys in a project, weakest first."""

    NONE = "none"
    READ = "read"
    CREATE_OWN = "create_own"
    MANAGE_ALL = "manage_all"


# The levels that let a principal create keys (their own, or any).
CREATING_LEVELS = (AccessLevel.CREATE_OWN, AccessLevel.MANAGE_ALL)


class ScopeKind(StrEnum):
    """What a project API key's recorded scopes make it (help center 8867743)."""

    UNRESTRICTED = "unrestricted"  # "All"
    READ_ONLY = "read_only"  # "Read only"
    RESTRICTED = "restricted"  # some settings chosen one by one
    UNKNOWN = "unknown"  # no audit record of its scopes


class PrincipalType(StrEnum):
    """Who holds a role."""

    USER = "user"
    GROUP = "group"
    SERVICE_ACCOUNT = "service_account"


class FindingStatus(StrEnum):
    """A finding is ``open``, or ``unknown`` where its check could not be evaluated."""

    OPEN = "open"
    UNKNOWN = "unknown"


class Severity(StrEnum):
    """A finding's severity, lowest first (the order ``--fail-on`` compares by)."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for ``info`` up to 4 for ``critical``."""
        return _SEVERITY_ORDER.index(self)

    def raised(self) -> Severity:
        """One severity higher (``critical`` stays critical)."""
        return _SEVERITY_ORDER[min(self.rank + 1, len(_SEVERITY_ORDER) - 1)]

    @classmethod
    def parse(cls, text: str) -> Severity:
        """A severity from user input, in any case; one clear line naming the choices if
        it is none."""
        try:
            return cls(text.strip().lower())
        except ValueError:
            choices = ", ".join(cls)
            raise UsageError(f"unknown severity {text!r}; use one of {choices}") from None


_SEVERITY_ORDER = tuple(Severity)


class Decision(StrEnum):
    """What an access reviewer decided for an item (``undecided``: a campaign closed
    without a decision for it)."""

    KEEP = "keep"
    CHANGE = "change"
    REMOVE = "remove"
    UNDECIDED = "undecided"

    @property
    def label(self) -> str:
        """As a workbook's Decision list shows it: Keep, Change, Remove."""
        return self.value.capitalize()


# The choices of a Decision cell, in the order the list shows them.
DECISION_LABELS = tuple(d.label for d in Decision if d is not Decision.UNDECIDED)
