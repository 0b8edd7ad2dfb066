"""The evaluation's figures, as matplotlib figures keyed by their artifact file name.

Built on ``matplotlib.figure.Figure`` directly, never pyplot: no global figure registry to leak into and no
interactive backend to pick (saving renders with Agg), so evaluating in a thread or a server is safe.
matplotlib is an optional dependency: :func:`available` says whether these can be drawn.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.data.model_metrics import class_labels

if TYPE_CHECKING:
    from matplotlib.figure import Figure

INSTALL_HINT = "pip install matplotlib"


def available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def _figure(title: str, xlabel: str, ylabel: str) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 5), dpi=100)
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    return figure, axes


def classifier_figures(
    y: np.ndarray, predicted: np.ndarray, proba: np.ndarray | None, classes: Sequence[Any] | None
) -> dict[str, Figure]:
    """Confusion matrix; with probabilities, ROC, precision-recall and calibration curves (one curve for
    two classes, one per class against the rest for more)."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import auc, confusion_matrix, precision_recall_curve, roc_curve

    labels = class_labels(y, predicted, classes)
    figures = {
        "confusion_matrix.png": _confusion_figure(confusion_matrix(y, predicted, labels=labels), labels)
    }
    if proba is None or proba.shape[1] != len(labels):
        return figures
    # Two classes: the positive (second) class's curve; more: each class against the rest.
    curves = [(labels[1], 1)] if len(labels) == 2 else [(label, i) for i, label in enumerate(labels)]
    truth = np.asarray(y)
    roc, roc_axes = _figure("ROC curve", "false positive rate", "true positive rate")
    pr, pr_axes = _figure("Precision-recall curve", "recall", "precision")
    calibration, cal_axes = _figure(
        "Calibration curve", "mean predicted probability", "fraction of positives"
    )
    roc_axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    cal_axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    for label, column in curves:
        positive = truth == label
        if positive.all() or not positive.any():
            continue  # a curve needs both classes present
        score = proba[:, column]
        fpr, tpr, _ = roc_curve(positive, score)
        roc_axes.plot(fpr, tpr, label=f"{label} (AUC {auc(fpr, tpr):.3f})")
        precision, recall, _ = precision_recall_curve(positive, score)
        pr_axes.plot(recall, precision, label=str(label))
        observed, expected = calibration_curve(positive, score, n_bins=10, strategy="uniform")
        cal_axes.plot(expected, observed, marker="o", label=str(label))
    for axes in (roc_axes, pr_axes, cal_axes):
        axes.legend(loc="best", fontsize="small")
    figures.update(
        {"roc_curve.png": roc, "precision_recall_curve.png": pr, "calibration_curve.png": calibration}
    )
    return figures


def _confusion_figure(matrix: np.ndarray, labels: np.ndarray) -> Figure:
    figure, axes = _figure("Confusion matrix", "predicted", "true")
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes)
    ticks = range(len(labels))
    axes.set_xticks(ticks, [str(v) for v in labels], rotation=45 if len(labels) > 6 else 0)
    axes.set_yticks(ticks, [str(v) for v in labels])
    if len(labels) <= 20:  # beyond that the counts are unreadable
        high = matrix.max() / 2 if matrix.size else 0
        for (i, j), count in np.ndenumerate(matrix):
            axes.text(j, i, str(count), ha="center", va="center", color="white" if count > high else "black")
    return figure


def regressor_figures(y: np.ndarray, predicted: np.ndarray) -> dict[str, Figure]:
    """Residuals against the predictions, and the predictions against the truth."""
    y = np.asarray(y, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    residuals, axes = _figure("Residuals", "predicted", "residual (actual - predicted)")
    axes.scatter(predicted, y - predicted, s=8, alpha=0.6)
    axes.axhline(0, linestyle="--", color="grey", linewidth=1)
    versus, axes = _figure("Predicted vs actual", "actual", "predicted")
    axes.scatter(y, predicted, s=8, alpha=0.6)
    low, high = float(min(y.min(), predicted.min())), float(max(y.max(), predicted.max()))
    axes.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1)
    return {"residuals.png": residuals, "predicted_vs_actual.png": versus}
