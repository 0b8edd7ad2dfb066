"""Model quality from arrays: the full sets :func:`shipyard.evaluate` reports and the one-number table
(:data:`METRICS`) the model gates read, both computed by the same functions.

Pure functions of the truth, the predictions and the class probabilities (columns in the order of
``classes``). scikit-learn is imported on use: it is slow to import, and a gate without metric rules needs
none.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from shipyard.errors import InvalidInput

MetricFunction = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], float]


def class_labels(y: np.ndarray, predicted: np.ndarray, classes: Sequence[Any] | None = None) -> np.ndarray:
    """The classes: the model's own when it knows them, else every label in the truth or the predictions."""
    if classes is not None:
        return np.asarray(list(classes))
    return np.unique(np.concatenate([np.asarray(y), np.asarray(predicted)]))


def accuracy(y: np.ndarray, predicted: np.ndarray) -> float:
    from sklearn.metrics import accuracy_score

    return float(accuracy_score(y, predicted))


def averaged(function: str, y: np.ndarray, predicted: np.ndarray, labels: np.ndarray, average: str) -> float:
    """``precision_score``/``recall_score``/``f1_score``; "binary" scores the greater label as positive."""
    import sklearn.metrics

    kwargs: dict[str, Any] = {"average": average, "zero_division": 0}
    if average == "binary":
        kwargs["pos_label"] = labels.max()
    return float(getattr(sklearn.metrics, function)(y, predicted, **kwargs))


def roc_auc(y: np.ndarray, proba: np.ndarray, classes: np.ndarray | None = None) -> float:
    """Binary: the second column scores the positive class; several: one-vs-rest, macro. Without ``classes``
    the columns are taken in sorted label order, as scikit-learn's ``predict_proba`` gives them."""
    from sklearn.metrics import roc_auc_score

    if proba.shape[1] == 2:
        truth = np.asarray(y) == classes[1] if classes is not None else y
        return float(roc_auc_score(truth, proba[:, 1]))
    return float(roc_auc_score(y, proba, multi_class="ovr", labels=classes))


def log_loss(y: np.ndarray, proba: np.ndarray, classes: np.ndarray | None = None) -> float:
    from sklearn.metrics import log_loss as sklearn_log_loss

    return float(sklearn_log_loss(y, proba, labels=classes))


def _gate_averaged(function: str) -> MetricFunction:
    def metric(y: np.ndarray, predicted: np.ndarray, proba: np.ndarray | None) -> float:
        labels = class_labels(y, predicted)
        return averaged(function, y, predicted, labels, "binary" if len(labels) <= 2 else "macro")

    return metric


def _gate_needs_proba(name: str, function: Callable[[np.ndarray, np.ndarray], float]) -> MetricFunction:
    def metric(y: np.ndarray, predicted: np.ndarray, proba: np.ndarray | None) -> float:
        if proba is None:
            raise InvalidInput(f"metric {name!r} needs predict_proba, which the model lacks")
        return function(y, proba)

    return metric


def mse(y: np.ndarray, predicted: np.ndarray) -> float:
    from sklearn.metrics import mean_squared_error

    return float(mean_squared_error(y, predicted))


def _regression(function: str) -> MetricFunction:
    def metric(y: np.ndarray, predicted: np.ndarray, proba: np.ndarray | None) -> float:
        import sklearn.metrics

        if function == "rmse":
            return math.sqrt(mse(y, predicted))
        return float(getattr(sklearn.metrics, function)(y, predicted))

    return metric


# The gates' table: name -> (function of truth, predictions and probabilities, higher is better).
METRICS: dict[str, tuple[MetricFunction, bool]] = {
    "accuracy": (lambda y, predicted, proba: accuracy(y, predicted), True),
    "f1": (_gate_averaged("f1_score"), True),
    "precision": (_gate_averaged("precision_score"), True),
    "recall": (_gate_averaged("recall_score"), True),
    "roc_auc": (_gate_needs_proba("roc_auc", lambda y, proba: roc_auc(y, proba)), True),
    "log_loss": (_gate_needs_proba("log_loss", lambda y, proba: log_loss(y, proba)), False),
    "rmse": (_regression("rmse"), False),
    "mae": (_regression("mean_absolute_error"), False),
    "r2": (_regression("r2_score"), True),
}


def check_class_targets(y: np.ndarray, predicted: np.ndarray, targets: str) -> None:
    """Refuse continuous values where class labels are expected, naming the column (or the predictions)."""
    from sklearn.utils.multiclass import type_of_target

    for values, what in ((y, f"targets column {targets!r}"), (predicted, "the model's predictions")):
        kind = type_of_target(values)
        if kind.startswith("continuous"):
            sample = ", ".join(f"{v:g}" for v in np.unique(values)[:3])
            hint = "use model_type='regressor'" if what.startswith("targets") else "is the model a regressor?"
            raise InvalidInput(
                f"{what} holds continuous values ({sample}, ...); a classifier is evaluated on class labels: "
                f"{hint}"
            )


def check_numeric_targets(y: np.ndarray, predicted: np.ndarray, targets: str) -> None:
    """Refuse labels that are not numbers where a regressor's are expected."""
    for values, what in ((y, f"targets column {targets!r}"), (predicted, "the model's predictions")):
        if not np.issubdtype(np.asarray(values).dtype, np.number) or np.asarray(values).dtype == bool:
            raise InvalidInput(
                f"{what} holds {np.asarray(values).dtype} values, not numbers; a regressor is evaluated on "
                "numbers: use model_type='classifier'"
            )


def classifier_metrics(
    y: np.ndarray, predicted: np.ndarray, proba: np.ndarray | None, classes: Sequence[Any] | None
) -> tuple[dict[str, float], list[str]]:
    """accuracy, precision/recall/f1 (binary; for several classes the macro average, which the gates read
    too, and ``*_weighted``), log_loss and roc_auc from probabilities, example_count.

    Returns:
        The metrics, and a note for each one that is not defined on this data (roc_auc of one class).
    """
    labels = class_labels(y, predicted, classes)
    binary = len(labels) <= 2
    metrics = {"example_count": float(len(y)), "accuracy": accuracy(y, predicted)}
    for name, function in (("precision", "precision_score"), ("recall", "recall_score"), ("f1", "f1_score")):
        metrics[name] = averaged(function, y, predicted, labels, "binary" if binary else "macro")
        if not binary:
            metrics[f"{name}_weighted"] = averaged(function, y, predicted, labels, "weighted")
    notes = []
    if proba is not None:
        if proba.shape[1] != len(labels):
            found = f"{proba.shape[1]} probability columns for {len(labels)} classes"
            return metrics, [f"log_loss and roc_auc skipped: {found}"]
        for name, probability_metric in (("log_loss", log_loss), ("roc_auc", roc_auc)):
            _defined(metrics, notes, name, lambda f=probability_metric: f(y, proba, labels))
    return metrics, notes


def _defined(metrics: dict[str, float], notes: list[str], name: str, compute: Callable[[], float]) -> None:
    """Add ``name`` unless it is undefined on these rows (one class only, say), else a note saying why.

    scikit-learn signals that by raising or, in newer versions, by a warning and NaN: both end up as notes.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = compute()
        except ValueError as exc:
            notes.append(f"{name} not defined here: {exc}")
            return
    if math.isnan(value):
        why = str(caught[-1].message) if caught else "the result is NaN"
        notes.append(f"{name} not defined here: {why}")
        return
    metrics[name] = value


def regressor_metrics(y: np.ndarray, predicted: np.ndarray) -> tuple[dict[str, float], list[str]]:
    """mse, rmse, mae, r2, mape (not when a target is 0), max_error, example_count; notes for the omitted."""
    import sklearn.metrics as skm

    y = np.asarray(y, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    squared = mse(y, predicted)
    metrics = {
        "example_count": float(len(y)),
        "mse": squared,
        "rmse": math.sqrt(squared),
        "mae": float(skm.mean_absolute_error(y, predicted)),
        "max_error": float(skm.max_error(y, predicted)),
    }
    notes = []
    if len(y) >= 2:
        metrics["r2"] = float(skm.r2_score(y, predicted))
    else:
        notes.append("r2 not defined on fewer than two rows")
    zeros = int(np.count_nonzero(y == 0))
    if zeros:
        # sklearn would divide by its epsilon instead and report a meaningless, enormous percentage.
        notes.append(f"mape not computed: {zeros} target(s) are 0")
    else:
        metrics["mape"] = float(skm.mean_absolute_percentage_error(y, predicted))
    return metrics, notes


def confusion(y: np.ndarray, predicted: np.ndarray, classes: Sequence[Any] | None) -> dict[str, Any]:
    """The confusion matrix as JSON-ready lists: ``matrix[i][j]`` counts true ``labels[i]`` predicted
    ``labels[j]``."""
    from sklearn.metrics import confusion_matrix

    labels = class_labels(y, predicted, classes)
    matrix = confusion_matrix(y, predicted, labels=labels)
    return {"labels": [plain(v) for v in labels], "matrix": matrix.tolist()}


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON writes."""
    return value.item() if isinstance(value, np.generic) else value


def finite(value: Any) -> Any:
    """``value`` fit for JSON: every non-finite float (in nested dicts, lists and tuples too) as None, numpy
    scalars as Python values, dict keys as strings."""
    value = plain(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
