"""A tuning search's numbers: the Pareto front against its definition, the history's best so far and its
thinning, params read back into their distributions, and importances."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from shipyard.errors import InvalidInput
from shipyard.ui.tuning_stats import decode, history, importances, infer_distributions, pareto_front

values = st.one_of(st.integers(-3, 3).map(float), st.just(float("nan")))


def _dominated(a: list[float], b: list[float], i: int, signs: tuple[int, int]) -> bool:
    mine = (signs[0] * a[i], signs[1] * b[i])
    for j in range(len(a)):
        theirs = (signs[0] * a[j], signs[1] * b[j])
        at_least_as_good = not np.isnan(theirs).any() and theirs[0] >= mine[0] and theirs[1] >= mine[1]
        if j != i and at_least_as_good and theirs != mine:
            return True
    return False


@given(st.lists(st.tuples(values, values), max_size=40), st.booleans(), st.booleans())
def test_the_front_is_exactly_the_points_nothing_dominates(
    points: list[tuple[float, float]], up_a: bool, up_b: bool
) -> None:
    a, b = [p[0] for p in points], [p[1] for p in points]
    signs = (1 if up_a else -1, 1 if up_b else -1)
    expected = [
        not (np.isnan(a[i]) or np.isnan(b[i])) and not _dominated(a, b, i, signs) for i in range(len(a))
    ]
    assert pareto_front(np.array(a), np.array(b), (up_a, up_b)).tolist() == expected


def test_the_front_of_a_large_search_takes_a_sort_not_a_square() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random(200_000), rng.random(200_000)
    front = pareto_front(a, b, (True, False))  # quadratic would take minutes
    best_a = np.argmax(a)
    assert front[best_a] and front.sum() < 100


def test_the_history_keeps_the_extremes_and_every_step_of_the_best() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=46_000)
    values[31_337] = 40.0
    kept = history(np.arange(46_000), values, maximize=True)
    assert kept.total == 46_000 and len(kept.x) <= 3000
    assert 40.0 in kept.values and kept.best[-1] == 40.0
    assert np.all(np.diff(kept.best) >= 0) and np.all(kept.best >= kept.values)
    full_best = np.maximum.accumulate(values)
    assert set(np.flatnonzero(np.diff(full_best)) + 1) <= set(kept.x.astype(int).tolist())
    down = history(np.arange(5), np.array([3.0, 1.0, 2.0, np.nan, 0.5]), maximize=False)
    assert down.best.tolist() == [3.0, 1.0, 1.0, 1.0, 0.5]


def test_params_read_back_into_their_distributions() -> None:
    assert decode("0.25", FloatDistribution(0, 1)) == 0.25
    assert decode("7", IntDistribution(1, 10)) == 7
    assert decode("True", CategoricalDistribution([False, True])) is True
    with pytest.raises(ValueError):
        decode("7.5", IntDistribution(1, 10))
    with pytest.raises(ValueError):
        decode("d", CategoricalDistribution(["a", "b"]))
    inferred = infer_distributions(
        [{"n": "1", "x": "0.5", "k": "a", "c": "z"}, {"n": "4", "x": "2", "k": "b", "c": "z"}]
    )
    assert inferred == {
        "n": IntDistribution(1, 4),
        "x": FloatDistribution(0.5, 2.0),
        "k": CategoricalDistribution(["a", "b"]),
    }


def test_importances_rank_the_parameter_the_value_follows() -> None:
    rng = np.random.default_rng(2)
    trials = []
    for _ in range(300):
        x, noise = rng.uniform(-5, 5), rng.choice(["a", "b", "c"])
        trials.append(({"x": repr(x), "noise": str(noise)}, -((x - 2) ** 2)))
    space = {"x": FloatDistribution(-5, 5), "noise": CategoricalDistribution(["a", "b", "c"])}
    found = importances(trials, space, maximize=True)
    assert list(found.values) == ["x", "noise"] and found.trials == 300 and not found.inferred
    assert sum(found.values.values()) == pytest.approx(1.0)
    guessed = importances(trials, None, maximize=True)
    assert max(guessed.values, key=guessed.values.__getitem__) == "x" and guessed.inferred
    with pytest.raises(InvalidInput, match="at least 2"):
        importances(trials[:1], space, maximize=True)
