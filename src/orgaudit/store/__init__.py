"""The snapshot store: one SQLite file, one row per pull, entity tables keyed by snapshot.

The schema is a public contract (``docs/schema.md``): saved queries are written against
it. It carries a version in ``PRAGMA user_version`` and moves forward by the scripts in
:data:`MIGRATIONS`. A snapshot is written in a single transaction, and its row in
``snapshots`` is written in that same transaction, so a pull that fails part-way leaves
no trace and earlier snapshots untouched.

The package: ``schema`` (tables, columns, migrations), ``fields`` (where each column sits
in the API's JSON), ``ingest`` (typing items, keeping odd values as anomalies), ``db``
(the database itself), ``database`` (the handle a command opens once and passes
down), ``snapshot`` (a snapshot read back as DataFrames) and ``queries``
(saved SQL, run read-only). What the rest of orgaudit uses is named here.
"""

from orgaudit.store.database import SnapshotDatabase
from orgaudit.store.db import (
    SnapshotInfo,
    check_database_file,
    connect,
    json_list,
    list_snapshots,
    previous_snapshot,
    prune,
    read_table,
    resolve_snapshot,
    transaction,
    write_derived,
    write_snapshot,
)
from orgaudit.store.fields import INT, TEXT, Column
from orgaudit.store.schema import (
    DERIVED_TABLES,
    IDENTITY,
    MIGRATIONS,
    SCHEMA_VERSION,
    TABLES,
)

__all__ = [
    "DERIVED_TABLES",
    "IDENTITY",
    "INT",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "TABLES",
    "TEXT",
    "Column",
    "SnapshotDatabase",
    "SnapshotInfo",
    "check_database_file",
    "connect",
    "json_list",
    "list_snapshots",
    "previous_snapshot",
    "prune",
    "read_table",
    "resolve_snapshot",
    "transaction",
    "write_derived",
    "write_snapshot",
]
