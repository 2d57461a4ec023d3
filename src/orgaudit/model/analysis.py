"""One analysis of a snapshot: the snapshot, its catalog, the access model that follows,
and the tables every later step reads, each worked out once.

The checks, explain, diff and every report read the same :class:`Analysis`; what they
share (keys with their scopes, names by id) is computed on first use and kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from orgaudit.model.access import AccessModel, compute_access
from orgaudit.model.catalog import Catalog, load_catalog
from orgaudit.model.keys import keys_with_scopes, with_scope_kinds
from orgaudit.model.provenance import binding_grants
from orgaudit.model.spend import UsageWindow, key_spend, usage_window
from orgaudit.store.database import SnapshotDatabase
from orgaudit.store.snapshot import Snapshot, principal_names, project_table


@dataclass(frozen=True)
class Analysis:
    """A snapshot, the catalog it is read with, and the access model that follows."""

    snapshot: Snapshot
    catalog: Catalog
    model: AccessModel

    @cached_property
    def keys(self) -> pd.DataFrame:
        """Project API keys with their recorded ``scopes`` and ``recorded_at`` (missing
        where none was recorded), ``scope_set`` and ``scope_kind``."""
        return with_scope_kinds(keys_with_scopes(self.snapshot), self.catalog)

    @cached_property
    def binding_grants(self) -> pd.DataFrame:
        """Who granted each binding of the access model, and when (same index; see
        :func:`orgaudit.model.provenance.binding_grants`)."""
        return binding_grants(self.snapshot, self.model.bindings)

    @cached_property
    def key_spend(self) -> pd.DataFrame:
        """Per key id: ``cost``, ``currency``, ``requests`` and ``active_days`` over the
        usage window (keys that spent nothing are absent)."""
        return key_spend(self.snapshot)

    @property
    def usage_window(self) -> UsageWindow | None:
        """The days usage and costs were read for; None where they were not."""
        return usage_window(self.snapshot)

    @cached_property
    def principal_names(self) -> pd.DataFrame:
        """``principal_id`` and ``name``: a user's e-mail, a service account's name, else
        the id."""
        return principal_names(self.snapshot)

    @cached_property
    def projects(self) -> pd.DataFrame:
        """``project_id``, ``project_name`` and ``project_status`` of every project."""
        return project_table(self.snapshot)

    @cached_property
    def project_names(self) -> pd.Series:
        """Project names by project id."""
        return self.projects.set_index("project_id")["project_name"]

    @cached_property
    def user_names(self) -> pd.DataFrame:
        """``principal_id`` and ``name`` of the org's users as findings name them: the
        e-mail, else the name, else the id."""
        users = self.snapshot["users"]
        name = users["email"].fillna(users["name"]).fillna(users["id"])
        return pd.DataFrame({"principal_id": users["id"], "name": name})


def analyze(snapshot: Snapshot, catalog: Catalog) -> Analysis:
    """The access model of a loaded snapshot."""
    return Analysis(snapshot, catalog, compute_access(snapshot, catalog))


def load_analysis(
    db: SnapshotDatabase, snapshot_id: int | None, catalog_path: Path | None
) -> Analysis:
    """A snapshot (the latest by default) analyzed under a catalog (the shipped one by
    default)."""
    return analyze(db.load(snapshot_id), load_catalog(catalog_path))
