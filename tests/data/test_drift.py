"""Drift statistics: scipy agreement, hand-computed PSI/JS, Evidently's defaults, verdicts and bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial import distance

from shipyard.data.drift import (
    ColumnKind,
    StatTest,
    binned_proportions,
    chi_square_evidently_test,
    chi_square_test,
    choose_test,
    column_drift,
    dataset_drift,
    infer_kind,
    jensen_shannon,
    ks_test,
    psi,
    wasserstein_normed,
    z_test,
)
from shipyard.errors import InvalidInput


def normal(n: int, mean: float = 0.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, 1.0, n)


# ------------------------------------------------------------------------------------- agreement with scipy


def test_ks_matches_scipy() -> None:
    ref, cur = normal(500, seed=1), normal(400, 0.2, seed=2)
    assert ks_test(ref, cur) == stats.ks_2samp(ref, cur).pvalue


@pytest.mark.parametrize("n_ref,n_cur", [(1000, 1000), (3000, 1700), (7, 3)])
def test_wasserstein_matches_scipy_divided_by_reference_std(n_ref: int, n_cur: int) -> None:
    ref = normal(n_ref, seed=3) * 2.5
    cur = np.round(normal(n_cur, 0.3, seed=4), 1)  # rounded: ties inside and across the samples
    expected = stats.wasserstein_distance(ref, cur) / np.std(ref)
    assert wasserstein_normed(ref, cur) == pytest.approx(expected, rel=1e-10)


def test_wasserstein_of_constant_reference_uses_evidently_floor() -> None:
    ref, cur = np.full(10, 3.0), np.array([3.0, 4.0])
    assert wasserstein_normed(ref, cur) == pytest.approx(0.5 / 0.001)


def test_chi_square_is_scipy_contingency_test_on_both_samples() -> None:
    ref = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    cur = np.array(["a"] * 20 + ["b"] * 20 + ["c"] * 10)
    expected = stats.chi2_contingency([[50, 30, 20], [20, 20, 10]], correction=False).pvalue
    assert chi_square_test(ref, cur) == pytest.approx(expected, rel=1e-12)
    assert chi_square_test(cur, ref) == pytest.approx(expected, rel=1e-12)  # two-sample: symmetric


def test_chi_square_evidently_matches_scipy_on_reference_proportions() -> None:
    ref = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 20)
    cur = np.array(["a"] * 20 + ["b"] * 20 + ["c"] * 10)
    expected = stats.chisquare([20, 20, 10], [25.0, 15.0, 10.0]).pvalue
    assert chi_square_evidently_test(ref, cur) == pytest.approx(expected, rel=1e-12)
    result = column_drift("c", ref, cur, test="chisquare_evidently")
    assert (result.test, result.kind, result.threshold) == ("chisquare_evidently", "categorical", 0.05)
    assert result.statistic == pytest.approx(expected, rel=1e-12)


def test_chi_square_evidently_new_category_gives_p_value_zero() -> None:
    ref = np.array(["a", "b", "c"] * 10, dtype=object)
    cur = np.array(["a", "b", "c", "d"] * 5, dtype=object)
    assert chi_square_evidently_test(ref, cur) == 0.0
    # the two-sample test weighs 5 new rows against 45 others: evidence, not certainty
    assert 0.0 < chi_square_test(ref, cur) < 0.05


def test_z_test_matches_pooled_formula() -> None:
    ref = np.array([1] * 30 + [0] * 70)
    cur = np.array([1] * 45 + [0] * 55)
    p1, p2, pooled = 0.3, 0.45, 75 / 200
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (1 / 100 + 1 / 100))
    assert z_test(ref, cur) == pytest.approx(2 * (1 - stats.norm.cdf(abs(z))), rel=1e-9)
    assert z_test(cur, ref) == pytest.approx(z_test(ref, cur))


def test_z_test_of_one_value_on_both_sides_is_one() -> None:
    assert z_test(np.array(["x"] * 5), np.array(["x"] * 3)) == 1.0


# ---------------------------------------------------------------------------------------- PSI / JS by hand


def test_psi_and_js_by_hand_on_categories() -> None:
    ref, cur = np.array(["a", "a", "b", "b"]), np.array(["a", "a", "a", "b"])
    p, q = np.array([0.5, 0.5]), np.array([0.75, 0.25])
    assert psi(ref, cur, "categorical") == pytest.approx(0.25 * math.log(1.5) + 0.25 * math.log(2))
    m = (p + q) / 2
    js = math.sqrt(0.5 * np.sum(p * np.log(p / m)) + 0.5 * np.sum(q * np.log(q / m)))
    assert jensen_shannon(ref, cur, "categorical") == pytest.approx(js)
    assert jensen_shannon(ref, cur, "categorical") == pytest.approx(distance.jensenshannon(p, q))


def test_psi_fills_an_empty_bin_with_0_0001() -> None:
    ref, cur = np.array(["a", "a"]), np.array(["a", "b"])
    expected = (1 - 0.5) * math.log(1 / 0.5) + (1e-4 - 0.5) * math.log(1e-4 / 0.5)
    assert psi(ref, cur, "categorical") == pytest.approx(expected)


def test_empty_bin_fill_is_smaller_when_proportions_are_tiny() -> None:
    ref = np.array([0] * 20_000 + [1])  # proportion of 1 is ~5e-5 <= 1e-4
    cur = np.array([0, 1, 2] * 3)
    ref_p, _ = binned_proportions(ref, cur, "categorical", fill_zeroes=True)
    assert ref_p[2] == pytest.approx((1 / 20_001) / 1e6)


def test_numeric_binning_is_sturges_over_both_samples() -> None:
    ref, cur = normal(2000, seed=5), normal(1000, 1.0, seed=6)
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
    ref_p, cur_p = binned_proportions(ref, cur, "numeric", fill_zeroes=False)
    assert len(ref_p) == len(edges) - 1 == 13
    np.testing.assert_allclose(ref_p, np.histogram(ref, edges)[0] / 2000)
    np.testing.assert_allclose(cur_p, np.histogram(cur, edges)[0] / 1000)
    assert jensen_shannon(ref, cur, "numeric") == pytest.approx(distance.jensenshannon(ref_p, cur_p))


def test_numbers_with_at_most_20_values_are_binned_by_value() -> None:
    ref, cur = np.arange(200) % 20, np.arange(100) % 10
    ref_p, cur_p = binned_proportions(ref, cur, "numeric", fill_zeroes=False)
    assert len(ref_p) == 20 and cur_p[:10] == pytest.approx([0.1] * 10)


# --------------------------------------------------------------------------------------- default selection


def test_kind_inference() -> None:
    assert infer_kind(np.arange(6.0)) is ColumnKind.NUMERIC
    assert infer_kind(np.arange(5.0)) is ColumnKind.CATEGORICAL
    assert infer_kind(np.array([0, 1, 1, 0])) is ColumnKind.BINARY
    assert infer_kind(np.array([True, True])) is ColumnKind.BINARY
    assert infer_kind(np.array(["a", "b", "c"], dtype=object)) is ColumnKind.CATEGORICAL
    # Evidently counts distinct values over both sides
    assert infer_kind(np.array([0, 1]), np.array([2, 3, 4, 5])) is ColumnKind.NUMERIC


@pytest.mark.parametrize(
    "kind,small,large",
    [
        ("numeric", StatTest.KS, StatTest.WASSERSTEIN),
        ("categorical", StatTest.CHISQUARE, StatTest.JENSENSHANNON),
        ("binary", StatTest.Z, StatTest.JENSENSHANNON),
    ],
)
def test_default_test_switches_after_1000_reference_rows(kind: str, small: StatTest, large: StatTest) -> None:
    assert choose_test(kind, 1000) is small
    assert choose_test(kind, 1001) is large


def test_column_drift_picks_default_by_size_and_kind() -> None:
    assert column_drift("x", normal(1000), normal(50)).test == "ks"
    assert column_drift("x", normal(1001), normal(50)).test == "wasserstein"
    assert column_drift("x", np.arange(1000) % 5, np.arange(50) % 5).test == "chisquare"
    assert column_drift("x", np.arange(1000) % 2, np.arange(50) % 2).test == "z"
    assert column_drift("x", np.arange(1001) % 2, np.arange(50) % 2).test == "jensenshannon"


def test_stat_test_kinds_and_default_thresholds() -> None:
    assert {t.value: (t.kind, t.default_threshold) for t in StatTest} == {
        "ks": ("p_value", 0.05),
        "chisquare": ("p_value", 0.05),
        "chisquare_evidently": ("p_value", 0.05),
        "z": ("p_value", 0.05),
        "wasserstein": ("distance", 0.1),
        "jensenshannon": ("distance", 0.1),
        "psi": ("distance", 0.1),
    }


# ------------------------------------------------------------------------------------------------ verdicts


@pytest.mark.parametrize("n", [800, 5000])  # KS below 1,000 rows, Wasserstein above
def test_same_distribution_does_not_drift_and_half_std_shift_does(n: int) -> None:
    same = column_drift("x", normal(n, seed=10), normal(n, seed=11))
    shifted = column_drift("x", normal(n, seed=10), normal(n, 0.5, seed=11))
    assert same.test == shifted.test == ("ks" if n <= 1000 else "wasserstein")
    assert not same.drift_detected
    assert shifted.drift_detected


def test_new_category_drifts() -> None:
    ref = np.array(["a", "b", "c"] * 100, dtype=object)
    cur = np.array(["a", "b", "c", "new"] * 50, dtype=object)
    result = column_drift("city", ref, cur)
    assert (result.test, result.drift_detected) == ("chisquare", True) and result.statistic < 1e-8
    big = column_drift("city", np.tile(ref, 4), cur)
    assert big.test == "jensenshannon" and big.drift_detected


def test_overrides_test_and_threshold() -> None:
    r = column_drift("x", normal(300, seed=1), normal(300, 0.5, seed=2), test="psi", threshold=5.0)
    assert (r.test, r.threshold, r.drift_detected) == ("psi", 5.0, False)


def test_missing_values_are_dropped_and_counted() -> None:
    ref = np.array([1.0, np.nan, 2.0, 3.0, 4.0, 5.0, 6.0])
    cur = pd.Series([1.0, 2.0, None, None, 7.0, 8.0], dtype="Float64")
    r = column_drift("x", ref, cur)
    assert (r.reference_rows, r.reference_missing, r.current_rows, r.current_missing) == (6, 1, 4, 2)
    obj = column_drift("c", np.array(["a", None, "b", float("nan")], dtype=object), np.array(["a", "b"]))
    assert (obj.reference_rows, obj.reference_missing) == (2, 2)


def test_constant_reference_is_noted() -> None:
    r = column_drift("x", np.zeros(2000), np.zeros(100), test="wasserstein")
    assert r.statistic == 0.0 and not r.drift_detected and r.note is not None and "constant" in r.note


# ---------------------------------------------------------------------------------------------- properties

samples = st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=60).map(np.array)
categories = st.lists(st.sampled_from("abcde"), min_size=1, max_size=60).map(
    lambda v: np.array(v, dtype=object)
)


@settings(max_examples=60, deadline=None)
@given(samples, samples)
def test_distances_are_non_negative_and_js_symmetric(a: np.ndarray, b: np.ndarray) -> None:
    assert wasserstein_normed(a, b) >= 0
    assert psi(a, b, "numeric") >= 0
    js = jensen_shannon(a, b, "numeric")
    assert 0 <= js <= math.sqrt(math.log(2)) + 1e-12
    # JS bins over both samples and needs no zero fill, so it is symmetric; binning follows the reference's
    # distinct count, so swap only when both sides bin the same way
    if (len(np.unique(a)) > 20) == (len(np.unique(b)) > 20):
        assert jensen_shannon(b, a, "numeric") == pytest.approx(js, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(categories, categories)
def test_categorical_statistics_symmetric_where_they_should_be(a: np.ndarray, b: np.ndarray) -> None:
    assert jensen_shannon(a, b, "categorical") == pytest.approx(
        jensen_shannon(b, a, "categorical"), abs=1e-12
    )
    assert psi(a, b, "categorical") >= 0
    assert 0 <= chi_square_test(a, b) <= 1


@settings(max_examples=60, deadline=None)
@given(samples)
def test_identical_inputs_give_zero_distance_and_high_p_value(a: np.ndarray) -> None:
    assert wasserstein_normed(a, a.copy()) == 0.0
    assert jensen_shannon(a, a.copy(), "numeric") == pytest.approx(0.0, abs=1e-7)
    assert psi(a, a.copy(), "numeric") == pytest.approx(0.0, abs=1e-12)
    # identical samples tie every value across the two sides: the conditional mid-p counts D = 0 half
    assert ks_test(a, a.copy()) >= 0.5


@settings(max_examples=60, deadline=None)
@given(categories)
def test_identical_categories_do_not_drift(a: np.ndarray) -> None:
    # 1.0, except Fisher's mid-p (two values, a small count): the observed table counts half, so >= 0.5
    assert chi_square_test(a, a.copy()) >= 0.5
    assert chi_square_evidently_test(a, a.copy()) == pytest.approx(1.0)
    if len(set(a.tolist())) <= 2:
        assert z_test(a, a.copy()) >= 0.5


# --------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "ref,cur,message",
    [
        (np.array([]), np.array([1.0]), "reference has no non-missing values"),
        (np.array([1.0, 2.0]), np.array([np.nan, np.nan]), "current has no non-missing values (2 missing)"),
        (np.array([None, None], dtype=object), np.array([1.0]), "reference has no non-missing values"),
        (np.array([1.0, np.inf]), np.array([1.0]), "reference holds infinite values"),
        (np.array([1.0, 2.0]), np.array([-np.inf]), "current holds infinite values"),
        (np.array([1, "a"], dtype=object), np.array(["a"]), "reference mixes value types (int, str)"),
        (np.array([1.0, 2.0]), np.array(["a"]), "reference holds numbers, current holds strings"),
    ],
)
def test_bad_values_are_refused_naming_the_column(ref: np.ndarray, cur: np.ndarray, message: str) -> None:
    with pytest.raises(InvalidInput, match="column 'age'") as info:
        column_drift("age", ref, cur)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "ref,test,message",
    [
        (np.array(["a", "b", "c"]), "ks", "test 'ks' needs numbers, the column holds strings"),
        (
            np.array([True, False]),
            "wasserstein",
            "test 'wasserstein' needs numbers, the column holds booleans",
        ),
        (np.arange(10.0), "z", "test 'z' is for binary columns (two values), the column is numeric"),
        (
            np.array(["a", "b", "c"]),
            "z",
            "test 'z' is for binary columns (two values), the column is categorical",
        ),
        (np.arange(10.0), "t-test", "unknown test 't-test'; known: ks, chisquare"),
    ],
)
def test_test_not_fitting_the_column_is_refused(ref: np.ndarray, test: str, message: str) -> None:
    with pytest.raises(InvalidInput, match="column 'c'") as info:
        column_drift("c", ref, ref, test=test)
    assert message in str(info.value)


def test_chi_squared_chosen_for_numbers_takes_them_as_category_codes() -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 10, 800)
    shifted = np.where(rng.random(800) < 0.3, 9, rng.integers(0, 10, 800))
    result = column_drift("region", codes, shifted, test="chisquare")
    assert result.kind == "categorical" and result.test == "chisquare" and result.drift_detected
    as_text = column_drift("region", codes.astype(str), shifted.astype(str))
    assert result.statistic == pytest.approx(as_text.statistic)  # the same test as on string categories


def test_object_numbers_are_numeric() -> None:
    r = column_drift("x", np.array(list(range(10)), dtype=object), np.array([0.5, 1, 2.0], dtype=object))
    assert (r.kind, r.test) == ("numeric", "ks")


# ------------------------------------------------------------------------------------------------- dataset


def test_dataset_drift_reports_columns_on_one_side_only() -> None:
    ref = {"a": normal(300, seed=1), "b": normal(300, seed=2), "only_ref": normal(10)}
    cur = pd.DataFrame({"a": normal(200, 1.0, seed=3), "b": normal(200, seed=4), "only_cur": normal(200)})
    result = dataset_drift(ref, cur)
    assert [c.column for c in result.columns] == ["a", "b"]
    assert result.missing_in_current == ("only_ref",)
    assert result.missing_in_reference == ("only_cur",)
    assert result.drift_share == 0.5 and result.dataset_drift  # Evidently: share >= 0.5
    assert not dataset_drift(ref, cur, share_threshold=0.6).dataset_drift


def test_dataset_drift_overrides_per_column_and_to_dict_is_json_safe() -> None:
    ref = pd.DataFrame({"a": normal(300, seed=1), "c": ["x", "y", "z"] * 100})
    cur = {"a": normal(200, seed=3), "c": np.array(["x", "y", "z", "y"] * 50)}
    result = dataset_drift(ref, cur, tests={"a": "psi", "c": "jensenshannon"}, thresholds={"a": 0.5})
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert [(c["column"], c["test"], c["threshold"]) for c in data["columns"]] == [
        ("a", "psi", 0.5),
        ("c", "jensenshannon", 0.1),
    ]
    assert set(data["columns"][0]) >= {"column", "test", "statistic", "threshold", "drift_detected"}


def test_dataset_override_for_unknown_column_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not on both sides: nope"):
        dataset_drift({"a": normal(10)}, {"a": normal(10)}, tests={"nope": "ks"})


@pytest.mark.parametrize(("rows", "test"), [(800, "chisquare"), (5_000, "jensenshannon")])
def test_integer_codes_declared_categorical_are_compared_as_categories(rows: int, test: str) -> None:
    rng = np.random.default_rng(1)
    reference = {"region": rng.integers(0, 10, rows)}
    current = {"region": np.where(rng.random(rows) < 0.2, 9, rng.integers(0, 10, rows))}
    inferred = dataset_drift(reference, current).columns[0]
    assert inferred.kind == "numeric"  # ten distinct numbers look numeric
    declared = dataset_drift(reference, current, kinds={"region": "categorical"}).columns[0]
    as_text = dataset_drift(
        {"region": reference["region"].astype(str)}, {"region": current["region"].astype(str)}
    ).columns[0]
    assert (declared.kind, declared.test) == ("categorical", test) == (as_text.kind, as_text.test)
    assert declared.statistic == pytest.approx(as_text.statistic) and declared.drift_detected


@pytest.mark.parametrize(
    ("values", "kind", "message"),
    [
        (np.array(["a", "b", "c"]), "numeric", "declared numeric, but it holds strings"),
        (np.arange(5.0), "binary", "declared binary, but it holds more than two values"),
        (np.arange(5.0), "ordinal", "unknown kind 'ordinal'; known: numeric, categorical, binary"),
    ],
)
def test_a_declared_kind_that_does_not_fit_is_refused(values: np.ndarray, kind: str, message: str) -> None:
    with pytest.raises(InvalidInput, match="column 'c'") as info:
        dataset_drift({"c": values}, {"c": values}, kinds={"c": kind})
    assert message in str(info.value)
    with pytest.raises(InvalidInput, match="kinds name columns not on both sides: d"):
        dataset_drift({"c": values}, {"c": values}, kinds={"d": "numeric"})


def test_a_continuous_column_with_a_few_duplicates_gets_scipys_ks() -> None:
    # Drawing conditional tables is for heavily tied data; a few repeats leave scipy's p-value exact enough
    # (drawing them for every breast-cancer column took 15 s for one 569-row comparison).
    rng = np.random.default_rng(3)
    reference = np.round(rng.normal(size=300), 3)  # a handful of repeated values
    current = np.round(rng.normal(size=300), 3)
    assert np.unique(np.concatenate([reference, current])).size < 600
    result = column_drift("x", reference, current, test="ks")
    assert result.note is None
    assert result.statistic == pytest.approx(stats.ks_2samp(reference, current).pvalue)
