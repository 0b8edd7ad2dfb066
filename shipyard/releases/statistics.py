"""Statistics for A/B tests between model versions: per-arm estimates with intervals, the classic
fixed-horizon tests with their sample-size plan, and a sequential test that stays valid however often it is
read.

Why two tests. A fixed-horizon test (the two-proportion z-test, Welch's t-test) is valid only when read
once, at a sample size fixed in advance; read after every batch of traffic and stopped at the first
p < 0.05, it declares a winner between two identical versions far more often than 5% of the time
(:func:`simulate` measures how often). The mixture sequential probability ratio test (mSPRT) gives
*always-valid* p-values and confidence sequences: the chance that it ever rejects a true null, over any
number of looks, is at most alpha.

Outcomes are either ``binary`` (a conversion: 0 or 1) or ``numeric`` (any per-request number). Each arm is
kept as its sufficient statistics (:class:`Arm`: count, sum, sum of squares), so estimates never need the
raw outcomes again.

References:

- Johari, Koomen, Pekelis, Walsh (2017), "Peeking at A/B tests: why it matters, and what to do about it",
  KDD '17: the normal-mixture likelihood ratio (their eq. 11), always-valid p-values as the running
  minimum of its inverse, and confidence sequences as its inversion (their section 4); also Johari, Pekelis,
  Walsh, "Always valid inference", Operations Research 70(3), 2022.
- Robbins (1970), "Statistical methods related to the law of the iterated logarithm", Ann. Math. Statist.
  41(5): the mixture martingale behind the bound P(ever Lambda >= 1/alpha) <= alpha.
- Wilson (1927), "Probable inference, the law of succession, and statistical inference", JASA 22: the
  score interval for a proportion. Welch (1947), Biometrika 34: the unequal-variance t-test.
- Chow, Shao, Wang (2008), *Sample Size Calculations in Clinical Research*, 2nd ed., sections 3.2.1 (two
  means) and 4.2 (two proportions): the two-sided fixed-horizon sample sizes.
- Cohen (1988), *Statistical Power Analysis for the Behavioral Sciences*: a "small" effect is 0.2 standard
  deviations; the default mixture scale here is half of it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from scipy import stats

from shipyard.errors import InvalidInput

Kind = Literal["binary", "numeric"]
KINDS: tuple[str, ...] = ("binary", "numeric")
DEFAULT_TAU_SDS = 0.1  # the mixture's scale, in outcome standard deviations, when no effect size is given


@dataclass(frozen=True)
class Arm:
    """One arm's outcomes as sufficient statistics: how many, their sum and their sum of squares."""

    n: int = 0
    total: float = 0.0
    total_sq: float = 0.0

    @classmethod
    def of(cls, values: Iterable[float]) -> Arm:
        """The statistics of ``values``."""
        array = np.asarray(list(values), dtype=float)
        return cls(int(array.size), float(array.sum()), float(np.square(array).sum()))

    def add(self, value: float) -> Arm:
        """These statistics with one more outcome."""
        return Arm(self.n + 1, self.total + value, self.total_sq + value * value)

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan

    @property
    def variance(self) -> float:
        """The sample variance (n - 1 in the denominator); nan below two outcomes."""
        if self.n < 2:
            return math.nan
        return max(self.total_sq - self.total * self.total / self.n, 0.0) / (self.n - 1)


@dataclass(frozen=True)
class Estimate:
    """An arm's mean (a rate, for binary outcomes) with its two-sided confidence interval."""

    n: int
    mean: float
    low: float
    high: float


def check_kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise InvalidInput(f"outcome kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return kind  # type: ignore[return-value]


def _check_alpha(alpha: float, name: str = "alpha") -> None:
    if not 0 < alpha < 1:
        raise InvalidInput(f"{name} must be between 0 and 1, got {alpha}")


def _check_binary(arm: Arm, where: str) -> None:
    # Each outcome is 0 or 1, so the sum of squares equals the sum and neither exceeds the count.
    if arm.total < 0 or arm.total > arm.n or not math.isclose(arm.total, arm.total_sq, abs_tol=1e-6):
        raise InvalidInput(f"{where}: binary outcomes must each be 0 or 1")


def estimate(arm: Arm, kind: str, confidence: float = 0.95) -> Estimate:
    """``arm``'s mean with a ``confidence`` interval: Wilson's score interval for a rate (it stays inside
    [0, 1] and behaves at 0 and 1 successes), Student's t for a numeric mean."""
    kind = check_kind(kind)
    _check_alpha(confidence, "confidence")
    if arm.n == 0:
        return Estimate(0, math.nan, math.nan, math.nan)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    if kind == "binary":
        _check_binary(arm, "estimate")
        p, n = arm.mean, arm.n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        # The interval holds p exactly (at 0 and 1 rounding would otherwise leave it a hair outside).
        return Estimate(n, p, min(max(0.0, centre - half), p), max(min(1.0, centre + half), p))
    if arm.n < 2:
        return Estimate(arm.n, arm.mean, math.nan, math.nan)
    half = float(stats.t.ppf(0.5 + confidence / 2, arm.n - 1)) * math.sqrt(arm.variance / arm.n)
    return Estimate(arm.n, arm.mean, arm.mean - half, arm.mean + half)


def _difference_variance(control: Arm, treatment: Arm, kind: Kind) -> float:
    """The variance of treatment mean - control mean, each arm's variance estimated from its own outcomes."""
    if kind == "binary":
        return sum(a.mean * (1 - a.mean) / a.n for a in (control, treatment))
    return control.variance / control.n + treatment.variance / treatment.n


@dataclass(frozen=True)
class FixedHorizon:
    """The classic test, valid when read once at the planned sample size: the difference (treatment -
    control) with its confidence interval and the two-sided p-value."""

    difference: float
    low: float
    high: float
    p_value: float


def fixed_horizon(control: Arm, treatment: Arm, kind: str, alpha: float = 0.05) -> FixedHorizon:
    """The two-proportion z-test (pooled variance under the null; the interval unpooled) for binary outcomes,
    Welch's unequal-variance t-test for numeric ones."""
    kind = check_kind(kind)
    _check_alpha(alpha)
    if min(control.n, treatment.n) < 2:
        return FixedHorizon(math.nan, math.nan, math.nan, math.nan)
    difference = treatment.mean - control.mean
    if kind == "binary":
        for arm, where in ((control, "control"), (treatment, "treatment")):
            _check_binary(arm, where)
        pooled = (control.total + treatment.total) / (control.n + treatment.n)
        null_se = math.sqrt(pooled * (1 - pooled) * (1 / control.n + 1 / treatment.n))
        se = math.sqrt(_difference_variance(control, treatment, kind))
        p_value = 1.0 if null_se == 0 else float(2 * stats.norm.sf(abs(difference) / null_se))
        z = float(stats.norm.ppf(1 - alpha / 2))
        return FixedHorizon(difference, difference - z * se, difference + z * se, p_value)
    se2_c, se2_t = control.variance / control.n, treatment.variance / treatment.n
    se = math.sqrt(se2_c + se2_t)
    if se == 0:
        return FixedHorizon(difference, difference, difference, 1.0 if difference == 0 else 0.0)
    df = (se2_c + se2_t) ** 2 / (se2_c**2 / (control.n - 1) + se2_t**2 / (treatment.n - 1))
    t = float(stats.t.ppf(1 - alpha / 2, df))
    p_value = float(2 * stats.t.sf(abs(difference) / se, df))
    return FixedHorizon(difference, difference - t * se, difference + t * se, p_value)


# ---------------------------------------------------------------------- the sequential test
@dataclass(frozen=True)
class Sequential:
    """The mSPRT's state between looks: the mixture scale (fixed for the whole test), the always-valid
    p-value (the running minimum over looks) and the confidence sequence (the running intersection).

    Create it with :func:`start_sequential`; each :func:`look` returns the next state.
    """

    alpha: float
    tau: float | None = (
        None  # None: set at the first look with data (``DEFAULT_TAU_SDS`` standard deviations)
    )
    p_value: float = 1.0
    low: float = -math.inf
    high: float = math.inf
    looks: int = 0
    likelihood_ratio: float = 1.0  # at the last look

    @property
    def rejected(self) -> bool:
        """Whether the null (no difference) is rejected: valid at any look, however many were taken."""
        return self.p_value <= self.alpha


def start_sequential(alpha: float = 0.05, tau: float | None = None) -> Sequential:
    """A sequential test's first state. ``tau``: the mixture's standard deviation, on the scale of the
    difference (set it to the effect the test should be quickest to find, e.g. the plan's MDE)."""
    _check_alpha(alpha)
    if tau is not None and not (math.isfinite(tau) and tau > 0):
        raise InvalidInput(f"tau must be a positive number, got {tau}")
    return Sequential(alpha=alpha, tau=tau)


def mixture_likelihood_ratio(difference: Any, variance: Any, tau: Any, null: float = 0.0) -> Any:
    """The normal-mixture likelihood ratio of Johari et al. (2017, eq. 11) for an estimate ``difference``
    with ``variance``, against ``null``, mixing over effects drawn from N(null, tau^2); 1 (no evidence)
    where the variance is not positive. Scalars or numpy arrays:

        Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 (d - null)^2 / (2 V (V + tau^2)))
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        variance = np.asarray(variance, dtype=float)
        total = variance + np.square(tau)
        exponent = np.square(tau) * np.square(np.asarray(difference) - null) / (2 * variance * total)
        ratio = np.sqrt(variance / total) * np.exp(np.minimum(exponent, 700.0))
        ratio = np.where(variance > 0, ratio, 1.0)
    return float(ratio) if ratio.ndim == 0 else ratio


def _radius(variance: float, tau: float, alpha: float) -> float:
    """Half the confidence sequence's width: Lambda(theta) < 1/alpha inverted (Johari et al., sec. 4)."""
    total = variance + tau * tau
    return math.sqrt(variance * total / (tau * tau) * (2 * math.log(1 / alpha) + math.log(total / variance)))


def look(state: Sequential, control: Arm, treatment: Arm, kind: str, min_samples: int = 100) -> Sequential:
    """The test's state after one more look at the arms' outcomes so far.

    Before each arm has ``min_samples`` outcomes nothing changes: the variances the ratio plugs in are not
    yet estimated well enough to trust. The p-value only falls and the interval only narrows, so a
    decision once reached stands.
    """
    kind = check_kind(kind)
    if min(control.n, treatment.n) < max(min_samples, 2):
        return state
    if kind == "binary":
        for arm, where in ((control, "control"), (treatment, "treatment")):
            _check_binary(arm, where)
    variance = _difference_variance(control, treatment, kind)
    tau = state.tau
    if tau is None:
        pooled = _pooled_variance(control, treatment, kind)
        if pooled <= 0:
            return state  # every outcome so far is the same: nothing to scale by yet
        tau = DEFAULT_TAU_SDS * math.sqrt(pooled)
    if variance <= 0:
        return replace(state, tau=tau, looks=state.looks + 1)
    difference = treatment.mean - control.mean
    ratio = mixture_likelihood_ratio(difference, variance, tau)
    radius = _radius(variance, tau, state.alpha)
    return replace(
        state,
        tau=tau,
        p_value=min(state.p_value, 1.0 / ratio),
        low=max(state.low, difference - radius),
        high=min(state.high, difference + radius),
        looks=state.looks + 1,
        likelihood_ratio=ratio,
    )


def _pooled_variance(control: Arm, treatment: Arm, kind: Kind) -> float:
    both = Arm(
        control.n + treatment.n, control.total + treatment.total, control.total_sq + treatment.total_sq
    )
    if kind == "binary":
        return both.mean * (1 - both.mean)
    return both.variance


# ---------------------------------------------------------------------- planning
@dataclass(frozen=True)
class Plan:
    """Outcomes needed per arm to find an effect of ``mde`` with ``power``, at significance ``alpha``:
    ``fixed`` for the fixed-horizon test read once, ``sequential`` for the mSPRT (with ``tau`` = the MDE)
    read at any time — its plan is a bound: it reaches the power by then, often sooner."""

    kind: Kind
    baseline: float
    mde: float
    sd: float
    alpha: float
    power: float
    fixed: int
    sequential: int
    tau: float


def plan(
    kind: str,
    baseline: float,
    mde: float,
    *,
    sd: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    relative: bool = False,
) -> Plan:
    """The sample size per arm (equal arms) to detect a change of ``mde`` from ``baseline``.

    Binary outcomes: ``baseline`` is the control's rate; the standard deviation follows from it. Numeric
    outcomes need ``sd``, the outcome's standard deviation. ``relative``: ``mde`` is a fraction of the
    baseline (0.05: a 5% lift) rather than an absolute change.

    Raises:
        InvalidInput: a rate outside (0, 1), a zero MDE, a missing or non-positive ``sd``.
    """
    kind = check_kind(kind)
    _check_alpha(alpha)
    _check_alpha(power, "power")
    absolute = mde * baseline if relative else mde
    if not (math.isfinite(absolute) and absolute != 0):
        raise InvalidInput(f"the minimum detectable effect must be a non-zero number, got {mde}")
    z_alpha, z_beta = float(stats.norm.ppf(1 - alpha / 2)), float(stats.norm.ppf(power))
    if kind == "binary":
        treated = baseline + absolute
        if not (0 < baseline < 1 and 0 < treated < 1):
            raise InvalidInput(
                f"binary outcomes need rates between 0 and 1: baseline {baseline}, with the effect {treated}"
            )
        mean = (baseline + treated) / 2
        # Chow, Shao, Wang (2008), 4.2: the null's pooled spread on the alpha side, the arms' own on the
        # power side.
        spread = z_alpha * math.sqrt(2 * mean * (1 - mean)) + z_beta * math.sqrt(
            baseline * (1 - baseline) + treated * (1 - treated)
        )
        fixed = math.ceil((spread / absolute) ** 2)
        unit_sd = math.sqrt((baseline * (1 - baseline) + treated * (1 - treated)) / 2)
    else:
        if sd is None or not (math.isfinite(sd) and sd > 0):
            raise InvalidInput(f"numeric outcomes need their standard deviation (sd > 0), got {sd}")
        fixed = math.ceil(2 * ((z_alpha + z_beta) * sd / absolute) ** 2)  # Chow, Shao, Wang (2008), 3.2.1
        unit_sd = sd
    tau = abs(absolute)
    return Plan(
        kind,
        baseline,
        absolute,
        unit_sd,
        alpha,
        power,
        fixed,
        _sequential_size(absolute, unit_sd, tau, alpha, power, fixed),
        tau,
    )


def _sequential_size(effect: float, sd: float, tau: float, alpha: float, power: float, start: int) -> int:
    """The smallest n per arm at which the mSPRT, read only at n, already rejects with ``power``: a bound
    on the sample it needs (read continuously it can only reject sooner). Doubling, then bisection."""

    def power_at(n: int) -> float:
        variance = 2 * sd * sd / n
        total = variance + tau * tau
        # Lambda >= 1/alpha  <=>  Z^2 >= (V + tau^2) / tau^2 * (2 log(1/alpha) + log((V + tau^2) / V))
        threshold = math.sqrt(total / (tau * tau) * (2 * math.log(1 / alpha) + math.log(total / variance)))
        shift = abs(effect) / math.sqrt(variance)
        return float(stats.norm.sf(threshold - shift) + stats.norm.cdf(-threshold - shift))

    low, high = 1, max(start, 2)
    while power_at(high) < power:
        low, high = high, high * 2
        if high > 10**12:
            raise InvalidInput("the sequential test cannot reach that power with this effect")
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if power_at(middle) >= power else (middle, high)
    return high


# ---------------------------------------------------------------------- simulation
@dataclass(frozen=True)
class Simulation:
    """How often each way of reading a test rejected the null over ``runs`` simulated tests."""

    runs: int
    n_per_arm: int
    looks: int
    effect: float
    sequential: float  # the mSPRT, read at every look
    naive: float  # the fixed-horizon test read at every look, stopped at the first p < alpha
    fixed: float  # the fixed-horizon test read once, at n_per_arm


def simulate(
    kind: str,
    baseline: float,
    *,
    effect: float = 0.0,
    n_per_arm: int,
    looks: int = 100,
    runs: int = 1000,
    sd: float = 1.0,
    alpha: float = 0.05,
    tau: float | None = None,
    min_samples: int = 100,
    seed: int = 0,
) -> Simulation:
    """Simulate ``runs`` tests of ``n_per_arm`` outcomes per arm, read ``looks`` times at equal steps.

    With ``effect`` 0 (an A/A test) the rates are false positives; with the planned effect, power. Binary
    outcomes are Bernoulli(``baseline``) and Bernoulli(``baseline + effect``); numeric ones normal with
    means ``baseline`` and ``baseline + effect`` and standard deviation ``sd``. Outcomes are drawn a step
    at a time as exact sufficient statistics, so a run costs ``looks`` draws, not ``n_per_arm``.
    """
    kind = check_kind(kind)
    if looks < 1 or runs < 1 or n_per_arm < looks:
        raise InvalidInput("simulate needs looks >= 1, runs >= 1 and n_per_arm >= looks")
    _check_alpha(alpha)
    if kind == "binary" and not (0 <= baseline <= 1 and 0 <= baseline + effect <= 1):
        raise InvalidInput(f"binary rates must be within [0, 1]: {baseline} and {baseline + effect}")
    if not (math.isfinite(sd) and sd > 0):
        raise InvalidInput(f"sd must be a positive number, got {sd}")
    rng = np.random.default_rng(seed)
    step = n_per_arm // looks
    sizes = np.full(looks, step)
    sizes[-1] += n_per_arm - step * looks

    def draw(mean: float) -> tuple[np.ndarray, np.ndarray]:
        """Cumulative sums and sums of squares at each look, shape (runs, looks)."""
        if kind == "binary":
            sums = rng.binomial(sizes, mean, size=(runs, looks)).astype(float)
            return np.cumsum(sums, axis=1), np.cumsum(sums, axis=1)
        block_sum = rng.normal(sizes * mean, np.sqrt(sizes) * sd, size=(runs, looks))
        within = sd * sd * rng.chisquare(np.maximum(sizes - 1, 1), size=(runs, looks))
        within = np.where(sizes > 1, within, 0.0)  # one outcome has no spread around its own mean
        block_sq = within + block_sum**2 / sizes
        return np.cumsum(block_sum, axis=1), np.cumsum(block_sq, axis=1)

    counts = np.cumsum(sizes).astype(float)
    sequential, naive, fixed = _read_runs(
        kind, counts, draw(baseline), draw(baseline + effect), alpha, tau, min_samples
    )
    return Simulation(runs, n_per_arm, looks, effect, sequential, naive, fixed)


def _read_runs(
    kind: Kind,
    counts: np.ndarray,
    control: tuple[np.ndarray, np.ndarray],
    treatment: tuple[np.ndarray, np.ndarray],
    alpha: float,
    tau: float | None,
    min_samples: int,
) -> tuple[float, float, float]:
    """The share of runs each reading rejects: the mSPRT as :func:`look` reads it, the fixed-horizon test
    at every look (naive), and once at the end. Vectorized over runs x looks (sums of shape (runs, looks),
    ``counts`` per arm at each look)."""
    (sum_c, sq_c), (sum_t, sq_t) = control, treatment
    runs, looks = sum_c.shape
    mean_c, mean_t = sum_c / counts, sum_t / counts
    difference = mean_t - mean_c
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "binary":
            variance = (mean_c * (1 - mean_c) + mean_t * (1 - mean_t)) / counts
            pooled = (sum_c + sum_t) / (2 * counts)
            pooled_variance = pooled * (1 - pooled)
            null_se = np.sqrt(pooled_variance * 2 / counts)
            naive_p = np.where(null_se > 0, 2 * stats.norm.sf(np.abs(difference) / null_se), 1.0)
        else:
            var_c = np.maximum(sq_c - sum_c**2 / counts, 0) / (counts - 1)
            var_t = np.maximum(sq_t - sum_t**2 / counts, 0) / (counts - 1)
            variance = (var_c + var_t) / counts
            both = 2 * counts
            pooled_variance = np.maximum(sq_c + sq_t - (sum_c + sum_t) ** 2 / both, 0) / (both - 1)
            df = variance**2 / ((var_c / counts) ** 2 / (counts - 1) + (var_t / counts) ** 2 / (counts - 1))
            naive_p = np.where(variance > 0, 2 * stats.t.sf(np.abs(difference) / np.sqrt(variance), df), 1.0)
    eligible = counts >= max(min_samples, 2)  # the looks at which `look` reads the arms
    if tau is None:  # as `look` does: scaled by the pooled spread at the first eligible look that has one
        scalable = eligible & (pooled_variance > 0)
        first = np.argmax(scalable, axis=1)
        found = scalable[np.arange(runs), first]
        run_tau = np.where(found, DEFAULT_TAU_SDS * np.sqrt(pooled_variance[np.arange(runs), first]), np.nan)
        started = np.arange(looks)[None, :] >= first[:, None]
        taus = np.where(started & found[:, None], run_tau[:, None], np.nan)
    else:
        taus = np.full((runs, looks), float(tau))
    ratio = np.where(
        np.isnan(taus), 1.0, mixture_likelihood_ratio(difference, variance, np.nan_to_num(taus, nan=1.0))
    )
    ratio = np.where(eligible[None, :], ratio, 1.0)
    sequential = float(np.mean(np.max(ratio, axis=1) >= 1 / alpha))
    naive = float(np.mean(np.any((naive_p < alpha) & eligible[None, :], axis=1)))
    fixed = float(np.mean(naive_p[:, -1] < alpha))
    return sequential, naive, fixed
