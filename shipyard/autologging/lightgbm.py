"""LightGBM autologging: ``lightgbm.train`` and the scikit-learn wrappers (``LGBMClassifier``…).

Logs the params (``train``'s ``params`` with ``num_boost_round``, or the wrapper's ``get_params()``), every
valid set's metrics at each iteration as ``<valid name>-<metric>`` (step = iteration, from 0), early stopping
(``stopped_iteration``: the iterations run; ``best_iteration`` as LightGBM numbers it, from 1; the
best values),
``feature_importance_split.json``/``feature_importance_gain.json`` and the booster (or the fitted wrapper)
as the model ``model``.

NOTE: this module is named like the library it wraps; ``import lightgbm`` below is absolute and finds it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any

from shipyard.autologging import boosting, patching
from shipyard.autologging.options import AutologOptions
from shipyard.autologging.session import FitSession

LIBRARY = "lightgbm"


def autolog(**options: Any) -> None:
    """Turn LightGBM autologging on (``disable=True``: off); options as `shipyard.autolog`'s."""
    if options.pop("disable", False):
        patching.disable(LIBRARY)
        return
    patching.enable(LIBRARY, AutologOptions.of(options), ("lightgbm",), _install)


def _install(_: ModuleType) -> None:
    import lightgbm
    import lightgbm.engine
    import lightgbm.sklearn

    boosting.patch_library(
        LIBRARY,
        (lightgbm, lightgbm.engine, lightgbm.sklearn),
        vars(lightgbm.sklearn),
        lightgbm.LGBMModel,
        _logged_train,
        _joined_train,
    )


def _logged_train(
    session: FitSession, train: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    bound = session.safely("read train's arguments", _arguments, train, args, kwargs) or {}
    params = dict(bound.get("params") or {})
    if "num_boost_round" in bound:
        params.setdefault("num_boost_round", bound["num_boost_round"])
    session.log_params(params)
    train_set = bound.get("train_set")
    session.log_dataset(getattr(train_set, "data", None), "train")
    booster = _joined_train(session, train, args, kwargs)
    session.log_model(booster)
    return booster


def _arguments(train: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    bound = inspect.signature(train).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def _joined_train(
    session: FitSession, train: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Log the iterations of a ``train`` call (on its own, or inside a wrapper's ``fit``)."""
    recorder = _Recorder(session)
    kwargs = dict(kwargs)
    if len(args) > 8:  # callbacks passed positionally (train's 9th parameter): leave the call as it is
        booster = train(*args, **kwargs)
        return booster
    kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), recorder]
    booster = train(*args, **kwargs)
    if session.logging:
        session.safely("log early stopping", _log_early_stopping, session, booster, recorder.history)
        session.safely("log feature importance", _log_importance, session, booster)
    return booster


class _Recorder:
    """A LightGBM callback: logs each iteration's valid-set metrics and keeps them for early stopping."""

    order = 25  # after LightGBM's own evaluation logging (10), before early stopping (30) ends training
    before_iteration = False

    def __init__(self, session: FitSession) -> None:
        self.session = session
        self.history: dict[str, list[float]] = {}

    def __call__(self, env: Any) -> None:
        points: dict[str, float] = {}
        for item in env.evaluation_result_list or ():
            data, metric, value = item[0], item[1], float(item[2])
            key = boosting.metric_key(data, metric)
            points[key] = value
            self.history.setdefault(key, []).append(value)
        self.session.log_metrics(points, step=env.iteration - env.begin_iteration)


def _log_early_stopping(session: FitSession, booster: Any, history: dict[str, list[float]]) -> None:
    best = int(booster.best_iteration or 0)
    if best <= 0:  # no early stopping in this call
        return
    # NOTE: the returned booster keeps only the best iterations; the recorder saw every one that ran.
    ran = max((len(values) for values in history.values()), default=booster.current_iteration())
    boosting.log_early_stopping(
        session, history, best_iteration=best, best_index=best - 1, stopped_iteration=ran
    )


def _log_importance(session: FitSession, booster: Any) -> None:
    if session.run is None:
        return
    names = booster.feature_name()
    for kind in ("split", "gain"):
        values = booster.feature_importance(importance_type=kind)
        session.run.log_dict(
            {name: float(value) for name, value in zip(names, values, strict=True)},
            f"feature_importance_{kind}.json",
        )
