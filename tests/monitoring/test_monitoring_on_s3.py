"""Monitoring with the artifact root on an object store (moto's S3 server on loopback): the payload logs, the
baseline and the reports all live in the bucket, and ``shipyard monitor`` finds them through the settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.datasets import load_breast_cancer

from shipyard.config import Settings
from shipyard.monitoring.baseline import baseline_path
from shipyard.store.artifacts import ArtifactStore
from tests.cli.test_cli import run_cli
from tests.conftest import S3Server
from tests.monitoring.test_monitoring import MODEL, log_traffic, shifted, traffic

pytestmark = pytest.mark.s3


def test_the_monitoring_cli_reads_and_writes_the_bucket(
    s3_settings: Settings,
    s3_server: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SHIPYARD_ARTIFACT_ROOT", s3_settings.artifact_root)
    monkeypatch.setenv("SHIPYARD_ARTIFACT_STORAGE_OPTIONS", s3_server.storage_options_json)
    features = load_breast_cancer(as_frame=True).frame.drop(columns=["target"])
    data = tmp_path / "train.parquet"
    features.to_parquet(data)
    code, out, err = run_cli(capsys, "monitor", "baseline", MODEL, str(data))
    assert code == 0, err
    store = ArtifactStore.configured(s3_settings)
    assert store.exists(baseline_path(MODEL))
    log_traffic(store, shifted(traffic(features), list(features.columns[:20])))
    code, out, err = run_cli(capsys, "monitor", "run", MODEL, "--since", "1h", "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["rows"] == 300 and payload["drift"]["dataset_drift"] is True
    assert store.exists(payload["report_path"]) and store.exists(payload["metrics_path"])
