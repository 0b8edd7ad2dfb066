"""Pipeline schedules: ``shipyard pipeline schedule``, ``shipyard schedules …`` and ``shipyard scheduler``."""

from __future__ import annotations

import dataclasses
import signal
import threading
from datetime import UTC
from types import FrameType
from typing import Any

import typer

from shipyard.cli.output import console, fmt_time, print_json, print_table
from shipyard.errors import PipelineError
from shipyard.pipelines import Catchup, Schedule, ScheduleClient, ScheduledRun, Scheduler, parse_assignments
from shipyard.pipelines.targets import load_spec
from shipyard.tracking import get_client

app = typer.Typer(help="List, pause, resume and delete pipeline schedules.", no_args_is_help=True)

_JSON = typer.Option(False, "--json", help="Machine-readable output.")
_NAME = typer.Argument(..., help="The schedule's name (see `shipyard schedules list`).")


def _client() -> ScheduleClient:
    return ScheduleClient(get_client())


def _jsonable(schedule: Schedule) -> dict[str, Any]:
    # The spec text is long and `shipyard pipeline compile` shows it; keep listings readable.
    return {k: v for k, v in dataclasses.asdict(schedule).items() if k != "spec_yaml"}


def _next(schedule: Schedule) -> str:
    return "(paused)" if schedule.paused else f"{fmt_time(schedule.next_run_at)} UTC"


def schedule_pipeline(
    target: str = typer.Argument(..., help="A spec file (.yaml) or module:function of a @pipeline."),
    cron: str = typer.Option(..., "--cron", help='When to run, e.g. "0 * * * *" (hourly).'),
    name: str = typer.Option(None, "--name", help="Unique schedule name (default: the pipeline's name)."),
    param: list[str] = typer.Option(None, "--param", "-p", help="key=value (repeatable)."),
    timezone: str = typer.Option("UTC", "--timezone", help="IANA timezone the cron is read in."),
    catchup: Catchup = typer.Option(
        Catchup.ONCE, "--catchup", help="Missed ticks: run once, run all (up to 100 a pass), or skip them."
    ),
    experiment: str = typer.Option(None, "--experiment", "-e", help="Default: the pipeline's name."),
    executor: str = typer.Option("local", "--executor", help="Where the runs execute (local or ray)."),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Reuse outputs of unchanged steps."),
    as_json: bool = _JSON,
) -> None:
    """Register a recurring run of a pipeline; `shipyard scheduler` runs it when due.

    The compiled spec is stored with the schedule: editing the file later does not change what runs.

    Examples:

        shipyard pipeline schedule churn.yaml --cron "0 * * * *" --timezone Europe/Paris

        shipyard pipeline schedule mymodule:churn --cron @daily -p threshold=0.8 --name churn-daily
    """
    created = _client().create(
        load_spec(target),
        cron,
        name=name,
        parameters=parse_assignments(param or []),
        timezone=timezone,
        catchup=catchup,
        experiment=experiment,
        executor=executor,
        cache=cache,
    )
    if as_json:
        print_json(_jsonable(created))
        return
    console.print(
        f"scheduled {created.name!r} (pipeline {created.pipeline_name}, cron {created.cron!r} "
        f"{created.timezone}); next run {_next(created)}",
        markup=False,
        highlight=False,
    )


@app.command("list")
def list_(as_json: bool = _JSON) -> None:
    """List schedules with their next run and their latest run's id and status.

    Examples:

        shipyard schedules list

        shipyard schedules list --json
    """
    found = _client().list()
    if as_json:
        print_json([_jsonable(s) for s in found])
        return
    rows = [
        (s.name, s.pipeline_name, s.cron, s.timezone, s.catchup.value, _next(s), s.last_run_id, s.last_status)
        for s in found
    ]
    print_table(
        "Schedules", ["name", "pipeline", "cron", "tz", "catchup", "next run", "last run", "status"], rows
    )


@app.command("pause")
def pause(name: str = _NAME) -> None:
    """Stop running a schedule until it is resumed.

    Examples:

        shipyard schedules pause churn
    """
    console.print(f"paused {_client().pause(name).name!r}", markup=False, highlight=False)


@app.command("resume")
def resume(name: str = _NAME) -> None:
    """Run a paused schedule again from its next tick (ticks missed while paused are not run).

    Examples:

        shipyard schedules resume churn
    """
    resumed = _client().resume(name)
    console.print(f"resumed {resumed.name!r}; next run {_next(resumed)}", markup=False, highlight=False)


@app.command("delete")
def delete(name: str = _NAME) -> None:
    """Delete a schedule (runs it already made stay in tracking).

    Examples:

        shipyard schedules delete churn

        shipyard schedules delete monitor-churn
    """
    _client().delete(name)
    console.print(f"deleted {name!r}", markup=False, highlight=False)


def scheduler(
    once: bool = typer.Option(False, "--once", help="Run what is due now, then exit."),
    poll_interval: float = typer.Option(
        30.0, "--poll-interval", min=0.1, help="Seconds between checks for new or resumed schedules."
    ),
) -> None:
    """Run pipeline schedules when they are due, one line per run.

    Any number of schedulers may share a store: each tick runs once. SIGTERM or Ctrl-C stops it: at once when
    idle (exit 0 on SIGTERM); a pipeline run in progress is killed and recorded as killed.

    Examples:

        shipyard scheduler --once

        shipyard scheduler --poll-interval 10
    """
    runner = Scheduler()
    if once:
        done = runner.run_pending()
        for run in done:
            _print_run(run)
        if not done:
            console.print("no schedule is due", markup=False, highlight=False)
        failed = sorted({run.schedule for run in done if run.status != "succeeded"})
        if failed:
            raise PipelineError(f"scheduled runs failed: {', '.join(failed)}")
        return
    stop = threading.Event()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        stop.set()  # while a pipeline runs, the executor's own handler kills it instead (SystemExit 143)

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        console.print(f"scheduler running (checks every {poll_interval:g}s)", markup=False, highlight=False)
        runner.serve(poll_interval, stop, on_run=_print_run)
    finally:
        signal.signal(signal.SIGTERM, previous)
    console.print("scheduler stopped", markup=False, highlight=False)


def _print_run(run: ScheduledRun) -> None:
    """``nightly 2026-01-05 00:00 UTC: failed run 3f2a… (step(s) train failed)``."""
    outcome = run.error or ""
    if run.run_id:
        outcome = f"run {run.run_id}" + (f" ({run.error})" if run.error else "")
    tick = run.tick.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    console.print(f"{run.schedule} {tick} UTC: {run.status} {outcome}", markup=False, highlight=False)
