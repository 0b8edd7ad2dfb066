"""Models with the artifact root on an object store (moto's S3 server on loopback): logged, registered, loaded
back and served by ``shipyard serve`` with its payload logs in the bucket."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard import models
from shipyard.config import Settings
from shipyard.payloads import read_payloads
from shipyard.store.artifacts import ArtifactStore
from tests.conftest import S3Server, free_port
from tests.serving.test_serve_cli import wait_ready

pytestmark = pytest.mark.s3


def test_a_model_is_logged_registered_loaded_and_served_from_the_bucket(
    s3_settings: Settings, s3_server: S3Server, tmp_path: Path
) -> None:
    data = load_iris(as_frame=True)
    frame = data.frame.drop(columns=["target"])
    model = LogisticRegression(max_iter=500).fit(frame, data.target)
    with shipyard.start_run("s3-models", settings=s3_settings) as run:
        info = models.log(model, name="model", run=run, input_example=frame.head(3))
    assert run.artifact_uri.startswith(s3_settings.artifact_root + "/")
    version = models.register(info.uri, "iris", settings=s3_settings)
    models.set_alias("iris", "champion", version.version, settings=s3_settings)
    assert version.package_uri.startswith("s3://")
    expected = model.predict(frame.head(10))
    for uri in (info.uri, "models:/iris/1", "models:/iris@champion"):
        loaded = models.load(uri, settings=s3_settings)
        np.testing.assert_array_equal(loaded.predict(frame.head(10)), expected)
    # An exported archive imported again is copied into the bucket, under the root's registry/.
    exported = models.export("iris", 1, tmp_path / "iris.tar.gz", settings=s3_settings)
    copied = models.import_archive(exported, name="iris-copy", settings=s3_settings)
    assert copied.package_uri.startswith(s3_settings.artifact_root + "/registry/iris-copy/")
    loaded = models.load("models:/iris-copy/1", settings=s3_settings)
    np.testing.assert_array_equal(loaded.predict(frame.head(10)), expected)

    # `shipyard serve` in its own process finds the model and writes its payload log through the settings.
    port = free_port()
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(s3_settings.home),
        "SHIPYARD_ARTIFACT_ROOT": s3_settings.artifact_root,
        "SHIPYARD_ARTIFACT_STORAGE_OPTIONS": s3_server.storage_options_json,
    }
    command = ["serve", "models:/iris@champion", "--port", str(port), "--payload-log-rate", "1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "shipyard.cli", *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        answer = httpx.post(url + "/models/iris/predict", json=frame.head(3).to_dict(orient="records"))
        assert answer.json() == {"predictions": expected[:3].tolist()}
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0, (proc.stderr.read() if proc.stderr else b"").decode()[-2000:]
    logged = read_payloads(ArtifactStore.configured(s3_settings), "iris")
    assert len(logged) == 1 and logged["status"].tolist() == [200]
