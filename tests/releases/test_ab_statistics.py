"""The A/B statistics: intervals and tests against scipy and published values, the sequential test's
guarantees by simulation (continuous peeking keeps false positives <= 5%, the plans reach their power)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from shipyard.errors import InvalidInput
from shipyard.releases import statistics as ab
from shipyard.releases.statistics import Arm


def test_arm_statistics_match_numpy() -> None:
    values = np.random.default_rng(3).normal(5, 2, size=500)
    arm = Arm.of(values)
    grown = Arm()
    for value in values:
        grown = grown.add(float(value))
    for got in (arm, grown):
        assert got.n == 500
        assert got.mean == pytest.approx(values.mean())
        assert got.variance == pytest.approx(values.var(ddof=1))
    assert math.isnan(Arm().mean) and math.isnan(Arm.of([1.0]).variance)


def test_wilson_interval_matches_published_values() -> None:
    # Newcombe (1998), Statist. Med. 17, Table I: 0/10 -> [0, 0.2775]; 81/263 -> [0.2553, 0.3662]
    zero = ab.estimate(Arm.of([0.0] * 10), "binary")
    assert (zero.mean, zero.low) == (0.0, 0.0) and zero.high == pytest.approx(0.2775, abs=1e-4)
    some = ab.estimate(Arm.of([1.0] * 81 + [0.0] * 182), "binary")
    assert (some.low, some.high) == pytest.approx((0.2553, 0.3662), abs=1e-4)


def test_numeric_interval_is_students_t() -> None:
    values = np.random.default_rng(4).normal(3, 1, size=40)
    got = ab.estimate(Arm.of(values), "numeric", confidence=0.9)
    low, high = stats.t.interval(0.9, 39, loc=values.mean(), scale=stats.sem(values))
    assert (got.low, got.high) == pytest.approx((low, high))


def test_fixed_horizon_tests_match_scipy() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(10, 2, size=300), rng.normal(10.4, 3, size=200)
    got = ab.fixed_horizon(Arm.of(a), Arm.of(b), "numeric")
    assert got.p_value == pytest.approx(stats.ttest_ind(b, a, equal_var=False).pvalue)
    assert got.difference == pytest.approx(b.mean() - a.mean())
    assert got.low < got.difference < got.high
    # two proportions: 120/1000 vs 150/1000, the pooled z-test
    control, treatment = Arm.of([1.0] * 120 + [0.0] * 880), Arm.of([1.0] * 150 + [0.0] * 850)
    binary = ab.fixed_horizon(control, treatment, "binary")
    pooled = 270 / 2000
    z = 0.03 / math.sqrt(pooled * (1 - pooled) * 2 / 1000)
    assert binary.p_value == pytest.approx(2 * stats.norm.sf(z))


def test_plans_match_published_calculators() -> None:
    # Baseline 10%, an absolute lift of 1 point, alpha 5% two-sided, power 80%: 14,751 per arm
    # (the Fleiss/Chow formula; Evan Miller's calculator gives the same).
    binary = ab.plan("binary", 0.1, 0.01)
    assert binary.fixed == 14_751
    assert ab.plan("binary", 0.1, 0.1, relative=True).fixed == 14_751
    # Two means, sd 1, effect 0.2: 2 (1.96 + 0.8416)^2 / 0.04 = 392.4 -> 393
    assert ab.plan("numeric", 0.0, 0.2, sd=1.0).fixed == 393
    # The sequential test needs more outcomes than the fixed-horizon one read once, never fewer.
    assert binary.sequential > binary.fixed and binary.tau == pytest.approx(0.01)


def test_sequential_p_value_only_falls_and_the_interval_only_narrows() -> None:
    rng = np.random.default_rng(6)
    state = ab.start_sequential(0.05, tau=0.5)
    control, treatment = Arm(), Arm()
    seen = []
    for _ in range(40):
        for value in rng.normal(0, 1, size=50):
            control = control.add(float(value))
        for value in rng.normal(0.3, 1, size=50):
            treatment = treatment.add(float(value))
        state = ab.look(state, control, treatment, "numeric")
        seen.append(state)
    assert all(
        b.p_value <= a.p_value and b.low >= a.low and b.high <= a.high for a, b in itertools.pairwise(seen)
    )
    assert seen[0].looks == 0  # 50 outcomes an arm: below the 100 minimum, nothing read yet
    assert state.rejected and state.low > 0  # an effect of 0.3 sd over 2,000 outcomes an arm is found
    assert state.low <= 0.3 <= state.high


def test_default_mixture_scale_is_fixed_at_the_first_look() -> None:
    state = ab.look(ab.start_sequential(), Arm.of([0.0, 2.0] * 100), Arm.of([1.0, 3.0] * 100), "numeric")
    assert state.tau == pytest.approx(
        ab.DEFAULT_TAU_SDS * math.sqrt(Arm.of([0.0, 2.0, 1.0, 3.0] * 100).variance)
    )
    later = ab.look(state, Arm.of([0.0, 20.0] * 200), Arm.of([1.0, 30.0] * 200), "numeric")
    assert later.tau == state.tau


def test_simulation_reads_runs_as_look_does() -> None:
    """The vectorized simulation and the live test are the same procedure."""
    rng = np.random.default_rng(7)
    runs, looks, step = 25, 30, 20
    counts = np.arange(1, looks + 1, dtype=float) * step
    for kind in ("binary", "numeric"):
        arms = []
        for shift in (0.0, 0.25):
            if kind == "binary":
                blocks = rng.binomial(step, 0.3 + shift / 2, size=(runs, looks)).astype(float)
                arms.append((np.cumsum(blocks, axis=1), np.cumsum(blocks, axis=1)))
            else:
                data = rng.normal(shift, 1, size=(runs, looks, step))
                arms.append((np.cumsum(data.sum(2), axis=1), np.cumsum((data**2).sum(2), axis=1)))
        for tau in (None, 0.1):
            rejected = 0
            for run in range(runs):
                state = ab.start_sequential(0.05, tau)
                for k in range(looks):
                    a, b = (Arm(int(counts[k]), float(s[run, k]), float(q[run, k])) for s, q in arms)
                    state = ab.look(state, a, b, kind, min_samples=60)
                rejected += state.rejected
            got = ab._read_runs(kind, counts, arms[0], arms[1], 0.05, tau, 60)[0]
            assert got == rejected / runs, (kind, tau)


@pytest.mark.parametrize(("kind", "baseline", "sd"), [("binary", 0.1, 1.0), ("numeric", 5.0, 2.0)])
def test_continuous_peeking_keeps_false_positives_at_alpha(kind: str, baseline: float, sd: float) -> None:
    """1,000 A/A tests read 200 times each: the sequential test stays within 5%, naive repeated tests not."""
    result = ab.simulate(kind, baseline, n_per_arm=20_000, looks=200, runs=1000, sd=sd, seed=11)
    print(
        f"{kind} A/A: sequential {result.sequential:.1%}, naive {result.naive:.1%}, once {result.fixed:.1%}"
    )
    assert result.sequential <= 0.05
    assert result.naive > 0.2
    assert 0.03 <= result.fixed <= 0.07  # read once, the classic test is right too


def test_the_plans_reach_their_power() -> None:
    plan = ab.plan("binary", 0.1, 0.01)
    fixed = ab.simulate("binary", 0.1, effect=0.01, n_per_arm=plan.fixed, looks=1, runs=20_000, min_samples=1)
    sequential = ab.simulate(
        "binary", 0.1, effect=0.01, n_per_arm=plan.sequential, looks=200, runs=2000, tau=plan.tau, seed=1
    )
    print(
        f"power at the plans: fixed {fixed.fixed:.1%} at {plan.fixed}, sequential {sequential.sequential:.1%}"
    )
    assert fixed.fixed >= 0.8 - 3 * math.sqrt(0.16 / 20_000)  # 80% within three standard errors
    assert sequential.sequential >= 0.8


@given(
    successes=st.integers(0, 500),
    extra=st.integers(0, 500),
    confidence=st.floats(0.5, 0.999),
)
def test_wilson_interval_holds_its_estimate(successes: int, extra: int, confidence: float) -> None:
    n = successes + extra
    if n == 0:
        return
    got = ab.estimate(Arm(n, float(successes), float(successes)), "binary", confidence)
    assert 0 <= got.low <= got.mean <= got.high <= 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ab.estimate(Arm.of([1.0]), "ratio"), "outcome kind must be one of binary, numeric"),
        (lambda: ab.estimate(Arm.of([0.0, 2.0]), "binary"), "binary outcomes must each be 0 or 1"),
        (lambda: ab.fixed_horizon(Arm.of([0.0, 1.0]), Arm.of([1.0, 1.5]), "binary"), "treatment: binary"),
        (lambda: ab.fixed_horizon(Arm(), Arm(), "numeric", alpha=1.5), "alpha must be between 0 and 1"),
        (lambda: ab.plan("binary", 0.1, 0.0), "minimum detectable effect must be a non-zero number"),
        (lambda: ab.plan("binary", 0.95, 0.1), "rates between 0 and 1"),
        (lambda: ab.plan("numeric", 3.0, 0.5), r"need their standard deviation \(sd > 0\)"),
        (lambda: ab.plan("binary", 0.1, 0.01, power=1.0), "power must be between 0 and 1"),
        (lambda: ab.start_sequential(tau=-1.0), "tau must be a positive number"),
        (lambda: ab.simulate("binary", 0.9, effect=0.2, n_per_arm=100), r"within \[0, 1\]"),
        (lambda: ab.simulate("binary", 0.1, n_per_arm=10, looks=20), "n_per_arm >= looks"),
    ],
)
def test_bad_input_is_named(call: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        call()  # type: ignore[operator]
