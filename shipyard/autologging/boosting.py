"""What the XGBoost and LightGBM integrations share: metric keys, early stopping and the wrappers' fit."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shipyard.autologging import patching
from shipyard.autologging.session import FitSession

_INVALID = re.compile(r"[^\w\-./: ]")


def metric_key(data: str, metric: str) -> str:
    """``<data>-<metric>`` as MLflow names an eval metric, made a valid key (``ndcg@3`` -> ``ndcg_at_3``)."""
    return _INVALID.sub("_", f"{data}-{metric}".replace("@", "_at_"))


def log_early_stopping(
    session: FitSession,
    history: Mapping[str, Sequence[float]],
    *,
    best_iteration: int,
    best_index: int,
    stopped_iteration: int,
) -> None:
    """MLflow's early-stopping record: ``stopped_iteration`` and ``best_iteration`` as the library numbers
    them, and each eval metric's value at the best iteration (``history[key][best_index]``) logged again
    one step after the last iteration, so that a metric's latest value is its best one."""
    session.log_metrics({"stopped_iteration": stopped_iteration, "best_iteration": best_iteration})
    iterations = max((len(values) for values in history.values()), default=0)
    best = {key: values[best_index] for key, values in history.items() if 0 <= best_index < len(values)}
    session.log_metrics(best, step=iterations)


def logged_wrapper_fit(
    session: FitSession, fit: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """A scikit-learn style wrapper's ``fit`` (``XGBClassifier``, ``LGBMRegressor``…): its params, the
    training data, and the fitted wrapper as the model. The library's ``train``, called inside, joins the
    session to log the per-iteration metrics and early stopping."""
    model = args[0]
    X = args[1] if len(args) > 1 else kwargs.get("X")
    session.log_params(session.safely("read the params", model.get_params) or {})
    if session.run is not None:
        session.safely("tag the run", session.run.set_tags, {"estimator_name": type(model).__name__})
    session.log_dataset(X, "train")
    result = fit(*args, **kwargs)
    session.log_model(model, example_source=X)
    return result


def patch_library(
    library: str,
    train_owners: Sequence[Any],
    wrappers: Mapping[str, Any],
    base: type,
    logged_train: Any,
    joined_train: Any,
) -> None:
    """Patch a boosting library's ``train`` in each module that holds a name for it (its sklearn wrappers
    call the one their own module imported), and the ``fit`` of each wrapper class ``wrappers`` defines
    (subclasses of ``base``)."""
    for owner in train_owners:
        patching.patch(
            library,
            owner,
            "train",
            run_name=lambda _: f"{library}.train",
            logged=logged_train,
            join=joined_train,
        )
    for cls in wrappers.values():
        if isinstance(cls, type) and issubclass(cls, base) and "fit" in vars(cls):
            patching.patch(
                library, cls, "fit", run_name=lambda args: type(args[0]).__name__, logged=logged_wrapper_fit
            )
