"""The access review: every principal's access, one row per item a reviewer decides on.

One row per role a user holds (their org role included, so users in no project have a
row), per role a service account holds, per project API key and per admin key; each
with what it gives in words, the last activity the snapshot records, the findings on it,
and a suggested reviewer: the project's owners for a project's items, the org's owners
for the org's, and never the subject themselves (nor a key's owner for their key).
"""

from __future__ import annotations

import hashlib

import pandas as pd

from orgaudit.checks.findings import Finding
from orgaudit.model.analysis import Analysis
from orgaudit.model.bindings import SERVICE_ACCOUNT, USER
from orgaudit.model.catalog import ORGANIZATION, PROJECT
from orgaudit.render.report.entities import RESTRICTION_WORDS, scopes_in_words

# The API's name of the built-in owner role, at org and project level.
OWNER_ROLE = "owner"
NO_REVIEWER = "(no owner but the subject: another org owner is needed)"
# Owners (user id, name) by project id, and the org's under None.
Owners = dict[str | None, list[tuple[str, str]]]
KINDS = ("user role", "service account role", "API key", "admin key")
REVIEW_COLUMNS = [
    "Item id", "Kind", "Subject", "Subject id", "Project", "Project id", "Access", "How held",
    "Grants key creation", "Last activity", "Findings", "Suggested reviewer",
    "Decision", "Reviewer", "Comment",
]  # fmt: skip


# What identifies an item besides its kind, subject and project: the role (by id and
# name), how it is held and the group it comes through; empty for keys.
IDENTITY_COLUMNS = [
    "principal_type",
    "scope",
    "binding_kind",
    "role_id",
    "role_name",
    "via_group_id",
]
# The person who answers for the item (a key's owner; the subject of a role), by id.
ANSWERING_ID = "answering_id"


def access_review_table(analysis: Analysis, findings: tuple[Finding, ...]) -> pd.DataFrame:
    """Every item a periodic access review decides on, with columns for the reviewer."""
    items = review_population(analysis, findings)
    return items.assign(Decision="", Reviewer="", Comment="")[REVIEW_COLUMNS]


def review_population(analysis: Analysis, findings: tuple[Finding, ...]) -> pd.DataFrame:
    """Every item a review decides on, ordered, with a stable ``Item id``: the columns of
    :data:`REVIEW_COLUMNS` before the reviewer's, and the identity columns (role, how
    held, via which group) and the id of the person who answers for it.

    The item id is the same for the same item in every snapshot (a digest of its kind,
    subject, project and identity), so a decision can be followed from one review to the
    next.
    """
    owners = _owners(analysis)
    rows = pd.concat(
        [
            _binding_rows(analysis, owners),
            _key_rows(analysis, owners),
            _admin_key_rows(analysis, owners),
        ],
        ignore_index=True,
    )
    rows = _with_findings(rows, findings)
    order = rows.assign(
        _kind=rows["Kind"].map(KINDS.index),
        _subject=rows["Subject"].astype(str).str.casefold(),
        _project=rows["Project"].astype(str).str.casefold(),
    )
    ordered = order.sort_values(["_kind", "_subject", "_project"], kind="stable")
    identified = ordered.drop(columns=["_kind", "_subject", "_project"]).assign(
        **{"Item id": _item_ids(ordered)}
    )
    return identified.drop_duplicates("Item id").reset_index(drop=True)


def _item_ids(rows: pd.DataFrame) -> list[str]:
    """Each row's item id: a digest of its kind, subject, project, scope, role name and
    group. The role's id and the way it is held are left out (they depend on which of the
    API's role lists a pull could read), unless two rows would otherwise share an id."""
    ids = _digests(rows, ["Kind", "Subject id", "Project id", "scope", "role_name", "via_group_id"])
    shared = ids.duplicated(keep=False)
    if shared.any():
        ids = ids.where(
            ~shared, _digests(rows, ["Kind", "Subject id", "Project id", *IDENTITY_COLUMNS])
        )
    return list(ids)


def _digests(rows: pd.DataFrame, columns: list[str]) -> pd.Series:
    texts = rows[columns].astype(object).where(rows[columns].notna(), "").astype(str)
    return pd.Series(
        [
            "I-" + hashlib.sha256("\x1f".join(values).encode()).hexdigest()[:12]
            for values in texts.itertuples(index=False, name=None)
        ],
        index=rows.index,
    )


def _owners(analysis: Analysis) -> Owners:
    """(user id, name) of the owners: by project id, and the org's under None."""
    bindings = analysis.model.bindings
    presets = analysis.catalog.presets
    owner_presets = {pid for pid, p in presets.items() if p.name == OWNER_ROLE}
    held = bindings[
        (bindings["principal_type"] == USER) & bindings["preset_id"].isin(owner_presets)
    ].merge(analysis.principal_names, on="principal_id", how="left", validate="many_to_one")
    owners: Owners = {}
    for row in held.drop_duplicates(["principal_id", "scope", "project_id"]).itertuples():
        where = None if row.scope == ORGANIZATION else str(row.project_id)
        owners.setdefault(where, []).append((str(row.principal_id), str(row.name)))
    return {where: sorted(people, key=lambda p: p[1]) for where, people in owners.items()}


def _reviewer(owners: Owners, project_id: object, subjects: set[str]) -> str:
    """The project's owners (for a project's item), else the org's, never a subject."""
    for where in ((str(project_id),) if isinstance(project_id, str) else ()) + (None,):
        names = [name for uid, name in owners.get(where, []) if uid not in subjects]
        if names:
            return ", ".join(names)
    return NO_REVIEWER


def _binding_rows(analysis: Analysis, owners: Owners) -> pd.DataFrame:
    bindings = analysis.model.bindings
    named = bindings.merge(
        analysis.principal_names, on="principal_id", how="left", validate="many_to_one"
    ).merge(analysis.projects, on="project_id", how="left", validate="many_to_one")
    last_use = _last_key_use(analysis)
    org_wide = named["scope"] != PROJECT
    how = named["kind"].astype(str) + (" via group " + named["via_group_name"]).fillna("")
    return pd.DataFrame(
        {
            "Kind": named["principal_type"].map(
                {USER: "user role", SERVICE_ACCOUNT: "service account role"}
            ),
            "Subject": named["name"].fillna(named["principal_id"]),
            "Subject id": named["principal_id"],
            "Project": named["project_name"]
            .fillna(named["project_id"])
            .where(~org_wide, "(organization)"),
            "Project id": named["project_id"].where(~org_wide, None),
            "Access": named["role_name"].astype(str)
            + org_wide.map({True: " (org role, in every project)", False: ""}),
            "How held": how,
            "Grants key creation": (named["grants_create"] & ~named["conditional"]).astype(bool),
            "Last activity": pd.to_datetime(
                named["principal_id"].map(last_use.to_dict()), utc=True
            ),
            "Suggested reviewer": [
                _reviewer(owners, None if wide else project, {str(subject)})
                for wide, project, subject in zip(
                    org_wide, named["project_id"], named["principal_id"], strict=True
                )
            ],
            "principal_type": named["principal_type"],
            "scope": named["scope"],
            "binding_kind": named["kind"],
            "role_id": named["role_id"],
            "role_name": named["role_name"],
            "via_group_id": named["via_group_id"],
            ANSWERING_ID: named["principal_id"],
        }
    )


def _last_key_use(analysis: Analysis) -> pd.Series:
    """The newest use of any key a principal owns, by principal id: the snapshot's only
    record of a person's or a service account's activity."""
    keys = analysis.keys
    return keys.dropna(subset=["last_used_at"]).groupby("owner_id")["last_used_at"].max()


def _key_rows(analysis: Analysis, owners: Owners) -> pd.DataFrame:
    keys = analysis.keys.merge(
        analysis.projects, on="project_id", how="left", validate="many_to_one"
    )
    restriction = keys["scope_kind"].map(RESTRICTION_WORDS)
    scopes = [
        scopes_in_words(k, s) for k, s in zip(keys["scope_kind"], keys["scopes"], strict=True)
    ]
    owner = keys["owner_email"].fillna(keys["owner_name"]).fillna(keys["owner_id"])
    return pd.DataFrame(
        {
            "Kind": "API key",
            "Subject": keys["name"].fillna(keys["id"]),
            "Subject id": keys["id"],
            "Project": keys["project_name"].fillna(keys["project_id"]),
            "Project id": keys["project_id"],
            "Access": restriction + ": " + pd.Series(scopes, index=keys.index),
            "How held": "owned by " + owner.fillna("(unknown owner)").astype(str),
            "Grants key creation": False,
            "Last activity": keys["last_used_at"],
            "Suggested reviewer": [
                _reviewer(owners, project, {str(owner_id)})
                for project, owner_id in zip(keys["project_id"], keys["owner_id"], strict=True)
            ],
            ANSWERING_ID: keys["owner_id"],
        }
    )


def _admin_key_rows(analysis: Analysis, owners: Owners) -> pd.DataFrame:
    keys = analysis.snapshot["admin_api_keys"]
    owner = keys["owner_name"].fillna(keys["owner_id"])
    return pd.DataFrame(
        {
            "Kind": "admin key",
            "Subject": keys["name"].fillna(keys["id"]),
            "Subject id": keys["id"],
            "Project": "(organization)",
            "Project id": None,
            "Access": "the Admin API: the org's users, projects, keys and roles",
            "How held": "owned by " + owner.fillna("(unknown owner)").astype(str),
            "Grants key creation": True,
            "Last activity": keys["last_used_at"],
            "Suggested reviewer": [_reviewer(owners, None, {str(o)}) for o in keys["owner_id"]],
            ANSWERING_ID: keys["owner_id"],
        }
    )


def _with_findings(rows: pd.DataFrame, findings: tuple[Finding, ...]) -> pd.DataFrame:
    """The check ids flagging each row's subject (in its project, or anywhere for org-wide
    rows)."""
    flagged = pd.DataFrame(
        [(f.subject_id, f.project_id or "", f.check_id) for f in findings],
        columns=["Subject id", "_project", "check"],
    ).drop_duplicates()
    anywhere = flagged.groupby("Subject id")["check"].agg(lambda c: ", ".join(sorted(set(c))))
    here = flagged.groupby(["Subject id", "_project"])["check"].agg(
        lambda c: ", ".join(sorted(set(c)))
    )
    keyed = list(zip(rows["Subject id"], rows["Project id"].fillna(""), strict=True))
    in_project = [here.get(key, "") for key in keyed]
    org_level = [anywhere.get(subject, "") for subject in rows["Subject id"]]
    wide = rows["Project id"].isna().to_numpy()
    return rows.assign(
        Findings=[o if w else p for o, p, w in zip(org_level, in_project, wide, strict=True)]
    )
