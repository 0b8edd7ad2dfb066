"""The monitoring job end to end on real files: payload logs written by the real logger, a breast-cancer
baseline, reports, Prometheus metrics, alert webhooks to a local HTTP receiver, and the CLI."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_breast_cancer
from sklearn.tree import DecisionTreeClassifier

import shipyard
import shipyard.monitoring
from shipyard.config import Settings
from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring import load_baseline, load_rules, parse_rules, run_monitor, save_baseline
from shipyard.monitoring.alerts import shown_url
from shipyard.monitoring.job import served_inputs
from shipyard.payloads import PayloadLogConfig, PayloadLogger
from shipyard.store.artifacts import ArtifactStore
from tests.cli.test_cli import run_cli
from tests.conftest import free_port

MODEL = "cancer"


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame.drop(columns=["target"])


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "artifacts"))


def shifted(frame: pd.DataFrame, columns: list[str], by_std: float = 3.0) -> pd.DataFrame:
    out = frame.copy()
    for column in columns:
        out[column] = out[column] + by_std * frame[column].std()
    return out


def log_traffic(
    store: ArtifactStore,
    frame: pd.DataFrame,
    *,
    per_request: int = 10,
    shadow: bool = False,
    status: int = 200,
    model: str = MODEL,
) -> None:
    """Log ``frame`` as requests of ``per_request`` rows, the way the server does."""
    logger = PayloadLogger(store, PayloadLogConfig(sample_rate=1.0))
    for start in range(0, len(frame), per_request):
        chunk = frame.iloc[start : start + per_request]
        logger.log(
            model=model,
            version="1",
            label="production",
            protocol="rest",
            request_id=f"r{start}",
            status=status,
            latency_s=0.002,
            inputs={c: chunk[c].to_numpy() for c in chunk.columns},
            outputs={"predict": np.zeros(len(chunk))},
            rows=len(chunk),
            shadow=shadow,
        )
    logger.flush()


def traffic(features: pd.DataFrame, n: int = 300, seed: int = 1) -> pd.DataFrame:
    return features.sample(n=n, random_state=seed).reset_index(drop=True)


# -- baseline ----------------------------------------------------------------------------------------------


def test_baseline_round_trip_and_sampling(store: ArtifactStore, features: pd.DataFrame) -> None:
    save_baseline(store, MODEL, features)
    pd.testing.assert_frame_equal(load_baseline(store, MODEL), features.reset_index(drop=True))
    save_baseline(store, MODEL, features, max_rows=100, seed=3)
    sampled = load_baseline(store, MODEL)
    assert len(sampled) == 100 and list(sampled.columns) == list(features.columns)
    assert store.exists(f"monitoring/baselines/{MODEL}.parquet")


@pytest.mark.parametrize("name", ["", "a/b", "..", "a\\b", "."])
def test_model_names_are_validated(store: ArtifactStore, features: pd.DataFrame, name: str) -> None:
    with pytest.raises(InvalidInput):
        save_baseline(store, name, features)


def test_missing_baseline_is_not_found_and_says_how(store: ArtifactStore) -> None:
    with pytest.raises(NotFound, match=r"'cancer' has no monitoring baseline.*shipyard monitor baseline"):
        run_monitor(store, MODEL)


# -- the job -----------------------------------------------------------------------------------------------


def test_unshifted_traffic_does_not_drift(store: ArtifactStore, features: pd.DataFrame) -> None:
    save_baseline(store, MODEL, features)
    log_traffic(store, traffic(features))
    result = run_monitor(store, MODEL)
    assert result.rows == 300 and result.records == 30 and result.skipped_records == 0
    assert not result.drift.dataset_drift
    assert result.drift.drift_share < 0.2
    assert len(result.drift.columns) == 30


def test_shifted_traffic_drifts_in_the_shifted_columns(store: ArtifactStore, features: pd.DataFrame) -> None:
    save_baseline(store, MODEL, features)
    moved = list(features.columns[:10])
    log_traffic(store, shifted(traffic(features), moved))
    now = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    # 10 of 30 columns: a third, so a dataset threshold of 0.3 (the default 0.5 needs half the columns).
    result = run_monitor(store, MODEL, share_threshold=0.3, now=now)
    drifted = {c.column for c in result.drift.columns if c.drift_detected}
    assert set(moved) <= drifted and len(drifted) <= 13
    assert result.drift.dataset_drift

    assert result.report_path == f"monitoring/reports/{MODEL}/20240506T070809Z.html"
    assert result.json_path == f"monitoring/reports/{MODEL}/20240506T070809Z.json"
    assert result.metrics_path == f"monitoring/metrics/{MODEL}.prom"
    html = store.read_bytes(result.report_path).decode()
    assert html.lstrip().lower().startswith("<!doctype html") and moved[0] in html

    saved = json.loads(store.read_bytes(result.json_path))
    assert saved["model"] == MODEL and saved["rows"] == 300
    assert saved["drift"]["dataset_drift"] is True
    assert set(moved) <= set(saved["drifted_columns"])
    assert saved["drift"] == json.loads(json.dumps(result.drift.to_dict()))

    families = {
        f.name: f for f in text_string_to_metric_families(store.read_bytes(result.metrics_path).decode())
    }
    (share,) = families["shipyard_drift_share"].samples
    assert share.labels == {"model": MODEL} and share.value == pytest.approx(result.drift.drift_share)
    assert families["shipyard_dataset_drift"].samples[0].value == 1.0
    scores = {s.labels["feature"]: s for s in families["shipyard_feature_drift_score"].samples}
    detected = {s.labels["feature"]: s.value for s in families["shipyard_feature_drift_detected"].samples}
    assert len(scores) == len(detected) == 30
    for column in result.drift.columns:
        assert scores[column.column].labels == {"model": MODEL, "feature": column.column, "test": column.test}
        assert scores[column.column].value == pytest.approx(column.statistic)
        assert detected[column.column] == float(column.drift_detected)


def test_a_test_override_by_name_reaches_the_verdict_and_the_gauges(
    store: ArtifactStore, features: pd.DataFrame
) -> None:
    save_baseline(store, MODEL, features)
    log_traffic(store, traffic(features))
    column = str(features.columns[0])
    result = run_monitor(store, MODEL, tests={column: "chisquare_evidently"})
    chosen = {c.column: c.test for c in result.drift.columns}
    assert chosen[column] == "chisquare_evidently" and chosen[str(features.columns[1])] == "ks"
    assert 'test="chisquare_evidently"' in store.read_bytes(result.metrics_path).decode()


def test_too_few_rows_is_refused_naming_count_and_window(
    store: ArtifactStore, features: pd.DataFrame
) -> None:
    save_baseline(store, MODEL, features)
    log_traffic(store, traffic(features, n=20))
    with pytest.raises(InvalidInput, match=r"served 20 usable input rows .*all logged payloads.*at least 50"):
        run_monitor(store, MODEL)
    since = datetime(2020, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidInput, match=r"2020-01-01T00:00:00\+00:00"):
        run_monitor(store, MODEL, since=since)
    assert run_monitor(store, MODEL, min_rows=20).rows == 20


def test_shadow_failed_and_tensor_records_are_left_out(store: ArtifactStore, features: pd.DataFrame) -> None:
    save_baseline(store, MODEL, features)
    drifting = shifted(traffic(features, seed=2), list(features.columns))
    log_traffic(store, drifting, shadow=True)
    log_traffic(store, drifting, status=500)
    log_traffic(store, traffic(features))
    logger = PayloadLogger(store, PayloadLogConfig(sample_rate=1.0))
    for inputs in ([[1.0, 2.0], [3.0, 4.0]], {"a": [1, 2], "b": [3]}, {"a": 1.0}):
        logger.log(
            model=MODEL, version="1", label="production", protocol="v2", request_id=None, status=200,
            latency_s=0.001, inputs=inputs, outputs=None, rows=2,
        )  # fmt: skip
    logger.flush()
    result = run_monitor(store, MODEL)
    assert result.rows == 300 and result.records == 30 and result.skipped_records == 3
    assert not result.drift.dataset_drift


def test_extra_and_missing_columns_are_reported(store: ArtifactStore, features: pd.DataFrame) -> None:
    save_baseline(store, MODEL, features)
    served = traffic(features).drop(columns=["mean radius"]).assign(session=np.arange(300))
    log_traffic(store, served)
    result = run_monitor(store, MODEL)
    assert result.extra_columns == ("session",)
    assert result.drift.missing_in_current == ("mean radius",)
    assert len(result.drift.columns) == 29


def test_since_window_filters(store: ArtifactStore, features: pd.DataFrame) -> None:
    save_baseline(store, MODEL, features)
    log_traffic(store, shifted(traffic(features, seed=3), list(features.columns)))
    time.sleep(0.01)
    middle = datetime.now(UTC)
    time.sleep(0.01)
    log_traffic(store, traffic(features, n=200))
    everything = run_monitor(store, MODEL)
    assert everything.rows == 500 and everything.drift.dataset_drift
    recent = run_monitor(store, MODEL, since=middle)
    assert recent.rows == 200 and not recent.drift.dataset_drift
    assert recent.window == (middle, None)
    old = run_monitor(store, MODEL, until=middle)
    assert old.rows == 300 and old.drift.dataset_drift
    with pytest.raises(InvalidInput, match="window is empty"):
        run_monitor(store, MODEL, since=middle, until=middle - timedelta(seconds=1))


def test_served_inputs_pads_columns_missing_from_some_records() -> None:
    frame, used, skipped = served_inputs(['{"a": [1, 2]}', '{"b": ["x"]}', None, "not json"])
    assert (used, skipped) == (2, 2)
    assert frame["a"].tolist()[:2] == [1, 2] and pd.isna(frame["a"].tolist()[2])
    assert pd.isna(frame["b"]).tolist() == [True, True, False] and frame["b"].iloc[2] == "x"


# -- alerts ------------------------------------------------------------------------------------------------


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[dict[str, object]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    rec.thread.start()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()
    rec.thread.join(5)


def test_alert_fires_and_posts_to_webhook(
    store: ArtifactStore, features: pd.DataFrame, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    save_baseline(store, MODEL, features)
    log_traffic(store, shifted(traffic(features), list(features.columns[:10])))
    rules = parse_rules(
        {
            "rules": [
                {"name": "share", "metric": "drift_share", "op": ">=", "threshold": 0.2,
                 "webhook": receiver.url},
                {"name": "quiet", "metric": "dataset_drift", "op": ">", "threshold": 0.5},  # 0.5 share: no
                {"name": "radius", "metric": "feature_drift", "feature": "mean radius", "op": "<",
                 "threshold": 0.01},
                {"name": "down", "metric": "drift_share", "op": ">", "threshold": 0.0,
                 "webhook": f"http://127.0.0.1:{free_port()}/hook"},
            ]
        }
    )  # fmt: skip
    with caplog.at_level("WARNING", logger="shipyard.monitoring"):
        result = run_monitor(store, MODEL, rules=rules)
    fired = {a.rule: a for a in result.alerts_fired}
    assert set(fired) == {"share", "radius", "down"}
    assert fired["share"].delivered is True and fired["radius"].delivered is None
    assert fired["down"].delivered is False and "ConnectError" in (fired["down"].error or "")
    assert receiver.bodies == [
        {
            "rule": "share",
            "model": MODEL,
            "metric": "drift_share",
            "value": result.drift.drift_share,
            "threshold": 0.2,
            "report": result.report_path,
        }
    ]
    assert "alert share fired for model cancer" in caplog.text
    assert "webhook" in caplog.text and "failed" in caplog.text
    saved = json.loads(store.read_bytes(result.json_path))
    assert [a["rule"] for a in saved["alerts_fired"]] == ["share", "radius", "down"]
    # A webhook URL is often its own secret: reports and logs show its host only.
    assert fired["share"].webhook == shown_url(receiver.url) and "/hook" not in str(saved)
    assert "/hook" not in caplog.text and "/hook" not in (fired["down"].error or "")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T0/B0/SECRET", "https://hooks.slack.com/…"),
        ("https://user:pass@hooks.example.com:8443/x?token=SECRET", "https://hooks.example.com:8443/…"),
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
    ],
)
def test_webhook_urls_are_shown_without_their_secrets(url: str, shown: str) -> None:
    assert shown_url(url) == shown


def test_rules_file_with_unknown_field_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n  - name: x\n    metric: drift_share\n    op: '>'\n    threshold: 0.1\n    colour: red\n"
    )
    with pytest.raises(InvalidInput, match=r"rules\.0\.colour"):
        load_rules(path)
    path.write_text("rules:\n  - name: x\n    metric: feature_drift\n    op: '>'\n    threshold: 0.1\n")
    with pytest.raises(InvalidInput, match="needs `feature:`"):
        load_rules(path)
    path.write_text("rules:\n  - name: x\n    metric: drift_share\n    op: '=='\n    threshold: 0.1\n")
    with pytest.raises(InvalidInput, match=r"rules\.0\.op"):
        load_rules(path)


def test_rule_on_unknown_feature_is_refused_before_work(store: ArtifactStore, features: pd.DataFrame) -> None:
    save_baseline(store, MODEL, features)
    rules = parse_rules(
        {"rules": [{"name": "x", "metric": "feature_drift", "feature": "nope", "op": ">", "threshold": 1}]}
    )
    with pytest.raises(InvalidInput, match="'nope', which the baseline does not have"):
        run_monitor(store, MODEL, rules=rules)


# -- CLI ---------------------------------------------------------------------------------------------------


def test_cli_baseline_and_run(
    settings: Settings, tmp_path: Path, features: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "train.parquet"
    features.to_parquet(data)
    code, out, _ = run_cli(capsys, "monitor", "run", MODEL)
    assert code == 3
    code, out, err = run_cli(capsys, "monitor", "baseline", MODEL, str(data))
    assert code == 0, err
    assert "569 rows, 30 columns" in out

    store = ArtifactStore(settings.artifact_root)
    log_traffic(store, shifted(traffic(features), list(features.columns[:20])))
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: big\n    metric: dataset_drift\n    op: '>='\n    threshold: 1\n")
    code, out, err = run_cli(
        capsys, "monitor", "run", MODEL, "--since", "1h", "--rules", str(rules), "--json"
    )
    assert code == 0, err
    payload = json.loads(out)
    assert payload["rows"] == 300 and payload["drift"]["dataset_drift"] is True
    assert [a["rule"] for a in payload["alerts_fired"]] == ["big"]
    assert store.exists(payload["report_path"]) and store.exists(payload["metrics_path"])

    code, out, err = run_cli(capsys, "monitor", "run", MODEL)
    assert code == 0, err
    assert "DRIFT" in out and "mean radius" in out and "report:" in out

    # For CI: an alert that fires fails the command, with one line naming it; the report is still written.
    code, out, err = run_cli(capsys, "monitor", "run", MODEL, "--rules", str(rules), "--fail-on-alert")
    assert code == 3 and out.startswith(f"{MODEL}: ALERT (1 fired), DRIFT") and "report:" in out
    assert err == "error: 1 alert(s) fired: big\n"
    code, out, _ = run_cli(
        capsys, "monitor", "run", MODEL, "--rules", str(rules), "--fail-on-alert", "--json"
    )
    assert code == 3 and json.loads(out)["alerts_fired"][0]["rule"] == "big"

    code, _, err = run_cli(capsys, "monitor", "run", MODEL, "--min-rows", "1000")
    assert code == 2 and err.startswith("error: ") and "at least 1000" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "monitor", "run", MODEL, "--since", "yesterday")
    assert code == 2 and "'yesterday' is not a duration" in err


def test_all_is_sorted_and_complete() -> None:
    exported = list(shipyard.monitoring.__all__)
    assert exported == sorted(exported, key=lambda n: (0 if n.isupper() else 1 if n[:1].isupper() else 2, n))
    for name in exported:
        assert hasattr(shipyard.monitoring, name)


def test_cli_headline_names_drifted_columns_and_fired_alerts_below_the_dataset_threshold(
    settings: Settings, tmp_path: Path, features: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ArtifactStore(settings.artifact_root)
    save_baseline(store, MODEL, features)
    log_traffic(store, shifted(traffic(features), ["mean radius"]))  # 1 of 30 columns: no dataset drift
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: radius\n    metric: drift_share\n    op: '>'\n    threshold: 0\n")
    code, out, err = run_cli(capsys, "monitor", "run", MODEL, "--rules", str(rules))
    assert code == 0, err  # without --fail-on-alert an alert does not fail the command
    headline = out.splitlines()[0]
    assert "no drift" not in headline
    assert headline.startswith(f"{MODEL}: ALERT (1 fired), drift in some columns (share below the dataset")
    assert "alert radius: drift_share" in out


def test_cli_baseline_keeps_only_the_registered_models_inputs(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = load_breast_cancer(as_frame=True).frame
    features = frame.drop(columns=["target"])
    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(features, frame["target"])
    with shipyard.start_run("train", settings=settings) as run:
        info = shipyard.models.log(model, run=run, input_example=features.head(3))
    shipyard.models.register(info.uri, "bc", settings=settings)
    data = tmp_path / "train.parquet"
    frame.assign(customer=range(len(frame))).to_parquet(data)

    code, out, err = run_cli(capsys, "monitor", "baseline", "bc", str(data))
    assert code == 0, err
    assert "left out target, customer (not inputs of bc's signature)" in out and "30 columns" in out
    assert list(load_baseline(ArtifactStore(settings.artifact_root), "bc")) == list(features)
    # Served under another name: the registry's name says which signature to follow.
    code, out, err = run_cli(capsys, "monitor", "baseline", "bc-prod", str(data), "--registered", "bc")
    assert code == 0 and "left out target, customer" in out, err
    # A model the registry does not know keeps every column but those dropped by hand.
    code, out, err = run_cli(capsys, "monitor", "baseline", "other", str(data), "--drop", "target")
    assert code == 0 and "left out target (--drop)" in out and "31 columns" in out, err
    code, _, err = run_cli(capsys, "monitor", "baseline", "other", str(data), "--drop", "label")
    assert code == 2 and "--drop 'label'" in err and err.count("\n") == 1
