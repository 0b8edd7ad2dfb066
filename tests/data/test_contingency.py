"""Two-sample tests on counts: Fisher's mid-p by hand, Monte Carlo p-values, the batch form, Evidently's."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import numpy as np
import pytest
from scipy import stats

from shipyard.data.contingency import (
    PValueMethod,
    chi_square_counts,
    chi_square_counts_batch,
    chi_square_goodness_of_fit,
    fisher_mid_p,
    ks_counts,
)
from shipyard.data.drift import column_drift


def mid_p_by_enumeration(table: list[list[int]]) -> float:
    """Fisher's two-sided mid-p from exact hypergeometric probabilities, with fractions (no floating ties)."""
    (a, b), (c, d) = table
    n_row, total, successes = a + b, a + b + c + d, a + c

    def probability(x: int) -> Fraction:
        return Fraction(comb(successes, x) * comb(total - successes, n_row - x), comb(total, n_row))

    observed = probability(a)
    support = range(max(0, successes - (c + d)), min(successes, n_row) + 1)
    less = sum((probability(x) for x in support if probability(x) < observed), Fraction(0))
    same = sum((probability(x) for x in support if probability(x) == observed), Fraction(0))
    return float(less + same / 2)


@pytest.mark.parametrize(
    "table", [[[2, 48], [7, 43]], [[0, 30], [4, 26]], [[1, 9], [1, 9]], [[3, 1], [0, 5]]]
)
def test_fisher_mid_p_matches_enumeration_and_sits_below_fisher(table: list[list[int]]) -> None:
    mid_p = fisher_mid_p(np.array(table))
    assert mid_p == pytest.approx(mid_p_by_enumeration(table), rel=1e-9)
    assert mid_p <= stats.fisher_exact(table).pvalue


def test_small_two_by_two_uses_fisher_mid_p() -> None:
    # 2 of 50 against 7 of 50: expected successes 4.5 per side, below Cochran's 5
    result = chi_square_counts(np.array([48, 2]), np.array([43, 7]))
    assert result.method is PValueMethod.FISHER
    assert result.p_value == pytest.approx(mid_p_by_enumeration([[2, 48], [7, 43]]), rel=1e-9)
    # the same counts through column_drift, binary by default (z) and as categories (chisquare), say so
    ref, cur = np.array([1] * 2 + [0] * 48), np.array([1] * 7 + [0] * 43)
    for test in (None, "chisquare"):
        drift = column_drift("churned", ref, cur, test=test)
        assert drift.statistic == pytest.approx(result.p_value, rel=1e-12)
        assert drift.note is not None and "Fisher's exact test (mid-p)" in drift.note
    assert column_drift("churned", ref, cur).test == "z"


def test_large_two_by_two_is_the_pooled_z_test() -> None:
    result = chi_square_counts(np.array([70, 30]), np.array([55, 45]))
    pooled = 75 / 200
    z = (0.3 - 0.45) / np.sqrt(pooled * (1 - pooled) * (2 / 100))
    assert result.method is PValueMethod.STANDARD
    assert result.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)
    assert result.statistic == pytest.approx(z**2, rel=1e-9)


def test_sparse_table_uses_monte_carlo_deterministically() -> None:
    ref, cur = np.array([30, 10, 3, 1, 0, 1]), np.array([25, 12, 2, 0, 3, 1])
    first, again = chi_square_counts(ref, cur), chi_square_counts(ref, cur)
    assert first.method is PValueMethod.MONTE_CARLO and first == again
    # the conditional p-value is near the asymptotic one here, but not the same number
    asymptotic = stats.chi2_contingency(np.array([ref, cur]), correction=False).pvalue
    assert first.p_value == pytest.approx(asymptotic, abs=0.1) and first.p_value != asymptotic


def test_category_seen_on_one_side_only_is_a_column_of_the_table() -> None:
    result = chi_square_counts(np.array([40, 40, 0]), np.array([30, 30, 20]))
    expected = stats.chi2_contingency([[40, 40, 0], [30, 30, 20]], correction=False)
    assert result.method is PValueMethod.STANDARD
    assert result.statistic == pytest.approx(expected.statistic) and result.p_value == pytest.approx(
        expected.pvalue
    )
    # a category on neither side is no column: it adds no degree of freedom
    padded = chi_square_counts(np.array([40, 0, 40, 0]), np.array([30, 0, 30, 20]))
    assert padded.p_value == pytest.approx(result.p_value)


def test_batch_matches_one_table_at_a_time() -> None:
    rng = np.random.default_rng(3)
    p = np.array([0.5, 0.3, 0.15, 0.04, 0.01])
    ref, cur = rng.multinomial(60, p, size=40), rng.multinomial(90, p, size=40)
    one_by_one = [chi_square_counts(r, c).p_value for r, c in zip(ref, cur, strict=True)]
    np.testing.assert_allclose(chi_square_counts_batch(ref, cur), one_by_one, rtol=1e-12)


def test_ks_counts_statistic_is_scipys_with_ties() -> None:
    rng = np.random.default_rng(4)
    ref, cur = rng.poisson(3, 300), rng.poisson(3.6, 200)
    values = np.union1d(ref, cur)
    result = ks_counts(
        np.array([np.sum(ref == v) for v in values]), np.array([np.sum(cur == v) for v in values])
    )
    scipy = stats.ks_2samp(ref, cur)
    assert result.statistic == pytest.approx(scipy.statistic)
    # scipy's p-value assumes no ties and is too large with them; the conditional one is not
    assert result.method is PValueMethod.MONTE_CARLO and result.p_value < scipy.pvalue


def test_goodness_of_fit_is_evidentlys_formula() -> None:
    assert chi_square_goodness_of_fit(np.array([50, 30, 20]), np.array([20, 20, 10])) == pytest.approx(
        stats.chisquare([20, 20, 10], [25.0, 15.0, 10.0]).pvalue
    )
    assert chi_square_goodness_of_fit(np.array([5, 5, 0]), np.array([5, 5, 1])) == 0.0
    assert chi_square_goodness_of_fit(np.array([5]), np.array([7])) == 1.0
