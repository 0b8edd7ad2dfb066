"""``shipyard.autolog()``: turn autologging on (or off) for every library it knows at once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.autologging import lightgbm, lightning, sklearn, xgboost
from shipyard.config import Settings
from shipyard.errors import InvalidInput

LIBRARIES = {
    sklearn.LIBRARY: sklearn.autolog,
    xgboost.LIBRARY: xgboost.autolog,
    lightgbm.LIBRARY: lightgbm.autolog,
    lightning.LIBRARY: lightning.autolog,
}
"""The libraries autologging knows, by the name their options and run tags use."""


def autolog(
    disable: bool = False,
    *,
    log_models: bool = True,
    log_input_examples: bool = True,
    log_model_signatures: bool = True,
    log_datasets: bool = True,
    exclusive: bool = False,
    silent: bool = False,
    max_tuning_runs: int | None = 5,
    registered_model_name: str | None = None,
    extra_tags: Mapping[str, str] | None = None,
    libraries: list[str] | None = None,
    settings: Settings | None = None,
) -> None:
    """Log training calls of scikit-learn, XGBoost, LightGBM and PyTorch Lightning, like ``mlflow.autolog()``.

    A library is patched when it is imported (now, if it already is); ``import shipyard`` imports none.
    With no active run each training call starts and ends its own run, named after the estimator; inside
    an active run it logs into that run. Training calls inside a logged call (a Pipeline's steps, a search's
    refits) are not logged again. A failure of autologging is a warning (once); training goes on.

    Args:
        disable: turn autologging off and restore the libraries' own functions.
        log_models: log the trained model (``shipyard.models.log``, as ``model``).
        log_input_examples: keep the first rows of the training data as the model's input example.
        log_model_signatures: infer the model's signature from those rows and its predictions.
        log_datasets: record the training (and evaluation) data as the run's dataset inputs.
        exclusive: log nothing into a run the user started; only into runs autologging starts.
        silent: no warnings from autologging (they go to the ``shipyard.autologging`` log at debug level).
        max_tuning_runs: child runs a search CV logs, best ranks first (None: every candidate).
        registered_model_name: register each logged model as the next version of this registered model.
        extra_tags: tags set on every run autologging logs into.
        libraries: only these (names in `LIBRARIES`); default all.
        settings: the store runs go to (default: from the environment, as ``start_run``'s).
    """
    chosen = list(LIBRARIES) if libraries is None else libraries
    unknown = sorted(set(chosen) - set(LIBRARIES))
    if unknown:
        raise InvalidInput(f"autolog knows no library {', '.join(unknown)}; it knows: {', '.join(LIBRARIES)}")
    options: dict[str, Any] = {
        "log_models": log_models,
        "log_input_examples": log_input_examples,
        "log_model_signatures": log_model_signatures,
        "log_datasets": log_datasets,
        "exclusive": exclusive,
        "silent": silent,
        "max_tuning_runs": max_tuning_runs,
        "registered_model_name": registered_model_name,
        "extra_tags": extra_tags,
        "settings": settings,
    }
    for name in chosen:
        LIBRARIES[name](disable=disable, **options)
