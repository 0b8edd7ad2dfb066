"""From served traffic to a drift report: requests through the server, its payload log, the monitor job."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from shipyard.monitoring import run_monitor, save_baseline
from shipyard.serving.payloads import PayloadLogConfig, PayloadLogger
from shipyard.serving.repository import ModelConfig
from shipyard.store.artifacts import ArtifactStore
from tests.serving.conftest import Registered, RunningServer


def test_shifted_served_traffic_shows_up_as_drift(
    registered: Registered, start_server: Callable[..., RunningServer], tmp_path: Path
) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    payloads = PayloadLogger(store, PayloadLogConfig(sample_rate=1.0, max_seconds=3600))
    server = start_server(
        [ModelConfig("bc-watch", "models:/bc@champion")], registered.settings, payloads=payloads
    )
    frame = registered.frame
    save_baseline(store, "bc-watch", frame)

    shifted = list(frame.columns[:10])
    served = frame.sample(400, replace=True, random_state=0).reset_index(drop=True)
    for column in shifted:
        served[column] = served[column] + 3 * frame[column].std()
    with httpx.Client(base_url=server.url) as client:
        for start in range(0, len(served), 40):
            records = served.iloc[start : start + 40].to_dict(orient="records")
            assert client.post("/models/bc-watch/predict", json=records).status_code == 200
    payloads.flush()

    result = run_monitor(store, "bc-watch", min_rows=100, share_threshold=0.3)
    assert result.rows == 400
    assert sorted(c.column for c in result.drift.columns if c.drift_detected) == sorted(shifted)
    assert result.drift.dataset_drift
    report = store.read_bytes(result.report_path).decode()
    assert "mean radius" in report and "<svg" in report
