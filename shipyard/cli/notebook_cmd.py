"""``shipyard notebook``: a Jupyter notebook whose cells carry Kale's tags, as a pipeline.

``to-pipeline`` writes the notebook as a module of ``@component`` steps and a ``@pipeline`` (see
:mod:`shipyard.notebooks.codegen`); ``run`` writes it into the store's folder and runs it as
``shipyard pipeline run`` would: each step a nested run, cached, with its inputs and outputs in lineage.
"""

from __future__ import annotations

from pathlib import Path

import typer

from shipyard.cli.output import console
from shipyard.cli.pipeline_cmd import (
    CACHE,
    EXECUTOR,
    JSON,
    MAX_PARALLEL,
    PARAMS,
    PROGRESS,
    executor_named,
    run_spec,
)
from shipyard.config import get_settings
from shipyard.notebooks.analysis import plan_notebook
from shipyard.notebooks.codegen import import_notebook_pipeline, pipeline_function_name, write_module
from shipyard.pipelines import compile_pipeline

app = typer.Typer(
    help=(
        "Turn a Jupyter notebook into a pipeline, by its cells' tags (Kubeflow Kale's): imports, functions, "
        "parameters, step:NAME, after:A,B, metrics, skip. An untagged code cell continues the one before it."
    ),
    no_args_is_help=True,
)

_NOTEBOOK = typer.Argument(..., help="The .ipynb file.", show_default=False)
_ALLOW_PICKLE = typer.Option(
    False,
    "--allow-pickle",
    help="Pickle values with no safe format between steps (loading them runs code: trusted notebooks only).",
)
_TRUST = typer.Option(
    None, "--trust", help="A type (module.Class) to load from skops files though skops does not trust it."
)


@app.command("to-pipeline")
def to_pipeline(
    notebook: Path = _NOTEBOOK,
    output: Path = typer.Option(..., "--output", "-o", help="The Python module to write."),
    allow_pickle: bool = _ALLOW_PICKLE,
    trust: list[str] = _TRUST,
) -> None:
    """Write the notebook as a module: one @component per step, and a @pipeline with its parameters.

    Examples:

        shipyard notebook to-pipeline churn.ipynb -o churn_pipeline.py

        shipyard notebook to-pipeline churn.ipynb -o churn_pipeline.py --allow-pickle
    """
    plan = plan_notebook(notebook)
    target = _relative(output)
    source = write_module(plan, allow_pickle=allow_pickle, trusted=trust or (), target=target)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(source, encoding="utf-8")
    steps = ", ".join(s.name for s in plan.steps)
    console.print(
        f"wrote {output}: {len(plan.steps)} step(s) ({steps}); run it with "
        f"shipyard pipeline run {target}:{pipeline_function_name(plan)}",
        markup=False,
    )


@app.command("run")
def run(
    notebook: Path = _NOTEBOOK,
    param: list[str] = PARAMS,
    experiment: str = typer.Option(None, "--experiment", "-e", help="Default: the notebook's name."),
    max_parallel: int = MAX_PARALLEL,
    executor: str = EXECUTOR,
    cache: bool = CACHE,
    allow_pickle: bool = _ALLOW_PICKLE,
    trust: list[str] = _TRUST,
    progress: bool = PROGRESS,
    as_json: bool = JSON,
) -> None:
    """Run the notebook as a pipeline: each step in a worker, as a nested run, its unchanged steps cached.

    Examples:

        shipyard notebook run churn.ipynb -p lr=0.1

        shipyard notebook run churn.ipynb --no-cache --json
    """
    folder = get_settings().home / "notebooks"  # where the workers import the written module from
    found = import_notebook_pipeline(notebook, folder, allow_pickle=allow_pickle, trusted=trust or ())
    runner = executor_named(executor, max_parallel)
    run_spec(runner, compile_pipeline(found), param, experiment, cache, progress, as_json)


def _relative(path: Path) -> str:
    """``path`` as typed for `shipyard pipeline run PATH:function`: relative to the working directory."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
