"""The computing side: SHAP's tree and linear explainers, and scikit-learn's permutation importance.

Pure logic over a native model object and frames; finding the model and its background is
:mod:`.explaining`'s job. ``shap`` is imported on first use (the ``explain`` extra), never on import.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from shipyard.errors import InvalidInput
from shipyard.explain.records import Explanation

log = logging.getLogger("shipyard.explain")

INSTALL_HINT = "pip install 'shipyard[explain]' (shap>=0.45)"
# How the explainers name the space their values add up in, as Explanation.output_space says it.
_TREE_OUTPUTS = {"raw_value": "raw", "log_odds": "log_odds", "probability": "probability"}
_PROBE_ROWS = 8
PERMUTATION_REPEATS = 5


def import_shap() -> ModuleType:
    """The ``shap`` module; `ShapUnavailable` with the install hint when it is missing."""
    try:
        return importlib.import_module("shap")
    except ModuleNotFoundError as exc:
        raise ShapUnavailable(f"explaining with SHAP needs the shap package: {INSTALL_HINT}") from exc


class ShapUnavailable(InvalidInput):
    """SHAP cannot explain this model here: no native model object, no background rows, a model type it
    does not know, or no shap package. With targets, ``method="auto"`` falls back to permutation on it."""


def is_linear(estimator: Any) -> bool:
    """A scikit-learn linear model (``coef_`` and ``intercept_``), which LinearExplainer explains exactly."""
    module = type(estimator).__module__
    linear = module.startswith("sklearn.linear_model") or type(estimator).__name__ in (
        "LinearSVC",
        "LinearSVR",
    )
    return linear and hasattr(estimator, "coef_") and hasattr(estimator, "intercept_")


class ShapExplainer:
    """A SHAP explainer built once for one model and background, then asked for any number of rows.

    Tree models (scikit-learn trees, forests and gradient boosting, XGBoost, LightGBM) get TreeExplainer,
    interventional against the background; linear models get LinearExplainer. Not thread-safe: callers
    serialize :meth:`explain` (the server runs it on one thread).

    Raises (from the constructor):
        ShapUnavailable: a model SHAP cannot explain (its type named), or shap is not installed.
    """

    def __init__(
        self, estimator: Any, background: pd.DataFrame, *, classes: Sequence[Any] | None = None
    ) -> None:
        shap = import_shap()
        self.feature_names = tuple(str(c) for c in background.columns)
        self.classes = tuple(classes) if classes is not None else None
        self.background_rows = len(background)
        kind = type(estimator).__name__
        if is_linear(estimator):
            self._explainer = shap.LinearExplainer(estimator, background)
            self.name = "LinearExplainer"
            self.output_space = "log_odds" if hasattr(estimator, "classes_") else "raw"
            return
        try:
            self._explainer = shap.TreeExplainer(
                estimator, data=background, feature_perturbation="interventional"
            )
        except Exception as exc:  # shap's InvalidModelError, or whatever a model it half knows raises
            raise ShapUnavailable(
                f"SHAP cannot explain a {kind} ({type(estimator).__module__}): {_first_line(exc)}. SHAP here "
                "explains tree models (scikit-learn trees, forests and gradient boosting, XGBoost, LightGBM) "
                "and linear models; for another model pass targets= and method='permutation'"
            ) from exc
        self.name = "TreeExplainer/interventional"
        self.output_space = _TREE_OUTPUTS.get(str(self._explainer.model.tree_output), "raw")
        self._shap, self._estimator = shap, estimator
        self._tree_values(background.iloc[:_PROBE_ROWS])

    def _tree_values(self, rows: pd.DataFrame) -> Any:
        """SHAP values with shap's own additivity check. NOTE: shap 0.51's interventional values for
        scikit-learn's HistGradientBoosting models miss the prediction, on some rows only (a regressor's by a
        constant; a classifier's on rows the background probe may not hold). The tree-path-dependent
        algorithm (relative to the training data the trees recorded) is exact there: the explainer switches
        to it for good at the first miss, and explains the rows again."""
        try:
            return self._explainer.shap_values(rows, check_additivity=True)
        except Exception as exc:
            if "additivity" not in str(exc).lower() or self.name != "TreeExplainer/interventional":
                raise
        log.info("interventional SHAP values missed the prediction; tree-path-dependent from now on")
        tree = self._shap.TreeExplainer
        self._explainer = tree(self._estimator, feature_perturbation="tree_path_dependent")
        self.name = "TreeExplainer/tree_path_dependent"
        self.background_rows = 0
        return self._explainer.shap_values(rows, check_additivity=True)

    def explain(self, rows: pd.DataFrame) -> Explanation:
        """SHAP values of ``rows``; they hold the background's columns (`InvalidInput` naming one missing)."""
        missing = [name for name in self.feature_names if name not in rows.columns]
        if missing:
            raise InvalidInput(f"the rows to explain lack column {missing[0]!r}, which the background has")
        rows = rows[list(self.feature_names)]
        found = self._tree_values(rows) if self.name.startswith("Tree") else self._explainer.shap_values(rows)
        values = np.asarray(found, dtype=np.float64)
        expected = np.atleast_1d(np.asarray(self._explainer.expected_value, dtype=np.float64))
        outputs: tuple[Any, ...] | None = None
        if values.ndim == 3 and values.shape[2] == 1:
            values = values[:, :, 0]
        if values.ndim == 3:
            outputs = (
                self.classes if self.classes is not None and len(self.classes) == values.shape[2] else None
            )
            outputs = outputs or tuple(range(values.shape[2]))
            base: float | np.ndarray = expected
            importance = np.abs(values).mean(axis=(0, 2))
        else:
            base = float(expected[0])
            importance = np.abs(values).mean(axis=0)
        return Explanation(
            method="shap",
            explainer=self.name,
            output_space=self.output_space,
            feature_names=self.feature_names,
            importance=importance,
            values=values,
            expected_value=base,
            outputs=outputs,
            background_rows=self.background_rows,
        )


class _Scored:
    """What permutation importance scores: a model's own ``predict`` (any flavor, through its signature).
    scikit-learn asks that it have ``fit``; permutation importance never calls it."""

    def __init__(self, predict: Any) -> None:
        self._predict = predict

    def fit(self, data: Any, targets: Any) -> _Scored:
        raise TypeError("a loaded model is explained as it is, never refitted")

    def predict(self, data: Any) -> np.ndarray:
        return np.asarray(self._predict(data))


def permutation(predict: Any, rows: pd.DataFrame, targets: np.ndarray, *, classifier: bool) -> Explanation:
    """How much the score (accuracy for a classifier, R² otherwise) drops when each feature is shuffled,
    over :data:`PERMUTATION_REPEATS` shuffles with a fixed seed."""
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import accuracy_score, r2_score

    metric = accuracy_score if classifier else r2_score

    def score(model: _Scored, data: Any, truth: Any) -> float:
        return float(metric(truth, model.predict(data)))

    result = permutation_importance(
        _Scored(predict), rows, targets, scoring=score, n_repeats=PERMUTATION_REPEATS, random_state=0
    )
    return Explanation(
        method="permutation",
        explainer="permutation_importance",
        output_space="accuracy" if classifier else "r2",
        feature_names=tuple(str(c) for c in rows.columns),
        importance=np.asarray(result.importances_mean, dtype=np.float64),
        importance_std=np.asarray(result.importances_std, dtype=np.float64),
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
