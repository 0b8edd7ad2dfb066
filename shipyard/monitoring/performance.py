"""Model performance over time, once ground truth arrives: labels joined to the payload logs by request id.

The inference server logs every sampled request with its ``X-Request-ID`` (:mod:`shipyard.payloads`).
Ground truth usually comes later (a fraud chargeback, a support ticket, a day's sales), so it is stored apart
with :func:`save_labels`, one Parquet file per delivery under ``monitoring/labels/<model>/``; a later
delivery corrects an earlier one on the same ``(request_id, row)``. :func:`compute_performance` joins the
labels to the predictions served in a time window and computes metrics overall, per version (shadow
versions included, so a challenger is compared with the champion on the same requests) and per time bucket.

Comparing labels with predictions: when both sides are numeric (or bool) they are compared as numbers
(label ``1`` matches prediction ``1.0``); when either side holds strings, both are compared as text, with
integer-valued numbers written without a fraction (label ``"1"`` matches prediction ``1`` and ``1.0``).
"""

from __future__ import annotations

import io
import itertools
import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from shipyard.data.model_metrics import finite
from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring.baseline import check_model_name
from shipyard.monitoring.window import describe, iso, utc
from shipyard.payloads import read_payloads
from shipyard.store.artifacts import ArtifactStore

LABELS_PREFIX = "monitoring/labels"
TASKS = ("auto", "classification", "regression")
# "auto" takes integer labels with at most this many distinct values as classes.
MAX_AUTO_CLASSES = 50
KEY = ["request_id", "row"]
JOINED_COLUMNS = ["timestamp", "request_id", "row", "version", "shadow", "prediction", "label"]


# -- labels ------------------------------------------------------------------------------------------------


def save_labels(store: ArtifactStore, model: str, labels: pd.DataFrame) -> str:
    """Store one delivery of ground truth for ``model``.

    Args:
        labels: columns ``request_id`` (the served ``X-Request-ID``; converted to text), ``label`` (numbers,
            bools or strings; the dtype is kept) and optionally ``row`` (the position of the labelled row
            in its request, default 0).

    Returns:
        The store-relative path written, ``monitoring/labels/<model>/<YYYYmmddTHHMMSSffffffZ>-<id>.parquet``;
        names sort in write order, and on the same ``(request_id, row)`` a later file wins.

    Raises:
        InvalidInput: a bad model name, no rows, a missing column, a null or empty request id, a null label,
            a row that is not a non-negative integer, or a ``(request_id, row)`` given twice.
    """
    check_model_name(model)
    frame = _check_labels(labels)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    path = f"{LABELS_PREFIX}/{model}/{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}.parquet"
    store.put_bytes(buffer.getvalue(), path)
    return path


def load_labels(store: ArtifactStore, model: str) -> pd.DataFrame:
    """Every label of ``model`` (columns request_id, row, label); a later file wins on the same key."""
    prefix = f"{LABELS_PREFIX}/{check_model_name(model)}"
    files = (
        sorted(f.path for f in store.list(prefix, recursive=True) if f.path.endswith(".parquet"))
        if store.exists(prefix)
        else []
    )
    if not files:
        return pd.DataFrame(
            {
                "request_id": pd.Series(dtype=str),
                "row": pd.Series(dtype="int64"),
                "label": pd.Series(dtype=object),
            }
        )
    frames = [pd.read_parquet(io.BytesIO(store.read_bytes(path))) for path in files]
    merged = pd.concat(frames, ignore_index=True)[["request_id", "row", "label"]]
    return merged.drop_duplicates(KEY, keep="last").reset_index(drop=True)


def _check_labels(labels: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in ("request_id", "label") if c not in labels.columns]
    if missing:
        raise InvalidInput(
            f"labels need the column(s) {', '.join(missing)}; they have: "
            f"{', '.join(map(str, labels.columns)) or 'none'}"
        )
    if labels.empty:
        raise InvalidInput("labels have no rows")
    frame = labels.reset_index(drop=True)
    ids = frame["request_id"]
    bad = ids.isna().to_numpy() | (ids.astype(str).str.strip() == "").to_numpy()
    _reject(bad, "a null or empty request_id")
    _reject(frame["label"].isna().to_numpy(), "a null label")
    if "row" in frame.columns:
        rows = pd.to_numeric(frame["row"], errors="coerce")
        bad = (rows.isna() | (rows < 0) | (rows % 1 != 0)).to_numpy()
        _reject(bad, "a row that is not a non-negative integer")
        rows = rows.astype("int64")
    else:
        rows = pd.Series(0, index=frame.index, dtype="int64")
    out = pd.DataFrame({"request_id": ids.astype(str), "row": rows, "label": frame["label"]})
    duplicated = out.duplicated(KEY).to_numpy()
    if duplicated.any():
        first = int(np.flatnonzero(duplicated)[0])
        raise InvalidInput(
            f"labels give (request_id, row) ({out.at[first, 'request_id']!r}, {out.at[first, 'row']}) "
            f"more than once (first repeat at row {first}); {int(duplicated.sum())} repeat(s) in all"
        )
    return out


def _reject(bad: np.ndarray, what: str) -> None:
    if bad.any():
        raise InvalidInput(
            f"{int(bad.sum())} label(s) have {what} (first at row {int(np.flatnonzero(bad)[0])})"
        )


# -- the join ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class JoinedLabels:
    """Served predictions with their labels, and what did not join.

    Attributes:
        data: one row per labelled prediction: timestamp, request_id, row, version, shadow, prediction, label.
        predictions: non-shadow predictions served (after dropping reused request ids).
        labels: labels given.
        unmatched_labels: labels with no served prediction (shadow or not) on their (request_id, row).
        unlabeled_predictions: non-shadow predictions without a label.
        skipped_records: answered requests whose outputs lack the output as a list of scalars.
        duplicate_requests: non-shadow records dropped because a later record reused their request id.
        null_predictions: predictions that were null or NaN (dropped).
        records_without_id: answered requests logged without a request id (they cannot join).
    """

    data: pd.DataFrame
    predictions: int = 0
    labels: int = 0
    unmatched_labels: int = 0
    unlabeled_predictions: int = 0
    skipped_records: int = 0
    duplicate_requests: int = 0
    null_predictions: int = 0
    records_without_id: int = 0


def join_labels(payloads: pd.DataFrame, labels: pd.DataFrame, *, output: str = "predict") -> JoinedLabels:
    """Join payload records (as :func:`~shipyard.payloads.read_payloads` gives them) with labels.

    Each record answered with status 200 becomes one row per value of its ``output`` (the outputs JSON
    holds ``{output: [one value per input row]}``), keyed by (request_id, position). When a client reused a
    request id, the latest non-shadow record (and the latest shadow record per version) wins.
    """
    labels = _label_keys(labels)
    answered = payloads[(payloads["status"] == 200)]
    has_id = answered["request_id"].notna() & (answered["request_id"].astype(str) != "")
    records = answered[has_id]
    records = records.assign(
        request_id=records["request_id"].astype(str), shadow=records["shadow"].fillna(False).astype(bool)
    ).sort_values("timestamp", kind="stable")
    served = records[~records["shadow"]]
    latest = served.drop_duplicates("request_id", keep="last")
    shadow = records[records["shadow"]].drop_duplicates(["request_id", "version"], keep="last")
    records = pd.concat([latest, shadow])

    predictions, skipped = _explode(records, output)
    null = predictions["prediction"].isna()
    predictions = predictions[~null]

    main = predictions[~predictions["shadow"]]
    main_keys = main[KEY].merge(labels[KEY], on=KEY, how="left", indicator=True)
    served_keys = predictions[KEY].drop_duplicates()
    label_keys = labels[KEY].merge(served_keys, on=KEY, how="left", indicator=True)

    joined = predictions.merge(labels, on=KEY, how="inner")[JOINED_COLUMNS]
    joined = joined.sort_values(["timestamp", "request_id", "row"], kind="stable").reset_index(drop=True)
    return JoinedLabels(
        data=joined,
        predictions=len(main),
        labels=len(labels),
        unmatched_labels=int((label_keys["_merge"] == "left_only").sum()),
        unlabeled_predictions=int((main_keys["_merge"] == "left_only").sum()),
        skipped_records=skipped,
        duplicate_requests=len(served) - len(latest),
        null_predictions=int(null.sum()),
        records_without_id=int((~has_id).sum()),
    )


def _label_keys(labels: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in ("request_id", "label") if c not in labels.columns]
    if missing:
        raise InvalidInput(f"labels need the column(s) {', '.join(missing)}")
    rows = labels["row"] if "row" in labels.columns else 0
    frame = pd.DataFrame({"request_id": labels["request_id"], "row": rows, "label": labels["label"]})
    frame = frame[frame["request_id"].notna()]
    frame = frame.assign(request_id=frame["request_id"].astype(str), row=frame["row"].astype("int64"))
    return frame.drop_duplicates(KEY, keep="last")


def _explode(records: pd.DataFrame, output: str) -> tuple[pd.DataFrame, int]:
    """One row per output value of each record, and the number of records without a usable output."""
    lengths = np.zeros(len(records), dtype=np.int64)
    chunks: list[list[Any]] = []
    skipped = 0
    # json.loads per record is the cost floor; everything after it is columnar.
    for i, text in enumerate(records["outputs"].tolist()):
        try:
            data = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            data = None
        values = data.get(output) if isinstance(data, dict) else None
        # A model's output is homogeneous, so its first value tells a 2-D output (probabilities) apart.
        if not isinstance(values, list) or (values and isinstance(values[0], list | dict)):
            skipped += 1
            continue
        lengths[i] = len(values)
        chunks.append(values)
    total = int(lengths.sum())
    take = np.repeat(np.arange(len(records)), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    values = list(itertools.chain.from_iterable(chunks))
    frame = records[["timestamp", "request_id", "version", "shadow"]].iloc[take].reset_index(drop=True)
    frame.insert(2, "row", np.arange(total, dtype=np.int64) - starts)
    frame["prediction"] = pd.Series(values, dtype=None if values else object)
    return frame, skipped


# -- metrics -----------------------------------------------------------------------------------------------


def performance_metrics(y_true: Any, y_pred: Any, task: str = "auto") -> dict[str, float]:
    """Quality of ``y_pred`` against ``y_true`` (pure numpy; values match scikit-learn's).

    ``classification``: accuracy and macro-averaged precision, recall and f1 over the union of classes (a
    class never predicted has precision 0, as scikit-learn's ``zero_division=0``). ``regression``: mae,
    rmse, r2 (1.0 or 0.0 for constant ``y_true``, NaN for one row, as scikit-learn) and mape (a fraction;
    only when no ``y_true`` is 0). ``auto`` picks by :func:`infer_task`. See the module docstring for how
    numbers and strings compare.

    Raises:
        InvalidInput: empty or unequal-length inputs, missing values, an unknown task, or non-numeric
            values for regression.
    """
    true, pred = _as_array(y_true), _as_array(y_pred)
    if len(true) == 0:
        raise InvalidInput("cannot compute performance on no rows")
    if len(true) != len(pred):
        raise InvalidInput(f"y_true has {len(true)} values but y_pred has {len(pred)}")
    for name, values in (("y_true", true), ("y_pred", pred)):
        nulls = int(pd.isna(values).sum())
        if nulls:
            raise InvalidInput(f"{name} has {nulls} missing value(s)")
    task = infer_task(true) if _check_task(task) == "auto" else task
    return _classification(true, pred) if task == "classification" else _regression(true, pred)


def infer_task(y_true: Any) -> str:
    """``classification`` for bool or text labels, or integers with at most 50 distinct values; else
    ``regression``."""
    values = _as_array(y_true)
    if values.dtype.kind == "b" or not _is_numeric(values):
        return "classification"
    numbers = values.astype(np.float64)
    finite = numbers[np.isfinite(numbers)]
    integral = bool(np.all(finite == np.round(finite)))
    return "classification" if integral and len(np.unique(finite)) <= MAX_AUTO_CLASSES else "regression"


def _check_task(task: str) -> str:
    if task not in TASKS:
        raise InvalidInput(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")
    return task


def _as_array(values: Any) -> np.ndarray:
    array = values.to_numpy() if isinstance(values, pd.Series | pd.Index) else np.asarray(values)
    array = array.ravel()
    if array.dtype.kind == "O" and _is_numeric(array):
        # Object columns of plain numbers (JSON predictions, concatenated label files) compare as numbers.
        kind = pd.api.types.infer_dtype(array, skipna=True)
        array = array.astype(bool if kind == "boolean" else np.float64)
    return array


def _is_numeric(values: np.ndarray) -> bool:
    if values.dtype.kind in "biuf":
        return True
    if values.dtype.kind != "O" or len(values) == 0:
        return False
    kind = pd.api.types.infer_dtype(values, skipna=True)
    return kind in ("integer", "floating", "mixed-integer-float", "boolean", "decimal")


def _as_text(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        # 1.0 must read "1" to match a label "1"; only exact integers that fit int64 are rewritten.
        integral = np.isfinite(values) & (values == np.round(values)) & (np.abs(values) < 2**62)
        ints = np.where(integral, values, 0).astype(np.int64).astype(str)
        return np.where(integral, ints, values.astype(str)).astype(object)
    if values.dtype.kind in "biuUS":
        return values.astype(str).astype(object)
    return np.array([_text(v) for v in values], dtype=object)


def _text(value: Any) -> str:
    if isinstance(value, float | np.floating) and math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _classification(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    if not (_is_numeric(true) and _is_numeric(pred)):
        true, pred = _as_text(true), _as_text(pred)
    classes, codes = np.unique(np.concatenate([true, pred]), return_inverse=True)
    k, n = len(classes), len(true)
    t, p = codes[:n], codes[n:]
    hit = t == p
    tp = np.bincount(t[hit], minlength=k).astype(np.float64)
    predicted = np.bincount(p, minlength=k).astype(np.float64)
    actual = np.bincount(t, minlength=k).astype(np.float64)
    # Every class is in y_true or y_pred, so f1's denominator (2tp + fp + fn) is never 0.
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros(k), where=actual > 0)
    f1 = 2 * tp / (predicted + actual)
    return {
        "accuracy": float(hit.mean()),
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "f1": float(f1.mean()),
    }


def _regression(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    for name, values in (("labels", true), ("predictions", pred)):
        if not _is_numeric(values):
            raise InvalidInput(
                f"regression needs numeric {name}; got {values.dtype} values like {values[0]!r}"
            )
    y, y_hat = true.astype(np.float64), pred.astype(np.float64)
    error = y - y_hat
    residual = float(np.sum(error**2))
    total = float(np.sum((y - y.mean()) ** 2))
    if len(y) < 2:
        r2 = math.nan
    elif total == 0:
        r2 = 1.0 if residual == 0 else 0.0  # scikit-learn's force_finite=True
    else:
        r2 = 1.0 - residual / total
    metrics = {
        "mae": float(np.mean(np.abs(error))),
        "rmse": math.sqrt(residual / len(y)),
        "r2": r2,
    }
    if not np.any(y == 0):
        metrics["mape"] = float(np.mean(np.abs(error) / np.abs(y)))
    return metrics


# -- the job -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PerformanceWindow:
    """Metrics of the non-shadow predictions whose timestamp floors to ``start``."""

    start: datetime
    rows: int
    metrics: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "rows": self.rows, "metrics": dict(self.metrics)}


@dataclass(frozen=True)
class PerformanceResult:
    """Performance of one model on the labelled predictions it served in a window.

    Attributes:
        rows: labelled non-shadow predictions; ``metrics`` are computed on them (empty when there are none).
        by_version: metrics per version, shadow versions included (on the requests they mirrored);
            ``rows_by_version``: the labelled predictions behind each.
        windows: metrics per ``freq`` bucket of the non-shadow rows, oldest first.
        The counts are :class:`JoinedLabels`'s, for the payloads in the window.
    """

    model: str
    task: str
    rows: int
    metrics: dict[str, float]
    by_version: dict[str, dict[str, float]] = field(default_factory=dict)
    rows_by_version: dict[str, int] = field(default_factory=dict)
    windows: list[PerformanceWindow] = field(default_factory=list)
    window: tuple[datetime | None, datetime | None] = (None, None)
    freq: str = "1h"
    labels: int = 0
    predictions: int = 0
    unmatched_labels: int = 0
    unlabeled_predictions: int = 0
    skipped_records: int = 0
    duplicate_requests: int = 0
    null_predictions: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (non-finite numbers become None)."""
        since, until = self.window
        return finite(
            {
                "model": self.model,
                "task": self.task,
                "window": {"since": iso(since), "until": iso(until)},
                "freq": self.freq,
                "rows": self.rows,
                "metrics": dict(self.metrics),
                "by_version": {v: dict(m) for v, m in self.by_version.items()},
                "rows_by_version": dict(self.rows_by_version),
                "windows": [w.to_dict() for w in self.windows],
                "labels": self.labels,
                "predictions": self.predictions,
                "unmatched_labels": self.unmatched_labels,
                "unlabeled_predictions": self.unlabeled_predictions,
                "skipped_records": self.skipped_records,
                "duplicate_requests": self.duplicate_requests,
                "null_predictions": self.null_predictions,
            }
        )


def compute_performance(
    store: ArtifactStore,
    model: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    freq: str = "1h",
    task: str = "auto",
    output: str = "predict",
    payloads: pd.DataFrame | None = None,
) -> PerformanceResult:
    """Join ``model``'s labels to the predictions it served in [``since``, ``until``) and score them.

    ``payloads``: the model's payload log when the caller has already read it (default: read here).

    Naive datetimes are UTC. ``freq`` is a pandas frequency (``"15min"``, ``"1h"``, ``"1D"``) for the
    time buckets; ``task`` is fixed once on all joined labels (see :func:`performance_metrics`), so every
    version and bucket is scored the same way. ``unmatched_labels`` counts labels with no prediction in
    the window (their requests may have been served outside it).

    Raises:
        NotFound: ``model`` has no labels at all (the message says how to add them).
        InvalidInput: a bad model name, window, ``freq`` or ``task``, or no labelled prediction in the
            window (the numbers of labels and predictions named).
    """
    check_model_name(model)
    _check_task(task)
    _check_freq(freq)
    since, until = utc(since), utc(until)
    if since is not None and until is not None and since >= until:
        raise InvalidInput(
            f"performance window is empty: since {since.isoformat()} >= until {until.isoformat()}"
        )
    labels = load_labels(store, model)
    if labels.empty:
        raise NotFound(
            f"model {model!r} has no ground-truth labels; add them with "
            f"`shipyard monitor labels {model} LABELS.parquet` (or save_labels()), columns request_id, "
            "label and optionally row"
        )
    if payloads is None:
        payloads = read_payloads(store, model)
    keep = pd.Series(True, index=payloads.index)
    if since is not None:
        keep &= payloads["timestamp"] >= pd.Timestamp(since)
    if until is not None:
        keep &= payloads["timestamp"] < pd.Timestamp(until)
    joined = join_labels(payloads[keep], labels, output=output)
    data = joined.data
    if data.empty:
        raise InvalidInput(
            f"no prediction of model {model!r} in {describe((since, until))} has a label: "
            f"{joined.labels} label(s), {joined.predictions} served prediction(s) of output {output!r} "
            f"({joined.skipped_records} record(s) without it, {joined.records_without_id} without a "
            "request id); check the window and that labels use the served X-Request-ID"
        )
    task = infer_task(data["label"]) if task == "auto" else task
    main = data[~data["shadow"]]
    groups = [(str(version), group) for version, group in data.groupby("version", sort=True)]
    by_version = {v: performance_metrics(g["label"], g["prediction"], task) for v, g in groups}
    windows = [
        PerformanceWindow(
            start=start.to_pydatetime(),
            rows=len(group),
            metrics=performance_metrics(group["label"], group["prediction"], task),
        )
        for start, group in main.groupby(main["timestamp"].dt.floor(freq), sort=True)
    ]
    return PerformanceResult(
        model=model,
        task=task,
        rows=len(main),
        metrics=performance_metrics(main["label"], main["prediction"], task) if len(main) else {},
        by_version=by_version,
        rows_by_version={v: len(g) for v, g in groups},
        windows=windows,
        window=(since, until),
        freq=freq,
        labels=joined.labels,
        predictions=joined.predictions,
        unmatched_labels=joined.unmatched_labels,
        unlabeled_predictions=joined.unlabeled_predictions,
        skipped_records=joined.skipped_records,
        duplicate_requests=joined.duplicate_requests,
        null_predictions=joined.null_predictions,
    )


def _check_freq(freq: str) -> None:
    try:
        step = to_offset(freq).nanos  # month- or year-based offsets have no fixed length and raise here
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"bad window freq {freq!r}: use a fixed pandas frequency such as '1h' or '1D'"
        ) from exc
    if step <= 0:
        raise InvalidInput(f"bad window freq {freq!r}: it must be positive")


__all__ = [
    "LABELS_PREFIX",
    "TASKS",
    "JoinedLabels",
    "PerformanceResult",
    "PerformanceWindow",
    "compute_performance",
    "infer_task",
    "join_labels",
    "load_labels",
    "performance_metrics",
    "save_labels",
]
