"""Drift statistics between a reference and a current sample: arrays in, numbers out, no I/O.

The defaults follow Evidently's (``evidently/calculations/stattests``) so that numbers and verdicts can be
compared with an Evidently report on the same data:

* **Column kind** (:func:`infer_kind`): booleans are binary; strings are categorical; numbers are numeric
  unless they take at most 5 distinct values, then categorical. A column with at most 2 distinct values is
  binary. Like Evidently, distinct values are counted over reference and current together.
* **Default test** (:func:`choose_test`): reference of at most 1,000 rows → ``ks`` (numeric), ``chisquare``
  (categorical), ``z`` (binary), drift when the p-value < 0.05. Larger → ``wasserstein`` (numeric) or
  ``jensenshannon`` (categorical, binary), drift when the distance ≥ 0.1. ``psi`` (≥ 0.1) on request.
* **Calibrated p-values, where Evidently's are not** (see :mod:`shipyard.data.contingency`): ``chisquare`` is
  a two-sample test on the 2 x k table of counts (Evidently's takes the reference proportions as exact and
  flags 23-97% of unshifted columns at a nominal 5%; ``chisquare_evidently`` keeps its formula), with
  Fisher's exact mid-p (2 x 2) or a Monte Carlo conditional p-value when an expected count is below 5; ``z``
  is the same test on two values (the pooled z-test, z² = chi-squared), Fisher below 5; ``ks`` on a column
  with ties and at most 1,000 distinct values takes the Monte Carlo conditional p-value (scipy's assumes no
  ties and, with them, flags 1-2% instead of 5%). Without sparse cells or ties the p-values are scipy's,
  so ``ks`` and ``z`` agree with Evidently there. ``benchmarks/drift_calibration.py`` measures the rates.
* **Binning** (:func:`binned_proportions`, shared by ``jensenshannon`` and ``psi``): a numeric column whose
  reference has more than 20 distinct values is cut into equal-width bins over the range of reference and
  current together, bin count by Sturges' rule (``np.histogram_bin_edges(..., bins="sturges")``); anything
  else uses the frequency of each value seen on either side. Proportions are of each side's own rows.
* **Empty bins**: ``psi`` replaces a zero proportion by 0.0001 (or by the smallest non-zero proportion / 1e6
  when that is itself ≤ 0.0001), per side, without renormalising. ``jensenshannon`` needs no such fix and
  uses the raw proportions.

Missing values (``None``, NaN) are dropped and counted; ±inf is refused. An object array must hold one kind
of value: all strings, all numbers, or all booleans. A mix (``[1, "a"]``) is refused rather than guessed at,
since it nearly always means a parsing error upstream.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from numbers import Number
from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial import distance

from shipyard.data.contingency import (
    CountTestResult,
    PValueMethod,
    chi_square_counts,
    chi_square_goodness_of_fit,
    ks_counts,
)
from shipyard.errors import InvalidInput

__all__ = [
    "ColumnDrift",
    "ColumnKind",
    "DatasetDrift",
    "StatTest",
    "binned_proportions",
    "chi_square_evidently_test",
    "chi_square_test",
    "choose_test",
    "column_drift",
    "dataset_drift",
    "infer_kind",
    "jensen_shannon",
    "ks_test",
    "psi",
    "wasserstein_normed",
    "z_test",
]

LARGE_REFERENCE = 1_000  # a reference with more rows than this gets the distance tests
MAX_CATEGORICAL_DISTINCT = 5  # numbers with at most this many distinct values count as categorical
MIN_HISTOGRAM_DISTINCT = 20  # numeric binning needs more distinct reference values than this
EMPTY_BIN_PROPORTION = 1e-4
MIN_STD = 1e-3  # Evidently's floor for the reference std in the normalised Wasserstein distance
MAX_TIED_KS_VALUES = 1_000  # KS on tied values with at most this many distinct ones: conditional p-value
# ...and only when values repeat on average at least twice: a continuous column with a few duplicates gets
# scipy's p-value, exact enough there and thousands of times cheaper than drawing tables.
MAX_TIED_KS_DISTINCT_SHARE = 0.5


class StatTest(StrEnum):
    """A drift test by its Evidently name; ``kind`` says how its statistic is judged."""

    KS = "ks"
    CHISQUARE = "chisquare"
    CHISQUARE_EVIDENTLY = "chisquare_evidently"
    Z = "z"
    WASSERSTEIN = "wasserstein"
    JENSENSHANNON = "jensenshannon"
    PSI = "psi"

    @property
    def kind(self) -> str:
        """``"p_value"`` (drift when below the threshold) or ``"distance"`` (drift when at or above it)."""
        p_value_tests = (StatTest.KS, StatTest.CHISQUARE, StatTest.CHISQUARE_EVIDENTLY, StatTest.Z)
        return "p_value" if self in p_value_tests else "distance"

    @property
    def default_threshold(self) -> float:
        """0.05 for p-values, 0.1 for distances."""
        return 0.05 if self.kind == "p_value" else 0.1

    def drifted(self, statistic: float, threshold: float) -> bool:
        """Whether ``statistic`` means drift at ``threshold``."""
        return statistic < threshold if self.kind == "p_value" else statistic >= threshold


class ColumnKind(StrEnum):
    """How a column's values are compared."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BINARY = "binary"


def _is_number_array(values: np.ndarray) -> bool:
    return values.dtype.kind in "iuf"


def _distinct(values: np.ndarray, at_least: int | None = None) -> int:
    """Distinct values; with ``at_least``, may stop early at any count above it (a cheap prefix check)."""
    if at_least is not None and values.size > 10 * at_least:
        prefix = len(np.unique(values[: min(values.size, 10_000)]))
        if prefix > at_least:
            return prefix
    if values.dtype == object:
        return len(set(values.tolist()))
    return len(np.unique(values))


def infer_kind(reference: np.ndarray, current: np.ndarray | None = None) -> ColumnKind:
    """Infer how a column is compared, from its non-missing values.

    Args:
        reference: reference values, missing values already dropped.
        current: current values; when given, distinct values are counted over both sides (as Evidently does).

    Returns:
        BINARY for booleans or at most 2 distinct values; CATEGORICAL for strings, or numbers with at most 5
        distinct values; NUMERIC otherwise.
    """
    reference = np.asarray(reference)
    both = reference if current is None else np.concatenate([reference, np.asarray(current)])
    if both.dtype.kind == "b":
        return ColumnKind.BINARY
    n = _distinct(both, at_least=MAX_CATEGORICAL_DISTINCT)
    if n <= 2:
        return ColumnKind.BINARY
    if _is_number_array(both) and n > MAX_CATEGORICAL_DISTINCT:
        return ColumnKind.NUMERIC
    return ColumnKind.CATEGORICAL


def choose_test(kind: ColumnKind | str, n_reference: int) -> StatTest:
    """Evidently's default test for a column kind and reference size (> 1,000 rows counts as large)."""
    kind = ColumnKind(kind)
    if n_reference <= LARGE_REFERENCE:
        return {
            ColumnKind.NUMERIC: StatTest.KS,
            ColumnKind.CATEGORICAL: StatTest.CHISQUARE,
            ColumnKind.BINARY: StatTest.Z,
        }[kind]
    return StatTest.WASSERSTEIN if kind is ColumnKind.NUMERIC else StatTest.JENSENSHANNON


# ---------------------------------------------------------------------------------------------- statistics


def _aligned_counts(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts of each value seen on either side, in sorted value order (0 where a side lacks it)."""
    if reference.dtype != object and current.dtype != object:
        values, inverse = np.unique(np.concatenate([reference, current]), return_inverse=True)
        inverse = inverse.ravel()
        ref_counts = np.bincount(inverse[: reference.size], minlength=values.size)
        cur_counts = np.bincount(inverse[reference.size :], minlength=values.size)
        return ref_counts.astype(float), cur_counts.astype(float)
    ref_counter, cur_counter = Counter(reference.tolist()), Counter(current.tolist())
    keys = sorted(ref_counter.keys() | cur_counter.keys())
    return (
        np.array([ref_counter.get(k, 0) for k in keys], dtype=float),
        np.array([cur_counter.get(k, 0) for k in keys], dtype=float),
    )


def _fill_zeroes(proportions: np.ndarray) -> np.ndarray:
    nonzero = proportions[proportions != 0]
    if nonzero.size == 0:
        return proportions
    smallest = float(nonzero.min())
    fill = smallest / 1e6 if smallest <= EMPTY_BIN_PROPORTION else EMPTY_BIN_PROPORTION
    return np.where(proportions == 0, fill, proportions)


def binned_proportions(
    reference: np.ndarray, current: np.ndarray, kind: ColumnKind | str, *, fill_zeroes: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The two samples as proportions over shared bins (Evidently's ``get_binned_data``).

    A NUMERIC column whose reference has more than 20 distinct values is cut into equal-width bins spanning
    both samples, as many as Sturges' rule gives for their combined size; otherwise each distinct value seen
    on either side is its own bin.

    Args:
        reference: reference values, no missing values.
        current: current values, no missing values.
        kind: the column kind; only NUMERIC columns are histogrammed.
        fill_zeroes: replace zero proportions by 0.0001 (or the side's smallest non-zero proportion / 1e6
            when that is ≤ 0.0001), as PSI needs; the proportions are not renormalised.

    Returns:
        Reference and current proportions, aligned bin by bin.
    """
    reference, current = np.asarray(reference), np.asarray(current)
    if (
        ColumnKind(kind) is ColumnKind.NUMERIC
        and _is_number_array(reference)
        and _distinct(reference, at_least=MIN_HISTOGRAM_DISTINCT) > MIN_HISTOGRAM_DISTINCT
    ):
        edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
        ref_counts = np.histogram(reference, edges)[0].astype(float)
        cur_counts = np.histogram(current, edges)[0].astype(float)
    else:
        ref_counts, cur_counts = _aligned_counts(reference, current)
    ref_p, cur_p = ref_counts / reference.size, cur_counts / current.size
    if fill_zeroes:
        ref_p, cur_p = _fill_zeroes(ref_p), _fill_zeroes(cur_p)
    return ref_p, cur_p


def _ks(reference: np.ndarray, current: np.ndarray) -> CountTestResult:
    reference, current = np.asarray(reference), np.asarray(current)
    both = np.concatenate([reference, current])
    distinct = _distinct(both, at_least=MAX_TIED_KS_VALUES)
    heavily_tied = distinct <= MAX_TIED_KS_DISTINCT_SHARE * both.size
    if heavily_tied and distinct <= MAX_TIED_KS_VALUES:  # few enough values to draw tables
        ref_counts, cur_counts = _aligned_counts(reference, current)  # in value order
        return ks_counts(ref_counts, cur_counts)
    result = stats.ks_2samp(reference, current)
    return CountTestResult(float(result.statistic), float(result.pvalue), PValueMethod.STANDARD)


def ks_test(reference: np.ndarray, current: np.ndarray) -> float:
    """Two-sided two-sample Kolmogorov-Smirnov p-value.

    ``scipy.stats.ks_2samp``'s, unless the values tie heavily (at most half as many distinct values as
    values) and take at most 1,000 distinct values: then the
    Monte Carlo conditional p-value of the same statistic (:func:`~shipyard.data.contingency.ks_counts`),
    since scipy's assumes no ties and is conservative with them.
    """
    return _ks(reference, current).p_value


def _chi_square(reference: np.ndarray, current: np.ndarray) -> CountTestResult:
    ref_counts, cur_counts = _aligned_counts(np.asarray(reference), np.asarray(current))
    return chi_square_counts(ref_counts, cur_counts)


def chi_square_test(reference: np.ndarray, current: np.ndarray) -> float:
    """Two-sample chi-squared p-value on the 2 x k table of counts (k = values seen on either side).

    Both samples are taken as random (:func:`~shipyard.data.contingency.chi_square_counts`): chi-squared
    with k - 1 degrees of freedom when every expected count is at least 5, else Fisher's exact mid-p (two
    values) or the Monte Carlo conditional p-value. A single value on both sides returns 1.0.
    """
    return _chi_square(reference, current).p_value


def chi_square_evidently_test(reference: np.ndarray, current: np.ndarray) -> float:
    """Evidently's chi-squared p-value: current counts against the reference proportions taken as exact.

    Categories are the union of both sides; expected = reference count * (current rows / reference rows).
    A category present in current but absent from the reference has expected 0: Evidently's statistic is
    then infinite and its p-value 0, which is returned directly (no warning). A single category on both
    sides returns 1.0. It flags unshifted columns far more often than the threshold says (the reference's
    own sampling noise is ignored); :func:`chi_square_test` is the calibrated test.
    """
    ref_counts, cur_counts = _aligned_counts(np.asarray(reference), np.asarray(current))
    return chi_square_goodness_of_fit(ref_counts, cur_counts)


def z_test(reference: np.ndarray, current: np.ndarray) -> float:
    """Two-sided pooled two-proportion z-test p-value, or Fisher's exact mid-p when an expected count is < 5.

    The pooled z-test is the chi-squared test on the 2 x 2 table (z² is its statistic), so this is
    :func:`chi_square_test` on two values; for two values the p-value does not depend on which one is the
    "success". One value on both sides returns 1.0.
    """
    return _chi_square(reference, current).p_value


def wasserstein_normed(reference: np.ndarray, current: np.ndarray) -> float:
    """``scipy.stats.wasserstein_distance(reference, current) / max(np.std(reference), 0.001)``.

    Computed here from one merge of the sorted samples (the same value as scipy's, several times faster on
    millions of rows); the 0.001 floor on the std is Evidently's guard for a constant reference.
    """
    ref = np.sort(np.asarray(reference, dtype=float))
    cur = np.sort(np.asarray(current, dtype=float))
    merged = np.concatenate([ref, cur])
    order = np.argsort(merged, kind="stable")  # NOTE: two sorted runs: the stable sort merges them cheaply
    ref_cdf = np.cumsum(order < ref.size)[:-1] / ref.size
    cur_cdf = np.arange(1, merged.size) / cur.size - ref_cdf * (ref.size / cur.size)
    widths = np.diff(merged[order])
    # NOTE: ties give mid-group CDF values but zero widths, so they drop out of the integral.
    distance_ = float(np.abs(ref_cdf - cur_cdf) @ widths)
    return distance_ / max(float(np.std(ref)), MIN_STD)


def jensen_shannon(reference: np.ndarray, current: np.ndarray, kind: ColumnKind | str) -> float:
    """Jensen-Shannon *distance* (natural log) between the binned samples, see :func:`binned_proportions`."""
    ref_p, cur_p = binned_proportions(reference, current, kind, fill_zeroes=False)
    return float(distance.jensenshannon(ref_p, cur_p))


def psi(reference: np.ndarray, current: np.ndarray, kind: ColumnKind | str) -> float:
    """Population stability index sum((p - q) * ln(p / q)) over the bins of :func:`binned_proportions`.

    Zero proportions are filled (``fill_zeroes=True``) so every term is finite.
    """
    ref_p, cur_p = binned_proportions(reference, current, kind, fill_zeroes=True)
    return float(np.sum((ref_p - cur_p) * np.log(ref_p / cur_p)))


# ------------------------------------------------------------------------------------------------- columns


@dataclass(frozen=True)
class ColumnDrift:
    """The verdict for one column.

    ``reference_rows``/``current_rows`` count the values compared; missing values are counted apart.
    """

    column: str
    kind: str
    test: str
    statistic: float
    threshold: float
    drift_detected: bool
    reference_rows: int
    current_rows: int
    note: str | None = None
    reference_missing: int = 0
    current_missing: int = 0

    @property
    def score_kind(self) -> str:
        """What ``statistic`` holds: ``"p_value"`` (drift below the threshold) or ``"distance"``."""
        return StatTest(self.test).kind

    def describe_score(self) -> tuple[str, str]:
        """(score, rule) for display: ``("p = 0.0123", "p < 0.05")`` or ``("distance 0.142", "≥ 0.1")``."""
        if self.score_kind == "p_value":
            return f"p = {self.statistic:.4g}", f"p < {self.threshold:g}"
        return f"distance {self.statistic:.4g}", f"≥ {self.threshold:g}"


def clean_values(column: str, side: str, values: Any) -> tuple[np.ndarray, int]:
    """Non-missing values as a 1-D array of numbers, booleans or strings, and how many were missing."""
    if hasattr(values, "isna") and hasattr(values, "to_numpy"):  # a pandas Series, without importing pandas
        missing_mask = np.asarray(values.isna(), dtype=bool)
        array = np.asarray(values.to_numpy())[~missing_mask]
        missing = int(missing_mask.sum())
    else:
        array, missing = np.asarray(values), 0
    if array.ndim != 1:
        raise InvalidInput(f"column {column!r}: {side} values must be 1-D, got shape {array.shape}")
    if array.dtype == object:
        keep = ~(np.equal(array, None) | np.not_equal(array, array))  # None, and NaN (NaN != NaN)
        missing += int(array.size - keep.sum())
        array = array[keep]
        types = set(map(type, array.tolist()))
        if types and all(issubclass(t, str) for t in types):
            pass
        elif types and all(issubclass(t, bool) for t in types):
            array = array.astype(bool)
        elif types and all(issubclass(t, Number) and not issubclass(t, bool) for t in types):
            array = array.astype(float)
        elif types:
            names = ", ".join(sorted(t.__name__ for t in types))
            raise InvalidInput(
                f"column {column!r}: {side} mixes value types ({names}); convert it to one type "
                "(e.g. all str for a categorical column)"
            )
    elif array.dtype.kind == "S":
        array = array.astype(str)
    elif array.dtype.kind not in "biufU":
        raise InvalidInput(
            f"column {column!r}: {side} dtype {array.dtype} is not supported; give numbers, booleans, strings"
        )
    if array.dtype.kind == "f":
        nan = np.isnan(array)
        if nan.any():
            missing += int(nan.sum())
            array = array[~nan]
        if not np.isfinite(array).all():
            raise InvalidInput(f"column {column!r}: {side} holds infinite values; drop or clip them first")
    if array.size == 0:
        raise InvalidInput(f"column {column!r}: {side} has no non-missing values ({missing} missing)")
    return array, missing


def _value_type(values: np.ndarray) -> str:
    """ "numbers", "booleans" or "strings" for an array :func:`clean_values` returned."""
    if _is_number_array(values):
        return "numbers"
    return "booleans" if values.dtype.kind == "b" else "strings"


def _declared_kind(
    column: str, declared: ColumnKind | str, reference: np.ndarray, current: np.ndarray
) -> ColumnKind:
    """A kind the caller declared for the column (integer codes that are categories, say), checked."""
    try:
        kind = ColumnKind(declared)
    except ValueError:
        known = ", ".join(k.value for k in ColumnKind)
        raise InvalidInput(f"column {column!r}: unknown kind {declared!r}; known: {known}") from None
    if kind is ColumnKind.NUMERIC and not _is_number_array(reference):
        raise InvalidInput(f"column {column!r}: declared numeric, but it holds {_value_type(reference)}")
    if kind is ColumnKind.BINARY:
        both = np.concatenate([reference, current])
        if _distinct(both, at_least=3) > 2:
            raise InvalidInput(f"column {column!r}: declared binary, but it holds more than two values")
    return kind


def _check_fits(column: str, test: StatTest, kind: ColumnKind, reference: np.ndarray) -> ColumnKind:
    """The column's kind under an explicitly chosen test: chi-squared on numbers declares them category codes
    (an integer-coded category has more than 5 values as often as not)."""
    if test in (StatTest.KS, StatTest.WASSERSTEIN) and not _is_number_array(reference):
        reason = f"needs numbers, the column holds {_value_type(reference)}"
    elif test is StatTest.Z and kind is not ColumnKind.BINARY:
        reason = f"is for binary columns (two values), the column is {kind.value}"
    elif test in (StatTest.CHISQUARE, StatTest.CHISQUARE_EVIDENTLY) and kind is ColumnKind.NUMERIC:
        return ColumnKind.CATEGORICAL
    else:
        return kind
    raise InvalidInput(f"column {column!r}: test {test.value!r} {reason}")


def _statistic(
    test: StatTest, kind: ColumnKind, reference: np.ndarray, current: np.ndarray
) -> tuple[float, str | None]:
    """The test's statistic, and a note when its p-value is not the test's usual one."""
    if test in (StatTest.KS, StatTest.CHISQUARE, StatTest.Z):
        result = _ks(reference, current) if test is StatTest.KS else _chi_square(reference, current)
        if result.method is PValueMethod.STANDARD:
            return result.p_value, None
        why = "tied values" if test is StatTest.KS else "an expected count below 5"
        return result.p_value, f"{why}: {result.method.describe()}"
    if test is StatTest.CHISQUARE_EVIDENTLY:
        return chi_square_evidently_test(reference, current), None
    if test is StatTest.WASSERSTEIN:
        return wasserstein_normed(reference, current), None
    if test is StatTest.JENSENSHANNON:
        return jensen_shannon(reference, current, kind), None
    return psi(reference, current, kind), None


def column_drift(
    column: str,
    reference: Any,
    current: Any,
    *,
    test: StatTest | str | None = None,
    threshold: float | None = None,
    kind: ColumnKind | str | None = None,
) -> ColumnDrift:
    """Compare one column's current values with its reference values.

    Args:
        column: the column's name, used in the result and in error messages.
        reference: reference values: a 1-D numpy array, sequence or pandas Series.
        current: current values, likewise.
        test: a :class:`StatTest` name; default :func:`choose_test` for the inferred kind and reference size.
        threshold: default the test's ``default_threshold``.
        kind: numeric, categorical or binary, instead of the kind inferred from the values (integer codes
            of categories are numbers with more than 5 values as often as not).

    Returns:
        The column's :class:`ColumnDrift`.

    Raises:
        InvalidInput: naming the column: an empty side (after dropping missing values), infinite values,
            mixed value types, an unknown test, or a test that does not fit the column.
    """
    ref, ref_missing = clean_values(column, "reference", reference)
    cur, cur_missing = clean_values(column, "current", current)
    if _value_type(ref) != _value_type(cur):
        raise InvalidInput(
            f"column {column!r}: reference holds {_value_type(ref)}, current holds {_value_type(cur)}"
        )
    kind = infer_kind(ref, cur) if kind is None else _declared_kind(column, kind, ref, cur)
    if test is None:
        chosen = choose_test(kind, ref.size)
    else:
        try:
            chosen = StatTest(test)
        except ValueError:
            known = ", ".join(t.value for t in StatTest)
            raise InvalidInput(f"column {column!r}: unknown test {test!r}; known: {known}") from None
        kind = _check_fits(column, chosen, kind, ref)
    limit = chosen.default_threshold if threshold is None else float(threshold)
    if not (math.isfinite(limit) and limit > 0):
        raise InvalidInput(f"column {column!r}: threshold must be a positive number, got {threshold!r}")
    statistic, method_note = _statistic(chosen, kind, ref, cur)
    notes = [] if method_note is None else [method_note]
    if _distinct(ref, at_least=1) == 1:
        notes.insert(0, "reference is constant")
        if chosen is StatTest.WASSERSTEIN:
            notes.insert(1, f"its std is 0, so the distance is divided by {MIN_STD} (Evidently's floor)")
    note = "; ".join(notes) or None
    return ColumnDrift(
        column=column,
        kind=kind.value,
        test=chosen.value,
        statistic=statistic,
        threshold=limit,
        drift_detected=chosen.drifted(statistic, limit),
        reference_rows=int(ref.size),
        current_rows=int(cur.size),
        note=note,
        reference_missing=ref_missing,
        current_missing=cur_missing,
    )


# ------------------------------------------------------------------------------------------------- dataset


@dataclass(frozen=True)
class DatasetDrift:
    """Per-column verdicts and Evidently's dataset verdict: drifted share of columns ≥ ``share_threshold``."""

    columns: tuple[ColumnDrift, ...]
    drift_share: float
    dataset_drift: bool
    share_threshold: float
    missing_in_current: tuple[str, ...]
    missing_in_reference: tuple[str, ...]

    def _repr_html_(self) -> str:  # Jupyter
        from shipyard.reprs import drift_html

        return drift_html(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (plain str, float, int, bool, None, list)."""
        return {
            "dataset_drift": self.dataset_drift,
            "drift_share": self.drift_share,
            "share_threshold": self.share_threshold,
            "missing_in_current": list(self.missing_in_current),
            "missing_in_reference": list(self.missing_in_reference),
            "columns": [
                {
                    "column": c.column,
                    "kind": c.kind,
                    "test": c.test,
                    "statistic": c.statistic,
                    "score_kind": c.score_kind,
                    "threshold": c.threshold,
                    "drift_detected": c.drift_detected,
                    "reference_rows": c.reference_rows,
                    "current_rows": c.current_rows,
                    "reference_missing": c.reference_missing,
                    "current_missing": c.current_missing,
                    "note": c.note,
                }
                for c in self.columns
            ],
        }


def _column_names(table: Any) -> list[str]:
    return [str(c) for c in table.columns] if hasattr(table, "columns") else [str(c) for c in table]


def dataset_drift(
    reference: Mapping[str, Any] | Any,
    current: Mapping[str, Any] | Any,
    *,
    tests: Mapping[str, StatTest | str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    share_threshold: float = 0.5,
    kinds: Mapping[str, ColumnKind | str] | None = None,
) -> DatasetDrift:
    """Compare every column present on both sides.

    Args:
        reference: column name → values, or a pandas DataFrame.
        current: likewise.
        tests: per-column test overrides; columns not named get the default.
        thresholds: per-column threshold overrides.
        kinds: per-column kinds (numeric, categorical, binary) instead of the inferred ones.
        share_threshold: the dataset drifts when at least this share of the compared columns drift.

    Returns:
        The :class:`DatasetDrift`; columns on one side only are listed in ``missing_in_*``, not compared.

    Raises:
        InvalidInput: a bad column (see :func:`column_drift`), an override naming no compared column, or a
            ``share_threshold`` outside (0, 1].
    """
    if not 0 < share_threshold <= 1:
        raise InvalidInput(f"share_threshold must be in (0, 1], got {share_threshold!r}")
    ref_names, cur_names = _column_names(reference), _column_names(current)
    common = [c for c in ref_names if c in set(cur_names)]
    tests, thresholds, kinds = dict(tests or {}), dict(thresholds or {}), dict(kinds or {})
    unknown = sorted((tests.keys() | thresholds.keys() | kinds.keys()) - set(common))
    if unknown:
        raise InvalidInput(
            f"tests/thresholds/kinds name columns not on both sides: {', '.join(unknown)}; "
            f"compared columns: {', '.join(common) or '(none)'}"
        )
    results = tuple(
        column_drift(
            c, reference[c], current[c], test=tests.get(c), threshold=thresholds.get(c), kind=kinds.get(c)
        )
        for c in common
    )
    drifted = sum(r.drift_detected for r in results)
    share = drifted / len(results) if results else 0.0
    return DatasetDrift(
        columns=results,
        drift_share=share,
        dataset_drift=bool(results) and share >= share_threshold,
        share_threshold=share_threshold,
        missing_in_current=tuple(c for c in ref_names if c not in set(cur_names)),
        missing_in_reference=tuple(c for c in cur_names if c not in set(ref_names)),
    )
