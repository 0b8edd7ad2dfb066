"""Model performance from delayed ground truth, on real files: payloads written by the real logger (or, where
timestamps must be set, Parquet files of the logger's schema), labels in the artifact store, metrics checked
against scikit-learn."""

from __future__ import annotations

import io
import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_absolute_percentage_error,
    precision_score,
    r2_score,
    recall_score,
    root_mean_squared_error,
)

from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring.performance import (
    LABELS_PREFIX,
    compute_performance,
    infer_task,
    join_labels,
    load_labels,
    performance_metrics,
    save_labels,
)
from shipyard.payloads import SCHEMA, PayloadLogConfig, PayloadLogger, read_payloads
from shipyard.store.artifacts import ArtifactStore

MODEL = "churn"
T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "artifacts"))


def log_requests(
    store: ArtifactStore,
    requests: list[tuple[str, list[Any]]],
    *,
    version: str = "1",
    shadow: bool = False,
    status: int = 200,
    output: str = "predict",
) -> None:
    """Log (request_id, predictions) pairs through the real logger, the way the server does."""
    logger = PayloadLogger(store, PayloadLogConfig(sample_rate=1.0))
    for request_id, predictions in requests:
        logger.log(
            model=MODEL,
            version=version,
            label="challenger" if shadow else "champion",
            protocol="rest",
            request_id=request_id,
            status=status,
            latency_s=0.001,
            inputs={"x": list(range(len(predictions)))},
            outputs={output: np.asarray(predictions)},
            rows=len(predictions),
            shadow=shadow,
        )
    logger.flush()


def write_payloads(store: ArtifactStore, records: list[dict[str, Any]]) -> None:
    """Write records with set timestamps as one payload file of the logger's schema and layout."""
    rows = [
        {
            "model": MODEL,
            "version": "1",
            "label": "champion",
            "protocol": "rest",
            "shadow": False,
            "status": 200,
            "latency_ms": 1.0,
            "inputs": None,
            "error": None,
            **record,
            "rows": len(record["predict"]),
            "outputs": json.dumps({"predict": record.pop("predict")}),
        }
        for record in records
    ]
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), buffer)
    first = min(r["timestamp"] for r in rows)
    store.put_bytes(
        buffer.getvalue(),
        f"payloads/{MODEL}/{first:%Y-%m-%d}/{first:%H%M%S%f}-000000-{uuid.uuid4().hex[:8]}.parquet",
    )


def labels_frame(pairs: dict[str, list[Any]]) -> pd.DataFrame:
    """Labels for request id -> one label per row."""
    ids = [rid for rid, values in pairs.items() for _ in values]
    rows = [i for values in pairs.values() for i in range(len(values))]
    return pd.DataFrame(
        {"request_id": ids, "row": rows, "label": [v for values in pairs.values() for v in values]}
    )


# -- metrics -----------------------------------------------------------------------------------------------


@hypothesis_settings(max_examples=50, deadline=None)
@given(
    data=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 4)), min_size=1, max_size=60),
    as_text=st.booleans(),
)
def test_classification_metrics_match_sklearn(data: list[tuple[int, int]], as_text: bool) -> None:
    y_true = [f"c{t}" if as_text else t for t, _ in data]
    y_pred = [f"c{p}" if as_text else p for _, p in data]
    got = performance_metrics(y_true, y_pred, "classification")
    assert got["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    for name, metric in (("precision", precision_score), ("recall", recall_score), ("f1", f1_score)):
        expected = metric(y_true, y_pred, average="macro", zero_division=0)
        assert got[name] == pytest.approx(expected), name


@hypothesis_settings(max_examples=50, deadline=None)
@given(data=st.lists(st.tuples(st.integers(-800, 800), st.integers(-800, 800)), min_size=2, max_size=60))
def test_regression_metrics_match_sklearn(data: list[tuple[int, int]]) -> None:
    y_true = np.array([t for t, _ in data]) / 8  # exact binary fractions: no rounding noise in the fixture
    y_pred = np.array([p for _, p in data]) / 8
    got = performance_metrics(y_true, y_pred, "regression")
    assert got["mae"] == pytest.approx(mean_absolute_error(y_true, y_pred))
    assert got["rmse"] == pytest.approx(root_mean_squared_error(y_true, y_pred))
    assert got["r2"] == pytest.approx(r2_score(y_true, y_pred))
    if np.any(y_true == 0):
        assert "mape" not in got
    else:
        assert got["mape"] == pytest.approx(mean_absolute_percentage_error(y_true, y_pred))


def test_r2_of_constant_and_single_row_labels_follows_sklearn() -> None:
    assert performance_metrics([2.5, 2.5], [2.5, 2.5], "regression")["r2"] == 1.0
    assert performance_metrics([2.5, 2.5], [2.5, 3.5], "regression")["r2"] == 0.0
    assert np.isnan(performance_metrics([2.5], [3.5], "regression")["r2"])


def test_a_class_never_predicted_has_zero_precision() -> None:
    got = performance_metrics(["a", "a", "b"], ["a", "a", "a"], "classification")
    assert got["precision"] == pytest.approx((2 / 3 + 0) / 2)
    assert got["recall"] == pytest.approx((1 + 0) / 2)


@pytest.mark.parametrize(
    ("labels", "task"),
    [
        ([0, 1, 1, 0], "classification"),
        ([0.0, 1.0, 2.0], "classification"),
        (["yes", "no"], "classification"),
        ([True, False], "classification"),
        (pd.Series(["a", "b"], dtype=object), "classification"),
        (list(range(51)), "regression"),
        ([0.5, 1.25, 3.0], "regression"),
    ],
)
def test_auto_task_follows_the_labels(labels: Any, task: str) -> None:
    assert infer_task(labels) == task
    expected = (
        {"accuracy", "precision", "recall", "f1"} if task == "classification" else {"mae", "rmse", "r2"}
    )
    assert expected <= set(performance_metrics(labels, labels))


def test_text_labels_match_numeric_predictions_as_text() -> None:
    assert performance_metrics(["1", "0", "1"], [1, 0, 0])["accuracy"] == pytest.approx(2 / 3)
    assert performance_metrics(["1", "0"], [1.0, 0.0])["accuracy"] == 1.0  # 1.0 reads "1"
    assert performance_metrics(["1.5", "2"], [1.5, 2.0])["accuracy"] == 1.0
    assert performance_metrics([1, 0], [1.0, 0.0])["accuracy"] == 1.0  # numbers compare as numbers
    assert performance_metrics([True, False], [1, 0])["accuracy"] == 1.0


@pytest.mark.parametrize(
    ("y_true", "y_pred", "task", "message"),
    [
        ([], [], "auto", "no rows"),
        ([1, 2], [1], "auto", "y_true has 2 values but y_pred has 1"),
        (
            [1, 2],
            [1, 2],
            "ranking",
            r"unknown task 'ranking'; choose one of: auto, classification, regression",
        ),
        ([1.0, None], [1.0, 2.0], "regression", "y_true has 1 missing"),
        (["a", "b"], [1.0, 2.0], "regression", "regression needs numeric labels"),
    ],
)
def test_bad_metric_input_is_invalid(y_true: Any, y_pred: Any, task: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        performance_metrics(y_true, y_pred, task)


# -- labels ------------------------------------------------------------------------------------------------


def test_labels_round_trip_keep_their_dtype_and_later_files_win(store: ArtifactStore) -> None:
    first = save_labels(store, MODEL, pd.DataFrame({"request_id": ["a", "b"], "label": ["yes", "no"]}))
    assert re.fullmatch(rf"{LABELS_PREFIX}/{MODEL}/\d{{8}}T\d{{12}}Z-[0-9a-f]{{8}}\.parquet", first)
    second = save_labels(
        store, MODEL, pd.DataFrame({"request_id": ["b", "c"], "row": [0, 2], "label": ["yes", "no"]})
    )
    assert second > first
    labels = load_labels(store, MODEL)
    assert list(labels.columns) == ["request_id", "row", "label"]
    got = {(r.request_id, r.row): r.label for r in labels.itertuples()}
    assert got == {("a", 0): "yes", ("b", 0): "yes", ("c", 2): "no"}

    save_labels(store, "numeric", pd.DataFrame({"request_id": ["a"], "label": [3]}))
    assert pd.api.types.is_integer_dtype(load_labels(store, "numeric")["label"])


def test_no_labels_load_as_an_empty_frame(store: ArtifactStore) -> None:
    labels = load_labels(store, MODEL)
    assert labels.empty and list(labels.columns) == ["request_id", "row", "label"]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"request_id": ["a"]}), "need the column.*label"),
        (pd.DataFrame({"id": ["a"], "label": [1]}), "need the column.*request_id.*they have: id, label"),
        (pd.DataFrame({"request_id": [], "label": []}), "no rows"),
        (
            pd.DataFrame({"request_id": ["a", None, ""], "label": [1, 0, 1]}),
            r"2 label\(s\).*request_id.*row 1",
        ),
        (pd.DataFrame({"request_id": ["a", "b"], "label": [1, None]}), r"null label \(first at row 1\)"),
        (pd.DataFrame({"request_id": ["a", "b"], "row": [0, -1], "label": [1, 1]}), "non-negative.*row 1"),
        (
            pd.DataFrame({"request_id": ["a", "b", "a"], "row": [0, 0, 0], "label": [1, 1, 0]}),
            r"\('a', 0\) more than once \(first repeat at row 2\)",
        ),
    ],
)
def test_bad_labels_are_rejected(store: ArtifactStore, frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        save_labels(store, MODEL, frame)
    assert not store.exists(LABELS_PREFIX)


# -- the join and the job ----------------------------------------------------------------------------------


def test_windows_versions_and_overall_accuracy_end_to_end(store: ArtifactStore) -> None:
    # Hour 10: r1 [1,0] and r2 [1]; hour 11: r3 [0,0,1]. Version 2 shadows every request.
    write_payloads(
        store,
        [
            {"timestamp": T0 + timedelta(minutes=5), "request_id": "r1", "predict": [1, 0]},
            {"timestamp": T0 + timedelta(minutes=50), "request_id": "r2", "predict": [1]},
            {"timestamp": T0 + timedelta(minutes=70), "request_id": "r3", "predict": [0, 0, 1]},
        ],
    )
    write_payloads(
        store,
        [
            {"timestamp": T0 + timedelta(minutes=m), "request_id": rid, "predict": p, "version": "2"}
            | {"shadow": True, "label": "challenger"}
            for m, rid, p in ((5, "r1", [1, 1]), (50, "r2", [1]), (70, "r3", [1, 0, 1]))
        ],
    )
    save_labels(store, MODEL, labels_frame({"r1": [1, 1], "r2": [0], "r3": [0, 0, 1]}))

    result = compute_performance(store, MODEL, freq="1h")
    assert result.task == "classification" and result.rows == 6
    assert result.metrics["accuracy"] == pytest.approx(4 / 6)  # r1 row 1 and r2 missed
    assert [(w.start, w.rows) for w in result.windows] == [(T0, 3), (T0 + timedelta(hours=1), 3)]
    assert result.windows[0].metrics["accuracy"] == pytest.approx(1 / 3)
    assert result.windows[1].metrics["accuracy"] == 1.0
    assert set(result.by_version) == {"1", "2"}
    assert result.by_version["1"]["accuracy"] == pytest.approx(4 / 6)
    assert result.by_version["2"]["accuracy"] == pytest.approx(4 / 6)  # r1 both right, r2 and r3[0] wrong
    assert result.unmatched_labels == 0 and result.unlabeled_predictions == 0

    later = compute_performance(store, MODEL, since=(T0 + timedelta(hours=1)).replace(tzinfo=None))
    assert later.rows == 3 and [w.start for w in later.windows] == [T0 + timedelta(hours=1)]
    assert later.unmatched_labels == 3  # r1 and r2 were served before the window
    payload = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert payload["windows"][1]["start"] == (T0 + timedelta(hours=1)).isoformat()
    assert payload["by_version"]["2"]["accuracy"] == pytest.approx(4 / 6)


def test_corrections_unmatched_labels_and_unlabeled_predictions(store: ArtifactStore) -> None:
    log_requests(store, [("a", [1, 0]), ("b", [0]), ("c", [1])])
    log_requests(store, [("err", [1])], status=500)  # not answered: neither a prediction nor skipped
    log_requests(store, [("proba", [[0.1, 0.9]])], output="predict_proba")  # no "predict": skipped
    save_labels(store, MODEL, labels_frame({"a": [0, 0], "b": [1], "ghost": [1]}))
    save_labels(store, MODEL, pd.DataFrame({"request_id": ["a"], "row": [0], "label": [1]}))  # correction

    result = compute_performance(store, MODEL)
    assert result.rows == 3  # a[0], a[1], b
    assert result.metrics["accuracy"] == pytest.approx(2 / 3)  # a[0] corrected to 1; b wrong
    assert result.unmatched_labels == 1  # ghost
    assert result.unlabeled_predictions == 1  # c
    assert result.skipped_records == 1 and result.labels == 4 and result.predictions == 4


def test_a_reused_request_id_keeps_the_latest_record(store: ArtifactStore) -> None:
    log_requests(store, [("a", [0]), ("b", [1])])
    time.sleep(0.01)  # payload timestamps have millisecond precision
    log_requests(store, [("a", [1])])
    save_labels(store, MODEL, labels_frame({"a": [1], "b": [1]}))
    joined = join_labels(read_payloads(store, MODEL), load_labels(store, MODEL))
    assert joined.duplicate_requests == 1
    assert joined.data["prediction"].tolist() == [1, 1]
    assert compute_performance(store, MODEL).metrics["accuracy"] == 1.0


def test_join_of_100k_records_pairs_every_label() -> None:
    n = 100_000
    rng = np.random.default_rng(0)
    predictions = rng.integers(0, 2, (n, 3))
    ids = [f"req-{i}" for i in range(n)]
    payloads = pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=n, freq="s", tz="UTC"),
            "request_id": ids,
            "version": "1",
            "shadow": False,
            "status": 200,
            "outputs": [json.dumps({"predict": p.tolist()}) for p in predictions],
        }
    )
    labels = pd.DataFrame({"request_id": ids, "row": 1, "label": predictions[:, 1]})
    joined = join_labels(payloads, labels)
    assert len(joined.data) == n and joined.unlabeled_predictions == 2 * n
    assert (joined.data["prediction"] == joined.data["label"]).all()


def test_no_labels_is_not_found_and_says_how_to_add_them(store: ArtifactStore) -> None:
    log_requests(store, [("a", [1])])
    with pytest.raises(NotFound, match=r"'churn' has no ground-truth labels.*shipyard monitor labels churn"):
        compute_performance(store, MODEL)


def test_nothing_joined_is_invalid_and_counts_both_sides(store: ArtifactStore) -> None:
    log_requests(store, [("a", [1, 0])])
    save_labels(store, MODEL, labels_frame({"x": [1], "y": [0], "z": [1]}))
    with pytest.raises(InvalidInput, match=r"3 label\(s\), 2 served prediction\(s\)"):
        compute_performance(store, MODEL)


@pytest.mark.parametrize("freq", ["fortnightly", "1ME", "-1h"])
def test_bad_freq_is_invalid(store: ArtifactStore, freq: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(repr(freq))):
        compute_performance(store, MODEL, freq=freq)


def test_unknown_task_is_invalid(store: ArtifactStore) -> None:
    with pytest.raises(InvalidInput, match="unknown task 'ranking'"):
        compute_performance(store, MODEL, task="ranking")
