"""Calibration: unshifted columns drift about 5% of the time at p < 0.05 under every default p-value test.

Each case draws 400 pairs of samples from one distribution (fixed seed) and counts how many
``column_drift`` calls drift; the count must fall in the central 99.9% of Binomial(400, 0.05), i.e. 7 to 36
(1.75% to 9%). Before the two-sample chi-squared, 3 and 8 categories drifted 23% and 45% of the time; KS
on tied Poisson counts about 1%.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats

from shipyard.data.drift import column_drift

SAMPLES = 400
LOW, HIGH = stats.binom.interval(0.999, SAMPLES, 0.05)

Draw = Callable[[np.random.Generator, int], np.ndarray]


def categories(*weights: float) -> Draw:
    labels = np.array([f"c{i:02d}" for i in range(len(weights))], dtype=object)
    p = np.asarray(weights) / np.sum(weights)
    return lambda rng, n: rng.choice(labels, size=n, p=p)


def drifted(draw: Draw, rows: int, *, test: str | None = None, seed: int = 12) -> tuple[int, set[str]]:
    """How many of SAMPLES unshifted pairs drift, and the tests that judged them."""
    rng = np.random.default_rng(seed)
    results = [column_drift("c", draw(rng, rows), draw(rng, rows), test=test) for _ in range(SAMPLES)]
    return sum(r.drift_detected for r in results), {r.test for r in results}


@pytest.mark.parametrize(
    ("name", "draw", "rows", "test"),
    [
        ("3 categories", categories(5, 3, 2), 100, "chisquare"),
        ("8 categories", categories(*range(8, 0, -1)), 800, "chisquare"),
        ("20 sparse categories (Monte Carlo)", categories(*(0.8**i for i in range(20))), 100, "chisquare"),
        ("binary", lambda rng, n: rng.random(n) < 0.3, 100, "z"),
        ("rare binary (Fisher)", lambda rng, n: rng.random(n) < 0.04, 100, "z"),
        ("Poisson counts, tied (KS)", lambda rng, n: rng.poisson(3.0, n), 200, "ks"),
        ("normal (KS)", lambda rng, n: rng.normal(0.0, 1.0, n), 800, "ks"),
    ],
)
def test_unshifted_columns_drift_at_the_nominal_rate(name: str, draw: Draw, rows: int, test: str) -> None:
    count, tests = drifted(draw, rows)
    assert tests == {test}
    assert LOW <= count <= HIGH, f"{name}: {count} of {SAMPLES} unshifted samples drifted"


def test_chisquare_evidently_keeps_evidentlys_miscalibration() -> None:
    count, tests = drifted(categories(5, 3, 2), 100, test="chisquare_evidently")
    assert tests == {"chisquare_evidently"}
    assert count > 0.15 * SAMPLES  # about 23%: the reference proportions are taken as exact


def test_shifted_categories_are_still_found() -> None:
    rng = np.random.default_rng(5)
    reference = categories(5, 3, 2)(rng, 800)
    current = categories(4, 3, 3)(rng, 800)
    result = column_drift("c", reference, current)
    assert result.test == "chisquare" and result.drift_detected
