"""How completely a pull read each source: which failures are gaps and which end the
pull, each source's coverage, and the admin-key list's project keys left out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from orgaudit.collect import sources as src
from orgaudit.collect.records import (
    ARCHIVED,
    DERIVED,
    PROJECT_KEY_IN_ADMIN_LIST,
    SKIPPED,
    UNAVAILABLE,
    Anomaly,
    Gap,
    Scope,
    SourceCoverage,
)
from orgaudit.collect.sources import Source
from orgaudit.errors import ApiError, UnfinishedListError


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


def note_dropped(
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


# Without these the snapshot means nothing: a failure reading them ends the pull.
_ESSENTIAL = (src.USERS.name, src.PROJECTS.name)


def tolerated_gap(
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
