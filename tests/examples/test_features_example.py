"""The feature-store example (examples/features/) end to end: apply the repository, run the pipeline
(generate → aggregate → a point-in-time training set → a registered model), materialize, and serve the model
by customer id through deploy.yaml; lineage goes from the model back to the feature views."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import shipyard
from shipyard.lineage.client import LineageClient
from tests.conftest import console, free_port, make_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "features"


@pytest.mark.slow
def test_the_churn_example_from_data_to_serving_by_customer_id(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE / "repo", tmp_path / "repo", ignore=shutil.ignore_patterns("data", "__pycache__"))
    shutil.copy(EXAMPLE / "deploy.yaml", tmp_path / "deploy.yaml")
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(tmp_path / "home"),
        "SHIPYARD_CEILING_DIRECTORIES": str(tmp_path),
        "PYTHONPATH": str(root),
    }
    repo = str(tmp_path / "repo")
    applied = console("features", "apply", "--repo", repo, env=env, cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    ran = subprocess.run(
        [sys.executable, "-m", "examples.features.pipeline", f"repo={repo}", "customers=800"],
        env=env, cwd=root, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "train      succeeded" in ran.stdout
    loaded = console("features", "materialize-incremental", "--repo", repo, "--json", env=env, cwd=tmp_path)
    assert loaded.returncode == 0, loaded.stderr

    settings = make_settings(tmp_path / "home")
    version = shipyard.models.get("models:/churn-features@champion", settings=settings)
    package = shipyard.models.load("models:/churn-features@champion", settings=settings)
    assert package.manifest.lineage["feature_service"] == {"name": "churn", "version": 1}
    uris = {
        a.uri
        for a in LineageClient(shipyard.TrackingClient(settings))
        .upstream(version.source_uri)
        .artifacts.values()
    }
    assert {"features:feature_view/customer_activity@1", "features:feature_view/customer_profile@1"} <= uris
    # customer_activity reads the aggregate step's output: lineage goes on through that step.
    assert any(u.startswith("file://") and u.endswith("/steps/aggregate/snapshots") for u in uris), uris

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "shipyard.cli", "serve", str(tmp_path / "deploy.yaml"), "--port", str(port)],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "the server did not get ready"
            time.sleep(0.3)
        answer = httpx.post(f"{url}/models/churn/predict", json=[{"customer_id": 5}, {"customer_id": 17}])
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["predictions"]) == 2
        looked = httpx.post(
            f"{url}/v1/features/get-online-features",
            json={"feature_service": "churn", "entities": {"customer_id": [5]}},
        ).json()
        statuses = {
            name: r["statuses"][0]
            for name, r in zip(looked["metadata"]["feature_names"], looked["results"], strict=True)
        }
        assert statuses["spend_30d"] == "PRESENT" and statuses["is_pro"] == "PRESENT"
    finally:
        server.terminate()
        server.wait(timeout=30)
