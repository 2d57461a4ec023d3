"""What a pull collected, as values: where a list was read, the gaps it left, each
source's coverage, and the anomalies the snapshot records."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from orgaudit.collect.answers import JsonObject

# An odd value or a left-out item, as the snapshot's anomalies table records it:
# (table, column, subject, value shown, what was wrong).
Anomaly = tuple[str, str | None, str | None, str | None, str]
# The pull leaves these out of admin_api_keys on purpose (project_keys_in_admin_list): a
# known quirk of the API, recorded but not reported as a value orgaudit does not know.
PROJECT_KEY_IN_ADMIN_LIST = (
    "is a project API key the admin-key list also returned (its id is in a project's key "
    "list): not stored as an admin key"
)

# Gap statuses: "unavailable" (the API refused), "skipped" (not asked, because its family
# or parent list was unavailable), "archived" (the spec documents HTTP 400 for some lists
# of archived projects), "derived" (not asked, because other lists already give its
# answer). Only the first two degrade coverage.
UNAVAILABLE, SKIPPED, ARCHIVED, DERIVED = "unavailable", "skipped", "archived", "derived"
# Why the usage and costs lists were not asked when the pull was told not to read them.
NO_USAGE_REASON = "not asked: --usage-days 0"


@dataclass(frozen=True)
class Scope:
    """Where a list was read: which project, user or group its path named."""

    project_id: str | None = None
    user_id: str | None = None
    group_id: str | None = None
    project_archived: bool = False

    def path_args(self) -> dict[str, str]:
        """The path template arguments this scope fills in."""
        args = {"project_id": self.project_id, "user_id": self.user_id, "group_id": self.group_id}
        return {name: value for name, value in args.items() if value is not None}


WHOLE_ORG = Scope()  # a list of the whole org: no project, user or group in its path


@dataclass(frozen=True)
class Gap:
    """A list that could not be read (or was not asked for), and why."""

    source: str
    scope: Scope
    status: str
    reason: str
    asked: bool = True  # False: never sent (skipped or derived), so it used no request


@dataclass(frozen=True)
class SourceCoverage:
    """How completely one source was read: complete, partial, unavailable."""

    source: str
    status: str
    reason: str
    rows: int
    requests: int


@dataclass(frozen=True)
class Collected:
    """Everything one pull read, ready to be written as a snapshot."""

    started_at: datetime
    finished_at: datetime
    base_url: str
    audit_since: datetime
    usage_since: datetime | None  # where the usage window starts; None: usage not read
    # A source's items by name, read (a page at a time) from where the pull put them;
    # in the order of their scopes, each list's items in the order they came.
    items: Callable[[str], Iterable[tuple[Scope, JsonObject]]]
    gaps: tuple[Gap, ...]
    coverage: tuple[SourceCoverage, ...]
    requests: int
    retries: int
    throttled: int
    # Items the pull left out on purpose, with why: written to the snapshot's anomalies.
    anomalies: tuple[Anomaly, ...] = ()


@dataclass(frozen=True)
class PullResult:
    """What the pull command reports: the snapshot written and what it holds."""

    snapshot_id: int
    collected: Collected

    @property
    def seconds(self) -> float:
        """Wall time of the pull, from first request to snapshot written."""
        return (self.collected.finished_at - self.collected.started_at).total_seconds()
