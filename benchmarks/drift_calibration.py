"""Drift tests' calibration: how often unshifted columns drift, and how often shifted ones are caught.

    python benchmarks/drift_calibration.py [--quick] [--json out.json] [--seed 11] [--samples 1000]
                                           [--evidently-large-samples 100]

Needs Evidently (``pip install -e '.[bench]'``). For each column kind (numeric: normal; numeric with ties:
Poisson(3) counts; binary: 30% true; 3, 8 and 20 categories, the 20 with geometric weights so that small
samples have sparse cells) and size (100, 800, 5,000 and 100,000 rows on each side; quick: up to 5,000):

(a) **False-positive rate**: the share of 1,000 pairs of unshifted samples (reference and current drawn from
    the same distribution) that a test calls drift. For the p-value tests (KS for numbers, z for binary,
    chi-squared for categories; Shipyard's and Evidently's at every size, both chosen by name above 1,000
    rows) the target is 5% ± 1.5 points: a test at p < 0.05 should flag 5% of unshifted columns. The
    default tests above 1,000 rows are distances (normalised Wasserstein, Jensen-Shannon, ≥ 0.1), shown for
    context: their rate has no nominal value to be near.
(b) **Power** at 100 and 800 rows (where the default tests are p-value tests): the share of 1,000 pairs
    with a fixed shift (numeric: +0.2 std; ties: Poisson(3.25); binary: 30% → 36%; categories: a fixed
    reweighting, see KINDS) that each default test calls drift; once with the shift in the current sample
    and once in the reference (Evidently's chi-squared is not symmetric in the two, so one direction favours
    it), and the mean of the two. A test that flags
    unshifted columns too often also "catches" more shifted ones, so the comparison is made **at equal
    false-positive rate**: each test's threshold is calibrated on its own null p-values of (a), so that
    exactly 5% of them drift: drift when p < t, and with weight gamma when p == t (Neyman and Pearson's
    randomised test, needed where p-values tie: Evidently's chi-squared gives exactly 0 to every sample with
    a category the reference lacks). Power is the expected share of shifted pairs called drift under that
    rule. Target: Shipyard's calibrated power, the mean over both directions, ≥ Evidently's, up to sampling
    noise (1.96 standard errors of the paired difference on the same samples). Power at the nominal
    p < 0.05 is in the footnotes; for calibrated tests it is close to the calibrated figure, for Evidently's
    chi-squared it counts false alarms as detections.

Evidently's verdicts come from its stattest registry (``get_stattest`` and the test it returns, with the
default threshold), which is what its DataDriftPreset calls per column (``benchmarks/drift.py`` checks the
preset's verdicts against Shipyard's column by column). Evidently gets every sample up to 5,000 rows; at
100,000 rows it gets the first ``--evidently-large-samples`` (100) of them (its z-test takes 0.2 s there),
and the table says so. Shipyard's categorical and binary p-values for 1,000 samples are computed at once from
the count tables (``chi_square_counts_batch``: a sample's counts are all these tests read); the first 20
samples of each such row are also run through ``column_drift`` on the expanded values, and the script stops
if any p-value differs. Numeric columns go through ``column_drift`` one sample at a time (sorting 2 x 100,000
values for KS and again for Wasserstein is most of the run: about 5 minutes in all on a busy 2-core machine;
``--quick``, up to 5,000 rows and 300 samples, about half a minute). Progress goes to stderr, the tables to
stdout.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import harness
import numpy as np
from harness import clock, progress

TITLE = "Drift tests' calibration: Shipyard vs Evidently on unshifted and shifted samples (one machine)"
SIZES = (100, 800, 5_000, 100_000)
QUICK_SIZES = (100, 800, 5_000)
POWER_SIZES = (100, 800)
NOMINAL = 0.05
TOLERANCE = 0.015  # the target: every p-value test's false-positive rate within 5% ± 1.5 points
LARGE = 1_000  # references above this get the distance tests by default
CROSS_CHECKED = 20  # samples per count row also run through column_drift on the expanded values

Draw = Callable[[np.random.Generator, int], np.ndarray]
Sides = tuple[bool, bool]  # (reference shifted, current shifted)
UNSHIFTED: Sides = (False, False)


@dataclass(frozen=True)
class Kind:
    """A column kind: a numeric generator (``draw``) or category weights (``weights``), and its shift."""

    name: str
    p_value_test: str  # Shipyard's and Evidently's name of the kind's p-value test
    evidently_type: str  # Evidently's ColumnType value: "num" or "cat"
    draw: Draw | None = None
    shifted_draw: Draw | None = None
    weights: tuple[float, ...] = ()
    shifted_weights: tuple[float, ...] = ()

    @property
    def counts(self) -> bool:
        return self.draw is None

    def probabilities(self, shifted: bool) -> np.ndarray:
        w = np.asarray(self.shifted_weights if shifted else self.weights, dtype=float)
        return w / w.sum()


def _geometric(k: int, ratio: float) -> tuple[float, ...]:
    return tuple(ratio**i for i in range(k))


_EIGHT = tuple(float(w) for w in range(8, 0, -1))
_TWENTY = _geometric(20, 0.8)
KINDS = (
    Kind(
        "numeric",
        "ks",
        "num",
        draw=lambda r, n: r.normal(0.0, 1.0, n),
        shifted_draw=lambda r, n: r.normal(0.2, 1.0, n),
    ),
    Kind(
        "numeric, ties (Poisson 3)",
        "ks",
        "num",
        draw=lambda r, n: r.poisson(3.0, n),
        shifted_draw=lambda r, n: r.poisson(3.25, n),
    ),
    Kind("binary (30% true)", "z", "cat", weights=(0.7, 0.3), shifted_weights=(0.64, 0.36)),
    Kind("3 categories", "chisquare", "cat", weights=(5, 3, 2), shifted_weights=(4.5, 3.2, 2.3)),
    # 8 categories: 4 points of probability move from the commonest to the four rarest, 1 point each
    Kind(
        "8 categories",
        "chisquare",
        "cat",
        weights=_EIGHT,
        shifted_weights=tuple(w - 1.44 if i == 0 else w + 0.36 * (i >= 4) for i, w in enumerate(_EIGHT)),
    ),
    # 20 categories, weights 0.8^i (sparse cells in small samples); shifted: 15% of rows spread evenly
    Kind(
        "20 categories",
        "chisquare",
        "cat",
        weights=_TWENTY,
        shifted_weights=tuple(0.85 * w / sum(_TWENTY) + 0.15 / 20 for w in _TWENTY),
    ),
)
SHIFTS = {
    "numeric": "+0.2 std",
    "numeric, ties (Poisson 3)": "Poisson(3.25)",
    "binary (30% true)": "36% true",
    "3 categories": "reweighted",
    "8 categories": "4 points moved",
    "20 categories": "15% spread",
}


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, *key])


# ---------------------------------------------------------------------- Evidently
class Evidently:
    """Evidently's stattest registry: the default test for a column, or one by name, and its verdict."""

    def __init__(self) -> None:
        os.environ.setdefault("DO_NOT_TRACK", "1")
        os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")
        import evidently
        import pandas as pd
        from evidently.legacy.calculations.stattests.registry import get_stattest
        from evidently.legacy.core import ColumnType

        self.version = evidently.__version__
        self._pd, self._get, self._type = pd, get_stattest, ColumnType

    def run(
        self, kind: Kind, reference: np.ndarray, current: np.ndarray, test: str | None
    ) -> tuple[str, float]:
        """The test's name and its statistic (a p-value or a distance)."""
        ref, cur = self._pd.Series(reference), self._pd.Series(current)
        column_type = self._type(kind.evidently_type)
        stattest = self._get(ref, cur, column_type, test)
        return stattest.name, float(stattest(ref, cur, column_type, None).drift_score)


# ---------------------------------------------------------------------- samples
@dataclass
class Samples:
    """Statistics for every sample of one (kind, size, sides) cell, by tool and test."""

    shipyard: dict[str, np.ndarray]  # test name -> statistic per sample
    evidently: dict[str, np.ndarray]  # Evidently's test name -> statistic per Evidently sample


def _arrays(lists: dict[str, list[float]]) -> dict[str, np.ndarray]:
    return {name: np.array(values) for name, values in lists.items()}


def _expand(labels: np.ndarray, counts: np.ndarray) -> np.ndarray:
    return np.repeat(labels, counts.astype(np.int64))


def _count_samples(
    kind: Kind, rows: int, sides: Sides, n: int, n_evidently: int, seed: int, key: int, ev: Evidently
) -> Samples:
    from shipyard.data.contingency import chi_square_counts_batch
    from shipyard.data.drift import column_drift, jensen_shannon

    rng = _rng(seed, key, rows, *map(int, sides))
    ref = rng.multinomial(rows, kind.probabilities(sides[0]), size=n)
    cur = rng.multinomial(rows, kind.probabilities(sides[1]), size=n)
    k = ref.shape[1]
    labels = np.array([f"c{i:02d}" for i in range(k)], dtype=object) if k > 2 else np.array([False, True])
    shipyard = {kind.p_value_test: chi_square_counts_batch(ref, cur)}
    for i in range(min(CROSS_CHECKED, n)):
        test = None if rows <= LARGE else kind.p_value_test
        result = column_drift("c", _expand(labels, ref[i]), _expand(labels, cur[i]), test=test)
        if (result.test, result.statistic) != (kind.p_value_test, shipyard[kind.p_value_test][i]):
            sys.exit(
                f"{kind.name}, {rows} rows, sample {i}: column_drift gave {result}, the batch "
                f"{shipyard[kind.p_value_test][i]}"
            )
    if rows > LARGE:
        codes = np.arange(k, dtype=np.int8)  # small integers: np.unique sorts them by radix, fast
        pairs = zip(ref, cur, strict=True)
        shipyard["jensenshannon"] = np.array(
            [jensen_shannon(_expand(codes, r), _expand(codes, c), "categorical") for r, c in pairs]
        )
    evidently: dict[str, list[float]] = {}
    for i in range(n_evidently):
        reference, current = _expand(labels, ref[i]), _expand(labels, cur[i])
        tests = [None] if rows <= LARGE else [None, kind.p_value_test]
        for test in tests:
            name, statistic = ev.run(kind, reference, current, test)
            evidently.setdefault(name, []).append(statistic)
    return Samples(shipyard, _arrays(evidently))


def _numeric_samples(
    kind: Kind, rows: int, sides: Sides, n: int, n_evidently: int, seed: int, key: int, ev: Evidently
) -> Samples:
    from shipyard.data.drift import column_drift

    assert kind.draw is not None and kind.shifted_draw is not None
    shipyard: dict[str, list[float]] = {}
    evidently: dict[str, list[float]] = {}
    for i in range(n):
        rng = _rng(seed, key, rows, *map(int, sides), i)
        reference = (kind.shifted_draw if sides[0] else kind.draw)(rng, rows)
        current = (kind.shifted_draw if sides[1] else kind.draw)(rng, rows)
        tests = [kind.p_value_test] if rows <= LARGE else [None, kind.p_value_test]
        for test in tests:
            # by name: a Poisson sample with at most 5 distinct values would otherwise be compared as
            # categories (by both tools); above 5 values, KS is the default below 1,000 rows anyway
            result = column_drift("x", reference, current, test=test)
            shipyard.setdefault(result.test, []).append(result.statistic)
            if i < n_evidently:
                name, statistic = ev.run(kind, reference, current, test)
                evidently.setdefault(name, []).append(statistic)
    return Samples(_arrays(shipyard), _arrays(evidently))


def samples(
    kind: Kind, rows: int, sides: Sides, n: int, n_evidently: int, seed: int, ev: Evidently
) -> Samples:
    """Statistics of ``n`` pairs of samples; ``sides`` says whether the reference and the current sample are
    drawn from the kind's shifted distribution."""
    key = KINDS.index(kind)
    make = _count_samples if kind.counts else _numeric_samples
    return make(kind, rows, sides, n, n_evidently, seed, key, ev)


# ---------------------------------------------------------------------- figures
def drift_rate(statistics: np.ndarray, test: str, threshold: float | None = None) -> float:
    """The share of samples a test calls drift (p < threshold, or distance ≥ threshold)."""
    from shipyard.data.drift import StatTest

    stat_test = StatTest(test)
    limit = stat_test.default_threshold if threshold is None else threshold
    return float(np.mean([stat_test.drifted(float(s), limit) for s in statistics]))


def calibrated_rule(null_p_values: np.ndarray) -> tuple[float, float]:
    """``(t, gamma)``: call drift when p < t, and with weight ``gamma`` when p == t, so that exactly 5% of the
    null samples drift (Neyman and Pearson's randomised test; p-values that tie, such as Evidently's exact
    zeros, would otherwise make 5% unreachable)."""
    ordered = np.sort(null_p_values)
    target = NOMINAL * ordered.size
    t = float(ordered[math.floor(target)])
    below = int(np.count_nonzero(null_p_values < t))
    equal = int(np.count_nonzero(null_p_values == t))
    return t, (target - below) / equal


def detections(p_values: np.ndarray, rule: tuple[float, float]) -> np.ndarray:
    """Each sample's chance of being called drift under a calibrated rule (0, 1, or gamma at the tie)."""
    t, gamma = rule
    return (p_values < t) + gamma * (p_values == t)


def paired_se(ours: np.ndarray, theirs: np.ndarray) -> float:
    """Standard error of the difference of two detection rates measured on the same samples (McNemar's,
    with fractional decisions at a randomised threshold)."""
    return float(np.std(ours - theirs, ddof=1) / math.sqrt(ours.size))


def ks_exact_size(rows: int) -> tuple[float, float]:
    """The smallest KS statistic D that scipy's exact p-value rejects at p < 0.05 for two samples of ``rows``,
    and that p-value: P(D >= it) under no drift, the exact test's false-positive rate (D moves in steps of
    1 / rows, so 5% itself is out of reach without randomising). From pairs of shifted grids, one per D."""
    from scipy import stats

    base = np.arange(rows, dtype=float)
    for step in range(1, rows + 1):
        result = stats.ks_2samp(base, base + step - 0.5, method="exact")
        if result.pvalue < NOMINAL:
            return float(result.statistic), float(result.pvalue)
    return 1.0, 0.0


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.1f}%"


# ---------------------------------------------------------------------- power
def power(kind: Kind, rows: int, null: Samples, n: int, seed: int, ev: Evidently) -> dict[str, Any]:
    """Both tools' power on the kind's shift, each at its own calibrated rule, in both directions.

    "Current shifted": the reference is drawn from the kind's distribution and the current sample from the
    shifted one, the rule calibrated on ``null``; "reference shifted": the other way round, the rule
    calibrated on pairs drawn from the shifted distribution. Evidently's chi-squared is not symmetric (it
    divides by the reference counts), so one direction can favour it and the other not; a drift can go
    either way, so the target is on the mean of the two.
    """
    test = kind.p_value_test
    record: dict[str, Any] = {"section": "power", "kind": kind.name, "rows": rows, "test": test, "samples": n}
    record["shift"] = SHIFTS[kind.name]
    hits: dict[str, list[np.ndarray]] = {"shipyard": [], "evidently": []}
    for direction, alt_sides, null_sides in (
        ("current_shifted", (False, True), UNSHIFTED),
        ("reference_shifted", (True, False), (True, True)),
    ):
        t0 = clock()
        calibration = null if null_sides == UNSHIFTED else samples(kind, rows, null_sides, n, n, seed, ev)
        alt = samples(kind, rows, alt_sides, n, n, seed, ev)
        progress(f"{kind.name}, {rows:,} rows: power, {direction.replace('_', ' ')}, in {clock() - t0:.1f} s")
        for tool, null_stats, alt_stats in (
            ("shipyard", calibration.shipyard[test], alt.shipyard[test]),
            ("evidently", calibration.evidently[test], alt.evidently[test]),
        ):
            rule = calibrated_rule(null_stats)
            detected = detections(alt_stats, rule)
            hits[tool].append(detected)
            record[f"{tool}_{direction}"] = float(detected.mean())
            record[f"{tool}_{direction}_rule"] = rule
            record[f"{tool}_{direction}_nominal"] = float(np.mean(alt_stats < NOMINAL))
    ours, theirs = np.mean(hits["shipyard"], axis=0), np.mean(hits["evidently"], axis=0)
    record["shipyard"], record["evidently"] = float(ours.mean()), float(theirs.mean())
    record["paired_se"] = paired_se(ours, theirs)
    record["passed"] = bool(record["shipyard"] >= record["evidently"] - 1.96 * record["paired_se"])
    return record


def power_cells(record: dict[str, Any], notes: list[str]) -> tuple[str, ...]:
    """A power table row; the calibrated rules and the power at the nominal p < 0.05 go to a footnote."""
    parts = []
    for direction in ("current_shifted", "reference_shifted"):
        rules = ", ".join(
            f"{tool.capitalize()} p < {record[f'{tool}_{direction}_rule'][0]:.3g}"
            + (
                f" (+{record[f'{tool}_{direction}_rule'][1]:.2f} at equality)"
                if record[f"{tool}_{direction}_rule"][1]
                else ""
            )
            for tool in ("shipyard", "evidently")
        )
        nominal = ", ".join(
            f"{tool.capitalize()} {percent(record[f'{tool}_{direction}_nominal'])}"
            for tool in ("shipyard", "evidently")
        )
        parts.append(f"{direction.replace('_', ' ')}: calibrated {rules}; power at p < 0.05: {nominal}")
    difference = 100 * (record["shipyard"] - record["evidently"])
    marks = harness.note_marks(
        [
            f"{record['kind']}, {record['rows']:,} rows: {'; '.join(parts)}; mean difference "
            f"{difference:+.1f} points, standard error {100 * record['paired_se']:.1f}"
        ],
        notes,
    )
    return (
        record["kind"] + marks,
        f"{record['rows']:,}",
        record["test"],
        record["shift"],
        percent(record["shipyard_current_shifted"]),
        percent(record["shipyard_reference_shifted"]),
        percent(record["shipyard"]),
        percent(record["evidently_current_shifted"]),
        percent(record["evidently_reference_shifted"]),
        percent(record["evidently"]),
        "≥ Evidently",
        "PASS" if record["passed"] else "MISS",
    )


# ---------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=11, help="data seed (11)")
    parser.add_argument("--samples", type=int, help="samples per row (1000; quick: 300)")
    parser.add_argument(
        "--evidently-large-samples",
        type=int,
        default=100,
        metavar="N",
        help="Evidently's samples at 100,000 rows (100)",
    )
    args = parser.parse_args(argv)
    # scipy's "exact calculation unsuccessful" and Evidently's division by zero (a category the reference
    # lacks) would repeat thousands of times on stderr; both are part of what is measured
    warnings.simplefilter("ignore", RuntimeWarning)
    n = args.samples or (300 if args.quick else 1000)
    sizes = QUICK_SIZES if args.quick else SIZES
    mode = "quick" if args.quick else "full"
    shown = ", ".join(f"{s:,}" for s in sizes)
    progress(f"{mode} mode: {n:,} samples per row, sizes {shown}, seed {args.seed}")
    started = clock()
    ev = Evidently()
    fp_rows: list[tuple[str, ...]] = []
    power_rows: list[tuple[str, ...]] = []
    fp_notes: list[str] = []
    power_notes: list[str] = []
    records: list[dict[str, Any]] = []
    met = aimed = 0
    for kind in KINDS:
        for rows in sizes:
            n_ev = n if rows <= 5_000 else min(n, args.evidently_large_samples)
            t0 = clock()
            null = samples(kind, rows, UNSHIFTED, n, n_ev, args.seed, ev)
            progress(f"{kind.name}, {rows:,} rows: unshifted in {clock() - t0:.1f} s")
            defaults = [kind.p_value_test] if rows <= LARGE else [kind.p_value_test, None]
            for test in defaults:
                ours_name = test or ("jensenshannon" if kind.counts else "wasserstein")
                ours, theirs_name = null.shipyard[ours_name], ours_name
                theirs = null.evidently[theirs_name]
                ours_rate, theirs_rate = drift_rate(ours, ours_name), drift_rate(theirs, ours_name)
                p_value = test is not None
                within = abs(ours_rate - NOMINAL) <= TOLERANCE + 1e-12
                if p_value:
                    aimed += 1
                    met += within
                notes = []
                if n_ev < n:
                    notes.append(f"Evidently: the first {n_ev} of the {n:,} samples at {rows:,} rows")
                if kind.name == "numeric" and ours_name == "ks" and rows <= LARGE:
                    d, size = ks_exact_size(rows)
                    notes.append(
                        f"KS on {rows:,} vs {rows:,} continuous values: scipy's p-value (Evidently's "
                        f"too) is below 0.05 from D = {d:.4g} on, which unshifted samples reach "
                        f"{percent(size)} of the time: that is this exact test's false-positive rate, D "
                        f"moving in steps of 1/{rows:,}"
                    )
                marks = harness.note_marks(notes, fp_notes)
                label = ours_name + (" (default)" if rows <= LARGE or test is None else " (by name)")
                fp_rows.append(
                    (
                        kind.name + marks,
                        f"{rows:,}",
                        label,
                        f"{n:,}",
                        percent(ours_rate),
                        percent(theirs_rate),
                        f"{n_ev:,}",
                        "5% ± 1.5" if p_value else "-",
                        ("PASS" if within else "MISS") if p_value else "-",
                    )
                )
                records.append(
                    {
                        "section": "false_positive_rate",
                        "kind": kind.name,
                        "rows": rows,
                        "test": ours_name,
                        "evidently_test": theirs_name,
                        "samples": n,
                        "evidently_samples": n_ev,
                        "shipyard": ours_rate,
                        "evidently": theirs_rate,
                        "target": "5% ± 1.5" if p_value else None,
                        "passed": within if p_value else None,
                    }
                )
            if rows not in POWER_SIZES:
                continue
            record = power(kind, rows, null, n, args.seed, ev)
            aimed += 1
            met += record["passed"]
            records.append(record)
            power_rows.append(power_cells(record, power_notes))
    fp_records = [r for r in records if r["section"] == "false_positive_rate"]
    info = harness.machine_info(("shipyard", "evidently", "pandas", "numpy", "scipy"))
    machine = harness.machine_line(info)
    header = ("kind", "rows", "test (Shipyard)", "samples", "Shipyard", "Evidently", "Evidently samples")
    fp_header = (*header, "target", "result")
    harness.print_rows(
        f"{TITLE}, {mode} mode\n(a) false-positive rate: unshifted samples called drift",
        machine,
        fp_header,
        fp_rows,
        fp_notes,
        right={1, 3, 4, 5, 6},
        summary=f"p-value tests within 5% ± 1.5 points: {sum(r['passed'] is True for r in fp_records)} of "
        f"{sum(r['target'] is not None for r in fp_records)} (one binomial standard error is "
        f"{100 * math.sqrt(NOMINAL * (1 - NOMINAL) / n):.2f} points at {n:,} samples)",
    )
    print()
    harness.print_rows(
        "(b) power at equal false-positive rate: shifted pairs called drift, each test at the threshold "
        "(randomised at ties) that makes its own false-positive rate exactly 5% on unshifted pairs; the "
        "shift in the current sample, then in the reference, then the mean of the two",
        None,
        (
            "kind",
            "rows",
            "test",
            "shift",
            "Shipyard: current",
            "reference",
            "mean",
            "Evidently: current",
            "reference",
            "mean",
            "target (mean)",
            "result",
        ),
        power_rows,
        power_notes,
        right={1, 4, 5, 6, 7, 8, 9},
        summary=f"{met}/{aimed} targets met; {clock() - started:.0f} s in all",
    )
    if args.json:
        harness.write_json(
            args.json,
            TITLE,
            [],
            mode=mode,
            seed=args.seed,
            evidently=ev.version,
            rows=records,
            argv=sys.argv[1:],
        )
        progress(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
