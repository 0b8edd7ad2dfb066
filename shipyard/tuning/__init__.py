"""Hyperparameter tuning: Katib's experiment model (objective, search space, algorithm, early stopping,
parallel trials) on Optuna's algorithms, every trial a tracked run, resumable."""

from shipyard.tuning.best import Retrained, retrain_best
from shipyard.tuning.runner import (
    TrialContext,
    TrialPruned,
    TrialRecord,
    TuningResult,
    resume,
    tune,
)
from shipyard.tuning.space import Parameter, SearchSpace
from shipyard.tuning.spec import Algorithm, EarlyStopping, Objective, TuningSpec

__all__ = [
    "Algorithm",
    "EarlyStopping",
    "Objective",
    "Parameter",
    "Retrained",
    "SearchSpace",
    "TrialContext",
    "TrialPruned",
    "TrialRecord",
    "TuningResult",
    "TuningSpec",
    "resume",
    "retrain_best",
    "tune",
]
