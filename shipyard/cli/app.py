"""The root command, its sub-apps, and the one place where errors become exit codes."""

from __future__ import annotations

import os
import sys
import traceback

import typer

from shipyard import __version__
from shipyard.cli import (
    ab_cmd,
    access_cmd,
    artifacts_cmd,
    audit_cmd,
    build_cmd,
    config_cmd,
    data_cmd,
    datasets_cmd,
    demo_cmd,
    deploy_cmd,
    deployments_cmd,
    evaluate_cmd,
    experiments_cmd,
    explain_cmd,
    export_cmd,
    features_cmd,
    import_cmd,
    lineage_cmd,
    models_cmd,
    monitor_cmd,
    notebook_cmd,
    pipeline_cmd,
    predict_cmd,
    runs_cmd,
    schedule_cmd,
    serve_cmd,
    server_cmd,
    train_cmd,
    tune_cmd,
    ui_cmd,
)
from shipyard.config import get_settings
from shipyard.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ShipyardError,
    StoreError,
    Unauthorized,
)


def _flags_take_no_value() -> None:
    """Typer's rich help labels a flag with its Python type (``--json <bool>``), which reads as if it took a
    value; flags take none, so show no type for them (``--json``), as click's plain help does."""
    from typer.core import TyperOption

    original = getattr(TyperOption, "display_type_rich", None)
    if original is None or getattr(original, "_shipyard_flags", False):
        return  # a typer without that label, or already done

    def display_type_rich(self: TyperOption, ctx: typer.Context) -> str | None:
        return None if self.is_flag else original(self, ctx)

    display_type_rich._shipyard_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_take_no_value()

app = typer.Typer(
    name="shipyard",
    help="Shipyard: tracking, pipelines, registry, tuning, serving and monitoring in one package.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # help paragraphs reflow; the indented examples render as code blocks
)
app.add_typer(config_cmd.app, name="config")
app.add_typer(experiments_cmd.app, name="experiments")
app.add_typer(runs_cmd.app, name="runs")
app.add_typer(artifacts_cmd.app, name="artifacts")
app.add_typer(models_cmd.app, name="models")
app.add_typer(pipeline_cmd.app, name="pipeline")
app.add_typer(notebook_cmd.app, name="notebook")
app.add_typer(schedule_cmd.app, name="schedules")
app.add_typer(deploy_cmd.app, name="deploy")
app.add_typer(ab_cmd.app, name="ab")
app.add_typer(export_cmd.app, name="export")
app.add_typer(deployments_cmd.app, name="deployments")
app.add_typer(data_cmd.app, name="data")
app.add_typer(features_cmd.app, name="features")
data_cmd.app.command("add")(datasets_cmd.add)
data_cmd.app.command("get")(datasets_cmd.get)
data_cmd.app.command("diff")(datasets_cmd.diff)
data_cmd.app.command("list")(datasets_cmd.list_datasets)
data_cmd.app.command("versions")(datasets_cmd.versions)
data_cmd.app.command("show")(datasets_cmd.show)
app.add_typer(monitor_cmd.app, name="monitor")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(tune_cmd.app, name="tune")
app.add_typer(import_cmd.app, name="import")
app.command("gc")(runs_cmd.gc)
app.command("demo")(demo_cmd.demo)
app.command("lineage")(lineage_cmd.lineage)
app.command("scheduler")(schedule_cmd.scheduler)
app.command("serve")(serve_cmd.serve)
app.command("predict")(predict_cmd.predict)
app.command("evaluate")(evaluate_cmd.evaluate)
models_cmd.app.command("explain")(explain_cmd.explain)
app.command("train")(train_cmd.train)
app.command("build")(build_cmd.build)
app.command("server")(server_cmd.server)
app.command("ui")(ui_cmd.ui)
app.add_typer(access_cmd.users_app, name="users")
app.add_typer(access_cmd.tokens_app, name="tokens")
app.command("grant")(access_cmd.grant)
app.command("grants")(access_cmd.grants)
# Defined beside the other schedule commands; it belongs under `shipyard pipeline` for users.
pipeline_cmd.app.command("schedule")(schedule_cmd.schedule_pipeline)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"shipyard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(
        False, "--debug", help="Show full tracebacks on errors (also accepted after the subcommand)."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    if debug:
        os.environ["SHIPYARD_DEBUG"] = "1"


# Exit codes, one per kind of failure (2 is also click's usage error).
EXIT_CODES: list[tuple[type[ShipyardError], int]] = [
    (InvalidInput, 2),
    (NotFound, 3),
    (AlreadyExists, 4),
    (Conflict, 4),
    (Unauthorized, 6),
    (Forbidden, 6),
    (StoreError, 5),
    (ShipyardError, 1),
]


def exit_code_for(exc: ShipyardError) -> int:
    for kind, code in EXIT_CODES:
        if isinstance(exc, kind):
            return code
    return 1


def _where_looked(exc: ShipyardError) -> str:
    """For a record that was not found: which store was searched (the usual surprise is another folder's)."""
    if not isinstance(exc, NotFound):
        return ""
    try:
        return f" (looked in {get_settings().store_description})"
    except ShipyardError:
        return ""


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; errors print one line on stderr (a traceback only with --debug)."""
    args = sys.argv[1:] if argv is None else list(argv)
    # As `python -m` does: the user's modules (components, trials, module:function targets) import from the
    # working directory, here and in the worker processes, which start with this path.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    # --debug is a root option; people type it after the subcommand too (up to a literal "--").
    end = args.index("--") if "--" in args else len(args)
    debug = "--debug" in args[:end] or os.environ.get("SHIPYARD_DEBUG") == "1"
    if "--debug" in args[:end]:
        args = ["--debug", *(a for a in args[:end] if a != "--debug"), *args[end:]]
    try:
        # Standalone mode: usage errors print and exit 2 there; our own errors propagate to here.
        app(args=args, prog_name="shipyard")
    except ShipyardError as exc:
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"error: {exc}{_where_looked(exc)}\n")
        sys.exit(exit_code_for(exc))
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
