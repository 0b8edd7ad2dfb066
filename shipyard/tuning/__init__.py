"""Hyperparameter tuning: Katib's experiment model (objective, search space, algorithm, early stopping,
parallel trials) on Optuna's algorithms, every trial a tracked run, resumable."""

import typing as _typing

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

if _typing.TYPE_CHECKING:
    from shipyard.tuning.best import Retrained, retrain_best

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


def __getattr__(name: str) -> _typing.Any:
    # retrain_best brings the registry (pandas, the flavors): not needed by trial workers, which import this
    # package to run a trial; load it on first use.
    if name in ("Retrained", "retrain_best"):
        from shipyard.tuning import best

        return getattr(best, name)
    raise AttributeError(f"module 'shipyard.tuning' has no attribute {name!r}")
