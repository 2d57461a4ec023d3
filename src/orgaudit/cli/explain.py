"""``orgaudit explain ...``: verdicts and their reasons, from a snapshot, offline."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from orgaudit.cli.common import CatalogOption, DbOption, JsonOption, SnapshotOption, out
from orgaudit.errors import UsageError
from orgaudit.explain import explain_error, explain_key, explain_user, plan_scopes
from orgaudit.explain.leaked import trace_leaked_key
from orgaudit.model.analysis import Analysis, load_analysis
from orgaudit.model.catalog import load_catalog
from orgaudit.render import explain_text as explain_view
from orgaudit.render.terminal import json_text
from orgaudit.settings import MAX_KEY_VALUE_BYTES, read_key_value, resolve_db_path
from orgaudit.store.database import SnapshotDatabase

app = typer.Typer(
    help="Explain a verdict: a user in a project, a key, a pasted error, least scopes.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help, as the main app's (no "<bool>" after flags)
)


def _analysis(db: Path | None, snapshot: int | None, catalog: Path | None) -> Analysis:
    with SnapshotDatabase.open(resolve_db_path(db)) as database:
        return load_analysis(database, snapshot, catalog)


def _print(as_json: bool, payload: Any, text: str) -> None:
    if as_json:
        out.print(json_text(json.dumps(payload, ensure_ascii=False, indent=2)))
    else:
        out.print(text, markup=False)


@app.command("user")
def user_command(
    user: Annotated[str, typer.Argument(metavar="USER", help="User e-mail or id.")],
    project: Annotated[
        str | None,
        typer.Option(
            help="Project id or name. Without it: a summary of every project, then the "
            "details where the user holds a role."
        ),
    ] = None,
    every: Annotated[
        bool,
        typer.Option("--all", help="Without --project: the details of every project."),
    ] = False,
    db: DbOption = None,
    snapshot: SnapshotOption = None,
    catalog: CatalogOption = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print JSON: one object with --project; without it, a list of every "
            "project's verdict (all of them, with or without --all).",
        ),
    ] = False,
) -> None:
    """Can USER create API keys in PROJECT, and why (not)?"""
    if every and project is not None:
        raise UsageError("--all shows every project; it does not go with --project")
    analysis = _analysis(db, snapshot, catalog)
    verdicts = explain_user(analysis.snapshot, analysis.model, analysis.catalog, user, project)
    if project is not None:
        _print(as_json, verdicts[0].to_dict(), explain_view.user_text(verdicts))
    else:
        payload = [v.to_dict() for v in verdicts]
        _print(as_json, payload, explain_view.user_overview_text(verdicts, every))


@app.command("key")
def key_command(
    key: Annotated[
        str | None, typer.Argument(metavar="KEY", help="API key id (key_...) or name.")
    ] = None,
    value_stdin: Annotated[
        bool,
        typer.Option(
            "--value-stdin",
            help="Trace a leaked key: read its value (or its redacted form) from standard "
            "input; it is never printed, stored or logged.",
        ),
    ] = False,
    endpoint: Annotated[
        str | None, typer.Option(help="Endpoint to check, e.g. /v1/responses or 'GET /v1/models'.")
    ] = None,
    db: DbOption = None,
    snapshot: SnapshotOption = None,
    catalog: CatalogOption = None,
    as_json: JsonOption = False,
) -> None:
    """Would requests with KEY pass: its scopes, its owner's roles, an endpoint; or, with
    --value-stdin, which key a leaked value is, whose, and how to revoke it."""
    if value_stdin == (key is not None):
        raise UsageError("give KEY (an id or name), or --value-stdin with the value piped in")
    if key is None:
        value = read_key_value(_stdin_value())
        analysis = _analysis(db, snapshot, catalog)
        trace = trace_leaked_key(analysis, value)
        _print(as_json, trace.to_dict(), explain_view.leak_text(trace))
        return
    analysis = _analysis(db, snapshot, catalog)
    verdict = explain_key(analysis.snapshot, analysis.model, analysis.catalog, key, endpoint)
    _print(as_json, verdict.to_dict(), explain_view.key_text(verdict))


def _stdin_value() -> bytes:
    """What standard input holds, at most a little more than a key; on a terminal, asked
    for without echo (the value is not shown as it is pasted)."""
    if sys.stdin is None or sys.stdin.closed:
        raise UsageError("standard input is closed: pipe the key in (--value-stdin)")
    if sys.stdin.isatty():
        return getpass.getpass("paste the key (it is not shown): ").encode("utf-8")
    return sys.stdin.buffer.read(MAX_KEY_VALUE_BYTES + 1)


@app.command("error")
def error_command(
    text: Annotated[str, typer.Argument(metavar="TEXT", help="The API's error message, pasted.")],
    key: Annotated[str | None, typer.Option(help="Check against this key.")] = None,
    user: Annotated[str | None, typer.Option(help="Check against this user...")] = None,
    project: Annotated[str | None, typer.Option(help="...in this project.")] = None,
    db: DbOption = None,
    snapshot: SnapshotOption = None,
    catalog: CatalogOption = None,
    as_json: JsonOption = False,
) -> None:
    """Which permissions grant the scopes a 'Missing scopes' error names."""
    if key is None and user is None:
        explanation = explain_error(load_catalog(catalog), text)
    else:
        analysis = _analysis(db, snapshot, catalog)
        explanation = explain_error(
            analysis.catalog,
            text,
            snapshot=analysis.snapshot,
            model=analysis.model,
            key=key,
            user=user,
            project=project,
        )
    _print(as_json, explanation.to_dict(), explain_view.error_text(explanation))


@app.command("scopes")
def scopes_command(
    endpoints: Annotated[
        list[str],
        typer.Argument(metavar="ENDPOINT", help="Endpoints, e.g. /v1/responses 'GET /v1/models'."),
    ],
    catalog: CatalogOption = None,
    as_json: JsonOption = False,
) -> None:
    """The least a restricted key needs for ENDPOINTS."""
    plan = plan_scopes(load_catalog(catalog), endpoints)
    _print(as_json, plan.to_dict(), explain_view.scopes_text(plan))
