"""The command line: parse options, call one function, map errors to exit codes.

No logic lives here; each command hands its options to one function of the package.
"""

from __future__ import annotations

import contextlib
import resource
import sys
import traceback
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from orgaudit import __version__
from orgaudit.app.demo import run_demo
from orgaudit.app.simulate import SimulateOptions, serve
from orgaudit.cli import audit, explain, query, review, snapshots
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
    ResumeOption,
    State,
    StrictOption,
    TimeoutOption,
    UsageDaysOption,
    err,
    out,
    pull_with_progress,
    request_progress,
)
from orgaudit.errors import ExitCode, Interrupted, OrgauditError
from orgaudit.render import text as presentation
from orgaudit.render.terminal import shown
from orgaudit.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_BODY_MB,
    ClientSettings,
    PullSettings,
    RetryPolicy,
    resolve_db_path,
)
from orgaudit.store.database import SnapshotDatabase

# Plain help (rich_markup_mode=None): typer's rich help panel prints a type after every
# option, so flags that take no value (--offline, --json, --help itself) read "<bool>",
# as if they wanted one; click's own layout prints a type only where a value follows.
app = typer.Typer(
    name="orgaudit",
    help="Read-only auditor for OpenAI API organizations: who can do what, and why not.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
app.add_typer(explain.app, name="explain")
app.add_typer(review.app, name="review")
app.command("audit")(audit.audit_command)
app.command("query")(query.query_command)
app.command("snapshots")(snapshots.snapshots_command)
app.command("diff")(snapshots.diff_command)


def _version(value: bool) -> None:
    if value:
        out.print(f"orgaudit {__version__}")
        raise typer.Exit()


@app.callback()
def _main_options(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    if isinstance(ctx.obj, State):
        ctx.obj.debug = debug


@app.command("pull")
def pull_command(
    db: DbOption = None,
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
    resume: ResumeOption = False,
    catalog: CatalogOption = None,
) -> None:
    """Read the whole org through the Admin API into a new snapshot."""
    options = PullOptions(
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
        resume=resume,
    )
    with SnapshotDatabase.open(resolve_db_path(db), create=True) as database:
        pull_with_progress(database, options, catalog)


@app.command("demo")
def demo_command(
    db: DbOption = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder for the reports (default: the db's).")
    ] = None,
) -> None:
    """Run the whole pipeline against a simulated demo org (no key, no network).

    Without --db the database goes where the other commands look by default (unless a
    database is there already), so the commands it prints next work as pasted."""
    with request_progress("pulling the demo org") as progress:
        result = run_demo(db, out_dir, progress=progress)
    out.print(
        presentation.demo_report(
            result.pull,
            result.audit,
            result.db_path,
            result.cases,
            out_dir=result.out_dir,
            found_by_default=result.found_by_default,
            set_aside=result.set_aside,
        )
    )


@app.command("simulate")
def simulate_command(
    admin_key_file: KeyFileOption = None,
    port: Annotated[int, typer.Option(help="Loopback port (0: any free one).")] = 8765,
    users: Annotated[int | None, typer.Option(help="Generate an org of this many users.")] = None,
    projects: Annotated[int, typer.Option(help="Projects in a generated org.")] = 10,
    members_per_project: Annotated[int, typer.Option(help="Members per project.")] = 5,
    keys_per_project: Annotated[int, typer.Option(help="API keys per project.")] = 3,
    service_accounts_per_project: Annotated[int, typer.Option(help="Service accounts.")] = 1,
    groups: Annotated[int, typer.Option(help="Groups in a generated org.")] = 5,
    custom_roles: Annotated[int, typer.Option(help="Custom roles in a generated org.")] = 4,
    seed: Annotated[int, typer.Option(help="Seed of a generated org.")] = 0,
    latency: Annotated[float, typer.Option(help="Seconds added to every response.")] = 0.0,
    max_in_flight: Annotated[
        int | None, typer.Option(help="Answer 429 beyond this many requests in flight.")
    ] = None,
) -> None:
    """Serve the demo org (or a generated one) on loopback until interrupted."""
    options = SimulateOptions(
        port=port,
        users=users,
        projects=projects,
        members_per_project=members_per_project,
        keys_per_project=keys_per_project,
        service_accounts_per_project=service_accounts_per_project,
        groups=groups,
        custom_roles=custom_roles,
        seed=seed,
        latency=latency,
        max_in_flight=max_in_flight,
    )
    serve(options, admin_key_file, announce=lambda line: err.print(line))


def _usage_error(exc: typer.TyperException) -> NoReturn:
    """Print a usage error as one line (or the help, when there were no arguments)."""
    message = str(getattr(exc, "format_message", exc.__str__)())
    if type(exc).__name__ == "NoArgsIsHelpError":
        print(message, file=sys.stderr)
    else:
        one_line = " ".join(message.split())
        print(shown(f"orgaudit: error: {one_line} (see --help)"), file=sys.stderr)
    sys.exit(ExitCode.USAGE)


def _no_core_dumps() -> None:
    """A core file of this process would hold the admin key: none is written."""
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main() -> None:
    """Entry point: run the app and turn every error into one line and an exit code."""
    _no_core_dumps()
    state = State()
    try:
        code = app(obj=state, standalone_mode=False)
    except typer.TyperException as exc:  # click's usage errors (typer vendors click)
        _usage_error(exc)
    except typer.Abort:
        print("orgaudit: interrupted; no file was left half-written", file=sys.stderr)
        sys.exit(130)
    except Interrupted as exc:
        print(shown(f"orgaudit: {exc}"), file=sys.stderr)
        sys.exit(exc.exit_code)
    except OrgauditError as exc:
        if state.debug:
            traceback.print_exc()
        for detail in getattr(exc, "details", ()):  # the problems behind it, one per line
            print(shown(f"  {detail}"), file=sys.stderr)
        print(shown(f"orgaudit: error: {exc}"), file=sys.stderr)  # one line, inert
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("orgaudit: interrupted; no file was left half-written", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # a bug: still one line, and the details only on request
        if state.debug:
            traceback.print_exc()
        print(
            f"orgaudit: internal error: {type(exc).__name__}; rerun with --debug for details",
            file=sys.stderr,
        )
        sys.exit(ExitCode.INTERNAL)
    if code == ExitCode.INTERRUPTED:  # typer turns a Ctrl-C it catches into this code
        print("orgaudit: interrupted", file=sys.stderr)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)
