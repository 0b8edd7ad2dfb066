"""scikit-learn autologging: params, training metrics and the model of every ``fit``; search CV's candidates.

Each estimator class's ``fit``, ``fit_transform`` and ``fit_predict`` (where the class defines one) is
patched. A fit logs ``get_params(deep=True)``, tags ``estimator_name``/``estimator_class``, MLflow's
``training_*`` metrics on the training data, and the fitted estimator as the model ``model``. A search CV
(``GridSearchCV``, ``RandomizedSearchCV``…) also logs ``best_<param>`` params, the ``best_cv_score`` metric,
``cv_results.csv``, the refit ``best_estimator`` as a second model, and one child run per candidate (the
``max_tuning_runs`` best by rank) with that candidate's params and its mean/std scores.

NOTE: this module is named like the library it wraps; ``import sklearn`` below is absolute and finds it.
"""

from __future__ import annotations

import inspect
import math
import uuid
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any

from shipyard.autologging import patching
from shipyard.autologging.options import AutologOptions
from shipyard.autologging.session import AUTOLOG_TAG, FitSession, param_text
from shipyard.tracking.fluent import start_run

LIBRARY = "sklearn"
_METHODS = ("fit", "fit_transform", "fit_predict")


def autolog(**options: Any) -> None:
    """Turn scikit-learn autologging on (``disable=True``: off); options as `shipyard.autolog`'s."""
    if options.pop("disable", False):
        patching.disable(LIBRARY)
        return
    patching.enable(LIBRARY, AutologOptions.of(options), ("sklearn",), _install)


def _install(_: ModuleType) -> None:
    import sklearn.base
    from sklearn.utils import all_estimators

    owners: dict[type, None] = {}
    for _, cls in all_estimators():
        for base in inspect.getmro(cls):
            if base.__module__.startswith("sklearn.") and issubclass(base, sklearn.base.BaseEstimator):
                owners[base] = None
    for owner in owners:
        for method in _METHODS:
            if method in vars(owner):
                patching.patch(LIBRARY, owner, method, run_name=_run_name, logged=_logged_fit)


def _run_name(args: tuple[Any, ...]) -> str:
    return type(args[0]).__name__


def _logged_fit(
    session: FitSession, fit: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    estimator = args[0]
    if not session.logging:
        return fit(*args, **kwargs)
    X, y = _training_data(args, kwargs)
    session.log_params(session.safely("read the params", estimator.get_params, deep=True) or {})
    if session.run is not None:
        session.safely(
            "tag the run",
            session.run.set_tags,
            {"estimator_name": type(estimator).__name__, "estimator_class": _qualified(estimator)},
        )
    session.log_dataset(X, "train")
    result = fit(*args, **kwargs)
    sample_weight = kwargs.get("sample_weight")
    session.log_metrics(
        session.safely("score the training data", training_metrics, estimator, X, y, sample_weight) or {}
    )
    if _is_search(estimator):
        session.safely("log the search's candidates", _log_search, session, estimator)
    session.log_model(estimator, example_source=X)
    if _is_search(estimator) and hasattr(estimator, "best_estimator_"):
        session.log_model(estimator.best_estimator_, name="best_estimator", example_source=X)
    return result


def _training_data(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, Any]:
    """``X`` and ``y`` as the call passed them, positionally or by name."""
    positional = list(args[1:3])
    X = positional[0] if positional else kwargs.get("X")
    y = positional[1] if len(positional) > 1 else kwargs.get("y", kwargs.get("Y"))
    return X, y


def _qualified(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _is_search(estimator: Any) -> bool:
    from sklearn.model_selection._search import BaseSearchCV

    return isinstance(estimator, BaseSearchCV)


# ---------------------------------------------------------------------- training metrics
def training_metrics(estimator: Any, X: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
    """MLflow's ``training_*`` metrics of a fitted estimator on its training data.

    Classifiers: accuracy, weighted precision/recall/F1, log loss and ROC AUC (one-vs-rest when
    multiclass) where ``predict_proba`` exists; regressors: MSE, RMSE, MAE, R²; any estimator with
    ``score``: ``training_score``. A metric that cannot be computed (say, ROC AUC with one class) is left out.
    """
    if y is None:
        return {}
    found: dict[str, float] = {}
    for key, compute in _metric_computations(estimator, X, y, sample_weight):
        try:
            value = float(compute())
        except Exception:  # NOTE: a metric that does not apply to this data is skipped, not warned about
            continue
        if not math.isnan(value):
            found[f"training_{key}"] = value
    return found


def _metric_computations(
    estimator: Any, X: Any, y: Any, sample_weight: Any
) -> Iterator[tuple[str, Callable[[], Any]]]:
    """``(name, compute)`` for each metric that fits the estimator's kind; predictions are made once."""
    from sklearn import metrics
    from sklearn.base import is_classifier, is_regressor

    weights = {} if sample_weight is None else {"sample_weight": sample_weight}
    if is_classifier(estimator):
        predicted = estimator.predict(X)
        yield "accuracy_score", lambda: metrics.accuracy_score(y, predicted, **weights)
        for name in ("precision", "recall", "f1"):
            scorer = getattr(metrics, f"{name}_score")
            yield (
                f"{name}_score",
                lambda scorer=scorer: scorer(y, predicted, average="weighted", zero_division=0, **weights),
            )
        if hasattr(estimator, "predict_proba"):
            proba = estimator.predict_proba(X)
            labels = getattr(estimator, "classes_", None)
            yield "log_loss", lambda: metrics.log_loss(y, proba, labels=labels, **weights)
            if proba.shape[1] == 2:
                yield "roc_auc", lambda: metrics.roc_auc_score(y, proba[:, 1], **weights)
            else:
                yield (
                    "roc_auc",
                    lambda: metrics.roc_auc_score(y, proba, multi_class="ovr", labels=labels, **weights),
                )
    elif is_regressor(estimator):
        predicted = estimator.predict(X)
        yield "mean_squared_error", lambda: metrics.mean_squared_error(y, predicted, **weights)
        yield "root_mean_squared_error", lambda: metrics.root_mean_squared_error(y, predicted, **weights)
        yield "mean_absolute_error", lambda: metrics.mean_absolute_error(y, predicted, **weights)
        yield "r2_score", lambda: metrics.r2_score(y, predicted, **weights)
    if hasattr(estimator, "score"):
        yield "score", lambda: estimator.score(X, y, **weights)


# ---------------------------------------------------------------------- search CV
def _log_search(session: FitSession, search: Any) -> None:
    """Best params and score on the search's run; a child run per candidate, best ranks first."""
    import pandas as pd

    run = session.run
    if run is None:
        return
    if hasattr(search, "best_params_"):
        run.log_params({f"best_{k}": param_text(v) for k, v in search.best_params_.items()})
    if getattr(search, "best_score_", None) is not None:
        run.log_metrics({"best_cv_score": float(search.best_score_)})
    results = search.cv_results_
    frame = pd.DataFrame(results)
    run.log_text(frame.to_csv(index=False), "cv_results.csv")
    limit = session.options.max_tuning_runs
    ranks = _ranks(results)
    order = sorted(range(len(results["params"])), key=lambda i: (ranks[i], i))
    chosen = order if limit is None else order[:limit]
    base = search.estimator.get_params(deep=True)
    for index in chosen:
        candidate = results["params"][index]
        metrics = {
            key: float(values[index])
            for key, values in results.items()
            if _is_summary(key) and _is_number(values[index])
        }
        params = {k: param_text(v) for k, v in {**base, **candidate}.items()}
        with start_run(
            name=f"{run.name}-candidate-{index}-{uuid.uuid4().hex[:4]}",
            parent=run,
            tags={AUTOLOG_TAG: LIBRARY, "candidate_index": str(index)},
            log_system_metrics=False,
            settings=session.options.settings,
        ) as child:
            child.log_params(params)
            child.log_metrics(metrics)


def _ranks(results: Mapping[str, Any]) -> list[int]:
    for key in ("rank_test_score", *sorted(k for k in results if k.startswith("rank_test_"))):
        if key in results:
            return [int(r) for r in results[key]]
    return [0] * len(results["params"])


def _is_summary(key: str) -> bool:
    """cv_results_ columns a candidate's child run keeps: mean/std/rank of scores and times, not splits."""
    return key.startswith(("mean_", "std_", "rank_"))


def _is_number(value: Any) -> bool:
    try:
        return not math.isnan(float(value))
    except (TypeError, ValueError):
        return False
