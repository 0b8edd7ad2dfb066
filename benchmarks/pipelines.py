"""Pipeline orchestration overhead: Shipyard against Prefect 3 and Metaflow, side by side in one run.

    python benchmarks/pipelines.py [--quick] [--json out.json] [--profile]

Needs the peers: ``pip install -e '.[bench]' prefect 'fastapi<0.141' metaflow``. Every step is a no-op
(``x + 1``), so the figures are the orchestrators' own cost. Shipyard runs with
``LocalExecutor(max_parallel=2)``
(a pool of worker processes: process isolation) on its own store in a temporary folder; Prefect 3 runs its
flows in a subprocess against its ephemeral local API (no server started by hand); Metaflow runs
``python flow.py run`` with the local datastore and metadata in a temporary folder.

(a) 20-step chain end to end; (b) per-step overhead = (t200 - t20) / 180; (c) 100-wide fan-out + fan-in;
(d) a 1,000-step DAG (10 independent chains of 100); (e) a cached re-run of a 100-step chain.
Metaflow costs about half a second per step, so its 200-step and 1,000-step figures are extrapolated from
measured smaller flows, and the table says so. Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import cProfile
import inspect
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness
from harness import Result, clock, progress

HERE = Path(__file__).resolve().parent
TITLE = "Shipyard vs Prefect 3 and Metaflow: pipeline orchestration overhead (no-op steps, local)"


@dataclass(frozen=True)
class Plan:
    quick: bool
    rounds: int = 3  # Shipyard's small pipelines: the median of a few runs
    fan_width: int = 100
    dag_chains: int = 10
    dag_length: int = 100
    cached_steps: int = 100
    mf_fan_width: int = 100  # Metaflow's measured foreach width (scaled to fan_width when smaller)
    prefect_dag_steps: int = 1000  # Prefect's measured DAG size (scaled to 1,000 when smaller)
    peer_budget_s: float = 300.0

    @classmethod
    def for_args(cls, quick: bool) -> Plan:
        if quick:
            return cls(quick=True, rounds=1, mf_fan_width=20, prefect_dag_steps=200, peer_budget_s=120.0)
        return cls(quick=False)


# ---------------------------------------------------------------------- Shipyard
class ShipyardSide:
    def __init__(self, home: Path) -> None:
        sys.path.insert(0, str(HERE))  # workers import pipeline_steps by module path
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
        import pipeline_steps as steps

        import shipyard
        from shipyard.pipelines import Collected, ParallelFor, compile_pipeline, pipeline
        from shipyard.pipelines.executors import LocalExecutor

        self.steps, self.pipeline, self.compile = steps, pipeline, compile_pipeline
        self.ParallelFor, self.Collected = ParallelFor, Collected
        self.settings = shipyard.Settings.load(environ={"SHIPYARD_HOME": str(home)}, cwd=home)
        self.executor = LocalExecutor(max_parallel=2, settings=self.settings)
        self.has_cache = "cache" in inspect.signature(self.executor.run).parameters

    def chain(self, n: int, chains: int = 1) -> Any:
        noop = self.steps.noop

        @self.pipeline(name=f"chain-{chains}x{n}")
        def chain(x: int = 0) -> None:
            for _ in range(chains):
                t = noop(x=x)
                for _ in range(n - 1):
                    t = noop(x=t.output)

        return self.compile(chain)

    def fan(self, width: int) -> Any:
        noop, total = self.steps.noop, self.steps.total
        ParallelFor, Collected = self.ParallelFor, self.Collected

        @self.pipeline(name=f"fan-{width}")
        def fan() -> None:
            with ParallelFor(list(range(width))) as i:
                s = noop(x=i)
            total(xs=Collected(s.output))

        return self.compile(fan)

    def stamp(self) -> Any:
        stamp = self.steps.stamp

        @self.pipeline(name="stamp")
        def one() -> None:
            stamp(x=0)

        return self.compile(one)

    def run(self, spec: Any, **kwargs: Any) -> tuple[float, Any]:
        if self.has_cache:  # every row but (e) measures real step runs, never cache hits
            kwargs.setdefault("cache", False)
        harness.settle()
        start = clock()
        result = self.executor.run(spec, {}, **kwargs)
        return clock() - start, result


def ok(result: Any, steps: int) -> bool:
    """The run succeeded with ``steps`` step results, every one run for real (none cached)."""
    statuses = [str(getattr(r.status, "value", r.status)) for r in result.steps.values()]
    run_ok = str(getattr(result.status, "value", result.status)) == "succeeded"
    return run_ok and len(statuses) == steps and all(s == "succeeded" for s in statuses)


# ---------------------------------------------------------------------- Prefect (subprocess)
PREFECT_SCRIPT = """
import json, sys, time
from prefect import flow, task
from prefect.cache_policies import INPUTS

@task
def noop(x: int) -> int:
    return x + 1

@task(cache_policy=INPUTS, persist_result=True)
def cnoop(x: int) -> int:
    return x + 1

@task
def total(xs: list) -> int:
    return sum(xs)

@flow
def chain(n: int, chains: int = 1, cached: bool = False) -> int:
    step = cnoop if cached else noop
    for _ in range(chains):
        t = 0
        for _ in range(n):
            t = step(t)
    return t

@flow
def fan(width: int) -> int:
    futures = noop.map(list(range(width)))
    return total(futures.result())

def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out

if __name__ == "__main__":
    plan = json.loads(sys.argv[1])
    def emit(key, seconds, value):
        print(json.dumps({"key": key, "s": seconds, "value": value}), flush=True)
    emit("warmup", *timed(chain, 1))  # starts the ephemeral API
    emit("chain20", *timed(chain, 20))
    emit("chain200", *timed(chain, 200))
    emit("fan", *timed(fan, plan["fan_width"]))
    emit("dag", *timed(chain, plan["dag_steps"] // 10, 10))
    emit("cache_first", *timed(chain, plan["cached_steps"], 1, True))
    emit("cache_rerun", *timed(chain, plan["cached_steps"], 1, True))
"""


def run_peer(cmd: list[str], cwd: Path, env: dict[str, str], budget_s: float) -> tuple[str, str | None]:
    """Run a peer's subprocess; returns (stdout, error text or None)."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=budget_s)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return out, f"timed out after {budget_s:.0f} s"
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
        return proc.stdout, f"exit {proc.returncode}: {tail[0][:200]}"
    return proc.stdout, None


def bench_prefect(root: Path, plan: Plan) -> tuple[dict[str, dict[str, Any]], str | None]:
    root.mkdir(parents=True)
    (root / "flows.py").write_text(PREFECT_SCRIPT, encoding="utf-8")
    env = dict(
        os.environ,
        DO_NOT_TRACK="true",
        PREFECT_HOME=str(root / "home"),
        PREFECT_LOGGING_LEVEL="ERROR",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOCAL_STORAGE_PATH=str(root / "results"),
    )
    env.pop("PREFECT_API_URL", None)
    args = {
        "fan_width": plan.fan_width,
        "dag_steps": plan.prefect_dag_steps,
        "cached_steps": plan.cached_steps,
    }
    progress(f"Prefect: ephemeral API, flows in a subprocess (budget {plan.peer_budget_s:.0f} s)")
    out, error = run_peer([sys.executable, "flows.py", json.dumps(args)], root, env, plan.peer_budget_s)
    rows = {}
    for line in out.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            rows[row["key"]] = row
            progress(f"    Prefect {row['key']}: {row['s']:.2f} s (value {row['value']})")
    return rows, error


# ---------------------------------------------------------------------- Metaflow (subprocess)
def metaflow_chain(n: int) -> str:
    lines = ["from metaflow import FlowSpec, step", "", "class Chain(FlowSpec):"]
    lines += ["    @step", "    def start(self):", "        self.x = 0", "        self.next(self.s1)"]
    for i in range(1, n + 1):
        nxt = f"s{i + 1}" if i < n else "end"
        lines += [
            "    @step",
            f"    def s{i}(self):",
            "        self.x += 1",
            f"        self.next(self.{nxt})",
        ]
    lines += ["    @step", "    def end(self):", "        print('RESULT', self.x)", ""]
    return "\n".join([*lines, "if __name__ == '__main__':", "    Chain()", ""])


def metaflow_fan(width: int) -> str:
    return f"""from metaflow import FlowSpec, step

class Fan(FlowSpec):
    @step
    def start(self):
        self.items = list(range({width}))
        self.next(self.noop, foreach="items")

    @step
    def noop(self):
        self.x = self.input + 1
        self.next(self.join)

    @step
    def join(self, inputs):
        self.total = sum(i.x for i in inputs)
        self.next(self.end)

    @step
    def end(self):
        print("RESULT", self.total)

if __name__ == "__main__":
    Fan()
"""


def bench_metaflow(root: Path, plan: Plan) -> tuple[dict[str, float], list[str]]:
    root.mkdir(parents=True)
    env = dict(
        os.environ,
        METAFLOW_DEFAULT_DATASTORE="local",
        METAFLOW_DEFAULT_METADATA="local",
        METAFLOW_DATASTORE_SYSROOT_LOCAL=str(root),
        USERNAME="bench",
    )
    figures: dict[str, float] = {}
    errors: list[str] = []
    flows = [
        ("chain5", metaflow_chain(5)),
        ("chain20", metaflow_chain(20)),
        ("fan", metaflow_fan(plan.mf_fan_width)),
    ]
    for key, source in flows:
        path = root / f"{key}.py"
        path.write_text(source, encoding="utf-8")
        progress(f"Metaflow: python {path.name} run")
        start = clock()
        _out, error = run_peer([sys.executable, path.name, "--quiet", "run"], root, env, plan.peer_budget_s)
        seconds = clock() - start
        if error:
            errors.append(f"Metaflow {key}: {error}")
            continue
        figures[key] = seconds
        progress(f"    Metaflow {key}: {seconds:.2f} s")
    return figures, errors


# ---------------------------------------------------------------------- profile
def profile_shipyard(sy: ShipyardSide) -> dict[str, Any]:
    """Time from run() to the first step's start, and cProfile hot spots of the engine process."""
    starts = []
    for _ in range(3):
        t0 = time.time()
        _, result = sy.run(sy.stamp())
        starts.append((next(iter(result.steps.values())).outputs["output"] - t0) * 1000)
    spec = sy.chain(100)
    profiler = cProfile.Profile()
    profiler.enable()
    sy.executor.run(spec, {}, **({"cache": False} if sy.has_cache else {}))
    profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stderr)
    progress(f"profile: run() start -> first step start: {', '.join(f'{s:.0f}' for s in starts)} ms")
    progress("profile: engine process, 100-step chain, top 25 by own time")
    stats.sort_stats("tottime").print_stats(25)
    progress("profile: engine process, 100-step chain, top 25 by cumulative time")
    stats.sort_stats("cumulative").print_stats(25)
    return {"first_step_ms": starts}


# ---------------------------------------------------------------------- table
def ratio(peer: float | None, ours: float) -> str:
    if peer is None or ours <= 0:
        return "-"
    return harness.verdict(Result("", "", "", False, ours, peer))


def print_table(title: str, results: Sequence[Result], machine: str) -> None:
    header = (
        "",
        "benchmark",
        "Shipyard",
        "Prefect",
        "Metaflow",
        "vs Prefect",
        "vs Metaflow",
        "target",
        "result",
    )
    rows: list[tuple[str, ...]] = []
    footnotes: list[str] = []
    for r in results:
        marks = harness.note_marks(r.notes, footnotes)
        prefect = r.details.get("prefect")
        shown = "n/a" if r.details.get("unavailable") else harness.format_value(r.shipyard, r.unit)
        rows.append(
            (
                f"({r.key})",
                r.title + marks,
                shown,
                harness.format_value(prefect, r.unit),
                harness.format_value(r.peer, r.unit),
                "-" if r.details.get("unavailable") else ratio(prefect, r.shipyard),
                "-" if r.details.get("unavailable") else harness.verdict(r),
                r.target,
                "not available yet" if r.details.get("unavailable") else ("PASS" if r.passed else "MISS"),
            )
        )
    summary = f"{sum(r.passed for r in results)}/{len(results)} targets met"
    harness.print_rows(title, machine, header, rows, footnotes, right={2, 3, 4, 5, 6}, summary=summary)


# ---------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="cProfile Shipyard's engine (stderr)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders, and say where")
    parser.add_argument("--skip-peers", action="store_true", help="measure Shipyard only")
    args = parser.parse_args(argv)
    plan = Plan.for_args(args.quick)
    os.environ["DO_NOT_TRACK"] = "true"
    root = Path(tempfile.mkdtemp(prefix="shipyard-bench-pipelines-"))
    progress(f"stores under {root}; {'quick' if plan.quick else 'full'} mode")
    extra: dict[str, Any] = {}
    try:
        sy = ShipyardSide(root / "shipyard")
        progress("Shipyard: warm-up run (imports, store migration, fork server)")
        cold_s, _ = sy.run(sy.chain(2))
        progress(f"Shipyard warm-up (first run in this process): {cold_s:.2f} s")
        sy_t: dict[str, float] = {}
        valid: dict[str, bool] = {}
        for key, spec, steps, rounds in (
            ("chain20", sy.chain(20), 20, plan.rounds),
            ("chain200", sy.chain(200), 200, 1),
            ("fan", sy.fan(plan.fan_width), plan.fan_width + 1, plan.rounds),
            ("dag", sy.chain(plan.dag_length, plan.dag_chains), plan.dag_length * plan.dag_chains, 1),
        ):
            samples = []
            valid[key] = True
            for _ in range(rounds):
                seconds, result = sy.run(spec)
                samples.append(seconds)
                valid[key] = valid[key] and ok(result, steps)
            sy_t[key] = statistics.median(samples)
            progress(f"Shipyard {key}: {', '.join(f'{s:.2f}' for s in samples)} s ({steps} steps)")
        sy_cached = None
        if sy.has_cache:
            spec = sy.chain(plan.cached_steps)
            sy.run(spec, cache=True)
            sy_cached, result = sy.run(spec, cache=True)
            hits = sum(str(getattr(r.status, "value", r.status)) == "cached" for r in result.steps.values())
            valid["cache"] = hits == plan.cached_steps and len(result.steps) == plan.cached_steps
            progress(f"Shipyard cached re-run: {sy_cached:.2f} s")
        if args.profile:
            extra["profile"] = profile_shipyard(sy)
        pf: dict[str, dict[str, Any]] = {}
        pf_error, mf, mf_errors = None, {}, []
        if not args.skip_peers:
            pf, pf_error = bench_prefect(root / "prefect", plan)
            mf, mf_errors = bench_metaflow(root / "metaflow", plan)
    finally:
        if args.keep:
            progress(f"kept the stores under {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)

    def pf_s(key: str) -> float | None:
        return pf[key]["s"] if key in pf else None

    notes_common = []
    if pf_error:
        notes_common.append(f"Prefect failed: {pf_error}; its missing figures are '-'")
    notes_common += mf_errors
    # Metaflow's per-step cost, from a 5-step and a 20-step chain (both measured)
    mf_step = (mf["chain20"] - mf["chain5"]) / 15 if {"chain5", "chain20"} <= mf.keys() else None
    mf_200 = mf["chain20"] + 180 * mf_step if mf_step is not None else None
    mf_dag = (
        mf["chain20"] + (plan.dag_chains * plan.dag_length - 20) * mf_step if mf_step is not None else None
    )
    mf_fan = mf.get("fan")
    if mf_fan is not None and plan.mf_fan_width != plan.fan_width:
        mf_fan = mf_fan * plan.fan_width / plan.mf_fan_width
    pf_dag = pf_s("dag")
    if pf_dag is not None and plan.prefect_dag_steps != plan.dag_chains * plan.dag_length:
        pf_dag = pf_dag * plan.dag_chains * plan.dag_length / plan.prefect_dag_steps
    sy_step = (sy_t["chain200"] - sy_t["chain20"]) / 180 * 1000
    pf_step = (
        (pf_s("chain200") - pf_s("chain20")) / 180 * 1000 if {"chain20", "chain200"} <= pf.keys() else None
    )
    ms = 1000.0
    results = [
        Result(
            "a",
            "20-step chain, end to end",
            "ms",
            False,
            sy_t["chain20"] * ms,
            peer=mf["chain20"] * ms if "chain20" in mf else None,
            max_shipyard=1000.0,
            valid=valid["chain20"],
            notes=tuple(
                [
                    *notes_common,
                    f"Shipyard: LocalExecutor(max_parallel=2), worker processes, median of {plan.rounds}, "
                    f"after a 2-step warm-up run ({cold_s * ms:,.0f} ms: the first run in a process also "
                    "imports Shipyard into the workers' fork server); "
                    "Prefect: a @flow calling @task s in its ephemeral API, after one warm-up flow; "
                    "Metaflow: `python flow.py run` wall time (start + 20 + end steps)",
                ]
            ),
            details={"prefect": (pf_s("chain20") or 0) * ms or None},
        ),
        Result(
            "b",
            "per-step overhead, (t200 - t20) / 180",
            "ms",
            False,
            sy_step,
            peer=mf_step * ms if mf_step is not None else None,
            min_speedup=80,
            max_shipyard=5.0,
            valid=valid["chain200"],
            notes=(
                "Metaflow's per-step figure is (t20 - t5) / 15 from a 20-step and a 5-step chain "
                "(200 steps not run: ~0.5 s/step); ratio target >= 80x is vs Metaflow",
            ),
            details={
                "prefect": pf_step,
                "shipyard_t200_s": sy_t["chain200"],
                "metaflow_t200_est_s": mf_200,
                "prefect_t200_s": pf_s("chain200"),
            },
        ),
        Result(
            "c",
            f"{plan.fan_width}-wide fan-out + fan-in",
            "ms",
            False,
            sy_t["fan"] * ms,
            peer=mf_fan * ms if mf_fan is not None else None,
            max_shipyard=1000.0,
            valid=valid["fan"],
            notes=tuple(
                [
                    "Prefect: task.map on its default thread pool; "
                    "Metaflow: foreach + join (default max-workers)"
                ]
                + (
                    [f"Metaflow (c): measured {plan.mf_fan_width} wide, scaled linearly to {plan.fan_width}"]
                    if plan.mf_fan_width != plan.fan_width
                    else []
                )
            ),
            details={"prefect": (pf_s("fan") or 0) * ms or None},
        ),
        Result(
            "d",
            f"{plan.dag_chains * plan.dag_length:,}-step DAG ({plan.dag_chains} chains of {plan.dag_length})",
            "ms",
            False,
            sy_t["dag"] * ms,
            peer=mf_dag * ms if mf_dag is not None else None,
            valid=valid["dag"],
            notes=tuple(
                ["Metaflow (d): extrapolated, t20 + 980 x its per-step figure (not run)"]
                + (
                    [f"Prefect (d): {plan.prefect_dag_steps} steps measured, scaled linearly to 1,000"]
                    if plan.prefect_dag_steps != plan.dag_chains * plan.dag_length
                    else []
                )
            ),
            details={"prefect": (pf_dag or 0) * ms or None},
        ),
    ]
    cache_notes = [
        "Prefect: tasks with cache_policy=INPUTS, persist_result=True, second flow run; "
        "Metaflow has no step cache (`resume` re-runs from a failed step): not measured"
    ]
    if sy.has_cache and sy_cached is not None:
        results.append(
            Result(
                "e",
                f"cached re-run, {plan.cached_steps}-step chain",
                "ms",
                False,
                sy_cached * ms,
                max_shipyard=500.0,
                valid=valid.get("cache", False),
                notes=tuple(cache_notes),
                details={"prefect": (pf_s("cache_rerun") or 0) * ms or None},
            )
        )
    else:
        results.append(
            Result(
                "e",
                f"cached re-run, {plan.cached_steps}-step chain",
                "ms",
                False,
                0.0,
                max_shipyard=500.0,
                valid=False,
                notes=tuple(
                    [
                        *cache_notes,
                        "Shipyard: LocalExecutor.run has no `cache` parameter yet "
                        "(step caching not implemented): not available yet, counted as not met",
                    ]
                ),
                details={"prefect": (pf_s("cache_rerun") or 0) * ms or None, "unavailable": True},
            )
        )
    mode = "quick" if plan.quick else "full"
    info = harness.machine_info(("shipyard", "prefect", "metaflow"))
    print_table(f"{TITLE}, {mode} mode", results, harness.machine_line(info))
    if args.json:
        harness.write_json(
            args.json,
            TITLE,
            results,
            mode=mode,
            argv=list(sys.argv[1:]),
            prefect_raw=pf,
            metaflow_raw_s=mf,
            **extra,
        )
        progress(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
