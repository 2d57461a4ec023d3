"""The presentation tables every report format writes: one source of truth for all four.

Built once per audit from the analysis and the findings; the writers only lay them out.
Times stay timezone-aware UTC datetimes here; each writer renders them its own way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from orgaudit import __version__
from orgaudit.checks.diff import SnapshotDiff
from orgaudit.checks.findings import SEVERITIES, Check, Finding
from orgaudit.model.access import ALLOWED, UNKNOWN, USER, keys_with_scopes, levels_for_pairs
from orgaudit.model.analysis import Analysis
from orgaudit.model.catalog import PROJECT
from orgaudit.store.snapshot import principal_names

# Past this many cells the access matrix is left out (the Memberships and Access review
# sheets hold the same facts in long form), so the workbook stays fast and small.
MATRIX_CELL_LIMIT = 250_000

FINDING_COLUMNS = {
    "severity": "Severity",
    "status": "Status",
    "check_id": "Check",
    "title": "Title",
    "subject_type": "Subject type",
    "subject_name": "Subject",
    "subject_id": "Subject id",
    "project_name": "Project",
    "project_id": "Project id",
    "message": "Message",
    "remediation": "Remediation",
    "evidence": "Evidence",
    "suppressed": "Suppressed",
    "suppression": "Suppression",
    "contested": "Contested rule",
}


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows, as plain tables."""

    meta: Mapping[str, Any]
    coverage: pd.DataFrame
    findings: pd.DataFrame
    checks: pd.DataFrame
    tables: Mapping[str, pd.DataFrame]
    matrix: pd.DataFrame | None
    matrix_reasons: pd.DataFrame | None
    matrix_note: str


def findings_frame(findings: tuple[Finding, ...]) -> pd.DataFrame:
    """Findings as a table, worst first, with the reports' column names."""
    frame = pd.DataFrame([asdict(f) for f in findings], columns=list(FINDING_COLUMNS))
    rank = frame["severity"].map({s: -i for i, s in enumerate(SEVERITIES)})
    ordered = frame.assign(_rank=rank).sort_values(
        ["_rank", "check_id", "project_name", "subject_name"], kind="stable", na_position="first"
    )
    return ordered.drop(columns=["_rank"]).rename(columns=FINDING_COLUMNS).reset_index(drop=True)


def build_report(
    analysis: Analysis,
    checks: tuple[Check, ...],
    findings: tuple[Finding, ...],
    changes: SnapshotDiff | None = None,
    extra: Mapping[str, pd.DataFrame] | None = None,
) -> ReportData:
    """The report's tables for one analyzed snapshot and its findings.

    ``changes`` (the diff from the previous snapshot) adds a *Changes* table; ``extra``
    adds further tables (saved queries) after the standard ones.
    """
    snapshot = analysis.snapshot
    frame = findings_frame(findings)
    meta = {
        "snapshot_id": snapshot.id,
        "as_of": snapshot.as_of,
        "audit_since": snapshot.audit_since,
        "catalog_version": analysis.catalog.version,
        "tool_version": __version__,
        "findings": len(findings),
        "findings_counted": sum(1 for f in findings if f.counts),
    }
    coverage = snapshot.coverage[["source", "status", "reason", "rows", "requests"]].rename(
        columns=str.capitalize
    )
    per_subject = _findings_per_subject(findings)
    matrix, reasons, note = _access_matrix(analysis)
    return ReportData(
        meta=meta,
        coverage=coverage,
        findings=frame,
        checks=pd.DataFrame(
            [(c.id, c.title, c.severity, c.flags, c.why, c.fix, c.evidence) for c in checks],
            columns=["Check", "Title", "Severity", "Flags", "Why", "Fix", "Evidence"],
        ),
        tables={
            "Users": _users(analysis, per_subject),
            "Projects": _projects(analysis),
            "Memberships": _memberships(analysis),
            "Roles & permissions": _roles(analysis),
            "Groups": _groups(analysis),
            "Service accounts": _service_accounts(analysis, per_subject),
            "API keys": _api_keys(analysis, per_subject),
            "Admin keys": _admin_keys(analysis, per_subject),
            "Invites": _invites(analysis, per_subject),
            "Access review": _access_review(analysis),
            **({} if changes is None else {"Changes": changes.to_frame()}),
            **(extra or {}),
        },
        matrix=matrix,
        matrix_reasons=reasons,
        matrix_note=note,
    )


def _findings_per_subject(findings: tuple[Finding, ...]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [(f.subject_id, f.check_id) for f in findings], columns=["subject_id", "check_id"]
    )
    return (
        frame.drop_duplicates()
        .sort_values("check_id")
        .groupby("subject_id")["check_id"]
        .agg(", ".join)
        .rename("Findings")
        .reset_index()
    )


def _with_findings(frame: pd.DataFrame, id_column: str, per_subject: pd.DataFrame) -> pd.DataFrame:
    merged = frame.merge(
        per_subject, left_on=id_column, right_on="subject_id", how="left", validate="many_to_one"
    ).drop(columns=["subject_id"])
    return merged.assign(Findings=merged["Findings"].fillna(""))


def _project_names(analysis: Analysis) -> pd.DataFrame:
    projects = analysis.snapshot["projects"]
    return projects[["id", "name"]].rename(columns={"id": "project_id", "name": "Project"})


def _users(analysis: Analysis, per_subject: pd.DataFrame) -> pd.DataFrame:
    snapshot = analysis.snapshot
    levels = analysis.model.levels
    users_levels = levels[levels["principal_type"] == USER]
    active = ~snapshot["projects"]["status"].eq("archived")
    active_count = int(active.sum())
    in_projects = users_levels[users_levels["project_id"].notna()]
    counts = (
        in_projects.assign(
            can_create=in_projects["verdict"] == ALLOWED,
            active=~in_projects["archived"].astype(bool),
        )
        .groupby("principal_id")
        .agg(
            projects=("project_id", "nunique"),
            can_create=("can_create", "sum"),
            active=("active", "sum"),
        )
        .reset_index()
    )
    # Org roles that allow keys everywhere (an org owner's) count in every other active project.
    everywhere = users_levels.loc[users_levels["project_id"].isna(), ["principal_id", "verdict"]]
    users = (
        snapshot["users"]
        .merge(counts, left_on="id", right_on="principal_id", how="left", validate="one_to_one")
        .drop(columns=["principal_id"])
        .merge(everywhere, left_on="id", right_on="principal_id", how="left", validate="one_to_one")
    )
    elsewhere_allowed = (users["verdict"] == ALLOWED).astype(int)
    can_create = users["can_create"].fillna(0) + elsewhere_allowed * (
        active_count - users["active"].fillna(0)
    )
    table = pd.DataFrame(
        {
            "User id": users["id"],
            "Email": users["email"],
            "Name": users["name"],
            "Org role": users["role"],
            "Added": users["added_at"],
            "Projects": users["projects"].fillna(0).astype(int),
            "Can create keys in": can_create.astype(int),
        }
    )
    return _with_findings(table, "User id", per_subject).sort_values("Email", kind="stable")


def _projects(analysis: Analysis) -> pd.DataFrame:
    snapshot = analysis.snapshot
    members = snapshot["project_users"].groupby("project_id").size().rename("Members")
    accounts = snapshot["project_service_accounts"].groupby("project_id").size().rename("SAs")
    keys = snapshot["project_api_keys"].groupby("project_id").size().rename("Keys")
    projects = snapshot["projects"].set_index("id")
    table = pd.DataFrame(
        {
            "Project id": projects.index,
            "Name": projects["name"].to_numpy(),
            "Status": projects["status"].to_numpy(),
            "Created": projects["created_at"].to_numpy(),
            "Archived": projects["archived_at"].to_numpy(),
            "Members": members.reindex(projects.index).fillna(0).astype(int).to_numpy(),
            "Service accounts": accounts.reindex(projects.index).fillna(0).astype(int).to_numpy(),
            "API keys": keys.reindex(projects.index).fillna(0).astype(int).to_numpy(),
        }
    )
    return table.sort_values("Name", kind="stable")


def _principal_names(analysis: Analysis) -> pd.DataFrame:
    return principal_names(analysis.snapshot).rename(columns={"name": "Principal"})


def _memberships(analysis: Analysis) -> pd.DataFrame:
    bindings = analysis.model.bindings
    table = bindings.merge(
        _principal_names(analysis), on="principal_id", how="left", validate="many_to_one"
    ).merge(_project_names(analysis), on="project_id", how="left", validate="many_to_one")
    out = pd.DataFrame(
        {
            "Principal": table["Principal"].fillna(table["principal_id"]),
            "Principal id": table["principal_id"],
            "Principal type": table["principal_type"],
            "Scope": table["scope"],
            "Project": table["Project"].where(table["scope"] == PROJECT, "(every project)"),
            "Project id": table["project_id"],
            "How": table["kind"],
            "Role": table["role_name"],
            "Via group": table["via_group_name"],
            "Grants key creation": table["grants_create"] & ~table["conditional"],
        }
    )
    return out.sort_values(["Principal", "Scope", "Project"], kind="stable")


def _roles(analysis: Analysis) -> pd.DataFrame:
    roles = analysis.snapshot["roles"].merge(
        _project_names(analysis), on="project_id", how="left", validate="many_to_one"
    )
    return pd.DataFrame(
        {
            "Defined in": roles["resource_type"],
            "Project": roles["Project"],
            "Role id": roles["id"],
            "Name": roles["name"],
            "Built-in": roles["predefined_role"].fillna(0).astype(bool),
            "Permissions": roles["permissions"].fillna("[]"),
            "Description": roles["description"],
        }
    ).sort_values(["Defined in", "Project", "Name"], kind="stable")


def _groups(analysis: Analysis) -> pd.DataFrame:
    snapshot = analysis.snapshot
    members = snapshot["group_users"]
    member_list = (
        members.assign(who=members["email"].fillna(members["user_id"]))
        .sort_values("who")
        .groupby("group_id")["who"]
        .agg(", ".join)
    )
    projects = snapshot["project_groups"].merge(
        _project_names(analysis), on="project_id", how="left", validate="many_to_one"
    )
    project_list = projects.sort_values("Project").groupby("group_id")["Project"].agg(", ".join)
    groups = snapshot["groups"].set_index("id")
    return pd.DataFrame(
        {
            "Group id": groups.index,
            "Name": groups["name"].to_numpy(),
            "Type": groups["group_type"].to_numpy(),
            "SCIM managed": groups["is_scim_managed"].fillna(0).astype(bool).to_numpy(),
            "Members": member_list.reindex(groups.index).fillna("").to_numpy(),
            "Projects": project_list.reindex(groups.index).fillna("").to_numpy(),
        }
    ).sort_values("Name", kind="stable")


def _service_accounts(analysis: Analysis, per_subject: pd.DataFrame) -> pd.DataFrame:
    accounts = analysis.snapshot["project_service_accounts"].merge(
        _project_names(analysis), on="project_id", how="left", validate="many_to_one"
    )
    table = pd.DataFrame(
        {
            "Project": accounts["Project"],
            "Service account id": accounts["id"],
            "Name": accounts["name"],
            "Role": accounts["role"],
            "Created": accounts["created_at"],
        }
    )
    return _with_findings(table, "Service account id", per_subject).sort_values(
        ["Project", "Name"], kind="stable"
    )


def _api_keys(analysis: Analysis, per_subject: pd.DataFrame) -> pd.DataFrame:
    snapshot = analysis.snapshot
    keys = keys_with_scopes(snapshot).merge(
        _project_names(analysis), on="project_id", how="left", validate="many_to_one"
    )
    table = pd.DataFrame(
        {
            "Project": keys["Project"],
            "Key id": keys["id"],
            "Name": keys["name"],
            "Redacted": keys["redacted_value"],
            "Owner": keys["owner_email"].fillna(keys["owner_name"]).fillna(keys["owner_id"]),
            "Owner type": keys["owner_type"],
            "Owner access": keys["owner_project_access"],
            "Scopes": keys["scopes"].fillna("(not recorded)"),
            "Created": keys["created_at"],
            "Expires": keys["expires_at"],
            "Last used": keys["last_used_at"],
        }
    )
    return _with_findings(table, "Key id", per_subject).sort_values(
        ["Project", "Name"], kind="stable"
    )


def _admin_keys(analysis: Analysis, per_subject: pd.DataFrame) -> pd.DataFrame:
    keys = analysis.snapshot["admin_api_keys"]
    table = pd.DataFrame(
        {
            "Key id": keys["id"],
            "Name": keys["name"],
            "Redacted": keys["redacted_value"],
            "Owner": keys["owner_name"].fillna(keys["owner_id"]),
            "Created": keys["created_at"],
            "Expires": keys["expires_at"],
            "Last used": keys["last_used_at"],
        }
    )
    return _with_findings(table, "Key id", per_subject).sort_values("Name", kind="stable")


def _invites(analysis: Analysis, per_subject: pd.DataFrame) -> pd.DataFrame:
    invites = analysis.snapshot["invites"]
    table = pd.DataFrame(
        {
            "Invite id": invites["id"],
            "Email": invites["email"],
            "Role": invites["role"],
            "Status": invites["status"],
            "Sent": invites["created_at"],
            "Expires": invites["expires_at"],
            "Projects": invites["projects"].fillna("[]"),
        }
    )
    return _with_findings(table, "Invite id", per_subject).sort_values("Email", kind="stable")


def _project_roles(analysis: Analysis) -> pd.DataFrame:
    """Per (user, project) with a project role: the roles held there, and how."""
    bindings = analysis.model.bindings
    project = bindings[(bindings["scope"] == PROJECT) & (bindings["principal_type"] == USER)]
    via = (" (via " + project["via_group_name"] + ")").fillna("")
    how = project["role_name"].astype(str) + via
    return (
        project.assign(how=how)
        .sort_values("how")
        .groupby(["principal_id", "project_id"])["how"]
        .agg(", ".join)
        .rename("Roles")
        .reset_index()
    )


def _access_review(analysis: Analysis) -> pd.DataFrame:
    levels = analysis.model.levels
    pairs = levels[levels["project_id"].notna() & (levels["principal_type"] == USER)]
    table = (
        pairs.merge(
            _project_roles(analysis),
            on=["principal_id", "project_id"],
            how="left",
            validate="one_to_one",
        )
        .merge(_principal_names(analysis), on="principal_id", how="left", validate="many_to_one")
        .merge(_project_names(analysis), on="project_id", how="left", validate="many_to_one")
    )
    review = pd.DataFrame(
        {
            "User": table["Principal"].fillna(table["principal_id"]),
            "User id": table["principal_id"],
            "Project": table["Project"],
            "Project id": table["project_id"],
            "Roles": table["Roles"].fillna(""),
            "Key access": table["level"],
            "Can create keys": table["verdict"],
            # A verdict resting on a contested catalog rule, and its other reading's answer.
            "Contested rule": table["contested"],
            "Under the other reading": table["verdict_other"].where(table["contested"] != "", ""),
            "Decision": "",
            "Reviewer": "",
            "Comment": "",
        }
    )
    return pd.concat([review, _org_wide_review(analysis)], ignore_index=True).sort_values(
        ["User", "Project"], kind="stable"
    )


def _org_wide_review(analysis: Analysis) -> pd.DataFrame:
    """One review row per user whose org roles alone allow keys in every project."""
    levels = analysis.model.levels
    allowed = levels[
        levels["project_id"].isna()
        & (levels["principal_type"] == USER)
        & (levels["verdict"] == ALLOWED)
    ]
    bindings = analysis.model.bindings
    granting = bindings[
        (bindings["scope"] != PROJECT) & bindings["grants_create"] & ~bindings["conditional"]
    ]
    via = (" (via " + granting["via_group_name"] + ")").fillna("")
    roles = (
        granting.assign(role="org " + granting["role_name"].astype(str) + via)
        .groupby("principal_id")["role"]
        .agg(", ".join)
        .rename("Roles")
        .reset_index()
    )
    table = allowed.merge(roles, on="principal_id", how="left", validate="one_to_one").merge(
        _principal_names(analysis), on="principal_id", how="left", validate="many_to_one"
    )
    return pd.DataFrame(
        {
            "User": table["Principal"].fillna(table["principal_id"]),
            "User id": table["principal_id"],
            "Project": "(every project)",
            "Project id": "",
            "Roles": table["Roles"].fillna(""),
            "Key access": table["level"],
            "Can create keys": table["verdict"],
            # A verdict resting on a contested catalog rule, and its other reading's answer.
            "Contested rule": table["contested"],
            "Under the other reading": table["verdict_other"].where(table["contested"] != "", ""),
            "Decision": "",
            "Reviewer": "",
            "Comment": "",
        }
    )


def _access_matrix(analysis: Analysis) -> tuple[pd.DataFrame | None, pd.DataFrame | None, str]:
    """Users down, projects across: the user's roles there and whether they may create keys.

    Cells where the user holds no project role show what their org role gives them there.
    """
    snapshot = analysis.snapshot
    users = snapshot["users"]
    projects = snapshot["projects"]
    cells = len(users) * len(projects)
    if cells > MATRIX_CELL_LIMIT:
        return (
            None,
            None,
            (
                f"left out: {len(users)} users x {len(projects)} projects is more than "
                f"{MATRIX_CELL_LIMIT:,} cells; the Access review sheet has the same facts"
            ),
        )
    grid = pd.MultiIndex.from_product(
        [users["id"], projects["id"]], names=["principal_id", "project_id"]
    ).to_frame(index=False)
    full = levels_for_pairs(analysis.model, grid).merge(
        _project_roles(analysis),
        on=["principal_id", "project_id"],
        how="left",
        validate="one_to_one",
    )
    verdict = full["verdict"]
    mark = verdict.map({ALLOWED: "can create keys", "denied": "cannot", UNKNOWN: "unknown"})
    contested = full["contested"].fillna("").astype(str) != ""
    text = (
        full["Roles"].fillna("(org role only)")
        + ": "
        + mark.where(~contested, mark + " (contested)")
    )
    explain = (
        "; see `orgaudit explain user "
        + full["principal_id"]
        + " --project "
        + full["project_id"]
        + "`"
    )
    reason = (
        ("key access " + full["level"] + explain)
        .where(~full["archived"].astype(bool), "the project is archived: no keys can be created")
        .where(verdict != ALLOWED, "")
    )
    reason = reason.where(
        ~contested,
        (reason + "; ").where(reason != "", "")
        + "contested: rests on rule "
        + full["contested"].astype(str)
        + "; under its other reading: "
        + full["verdict_other"].astype(str),
    )
    user_labels = _unique_labels(users["id"], users["email"].fillna(users["name"]))
    project_labels = _unique_labels(projects["id"], projects["name"])

    def shape(values: pd.Series) -> pd.DataFrame:
        table = full.assign(value=values).pivot(
            index="principal_id", columns="project_id", values="value"
        )
        table = table.reindex(index=users["id"], columns=projects["id"])
        table.index = pd.Index(user_labels, name="User")
        table.columns = pd.Index(project_labels, name="Project")
        return table

    return shape(text), shape(reason), ""


def _unique_labels(ids: pd.Series, names: pd.Series) -> list[str]:
    """A header per row: its name, or its id where the name is missing or not unique.

    Two projects may share a name; a matrix whose headers repeat cannot be read (nor
    written: a header names one column).
    """
    labels = names.astype("string").fillna(ids.astype("string"))
    suffix = " (" + ids.astype("string") + ")"
    # A name may itself read "name (id)" of another row: add ids until the labels differ.
    while labels.duplicated().any():
        labels = labels.where(~labels.duplicated(keep=False), labels + suffix)
    return [str(label) for label in labels]
