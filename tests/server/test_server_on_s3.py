"""A platform server whose artifact destination is a bucket (moto's S3 server on loopback): it opens the
bucket with the storage options, and team-mode clients (a pipeline's workers too) reach the files through
it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shipyard.pipelines import compile_pipeline
from shipyard.pipelines.executors import LocalExecutor, StepStatus
from shipyard.store.artifacts import ArtifactStore
from shipyard.tracking import get_client
from tests.conftest import S3Server, make_settings
from tests.pipelines import executor_components as comps
from tests.server.test_server import running_server

pytestmark = [pytest.mark.s3, pytest.mark.slow]
S, C = StepStatus.SUCCEEDED, StepStatus.CACHED


def test_pipeline_steps_stage_through_a_server_that_keeps_artifacts_in_a_bucket(
    s3_server: S3Server, tmp_path: Path
) -> None:
    root = s3_server.root("server")
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(tmp_path / "server-home"),
        "SHIPYARD_ARTIFACT_ROOT": root,
        "SHIPYARD_ARTIFACT_STORAGE_OPTIONS": s3_server.storage_options_json,
    }
    with running_server(env) as url:
        # Explicit settings, nothing in the environment: the workers find the server through them.
        settings = make_settings(tmp_path / "client-home", tracking_uri=url)
        executor = LocalExecutor(max_parallel=2, settings=settings)
        first = executor.run(compile_pipeline(comps.realistic), {"n": 10})
        assert {k: r.status for k, r in first.steps.items()} == {"make-data": S, "fit": S, "publish": S}
        assert first.steps["publish"].outputs["output"] == "mean=4.5"
        model_uri = first.steps["fit"].outputs["model"]
        assert model_uri.startswith("shipyard-artifacts://") and model_uri.endswith("/steps/fit/model")
        assert get_client(settings).get_run(first.steps["fit"].run_id).metrics == {"acc": 1.0}
        # The stored outputs are checked through the server and reused.
        second = executor.run(compile_pipeline(comps.realistic), {"n": 10})
        assert {k: r.status for k, r in second.steps.items()} == {"make-data": C, "fit": C, "publish": C}
    bucket = ArtifactStore(root, storage_options=s3_server.storage_options)
    stored = [info.path for info in bucket.list(recursive=True)]
    assert [p for p in stored if p.endswith("/steps/fit/model")], stored
    assert not (tmp_path / "client-home" / "artifacts").exists()
