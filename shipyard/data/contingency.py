"""Two-sample tests on counts: how often each value occurs in the reference and in the current sample.

A categorical or binary column reduces to a 2 x k table of counts, one column per value seen on either side
(a value seen on neither side is not in the table; one seen on one side only is a column with a zero cell).
The tests here ask whether both rows come from one distribution, taking **both** samples as random: the
reference proportions are estimates too. (Evidently's chi-squared takes them as exact; with samples of equal
size that roughly doubles its statistic, and 3 to 20 unshifted categories drift 23% to 97% of the time at a
nominal 5%. :func:`chi_square_goodness_of_fit` keeps that formula for users who want Evidently's verdicts.)

p-values come from the large-sample distribution when every expected count is at least 5 (Cochran's rule);
below that it is unreliable (conservative for sparse tables), so the p-value is taken from the exact
conditional distribution instead, the tables with the same row and column totals:

* 2 x 2: Fisher's exact test, **mid-p** (half the probability of the observed table counts): Fisher's own
  p-value is valid but conservative (2.5% instead of 5% for a 5% rate in 100 rows), the mid-p is near 5%.
* 2 x k, k > 2: a Monte Carlo draw of 4,000 tables from that distribution (R's ``simulate.p.value``), mid-p
  as well, with a fixed seed so that the same counts always give the same p-value (at least 0.5 / 4,001).

The Kolmogorov-Smirnov statistic of a discrete column (values in order, with ties) gets the same Monte Carlo
mid-p (:func:`ks_counts`): the continuous KS distribution that scipy applies to it is conservative under
ties (0.7% instead of 5% for Poisson(3) counts). Mid-p values are not capped at the nominal rate the way
Fisher's are, but they are closer to it; identical samples therefore give a p-value near 1 but not exactly 1
for Fisher's test (the observed table counts half).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy import stats

__all__ = [
    "CountTestResult",
    "PValueMethod",
    "chi_square_counts",
    "chi_square_counts_batch",
    "chi_square_goodness_of_fit",
    "fisher_mid_p",
    "ks_counts",
]

MIN_EXPECTED = 5.0  # Cochran's rule: below this expected count the chi-squared approximation is unreliable
DRAWS = 4_000  # Monte Carlo tables for a conditional p-value; its resolution is 1 / (DRAWS + 1)
SEED = 20_240_611  # fixed, so the same counts give the same Monte Carlo p-value on every run
_REL_TOL = 1e-9  # statistics equal up to rounding count as ties with the observed one


class PValueMethod(StrEnum):
    """Where a p-value came from."""

    STANDARD = "standard"  # the chi-squared distribution; scipy's for Kolmogorov-Smirnov
    FISHER = "fisher"  # Fisher's exact test on a 2 x 2 table, mid-p
    MONTE_CARLO = "monte carlo"  # DRAWS tables from the exact conditional distribution

    def describe(self) -> str:
        """A phrase for a result's note, e.g. "Fisher's exact test (mid-p)"."""
        return {
            PValueMethod.STANDARD: "the test's usual p-value",
            PValueMethod.FISHER: "Fisher's exact test (mid-p)",
            PValueMethod.MONTE_CARLO: f"Monte Carlo conditional p-value ({DRAWS:,} tables)",
        }[self]


@dataclass(frozen=True)
class CountTestResult:
    """A test's statistic, its p-value and where the p-value came from."""

    statistic: float
    p_value: float
    method: PValueMethod


def _table(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = np.asarray(reference_counts, dtype=float)
    cur = np.asarray(current_counts, dtype=float)
    if ref.shape != cur.shape:
        raise ValueError(f"count shapes differ: {ref.shape} and {cur.shape}")
    return ref, cur


def _pearson(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pearson's statistic over the last axis, the degrees of freedom and the smallest expected count.

    Columns empty on both sides drop out (no term, no degree of freedom).
    """
    total = ref + cur
    n_ref = ref.sum(axis=-1, keepdims=True)
    n_cur = cur.sum(axis=-1, keepdims=True)
    share_ref = n_ref / (n_ref + n_cur)
    seen = total > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        exp_ref, exp_cur = total * share_ref, total * (1.0 - share_ref)
        terms = (ref - exp_ref) ** 2 / exp_ref + (cur - exp_cur) ** 2 / exp_cur
    statistic = np.where(seen, terms, 0.0).sum(axis=-1)
    dof = seen.sum(axis=-1) - 1
    smallest = np.where(seen, np.minimum(exp_ref, exp_cur), np.inf).min(axis=-1)
    return statistic, dof, smallest


def fisher_mid_p(table: np.ndarray) -> float:
    """Two-sided mid-p of Fisher's exact test on a 2 x 2 table of counts.

    Fisher's p-value sums the probabilities (given the margins) of every table as likely as the observed one
    or less (``scipy.stats.fisher_exact``); the mid-p counts the tables exactly as likely only half.
    """
    (a, b), (c, d) = np.asarray(table, dtype=np.int64)
    total, successes, row = a + b + c + d, a + c, a + b
    support = np.arange(max(0, successes - (c + d)), min(successes, row) + 1)
    pmf = stats.hypergeom.pmf(support, total, successes, row)
    observed = stats.hypergeom.pmf(a, total, successes, row)
    tie = np.abs(pmf - observed) <= 1e-7 * observed  # scipy.stats.fisher_exact's tolerance
    return float(min(1.0, pmf[(pmf < observed) & ~tie].sum() + 0.5 * pmf[tie].sum()))


def _draw_reference_counts(total: np.ndarray, n_ref: int) -> np.ndarray:
    """DRAWS reference rows with the observed column totals (the current row is ``total - these``)."""
    rng = np.random.default_rng(SEED)
    return rng.multivariate_hypergeometric(total.astype(np.int64), n_ref, size=DRAWS).astype(float)


def _monte_carlo_p(observed: float, simulated: np.ndarray) -> float:
    """Mid-p of the observed statistic among the simulated ones, counting it as a draw: the share above it
    plus half the share equal to it (rounding aside). Counting ties in full, as ``(1 + #>=) / (B + 1)`` does,
    is conservative for a statistic with few possible values (KS on tied data: 3.7% instead of 5%)."""
    above = int(np.count_nonzero(simulated > observed * (1 + _REL_TOL)))
    equal = int(np.count_nonzero(simulated >= observed * (1 - _REL_TOL))) - above
    return (above + 0.5 * (equal + 1)) / (simulated.size + 1)


def chi_square_counts(reference_counts: np.ndarray, current_counts: np.ndarray) -> CountTestResult:
    """Pearson's chi-squared test that two samples' counts over the same values share one distribution.

    Args:
        reference_counts: how often each value occurs in the reference (1-D).
        current_counts: the same values' counts in the current sample.

    Returns:
        The statistic (k - 1 degrees of freedom, k = values seen on either side) and its p-value: from the
        chi-squared distribution when every expected count is at least 5, else Fisher's mid-p (k = 2) or the
        Monte Carlo conditional p-value (k > 2). Fewer than 2 values seen returns p = 1.
    """
    ref, cur = _table(reference_counts, current_counts)
    statistic, dof, smallest = (float(v) for v in _pearson(ref, cur))
    if dof < 1:
        return CountTestResult(0.0, 1.0, PValueMethod.STANDARD)
    if smallest >= MIN_EXPECTED:
        return CountTestResult(statistic, float(stats.chi2.sf(statistic, dof)), PValueMethod.STANDARD)
    seen = (ref + cur) > 0
    ref, cur = ref[seen], cur[seen]
    if ref.size == 2:
        return CountTestResult(statistic, fisher_mid_p(np.array([ref, cur])), PValueMethod.FISHER)
    drawn = _draw_reference_counts(ref + cur, int(ref.sum()))
    simulated = _pearson(drawn, (ref + cur) - drawn)[0]
    return CountTestResult(statistic, _monte_carlo_p(statistic, simulated), PValueMethod.MONTE_CARLO)


def chi_square_counts_batch(reference_counts: np.ndarray, current_counts: np.ndarray) -> np.ndarray:
    """:func:`chi_square_counts`'s p-values for many tables at once (one per row of 2-D count arrays).

    Tables that pass Cochran's rule are computed together; the others one by one, as
    :func:`chi_square_counts` does. For calibration runs over thousands of samples.
    """
    ref, cur = _table(reference_counts, current_counts)
    if ref.ndim != 2:
        raise ValueError(f"expected 2-D count arrays (tables x values), got shape {ref.shape}")
    statistic, dof, smallest = _pearson(ref, cur)
    p_values = np.ones(ref.shape[0])
    large = (dof >= 1) & (smallest >= MIN_EXPECTED)
    p_values[large] = stats.chi2.sf(statistic[large], dof[large])
    for row in np.flatnonzero((dof >= 1) & ~large):
        p_values[row] = chi_square_counts(ref[row], cur[row]).p_value
    return p_values


def ks_counts(reference_counts: np.ndarray, current_counts: np.ndarray) -> CountTestResult:
    """Two-sample Kolmogorov-Smirnov test of a discrete variable, from its counts per value in value order.

    The statistic is the largest gap between the two empirical CDFs (taken at each distinct value, as scipy
    does with ties); its p-value is the Monte Carlo conditional one (reference counts drawn with the observed
    totals per value), which stays near the nominal rate however many ties there are.
    """
    ref, cur = _table(reference_counts, current_counts)
    seen = (ref + cur) > 0
    ref, cur = ref[seen], cur[seen]
    if ref.size < 2:
        return CountTestResult(0.0, 1.0, PValueMethod.MONTE_CARLO)
    n_ref, n_cur = ref.sum(), cur.sum()

    def gap(r: np.ndarray, c: np.ndarray) -> np.ndarray:
        return np.abs(np.cumsum(r, axis=-1) / n_ref - np.cumsum(c, axis=-1) / n_cur).max(axis=-1)

    statistic = float(gap(ref, cur))
    drawn = _draw_reference_counts(ref + cur, int(n_ref))
    p_value = _monte_carlo_p(statistic, gap(drawn, (ref + cur) - drawn))
    return CountTestResult(statistic, p_value, PValueMethod.MONTE_CARLO)


def chi_square_goodness_of_fit(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Evidently's chi-squared p-value: current counts against the reference proportions taken as exact.

    Expected = reference count x (current rows / reference rows), k - 1 degrees of freedom. A value seen
    in the current sample only has expected 0: the statistic is infinite and the p-value 0 (returned
    directly). Fewer than 2 values seen returns 1.0. Miscalibrated (see the module docstring): for users who
    want Evidently's verdicts.
    """
    ref, cur = _table(reference_counts, current_counts)
    if ref.size < 2:
        return 1.0
    expected = ref * (cur.sum() / ref.sum())
    if np.any((expected == 0) & (cur > 0)):
        return 0.0
    return float(stats.chisquare(f_obs=cur, f_exp=expected).pvalue)
