"""validate_data in a real pipeline: passes clean data, fails the step naming the column, logs counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.datasets import load_breast_cancer

from shipyard.config import Settings
from shipyard.data import compute_statistics, infer_schema
from shipyard.pipelines import compile_pipeline
from shipyard.pipelines.executors import LocalExecutor, StepStatus
from shipyard.tracking import get_client
from tests.pipelines import data_pipeline_components as dc


@pytest.fixture
def schema_path(tmp_path: Path) -> str:
    path = tmp_path / "schema.yaml"
    path.write_text(infer_schema(compute_statistics(load_breast_cancer(as_frame=True).frame)).to_yaml())
    return str(path)


def test_clean_data_passes_and_the_report_and_counts_are_recorded(
    schema_path: str, settings: Settings
) -> None:
    result = LocalExecutor(max_parallel=1, settings=settings).run(
        compile_pipeline(dc.checked), {"schema_path": schema_path}
    )
    step = result.steps["validate-data"]
    assert step.status is StepStatus.SUCCEEDED and step.outputs["output"] == 0
    assert json.loads(Path(step.outputs["report"]).read_text()) == {"ok": True, "anomalies": []}
    metrics = get_client(settings).get_run(step.run_id).metrics
    assert metrics == {"anomalies.errors": 0.0, "anomalies.warnings": 0.0}


def test_error_anomalies_fail_the_step_naming_the_column(schema_path: str, settings: Settings) -> None:
    result = LocalExecutor(max_parallel=1, settings=settings).run(
        compile_pipeline(dc.checked), {"schema_path": schema_path, "drop": "mean texture"}
    )
    step = result.steps["validate-data"]
    assert step.status is StepStatus.FAILED
    assert "DataValidationError" in (step.error or "") and "mean texture" in (step.error or "")
    assert get_client(settings).get_run(step.run_id).metrics["anomalies.errors"] == 1.0
