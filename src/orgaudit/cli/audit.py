"""``orgaudit audit``: pull (unless --offline), check, write the reports, exit per --fail-on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orgaudit import presentation
from orgaudit.audit import AuditOptions, parse_formats, run_audit
from orgaudit.cli.common import CatalogOption, DbOption, KeyFileOption, SnapshotOption, out
from orgaudit.cli.progress import request_progress
from orgaudit.errors import UsageError
from orgaudit.findings import SEVERITIES
from orgaudit.pipeline import pull_and_analyze
from orgaudit.queries import default_pack
from orgaudit.report import DEFAULT_FORMATS, WRITERS
from orgaudit.settings import (
    DEFAULT_BASE_URL,
    ClientSettings,
    PullSettings,
    RetryPolicy,
    load_admin_key,
    resolve_db_path,
)


def audit_command(
    offline: Annotated[
        bool, typer.Option(help="Audit the latest snapshot (or --snapshot) without pulling.")
    ] = False,
    formats: Annotated[
        list[str] | None,
        typer.Option(
            "--format",
            help=f"Report formats, repeatable or comma-separated: {', '.join(WRITERS)} "
            f"(default {', '.join(DEFAULT_FORMATS)}).",
        ),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the reports.")] = Path(
        "reports"
    ),
    fail_on: Annotated[
        str | None,
        typer.Option(
            help=f"Exit 1 if a finding at or above this severity counts: {', '.join(SEVERITIES)}."
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="orgaudit.toml: thresholds, severities, suppressions.")
    ] = None,
    stale_days: Annotated[
        int | None, typer.Option(help="Days unused before a key is stale (default 90).")
    ] = None,
    max_owners: Annotated[
        int | None, typer.Option(help="Org owners before owner-sprawl (default 3).")
    ] = None,
    queries: Annotated[
        bool, typer.Option("--queries", help="Add each saved query as a sheet/table.")
    ] = False,
    db: DbOption = None,
    snapshot: SnapshotOption = None,
    catalog: CatalogOption = None,
    admin_key_file: KeyFileOption = None,
    base_url: Annotated[str, typer.Option(help="Admin API base URL.")] = DEFAULT_BASE_URL,
    concurrency: Annotated[int, typer.Option(help="Most requests in flight at once.")] = 16,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for one response.")] = 30.0,
    max_attempts: Annotated[int, typer.Option(help="Tries per request.")] = 6,
    audit_days: Annotated[int, typer.Option(help="Days of audit log to read.")] = 180,
) -> None:
    """Check the org and write the workbook (and csv, json, markdown); exit 1 per --fail-on."""
    db_path = resolve_db_path(db)
    options = AuditOptions(
        db_path=db_path,
        out_dir=out_dir,
        formats=parse_formats(formats, DEFAULT_FORMATS),
        snapshot_id=snapshot,
        catalog_path=catalog,
        config_path=config,
        fail_on=fail_on,
        stale_days=stale_days,
        max_owners=max_owners,
        queries_dir=default_pack() if queries else None,
    )
    if snapshot is not None and not offline:
        raise UsageError("--snapshot audits a stored snapshot: add --offline")
    if not offline:
        settings = ClientSettings(
            base_url=base_url,
            concurrency=concurrency,
            timeout=timeout,
            retry=RetryPolicy(max_attempts=max_attempts),
        )
        with request_progress("pulling") as tick:
            pulled = pull_and_analyze(
                load_admin_key(admin_key_file),
                settings,
                PullSettings(audit_days=audit_days),
                db_path,
                catalog_path=catalog,
                on_response=tick,
            )
        out.print(presentation.pull_summary(pulled))
        options = AuditOptions(**{**options.__dict__, "snapshot_id": pulled.snapshot_id})
    result = run_audit(options)
    out.print(presentation.audit_summary(result))
    raise typer.Exit(result.exit_code)
