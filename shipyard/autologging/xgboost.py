"""XGBoost autologging: ``xgboost.train`` and the scikit-learn wrappers (``XGBClassifier``…).

Logs the params (``train``'s ``params`` with ``num_boost_round``/``early_stopping_rounds``, or the wrapper's
``get_params()``), every eval set's metrics at each iteration as ``<eval name>-<metric>`` (step = iteration),
early stopping (``stopped_iteration``, ``best_iteration``, the best values),
``feature_importance_weight.json`` and the booster (or the fitted wrapper) as the model ``model``.

NOTE: this module is named like the library it wraps; ``import xgboost`` below is absolute and finds it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any

from shipyard.autologging import boosting, patching
from shipyard.autologging.options import AutologOptions
from shipyard.autologging.session import FitSession

LIBRARY = "xgboost"
_TRAIN_ARGS = ("num_boost_round", "early_stopping_rounds", "maximize")


def autolog(**options: Any) -> None:
    """Turn XGBoost autologging on (``disable=True``: off); options as `shipyard.autolog`'s."""
    if options.pop("disable", False):
        patching.disable(LIBRARY)
        return
    patching.enable(LIBRARY, AutologOptions.of(options), ("xgboost",), _install)


def _install(_: ModuleType) -> None:
    import xgboost
    import xgboost.sklearn
    import xgboost.training

    boosting.patch_library(
        LIBRARY,
        (xgboost, xgboost.training, xgboost.sklearn),
        vars(xgboost.sklearn),
        xgboost.XGBModel,
        _logged_train,
        _joined_train,
    )


def _arguments(train: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    bound = inspect.signature(train).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def _logged_train(
    session: FitSession, train: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    arguments = session.safely("read train's arguments", _arguments, train, args, kwargs) or {}
    params = dict(arguments.get("params") or {})
    params.update({k: arguments[k] for k in _TRAIN_ARGS if arguments.get(k) is not None})
    session.log_params(params)
    booster = _joined_train(session, train, args, kwargs)
    session.log_model(booster)
    return booster


def _joined_train(
    session: FitSession, train: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Log the iterations of a ``train`` call (on its own, or inside a wrapper's ``fit``)."""
    import xgboost

    recorder = _recorder(xgboost, session)
    kwargs = dict(kwargs)
    callbacks = list(kwargs.get("callbacks") or [])
    if len(args) > 9:  # callbacks passed positionally (train's 10th parameter): leave the call as it is
        recorder = None
    else:
        kwargs["callbacks"] = [*callbacks, recorder]
    booster = train(*args, **kwargs)
    if recorder is not None and session.logging:
        session.safely("log early stopping", _log_early_stopping, session, booster, recorder.history)
        session.safely("log feature importance", _log_importance, session, booster)
    return booster


def _recorder(xgboost: Any, session: FitSession) -> Any:
    class _Recorder(xgboost.callback.TrainingCallback):  # type: ignore[misc,name-defined]
        """Logs each iteration's eval metrics; keeps them for early stopping."""

        def __init__(self) -> None:
            super().__init__()
            self.history: dict[str, list[float]] = {}

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            points: dict[str, float] = {}
            for data, metrics in evals_log.items():
                for metric, values in metrics.items():
                    latest = values[-1]
                    value = float(latest[0] if isinstance(latest, tuple) else latest)
                    key = boosting.metric_key(data, metric)
                    points[key] = value
                    self.history.setdefault(key, []).append(value)
            session.log_metrics(points, step=epoch)
            return False

    return _Recorder()


def _log_early_stopping(session: FitSession, booster: Any, history: dict[str, list[float]]) -> None:
    best = booster.attributes().get("best_iteration")
    if best is None:  # no early stopping in this call
        return
    boosting.log_early_stopping(
        session,
        history,
        best_iteration=int(best),
        best_index=int(best),
        stopped_iteration=booster.num_boosted_rounds() - 1,
    )


def _log_importance(session: FitSession, booster: Any) -> None:
    if session.run is not None:
        session.run.log_dict(booster.get_score(importance_type="weight"), "feature_importance_weight.json")
