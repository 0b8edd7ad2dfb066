"""What an explanation is: per-row attributions (SHAP) or a global score drop (permutation), as records."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipyard.errors import InvalidInput


class ExplainMethod(enum.StrEnum):
    """How a model is explained: ``shap`` (per row, tree and linear models), ``permutation`` (global, any
    model, needs targets), or ``auto`` (SHAP where it applies, else permutation when targets are given)."""

    AUTO = "auto"
    SHAP = "shap"
    PERMUTATION = "permutation"

    @classmethod
    def parse(cls, value: str | ExplainMethod) -> ExplainMethod:
        if isinstance(value, ExplainMethod):
            return value
        for method in cls:
            if str(value).strip().lower() == method.value:
                return method
        raise InvalidInput(f"unknown explain method {value!r}; use one of: {', '.join(m.value for m in cls)}")


@dataclass(frozen=True, eq=False)
class Explanation:
    """One explanation of a model on some rows.

    Attributes:
        method: ``shap`` or ``permutation``.
        explainer: what computed it: ``TreeExplainer/interventional`` (against the background rows),
            ``TreeExplainer/tree_path_dependent`` (against the training data the trees recorded),
            ``LinearExplainer`` or ``permutation_importance``.
        output_space: what the SHAP values add up to: ``raw`` (a regressor's prediction, a linear model's
            margin), ``probability`` (a forest classifier's ``predict_proba``) or ``log_odds`` (a gradient
            boosted or logistic classifier's decision function); for permutation, the score that drops
            (``accuracy`` or ``r2``).
        feature_names: the columns, in the order of ``values``' second axis and of ``importance``.
        values: SHAP values, ``[rows, features]`` for one output or ``[rows, features, outputs]`` for several
            (one per class); None for permutation. Each row's values sum to its model output (in
            ``output_space``) minus ``expected_value``.
        expected_value: the base value: a float for one output, one per output otherwise (None for
            permutation).
        outputs: the class of each output in ``values``' last axis (None for 2-D values).
        importance: one number per feature: mean ``|SHAP|`` over rows (and outputs), or the mean score drop
            when the feature's values are shuffled.
        importance_std: the score drop's standard deviation over repeats (permutation only).
        background_rows: how many rows the values are relative to (0 when none were used).
    """

    method: str
    explainer: str
    output_space: str
    feature_names: tuple[str, ...]
    importance: np.ndarray
    values: np.ndarray | None = None
    expected_value: float | np.ndarray | None = None
    outputs: tuple[Any, ...] | None = None
    importance_std: np.ndarray | None = None
    background_rows: int = 0

    @property
    def rows(self) -> int:
        """How many rows were explained one by one (0 for permutation)."""
        return 0 if self.values is None else int(self.values.shape[0])

    def ranked(self) -> list[tuple[str, float]]:
        """``(feature, importance)``, the most important first."""
        order = np.argsort(-self.importance, kind="stable")
        return [(self.feature_names[i], float(self.importance[i])) for i in order]

    def row_values(self) -> list[Any]:
        """Each row's values as JSON-ready lists (``[features]`` or ``[features][outputs]``)."""
        return [] if self.values is None else _plain(self.values)

    def to_dict(self) -> dict[str, Any]:
        """The explanation as JSON-ready values; ``importance`` maps feature to score, most important first.
        Non-finite numbers become null (JSON has no NaN)."""
        document: dict[str, Any] = {
            "method": self.method,
            "explainer": self.explainer,
            "output_space": self.output_space,
            "feature_names": list(self.feature_names),
            "importance": {name: _number(value) for name, value in self.ranked()},
        }
        if self.importance_std is not None:
            document["importance_std"] = dict(
                zip(self.feature_names, _plain(self.importance_std), strict=True)
            )
        if self.values is not None:
            document["expected_value"] = _plain(np.asarray(self.expected_value))
            document["outputs"] = [_label(o) for o in self.outputs] if self.outputs is not None else None
            document["values"] = self.row_values()
            document["background_rows"] = self.background_rows
        return document

    def __repr__(self) -> str:
        top = ", ".join(f"{name}={value:.4g}" for name, value in self.ranked()[:3])
        return f"<Explanation {self.method} ({self.explainer}) of {len(self.feature_names)} features: {top}>"


def _plain(array: np.ndarray) -> Any:
    """Nested lists of floats, None where a value is not finite."""
    if array.ndim == 0:
        return _number(array.item())
    return [_plain(item) for item in array] if array.ndim > 1 else [_number(v) for v in array.tolist()]


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _label(value: Any) -> Any:
    """A class label as JSON has it: numpy scalars as Python values."""
    return value.item() if isinstance(value, np.generic) else value
