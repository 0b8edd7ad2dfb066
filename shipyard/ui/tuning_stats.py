"""What a tuning search's trials add up to, as numbers: the optimization history (each value and the best so
far, thinned for a chart), the Pareto front of two objectives, and parameter importances.

Pure functions of arrays and records: the pages in :mod:`shipyard.ui.tuning_pages` read the trials.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from shipyard.errors import InvalidInput
from shipyard.ui import downsample

MAX_CATEGORIES = 100  # an inferred categorical parameter with more distinct values is left out


@dataclass(frozen=True)
class History:
    """The kept points of an optimization history, in trial order: x, each trial's value and the best value
    up to that trial; ``total`` is how many trials the history had."""

    x: np.ndarray
    values: np.ndarray
    best: np.ndarray
    total: int


def best_so_far(values: np.ndarray, maximize: bool) -> np.ndarray:
    """The best of ``values[:i + 1]`` at each ``i`` (NaN skipped; NaN until the first number)."""
    values = np.asarray(values, dtype=np.float64)
    return np.fmax.accumulate(values) if maximize else np.fmin.accumulate(values)


def history(
    x: np.ndarray, values: np.ndarray, maximize: bool, budget: int = downsample.MAX_POINTS
) -> History:
    """The history of ``values`` by ``x`` (trial numbers, or finish times) for a chart of at most about
    ``budget`` points: the trials :func:`~shipyard.ui.downsample.thin` keeps (each span's lowest and highest
    value), plus every trial that improved the best (up to ``budget // 2`` of them, thinned alike), so the
    best-so-far line steps where it really does.

    Spans are counted in trials, not in units of ``x``: a chart by finish time keeps a burst of trials as
    well as a quiet hour.
    """
    x = np.asarray(x, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if x.shape != values.shape:
        raise InvalidInput(f"x and values must be of one length, got {x.shape} and {values.shape}")
    order = np.argsort(x, kind="stable")
    x, values = x[order], values[order]
    best = best_so_far(values, maximize)
    total = len(x)
    positions = np.arange(total, dtype=np.float64)
    kept = downsample.thin(positions, values, budget).x.astype(np.int64)
    improved = np.flatnonzero(np.r_[True, best[1:] != best[:-1]] & ~np.isnan(best)) if total else kept
    if len(improved) > budget // 2:
        thinned = downsample.thin(improved.astype(np.float64), best[improved], budget // 2)
        improved = thinned.x.astype(np.int64)
    chosen = np.union1d(kept, improved)
    return History(x[chosen], values[chosen], best[chosen], total)


def pareto_front(first: np.ndarray, second: np.ndarray, maximize: tuple[bool, bool]) -> np.ndarray:
    """Which points are on the Pareto front of two objectives: a mask, True where no other point is at least
    as good on both and better on one. Points with a NaN are never on it. O(n log n): a sort by the first
    objective, then one pass keeping the best second value seen.
    """
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise InvalidInput(f"the objectives must be 1-D of one length, got {a.shape} and {b.shape}")
    front = np.zeros(len(a), dtype=bool)
    usable = np.flatnonzero(~(np.isnan(a) | np.isnan(b)))
    if not len(usable):
        return front
    # Lower is better on both, from here on.
    x = -a[usable] if maximize[0] else a[usable]
    y = -b[usable] if maximize[1] else b[usable]
    order = np.lexsort((y, x))
    x, y = x[order], y[order]
    starts = np.flatnonzero(np.r_[True, x[1:] != x[:-1]])
    group = np.cumsum(np.r_[True, x[1:] != x[:-1]]) - 1
    lowest = y[starts]  # each run of equal x is sorted by y: its first y is its lowest
    before = np.r_[np.inf, np.minimum.accumulate(lowest)[:-1]]  # the lowest y at any smaller x
    # On the front: the lowest y of its x (ties all count: equal points do not dominate each other), and
    # lower than anything at a smaller x.
    on_front = (y == lowest[group]) & (lowest < before)[group]
    front[usable[order[on_front]]] = True
    return front


@dataclass(frozen=True)
class Importances:
    """Each parameter's importance (summing to 1, highest first) and how they were found."""

    values: dict[str, float]
    trials: int  # the trials they were computed from
    inferred: bool  # the distributions were inferred from the values seen (the search's spec was missing)


def decode(text: str, distribution: BaseDistribution) -> object:
    """A param as the tracking store keeps it (text) back in ``distribution``'s type.

    Raises:
        ValueError: the text is no value of ``distribution``.
    """
    if isinstance(distribution, CategoricalDistribution):
        for choice in distribution.choices:
            if (choice if isinstance(choice, str) else str(choice)) == text:
                return choice
        raise ValueError(f"{text!r} is not among the choices")
    number = float(text)
    if isinstance(distribution, IntDistribution):
        if number != int(number):
            raise ValueError(f"{text!r} is not a whole number")
        return int(number)
    return number


def infer_distributions(params: Sequence[Mapping[str, str]]) -> dict[str, BaseDistribution]:
    """Distributions that hold every value seen: numbers over their observed range (int when all are whole),
    anything else as the categories seen (at most :data:`MAX_CATEGORIES`). A parameter with one value only
    is left out (it explains nothing)."""
    seen: dict[str, set[str]] = {}
    for trial in params:
        for key, text in trial.items():
            seen.setdefault(key, set()).add(text)
    out: dict[str, BaseDistribution] = {}
    for key, texts in seen.items():
        if len(texts) < 2:
            continue
        try:
            numbers = [float(t) for t in texts]
        except ValueError:
            numbers = []
        if numbers and all(math.isfinite(n) for n in numbers):
            if all(n == int(n) for n in numbers):
                out[key] = IntDistribution(int(min(numbers)), int(max(numbers)))
            else:
                out[key] = FloatDistribution(min(numbers), max(numbers))
        elif len(texts) <= MAX_CATEGORIES:
            out[key] = CategoricalDistribution(sorted(texts))
    return out


def importances(
    trials: Sequence[tuple[Mapping[str, str], float]],
    distributions: Mapping[str, BaseDistribution] | None,
    maximize: bool,
) -> Importances:
    """Parameter importances for one objective from completed trials (their params as stored, their value),
    by Optuna's PED-ANOVA evaluator on an in-memory study rebuilt with ``optuna.trial.create_trial``.

    PED-ANOVA (Optuna's default since 5.0; named here, as 4.x defaulted to fANOVA, which takes ~20 s on
    2,000 trials) scores how differently each parameter is distributed among the best 10 % of the trials
    than among all of them. ``distributions`` come from the search's spec; None infers them from the values
    (:func:`infer_distributions`). A trial with a param outside its distribution is left out; a parameter
    some trials lack (a conditional one) is too, as Optuna scores the parameters every trial has.

    Raises:
        InvalidInput: fewer than two usable trials, or Optuna could not score them (its reason given).
    """
    inferred = distributions is None
    space = infer_distributions([p for p, _ in trials]) if distributions is None else dict(distributions)
    rebuilt = []
    for params, value in trials:
        if not math.isfinite(value):
            continue
        try:
            decoded = {k: decode(params[k], d) for k, d in space.items() if k in params}
            rebuilt.append(
                optuna.trial.create_trial(
                    params=decoded, distributions={k: space[k] for k in decoded}, value=value
                )
            )
        except ValueError:
            continue
    if len(rebuilt) < 2:
        raise InvalidInput(f"importances need at least 2 completed trials with values, got {len(rebuilt)}")
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "a new study created" line per page view
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PED-ANOVA is "experimental" in Optuna 4; a small sample warns
            study = optuna.create_study(direction="maximize" if maximize else "minimize")
            study.add_trials(rebuilt)
            scores = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
            )
    except (ValueError, RuntimeError) as exc:
        raise InvalidInput(f"Optuna could not score the parameters: {exc}") from exc
    finally:
        optuna.logging.set_verbosity(level)
    ranked = sorted(((k, float(v)) for k, v in scores.items()), key=lambda kv: -kv[1])
    return Importances(dict(ranked), len(rebuilt), inferred)


__all__ = [
    "History",
    "Importances",
    "best_so_far",
    "decode",
    "history",
    "importances",
    "infer_distributions",
    "pareto_front",
]
