"""Tracking throughput and search latency: Shipyard against MLflow 3, side by side in one process.

    python benchmarks/tracking.py [--quick] [--json out.json] [--scale-runs 100000] [--keep]

Needs MLflow: ``pip install -e '.[bench]'``. Each system gets its own embedded SQLite store in a fresh
temporary folder; both run on the same machine, in the same process, one after the other per row:

(a) 10,000 ``log_metric`` calls one by one, then flushed (MLflow's ``log_metric`` is synchronous) — points/s
(b) 1,000,000 points through batch logging in chunks of 1,000 (MLflow's most per ``log_batch``) — points/s
(c) 1,000 runs with 10 params and 5 metrics each, ended — runs/s
(d) ``metrics.m0 > 0.5`` ordered by ``metrics.m0`` desc, 100 results, over those runs — median ms
(e) Shipyard only: the same search over ``--scale-runs`` runs — median ms against a fixed bound

Every loop is bounded in time: where MLflow would run past its budget, fewer calls are measured, the rate is
computed from what was measured, and the table says so. Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness
from harness import Result, clock, progress

import shipyard

TITLE = "Shipyard vs MLflow 3: experiment tracking (embedded SQLite, one process)"
EXP_METRICS = "bench-metrics"
EXP_RUNS = "bench-runs"
EXP_SCALE = "bench-scale"
FILTER = "metrics.m0 > 0.5"
ORDER_SHIPYARD = ["metrics.m0 desc"]
ORDER_MLFLOW = ["metrics.m0 DESC"]
MAX_RESULTS = 100
CHUNK = 1000  # MLflow's MAX_METRICS_PER_BATCH


@dataclass(frozen=True)
class Plan:
    """Sizes and time budgets of one benchmark run."""

    quick: bool
    single_points: int = 10_000
    single_budget_s: float = 120.0
    batch_points: int = 1_000_000
    batch_budget_s: float = 900.0  # hard stop for MLflow's batch loop
    batch_reduced_points: int | None = None  # MLflow's size when its estimate exceeds batch_reduce_above_s
    batch_reduce_above_s: float = 60.0
    runs: int = 1000
    runs_budget_s: float = 600.0
    search_repeats: int = 20
    single_rounds: int = 5  # Shipyard's (a) takes milliseconds: the median of a few fresh runs
    batch_rounds: int = 3
    scale_runs: int = 100_000
    scale_budget_s: float = 1200.0
    scale_bound_ms: float = 50.0

    @classmethod
    def for_args(cls, quick: bool, scale_runs: int | None) -> Plan:
        if quick:
            return cls(
                quick=True,
                single_budget_s=30.0,
                batch_budget_s=120.0,
                batch_reduced_points=100_000,
                runs_budget_s=180.0,
                scale_runs=scale_runs or 10_000,
                scale_budget_s=300.0,
            )
        return cls(quick=False, scale_runs=scale_runs or 100_000)


# ---------------------------------------------------------------------- the two systems
class ShipyardSide:
    """Shipyard on its own store under ``home``; runs go through the public fluent API."""

    def __init__(self, home: Path) -> None:
        self.settings = shipyard.Settings.load(environ={"SHIPYARD_HOME": str(home)}, cwd=home)
        self.client = shipyard.get_client(self.settings)
        self.name_clashes = 0  # start_run() without a name that raised AlreadyExists (retried)
        for name in (EXP_METRICS, EXP_RUNS):
            self.client.get_or_create_experiment(name)  # store migrated and experiments made before timing

    def start_run(self, experiment: str) -> shipyard.ActiveRun:
        return shipyard.start_run(experiment=experiment, settings=self.settings)

    def create_run(self, experiment: str, params: dict[str, str], metrics: dict[str, float]) -> None:
        for attempt in range(3):
            try:
                run = shipyard.start_run(experiment=experiment, settings=self.settings)
                break
            except shipyard.AlreadyExists:
                # NOTE: a generated run name that clashes is a Shipyard bug; count it, say so, go on.
                self.name_clashes += 1
                if attempt == 2:
                    raise
        with run:
            run.log_params(params)
            run.log_metrics(metrics)

    def search(self, experiment: str) -> list[float]:
        found = self.client.search_runs(experiment, FILTER, order_by=ORDER_SHIPYARD, max_results=MAX_RESULTS)
        return [run.metrics["m0"] for run in found]


class MlflowSide:
    """MLflow 3 on its own SQLite store and artifact folder under ``home``."""

    def __init__(self, home: Path) -> None:
        # NOTE: MLflow reads these when imported, so they are set first and mlflow is imported here.
        os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
        os.environ["DO_NOT_TRACK"] = "true"
        os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{home / 'mlflow.db'}"
        try:
            import mlflow
            from mlflow import MlflowClient
            from mlflow.entities import Metric
        except ModuleNotFoundError as exc:
            sys.exit(f"MLflow is not installed ({exc}); install the peers with: pip install -e '.[bench]'")
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self.mlflow = mlflow
        self.Metric = Metric
        mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
        self.client = MlflowClient()
        artifacts = (home / "artifacts").as_uri()
        self.experiment_ids = {
            name: mlflow.create_experiment(name, artifact_location=f"{artifacts}/{name}")
            for name in (EXP_METRICS, EXP_RUNS)
        }

    def start_run(self, experiment: str) -> Any:
        return self.mlflow.start_run(experiment_id=self.experiment_ids[experiment])

    def create_run(self, experiment: str, params: dict[str, str], metrics: dict[str, float]) -> None:
        with self.mlflow.start_run(experiment_id=self.experiment_ids[experiment]):
            self.mlflow.log_params(params)
            self.mlflow.log_metrics(metrics)

    def search(self, experiment: str) -> list[float]:
        frame = self.mlflow.search_runs(
            experiment_ids=[self.experiment_ids[experiment]],
            filter_string=FILTER,
            order_by=ORDER_MLFLOW,
            max_results=MAX_RESULTS,
        )
        return [float(v) for v in frame["metrics.m0"]] if len(frame) else []


# ---------------------------------------------------------------------- data
def run_payload(rng: random.Random, index: int) -> tuple[dict[str, str], dict[str, float]]:
    params = {f"p{j}": f"value-{index}-{j}" for j in range(10)}
    metrics = {f"m{j}": rng.random() for j in range(5)}
    return params, metrics


def clash_note(row: str, clashes: int) -> str:
    return (
        f"({row}) Shipyard BUG: start_run() raised AlreadyExists {clashes:,} time(s) for a generated run "
        "name that was already taken in the experiment; the benchmark retried"
    )


def expected_top(m0_values: Sequence[float]) -> list[float]:
    return sorted((v for v in m0_values if v > 0.5), reverse=True)[:MAX_RESULTS]


def point_value(step: int) -> float:
    return 1.0 / (1.0 + step)


# ---------------------------------------------------------------------- (a) single log_metric calls
def bench_single(sy: ShipyardSide, ml: MlflowSide, plan: Plan) -> Result:
    n = plan.single_points
    progress(f"(a) Shipyard: {n:,} log_metric calls, then flush; median of {plan.single_rounds} fresh runs")
    sy_samples = []
    for _ in range(plan.single_rounds):
        with sy.start_run(EXP_METRICS) as run:
            harness.settle()
            start = clock()
            for step in range(n):
                run.log_metric("loss", point_value(step), step=step)
            run.flush()
            sy_samples.append(clock() - start)
    sy_seconds = statistics.median(sy_samples)
    sy_rate = n / sy_seconds

    progress(f"(a) MLflow: {n:,} mlflow.log_metric calls (synchronous), budget {plan.single_budget_s:.0f} s")
    done = 0
    with ml.start_run(EXP_METRICS):
        harness.settle()
        start = last_report = clock()
        for step in range(n):
            ml.mlflow.log_metric("loss", point_value(step), step=step)
            done += 1
            if done % 100 == 0:
                now = clock()
                if now - start > plan.single_budget_s:
                    break
                if now - last_report > 10:
                    last_report = now
                    progress(f"    MLflow: {done:,}/{n:,} calls, {done / (now - start):,.0f} points/s")
        ml_seconds = clock() - start
    notes = [f"(a) Shipyard: median of {plan.single_rounds} fresh runs; MLflow: one run"]
    if done < n:
        notes.append(
            f"MLflow (a): {done:,} of {n:,} calls measured within the {plan.single_budget_s:.0f} s budget; "
            "points/s computed from those"
        )
    return Result(
        key="a",
        title=f"log_metric x{n:,} one by one + flush",
        unit="points/s",
        higher_is_better=True,
        shipyard=sy_rate,
        peer=done / ml_seconds,
        min_speedup=1000,
        notes=tuple(notes),
        details={
            "shipyard_points": n,
            "shipyard_s": sy_seconds,
            "shipyard_rounds_s": sy_samples,
            "mlflow_points": done,
            "mlflow_s": ml_seconds,
        },
    )


# ---------------------------------------------------------------------- (b) batch logging
def bench_batch(sy: ShipyardSide, ml: MlflowSide, plan: Plan) -> Result:
    n = plan.batch_points
    chunks = [[("x", point_value(s), s) for s in range(c, min(c + CHUNK, n))] for c in range(0, n, CHUNK)]
    progress(
        f"(b) Shipyard: {n:,} points, run.log_batch in chunks of {CHUNK:,}, then flush; x{plan.batch_rounds}"
    )
    sy_samples = []
    for _ in range(plan.batch_rounds):
        with sy.start_run(EXP_METRICS) as run:
            harness.settle()
            start = clock()
            for chunk in chunks:
                run.log_batch(chunk)
            run.flush()
            sy_samples.append(clock() - start)
    sy_seconds = statistics.median(sy_samples)
    del chunks

    notes = [f"(b) Shipyard: median of {plan.batch_rounds} fresh runs; MLflow: one run, only its calls timed"]
    with ml.start_run(EXP_METRICS) as active:
        run_id = active.info.run_id
        timestamp = int(time.time() * 1000)
        elapsed = 0.0
        done = 0

        def log_chunk() -> None:
            nonlocal elapsed, done
            metrics = [ml.Metric("x", point_value(s), timestamp, s) for s in range(done, done + CHUNK)]
            start = clock()  # only the call is timed: MLflow logs synchronously
            ml.client.log_batch(run_id, metrics=metrics)
            elapsed += clock() - start
            done += CHUNK

        target = n
        progress(f"(b) MLflow: MlflowClient.log_batch in chunks of {CHUNK:,}; estimating from 10 chunks")
        harness.settle()
        for _ in range(10):
            log_chunk()
        estimate = elapsed / done * n
        if plan.batch_reduced_points is not None and estimate > plan.batch_reduce_above_s:
            target = plan.batch_reduced_points
            notes.append(
                f"MLflow (b), quick mode: {n:,} points would take ~{estimate:,.0f} s; {target:,} were logged"
            )
        progress(f"    MLflow: ~{estimate:,.0f} s for {n:,} points; logging {target:,}")
        last_report = clock()
        while done < target and elapsed < plan.batch_budget_s:
            log_chunk()
            if clock() - last_report > 10:
                last_report = clock()
                progress(f"    MLflow: {done:,}/{target:,} points, {done / elapsed:,.0f} points/s")
    if done < target:
        notes.append(
            f"MLflow (b): {done:,} of {target:,} points logged within the {plan.batch_budget_s:.0f} s "
            "budget; points/s computed from those"
        )
    return Result(
        key="b",
        title=f"log_batch {n:,} points (chunks of {CHUNK:,}) + flush",
        unit="points/s",
        higher_is_better=True,
        shipyard=n / sy_seconds,
        peer=done / elapsed,
        min_speedup=50,
        notes=tuple(notes),
        details={
            "shipyard_points": n,
            "shipyard_s": sy_seconds,
            "shipyard_rounds_s": sy_samples,
            "mlflow_points": done,
            "mlflow_s": elapsed,
        },
    )


# ---------------------------------------------------------------------- (c) runs, (d) search
def create_runs(
    create: Callable[[str, dict[str, str], dict[str, float]], None],
    experiment: str,
    count: int,
    budget_s: float,
    label: str,
) -> tuple[int, float, list[float]]:
    """Create up to ``count`` runs within ``budget_s``; returns (created, seconds, m0 of each run)."""
    rng = random.Random(42)
    m0_values = []
    harness.settle()
    start = last_report = clock()
    created = 0
    for index in range(count):
        params, metrics = run_payload(rng, index)
        create(experiment, params, metrics)
        m0_values.append(metrics["m0"])
        created += 1
        if created % 100 == 0:
            now = clock()
            if now - start > budget_s:
                break
            if now - last_report > 5:
                last_report = now
                rate = created / (now - start)
                left = (count - created) / rate
                progress(f"    {label}: {created:,}/{count:,} runs, {rate:,.0f} runs/s, ~{left:,.0f} s left")
    return created, clock() - start, m0_values


def bench_runs_and_search(sy: ShipyardSide, ml: MlflowSide, plan: Plan) -> list[Result]:
    n = plan.runs
    progress(f"(c) Shipyard: {n:,} runs with 10 params and 5 metrics each")
    sy_done, sy_seconds, m0_values = create_runs(sy.create_run, EXP_RUNS, n, plan.runs_budget_s, "Shipyard")
    progress(f"(c) MLflow: {n:,} runs with 10 params and 5 metrics each")
    ml_done, ml_seconds, ml_m0 = create_runs(ml.create_run, EXP_RUNS, n, plan.runs_budget_s, "MLflow")
    notes_c = []
    if ml_done < n or sy_done < n:
        notes_c.append(
            f"(c) stopped at the {plan.runs_budget_s:.0f} s budget: Shipyard made {sy_done:,}, "
            f"MLflow {ml_done:,} runs"
        )
    if sy.name_clashes:
        notes_c.append(clash_note("c", sy.name_clashes))
    runs_row = Result(
        key="c",
        title=f"create {n:,} runs (10 params + 5 metrics) and end them",
        unit="runs/s",
        higher_is_better=True,
        shipyard=sy_done / sy_seconds,
        peer=ml_done / ml_seconds,
        min_speedup=20,
        notes=tuple(notes_c),
        details={
            "shipyard_runs": sy_done,
            "shipyard_s": sy_seconds,
            "mlflow_runs": ml_done,
            "mlflow_s": ml_seconds,
        },
    )

    progress(f"(d) search over {n:,} runs: 1 warm-up + {plan.search_repeats} timed calls each")
    sy_ms, sy_samples = harness.median_ms(lambda: sy.search(EXP_RUNS), repeats=plan.search_repeats)
    ml_ms, ml_samples = harness.median_ms(lambda: ml.search(EXP_RUNS), repeats=plan.search_repeats)
    notes_d = [f"(d) {FILTER!r}, order by metrics.m0 desc, max {MAX_RESULTS}; MLflow's answer is a DataFrame"]
    valid = True
    for label, side, values in (("Shipyard", sy, m0_values), ("MLflow", ml, ml_m0)):
        found = side.search(EXP_RUNS)
        if found != expected_top(values):
            valid = False
            notes_d.append(f"(d) {label} returned wrong results: {len(found)} runs, first {found[:3]}")
    search_row = Result(
        key="d",
        title=f"search_runs over {n:,} runs, median of {plan.search_repeats}",
        unit="ms",
        higher_is_better=False,
        shipyard=sy_ms,
        peer=ml_ms,
        min_speedup=10,
        valid=valid,
        notes=tuple(notes_d),
        details={"shipyard_samples_ms": sy_samples, "mlflow_samples_ms": ml_samples},
    )
    return [runs_row, search_row]


# ---------------------------------------------------------------------- (e) search at scale, Shipyard only
def bench_scale(home: Path, plan: Plan) -> Result:
    n = plan.scale_runs
    sy = ShipyardSide(home)
    progress(f"(e) Shipyard: creating {n:,} runs through the public API (budget {plan.scale_budget_s:.0f} s)")
    done, seconds, m0_values = create_runs(sy.create_run, EXP_SCALE, n, plan.scale_budget_s, "Shipyard")
    progress(f"    created {done:,} runs in {seconds:,.1f} s ({done / seconds:,.0f} runs/s); searching")
    ms, samples = harness.median_ms(lambda: sy.search(EXP_SCALE), repeats=plan.search_repeats)
    found = sy.search(EXP_SCALE)
    notes = [f"(e) Shipyard only; the bound to beat is {plan.scale_bound_ms:g} ms at {n:,} runs"]
    valid = found == expected_top(m0_values) and done == n
    if done < n:
        notes.append(f"(e) only {done:,} of {n:,} runs were made within {plan.scale_budget_s:.0f} s: no pass")
    if found != expected_top(m0_values):
        notes.append(f"(e) Shipyard returned wrong results: {len(found)} runs, first {found[:3]}")
    if sy.name_clashes:
        notes.append(clash_note("e", sy.name_clashes))
    return Result(
        key="e",
        title=f"search_runs over {done:,} runs (Shipyard only), median of {plan.search_repeats}",
        unit="ms",
        higher_is_better=False,
        shipyard=ms,
        max_shipyard=plan.scale_bound_ms,
        valid=valid,
        notes=tuple(notes),
        details={"runs": done, "create_s": seconds, "samples_ms": samples},
    )


# ---------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--scale-runs", type=int, metavar="N", help="runs in row (e) (100,000; quick: 10,000)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores, and say where")
    args = parser.parse_args(argv)
    plan = Plan.for_args(args.quick, args.scale_runs)
    root = Path(tempfile.mkdtemp(prefix="shipyard-bench-tracking-"))
    progress(f"stores under {root}; {'quick' if plan.quick else 'full'} mode")
    try:
        sy = ShipyardSide(root / "shipyard")
        ml = MlflowSide(root / "mlflow")
        results = [bench_single(sy, ml, plan), bench_batch(sy, ml, plan)]
        results += bench_runs_and_search(sy, ml, plan)
        results.append(bench_scale(root / "shipyard-scale", plan))
    finally:
        if args.keep:
            progress(f"kept the stores under {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    info = harness.machine_info()
    mode = "quick" if plan.quick else "full"
    harness.print_table(f"{TITLE}, {mode} mode", results, machine=harness.machine_line(info))
    if args.json:
        harness.write_json(args.json, TITLE, results, mode=mode, argv=list(sys.argv[1:]))
        progress(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
