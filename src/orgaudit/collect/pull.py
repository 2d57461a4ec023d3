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
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from orgaudit.collect import sources as src
from orgaudit.collect.answers import JsonObject
from orgaudit.collect.client import AdminClient
from orgaudit.collect.coverage import (
    note_dropped,
    project_keys_in_admin_list,
    summarize_coverage,
    tolerated_gap,
)
from orgaudit.collect.journal import BATCH_BYTES, Journal, JournaledList
from orgaudit.collect.pacing import QUIET, Progress
from orgaudit.collect.records import (
    ARCHIVED,
    DERIVED,
    NO_USAGE_REASON,
    SKIPPED,
    WHOLE_ORG,
    Collected,
    Gap,
    Scope,
)
from orgaudit.collect.sources import Family, Source
from orgaudit.errors import (
    ApiError,
    MalformedResponseError,
    OrgauditError,
    UnfinishedListError,
)
from orgaudit.settings import AdminKey, ClientSettings, PullSettings

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


def usage_window_start(started_at: datetime, usage_days: int) -> datetime | None:
    """Where the usage window starts: midnight UTC ``usage_days`` days before the pull,
    so every bucket is a whole UTC day (the Usage API's 1d buckets); None for 0 days."""
    if usage_days == 0:
        return None
    day = (started_at - timedelta(days=usage_days)).date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


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
    usage_since = usage_window_start(journal.started_at, pull_settings.usage_days)
    try:
        async with AdminClient(key, client_settings, progress=progress) as client:
            collector = _Collector(
                client,
                audit_since,
                usage_since,
                pull_settings.derive_role_lists,
                pull_settings.strict,
                journal,
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
        usage_since=usage_since,
        items=collector.journaled_items,
        gaps=gaps,
        coverage=tuple(note_dropped(c, dropped, gaps) for c in coverage),
        requests=client.stats.requests,
        retries=client.stats.retries,
        throttled=client.stats.throttled,
        anomalies=dropped,
    )


class _Collector:
    """The mutable working state of one pull; lives only inside :func:`collect`.

    It keeps no items: pages go to the journal as they arrive, and only what the fan-out
    and the coverage need (ids, counts, flags) stays in memory.
    """

    def __init__(
        self,
        client: AdminClient,
        audit_since: datetime,
        usage_since: datetime | None,
        derive: bool,
        strict: bool,
        journal: Journal,
    ) -> None:
        self.client = client
        self.audit_since = audit_since
        self.usage_since = usage_since
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
        self.projects_read = asyncio.Event()
        self.key_lists: list[asyncio.Task[int]] = []
        self._group: asyncio.TaskGroup | None = None

    def spawn(self, coroutine: Coroutine[Any, Any, object]) -> None:
        assert self._group is not None
        self._group.create_task(coroutine)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            since = (("effective_at[gte]", str(int(self.audit_since.timestamp()))),)
            self.spawn(self.fetch(src.INVITES))
            self.spawn(self.fetch(src.ADMIN_API_KEYS))
            self.spawn(self.fetch(src.AUDIT_KEY_EVENTS, extra=since))
            self.spawn(self.fetch(src.AUDIT_ACCESS_EVENTS, extra=since))
            self.spawn(self._usage())
            self.spawn(self._organization_rbac())
            self.spawn(self._users())
            self.spawn(self._projects())

    async def _usage(self) -> None:
        """The Usage and Costs lists over the usage window (none with --usage-days 0)."""
        if self.usage_since is None:
            for source in (src.COSTS, *src.USAGE_SOURCES):
                gap = Gap(source.name, WHOLE_ORG, SKIPPED, NO_USAGE_REASON, asked=False)
                self.gaps.append(gap)
            return
        # A page's size follows the org's keys (sources.usage_days_per_page): counted once
        # every project's key list is read.
        await self.projects_read.wait()
        await asyncio.gather(*self.key_lists)
        days = src.usage_days_per_page(self.rows[src.PROJECT_API_KEYS.name])
        start = (("start_time", str(int(self.usage_since.timestamp()))),)
        costs = src.with_page_days(src.COSTS, days)
        await self.fetch(costs, extra=start)  # the family's root: asked first
        usage = [src.with_page_days(source, days) for source in src.USAGE_SOURCES]
        await asyncio.gather(*(self.fetch(source, extra=start) for source in usage))

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
        scope: Scope = WHOLE_ORG,
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
            if root == source.name:  # the family answers: its other lists may start
                self.family_checked[source.family].set()
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
            gap = tolerated_gap(source, scope, exc, read, self.strict)
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
                gap = Gap(src.USER_ORG_ROLES.name, WHOLE_ORG, DERIVED, _ORG_DERIVED_REASON, False)
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
            assert self._group is not None
            self.key_lists.append(self._group.create_task(self.fetch(src.PROJECT_API_KEYS, scope)))

        try:
            await self.fetch(src.PROJECTS, each=project_lists)
        finally:
            self.projects_read.set()

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


# The field every item of a source must carry, so rows can be joined at all.
_ID_FIELDS = {"project_groups": "group_id"}


def _check_items(source: Source, path: str, items: list[JsonObject]) -> None:
    if source.family is Family.USAGE:  # results have no id; each says what it counts
        if not all(isinstance(item.get("object"), str) for item in items):
            raise MalformedResponseError(f"GET {path}: a usage result has no 'object'")
        return
    id_field = _ID_FIELDS.get(source.name, "id")
    for item in items:
        if not isinstance(item.get(id_field), str) or not item[id_field]:
            raise MalformedResponseError(f"GET {path}: an item has no string '{id_field}'")
        if source.family is Family.AUDIT_LOGS and not isinstance(item.get("type"), str):
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
