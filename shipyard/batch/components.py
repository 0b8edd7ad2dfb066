"""Batch inference as a pipeline step."""

from __future__ import annotations

from shipyard.batch.predict import batch_predict as _batch_predict
from shipyard.pipelines import Dataset, Input, Output, component


@component
def batch_predict(
    model: str,
    data: Input[Dataset],
    predictions: Output[Dataset],
    keys: str = "",
    probabilities: bool = False,
    batch_rows: int = 100_000,
    workers: int = 1,
    prefer: str = "auto",
) -> int:
    """Score ``data`` (a Parquet/CSV file or folder) with ``model`` into ``predictions`` (Parquet), recorded
    on the step's run and in lineage; returns the rows scored. ``keys``: columns to copy, ``a,b`` (empty:
    every column the model does not read); ``prefer``: ``auto`` (a verified ONNX copy when the package has
    one), ``native`` or ``onnx``."""
    chosen = [k.strip() for k in keys.split(",") if k.strip()] or None
    result = _batch_predict(
        model,
        data.path,
        predictions.path,
        keys=chosen,
        probabilities=probabilities,
        batch_rows=batch_rows,
        workers=workers,
        prefer=prefer,
        overwrite=True,  # a retried attempt writes its output again
        output_format="parquet",
    )
    return result.rows
