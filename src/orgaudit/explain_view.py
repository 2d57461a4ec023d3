"""Text forms of the explanations, for the terminal (JSON comes from ``to_dict``)."""

from __future__ import annotations

from orgaudit.explain import ErrorExplanation, Fix, KeyVerdict, ScopesPlan, UserVerdict

_MARK = {"allowed": "ALLOWED", "denied": "DENIED", "unknown": "UNKNOWN"}


def _fixes(title: str, fixes: tuple[Fix, ...]) -> list[str]:
    if not fixes:
        return []
    return [title, *(f"  - {fix.action}  [{fix.evidence}]" for fix in fixes)]


def user_text(verdicts: tuple[UserVerdict, ...]) -> str:
    """One block per (user, project): verdict, bindings weighed, fixes."""
    blocks = []
    for v in verdicts:
        lines = [
            f"{_MARK[v.decision]}: {v.summary}",
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
        if v.missing_sources:
            lines.append(f"not read in this snapshot: {', '.join(v.missing_sources)}")
        lines += _fixes("to change it:", v.fixes)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def key_text(v: KeyVerdict) -> str:
    """A key's owner, scopes, the endpoint check and what to change."""
    owner = v.owner["email"] or v.owner["name"] or v.owner["id"] or "(no owner named)"
    if v.scopes is None:
        scopes = f"unknown ({v.scopes_note})"
    else:
        scopes = f"{v.scopes_kind}: {', '.join(v.scopes) or '(none listed)'} ({v.scopes_note})"
    lines = [
        f"{_MARK[v.decision]}: {v.summary}",
        f"key: {v.key['name']} ({v.key['id']}) in {v.key['project']}; "
        f"owner access to the project: {v.key['owner_project_access']}",
        f"owner: {owner} ({v.owner['type']}); the owner's access to keys there: {v.owner['level']}",
        f"scopes: {scopes}",
    ]
    if v.endpoint:
        lines.append(f"endpoint: {v.endpoint} needs {', '.join(v.required)}")
    if v.missing_in_key:
        lines.append(f"missing from the key: {', '.join(v.missing_in_key)}")
    if v.missing_in_owner:
        lines.append(f"not granted by the owner's roles: {', '.join(v.missing_in_owner)}")
    lines += _fixes("to change it:", v.advice)
    return "\n".join(lines)


def error_text(e: ErrorExplanation) -> str:
    """Where each missing scope comes from, and the checks to make."""
    lines = [f"the error names {len(e.scopes)} missing scope(s): {', '.join(e.scopes)}"]
    for a in e.advice:
        lines.append(f"- {a.scope}  [{a.evidence}]")
        lines.append(f"    dashboard (restricted key): {' or '.join(a.dashboard) or 'unknown'}")
        lines.append(f"    role permission area: {', '.join(a.areas) or 'unknown'}")
        lines.append(f"    built-in roles granting it: {', '.join(a.roles) or 'none known'}")
    lines.append("checks:")
    lines += [f"  - {check}" for check in e.checks]
    if e.key is not None:
        lines += ["", key_text(e.key)]
    if e.user is not None:
        lacking = ", ".join(e.user["lacking"]) or "nothing"
        lines += [
            "",
            f"{_MARK[e.user['decision']]}: {e.user['user']} in {e.user['project']} "
            f"lacks: {lacking}",
        ]
    return "\n".join(lines)


def scopes_text(plan: ScopesPlan) -> str:
    """The least dashboard settings and scopes for a set of endpoints."""
    lines = [
        f"least privilege for: {', '.join(plan.endpoints)}",
        "dashboard settings (restricted key):",
        *(f"  - {setting}" for setting in plan.settings),
        f"  - leave at None: {', '.join(plan.leave_at_none) or 'nothing else'}",
        f"scopes: {', '.join(plan.scopes)}",
        f"project roles that can own such a key: {', '.join(plan.roles) or 'none known'}",
        "evidence:",
        *(f"  - {line}" for line in plan.evidence),
    ]
    return "\n".join(lines)
