"""From served traffic to a drift report: requests through the server, its payload log, the monitor job."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_breast_cancer

import shipyard
from shipyard.monitoring import parse_rules, run_monitor, save_baseline, save_labels
from shipyard.payloads import PayloadLogConfig, PayloadLogger, read_payloads
from shipyard.pipelines import Scheduler
from shipyard.pipelines.schedule import from_ms
from shipyard.serving.repository import ModelConfig
from shipyard.store.artifacts import ArtifactStore
from tests.cli.test_cli import run_cli
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


def test_registered_baseline_labels_performance_alerts_and_a_tracked_run(
    registered: Registered,
    start_server: Callable[..., RunningServer],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The whole loop: a version logged with its training baseline is served; later ground truth joins its
    answers by request id; the monitoring job reports drift, skew and accuracy, fires an accuracy rule and
    records a tracked run; the CLI shows the same and schedules the job with the pipeline scheduler."""
    settings = registered.settings
    frame = registered.frame
    truth = load_breast_cancer(as_frame=True).target
    with shipyard.start_run("serving", settings=settings) as run:
        info = shipyard.models.log(
            registered.model, name="model", run=run, input_example=frame.head(5), baseline=frame
        )
    version = shipyard.models.register(info.uri, "bc-loop", settings=settings)
    store = ArtifactStore(settings.artifact_root)
    payloads = PayloadLogger(store, PayloadLogConfig(sample_rate=1.0, max_seconds=3600))
    server = start_server(
        [ModelConfig("bc-loop", f"models:/bc-loop/{version.version}")], settings, payloads=payloads
    )
    shifted = list(frame.columns[:5])
    served = frame.sample(300, replace=True, random_state=2)
    expected = truth.loc[served.index].to_numpy()
    served = served.reset_index(drop=True)
    for column in shifted:
        served[column] = served[column] + 3 * frame[column].std()
    answers, ids = [], []
    with httpx.Client(base_url=server.url) as client:
        for start in range(0, len(served), 30):
            reply = client.post(
                "/models/bc-loop/predict", json=served.iloc[start : start + 30].to_dict(orient="records")
            )
            assert reply.status_code == 200
            answers.extend(reply.json()["predictions"])
            ids.append(reply.headers["x-request-id"])
    payloads.flush()
    labelled = pd.DataFrame(
        {
            "request_id": [ids[i // 30] for i in range(len(served))],
            "row": [i % 30 for i in range(len(served))],
            "label": expected,
        }
    )
    save_labels(store, "bc-loop", labelled.iloc[:240])  # the last two requests' truth is not known yet

    rule = parse_rules({"rules": [{"name": "acc", "metric": "accuracy", "op": "<", "threshold": 1.01}]})
    result = run_monitor(store, "bc-loop", settings=settings, rules=rule, min_rows=100)
    assert result.baseline_source == f"models:/bc-loop/{version.version}" and result.version == "1"
    assert sorted(c.column for c in result.drift.columns if c.drift_detected) == sorted(shifted)
    assert {a.column for a in result.skew if a.kind.value == "out_of_range"} >= set(shifted)
    accuracy = float(np.mean(np.asarray(answers[:240]) == expected[:240]))
    assert result.performance is not None and result.performance.rows == 240
    assert result.performance.metrics["accuracy"] == pytest.approx(accuracy)
    assert result.performance.unlabeled_predictions == 60
    assert [a.rule for a in result.alerts_fired] == ["acc"]
    assert result.alerts_fired[0].value == pytest.approx(accuracy)
    gauges = {
        (s.name, s.labels.get("metric")): s.value
        for f in text_string_to_metric_families(store.read_bytes(result.metrics_path).decode())
        for s in f.samples
    }
    assert gauges[("shipyard_model_performance", "accuracy")] == pytest.approx(accuracy)
    assert gauges[("shipyard_labeled_rows", None)] == 240
    tracked = shipyard.get_client(settings).get_run(result.run_id)
    assert tracked.metrics["performance/accuracy"] == pytest.approx(accuracy)
    assert tracked.metrics["drift_share"] == result.drift.drift_share
    artifacts = {a.path for a in shipyard.get_client(settings).list_artifacts(result.run_id)}
    assert {"drift_report.html", "monitor_result.json"} <= artifacts

    # The CLI, on the same stores.
    monkeypatch.setenv("SHIPYARD_HOME", str(settings.home))
    code, out, err = run_cli(capsys, "monitor", "run", "bc-loop", "--min-rows", "100")
    assert code == 0, err
    assert "performance on 240 labelled rows: accuracy" in out and "training-serving skew" in out
    code, out, err = run_cli(capsys, "monitor", "performance", "bc-loop", "--json")
    assert code == 0, err
    assert json.loads(out)["metrics"]["accuracy"] == pytest.approx(accuracy)
    code, out, err = run_cli(
        capsys, "monitor", "schedule", "bc-loop", "--cron", "* * * * *", "--since", "1d", "--min-rows", "100"
    )
    assert code == 0, err
    scheduler = Scheduler(settings)
    (created,) = scheduler.client.list()
    ran = scheduler.run_pending(now=from_ms(created.next_run_at))
    assert [(r.schedule, r.status) for r in ran] == [("monitor-bc-loop", "succeeded")], ran
    monitored = shipyard.get_client(settings).runs_with_tag("shipyard.monitoring.model", "bc-loop")
    assert len(monitored) == 3  # by the API, by the CLI, and by the scheduled pipeline


def test_a_model_served_under_another_name_finds_its_registered_baseline(
    registered: Registered,
    start_server: Callable[..., RunningServer],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``models:/bc-src@champion`` served as ``prod-bc``: the payload log records which registered version
    answered, so the monitor finds the baseline packaged with it without ``--registered``."""
    settings = registered.settings
    frame = registered.frame
    with shipyard.start_run("serving", settings=settings) as run:
        info = shipyard.models.log(
            registered.model, name="model", run=run, input_example=frame.head(5), baseline=frame
        )
    version = shipyard.models.register(info.uri, "bc-src", settings=settings)
    shipyard.models.set_alias("bc-src", "champion", version.version, settings=settings)
    store = ArtifactStore(settings.artifact_root)
    payloads = PayloadLogger(store, PayloadLogConfig(sample_rate=1.0, max_seconds=3600))
    # Clients see version "live", not the registry's number: only the recorded source leads back to it.
    config = ModelConfig("prod-bc", "models:/bc-src@champion", version="live")
    server = start_server([config], settings, payloads=payloads)
    served = frame.sample(120, replace=True, random_state=4).reset_index(drop=True)
    with httpx.Client(base_url=server.url) as client:
        for start in range(0, len(served), 30):
            records = served.iloc[start : start + 30].to_dict(orient="records")
            assert client.post("/models/prod-bc/predict", json=records).status_code == 200
    payloads.flush()
    logged = read_payloads(store, "prod-bc")
    assert set(logged["model_uri"]) == {f"models:/bc-src/{version.version}"}

    # The CLI drives run_monitor with the same stores (one run: the drift tests dominate its time).
    monkeypatch.setenv("SHIPYARD_HOME", str(settings.home))
    code, out, err = run_cli(capsys, "monitor", "run", "prod-bc", "--min-rows", "100", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["baseline"] == f"models:/bc-src/{version.version}" and result["version"] == "live"
    assert result["rows"] == 120 and not result["drift"]["dataset_drift"]
