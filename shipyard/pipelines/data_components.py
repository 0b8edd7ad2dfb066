"""Ready-made pipeline components for data: validate a dataset against its schema.

Use them in a ``@pipeline`` like your own components::

    from shipyard.pipelines.data_components import validate_data

    checked = validate_data(data=raw.outputs["data"], schema_path="schemas/churn.yaml")
    train(data=raw.outputs["data"]).after(checked)
"""

from __future__ import annotations

import json

from shipyard.data.schema import Schema, Severity, validate
from shipyard.errors import DataValidationError
from shipyard.pipelines.dsl import component
from shipyard.pipelines.types import Artifact, Dataset, Input, Output
from shipyard.tracking.fluent import active_run


@component
def validate_data(data: Input[Dataset], schema_path: str, report: Output[Artifact]) -> int:
    """Check ``data`` (Parquet or CSV) against the schema file at ``schema_path``.

    Writes every anomaly to ``report`` (JSON), logs the counts on the step's run (``anomalies.errors``,
    ``anomalies.warnings``) and returns how many anomalies there were.

    Raises:
        DataValidationError: error-severity anomalies (the step fails), each column and kind named.
    """
    result = validate(data.path, Schema.load(schema_path))
    with open(report.path, "w", encoding="utf-8") as out:
        json.dump(result.to_dict(), out, indent=2, default=str)
    errors = [a for a in result.anomalies if a.severity is Severity.ERROR]
    run = active_run()
    if run is not None:
        run.log_metrics(
            {"anomalies.errors": len(errors), "anomalies.warnings": len(result.anomalies) - len(errors)}
        )
    if errors:
        listed = "; ".join(a.message for a in errors[:10])
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise DataValidationError(f"{len(errors)} error anomalies in {data.path}: {listed}{more}")
    return len(result.anomalies)
