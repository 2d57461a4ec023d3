"""The report's tables of the org's entities: users, projects, memberships, roles, groups,
service accounts, API keys, admin keys and invites, each with its findings counted."""

from __future__ import annotations

import json

import pandas as pd

from orgaudit.checks.findings import Finding
from orgaudit.model.analysis import Analysis
from orgaudit.model.bindings import USER
from orgaudit.model.catalog import PROJECT
from orgaudit.vocabulary import ScopeKind, Verdict


def findings_per_subject(findings: tuple[Finding, ...]) -> pd.DataFrame:
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


def project_name_table(analysis: Analysis) -> pd.DataFrame:
    projects = analysis.projects
    return projects[["project_id", "project_name"]].rename(columns={"project_name": "Project"})


def users_table(analysis: Analysis, per_subject: pd.DataFrame) -> pd.DataFrame:
    snapshot = analysis.snapshot
    levels = analysis.model.levels
    users_levels = levels[levels["principal_type"] == USER]
    active = ~snapshot["projects"]["status"].eq("archived")
    active_count = int(active.sum())
    in_projects = users_levels[users_levels["project_id"].notna()]
    counts = (
        in_projects.assign(
            can_create=in_projects["verdict"] == Verdict.ALLOWED,
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
    elsewhere_allowed = (users["verdict"] == Verdict.ALLOWED).astype(int)
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


def projects_table(analysis: Analysis) -> pd.DataFrame:
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


def principal_name_table(analysis: Analysis) -> pd.DataFrame:
    return analysis.principal_names.rename(columns={"name": "Principal"})


def memberships_table(analysis: Analysis) -> pd.DataFrame:
    bindings = analysis.model.bindings
    table = bindings.merge(
        principal_name_table(analysis), on="principal_id", how="left", validate="many_to_one"
    ).merge(project_name_table(analysis), on="project_id", how="left", validate="many_to_one")
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


def roles_table(analysis: Analysis) -> pd.DataFrame:
    roles = analysis.snapshot["roles"].merge(
        project_name_table(analysis), on="project_id", how="left", validate="many_to_one"
    )
    built_in = roles["predefined_role"].fillna(0).astype(bool)
    return pd.DataFrame(
        {
            "Defined in": roles["resource_type"],
            "Project": roles["Project"],
            "Role id": roles["id"],
            "Name": roles["name"],
            "Built-in": built_in,
            "Permissions": [
                _role_permissions(analysis, *row)
                for row in zip(
                    roles["resource_type"],
                    roles["name"],
                    built_in,
                    roles["permissions"],
                    strict=True,
                )
            ],
            "Description": roles["description"],
        }
    ).sort_values(["Defined in", "Project", "Name"], kind="stable")


def _role_permissions(
    analysis: Analysis, resource: object, name: object, built_in: bool, listed: object
) -> str:
    """A role's permissions as a readable list. The API lists none for a built-in role
    (an empty list there means "the preset's", not "nothing"): the catalog's preset is
    shown, and said to be."""
    permissions = _json_strings(listed)
    if built_in and not permissions:
        preset = analysis.catalog.preset_for(str(resource), str(name))
        if preset is None:
            return "(built-in; not in the permission catalog)"
        return readable_list(sorted(preset.permissions)) + f" (the catalog's preset {preset.id})"
    return readable_list(permissions) if permissions else "(none)"


def _json_strings(text: object) -> list[str]:
    """A JSON list of strings stored as text; empty for anything else."""
    if not isinstance(text, str):
        return []
    try:
        value = json.loads(text)
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def readable_list(values: list[str]) -> str:
    """Values for a person: comma-separated, in the order given."""
    return ", ".join(values)


def groups_table(analysis: Analysis) -> pd.DataFrame:
    snapshot = analysis.snapshot
    members = snapshot["group_users"]
    member_list = (
        members.assign(who=members["email"].fillna(members["user_id"]))
        .sort_values("who")
        .groupby("group_id")["who"]
        .agg(", ".join)
    )
    projects = snapshot["project_groups"].merge(
        project_name_table(analysis), on="project_id", how="left", validate="many_to_one"
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


def service_accounts_table(analysis: Analysis, per_subject: pd.DataFrame) -> pd.DataFrame:
    accounts = analysis.snapshot["project_service_accounts"].merge(
        project_name_table(analysis), on="project_id", how="left", validate="many_to_one"
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


RESTRICTION_WORDS = {
    ScopeKind.UNRESTRICTED: "all",
    ScopeKind.READ_ONLY: "read only",
    ScopeKind.RESTRICTED: "restricted",
    ScopeKind.UNKNOWN: "unknown",
}


def scopes_in_words(kind: object, text: object) -> str:
    """A key's scopes for a person: an empty list means every permission, not none."""
    if kind == ScopeKind.UNRESTRICTED:
        return "All (unrestricted)"
    if kind == ScopeKind.UNKNOWN:
        return "(not recorded)"
    scopes = _json_strings(text)
    if kind == ScopeKind.READ_ONLY:
        return f"Read only ({readable_list(scopes)})"
    return readable_list(scopes)


def api_keys_table(analysis: Analysis, per_subject: pd.DataFrame) -> pd.DataFrame:
    keys = analysis.keys.merge(
        project_name_table(analysis), on="project_id", how="left", validate="many_to_one"
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
            "Restriction": keys["scope_kind"].map(RESTRICTION_WORDS),
            "Scopes": [
                scopes_in_words(kind, text)
                for kind, text in zip(keys["scope_kind"], keys["scopes"], strict=True)
            ],
            "Created": keys["created_at"],
            "Expires": keys["expires_at"],
            "Last used": keys["last_used_at"],
        }
    )
    return _with_findings(table, "Key id", per_subject).sort_values(
        ["Project", "Name"], kind="stable"
    )


def admin_keys_table(analysis: Analysis, per_subject: pd.DataFrame) -> pd.DataFrame:
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


def _invite_projects(text: object, names: pd.Series) -> str:
    """An invite's projects as "Name (role)", from the JSON the API gives."""
    try:
        entries = json.loads(text) if isinstance(text, str) else []
    except ValueError:
        return str(text)
    if not isinstance(entries, list):
        return str(text)
    shown = []
    for entry in entries:
        if not isinstance(entry, dict):
            shown.append(str(entry))
            continue
        project = str(entry.get("id", ""))
        name = names.get(project, project)
        shown.append(f"{name} ({entry['role']})" if entry.get("role") else str(name))
    return readable_list(shown) or "(none)"


def invites_table(analysis: Analysis, per_subject: pd.DataFrame) -> pd.DataFrame:
    invites = analysis.snapshot["invites"]
    names = analysis.project_names
    table = pd.DataFrame(
        {
            "Invite id": invites["id"],
            "Email": invites["email"],
            "Role": invites["role"],
            "Status": invites["status"],
            "Sent": invites["created_at"],
            "Expires": invites["expires_at"],
            "Projects": invites["projects"].map(lambda text: _invite_projects(text, names)),
        }
    )
    return _with_findings(table, "Invite id", per_subject).sort_values("Email", kind="stable")


def project_roles_table(analysis: Analysis) -> pd.DataFrame:
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
