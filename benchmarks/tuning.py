"""Hyperparameter tuning: Shipyard's ``tune`` against plain Optuna, side by side in one run.

    python benchmarks/tuning.py [--quick] [--json out.json] [--profile] [--keep] [--sections 123]

Needs Optuna (a Shipyard dependency) and scikit-learn (``pip install -e '.[bench]'``). Shipyard asks Optuna
for every trial with the spec's sampler and seed, so both sides get the same sampler at the same seed; each
section runs Shipyard on its own store in a fresh temporary folder (created before the clock starts), and
plain Optuna with its default in-memory storage unless a row says otherwise.

(1) Same search, same result: GradientBoostingClassifier on load_breast_cancer, 3-fold CV accuracy (fixed
    split and model seeds), learning_rate (log 0.01-0.5), n_estimators (20-150), max_depth (2-5), subsample
    (0.5-1.0); TPE seed 0 for 30 trials (quick: 10): plain ``study.optimize`` against ``tune`` with
    ``algorithm: {name: tpe, seed: 0}``, ``parallel_trials: 1``. Best score, wall time, and whether the
    sequences of suggested parameters are identical.
(2) Per-trial overhead: ``-(x - 2)**2`` of one float, RandomSampler(seed=0) on both sides, 300 trials
    (quick: 100); overhead = (t_shipyard - t_optuna) / N with Shipyard's defaults (journal file study, a
    parent run and one nested tracked run per trial on SQLite) against in-memory Optuna. For context, plain
    Optuna on a JournalFileBackend and on ``sqlite:///`` RDB storage, and the tracking calls Shipyard makes
    per trial timed alone.
(3) Parallel speedup: 12 trials (quick: 6) of fixed single-threaded CPU work (~1.5 s of 256 x 256 matrix
    products, BLAS/OpenMP limited to one thread through the environment, set before NumPy loads and before
    the worker processes start), ``parallel_trials: 1`` against ``2`` (worker processes), RandomSampler
    seed 0. Speedup = t1 / t2, worker start-up included: the first p=2 search in the process starts the
    workers (~0.4 s before its first trial), the second finds them warm (the pool outlives a search); Shipyard
    runs p=1, p=2, p=2, p=1 and each t is a mean of two (the machine's speed drifts; this cancels a steady
    drift), so t2 is the mean of a cold and a warm start.
    Plain Optuna's ``optimize(n_jobs=1 | 2)`` (threads) alongside, and for context the machine's ceiling:
    the same work in a warm 2-process pool without either system, against the same work run serially.

The trial functions live in ``tuning_trials.py`` (worker processes import them by module name). Every loop
is bounded in count and in time; a row that measured fewer trials than planned says so. The machine may be
shared: before each section the script waits (at most 20 s; quick: 10 s) for other processes to leave the
CPUs idle (1 s samples of /proc/stat), and a footnote says when they did not. Progress goes to stderr, the
table to stdout; the exit status is 0 whatever the figures (missed targets are printed).
"""

from __future__ import annotations

import cProfile
import json
import logging
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import harness
from harness import busy_text, clock, other_cpu_busy, progress, wait_for_idle

HERE = Path(__file__).resolve().parent
TITLE = "Shipyard vs Optuna: hyperparameter tuning (same sampler, same seed, one machine)"
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
MAX_OVERHEAD_MS = 10.0
MIN_PARALLEL_SPEEDUP = 1.7
CPU_TRIAL_S = 1.5


@dataclass(frozen=True)
class Plan:
    quick: bool
    search_trials: int = 30
    overhead_trials: int = 300
    parallel_trials: int = 12
    search_budget_s: float = 150.0  # per side of (1)
    loop_budget_s: float = 60.0  # per timed loop of (2) and (3)
    profile_trials: int = 100
    idle_wait_s: float = 20.0  # before each section: wait (at most this) for other processes to go quiet

    @classmethod
    def for_args(cls, quick: bool) -> Plan:
        if quick:
            return cls(
                quick=True,
                search_trials=10,
                overhead_trials=100,
                parallel_trials=6,
                search_budget_s=60.0,
                idle_wait_s=10.0,
            )
        return cls(quick=False)


@dataclass(frozen=True)
class Row:
    """One table row. ``passed`` is None for a row shown for context (no target of its own)."""

    key: str
    title: str
    unit: str
    shipyard: float | None
    optuna: float | None = None
    ratio: str = "-"
    target: str = "-"
    passed: bool | None = None
    notes: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------- setup
def single_thread() -> None:
    """One BLAS/OpenMP thread here and in every process started from here (before NumPy loads)."""
    for var in THREAD_VARS:
        os.environ[var] = "1"


def importable_trials() -> None:
    """``tuning_trials`` importable here, in the fork server and in its workers (as pipelines.py does)."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))


def busy_note(busy: float | None, threshold: float = 0.3) -> list[str]:
    if busy is None or busy <= threshold:
        return []
    return [
        f"other processes kept {busy_text(busy)} busy as this section began (the machine is shared; the "
        "figures are slowed by it)"
    ]


def fresh_settings(root: Path, name: str) -> Any:
    """Settings on a new store under ``root/name`` (created now, so no timed section pays for it)."""
    from shipyard.config import Settings
    from shipyard.tracking import get_client

    home = root / name / "home"
    home.parent.mkdir(parents=True, exist_ok=True)
    settings = Settings.load(environ={"SHIPYARD_HOME": str(home)}, cwd=home.parent)
    get_client(settings)
    return settings


def spec(name: str, parameters: list[dict[str, Any]], algorithm: str, trials: int, **extra: Any) -> dict:
    return {
        "name": name,
        "objective": {"metric": "score", "direction": "maximize"},
        "parameters": parameters,
        "algorithm": {"name": algorithm, "seed": 0},
        "max_trials": trials,
        "parallel_trials": 1,
        "experiment": "bench-tuning",
        **extra,
    }


X_PARAM = {"name": "x", "type": "float", "low": -10.0, "high": 10.0}


def warm_up(root: Path) -> None:
    """Imports, SQLAlchemy/pydantic first-use costs and the breast_cancer data, outside the timed sections."""
    import optuna
    import tuning_trials as trials

    from shipyard.tuning import tune

    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(trials.quadratic_objective, n_trials=3)
    tune(
        spec("warmup", [X_PARAM], "random", 3),
        trials.quadratic_trial,
        settings=fresh_settings(root, "warmup"),
    )
    trials.gbc_accuracy({"learning_rate": 0.1, "n_estimators": 20, "max_depth": 2, "subsample": 0.8})


# ---------------------------------------------------------------------- (1) same search, same result
def bench_search(root: Path, plan: Plan) -> list[Row]:
    import optuna
    import tuning_trials as trials

    from shipyard.tuning import tune

    n = plan.search_trials
    busy = wait_for_idle("1", plan.idle_wait_s)
    progress(f"(1) plain Optuna: TPE seed 0, {n} trials of 3-fold CV GradientBoostingClassifier")
    harness.settle()
    start = clock()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(trials.gbc_objective, n_trials=n, timeout=plan.search_budget_s)
    t_optuna = clock() - start
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    optuna_params = [dict(t.params) for t in done]
    optuna_values = [float(t.value) for t in done]
    progress(f"    {t_optuna:.2f} s, {len(done)} trials, best {study.best_value:.4f}")

    settings = fresh_settings(root, "search")
    progress(f"(1) Shipyard: tune(), algorithm tpe seed 0, parallel_trials 1, {n} trials")
    harness.settle()
    start = clock()
    result = tune(
        spec("gbc", trials.GBC_SPACE, "tpe", n, timeout_s=plan.search_budget_s),
        trials.gbc_trial,
        settings=settings,
    )
    t_shipyard = clock() - start
    records = sorted((r for r in result.trials if r.state == "COMPLETE"), key=lambda r: r.number)
    shipyard_params = [dict(r.params) for r in records]
    shipyard_values = [float(r.value) for r in records if r.value is not None]
    best = result.best_value
    progress(f"    {t_shipyard:.2f} s, {len(records)} trials, best {best if best is None else f'{best:.4f}'}")

    compared = min(len(optuna_params), len(shipyard_params))
    first_diff = next(
        (i for i in range(compared) if optuna_params[i] != shipyard_params[i]),
        None,
    )
    same_params = first_diff is None and len(optuna_params) == len(shipyard_params) == n
    same_values = optuna_values == shipyard_values
    notes = []
    if same_params:
        sequence = f"identical: all {n} suggested parameter sets are equal, in order"
    elif first_diff is not None:
        sequence = (
            f"NOT identical: trial {first_diff} differs (Optuna {optuna_params[first_diff]}, "
            f"Shipyard {shipyard_params[first_diff]})"
        )
    else:
        sequence = (
            f"identical over the first {compared} trials, but Optuna ran {len(optuna_params)} and Shipyard "
            f"{len(shipyard_params)} of {n} (time budget {plan.search_budget_s:.0f} s)"
        )
    notes.append(f"suggested parameters: {sequence}; objective values {'equal' if same_values else 'DIFFER'}")
    if not same_values and compared:
        worst = max(abs(a - b) for a, b in zip(optuna_values, shipyard_values, strict=False))
        notes.append(f"largest difference between the two sides' trial values: {worst:.3g}")
    rows = [
        Row(
            "1a",
            f"best 3-fold CV accuracy, TPE seed 0, {n} trials",
            "accuracy",
            best,
            float(study.best_value),
            ratio="same" if best == study.best_value else f"{(best or 0) - study.best_value:+.4f}",
            target="same params, same best",
            passed=same_params and same_values and best == study.best_value,
            notes=tuple(notes + busy_note(busy)),
            details={
                "other_busy": busy,
                "optuna_params": optuna_params,
                "shipyard_params": shipyard_params,
                "optuna_values": optuna_values,
                "shipyard_values": shipyard_values,
                "first_difference": first_diff,
            },
        ),
        Row(
            "1b",
            f"wall time, {n} GBC trials",
            "s",
            t_shipyard,
            t_optuna,
            ratio=times_ratio(t_shipyard, t_optuna),
            notes=(
                "Shipyard: the whole tune() call (parent run, journal-file study, a nested run per trial, "
                "its end-of-run artifacts and report); Optuna: create_study + optimize, in memory",
            ),
        ),
    ]
    return rows


# ---------------------------------------------------------------------- (2) per-trial overhead
def optuna_loop(n: int, budget_s: float, storage: Any = None) -> tuple[float, int]:
    """create_study + optimize of the trivial objective; (seconds, trials done)."""
    import optuna
    import tuning_trials as trials

    harness.settle()
    start = clock()
    if callable(storage):
        storage = storage()
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0), storage=storage
    )
    study.optimize(trials.quadratic_objective, n_trials=n, timeout=budget_s)
    return clock() - start, len(study.trials)


def shipyard_loop(settings: Any, n: int, budget_s: float) -> tuple[float, int, Any]:
    import tuning_trials as trials

    from shipyard.tuning import tune

    harness.settle()
    start = clock()
    result = tune(
        spec("quadratic", [X_PARAM], "random", n, timeout_s=budget_s),
        trials.quadratic_trial,
        settings=settings,
    )
    return clock() - start, len(result.trials), result


def tracking_loop(settings: Any, n: int, budget_s: float) -> tuple[float, int]:
    """The tracking calls Shipyard's tuning makes per trial, alone: a nested run with two tags, its params,
    the objective metric and the state tag; the parent's best-so-far metric and tag."""
    from shipyard.tracking import start_run

    harness.settle()
    start = clock()
    done = 0
    with start_run("bench-tracking", "parent", log_system_metrics=False, settings=settings) as parent:
        for i in range(n):
            x = (i % 21) - 10.0
            tags = {"shipyard.tuning.parent": parent.run_id, "shipyard.tuning.trial": f"{parent.run_id}:{i}"}
            with start_run(
                "bench-tracking",
                f"parent-trial-{i}",
                parent=parent.run_id,
                tags=tags,
                log_system_metrics=False,
                settings=settings,
            ) as run:
                run.log_params({"x": x})
                run.log_metrics({"score": -((x - 2.0) ** 2)}, step=0)
                run.set_tag("shipyard.tuning.state", "COMPLETE")
            parent.log_metric("best_score", 0.0, step=i)
            parent.set_tag("shipyard.tuning.best_trial", str(i))
            done += 1
            if clock() - start > budget_s:
                break
    return clock() - start, done


def bench_overhead(root: Path, plan: Plan) -> list[Row]:
    import optuna

    n, budget = plan.overhead_trials, plan.loop_budget_s
    section = root / "overhead"
    section.mkdir(parents=True, exist_ok=True)
    busy = wait_for_idle("2", plan.idle_wait_s)
    progress(f"(2) trivial objective, RandomSampler(seed=0), {n} trials per side")
    t_mem, n_mem = optuna_loop(n, budget)
    progress(f"    Optuna in-memory: {t_mem:.3f} s ({n_mem} trials)")

    def journal() -> Any:
        backend = optuna.storages.journal.JournalFileBackend(str(section / "optuna.journal"))
        return optuna.storages.JournalStorage(backend)

    t_journal, n_journal = optuna_loop(n, budget, journal)
    progress(f"    Optuna JournalFileBackend: {t_journal:.3f} s ({n_journal} trials)")
    t_rdb, n_rdb = optuna_loop(n, budget, f"sqlite:///{section / 'optuna.db'}")
    progress(f"    Optuna sqlite:/// RDB: {t_rdb:.3f} s ({n_rdb} trials)")
    t_sy, n_sy, result = shipyard_loop(fresh_settings(root, "overhead-shipyard"), n, budget)
    complete = result.count("COMPLETE")
    progress(f"    Shipyard tune(): {t_sy:.3f} s ({n_sy} trials, {complete} complete)")
    t_track, n_track = tracking_loop(fresh_settings(root, "overhead-tracking"), n, budget)
    progress(f"    Shipyard tracking calls alone: {t_track:.3f} s ({n_track} trials' worth)")

    ms = 1000.0
    per = {
        "optuna_memory": t_mem / max(n_mem, 1) * ms,
        "optuna_journal": t_journal / max(n_journal, 1) * ms,
        "optuna_rdb": t_rdb / max(n_rdb, 1) * ms,
        "shipyard": t_sy / max(n_sy, 1) * ms,
        "tracking": t_track / max(n_track, 1) * ms,
    }
    overhead = per["shipyard"] - per["optuna_memory"]
    full = n_mem == n_sy == n and complete == n
    storage_part = per["optuna_journal"] - per["optuna_memory"]
    rest = per["shipyard"] - per["optuna_journal"] - per["tracking"]
    breakdown = (
        f"breakdown of Shipyard's {overhead:.2f} ms/trial overhead (estimated from separate loops): "
        f"journal-file study instead of in-memory {storage_part:.2f} ms, tracking calls "
        f"{per['tracking']:.2f} ms, the rest (the driver's own work per trial, and tune()'s fixed "
        f"costs over N) {rest:.2f} ms; --profile shows where"
    )
    shortfall = (
        []
        if full
        else [
            f"measured fewer trials than {n} within {budget:.0f} s per loop; per-trial "
            "figures divide by the trials done"
        ]
    )
    return [
        Row(
            "2a",
            f"time per trial, trivial objective, {n} trials",
            "ms",
            per["shipyard"],
            per["optuna_memory"],
            ratio=times_ratio(per["shipyard"], per["optuna_memory"]),
            notes=(
                "Shipyard: tune() with its defaults (journal file study under SHIPYARD_HOME, parent run + "
                "one nested tracked run per trial on SQLite), whole call / N; Optuna: create_study + "
                "optimize, default in-memory storage, / N; RandomSampler(seed=0) on both sides",
                *shortfall,
                *busy_note(busy),
            ),
            details={"seconds": {"optuna_memory": t_mem, "shipyard": t_sy}, "trials": [n_mem, n_sy]},
        ),
        Row(
            "2b",
            "Shipyard overhead per trial, (t_shipyard - t_optuna) / N",
            "ms",
            overhead,
            None,
            target=f"<= {MAX_OVERHEAD_MS:g} ms",
            passed=full and overhead <= MAX_OVERHEAD_MS,
            notes=(breakdown,),
            details={"per_trial_ms": per},
        ),
        Row(
            "2c",
            "  vs Optuna on JournalFileBackend (context)",
            "ms",
            per["shipyard"],
            per["optuna_journal"],
            ratio=times_ratio(per["shipyard"], per["optuna_journal"]),
            details={"seconds": t_journal, "trials": n_journal},
        ),
        Row(
            "2d",
            "  vs Optuna on sqlite:/// RDB storage (context)",
            "ms",
            per["shipyard"],
            per["optuna_rdb"],
            ratio=times_ratio(per["shipyard"], per["optuna_rdb"]),
            details={"seconds": t_rdb, "trials": n_rdb},
        ),
        Row(
            "2e",
            "  Shipyard's tracking calls per trial, alone (context)",
            "ms",
            per["tracking"],
            None,
            notes=(
                "a nested run with 2 tags, 1 param, 1 metric, the state tag, ended; the parent's "
                "best-so-far metric and tag: what tune() writes per trial, without Optuna",
            ),
            details={"seconds": t_track, "trials": n_track},
        ),
    ]


# ---------------------------------------------------------------------- (3) parallel speedup
def calibrate() -> tuple[int, float]:
    """Iterations of cpu_work for ~CPU_TRIAL_S, and the measured seconds of one such call."""
    import tuning_trials as trials

    trials.cpu_work(20)
    probe = statistics.median(harness.timed(lambda: trials.cpu_work(100)) for _ in range(3))
    iterations = max(10, round(100 * CPU_TRIAL_S / probe))
    return iterations, harness.timed(lambda: trials.cpu_work(iterations))


def parallel_run(settings: Any, n: int, workers: int, iterations: int, budget_s: float) -> dict[str, Any]:
    import tuning_trials as trials

    from shipyard.tuning import tune

    work = {"name": "work", "type": "categorical", "choices": [iterations]}
    harness.settle()
    wall = time.time()
    start = clock()
    result = tune(
        spec("cpu", [X_PARAM, work], "random", n, timeout_s=budget_s, parallel_trials=workers),
        trials.cpu_trial,
        settings=settings,
    )
    seconds = clock() - start
    records = sorted(result.trials, key=lambda r: r.number)
    complete = [r for r in records if r.state == "COMPLETE"]
    started = [r.metrics["started_at"] for r in complete if "started_at" in r.metrics]
    return {
        "workers": workers,
        "seconds": seconds,
        "trials": len(records),
        "complete": len(complete),
        "errors": sorted({r.error for r in records if r.error}),
        "params": [dict(r.params) for r in records],
        "trial_s": statistics.mean(r.seconds for r in complete) if complete else None,
        "busy": sum(r.seconds for r in complete) / (workers * seconds) if seconds > 0 else None,
        "first_start_s": (min(started) - wall) if started else None,
        "pids": len({r.metrics.get("pid") for r in complete}),
        "blas_threads": max((int(r.metrics.get("blas_threads", -1)) for r in complete), default=-1),
    }


def optuna_parallel(n: int, jobs: int, iterations: int, budget_s: float) -> tuple[float, int]:
    """Plain Optuna, same work: ``optimize(n_jobs=jobs)`` (threads: NumPy releases the GIL in the work);
    (seconds, complete trials)."""
    import functools

    import optuna
    import tuning_trials as trials

    harness.settle()
    start = clock()
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    objective = functools.partial(trials.cpu_objective, iterations=iterations)
    study.optimize(objective, n_trials=n, n_jobs=jobs, timeout=budget_s)
    seconds = clock() - start
    return seconds, sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def serial_work(n: int, iterations: int, budget_s: float) -> tuple[float, int]:
    import tuning_trials as trials

    harness.settle()
    start = clock()
    done = 0
    while done < n and clock() - start < budget_s:
        trials.cpu_work(iterations)
        done += 1
    return clock() - start, done


def machine_ceiling(n: int, iterations: int, budget_s: float) -> dict[str, Any]:
    """The same work with neither system, in A-B-A order (so a drift in CPU speed cancels): n/2 calls
    serially, n calls in a warm 2-process pool, n/2 calls serially."""
    import concurrent.futures as cf
    import multiprocessing

    import tuning_trials as trials

    half = n // 2
    first, done_first = serial_work(half, iterations, budget_s / 2)
    pool = cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver"))
    try:
        pids = set(pool.map(trials.warm_worker, [0.5, 0.5]))  # both workers up, NumPy imported
        harness.settle()
        start = clock()
        try:
            list(pool.map(trials.cpu_work, [iterations] * n, timeout=budget_s))
            pooled: float | None = clock() - start
        except cf.TimeoutError:
            pooled = None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    second, done_second = serial_work(n - half, iterations, budget_s / 2)
    done = done_first + done_second
    serial = (first + second) / done * n if done else None  # for n calls
    return {"serial_s": serial, "pooled_s": pooled, "trials": n, "workers": len(pids)}


def bench_parallel(root: Path, plan: Plan) -> list[Row]:
    n, budget = plan.parallel_trials, plan.loop_budget_s
    busy_before = wait_for_idle("3", plan.idle_wait_s)
    iterations, one = calibrate()
    progress(f"(3) CPU-bound trials: {iterations} x (256x256 matmul + tanh) = {one:.2f} s each here")
    runs: list[dict[str, Any]] = []
    for index, workers in enumerate((1, 2, 2, 1)):  # A-B-B-A: a drift in CPU speed cancels
        progress(f"(3) Shipyard tune(), parallel_trials={workers}, {n} trials")
        settings = fresh_settings(root, f"parallel-{index}-{workers}")
        runs.append(r := parallel_run(settings, n, workers, iterations, budget))
        progress(
            f"    {r['seconds']:.2f} s ({r['complete']}/{r['trials']} complete, mean trial "
            f"{r['trial_s'] or 0:.2f} s, first trial started after {r['first_start_s'] or 0:.2f} s, "
            f"{r['pids']} process(es), BLAS threads {r['blas_threads']})"
        )
        for error in r["errors"]:
            progress(f"    error: {error}")
    half = n // 2
    progress(f"(3) plain Optuna optimize(n_jobs=1) {half} trials, n_jobs=2 {n}, n_jobs=1 {n - half}")
    o1a, c1a = optuna_parallel(half, 1, iterations, budget / 2)
    o2, c2 = optuna_parallel(n, 2, iterations, budget)
    o1b, c1b = optuna_parallel(n - half, 1, iterations, budget / 2)
    o1 = (o1a + o1b) / max(c1a + c1b, 1) * n
    progress(f"    n_jobs=1: {o1a + o1b:.2f} s ({c1a + c1b} trials), n_jobs=2: {o2:.2f} s ({c2} trials)")
    progress(
        f"(3) machine ceiling: the same work serially ({half}), in a warm 2-process pool ({n}), serially"
    )
    ceiling = machine_ceiling(n, iterations, budget)
    serial_s, pooled_s = ceiling["serial_s"], ceiling["pooled_s"]
    ceiling_x = serial_s / pooled_s if serial_s and pooled_s else None
    progress(
        f"    serial {serial_s or 0:.2f} s, pool {pooled_s or 0:.2f} s: {ceiling_x or 0:.2f}x "
        f"({ceiling['workers']} workers)"
    )
    busy_after = wait_for_idle("3, after", 0.0)

    by = {w: [r for r in runs if r["workers"] == w] for w in (1, 2)}
    t1 = statistics.mean(r["seconds"] for r in by[1])
    t2 = statistics.mean(r["seconds"] for r in by[2])
    speedup = t1 / t2 if t2 > 0 else 0.0
    optuna_x = o1 / o2 if o2 > 0 else 0.0
    valid = (
        all(r["complete"] == n for r in runs)
        and all(r["blas_threads"] <= 1 for r in runs)
        and c1a + c1b == c2 == n
    )
    same_params = all(r["params"] == runs[0]["params"] for r in runs)

    def samples(w: int) -> str:
        return " and ".join(f"{r['seconds']:.2f} s" for r in by[w])

    def mean_of(w: int, key: str) -> float:
        return statistics.mean(r[key] or 0.0 for r in by[w])

    starts = " and ".join(f"{r['first_start_s']:.2f}" for r in by[2])
    notes = [
        f"each trial: {iterations} x (256x256 matmul + tanh), {one:.2f} s alone in this process; "
        f"{', '.join(f'{k}=1' for k in THREAD_VARS[:3])} (and the rest) set before NumPy and the workers "
        f"start; BLAS threads seen in Shipyard's trials: {max(r['blas_threads'] for r in runs)} "
        "(threadpoolctl; -1: not installed); Shipyard ran in the order p=1, p=2, p=2, p=1 and each figure is "
        f"the mean of two runs (p=1: {samples(1)}; p=2: {samples(2)}); Optuna: optimize(n_jobs=1 | 2), "
        f"threads in one process, n_jobs=1 as {half} trials before and {n - half} after n_jobs=2",
        "parallel_trials=2: worker processes from a forkserver pool that outlives a search (the first p=2 "
        "search starts it, the second finds it warm); the first trial began "
        f"{starts} s after tune() was called (parallel_trials=1: "
        f"{mean_of(1, 'first_start_s'):.2f} s); mean trial wall time {mean_of(2, 'trial_s'):.2f} s in 2 "
        f"workers vs {mean_of(1, 'trial_s'):.2f} s inline; the 2 workers spent "
        f"{mean_of(2, 'busy') * 100:.0f}% of t2 in trials (inline: {mean_of(1, 'busy') * 100:.0f}% of t1); "
        f"{min(r['pids'] for r in by[2])} distinct worker processes ran trials; suggested parameters "
        f"{'identical' if same_params else 'DIFFER'} across the four runs (random, seed 0)",
        f"machine ceiling, neither system: {n} x the same work serially {serial_s or 0:.2f} s, in a warm "
        f"2-process pool {pooled_s or 0:.2f} s; other processes kept {busy_text(busy_before)} busy just "
        f"before (3) and {busy_text(busy_after)} just after (1 s samples while this benchmark slept; the "
        "machine may be shared, and a busy CPU lowers every parallel figure)",
    ]
    if not valid:
        notes.append(
            "not every trial completed, or BLAS used more than one thread: "
            + "; ".join(f"p={r['workers']}: {r['complete']}/{n} complete, errors {r['errors']}" for r in runs)
        )
    return [
        Row(
            "3a",
            f"{n} CPU-bound trials, parallel_trials=1 (n_jobs=1)",
            "s",
            t1,
            o1,
            ratio=times_ratio(t1, o1),
            notes=tuple(notes[:1]),
        ),
        Row(
            "3b",
            f"{n} CPU-bound trials, parallel_trials=2 (n_jobs=2)",
            "s",
            t2,
            o2,
            ratio=times_ratio(t2, o2),
            notes=tuple(notes[1:2]),
        ),
        Row(
            "3c",
            "parallel speedup t1 / t2 (2 cores)",
            "x",
            speedup,
            optuna_x,
            ratio=f"{speedup / optuna_x:.2f}x Optuna's" if optuna_x > 0 else "-",
            target=f">= {MIN_PARALLEL_SPEEDUP:g}x",
            passed=valid and speedup >= MIN_PARALLEL_SPEEDUP,
            notes=tuple(notes[2:]),
            details={
                "runs": runs,
                "optuna_s": {"n_jobs_1": o1, "n_jobs_2": o2},
                "iterations": iterations,
                "one_trial_s": one,
            },
        ),
        Row(
            "3d",
            "  machine ceiling: same work, warm 2-process pool vs serial",
            "x",
            ceiling_x,
            None,
            notes=("neither Shipyard nor Optuna: a concurrent.futures pool started before the clock",),
            details={**ceiling, "other_busy_before": busy_before, "other_busy_after": busy_after},
        ),
    ]


# ---------------------------------------------------------------------- profile
def profile_overhead(root: Path, plan: Plan) -> dict[str, Any]:
    """cProfile of a trivial-objective tune() (Shipyard's defaults), outside every timed section; stderr."""
    import tuning_trials as trials

    from shipyard.tuning import tune

    n = plan.profile_trials
    settings = fresh_settings(root, "profile")
    profiler = cProfile.Profile()
    harness.settle()
    start = clock()
    profiler.enable()
    tune(spec("profile", [X_PARAM], "random", n), trials.quadratic_trial, settings=settings)
    profiler.disable()
    seconds = clock() - start
    progress(f"profile: tune(), {n} trivial trials, {seconds:.2f} s under cProfile; top 25 by own time")
    stats = pstats.Stats(profiler, stream=sys.stderr)
    stats.sort_stats("tottime").print_stats(25)
    progress("profile: top 30 by cumulative time")
    stats.sort_stats("cumulative").print_stats(30)
    return {"trials": n, "seconds_under_profiler": seconds}


# ---------------------------------------------------------------------- table
def times_ratio(ours: float, theirs: float | None) -> str:
    """ "1.3x slower" / "2.0x faster" for times (lower is better)."""
    if theirs is None or theirs <= 0 or ours <= 0:
        return "-"
    return harness.verdict(harness.Result("", "", "", False, ours, theirs))


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "accuracy":
        return f"{value:.4f}"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "s":
        return f"{value:,.2f} s"
    return harness.format_value(value, unit)


def print_table(title: str, rows: Sequence[Row], machine: str) -> None:
    header = ("", "benchmark", "Shipyard", "Optuna", "Shipyard vs Optuna", "target", "result")
    lines: list[tuple[str, ...]] = []
    footnotes: list[str] = []
    for r in rows:
        marks = harness.note_marks(r.notes, footnotes)
        outcome = "-" if r.passed is None else ("PASS" if r.passed else "FAIL")
        lines.append(
            (
                f"({r.key})",
                r.title + marks,
                fmt(r.shipyard, r.unit),
                fmt(r.optuna, r.unit),
                r.ratio,
                r.target,
                outcome,
            )
        )
    aimed = [r for r in rows if r.passed is not None]
    summary = f"{sum(bool(r.passed) for r in aimed)}/{len(aimed)} targets met"
    harness.print_rows(title, machine, header, lines, footnotes, right={2, 3, 4}, summary=summary)
    for r in aimed:
        if not r.passed:
            print(f"TARGET MISSED: ({r.key}) {r.title.strip()}: {fmt(r.shipyard, r.unit)}, target {r.target}")
    sys.stdout.flush()


# ---------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    single_thread()
    importable_trials()
    parser = harness.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="cProfile a 100-trial tune() (stderr)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores, and say where")
    parser.add_argument(
        "--sections", default="123", help="which sections to run, e.g. 3 or 12 (default: 123, all)"
    )
    args = parser.parse_args(argv)
    plan = Plan.for_args(args.quick)
    mode = "quick" if plan.quick else "full"
    root = Path(tempfile.mkdtemp(prefix="shipyard-bench-tuning-"))
    progress(f"stores under {root}; {mode} mode")
    begun = clock()
    progress(f"other processes' CPU use at the start, 1 s sample: {busy_text(other_cpu_busy())}")
    extra: dict[str, Any] = {}
    try:
        progress("warm-up (imports, data, a 3-trial run on each side; untimed)")
        warm_up(root)
        rows: list[Row] = []
        for number, bench in (("1", bench_search), ("2", bench_overhead), ("3", bench_parallel)):
            if number in args.sections:
                rows += bench(root, plan)
        if args.profile:
            extra["profile"] = profile_overhead(root, plan)
    finally:
        if args.keep:
            progress(f"kept the stores under {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    progress(f"done in {clock() - begun:.0f} s")
    info = harness.machine_info(("shipyard", "optuna", "scikit-learn", "numpy", "sqlalchemy"))
    print_table(f"{TITLE}, {mode} mode", rows, harness.machine_line(info))
    if args.json:
        payload = {
            "benchmark": TITLE,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": info,
            "mode": mode,
            "argv": list(sys.argv[1:]),
            **extra,
            "results": [r.as_dict() for r in rows],
        }
        Path(args.json).write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
        progress(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
