"""Text forms of the explanations, for the terminal (JSON comes from ``to_dict``)."""

from __future__ import annotations

from datetime import datetime

from orgaudit.explain import (
    Contested,
    ErrorExplanation,
    Fix,
    KeyVerdict,
    ScopesPlan,
    UserVerdict,
)
from orgaudit.explain.leaked import LeakTrace
from orgaudit.explain.overview import overview
from orgaudit.explain.records import ProjectRef, WeighedBinding
from orgaudit.render.terminal import lines_text
from orgaudit.vocabulary import Verdict

_MARK = {verdict: verdict.value.upper() for verdict in Verdict}
_NAMED_AT_MOST = 10  # projects named in one line of the overview; the rest are counted


def _projects(projects: tuple[ProjectRef, ...]) -> str:
    named = ", ".join(p.label for p in projects[:_NAMED_AT_MOST])
    rest = len(projects) - _NAMED_AT_MOST
    return named + (f" and {rest} more" if rest > 0 else "")


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def user_overview_text(verdicts: tuple[UserVerdict, ...], every: bool = False) -> str:
    """A user in every project: first where they can and cannot create keys, grouped,
    then the verdicts in detail where they hold a role (``every``: in every project)."""
    if not verdicts:
        return "the snapshot holds no project: there is nowhere to create keys"
    o = overview(verdicts, every)
    who = o.user.label
    lines = [f"{who}, in the {_count(len(verdicts), 'project')} of the snapshot:"]
    if o.allowed:
        lines.append(f"  can create API keys in {_projects(o.allowed)}")
    if o.allowed_by_org_role:
        lines.append(
            f"  can create API keys through their org role alone in "
            f"{_count(len(o.allowed_by_org_role), 'project')}: {_projects(o.allowed_by_org_role)}"
        )
    if o.blocked:
        lines.append(
            f"  blocked in {_projects(o.blocked)} (a member there, but their roles there do "
            "not let them create keys)"
        )
    if o.not_member:
        lines.append(
            f"  not a member of {_count(len(o.not_member), 'project')} (their org role gives "
            f"no key rights there): {_projects(o.not_member)}"
        )
    if o.archived:
        lines.append(f"  {len(o.archived)} archived (no keys there): {_projects(o.archived)}")
    if o.unknown:
        why = (
            f"{', '.join(o.unknown_sources)} not read"
            if o.unknown_sources
            else "a role unknown to the catalog"
        )
        lines.append(f"  cannot tell in {_projects(o.unknown)} ({why})")
    lines += [
        f"  contested: denials here rest on rule {note.rule}; under its other reading: "
        f"{note.decision_if_other} (--project P says more)"
        for note in o.contested
    ]
    shown_here = len(o.details)
    if o.every:
        lines.append("details for every project:")
    elif shown_here:
        lines.append(
            f"details for the {_count(shown_here, 'project')} where {who} holds a role "
            "(--all: every project; --project P: one):"
        )
    else:
        lines.append(
            f"{who} holds a role in no project, so there are no details to show (--all: "
            "every project's verdict; --project P: one)"
        )
    text = lines_text(lines)
    return text + ("\n\n" + user_text(o.details) if o.details else "")


def _fixes(title: str, fixes: tuple[Fix, ...], indent: str = "  ") -> list[str]:
    if not fixes:
        return []
    return [title, *(f"{indent}- {fix.action}  [{fix.evidence}]" for fix in fixes)]


def _contested(notes: tuple[Contested, ...]) -> list[str]:
    return [f"{note.text}  [{note.evidence}]" for note in notes]


def _granted(binding: WeighedBinding, since: str | None) -> str:
    """Who granted a binding, in words, as far as the audit log tells."""
    grant = binding.granted
    if since is None:
        return "granted by: unknown (the audit log's access changes were not read)"
    if grant is None:
        return f"granted by: unknown (no event that made it in the audit log since {since})"
    held = "to the group " if binding.via_group else ""
    gone = {False: ", who is no longer in the organization", True: "", None: ""}[grant.by_in_org]
    how = " (matched by place: the event names no role)" if grant.inferred else ""
    return f"granted {held}by {grant.by} on {grant.at} ({grant.event}){gone}{how}"


def user_text(verdicts: tuple[UserVerdict, ...]) -> str:
    """One block per (user, project): verdict, bindings weighed, fixes."""
    blocks = []
    for v in verdicts:
        lines = [
            f"{_MARK[v.decision]}: {v.summary}",
            *_contested(v.contested),
            f"permission checked: {v.permission} (create their own keys in the project)",
            "bindings weighed (> marks the deciding ones):",
        ]
        if not v.bindings:
            lines.append("    (none: the user holds no role that applies here)")
        for b in v.bindings:
            via = f" via group '{b.via_group}'" if b.via_group else ""
            grants = "grants" if b.grants else "does not grant"
            mark = ">" if b.deciding else " "
            lines.append(
                f"  {mark} {b.source}: {b.role}{via} ({b.scope}) {grants}; {b.note}  [{b.evidence}]"
            )
            if b.source != "project status":
                lines.append(f"      {_granted(b, v.grants_logged_since)}")
        if v.missing_sources:
            lines.append(f"not read in this snapshot: {', '.join(v.missing_sources)}")
        lines += _fixes("to change it:", v.fixes)
        blocks.append(lines_text(lines))
    return "\n\n".join(blocks)


def key_text(v: KeyVerdict) -> str:
    """A key's owner, scopes, the endpoint check and what to change."""
    return lines_text(_key_lines(v))


def _key_lines(v: KeyVerdict) -> list[str]:
    owner = v.owner.email or v.owner.name or v.owner.id or "(no owner named)"
    if v.scopes is None:
        scopes = f"unknown ({v.scopes_note})"
    else:
        scopes = f"{v.scopes_kind}: {', '.join(v.scopes) or '(none listed)'} ({v.scopes_note})"
    lines = [
        f"{_MARK[v.decision]}: {v.summary}",
        *_contested(v.contested),
        f"key: {v.key.name} ({v.key.id}) in {v.key.project}; "
        f"owner access to the project: {v.key.owner_project_access}",
        f"owner: {owner} ({v.owner.type}); the owner's access to keys there: {v.owner.level}",
        f"scopes: {scopes}",
    ]
    for check in v.checks:
        if not (check.required or check.note):  # nothing to weigh: the scopes are unknown
            continue
        needs = ", ".join(check.required) or "unknown"
        gaps = [f"missing from the key: {', '.join(check.missing_in_key)}"] * bool(
            check.missing_in_key
        )
        gaps += [f"not granted by the owner: {', '.join(check.missing_in_owner)}"] * bool(
            check.missing_in_owner
        )
        said = "; ".join(filter(None, [*gaps, check.note])) or "nothing missing"
        lines.append(f"  {_MARK[check.decision]} {check.target} ({needs}): {said}")
    if v.missing_in_key:
        lines.append(f"missing from the key: {', '.join(v.missing_in_key)}")
    if v.missing_in_owner:
        lines.append(f"not granted by the owner's roles: {', '.join(v.missing_in_owner)}")
    lines += _fixes("to change it:", v.fixes)
    return lines


def error_text(e: ErrorExplanation) -> str:
    """Where each missing scope comes from, and the checks to make."""
    lines = [f"the error names {len(e.scopes)} missing scope(s): {', '.join(e.scopes)}"]
    for a in e.scope_sources:
        lines.append(f"- {a.scope}  [{a.evidence}]")
        lines.append(f"    dashboard (restricted key): {' or '.join(a.dashboard) or 'unknown'}")
        lines.append(f"    role permission area: {', '.join(a.areas) or 'unknown'}")
        lines.append(
            f"    built-in roles whose keys it lets through: {', '.join(a.roles) or 'none known'}"
        )
        lines += [
            f"    under the other reading of rule {c.rule}: {c.decision_if_other}"
            for c in a.contested
        ]
    notes = {c.rule: c for a in e.scope_sources for c in a.contested}
    lines += _contested(tuple(notes.values()))
    lines.append("checks:")
    lines += [f"  - {check}" for check in e.checks]
    if e.key is not None:
        lines += ["", *_key_lines(e.key)]
    if e.user is not None:
        lacking = ", ".join(e.user.lacking) or "nothing"
        lines += [
            "",
            f"{_MARK[e.user.decision]}: {e.user.user} in {e.user.project} lacks: {lacking}",
            *(
                f"contested: rests on rule {c.rule}; under its other reading "
                f"({c.other_reading}): {c.decision_if_other}"
                for c in e.user.contested
            ),
        ]
        for gap in e.user.gaps:
            lines += [
                f"- {gap.scope}",
                f"    why: {gap.why}",
                *_fixes("    to change it:", gap.fixes, indent="      "),
            ]
    return lines_text(lines)


def scopes_text(plan: ScopesPlan) -> str:
    """The least dashboard settings and scopes for a set of endpoints."""
    lines = [
        f"least privilege for: {', '.join(plan.endpoints)}",
        "dashboard settings (restricted key):",
        *(f"  - {setting}" for setting in plan.settings),
        f"  - leave at None: {', '.join(plan.leave_at_none) or 'nothing else'}",
        *(f"  ! {conflict}" for conflict in plan.conflicts),
        f"scopes: {', '.join(plan.scopes)}",
        *(f"unknown: {line}" for line in plan.unknown),
        "roles whose holder's keys may make these requests: "
        + (", ".join(plan.roles) or "none known"),
        *_contested(plan.contested),
        "evidence:",
        *(f"  - {line}" for line in plan.evidence),
    ]
    return lines_text(lines)


def leak_text(trace: LeakTrace) -> str:
    """Which keys a leaked value fits: whose, where, last use, reach, how to revoke."""
    said = _LEAK_MARK[trace.decision]
    if not trace.matches:
        said = "CANNOT TELL" if trace.not_compared else "NOT FOUND"
    lines = [f"{said}: {trace.summary}"]
    for match in trace.matches:
        owner = match.owner["email"] or match.owner["name"] or match.owner["id"] or "(no owner)"
        kind = "admin key" if match.type == "admin_key" else "API key"
        lines += [
            "",
            f"{kind} {match.name} ({match.id}), shown as {match.redacted_value}",
            f"  where: {match.project}" + (f" ({match.project_id})" if match.project_id else ""),
            f"  owner: {owner} ({match.owner['type']})",
            f"  created {_when(match.created_at)}; last used {_when(match.last_used_at)}; "
            f"expires {_when(match.expires_at, 'never')}",
            f"  can it still be used: {match.usable}: {match.reach}",
            f"  spend: {match.spend}",
            "  revoke it:",
            *(f"    {step}" for step in match.revoke),
        ]
        if match.verdict is not None:
            lines += [
                "  what it can reach:",
                *(f"    {line}" for line in _key_lines(match.verdict)),
            ]
    return lines_text(lines)


_LEAK_MARK = {
    Verdict.ALLOWED: "LIVE: revoke it now",
    Verdict.DENIED: "no longer usable",
    Verdict.UNKNOWN: "may still be usable: revoke it",
}


def _when(moment: datetime | None, missing: str = "never") -> str:
    return missing if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"
