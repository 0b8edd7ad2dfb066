"""The metric functions: the gates' table and evaluate's sets agree, and undefined metrics are noted."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shipyard.data.model_metrics import METRICS, classifier_metrics, confusion, finite, regressor_metrics


@pytest.mark.parametrize("classes", [2, 3])
def test_the_gates_read_the_numbers_evaluate_reports(classes: int) -> None:
    rng = np.random.default_rng(classes)
    y, predicted = rng.integers(0, classes, 120), rng.integers(0, classes, 120)
    proba = rng.dirichlet(np.ones(classes), 120)
    reported, notes = classifier_metrics(y, predicted, proba, list(range(classes)))
    assert not notes
    for name in ("accuracy", "f1", "precision", "recall", "roc_auc", "log_loss"):
        assert METRICS[name][0](y, predicted, proba) == pytest.approx(reported[name]), name


def test_a_segment_of_one_class_has_no_roc_auc_but_keeps_the_rest() -> None:
    y, predicted = np.array([1, 1, 1]), np.array([1, 0, 1])
    proba = np.array([[0.2, 0.8], [0.6, 0.4], [0.1, 0.9]])
    metrics, notes = classifier_metrics(y, predicted, proba, [0, 1])
    assert "roc_auc" not in metrics and metrics["accuracy"] == pytest.approx(2 / 3)
    assert "log_loss" in metrics and any(note.startswith("roc_auc not defined") for note in notes)
    assert confusion(y, predicted, [0, 1]) == {"labels": [0, 1], "matrix": [[0, 0], [1, 2]]}


def test_regression_leaves_out_what_the_rows_cannot_define() -> None:
    metrics, notes = regressor_metrics(np.array([0.0]), np.array([0.5]))
    assert metrics == {"example_count": 1.0, "mse": 0.25, "rmse": 0.5, "mae": 0.5, "max_error": 0.5}
    assert len(notes) == 2 and "r2" in notes[0] and "1 target(s) are 0" in notes[1]
    full, _ = regressor_metrics(np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0]))
    assert full["mape"] == pytest.approx((0.5 + 0 + 0.25) / 3)


def test_finite_makes_nested_results_json_safe() -> None:
    value = {
        "a": float("nan"),
        1: [np.float64(0.5), (np.int64(3), float("inf"))],
        "b": {"c": -float("inf"), "d": "text", "e": None, "f": True},
    }
    assert finite(value) == {
        "a": None,
        "1": [0.5, [3, None]],
        "b": {"c": None, "d": "text", "e": None, "f": True},
    }
    json.dumps(finite(value), allow_nan=False)  # raises on a NaN or an infinity left in
