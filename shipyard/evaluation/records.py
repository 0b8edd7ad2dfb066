"""What an evaluation reads and returns: a custom evaluator's input, one model's numbers, the result."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from shipyard.data.thresholds import ThresholdResult

ModelType = Literal["classifier", "regressor"]
MODEL_TYPES: tuple[ModelType, ...] = ("classifier", "regressor")


@dataclass(frozen=True)
class EvaluationInput:
    """What a custom evaluator gets: the rows evaluated (all of them, or one segment's), the truth and the
    model's answers for those rows. ``probabilities`` has one column per entry of ``classes`` (classifiers
    whose model gives them; else None)."""

    data: pd.DataFrame
    features: pd.DataFrame
    targets: np.ndarray
    predictions: np.ndarray
    probabilities: np.ndarray | None
    classes: list[Any] | None
    model_type: ModelType


Evaluator = Callable[[EvaluationInput], Mapping[str, float]]


@dataclass(frozen=True)
class ModelEvaluation:
    """One model's numbers: overall, and per segment (column -> value -> metrics).

    ``model_version`` is the exact model evaluated: ``models:/churn/3`` for a registered version (an alias
    resolved), the ``runs:/`` URI for a run's model, None for an object passed in.
    """

    model_uri: str
    model_version: str | None
    metrics: dict[str, float]
    segments: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class EvaluationResult:
    """An evaluation, as logged to run ``run_id``: the candidate's numbers, the baseline's (when one was
    given) and the differences (candidate - baseline, for the metrics both have), each validation
    threshold's verdict, the artifacts written and notes on what could not be computed."""

    run_id: str
    model_type: ModelType
    targets: str
    candidate: ModelEvaluation
    baseline: ModelEvaluation | None = None
    differences: dict[str, float] = field(default_factory=dict)
    validation: tuple[ThresholdResult, ...] = ()
    artifacts: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def metrics(self) -> dict[str, float]:
        """The candidate's overall metrics (``mlflow.evaluate``'s ``result.metrics``)."""
        return self.candidate.metrics

    @property
    def baseline_metrics(self) -> dict[str, float]:
        return self.baseline.metrics if self.baseline is not None else {}

    @property
    def passed(self) -> bool:
        """Whether every validation threshold held (True without thresholds)."""
        return all(r.passed for r in self.validation)

    @property
    def failures(self) -> list[ThresholdResult]:
        return [r for r in self.validation if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: what ``evaluation/metrics.json`` holds and ``shipyard evaluate --json`` prints."""
        return {
            "run_id": self.run_id,
            "model_type": self.model_type,
            "targets": self.targets,
            "model": dataclasses.asdict(self.candidate),
            "baseline": dataclasses.asdict(self.baseline) if self.baseline is not None else None,
            "differences": self.differences,
            "validation": {
                "passed": self.passed,
                "results": [dataclasses.asdict(r) | {"message": r.describe()} for r in self.validation],
            },
            "artifacts": list(self.artifacts),
            "notes": list(self.notes),
        }
