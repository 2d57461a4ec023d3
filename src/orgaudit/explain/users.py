"""Whether a user may create their own API keys in a project, and why: the verdict of the
access model, every binding weighed, the deciding ones marked, and the fixes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pandas as pd

from orgaudit.explain.lookup import every_project, every_user, find_project, find_user, text_or
from orgaudit.explain.records import (
    Fix,
    Grant,
    ProjectRef,
    UserRef,
    UserVerdict,
    WeighedBinding,
    contested_notes,
    unique_fixes,
)
from orgaudit.model.access import AccessModel, levels_for_pairs, missing_binding_sources
from orgaudit.model.catalog import ORGANIZATION, Catalog
from orgaudit.model.provenance import binding_grants
from orgaudit.store.snapshot import Snapshot
from orgaudit.vocabulary import AccessLevel, Verdict


def explain_user(
    snapshot: Snapshot,
    model: AccessModel,
    catalog: Catalog,
    user: str,
    project: str | None = None,
) -> tuple[UserVerdict, ...]:
    """Whether a user may create their own keys, in one project or in each project."""
    found = find_user(snapshot, user)
    projects = (
        (find_project(snapshot, project),) if project is not None else every_project(snapshot)
    )
    return _explained(snapshot, model, catalog, [(found, p) for p in projects])


def explain_pairs(
    snapshot: Snapshot,
    model: AccessModel,
    catalog: Catalog,
    pairs: Sequence[tuple[str, str]],
    grants: pd.DataFrame | None = None,
) -> tuple[UserVerdict, ...]:
    """:func:`explain_user` for many (user id, project id) pairs at once, as a report
    needs it: the lookups each verdict shares are made once for all of them. ``grants``
    are the model's binding grants where the caller worked them out already (an
    audit's analysis); else those of the bindings weighed are worked out here."""
    users = {ref.id: ref for ref in every_user(snapshot)}
    projects = {ref.id: ref for ref in every_project(snapshot)}
    chosen = [(users[u], projects[p]) for u, p in pairs]
    return _explained(snapshot, model, catalog, chosen, grants)


def _explained(
    snapshot: Snapshot,
    model: AccessModel,
    catalog: Catalog,
    pairs: Sequence[tuple[UserRef, ProjectRef]],
    known_grants: pd.DataFrame | None = None,
) -> tuple[UserVerdict, ...]:
    if not pairs:  # an org with no projects, or no one to explain
        return ()
    # One lookup of the access rows for every pair, and each user's bindings picked out
    # once.
    frame = pd.DataFrame(
        {"principal_id": [u.id for u, _ in pairs], "project_id": [p.id for _, p in pairs]},
        dtype=object,
    )
    rows = {
        (str(r["principal_id"]), str(r["project_id"])): r
        for _, r in levels_for_pairs(model, frame).iterrows()
    }
    bindings = model.bindings
    wanted = bindings[bindings["principal_id"].isin(frame["principal_id"])]
    log_read = snapshot.source_status("audit_access_events") == "complete"
    if not log_read:
        grants: dict[object, Grant] = {}
    elif known_grants is not None:
        grants = _grants(known_grants.loc[wanted.index])
    else:
        grants = _grants(binding_grants(snapshot, wanted))
    since = f"{snapshot.audit_since:%Y-%m-%d}" if log_read else None
    by_user = {str(uid): group for uid, group in wanted.groupby("principal_id")}
    empty = bindings.head(0)
    verdicts = []
    for user, project in pairs:
        mine = by_user.get(user.id, empty)
        here = mine[(mine["scope"] == ORGANIZATION) | (mine["project_id"] == project.id)]
        row = rows[(user.id, project.id)]
        verdict = _user_in_project(snapshot, model, catalog, user, project, row, here)
        # The verdict's bindings are ``here``'s rows in order (then, for an archived
        # project, its status, which nobody granted).
        indexes = [*here.index, *[None] * (len(verdict.bindings) - len(here))]
        granted = tuple(
            replace(b, granted=None if i is None else grants.get(i))
            for b, i in zip(verdict.bindings, indexes, strict=True)
        )
        verdicts.append(replace(verdict, bindings=granted, grants_logged_since=since))
    return tuple(verdicts)


def _grants(frame: pd.DataFrame) -> dict[object, Grant]:
    """The grants the audit log names, by binding index."""
    found = frame[frame["grant_event"].notna()]
    return {
        index: Grant(
            event=str(row["grant_event"]),
            at=f"{row['granted_at']:%Y-%m-%d}",
            by=str(row["granted_by"]) if pd.notna(row["granted_by"]) else "(not named)",
            by_in_org=None if pd.isna(row["granter_in_org"]) else bool(row["granter_in_org"]),
            inferred=bool(row["grant_inferred"]),
        )
        for index, row in found.iterrows()
    }


def _user_in_project(
    snapshot: Snapshot,
    model: AccessModel,
    catalog: Catalog,
    user: UserRef,
    project: ProjectRef,
    row: pd.Series,
    weighed: pd.DataFrame,
) -> UserVerdict:
    permission = catalog.keys.create_own
    # The access model settled whether the project's status allows keys at all (rule
    # archived_projects_allow_no_keys); an archived project decides, whatever is unread.
    archived = bool(row["archived"])
    decision = Verdict.DENIED if archived else Verdict(row["verdict"])
    has_project_role = bool((weighed["scope"] != ORGANIZATION).any())
    rows = tuple(
        _weigh(b, model, catalog, decision, has_project_role, archived)
        for _, b in weighed.iterrows()
    )
    if archived:
        rule = catalog.rule("archived_projects_allow_no_keys")
        rows += (
            WeighedBinding(
                "project status",
                "archived",
                None,
                "project",
                False,
                True,
                "no keys can be created in an archived project",
                rule.evidence.level,
            ),
        )
    missing = (
        missing_binding_sources(snapshot, user.id, project.id)
        if decision == Verdict.UNKNOWN
        else ()
    )
    who, where = user.label, project.label
    summary = {
        Verdict.ALLOWED: f"{who} can create API keys in {where} ({row['level'].replace('_', ' ')})",
        Verdict.DENIED: f"{who} cannot create API keys in {where}",
        Verdict.UNKNOWN: f"cannot tell whether {who} can create API keys in {where}: "
        + (f"{', '.join(missing)} not read" if missing else "a role unknown to the catalog"),
    }[decision]
    contested = contested_notes(catalog, text_or(row["contested"]), text_or(row["verdict_other"]))
    return UserVerdict(
        decision=decision,
        permission=permission,
        level=AccessLevel(row["level"]),
        user=user,
        project=project,
        bindings=rows,
        fixes=_user_fixes(model, catalog, user, project, weighed, decision, archived, missing),
        missing_sources=missing,
        summary=summary,
        contested=() if archived else contested,
        in_project=has_project_role,
        archived=archived,
    )


def _weigh(
    binding: pd.Series,
    model: AccessModel,
    catalog: Catalog,
    decision: Verdict,
    has_project_role: bool,
    archived_here: bool,
) -> WeighedBinding:
    pset = model.permission_sets[str(binding["permission_key"])]
    conditional = bool(binding["conditional"])
    grants = bool(binding["grants_create"]) and not conditional
    if conditional:
        rule = catalog.rule("key_rights_need_project_role")
        note = "its rights on keys come from a project role" + (
            "" if has_project_role else "; the user has none in this project"
        )
        evidence = rule.evidence.level
    elif not pset.known:
        note, evidence = pset.source, pset.evidence
    else:
        level = (
            "manages all keys"
            if binding["grants_manage"]
            else "creates own keys"
            if binding["grants_create"]
            else "reads keys only"
            if binding["grants_read"]
            else "no rights on keys"
        )
        note, evidence = f"{level} ({pset.source})", pset.evidence
    if archived_here:
        deciding = False  # the project's status decides, whatever the roles say
    elif decision == Verdict.ALLOWED:
        deciding = grants
    else:  # what to change: the project's roles if any, else the org role
        deciding = (binding["scope"] != ORGANIZATION) if has_project_role else True
    via = binding["via_group_name"]
    return WeighedBinding(
        source=str(binding["kind"]),
        role=str(binding["role_name"]),
        via_group=None if pd.isna(via) else str(via),
        scope=str(binding["scope"]),
        grants=grants,
        deciding=bool(deciding),
        note=note,
        evidence=evidence,
    )


def _user_fixes(
    model: AccessModel,
    catalog: Catalog,
    user: UserRef,
    project: ProjectRef,
    weighed: pd.DataFrame,
    decision: Verdict,
    archived: bool,
    missing: tuple[str, ...],
) -> tuple[Fix, ...]:
    if decision == Verdict.ALLOWED:
        return ()
    who, where = user.label, project.label
    member = catalog.preset_for("project", "member")
    member_evidence = member.evidence.level if member else "inferred"
    if archived:
        rule = catalog.rule("archived_projects_allow_no_keys")
        return (Fix(f"{where} is archived: create keys in an active project", rule.evidence.level),)
    fixes: list[Fix] = []
    if missing:
        fixes.append(
            Fix(
                f"pull again with an admin key that can read {', '.join(missing)}, then ask again",
                "documented",
            )
        )
    project_rows = weighed[weighed["scope"] != ORGANIZATION]
    if project_rows.empty:
        fixes.append(
            Fix(f"add {who} to {where} as a member (Project settings > Members)", member_evidence)
        )
    for _, row in project_rows.iterrows():
        if row["grants_create"]:
            continue
        if not bool(row["known"]):
            fixes.append(
                Fix(
                    f"find out what the role {row['role_name']} that {who} holds in {where} "
                    "grants and describe it in the catalog (--catalog; see the "
                    f"unrecognized-value finding), or give {who} the member role in {where}",
                    "inferred",
                )
            )
        elif row["preset_id"] is not None and not pd.isna(row["preset_id"]):
            fixes.append(
                Fix(
                    f"change {who}'s role in {where} from {row['role_name']} to member",
                    member_evidence,
                )
            )
        elif pd.isna(row["via_group_name"]):
            fixes.append(
                Fix(
                    f"add {catalog.keys.create_own} to custom role '{row['role_name']}', "
                    f"or give {who} the member role in {where}",
                    catalog.keys.evidence.level,
                )
            )
    bindings = model.bindings
    granting_groups = sorted(
        set(
            bindings.loc[
                (bindings["project_id"] == project.id)
                & bindings["grants_create"]
                & bindings["via_group_name"].notna(),
                "via_group_name",
            ]
        )
    )
    if granting_groups:
        fixes.append(
            Fix(
                f"or add {who} to a group whose role in {where} grants it: "
                + ", ".join(granting_groups),
                catalog.keys.evidence.level,
            )
        )
    return unique_fixes(fixes)
