"""Model evaluation: metrics (overall and per segment), figures, baseline comparison and validation
thresholds, logged to a tracked run; :func:`evaluate` is ``shipyard.evaluate``."""

from shipyard.data.thresholds import MetricRule, MetricThreshold, ThresholdResult, load_thresholds
from shipyard.evaluation.evaluating import BUILTIN_EVALUATORS, evaluate, metric_keys, read_data
from shipyard.evaluation.records import (
    MODEL_TYPES,
    EvaluationInput,
    EvaluationResult,
    Evaluator,
    ModelEvaluation,
    ModelType,
)

__all__ = [
    "BUILTIN_EVALUATORS",
    "MODEL_TYPES",
    "EvaluationInput",
    "EvaluationResult",
    "Evaluator",
    "MetricRule",
    "MetricThreshold",
    "ModelEvaluation",
    "ModelType",
    "ThresholdResult",
    "evaluate",
    "load_thresholds",
    "metric_keys",
    "read_data",
]
