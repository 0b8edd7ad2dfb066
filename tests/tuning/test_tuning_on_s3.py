"""Tuning with the artifact root on an object store (moto's S3 server on loopback): trials in worker
processes, each a pipeline run whose records and artifacts go to the bucket."""

from __future__ import annotations

import json

import pytest

import shipyard
from shipyard.config import Settings
from shipyard.tuning import tune

pytestmark = pytest.mark.s3


def test_parallel_pipeline_trials_keep_their_artifacts_in_the_bucket(s3_settings: Settings) -> None:
    grid = {
        "name": "quad-s3",
        "objective": {"metric": "score", "direction": "maximize"},
        "parameters": [{"name": "x", "type": "float", "low": 1, "high": 3, "step": 1}],
        "algorithm": {"name": "grid"},
        "max_trials": 3,
        "parallel_trials": 2,
    }
    result = tune(grid, "tests.tuning.objectives:quadratic_pipeline", settings=s3_settings)
    assert result.count("COMPLETE") == 3 and result.best_params == {"x": 2.0}
    client = shipyard.get_client(s3_settings)
    trials = json.loads(client.read_artifact(result.run_id, "tuning/trials.json"))  # from the bucket
    assert [t["number"] for t in trials] == [0, 1, 2]
    trial_run = client.get_run(result.best.run_id)  # type: ignore[union-attr]
    pipeline_run = client.get_run(trial_run.tags["shipyard.tuning.pipeline_run"])
    assert pipeline_run.artifact_uri.startswith(s3_settings.artifact_root + "/")
    assert b"quadratic-pipeline" in client.read_artifact(pipeline_run.run_id, "pipeline.yaml")
