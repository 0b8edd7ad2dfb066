"""``shipyard pipeline``: compile a ``@pipeline`` to its spec, and run a spec (or a pipeline) locally."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import typer

from shipyard.cli.output import console, print_json, print_table
from shipyard.config import get_settings
from shipyard.errors import InvalidInput, PipelineError
from shipyard.pipelines import Pipeline, PipelineSpec, compile_pipeline, parse_assignments
from shipyard.pipelines.executors import (
    PipelineExecutor,
    PipelineRunResult,
    StepResult,
    StepStatus,
    executor_for,
)
from shipyard.pipelines.executors.engine import StepCallback
from shipyard.tracking import get_client

app = typer.Typer(help="Compile and run pipelines.", no_args_is_help=True)


def load_spec(target: str) -> PipelineSpec:
    """A spec from a YAML file, or compiled from ``module:function`` (importable from the working dir)."""
    path = Path(target)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise InvalidInput(f"pipeline spec file {target!r} does not exist")
        return PipelineSpec.from_yaml(path.read_text(encoding="utf-8"), source=str(path))
    module_name, sep, attribute = target.partition(":")
    if not sep or not module_name or not attribute:
        raise InvalidInput(f"{target!r} is neither a spec file (.yaml) nor module:function")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # pipelines usually live beside the user's project
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise InvalidInput(f"cannot import module {module_name!r} for {target!r}: {exc}") from exc
    found = getattr(module, attribute, None)
    if not isinstance(found, Pipeline):
        raise InvalidInput(f"{target!r} is not a @pipeline (found {type(found).__name__})")
    return compile_pipeline(found)


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


_PROGRESS = typer.Option(
    None,
    "--progress/--no-progress",
    help="A line as each step starts and ends (default: on a terminal, and never with --json).",
    show_default=False,
)


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
    param: list[str] = typer.Option(None, "--param", "-p", help="key=value (repeatable)."),
    experiment: str = typer.Option(None, "--experiment", "-e", help="Default: the pipeline's name."),
    max_parallel: int = typer.Option(None, "--max-parallel", help="Steps at once (default: CPU count)."),
    executor: str = typer.Option(
        None, "--executor", help="local or ray (default: the executor setting; Ray's address: ray_address)."
    ),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Reuse outputs of unchanged steps."),
    progress: bool = _PROGRESS,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Run a pipeline; each step runs in an isolated worker (process or Ray task) as a nested run.

    Examples:

        shipyard pipeline run training.yaml -p n_estimators=200

        shipyard pipeline run examples.train_pipeline:training --no-cache --json
    """
    runner = _executor(executor, max_parallel)
    spec = load_spec(target)
    result = runner.run(
        spec,
        parse_assignments(param or []),
        experiment=experiment,
        cache=cache,
        on_step=_step_progress(spec, progress, as_json),
    )
    report(result, as_json=as_json)


@app.command("resume")
def resume(
    run_id: str = typer.Argument(..., help="The failed pipeline run to continue (id or name)."),
    max_parallel: int = typer.Option(None, "--max-parallel"),
    executor: str = typer.Option(None, "--executor", help="local or ray (default: the executor setting)."),
    progress: bool = _PROGRESS,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Re-run a failed pipeline run from its failed steps on, reusing the steps that succeeded.

    Examples:

        shipyard pipeline resume 3f2c9a0e5b7d4c1e9f8a6b5c4d3e2f1a
    """
    found = get_client().find_run(run_id)  # a name works too, as everywhere else
    on_step = _step_progress(None, progress, as_json)
    report(_executor(executor, max_parallel).resume(found.run_id, on_step=on_step), as_json=as_json)


def _executor(name: str | None, max_parallel: int | None) -> PipelineExecutor:
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
