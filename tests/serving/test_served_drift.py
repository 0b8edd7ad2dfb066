"""From served traffic to a drift report: requests through the server, its payload log, the monitor job."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from shipyard.monitoring import run_monitor, save_baseline
from shipyard.serving.payloads import PayloadLogConfig, PayloadLogger, read_payloads
from shipyard.serving.repository import ModelConfig
from shipyard.store.artifacts import ArtifactStore
from tests.serving.conftest import Registered, RunningServer


def test_shifted_served_traffic_shows_up_as_drift(
    registered: Registered, start_server: Callable[..., RunningServer], tmp_path: Path
) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    payloads = PayloadLogger(store, PayloadLogConfig(sample_rate=1.0, max_seconds=3600))
    server = start_server(
        [ModelConfig("bc-watch", "models:/bc@champion")],
        registered.settings,
        payloads=payloads,
        monitoring=store,
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

    # The server re-exports the monitoring gauges: one scrape covers serving and drift.
    scraped = {
        (s.name, s.labels.get("feature")): s.value
        for family in text_string_to_metric_families(httpx.get(f"{server.url}/metrics").text)
        for s in family.samples
        if s.labels.get("model") == "bc-watch"
    }
    assert scraped[("shipyard_drift_share", None)] == result.drift.drift_share
    assert scraped[("shipyard_feature_drift_detected", "mean radius")] == 1.0
    assert ("shipyard_requests_total", None) in scraped


def test_every_answer_carries_the_request_id_its_payload_log_records(
    registered: Registered, start_server: Callable[..., RunningServer], tmp_path: Path
) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    payloads = PayloadLogger(store, PayloadLogConfig(sample_rate=1.0, max_seconds=3600))
    server = start_server(
        [ModelConfig("bc-ids", "models:/bc@champion")], registered.settings, payloads=payloads
    )
    frame = registered.frame
    records = frame.iloc[:2].to_dict(orient="records")
    v2 = {
        "inputs": [
            {"name": c, "datatype": "FP64", "shape": [2], "data": frame[c].iloc[:2].tolist()}
            for c in frame.columns
        ]
    }
    with httpx.Client(base_url=server.url) as client:
        made = client.post("/models/bc-ids/predict", json=records)
        given = client.post("/models/bc-ids/predict", json=records, headers={"X-Request-ID": "order-17"})
        in_body = client.post("/v2/models/bc-ids/infer", json={**v2, "id": "body-id"})
        v2_header = client.post("/v2/models/bc-ids/infer", json=v2, headers={"X-Request-ID": "hdr-2"})
        bad = client.post("/models/bc-ids/predict", json=records, headers={"X-Request-ID": "x" * 300})
    assert [r.status_code for r in (made, given, in_body, v2_header)] == [200] * 4
    assert len(made.headers["x-request-id"]) == 32
    assert given.headers["x-request-id"] == "order-17"
    assert in_body.headers["x-request-id"] == "body-id" and in_body.json()["id"] == "body-id"
    assert v2_header.headers["x-request-id"] == "hdr-2" and "id" not in v2_header.json()
    assert bad.status_code == 400 and "X-Request-ID" in bad.json()["error"]
    payloads.flush()
    logged = read_payloads(store, "bc-ids")["request_id"].tolist()
    assert logged == [made.headers["x-request-id"], "order-17", "body-id", "hdr-2"]
