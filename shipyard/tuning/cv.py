"""K-fold cross-validation inside a trial: every fold's score logged on the trial's run and reported to
early stopping, so a bad configuration can stop after a few folds instead of all of them.

    def objective(trial: TrialContext) -> float:
        model = DecisionTreeClassifier(max_depth=trial.params["max_depth"], random_state=0)
        return cross_validate(trial, model, X, y, folds=5).mean
"""

from __future__ import annotations

import difflib
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipyard.errors import InvalidInput
from shipyard.tracking.naming import check_key
from shipyard.tuning.runner import TrialContext, TrialPruned

Scorer = Callable[[Any, Any, Any], float]


@dataclass(frozen=True)
class CVResult:
    """The outcome of :func:`cross_validate`.

    Attributes:
        scores: one score per fold, in fold order, signed as the scorer gives it (sklearn's ``neg_*``
            scorers are negative).
        mean: the mean score (what a trial function returns).
        std: the population standard deviation of the scores (ddof=0, as sklearn's ``cv_results_``).
        fit_seconds: the wall time of each fold's ``fit``.
    """

    scores: list[float]
    mean: float
    std: float
    fit_seconds: list[float]


def cross_validate(
    trial: TrialContext,
    estimator: Any,
    X: Any,
    y: Any,
    *,
    folds: int = 5,
    scoring: str | Scorer = "accuracy",
    stratified: bool | None = None,
    shuffle: bool = True,
    seed: int = 0,
    report: bool = True,
) -> CVResult:
    """Cross-validate ``estimator`` on ``X, y`` in ``folds`` folds, logging on ``trial.run``.

    Logs ``cv_fold_<name>`` (step = fold index) after each fold, then ``cv_mean_<name>``,
    ``cv_std_<name>`` (ddof=0) and ``cv_fit_seconds`` (the mean fit time); ``<name>`` is the scoring
    string or the callable's ``__name__``. With ``report``, each fold's running mean goes to
    ``trial.report(mean, step=fold)``, so early stopping may end the trial between folds; the last fold's
    report never ends it (every fold is already paid for), so a trial that ran all folds completes.

    Args:
        estimator: a scikit-learn estimator (cloned for each fold), or a zero-argument factory of one.
        scoring: a name from ``sklearn.metrics.get_scorer_names()``, or ``scorer(estimator, X, y) -> float``.
        stratified: split with ``StratifiedKFold`` (default: when the estimator is a classifier), else
            ``KFold``.
        shuffle, seed: shuffle the samples before splitting, with this seed (as ``random_state``).
        report: report the running mean to early stopping after each fold.

    Raises:
        InvalidInput: folds < 2 or more than the samples (or the smallest class's members, stratified),
            X and y of different lengths, an unknown scoring name, or a fold whose score is not finite.
        TrialPruned: early stopping ended the trial; let it propagate (the folds so far stay logged).
    """
    from sklearn.base import clone, is_classifier
    from sklearn.model_selection import KFold, StratifiedKFold
    from sklearn.utils import _safe_indexing
    from sklearn.utils.validation import _num_samples

    make = _factory(estimator, clone)
    name, scorer = _scorer(scoring)
    fold_key, mean_key, std_key = f"cv_fold_{name}", f"cv_mean_{name}", f"cv_std_{name}"
    try:
        check_key(fold_key, "metric")
    except InvalidInput:
        raise InvalidInput(
            f"scoring {name!r} does not make a metric name ({fold_key!r}): use letters, digits, '_', '-', "
            "'.', '/' or ':' (a callable's __name__; a lambda has none)"
        ) from None

    if isinstance(folds, bool) or not isinstance(folds, int | np.integer) or folds < 2:
        raise InvalidInput(f"folds must be an integer of at least 2, not {folds!r}")
    folds = int(folds)
    n_samples, n_labels = _num_samples(X), _num_samples(y)
    if n_samples != n_labels:
        raise InvalidInput(f"X has {n_samples} samples but y has {n_labels}: they must be the same length")
    if folds > n_samples:
        raise InvalidInput(f"folds={folds} is more than the {n_samples} samples")

    if stratified is None:
        stratified = is_classifier(make())
    random_state = seed if shuffle else None
    if stratified:
        classes, counts = np.unique(np.asarray(y), return_counts=True)
        smallest = int(np.argmin(counts))
        if folds > counts[smallest]:
            label = classes[smallest]
            label = label.item() if isinstance(label, np.generic) else label
            raise InvalidInput(
                f"folds={folds} is more than the {int(counts[smallest])} members of class "
                f"{label!r} (stratified folds need every class in every fold): "
                "use fewer folds or stratified=False"
            )
        splitter: Any = StratifiedKFold(folds, shuffle=shuffle, random_state=random_state)
    else:
        splitter = KFold(folds, shuffle=shuffle, random_state=random_state)

    scores: list[float] = []
    fit_seconds: list[float] = []
    for fold, (train, test) in enumerate(splitter.split(X, y)):
        model = make()
        started = time.perf_counter()
        model.fit(_safe_indexing(X, train), _safe_indexing(y, train))
        fit_seconds.append(time.perf_counter() - started)
        score = float(scorer(model, _safe_indexing(X, test), _safe_indexing(y, test)))
        if not math.isfinite(score):
            raise InvalidInput(f"fold {fold} of {folds}: the {name} score is {score}, not a finite number")
        scores.append(score)
        trial.run.log_metric(fold_key, score, step=fold)
        if report:
            try:
                trial.report(statistics.fmean(scores), step=fold)
            except TrialPruned:
                if fold < folds - 1:
                    raise

    mean, std = statistics.fmean(scores), statistics.pstdev(scores)
    trial.run.log_metrics({mean_key: mean, std_key: std, "cv_fit_seconds": statistics.fmean(fit_seconds)})
    return CVResult(scores=scores, mean=mean, std=std, fit_seconds=fit_seconds)


def _factory(estimator: Any, clone: Callable[[Any], Any]) -> Callable[[], Any]:
    """A fresh unfitted estimator per call: a clone of ``estimator``, or what the factory makes."""
    if hasattr(estimator, "fit") and hasattr(estimator, "get_params"):
        return lambda: clone(estimator)
    if callable(estimator):

        def make() -> Any:
            made = estimator()
            if not hasattr(made, "fit"):
                raise InvalidInput(
                    f"the estimator factory {estimator!r} returned {type(made).__name__}, not an estimator"
                )
            return made

        return make
    raise InvalidInput(
        f"estimator must be a scikit-learn estimator or a factory of one, not {type(estimator).__name__}"
    )


def _scorer(scoring: str | Scorer) -> tuple[str, Scorer]:
    """The metric name and the scorer of ``scoring``."""
    from sklearn.metrics import get_scorer, get_scorer_names

    if isinstance(scoring, str):
        names = get_scorer_names()
        if scoring not in names:
            common = ("accuracy", "f1", "roc_auc", "r2", "neg_mean_squared_error")
            close = difflib.get_close_matches(scoring, names, n=3)
            few = ", ".join(close or [n for n in common if n in names])
            raise InvalidInput(
                f"unknown scoring {scoring!r}: use one of sklearn.metrics.get_scorer_names() "
                f"({len(names)} names, e.g. {few})"
            )
        return scoring, get_scorer(scoring)
    if callable(scoring):
        name = getattr(scoring, "__name__", None) or getattr(
            getattr(scoring, "_score_func", None), "__name__", None
        )
        return str(name or type(scoring).__name__), scoring
    raise InvalidInput(f"scoring must be a scorer name or a callable, not {type(scoring).__name__}")


__all__ = ["CVResult", "cross_validate"]
