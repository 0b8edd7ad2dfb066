"""Hyperparameter tuning: Katib's experiment model (objective, search space, algorithm, early stopping,
parallel trials) on Optuna's algorithms, every trial a tracked run, resumable."""

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
    "SearchSpace",
    "TrialContext",
    "TrialPruned",
    "TrialRecord",
    "TuningResult",
    "TuningSpec",
    "resume",
    "tune",
]
