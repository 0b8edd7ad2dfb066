"""``shipyard evaluate MODEL DATA``: a model's metrics on labelled data, logged to a run; exit 1 when a
validation threshold fails."""

from __future__ import annotations

from pathlib import Path

import typer

from shipyard.cli.output import console, print_json, print_table
from shipyard.errors import InvalidInput, ModelValidationFailed
from shipyard.evaluation import EvaluationResult, load_thresholds
from shipyard.evaluation import evaluate as run_evaluation
from shipyard.registry.uri import RegistryUri, parse_model_uri


def model_uri(ref: str) -> str:
    """A full URI or a package folder as given; ``churn/3`` and ``churn@champion`` mean ``models:/…``."""
    if ":/" in ref or Path(ref).exists():
        return ref
    return f"models:/{ref}"


def baseline_uri(candidate: str, ref: str) -> str:
    """``--baseline``: a model like the candidate's, or a bare alias or number of the candidate's model."""
    if any(mark in ref for mark in "/@:") or Path(ref).exists():
        return model_uri(ref)
    parsed = parse_model_uri(candidate)
    if not isinstance(parsed, RegistryUri):
        raise InvalidInput(f"--baseline {ref!r} needs a full URI when the model is not a registered one")
    return f"models:/{parsed.name}/{ref}" if ref.isdigit() else f"models:/{parsed.name}@{ref}"


def evaluate(
    model: str = typer.Argument(
        ...,
        help="The model: models:/NAME/VERSION, NAME@ALIAS (models:/ implied), runs:/ID/model or a folder.",
    ),
    data: str = typer.Argument(..., help="Labelled rows: a Parquet/CSV file or URL, or data:NAME@VERSION."),
    targets: str = typer.Option(..., "--targets", help="The label column."),
    model_type: str = typer.Option("classifier", "--model-type", help="classifier or regressor."),
    baseline: str = typer.Option(
        None,
        "--baseline",
        help="A model to compare with, evaluated alike: a URI, or an alias or version of the same model.",
        show_default=False,
    ),
    segments: str = typer.Option(
        None,
        "--segments",
        help="Columns to report metrics per value of, comma-separated.",
        show_default=False,
    ),
    thresholds: Path = typer.Option(
        None,
        "--thresholds",
        help="Validation thresholds: YAML {metric: {min, max, min_delta, max_delta}}, or a gates file.",
        show_default=False,
    ),
    experiment: str = typer.Option(
        None, "--experiment", help="Where the run goes (default: evaluation).", show_default=False
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Evaluate a model on labelled data: standard metrics (per segment too), figures and a JSON report,
    logged to a new run; with --baseline the differences, with --thresholds exit 1 when one fails.

    Examples:

        shipyard evaluate churn@champion eval.parquet --targets target

        shipyard evaluate models:/churn/3 data:holdout@2 --targets churned --segments region,plan --json

        shipyard evaluate churn/3 eval.parquet --targets target --baseline champion --thresholds t.yaml

        shipyard evaluate runs:/3f2a9c/model eval.csv --targets price --model-type regressor
    """
    columns = [c.strip() for c in segments.split(",") if c.strip()] if segments else None
    try:
        result = run_evaluation(
            model_uri(model),
            data,
            targets=targets,
            model_type=model_type,
            segments=columns,
            baseline_model=baseline_uri(model_uri(model), baseline) if baseline else None,
            validation_thresholds=load_thresholds(thresholds) if thresholds is not None else None,
            experiment=experiment,
        )
    except ModelValidationFailed as exc:
        if isinstance(exc.result, EvaluationResult):
            _show(exc.result, as_json)
        raise  # the CLI's error line and exit code 1
    _show(result, as_json)


def _show(result: EvaluationResult, as_json: bool) -> None:
    if as_json:
        print_json(result.to_dict())
        return
    theirs = result.baseline_metrics
    rows = [
        (
            name,
            f"{value:.4g}",
            *((f"{theirs[name]:.4g}", f"{result.differences[name]:+.4g}") if name in theirs else ()),
        )
        for name, value in result.metrics.items()
    ]
    columns = ["metric", "value", *(("baseline", "delta") if result.baseline is not None else ())]
    print_table(
        f"Evaluation of {result.candidate.model_version or result.candidate.model_uri}", columns, rows
    )
    for column, values in result.candidate.segments.items():
        names = list(dict.fromkeys(m for metrics in values.values() for m in metrics))
        table = [(value, *(f"{m[n]:.4g}" if n in m else "" for n in names)) for value, m in values.items()]
        print_table(f"By {column}", [column, *names], table)
    if result.validation:
        checks = [(r.metric, "PASS" if r.passed else "FAIL", r.describe()) for r in result.validation]
        print_table("Validation", ["metric", "result", "check"], checks)
    for note in result.notes:
        console.print(f"note: {note}", markup=False, highlight=False)
    console.print(f"logged to run {result.run_id}", markup=False, highlight=False)
