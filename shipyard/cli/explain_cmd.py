"""``shipyard models explain MODEL``: SHAP values or permutation importance of a model on rows of a table,
or (``--record``) global importance from the version's baseline stored on the version."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from shipyard.cli.output import print_json, print_table
from shipyard.errors import InvalidInput


def _model_uri(ref: str) -> str:
    """A full URI or a package folder as given; ``churn/3`` and ``churn@champion`` mean ``models:/…``."""
    if ":/" in ref or Path(ref).exists():
        return ref
    return f"models:/{ref}"


def explain(
    model: str = typer.Argument(
        ...,
        help="The model: models:/NAME/VERSION, NAME@ALIAS (models:/ implied), runs:/ID/model or a folder.",
    ),
    data: str = typer.Option(
        None, "--data", help="The rows to explain: a Parquet or CSV file (or URL).", show_default=False
    ),
    method: str = typer.Option("auto", "--method", help="auto, shap or permutation (needs --targets)."),
    targets: str = typer.Option(
        None, "--targets", help="The label column of --data, for permutation importance.", show_default=False
    ),
    max_background: int = typer.Option(
        100, "--max-background", min=1, help="Rows of the model's baseline the SHAP values are relative to."
    ),
    record: bool = typer.Option(
        False,
        "--record",
        help="Compute global importance from the version's baseline and store it on the version (no --data).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output (with each row's values)."),
) -> None:
    """Explain a model: global feature importance (mean |SHAP|, or the score drop when a feature is
    shuffled) on the rows of --data; --json adds each row's SHAP values and the expected value. With
    --record, importance over the version's packaged baseline is stored on the version (tag
    shipyard.importance) for the model card.

    Examples:

        shipyard models explain churn@champion --data customers.parquet

        shipyard models explain models:/churn/3 --data holdout.parquet --method permutation --targets churned

        shipyard models explain churn/3 --data customers.parquet --method shap --json

        shipyard models explain churn/3 --record
    """
    from shipyard.explain import explain as run_explain
    from shipyard.explain import record_importance

    uri = _model_uri(model)
    if record:
        if data is not None:
            raise InvalidInput("--record computes importance on the version's baseline: drop --data")
        recorded = record_importance(uri, max_background=max_background)
        if as_json:
            print_json({"model": uri, **dataclasses.asdict(recorded)})
            return
        rows = [(name, f"{value:.4g}") for name, value in recorded.importance.items()]
        print_table(f"Importance recorded on {uri} ({recorded.explainer})", ["feature", "importance"], rows)
        return
    if data is None:
        raise InvalidInput("give the rows to explain with --data FILE (or --record for the baseline)")
    from shipyard.data.sample import as_frame

    frame = as_frame(data, f"--data {data}")
    if targets is not None and targets not in frame.columns:
        raise InvalidInput(
            f"--targets {targets!r} is not a column of {data}; it has: {', '.join(frame.columns)}"
        )
    explanation = run_explain(uri, frame, method=method, targets=targets, max_background=max_background)
    if as_json:
        print_json({"model": uri, **explanation.to_dict()})
        return
    rows = [(name, f"{value:.4g}") for name, value in explanation.ranked()]
    what = "mean |SHAP|" if explanation.method == "shap" else f"{explanation.output_space} drop"
    print_table(f"{uri}: {explanation.explainer} on {len(frame)} rows", ["feature", what], rows)
