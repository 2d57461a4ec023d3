"""``orgaudit audit``: pull (unless --offline), check, write the reports, exit per --fail-on."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from orgaudit.app.audit import AuditOptions, parse_formats, run_audit
from orgaudit.cli.common import (
    AskEveryRoleListOption,
    AuditDaysOption,
    BaseUrlOption,
    CatalogOption,
    ConcurrencyOption,
    DbOption,
    KeyFileOption,
    MaxAttemptsOption,
    MaxBodyOption,
    MaxPagesOption,
    MaxWaitOption,
    PullOptions,
    SnapshotOption,
    StrictOption,
    TimeoutOption,
    UsageDaysOption,
    out,
    pull_with_progress,
)
from orgaudit.errors import UsageError
from orgaudit.render import text as presentation
from orgaudit.render.report import DEFAULT_FORMATS, WRITERS
from orgaudit.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_BODY_MB,
    ClientSettings,
    PullSettings,
    RetryPolicy,
    resolve_db_path,
)
from orgaudit.store.database import SnapshotDatabase
from orgaudit.store.queries import default_pack
from orgaudit.vocabulary import Severity


def audit_command(
    offline: Annotated[
        bool,
        typer.Option(
            "--offline", help="Audit the latest snapshot (or --snapshot) without pulling."
        ),
    ] = False,
    formats: Annotated[
        list[str] | None,
        typer.Option(
            "--format",
            metavar="FORMAT[,FORMAT]",
            help=f"Report formats, repeatable or comma-separated, any case: {', '.join(WRITERS)} "
            f"(default {', '.join(DEFAULT_FORMATS)}).",
        ),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the reports.")] = Path(
        "reports"
    ),
    fail_on: Annotated[
        str | None,
        typer.Option(
            metavar="SEVERITY",
            help="Exit 1 if a finding at or above this severity counts (any case): "
            f"{', '.join(Severity)}.",
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
    roster: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="HR/IdP roster CSV (e-mail and status columns; [roster] in --config names "
            "them) to check org users against: user-terminated, user-not-in-roster.",
        ),
    ] = None,
    db: DbOption = None,
    snapshot: SnapshotOption = None,
    catalog: CatalogOption = None,
    admin_key_file: KeyFileOption = None,
    base_url: BaseUrlOption = DEFAULT_BASE_URL,
    concurrency: ConcurrencyOption = ClientSettings.concurrency,
    timeout: TimeoutOption = ClientSettings.timeout,
    max_attempts: MaxAttemptsOption = RetryPolicy.max_attempts,
    max_wait: MaxWaitOption = RetryPolicy.max_wait,
    strict: StrictOption = False,
    audit_days: AuditDaysOption = PullSettings.audit_days,
    usage_days: UsageDaysOption = PullSettings.usage_days,
    max_body_mb: MaxBodyOption = DEFAULT_MAX_BODY_MB,
    max_pages: MaxPagesOption = ClientSettings.max_pages,
    ask_every_role_list: AskEveryRoleListOption = False,
) -> None:
    """Check the org and write the workbook (and csv, json, markdown); exit 1 per --fail-on."""
    options = AuditOptions(
        out_dir=out_dir,
        formats=parse_formats(formats, DEFAULT_FORMATS),
        snapshot_id=snapshot,
        catalog_path=catalog,
        config_path=config,
        fail_on=None if fail_on is None else Severity.parse(fail_on),
        stale_days=stale_days,
        max_owners=max_owners,
        queries_dir=default_pack() if queries else None,
        roster_path=roster,
    )
    if snapshot is not None and not offline:
        raise UsageError("--snapshot audits a stored snapshot: add --offline")
    pull_options = PullOptions(
        admin_key_file,
        base_url,
        concurrency,
        timeout,
        max_attempts,
        audit_days,
        max_body_mb,
        max_pages,
        ask_every_role_list,
        max_wait=max_wait,
        strict=strict,
        usage_days=usage_days,
    )
    with SnapshotDatabase.open(resolve_db_path(db), create=not offline) as database:
        if offline:
            result = run_audit(database, options)
        else:
            pulled = pull_with_progress(database, pull_options, catalog)
            result = run_audit(
                database, replace(options, snapshot_id=pulled.snapshot_id), pulled.analysis
            )
    out.print(presentation.audit_summary(result))
    raise typer.Exit(result.exit_code)
