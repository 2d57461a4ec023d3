"""One user across every project, summed up: where they can create keys, where they are a
member and cannot, where they are no member, and which projects are archived or cannot be
told about; then which verdicts are worth reading in detail.

On an org of 200 projects a user is a member of a few; the other verdicts all say the
same thing (their org role gives them no key rights there), so they are counted, not
shown, unless asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

from orgaudit.explain.records import Contested, ProjectRef, UserRef, UserVerdict
from orgaudit.vocabulary import Verdict


@dataclass(frozen=True)
class UserOverview:
    """A user's verdicts in every project, grouped, and those to show in detail."""

    user: UserRef
    allowed: tuple[ProjectRef, ...]  # through a role they hold there (or a group's)
    allowed_by_org_role: tuple[ProjectRef, ...]  # through their org role alone
    blocked: tuple[ProjectRef, ...]  # a member there (a role, or a group's), and cannot
    not_member: tuple[ProjectRef, ...]  # only their org role applies, and it does not grant
    archived: tuple[ProjectRef, ...]
    unknown: tuple[ProjectRef, ...]
    unknown_sources: tuple[str, ...]  # the lists whose absence makes those unknown
    contested: tuple[Contested, ...]  # each contested rule the denials rest on, once
    details: tuple[UserVerdict, ...]
    every: bool  # the details are every project's, not only the member projects'


def overview(verdicts: tuple[UserVerdict, ...], every: bool = False) -> UserOverview:
    """Group a user's verdicts (one per project, as ``explain_user`` gives them without a
    project) and pick those to show in detail: the projects where the user holds a role,
    or all of them with ``every``."""
    if not verdicts:
        raise ValueError("an overview needs the user's verdicts")  # explain_user gives some
    live = [v for v in verdicts if not v.archived]
    unknown = [v for v in live if v.decision == Verdict.UNKNOWN]
    denied = [v for v in live if v.decision == Verdict.DENIED]
    return UserOverview(
        user=verdicts[0].user,
        allowed=tuple(v.project for v in live if v.decision == Verdict.ALLOWED and v.in_project),
        allowed_by_org_role=tuple(
            v.project for v in live if v.decision == Verdict.ALLOWED and not v.in_project
        ),
        blocked=tuple(v.project for v in denied if v.in_project),
        not_member=tuple(v.project for v in denied if not v.in_project),
        archived=tuple(v.project for v in verdicts if v.archived),
        unknown=tuple(v.project for v in unknown),
        unknown_sources=tuple(dict.fromkeys(s for v in unknown for s in v.missing_sources)),
        contested=tuple(dict.fromkeys(c for v in denied for c in v.contested)),
        details=verdicts if every else tuple(v for v in verdicts if v.in_project),
        every=every,
    )
