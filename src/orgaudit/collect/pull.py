"""Collecting an org: read every source through the client into the pull's journal.

Lists fan out as soon as their parent is known (each project's users, keys and groups
start while other projects are still being read), all under the client's bound on
requests in flight. What was read stays in the journal, on disk; :class:`Collected` says
what was read, what could not be, and gives the items back a page at a time for the
snapshot (written by :mod:`orgaudit.app.pull`).
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from orgaudit.collect import sources as src
from orgaudit.collect.answers import JsonObject
from orgaudit.collect.client import AdminClient
from orgaudit.collect.journal import BATCH_BYTES, Journal, JournaledList
from orgaudit.collect.pacing import QUIET, Progress
from orgaudit.collect.sources import Family, Source
from orgaudit.errors import (
    ApiError,
    MalformedResponseError,
    OrgauditError,
    UnfinishedListError,
)
from orgaudit.settings import AdminKey, ClientSettings, PullSettings

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
_ORG_DERIVED_REASON = (
    "not asked per user: the org defines no custom org role, so users hold only the "
    "built-in org role their user record names"
)
# Inferred (the OpenAPI document lists role assignments per project): a project-level
# assignment names a role of that project's own role list, so where the list holds only
# built-in roles the member list's `role` already says everything.
# `pull --ask-every-role-list` turns this off.
_PROJECT_DERIVED_REASON = (
    "not asked per member: the project's role list holds no custom role, so its members "
    "hold only the built-in project role the member list names"
)


# The memory a pull takes to read, whatever the pages hold (see reading_memory_ceiling).
PROGRAM_BYTES = 160 * 1024 * 1024  # Python with pandas, httpx and typer loaded, and room
PARSED_PAGE_OBJECTS_BYTES = 60 * 1024 * 1024  # client.MAX_JSON_VALUES values at most


def reading_memory_ceiling(settings: ClientSettings) -> int:
    """The most memory (bytes) a pull with ``settings`` takes to read an org, whatever its
    pages hold; what it adds beyond grows with the org's rows, never with their bytes.

    Pages go to the journal on disk as they arrive and the snapshot is written from it a
    page at a time, so what the pull holds is: the program; the bodies of the requests in
    flight (``--concurrency`` x ``--max-body-mb``); the page being parsed (its body, the
    joined copy, its strings and its JSON text for the journal, each at most a body, plus
    at most :data:`PARSED_PAGE_OBJECTS_BYTES` of objects); and a journal batch.
    """
    bodies = (settings.concurrency + 4) * settings.max_body_bytes
    return PROGRAM_BYTES + bodies + PARSED_PAGE_OBJECTS_BYTES + BATCH_BYTES


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


async def collect(
    key: AdminKey,
    client_settings: ClientSettings,
    pull_settings: PullSettings,
    journal: Journal,
    *,
    progress: Progress = QUIET,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Collected:
    """Read every source into the ``journal``; raise the first error that is not a
    tolerated gap.

    Lists the journal finished in an earlier run of this pull are taken from it, not
    asked again. The items stay in the journal: the result reads them from there.
    """
    audit_since = journal.started_at - timedelta(days=pull_settings.audit_days)
    try:
        async with AdminClient(key, client_settings, progress=progress) as client:
            collector = _Collector(
                client, audit_since, pull_settings.derive_role_lists, pull_settings.strict, journal
            )
            await collector.run()
    except BaseExceptionGroup as group:
        raise _first_error(group) from None
    finished_at = clock()
    dropped = project_keys_in_admin_list(collector.admin_key_ids, collector.project_key_ids)
    counts = collector.rows.copy()
    counts[src.ADMIN_API_KEYS.name] -= len(dropped)
    gaps = tuple(collector.gaps)
    coverage = tuple(
        summarize_coverage(source, collector.calls[source.name], counts[source.name], gaps)
        for source in src.ALL_SOURCES
    )
    return Collected(
        started_at=journal.started_at,
        finished_at=finished_at,
        base_url=client_settings.base_url,
        audit_since=audit_since,
        items=collector.journaled_items,
        gaps=gaps,
        coverage=tuple(_note_dropped(c, dropped, gaps) for c in coverage),
        requests=client.stats.requests,
        retries=client.stats.retries,
        throttled=client.stats.throttled,
        anomalies=dropped,
    )


def project_keys_in_admin_list(
    admin_key_ids: Iterable[str], project_key_ids: set[str]
) -> tuple[Anomaly, ...]:
    """The project keys the admin-key list also returned, each as a note of why it is
    left out of the snapshot's admin keys.

    ``GET /organization/admin_api_keys`` is titled "List all organization and project API
    keys" in the API reference, and returns every project key labelled
    ``organization.admin_api_key``; cartography-cncf/cartography pull request 2511 drops
    the ids seen in the per-project key lists, as this does (docs/evidence.md).
    """
    return tuple(
        (src.ADMIN_API_KEYS.table, None, key_id, None, PROJECT_KEY_IN_ADMIN_LIST)
        for key_id in admin_key_ids
        if key_id in project_key_ids
    )


def _note_dropped(
    coverage: SourceCoverage, dropped: tuple[Anomaly, ...], gaps: tuple[Gap, ...]
) -> SourceCoverage:
    """The admin-key source's coverage says how many project keys it left out, and that
    keys of projects whose key list was not read could not be told apart."""
    if coverage.source != src.ADMIN_API_KEYS.name:
        return coverage
    notes = [coverage.reason] if coverage.reason else []
    if dropped:
        notes.append(f"{len(dropped)} project key(s) the list also returned were left out")
    unread = {
        g.scope.project_id
        for g in gaps
        if g.source == src.PROJECT_API_KEYS.name and g.status != DERIVED
    }
    if unread and coverage.status != UNAVAILABLE:
        notes.append(
            f"the key lists of {len(unread)} project(s) were not read, so their keys, if the "
            "list returned them, are counted as admin keys"
        )
    return replace(coverage, reason="; ".join(notes))


def summarize_coverage(
    source: Source, calls: int, rows: int, gaps: tuple[Gap, ...]
) -> SourceCoverage:
    """One source's coverage from the lists it read and the gaps it left."""
    own = [gap for gap in gaps if gap.source == source.name]
    missing = [gap for gap in own if gap.status in (UNAVAILABLE, SKIPPED)]
    archived = [gap for gap in own if gap.status == ARCHIVED]
    derived = [gap for gap in own if gap.status == DERIVED]
    notes = []
    if archived:
        notes.append(f"{len(archived)} archived project(s) not readable ({archived[0].reason})")
    if derived:
        # One derived gap stands for every member list of a project (or every user's list).
        places = [gap for gap in derived if gap.scope.project_id is not None]
        what, _, why = derived[0].reason.partition(": ")
        where = f" in {len(places)} project(s)" if places else ""
        notes.append(f"{what}{where}: {why}")
    note = "; ".join(notes)
    read = calls - len([gap for gap in own if gap.asked])
    if not missing:
        status, reason = "complete", note
    elif read == 0 and not derived:  # derived lists are known without being asked
        status, reason = "unavailable", missing[0].reason
    else:
        status = "partial"
        reason = f"{len(missing)} of {len(missing) + read} lists unavailable: {missing[0].reason}"
    return SourceCoverage(source.name, status, reason, rows, calls)


class _Collector:
    """The mutable working state of one pull; lives only inside :func:`collect`.

    It keeps no items: pages go to the journal as they arrive, and only what the fan-out
    and the coverage need (ids, counts, flags) stays in memory.
    """

    def __init__(
        self,
        client: AdminClient,
        audit_since: datetime,
        derive: bool,
        strict: bool,
        journal: Journal,
    ) -> None:
        self.client = client
        self.audit_since = audit_since
        self.derive = derive
        self.strict = strict
        self.journal = journal
        self.lists: defaultdict[str, dict[int, tuple[Scope, JournaledList]]] = defaultdict(dict)
        self.rows: Counter[str] = Counter()
        self.admin_key_ids: list[str] = []
        self.project_key_ids: set[str] = set()
        self.gaps: list[Gap] = []
        self.calls: Counter[str] = Counter()
        self.family_down: dict[Family, str] = {}
        self.family_checked = {family: asyncio.Event() for family in src.FAMILY_ROOTS}
        self.org_roles_known = asyncio.Event()
        self.org_custom_roles = True  # until the org's role list says otherwise
        self._group: asyncio.TaskGroup | None = None

    def spawn(self, coroutine: Coroutine[Any, Any, object]) -> None:
        assert self._group is not None
        self._group.create_task(coroutine)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            since = int(self.audit_since.timestamp())
            self.spawn(self.fetch(src.INVITES))
            self.spawn(self.fetch(src.ADMIN_API_KEYS))
            self.spawn(self.fetch(src.AUDIT_KEY_EVENTS, extra=(("effective_at[gte]", str(since)),)))
            self.spawn(self._organization_rbac())
            self.spawn(self._users())
            self.spawn(self._projects())

    def journaled_items(self, source_name: str) -> Iterator[tuple[Scope, JsonObject]]:
        """A source's items, read back from the journal a page at a time: its lists in
        the order of their scopes, each list's items in the order they came; the project
        keys the admin-key list also returned left out."""
        left_out = self.project_key_ids if source_name == src.ADMIN_API_KEYS.name else set()
        for scope, entry in sorted(
            self.lists[source_name].values(), key=lambda listed: _scope_order(listed[0])
        ):
            for page in self.journal.pages(entry):
                for item in page:
                    if not left_out or item.get("id") not in left_out:
                        yield scope, item

    async def fetch(
        self,
        source: Source,
        scope: Scope = Scope(),
        extra: tuple[tuple[str, str], ...] = (),
        each: Callable[[JsonObject], None] | None = None,
    ) -> int:
        """Read one list into the journal and return how many items it held; a tolerated
        failure becomes a gap.

        ``each`` is called for every item as its page arrives, so the lists that hang off
        an item start while later pages of this list are still on their way.
        """
        root = src.FAMILY_ROOTS.get(source.family)
        if root is not None and root != source.name:
            await self.family_checked[source.family].wait()
        if source.family in self.family_down:
            reason = self.family_down[source.family]
            self.gaps.append(Gap(source.name, scope, SKIPPED, reason, asked=False))
            return 0
        path = source.endpoint.format(**scope.path_args())
        self.calls[source.name] += 1
        place = (scope.project_id, scope.user_id, scope.group_id)
        done = self.journal.finished(source.name, place)
        entry = done or self.journal.start(source.name, place)
        self.lists[source.name][entry.id] = (scope, entry)
        read = 0  # what was read stays in the journal: a list cut short keeps its pages

        def on_page(page: list[JsonObject]) -> None:
            nonlocal read
            _check_items(source, path, page)
            if done is None:
                self.journal.add_page(entry, page)
            read += len(page)
            self._note(source, page)
            if each is not None:
                for item in page:
                    each(item)

        try:
            if done is not None:  # an earlier run of this pull read it: no request
                for page in self.journal.pages(done):
                    on_page(page)
            else:
                await self.client.read_pages(source.endpoint, path, extra, on_page)
                self.journal.finish(entry)
        except (ApiError, UnfinishedListError) as exc:
            gap = _tolerated_gap(source, scope, exc, read, self.strict)
            if gap is None:
                raise
            self.gaps.append(gap)
            self._skip_children(source, gap)
            if root == source.name:
                self.family_down[source.family] = (
                    f"the {source.family.value} family is unavailable: {gap.reason}"
                )
        finally:
            if root == source.name:
                self.family_checked[source.family].set()
        return read

    def _note(self, source: Source, page: list[JsonObject]) -> None:
        """Count a page's items, and keep the key ids that tell the admin-key list's
        project keys apart."""
        self.rows[source.name] += len(page)
        if source is src.ADMIN_API_KEYS:
            self.admin_key_ids.extend(str(item["id"]) for item in page)
        elif source is src.PROJECT_API_KEYS:
            self.project_key_ids.update(str(item["id"]) for item in page)

    def _skip_children(self, parent: Source, gap: Gap) -> None:
        """Record the lists that hang off an unread parent as not asked."""
        status = ARCHIVED if gap.status == ARCHIVED else SKIPPED
        for child in src.CHILDREN.get(parent.name, ()):
            reason = f"its parent list {parent.name} was not read: {gap.reason}"
            self.gaps.append(Gap(child.name, gap.scope, status, reason, asked=False))
            self._skip_children(child, gap)

    async def _organization_rbac(self) -> None:
        custom: list[bool] = []
        await self.fetch(src.ORG_ROLES, each=lambda role: custom.append(_custom(role)))
        self.org_custom_roles = any(custom)
        self.org_roles_known.set()

        def group_lists(group: JsonObject) -> None:
            scope = Scope(group_id=group["id"])
            self.spawn(self.fetch(src.GROUP_USERS, scope))
            self.spawn(self.fetch(src.GROUP_ORG_ROLES, scope))

        await self.fetch(src.GROUPS, each=group_lists)

    async def _users(self) -> None:
        await self.org_roles_known.wait()  # one request; it decides the fan-out below
        if self._org_assignments_follow_from_roles():
            if await self.fetch(src.USERS):
                gap = Gap(src.USER_ORG_ROLES.name, Scope(), DERIVED, _ORG_DERIVED_REASON, False)
                self.gaps.append(gap)
            return

        def user_roles(user: JsonObject) -> None:
            self.spawn(self.fetch(src.USER_ORG_ROLES, Scope(user_id=user["id"])))

        await self.fetch(src.USERS, each=user_roles)

    def _org_assignments_follow_from_roles(self) -> bool:
        """Whether per-user org role lists could hold nothing the user records do not say.

        True when the org's role list was read and defines no custom role, and every
        built-in role reports no permission list of its own: a user can then hold only a
        built-in org role, which their ``role`` field names, and its permissions come from
        the catalog either way. Asking per user would only repeat it.
        """
        if not self.derive or any(g.source == src.ORG_ROLES.name for g in self.gaps):
            return False  # asked not to, or the org's role list was not read
        return not self.org_custom_roles

    def _project_assignments_follow_from_roles(self, scope: Scope, custom_roles: bool) -> bool:
        """The same for one project's per-member role lists, from its own role list."""
        project_roles_read = not any(
            g.source == src.PROJECT_ROLES.name and g.scope == scope for g in self.gaps
        )
        return self.derive and project_roles_read and not custom_roles

    async def _projects(self) -> None:
        def project_lists(project: JsonObject) -> None:
            scope = Scope(
                project_id=project["id"],
                project_archived=project.get("status") == "archived"
                or project.get("archived_at") is not None,
            )
            self.spawn(self._project_members(scope))
            self.spawn(self._project_groups(scope))
            self.spawn(self.fetch(src.PROJECT_SERVICE_ACCOUNTS, scope))
            self.spawn(self.fetch(src.PROJECT_API_KEYS, scope))

        await self.fetch(src.PROJECTS, each=project_lists)

    async def _project_members(self, scope: Scope) -> None:
        members: list[str] = []
        custom: list[bool] = []
        await asyncio.gather(
            self.fetch(src.PROJECT_USERS, scope, each=lambda member: members.append(member["id"])),
            self.fetch(src.PROJECT_ROLES, scope, each=lambda role: custom.append(_custom(role))),
        )
        if members and self._project_assignments_follow_from_roles(scope, any(custom)):
            gap = Gap(src.PROJECT_USER_ROLES.name, scope, DERIVED, _PROJECT_DERIVED_REASON, False)
            self.gaps.append(gap)
            return
        for member in members:
            self.spawn(self.fetch(src.PROJECT_USER_ROLES, replace(scope, user_id=member)))

    async def _project_groups(self, scope: Scope) -> None:
        groups: list[str] = []
        await self.fetch(
            src.PROJECT_GROUPS, scope, each=lambda group: groups.append(group["group_id"])
        )
        for group_id in groups:
            self.spawn(self.fetch(src.PROJECT_GROUP_ROLES, replace(scope, group_id=group_id)))


def _scope_order(scope: Scope) -> tuple[str, str, str]:
    return (scope.project_id or "", scope.user_id or "", scope.group_id or "")


def _custom(role: JsonObject) -> bool:
    """A role a member list cannot stand for: anything but a plain built-in.

    Only ``predefined_role: true`` with no permission list of its own (absent, empty or
    a wildcard) is a plain built-in; any other shape, odd ones included, counts as custom,
    so the lists it could appear in are asked rather than assumed.
    """
    plain_permissions = role.get("permissions") in (None, [], ["*"])
    return not (role.get("predefined_role") is True and plain_permissions)


# Without these the snapshot means nothing: a failure reading them ends the pull.
_ESSENTIAL = (src.USERS.name, src.PROJECTS.name)


def _tolerated_gap(
    source: Source, scope: Scope, exc: ApiError | UnfinishedListError, read: int, strict: bool
) -> Gap | None:
    """The gap a failed list leaves, or None when the failure must stop the pull.

    A source the key may not read (or the org does not have) is unavailable; an archived
    project's list may answer 400. A list that cannot be finished (a server error or a
    timeout that outlasts the retries, a 400 or 404 on one list, paging that cannot be
    followed) keeps what it read and becomes a gap too, unless ``strict``, or unless it is
    the org's users or projects, or the key itself was refused.
    """
    status = exc.status if isinstance(exc, ApiError) else None
    missing = exc.missing_scopes if isinstance(exc, ApiError) else ()
    refused = status in (403, 404) or (status == 401 and bool(missing))
    if source.optional and refused:
        detail = f": missing {', '.join(missing)}" if missing else ""
        return Gap(source.name, scope, UNAVAILABLE, f"HTTP {status}{detail}")
    # Lists of archived projects answer 400 (spec: ListProjectUsers "project is archived").
    if scope.project_archived and status in (400, 403, 404):
        return Gap(source.name, scope, ARCHIVED, f"HTTP {status} for an archived project")
    unfinished = isinstance(exc, UnfinishedListError) or (
        type(exc) is ApiError and (status is None or status >= 500 or status in (400, 404))
    )
    if not unfinished or strict or source.name in _ESSENTIAL:
        return None
    return Gap(source.name, scope, UNAVAILABLE, f"not finished ({read} item(s) read): {exc}")


# The field every item of a source must carry, so rows can be joined at all.
_ID_FIELDS = {"project_groups": "group_id"}


def _check_items(source: Source, path: str, items: list[JsonObject]) -> None:
    id_field = _ID_FIELDS.get(source.name, "id")
    for item in items:
        if not isinstance(item.get(id_field), str) or not item[id_field]:
            raise MalformedResponseError(f"GET {path}: an item has no string '{id_field}'")
        if source is src.AUDIT_KEY_EVENTS and not isinstance(item.get("type"), str):
            raise MalformedResponseError(f"GET {path}: an audit-log event has no 'type'")


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to report from a task group: an orgaudit error if there is one."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    return next((exc for exc in leaves if isinstance(exc, OrgauditError)), leaves[0])
