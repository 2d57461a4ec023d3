"""One analysis of a snapshot: the snapshot, its catalog and the access model that follows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orgaudit import store
from orgaudit.model.access import AccessModel, compute_access
from orgaudit.model.catalog import Catalog, load_catalog
from orgaudit.store.snapshot import Snapshot, load_snapshot


@dataclass(frozen=True)
class Analysis:
    """A snapshot, the catalog it is read with, and the access model that follows."""

    snapshot: Snapshot
    catalog: Catalog
    model: AccessModel


def analyze(snapshot: Snapshot, catalog: Catalog) -> Analysis:
    """The access model of a loaded snapshot."""
    return Analysis(snapshot, catalog, compute_access(snapshot, catalog))


def load_analysis(db_path: Path, snapshot_id: int | None, catalog_path: Path | None) -> Analysis:
    """Open the database, load a snapshot (latest by default) and analyze it."""
    catalog = load_catalog(catalog_path)
    with store.connect(db_path, create=False) as conn:
        snapshot = load_snapshot(conn, snapshot_id)
    return analyze(snapshot, catalog)
