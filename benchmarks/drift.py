"""Data drift: Shipyard's ``dataset_drift`` against Evidently's DataDriftPreset, same data, same machine.

    python benchmarks/drift.py [--quick] [--json out.json] [--seed 7] [--evidently-budget 300]

Needs Evidently: ``pip install -e '.[bench]'`` (``evidently`` with ``pandas<3``). Both sides get the same
deterministic data: a reference and a current DataFrame of 20 float columns from varied distributions
(normal, lognormal, uniform, exponential, gamma, Student t, beta, a mixture; scales from 5e-4 to 1e6), where
9 columns are shifted or rescaled in the current sample enough to drift, one only slightly (below the
threshold) and the other 10 not at all.

(a) 2 x 100,000 x 20 (quick: 20,000): wall time, Shipyard median of 3 after one warm-up, Evidently one run
(b) 2 x 1,000,000 x 20 (quick: 200,000): wall time, one run each; Evidently within a time budget
(c), (d) per-column agreement at each size: the test chosen, the drift verdict, and the largest absolute
    difference between the two statistics
(e), (f) test agreement on mixed data: 8 float columns (4 shifted), a 4-level integer column, 4 string
    categorical columns with 3-8 categories (one reweighted, one with a category new in current), 2 binary
    columns (bool, and 0/1 int, shifted); (e) 2 x 800 rows, a small reference (K-S, chi-square, Z-test
    p-values), (f) 2 x 50,000 rows (normalised Wasserstein, Jensen-Shannon); Evidently is told which
    columns are categorical. Same report as (c), (d), plus a per-test breakdown. At 800 rows some unshifted
    columns drift too: by chance (p < 0.05), and more often for Evidently's chi-square, which tests current
    counts against the reference proportions as if these were exact; with samples of equal size that roughly
    doubles the statistic (a 3-category column drifts about 1 time in 4). Shipyard's default ``chisquare`` is
    a two-sample test that does not (``benchmarks/drift_calibration.py``), so in (e) the chi-square columns
    are compared with Shipyard's ``chisquare_evidently`` (Evidently's formula), chosen by name, and a note
    lists where Shipyard's default verdict differs from Evidently's.

Evidently runs in a subprocess (``--worker``) that rebuilds the same data from the seed, imports Evidently
before its timer starts, and is killed when it runs past its budget; a row then says "did not finish in N s"
and no figure is extrapolated. Its timed section is ``Dataset.from_pandas`` for both sides plus
``Report([DataDriftPreset()], include_tests=True).run(...)`` (the tests carry the per-column verdicts);
Shipyard's is one ``dataset_drift(reference_df, current_df)`` call. Progress goes to stderr, the table to
stdout.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import harness
import numpy as np
from harness import Result, clock, progress

TITLE = "Shipyard vs Evidently: data drift, 20 numeric and 15 mixed columns (one machine)"
COLUMNS = 20
SHIPYARD_REPEATS = 3
LARGE_BOUND_S = 5.0  # the bound for Shipyard at 2 x 1,000,000 x 20
MIN_SPEEDUP = 10.0
# Evidently's display names of its stat tests, mapped to Shipyard's StatTest values.
EVIDENTLY_TESTS = {
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "PSI": "psi",
}

Gen = Callable[[np.random.Generator, int], np.ndarray]


def _mixture(weight: float) -> Gen:
    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        return np.where(rng.random(n) < weight, rng.normal(0.0, 1.0, n), rng.normal(4.0, 1.0, n))

    return draw


# name, reference generator, current generator (None: the same as the reference). The comment after each
# drifting column gives its expected normalised Wasserstein distance (threshold 0.1).
SPECS: list[tuple[str, Gen, Gen | None]] = [
    ("normal", lambda r, n: r.normal(0, 1, n), None),
    ("normal_shift", lambda r, n: r.normal(0, 1, n), lambda r, n: r.normal(0.5, 1, n)),  # ~0.5
    ("normal_100", lambda r, n: r.normal(100, 15, n), None),
    ("normal_100_shift", lambda r, n: r.normal(100, 15, n), lambda r, n: r.normal(103, 15, n)),  # ~0.2
    ("lognormal", lambda r, n: r.lognormal(0, 0.5, n), None),
    ("lognormal_wider", lambda r, n: r.lognormal(0, 0.5, n), lambda r, n: r.lognormal(0, 0.8, n)),
    ("uniform", lambda r, n: r.uniform(0, 1, n), None),
    ("uniform_shift", lambda r, n: r.uniform(0, 1, n), lambda r, n: r.uniform(0.15, 1.15, n)),  # ~0.52
    ("exponential", lambda r, n: r.exponential(2, n), None),
    ("exponential_scale", lambda r, n: r.exponential(2, n), lambda r, n: r.exponential(3, n)),  # ~0.5
    ("tiny", lambda r, n: r.normal(0, 5e-4, n), None),  # std below Evidently's 0.001 floor
    ("tiny_shift", lambda r, n: r.normal(0, 5e-4, n), lambda r, n: r.normal(2e-4, 5e-4, n)),  # ~0.2
    ("huge", lambda r, n: r.normal(1e6, 1e5, n), None),
    ("huge_wider", lambda r, n: r.normal(1e6, 1e5, n), lambda r, n: r.normal(1e6, 1.3e5, n)),  # ~0.24
    ("gamma", lambda r, n: r.gamma(2, 1, n), None),
    ("gamma_slight", lambda r, n: r.gamma(2, 1, n), lambda r, n: r.gamma(2, 1, n) + 0.085),  # ~0.06: none
    ("student_t", lambda r, n: r.standard_t(3, n), None),
    ("student_t_shift", lambda r, n: r.standard_t(3, n), lambda r, n: r.standard_t(3, n) + 0.4),  # ~0.23
    ("beta", lambda r, n: r.beta(2, 5, n), None),
    ("mixture_reweighted", _mixture(0.7), _mixture(0.5)),  # ~0.4
]
assert len(SPECS) == COLUMNS


def _categories(*weights: float) -> Gen:
    """Labels "a", "b", ... drawn with these relative weights (a zero weight: a label this side lacks)."""
    labels, p = np.array(list("abcdefgh"[: len(weights)]), dtype=object), np.asarray(weights)

    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.choice(labels, size=n, p=p / p.sum())

    return draw


# (e), (f): the first 8 float columns above plus these; Evidently gets CATEGORICAL as categorical columns,
# the rest as numerical (so "levels_4", 4 distinct integers, is Evidently's numerical-with-few-values case).
MIXED_SPECS: list[tuple[str, Gen, Gen | None]] = [
    *SPECS[:8],
    ("levels_4", lambda r, n: r.integers(1, 5, n), None),
    ("cat_3", _categories(5, 3, 2), None),
    ("cat_5_reweighted", _categories(30, 25, 20, 15, 10), _categories(10, 15, 20, 25, 30)),
    ("cat_8", _categories(*range(8, 0, -1)), None),
    ("cat_4_new_value", _categories(4, 3, 2, 1, 0), _categories(4, 3, 2, 1, 1)),  # "e": current only
    ("binary_bool", lambda r, n: r.random(n) < 0.3, None),
    (
        "binary_01_shift",
        lambda r, n: (r.random(n) < 0.3).astype(int),
        lambda r, n: (r.random(n) < 0.45).astype(int),
    ),
]
CATEGORICAL = ("cat_3", "cat_5_reweighted", "cat_8", "cat_4_new_value", "binary_bool", "binary_01_shift")
DATASETS = {"numeric": SPECS, "mixed": MIXED_SPECS}
MIXED_ROWS = (800, 50_000)  # (e) a reference of at most 1,000 rows, (f) a larger one


def make_data(rows: int, seed: int, dataset: str = "numeric") -> tuple[Any, Any]:
    """The reference and current DataFrames: one independent stream per (column, side), from ``seed``."""
    import pandas as pd

    reference, current = {}, {}
    for index, (name, ref_gen, cur_gen) in enumerate(DATASETS[dataset]):
        reference[name] = ref_gen(np.random.default_rng([seed, index, 0]), rows)
        current[name] = (cur_gen or ref_gen)(np.random.default_rng([seed, index, 1]), rows)
    return pd.DataFrame(reference), pd.DataFrame(current)


def checksum(reference: Any, current: Any) -> int:
    """A figure both processes compute, to show they compared the same data (any column types)."""
    import pandas as pd

    return sum(int(pd.util.hash_pandas_object(df, index=False).sum()) for df in (reference, current))


# ---------------------------------------------------------------------- Evidently, in its own process
def evidently_worker(rows: int, seed: int, dataset: str, out: str) -> int:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")
    import evidently
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    reference, current = make_data(rows, seed, dataset)
    definition = DataDefinition(
        numerical_columns=[c for c in reference.columns if c not in CATEGORICAL],
        categorical_columns=[c for c in reference.columns if c in CATEGORICAL],
    )
    harness.settle()
    start = clock()
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    seconds = clock() - start
    data = snapshot.dict()
    columns: dict[str, dict[str, Any]] = {}
    for metric in data["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            columns[config["column"]] = {
                "test": config["method"],
                "threshold": config["threshold"],
                "statistic": float(metric["value"]),
            }
    for test in data["tests"]:
        params = test.get("metric_config", {}).get("params", {})
        if params.get("type", "").endswith("ValueDrift") and params.get("column") in columns:
            columns[params["column"]]["drift_detected"] = test["status"] == "FAIL"
    result = {
        "seconds": seconds,
        "version": evidently.__version__,
        "checksum": checksum(reference, current),
        "peak_rss_mib": harness.peak_rss_mib(),
        "columns": columns,
    }
    Path(out).write_text(json.dumps(result), encoding="utf-8")
    return 0


def run_evidently(rows: int, seed: int, budget_s: float, dataset: str = "numeric") -> dict[str, Any] | None:
    """Evidently's figures from a subprocess, or None when it ran past ``budget_s`` (then it is killed)."""
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-drift-") as tmp:
        out = Path(tmp) / "evidently.json"
        command = [
            sys.executable,
            __file__,
            "--worker",
            str(rows),
            "--seed",
            str(seed),
            "--worker-data",
            dataset,
            "--worker-out",
            str(out),
        ]
        env = {**os.environ, "MPLBACKEND": "Agg"}
        try:
            done = subprocess.run(command, timeout=budget_s, env=env, capture_output=True, text=True)
        except subprocess.TimeoutExpired:
            return None
        if done.returncode != 0 or not out.exists():
            sys.exit(f"the Evidently worker failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
        return json.loads(out.read_text(encoding="utf-8"))


def checked_evidently(
    key: str, rows: int, seed: int, budget: float, dataset: str, ours: int
) -> dict[str, Any] | None:
    """:func:`run_evidently` with progress lines; exits when the worker built different data."""
    progress(f"({key}) Evidently DataDriftPreset at {rows:,} rows in a subprocess (budget {budget:.0f} s)")
    ev = run_evidently(rows, seed, budget, dataset)
    if ev is None:
        progress(f"    did not finish in {budget:.0f} s")
        return None
    progress(f"    {ev['seconds']:.2f} s (peak RSS {ev['peak_rss_mib']:,.0f} MiB)")
    if ev["checksum"] != ours:
        sys.exit(f"the Evidently worker built different data (checksum {ev['checksum']} != {ours})")
    return ev


# ---------------------------------------------------------------------- Shipyard, in this process
def run_shipyard(
    reference: Any, current: Any, repeats: int, warmup: bool, tests: dict[str, str] | None = None
) -> tuple[list[float], Any]:
    from shipyard.data.drift import dataset_drift

    if warmup:
        dataset_drift(reference, current, tests=tests)
    samples, report = [], None
    for _ in range(repeats):
        harness.settle()
        start = clock()
        report = dataset_drift(reference, current, tests=tests)
        samples.append(clock() - start)
    return samples, report


# ---------------------------------------------------------------------- comparison
def compare(shipyard_report: Any, evidently: dict[str, Any]) -> dict[str, Any]:
    """Per column: same test, same verdict, and the statistics' absolute difference."""
    rows, agree, same_test, max_diff = [], 0, 0, 0.0
    for column in shipyard_report.columns:
        theirs = evidently["columns"].get(column.column)
        if theirs is None:
            rows.append({"column": column.column, "missing_in_evidently": True})
            continue
        their_test = EVIDENTLY_TESTS.get(theirs["test"], theirs["test"])
        diff = abs(column.statistic - theirs["statistic"])
        max_diff = max(max_diff, diff)
        # chisquare_evidently is Evidently's chi-square formula under Shipyard's name
        test_ok = str(column.test).removesuffix("_evidently") == their_test
        verdict_ok = column.drift_detected == theirs.get("drift_detected")
        same_test += test_ok
        agree += test_ok and verdict_ok
        rows.append(
            {
                "column": column.column,
                "shipyard_test": str(column.test),
                "evidently_test": theirs["test"],
                "shipyard_statistic": column.statistic,
                "evidently_statistic": theirs["statistic"],
                "abs_diff": diff,
                "shipyard_drift": column.drift_detected,
                "evidently_drift": theirs.get("drift_detected"),
                "agree": test_ok and verdict_ok,
            }
        )
    return {
        "agree": agree,
        "same_test": same_test,
        "max_abs_diff": max_diff,
        "shipyard_drifted": sum(c.drift_detected for c in shipyard_report.columns),
        "columns": rows,
    }


def time_rows(
    key: str,
    rows: int,
    sy_samples: list[float],
    ev: dict[str, Any] | None,
    budget: float,
    *,
    min_speedup: float | None,
    max_shipyard: float | None,
) -> Result:
    runs = f"median of {len(sy_samples)}" if len(sy_samples) > 1 else "1 run"
    notes = [f"({key}) Shipyard {runs} ({', '.join(f'{s:.3f}' for s in sy_samples)} s); Evidently 1 run"]
    if ev is None:
        notes.append(
            f"({key}) Evidently did not finish in {budget:.0f} s (killed); no figure is extrapolated"
        )
    return Result(
        key=key,
        title=f"dataset drift, 2 x {rows:,} x {COLUMNS}: wall time",
        unit="s",
        higher_is_better=False,
        shipyard=statistics.median(sy_samples),
        peer=None if ev is None else ev["seconds"],
        min_speedup=min_speedup,
        max_shipyard=max_shipyard,
        valid=ev is not None or min_speedup is None,
        notes=tuple(notes),
        details={
            "rows": rows,
            "shipyard_samples_s": sy_samples,
            "evidently_s": None if ev is None else ev["seconds"],
            "evidently_budget_s": budget,
            "evidently_finished": ev is not None,
            "evidently_peak_rss_mib": None if ev is None else ev["peak_rss_mib"],
        },
    )


def by_test(cmp: dict[str, Any]) -> str:
    """The test name mapping and, per test, how many columns use it and the largest statistic difference."""
    diffs: dict[str, list[float]] = {}
    for row in cmp["columns"]:
        if "abs_diff" in row:
            diffs.setdefault(f"{row['shipyard_test']} = {row['evidently_test']}", []).append(row["abs_diff"])
    return "; ".join(f"{name}: {len(d)} columns, max |diff| {max(d):.3g}" for name, d in diffs.items())


def agreement_row(
    key: str, title: str, total: int, cmp: dict[str, Any] | None, budget: float, *extra: str
) -> Result:
    target = f"all {total} agree"
    if cmp is None:
        return Result(
            key=key,
            title=title,
            unit="columns",
            higher_is_better=True,
            shipyard=0,
            valid=False,
            notes=(f"({key}) not compared: Evidently did not finish in {budget:.0f} s",),
            details={"total": total, "target": target, "compared": False},
        )
    notes = [
        f"({key}) {cmp['agree']} of {total} columns agree (same test and verdict); {cmp['same_test']} of "
        f"{total} use the same test; Shipyard finds drift in {cmp['shipyard_drifted']}; max |statistic "
        f"difference| = {cmp['max_abs_diff']:.3g}",
        *(f"({key}) {note}" for note in extra),
    ]
    for row in cmp["columns"]:
        if not row.get("agree"):
            notes.append(f"({key}) disagreement on {row['column']}: {row}")
    return Result(
        key=key,
        title=title,
        unit="columns",
        higher_is_better=True,
        shipyard=cmp["agree"],
        valid=cmp["agree"] == total,
        notes=tuple(notes),
        details={"total": total, "target": target, "compared": True, **cmp},
    )


def print_table(title: str, results: Sequence[Result], machine: str) -> None:
    """Like harness.print_table, with Evidently as the peer and the agreement rows as 'k of n agree'."""
    header = ("", "benchmark", "Shipyard", "Evidently", "Shipyard vs Evidently", "target", "result")
    rows: list[tuple[str, ...]] = []
    footnotes: list[str] = []
    for r in results:
        marks = harness.note_marks(r.notes, footnotes)
        if r.unit == "columns":
            compared = r.details.get("compared")
            cells = (
                f"{r.shipyard:.0f} of {r.details['total']} agree" if compared else "-",
                "-",
                "-",
                r.details["target"],
            )
            outcome = "PASS" if r.valid else ("MISS" if compared else "NOT COMPARED")
        else:
            peer = harness.format_value(r.peer, r.unit) if r.peer is not None else "did not finish"
            shown = harness.format_value(r.shipyard, r.unit)
            cells = (shown, peer, harness.verdict(r), r.target)
            outcome = ("PASS" if r.passed else "MISS") if r.has_target else "-"
        rows.append((f"({r.key})", r.title + marks, *cells, outcome))
    aimed = [r for r in results if r.unit == "columns" or r.has_target]
    met = sum(r.valid if r.unit == "columns" else r.passed for r in aimed)
    harness.print_rows(
        title, machine, header, rows, footnotes, right={2, 3, 4}, summary=f"{met}/{len(aimed)} targets met"
    )


# ---------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7, help="data seed (7)")
    parser.add_argument(
        "--evidently-budget",
        type=float,
        metavar="S",
        help="Evidently's time limit per size (300; quick: 120)",
    )
    parser.add_argument("--worker", type=int, metavar="ROWS", help=argparse_hidden())
    parser.add_argument("--worker-data", choices=sorted(DATASETS), default="numeric", help=argparse_hidden())
    parser.add_argument("--worker-out", help=argparse_hidden())
    args = parser.parse_args(argv)
    if args.worker:
        return evidently_worker(args.worker, args.seed, args.worker_data, args.worker_out)

    small, large = (20_000, 200_000) if args.quick else (100_000, 1_000_000)
    budget = args.evidently_budget or (120.0 if args.quick else 300.0)
    mode = "quick" if args.quick else "full"
    progress(f"{mode} mode: 2 x {small:,} and 2 x {large:,} rows x {COLUMNS} columns, seed {args.seed}")
    results, comparisons, evidently_version = [], [], None
    for key, rows, repeats in (("a", small, SHIPYARD_REPEATS), ("b", large, 1)):
        reference, current = make_data(rows, args.seed)
        progress(
            f"({key}) Shipyard: {'1 warm-up + ' if repeats > 1 else ''}{repeats} timed run(s) at {rows:,}"
        )
        samples, report = run_shipyard(reference, current, repeats, warmup=repeats > 1)
        progress(
            f"    {', '.join(f'{s:.3f}' for s in samples)} s; {sum(c.drift_detected for c in report.columns)}"
            f" columns drift"
        )
        ours = checksum(reference, current)
        del reference, current
        ev = checked_evidently(key, rows, args.seed, budget, "numeric", ours)
        evidently_version = evidently_version if ev is None else ev["version"]
        if key == "a":
            results.append(
                time_rows(key, rows, samples, ev, budget, min_speedup=MIN_SPEEDUP, max_shipyard=None)
            )
        else:
            bound = None if args.quick else LARGE_BOUND_S  # the bound is for 1,000,000 rows
            results.append(time_rows(key, rows, samples, ev, budget, min_speedup=None, max_shipyard=bound))
        comparisons.append((rows, None if ev is None else compare(report, ev)))
    for key, (rows, cmp) in zip(("c", "d"), comparisons, strict=True):
        title = f"per-column verdicts, 2 x {rows:,} x {COLUMNS}"
        results.append(agreement_row(key, title, COLUMNS, cmp, budget))
    for key, rows in zip(("e", "f"), MIXED_ROWS, strict=True):
        reference, current = make_data(rows, args.seed, "mixed")
        progress(
            f"({key}) test agreement: Shipyard, 1 run at 2 x {rows:,} x {len(MIXED_SPECS)} mixed columns"
        )
        _, default = run_shipyard(reference, current, 1, warmup=False)
        chi_square = {c.column: "chisquare_evidently" for c in default.columns if c.test == "chisquare"}
        samples, report = run_shipyard(reference, current, 1, warmup=False, tests=chi_square)
        ev = checked_evidently(key, rows, args.seed, budget, "mixed", checksum(reference, current))
        evidently_version = evidently_version if ev is None else ev["version"]
        cmp = None if ev is None else compare(report, ev)
        tests = ", ".join(sorted({c.test for c in report.columns}))
        title = f"per-column tests, 2 x {rows:,} x {len(MIXED_SPECS)} mixed ({tests})"
        extra: list[str] = []
        if ev is not None and cmp is not None:
            extra.append(by_test(cmp))
            drifted = [c.column for c in report.columns if c.drift_detected]
            unshifted = [name for name, _, cur_gen in MIXED_SPECS if cur_gen is None and name in drifted]
            shown = ", ".join(unshifted) or "-"
            chosen = " (chi-square columns as chisquare_evidently)" if chi_square else ""
            extra.append(f"drift found by Shipyard{chosen} in: {', '.join(drifted)}; not shifted: {shown}")
            extra.append(
                f"wall time, 1 run each: Shipyard {samples[0]:.3f} s, Evidently {ev['seconds']:.2f} s"
            )
            if chi_square:
                differ = [
                    f"{c.column} (Shipyard: {'drift' if c.drift_detected else 'none'}, p = {c.statistic:.3g})"
                    for c in default.columns
                    if c.column in chi_square
                    and c.drift_detected != ev["columns"].get(c.column, {}).get("drift_detected")
                ]
                extra.append(
                    f"chi-square columns ({', '.join(chi_square)}) compared as chisquare_evidently; "
                    f"Shipyard's default two-sample chisquare differs from Evidently's verdict on: "
                    f"{', '.join(differ) or '-'}"
                )
        results.append(agreement_row(key, title, len(MIXED_SPECS), cmp, budget, *extra))

    info = harness.machine_info(("shipyard", "evidently", "pandas", "numpy", "scipy"))
    print_table(f"{TITLE}, {mode} mode", results, harness.machine_line(info))
    if args.json:
        harness.write_json(
            args.json,
            TITLE,
            results,
            mode=mode,
            seed=args.seed,
            evidently=evidently_version,
            argv=list(sys.argv[1:]),
        )
        progress(f"wrote {args.json}")
    return 0


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
