"""``shipyard pipeline``: compile a ``@pipeline`` to its spec, run a spec (or a pipeline) locally, or submit
it to the platform server and follow, cancel or list runs there."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import typer

from shipyard.cli.output import console, print_json, print_table
from shipyard.config import get_settings
from shipyard.errors import InvalidInput, PipelineError
from shipyard.pipelines import PipelineSpec, parse_assignments, run_status
from shipyard.pipelines.binding import bind_parameters
from shipyard.pipelines.executors import (
    PipelineExecutor,
    PipelineRunResult,
    StepResult,
    StepStatus,
    executor_for,
)
from shipyard.pipelines.executors.engine import StepCallback
from shipyard.pipelines.remote import RemotePipelines
from shipyard.pipelines.run_status import PipelineRunState
from shipyard.pipelines.targets import load_spec
from shipyard.tracking import get_client

app = typer.Typer(help="Compile and run pipelines, here or on the platform server.", no_args_is_help=True)


@app.command("compile")
def compile_(
    target: str = typer.Argument(..., help="module:function of a @pipeline."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the YAML spec."),
) -> None:
    """Compile a pipeline to its portable YAML spec (checks types, inputs and cycles).

    Examples:

        shipyard pipeline compile examples.train_pipeline:training -o training.yaml
    """
    spec = load_spec(target)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(spec.to_yaml(), encoding="utf-8")
    console.print(f"compiled {spec.name} ({len(spec.steps)} steps) to {output}")


# The options of every command that runs a pipeline (`pipeline run`, `notebook run`).
PARAMS = typer.Option(None, "--param", "-p", help="key=value (repeatable).")
MAX_PARALLEL = typer.Option(None, "--max-parallel", help="Steps at once (default: CPU count).")
EXECUTOR = typer.Option(
    None, "--executor", help="local or ray (default: the executor setting; Ray's address: ray_address)."
)
CACHE = typer.Option(True, "--cache/--no-cache", help="Reuse outputs of unchanged steps.")
PROGRESS = typer.Option(
    None,
    "--progress/--no-progress",
    help="A line as each step starts and ends (default: on a terminal, and never with --json).",
    show_default=False,
)
JSON = typer.Option(False, "--json", help="Machine-readable output.")


def _step_progress(spec: PipelineSpec | None, wanted: bool | None, as_json: bool) -> StepCallback | None:
    """Live step lines for people watching a run (steps can take minutes: say what is running)."""
    if as_json or not (console.is_terminal if wanted is None else wanted):
        return None
    if spec is not None:
        console.print(f"pipeline {spec.name}: {len(spec.steps)} step(s)", markup=False)

    def on_step(key: str, result: StepResult | None) -> None:
        if result is None:
            console.print(f"  {key}: running…", markup=False)
            return
        took = f" in {result.duration_s:.1f}s" if result.duration_s else ""
        attempts = f" after {result.attempts} attempts" if result.attempts > 1 else ""
        console.print(f"  {key}: {result.status.value}{took}{attempts}", markup=False)

    return on_step


@app.command("run")
def run(
    target: str = typer.Argument(..., help="A spec file (.yaml) or module:function of a @pipeline."),
    param: list[str] = PARAMS,
    experiment: str = typer.Option(None, "--experiment", "-e", help="Default: the pipeline's name."),
    max_parallel: int = MAX_PARALLEL,
    executor: str = EXECUTOR,
    cache: bool = CACHE,
    progress: bool = PROGRESS,
    as_json: bool = JSON,
) -> None:
    """Run a pipeline; each step runs in an isolated worker (process or Ray task) as a nested run.

    Examples:

        shipyard pipeline run training.yaml -p n_estimators=200

        shipyard pipeline run examples.train_pipeline:training --no-cache --json
    """
    runner = executor_named(executor, max_parallel)
    run_spec(runner, load_spec(target), param, experiment, cache, progress, as_json)


def run_spec(
    runner: PipelineExecutor,
    spec: PipelineSpec,
    param: list[str] | None,
    experiment: str | None,
    cache: bool,
    progress: bool | None,
    as_json: bool,
) -> None:
    """Run ``spec`` with the ``-p`` values (an unknown one named before any worker starts) and report it."""
    parameters = parse_assignments(param or [])
    bind_parameters(spec, parameters)
    result = runner.run(
        spec, parameters, experiment=experiment, cache=cache, on_step=_step_progress(spec, progress, as_json)
    )
    report(result, as_json=as_json)


@app.command("resume")
def resume(
    run_id: str = typer.Argument(..., help="The failed pipeline run to continue (id or name)."),
    max_parallel: int = typer.Option(None, "--max-parallel"),
    executor: str = typer.Option(None, "--executor", help="local or ray (default: the executor setting)."),
    progress: bool = PROGRESS,
    on_server: bool = typer.Option(
        False,
        "--on-server",
        help="Resume on the platform server's executor (team mode), as `submit` runs there.",
    ),
    wait: bool = typer.Option(False, "--wait", help="With --on-server: follow the new run to its end."),
    as_json: bool = JSON,
) -> None:
    """Re-run a failed pipeline run from its failed steps on, reusing the steps that succeeded.

    Examples:

        shipyard pipeline resume 3f2c9a0e5b7d4c1e9f8a6b5c4d3e2f1a

        shipyard pipeline resume 3f2c9a0e5b7d4c1e9f8a6b5c4d3e2f1a --on-server --wait
    """
    if on_server:
        remote = RemotePipelines()  # outside team mode: one line saying so
        new_run = remote.resume(get_client().find_run(run_id).run_id)
        _started(remote, new_run, wait=wait, as_json=as_json, what="resumed as pipeline run")
        return
    if wait:
        raise InvalidInput("--wait follows a run on the server: pass --on-server too")
    found = get_client().find_run(run_id)  # a name works too, as everywhere else
    on_step = _step_progress(None, progress, as_json)
    report(executor_named(executor, max_parallel).resume(found.run_id, on_step=on_step), as_json=as_json)


def executor_named(name: str | None, max_parallel: int | None) -> PipelineExecutor:
    """The executor ``--executor``/``--max-parallel`` name (default: the settings')."""
    settings = get_settings()
    return executor_for(name or settings.executor, max_parallel=max_parallel, settings=settings)


def report(result: PipelineRunResult, *, as_json: bool) -> None:
    """Print the steps; a failed run shows each failed step's traceback and exits non-zero."""
    if as_json:
        print_json(result)
    else:
        rows = [
            (step_id, r.status.value, r.attempts, f"{r.duration_s:.2f}s", r.run_id, _brief(r.outputs))
            for step_id, r in result.steps.items()
        ]
        print_table(
            f"pipeline run {result.run_id}: {result.status.value}",
            ["step", "status", "attempts", "time", "run", "outputs"],
            rows,
        )
    failed = [(step_id, r) for step_id, r in result.steps.items() if r.status is StepStatus.FAILED]
    for step_id, step in failed:
        sys.stderr.write(f"--- step {step_id} failed:\n{step.error}\n")
    if failed:
        raise PipelineError(
            f"pipeline run {result.run_id} failed at step(s) {', '.join(s for s, _ in failed)}"
        )


def _brief(outputs: dict[str, object]) -> str:
    text = ", ".join(f"{k}={v}" for k, v in outputs.items())
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------------- on a platform server
@app.command("submit")
def submit(
    target: str = typer.Argument(..., help="A spec file (.yaml) or module:function of a @pipeline."),
    param: list[str] = typer.Option(None, "--param", "-p", help="key=value (repeatable)."),
    experiment: str = typer.Option(None, "--experiment", "-e", help="Default: the pipeline's name."),
    run_name: str = typer.Option(None, "--run-name", help="Default: a generated name."),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Reuse outputs of unchanged steps."),
    wait: bool = typer.Option(False, "--wait", help="Follow the run; exit non-zero unless it succeeds."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Run a pipeline on the platform server (team mode: SHIPYARD_TRACKING_URI); prints its run id.

    It is compiled here and runs there, on the server's executor, with the code installed on the server
    (the same version of the components' modules). Without --wait it returns once the run has started.

    Examples:

        shipyard pipeline submit training.yaml -p n_estimators=200

        shipyard pipeline submit examples.train_pipeline:training -e nightly --wait
    """
    remote = RemotePipelines()  # outside team mode: one line saying so, before compiling anything
    spec = load_spec(target)
    parameters = parse_assignments(param or [])
    bind_parameters(spec, parameters)  # a bad parameter is named here, not after a round trip
    run_id = remote.submit(spec, parameters, experiment=experiment, run_name=run_name, cache=cache)
    _started(remote, run_id, wait=wait, as_json=as_json, what="submitted pipeline run")


def _started(remote: RemotePipelines, run_id: str, *, wait: bool, as_json: bool, what: str) -> None:
    """Print a run the server started; with ``wait``, follow it and exit as it ended."""
    if not wait:
        if as_json:
            print_json({"run_id": run_id})
        else:
            console.print(run_id, markup=False)
        return
    if not as_json:
        console.print(f"{what} {run_id}; waiting for it to end", markup=False)
    _report_state(remote.wait(run_id, on_poll=None if as_json else _progress_lines()), as_json=as_json)


@app.command("status")
def status(
    run: str = typer.Argument(..., help="The pipeline run (id or name)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show a pipeline run's status and each step's (from the server in team mode, else the local store).

    Examples:

        shipyard pipeline status 3f2c9a0e5b7d4c1e9f8a6b5c4d3e2f1a
    """
    run_id = get_client().find_run(run).run_id
    remote = _remote()
    state = remote.status(run_id) if remote else run_status.pipeline_state(get_client(), run_id)
    _report_state(state, as_json=as_json, fail=False)


@app.command("logs")
def logs(
    run: str = typer.Argument(..., help="The pipeline run (id or name)."),
    step: str = typer.Argument(..., help="The step (score.1 for a loop's second iteration)."),
) -> None:
    """Print what a step printed: its stdout, then its stderr (on stderr). Available once the step ended.

    Examples:

        shipyard pipeline logs 3f2c9a0e5b7d4c1e9f8a6b5c4d3e2f1a train
    """
    run_id = get_client().find_run(run).run_id
    remote = _remote()
    found = remote.logs(run_id, step) if remote else run_status.step_logs(get_client(), run_id, step)
    sys.stdout.write(found.stdout)
    sys.stderr.write(found.stderr)


@app.command("cancel")
def cancel(run: str = typer.Argument(..., help="The pipeline run (id or name).")) -> None:
    """Stop a pipeline run on the server: it and its running steps end KILLED.

    Examples:

        shipyard pipeline cancel 3f2c9a0e5b7d4c1e9f8a6b5c4d3e2f1a
    """
    remote = RemotePipelines()
    run_id = get_client().find_run(run).run_id
    remote.cancel(run_id)
    state = remote.wait(run_id, timeout_s=30, poll_s=0.5)
    console.print(f"pipeline run {run_id}: {state.status}", markup=False)


@app.command("list")
def list_(
    experiment: str = typer.Option(None, "--experiment", "-e", help="Only this experiment's runs."),
    max_results: int = typer.Option(50, "--max-results", min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List pipeline runs, newest first (the server's in team mode, else the local store's).

    Examples:

        shipyard pipeline list -e nightly --max-results 10
    """
    remote = _remote()
    if remote:
        runs, _ = remote.list(experiment=experiment, max_results=max_results)
    else:
        client = get_client()
        ids = [client.get_experiment(experiment).experiment_id] if experiment else None
        ids = ids or [e.experiment_id for e in client.list_experiments()]
        runs, _ = run_status.pipeline_runs(client, ids, max_results=max_results)
    if as_json:
        print_json([r.to_dict() for r in runs])
        return
    rows = [(r.run_id, r.pipeline, r.name, r.status, _when(r.start_time), r.user or "") for r in runs]
    print_table(None, ["run id", "pipeline", "name", "status", "started", "user"], rows)


def _remote() -> RemotePipelines | None:
    return RemotePipelines() if get_settings().tracking_uri else None


def _progress_lines() -> Callable[[PipelineRunState], None]:
    """Print each step's status as it changes (a run on a server takes minutes: say what is running)."""
    seen: dict[str, str] = {}

    def show(state: PipelineRunState) -> None:
        for step in state.steps:
            if seen.get(step.key) != step.status:
                seen[step.key] = step.status
                console.print(f"  {step.key}: {step.status}", markup=False)

    return show


def _report_state(state: PipelineRunState, *, as_json: bool, fail: bool = True) -> None:
    """Print the run and its steps; with ``fail``, a run that did not succeed exits non-zero."""
    if as_json:
        print_json(state.to_dict())
    else:
        rows = [
            (
                s.key,
                s.status,
                s.attempts,
                "yes" if s.cached else "",
                s.run_id or "",
                _took(s.start_time, s.end_time),
            )
            for s in state.steps
        ]
        title = f"pipeline run {state.run_id} ({state.pipeline}): {state.status}"
        print_table(title, ["step", "status", "attempts", "cached", "run", "time"], rows)
    if fail and state.status != "FINISHED":
        failed = [s.key for s in state.steps if s.status == "FAILED"]
        detail = f" at step(s) {', '.join(failed)}" if failed else ""
        raise PipelineError(
            f"pipeline run {state.run_id} ended {state.status}{detail}; see `shipyard pipeline logs "
            f"{state.run_id} STEP`"
        )


def _took(start: int | None, end: int | None) -> str:
    return "" if start is None or end is None else f"{(end - start) / 1000:.2f}s"


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")
