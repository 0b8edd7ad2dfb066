"""``shipyard import mlflow SOURCE``: an MLflow store copied into this deployment."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import typer

from shipyard.cli.output import console, print_json
from shipyard.config import get_settings

app = typer.Typer(help="Copy records from other systems into Shipyard.", no_args_is_help=True)


@app.command("mlflow")
def mlflow(
    source: str = typer.Argument(
        ..., help="An MLflow tracking URI: sqlite:///mlflow.db, postgresql://…, or an mlruns folder."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be copied; write nothing."),
    artifacts_destination: str = typer.Option(
        None,
        "--artifacts-destination",
        help="The folder a tracking server keeps proxied artifacts in (mlflow-artifacts:/ URIs).",
    ),
    as_json: bool = typer.Option(False, "--json", help="The report as JSON."),
) -> None:
    """Copy experiments, runs (params, metric histories, tags, datasets, artifacts), logged models and
    registered models with their versions, aliases, stages and tags. Run it again to finish an interrupted
    import: nothing is copied twice.

    Examples:

        shipyard import mlflow sqlite:///mlflow.db --dry-run

        shipyard import mlflow ./mlruns
    """
    from shipyard.importers.mlflow import import_mlflow

    # A bar only for a person at a terminal: logs and pipes get the report alone.
    with _progress_bar(quiet=as_json or not console.is_terminal) as progress:
        report = import_mlflow(
            source,
            settings=get_settings(),
            dry_run=dry_run,
            artifacts_destination=artifacts_destination,
            progress=progress,
        )
    if as_json:
        print_json(
            {
                "source": report.source,
                "dry_run": report.dry_run,
                "copied": report.copied,
                "already": report.already,
                "not_carried": [n.__dict__ for n in report.not_carried],
                "notes": report.notes,
            }
        )
        return
    for line in report.lines():
        console.print(line, markup=False, highlight=False)


@contextlib.contextmanager
def _progress_bar(*, quiet: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar fed by the importer's ``(what, done, total)`` reports (none for --json)."""
    if quiet:
        yield lambda what, done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def report(what: str, done: int, total: int) -> None:
        if what not in tasks:
            tasks[what] = bars.add_task(f"importing {what}", total=total)
        bars.update(tasks[what], completed=done, total=total)

    with bars:
        yield report
