"""Team mode over HTTP: Shipyard's client and ``shipyard server`` vs MLflow 3's client and ``mlflow server``.

    python benchmarks/server.py [--quick] [--json out.json] [--scale-runs 100000] [--no-postgres] [--keep]

Needs MLflow and a PostgreSQL driver: ``pip install -e '.[bench,postgres]'``; PostgreSQL itself from Debian
(see ``harness.PostgresCluster``; without it, ``--no-postgres``). Every server is a real process on a free
port on 127.0.0.1, started here, waited for on its health endpoint and stopped (its whole process group) on
the way out, errors included:

- ``shipyard server --store sqlite:///… --artifacts DIR`` (one worker: SQLite takes one),
- ``shipyard server --store postgresql+psycopg://… --artifacts DIR --workers 2``,
- ``mlflow server --backend-store-uri sqlite:///… --serve-artifacts --artifacts-destination DIR`` (its
  default workers), the artifacts proxied through the server as Shipyard's are.

Each server is measured once it has settled (its process group under a quarter of a CPU over 2 s): MLflow 3's
answers /health while the job runner it starts is still spawning its huey consumers, and requests in those
first ~20 s take several times longer than afterwards.

The clients run in this process (row (e): in 8 more), in team mode: Shipyard's with ``SHIPYARD_TRACKING_URI``
and ``Settings(tracking_uri=…)``, MLflow's with ``MLFLOW_TRACKING_URI``. Rows, each for Shipyard on SQLite,
on PostgreSQL, and MLflow:

(a) 10,000 ``log_metric`` calls one by one, then flushed (MLflow: one synchronous request each, its loop
    bounded in time and its rate computed from what was measured) — points/s
(b) 1,000 runs with 10 params and 5 metrics each, ended (MLflow bounded in time likewise) — runs/s
(c) ``metrics.m0 > 0.5`` ordered by ``metrics.m0`` desc, 100 results, through the API
    (``shipyard.search_runs``, ``mlflow.search_runs``) over 1,000 runs (c1) and over 100,000 runs (c2) —
    median ms. The 100,000 runs are written straight into each Shipyard server's SQL store before it starts;
    MLflow's 1,000 through its own store likewise (its 100,000 are skipped: the table says how long they
    would take). (c3), Shipyard only: the same search in a 10-run experiment beside the 100,000
(d) a 100 MiB artifact up and down through the server — MiB/s each way, and the client's RSS growth
(e) 8 client processes logging at once into one server — points/s in all, and points lost (logged minus
    stored, read back through the API)

Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
from harness import PostgresCluster, Result, clock, free_port, progress
from serving import Server

import shipyard

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
TITLE = "Shipyard server vs MLflow 3 server: tracking over HTTP (real server processes on 127.0.0.1)"
PACKAGES = ("shipyard", "mlflow", "sqlalchemy", "psycopg", "fastapi", "uvicorn", "httpx")
EXP_METRICS, EXP_RUNS, EXP_SEARCH, EXP_SCALE = "bench-metrics", "bench-runs", "bench-search", "bench-scale"
EXP_ARTIFACTS, EXP_WRITERS, EXP_SMALL = "bench-artifacts", "bench-writers", "bench-small"
SMALL_RUNS = 10  # (c3): a small experiment beside the large one
FILTER = "metrics.m0 > 0.5"
ORDER_SHIPYARD = ["metrics.m0 desc"]
ORDER_MLFLOW = ["metrics.m0 DESC"]
MAX_RESULTS = 100
MIB = 1 << 20
SHIPYARD_HEALTH, MLFLOW_HEALTH = "/api/v1/health", "/health"


@dataclass(frozen=True)
class Plan:
    """Sizes and time budgets of one benchmark run."""

    quick: bool
    postgres: bool = True
    single_points: int = 10_000
    single_rounds: int = 5  # Shipyard's (a) takes milliseconds: the median of a few fresh runs
    mlflow_single_budget_s: float = 10.0
    runs: int = 1000
    runs_budget_s: float = 120.0
    mlflow_runs_budget_s: float = 20.0
    mlflow_fill_budget_s: float = 120.0  # MLflow's search runs, written through its own store
    mlflow_search_budget_s: float = 30.0
    search_repeats: int = 20
    scale_runs: int = 100_000
    scale_bound_ms: float = 100.0
    artifact_mib: int = 100
    writers: int = 8
    writer_points: int = 100_000  # per Shipyard writer
    writer_budget_s: float = 30.0
    mlflow_writer_budget_s: float = 10.0
    start_budget_s: float = 90.0
    idle_budget_s: float = 60.0  # how long a started server may take to settle (its CPU use to drop)

    @classmethod
    def for_args(cls, quick: bool, scale_runs: int | None, postgres: bool) -> Plan:
        if quick:
            return cls(
                quick=True,
                postgres=postgres,
                single_rounds=3,
                mlflow_single_budget_s=5.0,
                runs=200,
                runs_budget_s=60.0,
                mlflow_runs_budget_s=8.0,
                mlflow_fill_budget_s=30.0,
                mlflow_search_budget_s=10.0,
                search_repeats=10,
                scale_runs=scale_runs or 10_000,
                artifact_mib=20,
                writer_points=20_000,
                writer_budget_s=15.0,
                mlflow_writer_budget_s=5.0,
                idle_budget_s=40.0,
            )
        return cls(quick=False, postgres=postgres, scale_runs=scale_runs or 100_000)


def _artifact_figures(
    mib: float, up_s: float, down_s: float, up_rss: Any, down_rss: Any, correct: bool
) -> dict[str, Any]:
    """Row (d)'s figures, the same for every system."""
    return {
        "mib": mib,
        "up_s": up_s,
        "down_s": down_s,
        "up_rate": mib / up_s,
        "down_rate": mib / down_s,
        "up_rss_mib": up_rss.growth_mib,
        "down_rss_mib": down_rss.growth_mib,
        "correct": correct,
    }


@dataclass
class Figures:
    """What one system measured, row by row (empty: not measured)."""

    label: str
    single: dict[str, Any] = field(default_factory=dict)
    runs: dict[str, Any] = field(default_factory=dict)
    search: dict[str, Any] = field(default_factory=dict)
    scale: dict[str, Any] = field(default_factory=dict)
    small: dict[str, Any] = field(default_factory=dict)
    artifact: dict[str, Any] = field(default_factory=dict)
    writers: dict[str, Any] = field(default_factory=dict)
    server: dict[str, Any] = field(default_factory=dict)  # start-up: seconds to health, then to idle


LOADS: list[float] = []  # the 1-minute load average at each step: other jobs may share the machine


def begin(message: str) -> None:
    """A progress line at the start of a measured step; also records the machine's load."""
    LOADS.append(os.getloadavg()[0])
    progress(message)


# ---------------------------------------------------------------------- data
def run_payload(rng: random.Random, index: int) -> tuple[dict[str, str], dict[str, float]]:
    params = {f"p{j}": f"value-{index}-{j}" for j in range(10)}
    metrics = {f"m{j}": rng.random() for j in range(5)}
    return params, metrics


def expected_top(m0_values: Sequence[float]) -> list[float]:
    return sorted((v for v in m0_values if v > 0.5), reverse=True)[:MAX_RESULTS]


def point_value(step: int) -> float:
    return 1.0 / (1.0 + step)


def package_path() -> str:
    """The folder holding the ``shipyard`` package this process imported: the servers and writers get it
    first on PYTHONPATH, so every process runs the same code."""
    return str(Path(shipyard.__file__).resolve().parent.parent)


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "MLFLOW_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_path(), env.get("PYTHONPATH", "")) if p)
    env["PATH"] = os.pathsep.join((str(BIN), env.get("PATH", "")))  # mlflow server shells out to uvicorn
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", **extra)
    return env


def create_runs(
    create: Callable[[dict[str, str], dict[str, float]], None], count: int, budget_s: float, label: str
) -> tuple[int, float, list[float]]:
    """Create up to ``count`` runs within ``budget_s``; returns (created, seconds, m0 of each run)."""
    rng = random.Random(42)
    m0_values = []
    harness.settle()
    start = last_report = clock()
    for index in range(count):
        params, metrics = run_payload(rng, index)
        create(params, metrics)
        m0_values.append(metrics["m0"])
        now = clock()
        if now - start > budget_s:
            break
        if now - last_report > 10:
            last_report = now
            done = len(m0_values)
            progress(f"    {label}: {done:,}/{count:,} runs, {done / (now - start):,.0f} runs/s")
    return len(m0_values), clock() - start, m0_values


def bounded_median_ms(fn: Callable[[], Any], repeats: int, budget_s: float) -> tuple[float, list[float]]:
    """Like :func:`harness.median_ms` (one untimed call first), but it stops timing once ``budget_s`` has
    passed and at least 3 calls were timed."""
    fn()
    harness.settle()
    samples: list[float] = []
    start = clock()
    for _ in range(repeats):
        samples.append(harness.timed(fn) * 1000.0)
        if len(samples) >= 3 and clock() - start > budget_s:
            break
    return statistics.median(samples), samples


class RssPeak:
    """The largest resident set size of this process while the block runs, sampled every 5 ms."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self.before = self.peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> RssPeak:
        harness.settle()
        self.before = self.peak = self._process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.before) / MIB


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def make_blob(path: Path, mib: int) -> str:
    """``mib`` MiB of random bytes (nothing to compress) at ``path``; their sha256."""
    rng = random.Random(7)
    with path.open("wb") as f:
        for _ in range(mib):
            f.write(rng.randbytes(MIB))
    return sha256_of(path)


@contextlib.contextmanager
def serving(
    label: str, cmd: list[str], env: dict[str, str], cwd: Path, health: str, plan: Plan
) -> Iterator[Server]:
    """Start a server process, wait for its health endpoint, and stop its whole process group on the way
    out (errors included)."""
    cwd.mkdir(parents=True, exist_ok=True)
    server = Server(label, cmd, env, cwd, set())
    try:
        progress(f"{label}: starting on {server.url}")
        server.ready_s = server.wait_ready(health, plan.start_budget_s)
        progress(f"{label}: ready in {server.ready_s:.1f} s; waiting for it to settle")
        server.idle_s = wait_idle(server, plan.idle_budget_s)
        progress(f"{label}: settled {server.idle_s:.0f} s later")
        yield server
    finally:
        server.stop()
        progress(f"{label}: stopped (exit {server.proc.returncode})")


def wait_idle(server: Server, budget_s: float, cores: float = 0.25) -> float:
    """Seconds until the server's process group uses less than ``cores`` CPUs over 2 s (at most
    ``budget_s``). MLflow 3's server answers /health while the job runner it starts is still spawning its
    huey consumers, which take both CPUs here for several seconds."""
    start = time.monotonic()
    used = server.cpu_seconds()
    while time.monotonic() - start < budget_s:
        time.sleep(2.0)
        now = server.cpu_seconds()
        if (now - used) / 2.0 < cores:
            break
        used = now
    return time.monotonic() - start


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the block, restoring the previous values after it."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


# ---------------------------------------------------------------------- concurrent writers (e)
def run_writers(
    system: str, url: str, env: dict[str, str], cwd: Path, plan: Plan, points: int, budget_s: float
) -> dict[str, Any]:
    """Start ``plan.writers`` writer processes, let them go at once, and collect what each logged."""
    cwd.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        str(HERE / "server_writers.py"),
        system,
        url,
        EXP_WRITERS,
        str(points),
        str(budget_s),
    ]
    procs: list[subprocess.Popen[str]] = []
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    try:
        for i in range(plan.writers):
            log = (cwd / f"writer-{i}.err").open("w")
            procs.append(
                subprocess.Popen(
                    cmd,
                    env=env,
                    cwd=cwd,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                )
            )
            log.close()
        deadline = time.monotonic() + plan.start_budget_s
        for proc in procs:  # each prints "ready" once its client is up and its run exists
            assert proc.stdout is not None
            waiting = max(0.0, deadline - time.monotonic())
            line = proc.stdout.readline() if select.select([proc.stdout], [], [], waiting)[0] else ""
            if line.strip() != "ready":
                raise RuntimeError(f"a {system} writer did not start: {line!r} (see {cwd})")
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        deadline = time.monotonic() + budget_s + 120
        for i, proc in enumerate(procs):
            try:
                out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                failures.append(f"writer {i} did not finish in time")
                continue
            lines = [line for line in out.splitlines() if line.startswith("{")]
            if proc.returncode != 0 or not lines:
                tail = (cwd / f"writer-{i}.err").read_text(errors="replace").strip().splitlines()[-1:]
                failures.append(f"writer {i} exited {proc.returncode}: {' '.join(tail)[:300]}")
                continue
            results.append(json.loads(lines[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    logged = sum(r["logged"] for r in results)
    errors = sum(r["errors"] for r in results)
    seconds = (max(r["end"] for r in results) - min(r["start"] for r in results)) if results else 0.0
    return {
        "writers": plan.writers,
        "finished": len(results),
        "failures": failures,
        "logged": logged,
        "errors": errors,
        "seconds": seconds,
        "rate": logged / seconds if seconds > 0 else 0.0,
        "runs": [(r["run_id"], r["logged"]) for r in results],
    }


def count_lost(figures: dict[str, Any], history: Callable[[str], list[int]]) -> None:
    """Read every writer's points back through the API: lost = logged - distinct steps stored; duplicates =
    points stored more than once."""
    lost = duplicates = 0
    for run_id, logged in figures["runs"]:
        steps = history(run_id)
        lost += logged - len(set(steps))
        duplicates += len(steps) - len(set(steps))
    figures.update(lost=lost, duplicates=duplicates)


# ---------------------------------------------------------------------- Shipyard
class ShipyardServer:
    """One ``shipyard server`` process on ``store_url``, and this process's team-mode client of it."""

    def __init__(self, label: str, store_url: str, root: Path, workers: int) -> None:
        self.label, self.store_url, self.root, self.workers = label, store_url, root, workers
        self.artifacts = root / "server-artifacts"
        self.client_home = root / "client-home"
        self.client_home.mkdir(parents=True, exist_ok=True)
        self.url = ""
        self.name_clashes = 0

    def command(self, port: int) -> list[str]:
        cmd = [sys.executable, "-m", "shipyard.cli", "server", "--port", str(port), "--store", self.store_url]
        cmd += ["--artifacts", str(self.artifacts), "--log-level", "warning"]
        return cmd + (["--workers", str(self.workers)] if self.workers > 1 else [])

    def team_environ(self) -> dict[str, str]:
        return {
            "SHIPYARD_TRACKING_URI": self.url,
            "SHIPYARD_HOME": str(self.client_home),
            "SHIPYARD_CEILING_DIRECTORIES": str(self.root),
        }

    def settings(self) -> shipyard.Settings:
        return shipyard.Settings.load(environ=self.team_environ(), cwd=self.client_home)

    # -- filling the store before the server starts ----------------------------------------------------
    def fill(self, count: int, analyze: bool) -> tuple[float, list[float]]:
        """``count`` finished runs of 10 params and 5 latest metrics each, written straight into the
        server's SQL store in a few large transactions (no metric history: search reads latest values)."""
        import sqlalchemy as sa

        from shipyard.store import schema
        from shipyard.store.db import open_store
        from shipyard.tracking.client import TrackingClient

        start = clock()
        local = shipyard.Settings.load(
            environ={
                "SHIPYARD_HOME": str(self.root / "fill-home"),
                "SHIPYARD_DB_URL": self.store_url,
                "SHIPYARD_CEILING_DIRECTORIES": str(self.root),
            },
            cwd=self.root,
        )
        experiment = TrackingClient(local).get_or_create_experiment(EXP_SCALE)
        store = open_store(self.store_url)
        rng = random.Random(4242)
        m0_values = []
        base = int(time.time() * 1000) - count
        chunk = 20_000
        for first in range(0, count, chunk):
            batch = range(first, min(first + chunk, count))
            run_rows = []
            for i in batch:
                run_id = uuid.uuid4().hex
                run_rows.append(
                    {
                        "run_id": run_id,
                        "experiment_id": experiment.experiment_id,
                        "name": f"scale-{i}",
                        "status": "FINISHED",
                        "user": "bench",
                        "start_time": base + i,
                        "end_time": base + i + 1,
                        "artifact_uri": f"{experiment.artifact_location.rstrip('/')}/{run_id}/artifacts",
                        "lifecycle_stage": "active",
                    }
                )
            with store.write() as conn:
                conn.execute(schema.runs.insert(), run_rows)
                ids = [r["run_id"] for r in run_rows]
                pks = dict(
                    conn.execute(
                        sa.select(schema.runs.c.run_id, schema.runs.c.id).where(schema.runs.c.run_id.in_(ids))
                    ).all()
                )
                param_rows, metric_rows = [], []
                for i, row in zip(batch, run_rows, strict=True):
                    pk = pks[row["run_id"]]
                    params, metrics = run_payload(rng, i)
                    m0_values.append(metrics["m0"])
                    param_rows += [{"run_pk": pk, "key": k, "value": v} for k, v in params.items()]
                    metric_rows += [
                        {"run_pk": pk, "key": k, "value": v, "step": 0, "timestamp": row["start_time"]}
                        for k, v in metrics.items()
                    ]
                conn.execute(schema.params.insert(), param_rows)
                conn.execute(schema.latest_metrics.insert(), metric_rows)
        if analyze:
            with store.write() as conn:
                conn.exec_driver_sql("ANALYZE")
        store.engine.dispose()
        return clock() - start, m0_values

    # -- the rows -----------------------------------------------------------------------------------------
    def start_run(self, experiment: str, settings: shipyard.Settings) -> shipyard.ActiveRun:
        for attempt in range(3):
            try:
                return shipyard.start_run(experiment=experiment, settings=settings)
            except shipyard.AlreadyExists:
                # NOTE: a generated run name that clashes is a Shipyard bug; count it, say so, go on.
                self.name_clashes += 1
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def measure(self, plan: Plan, scale_m0: list[float], blob: Path, blob_sha: str) -> Figures:
        figures = Figures(self.label)
        settings = self.settings()
        client = shipyard.get_client(settings)
        for name in (EXP_METRICS, EXP_RUNS, EXP_ARTIFACTS, EXP_WRITERS):
            client.get_or_create_experiment(name)

        n = plan.single_points
        begin(f"(a) Shipyard [{self.label}]: {n:,} log_metric calls + flush, {plan.single_rounds} fresh runs")
        samples = []
        for _ in range(plan.single_rounds):
            with self.start_run(EXP_METRICS, settings) as run:
                harness.settle()
                start = clock()
                for step in range(n):
                    run.log_metric("loss", point_value(step), step=step)
                run.flush()
                samples.append(clock() - start)
                stored = len(client.metric_history(run.run_id, "loss"))
        figures.single = {
            "points": n,
            "seconds": statistics.median(samples),
            "rounds_s": samples,
            "rate": n / statistics.median(samples),
            "stored_last_round": stored,
        }

        begin(f"(b) Shipyard [{self.label}]: {plan.runs:,} runs with 10 params + 5 metrics, ended")

        def creator(experiment: str) -> Callable[[dict[str, str], dict[str, float]], None]:
            def create(params: dict[str, str], metrics: dict[str, float]) -> None:
                with self.start_run(experiment, settings) as run:
                    run.log_params(params)
                    run.log_metrics(metrics)

            return create

        create = creator(EXP_RUNS)
        done, seconds, m0_values = create_runs(
            create, plan.runs, plan.runs_budget_s, f"Shipyard [{self.label}]"
        )
        figures.runs = {"runs": done, "seconds": seconds, "rate": done / seconds, "planned": plan.runs}

        with environment(**self.team_environ()):
            # NOTE: shipyard.search_runs finds the server in the environment, as a user's script would.
            def search(experiment: str) -> list[float]:
                found = shipyard.search_runs(
                    experiment, FILTER, order_by=ORDER_SHIPYARD, max_results=MAX_RESULTS
                )
                return [run.metrics["m0"] for run in found]

            _, _, small_m0 = create_runs(creator(EXP_SMALL), SMALL_RUNS, 60.0, "small experiment")
            searches = (
                ("search", EXP_RUNS, m0_values),
                ("scale", EXP_SCALE, scale_m0),
                ("small", EXP_SMALL, small_m0),
            )
            for row, experiment, values in searches:
                what = f"search over {len(values):,} runs, {plan.search_repeats} calls"
                begin(f"(c) Shipyard [{self.label}]: {what}")
                ms, ms_samples = harness.median_ms(
                    lambda e=experiment: search(e), repeats=plan.search_repeats
                )
                found = search(experiment)
                setattr(
                    figures,
                    row,
                    {
                        "runs": len(values),
                        "ms": ms,
                        "samples_ms": ms_samples,
                        "correct": found == expected_top(values),
                        "found": len(found),
                    },
                )

            begin(f"(d) Shipyard [{self.label}]: a {plan.artifact_mib} MiB artifact up and down")
            # NOTE: the shipyard-artifacts filesystem finds its server in the environment, not in `settings`.
            with self.start_run(EXP_ARTIFACTS, settings) as run:
                with RssPeak() as up_rss:
                    start = clock()
                    run.log_artifact(blob, "data")
                    up_s = clock() - start
                run_id = run.run_id
            out = self.root / "download"
            with RssPeak() as down_rss:
                start = clock()
                got = client.download_artifacts(run_id, f"data/{blob.name}", out)
                down_s = clock() - start
            correct = sha256_of(got) == blob_sha
            shutil.rmtree(out, ignore_errors=True)
            figures.artifact = _artifact_figures(plan.artifact_mib, up_s, down_s, up_rss, down_rss, correct)

        what = f"{plan.writers} writer processes x {plan.writer_points:,} log_metric calls"
        begin(f"(e) Shipyard [{self.label}]: {what}")
        env = child_env(**self.team_environ())
        writers = run_writers(
            "shipyard", self.url, env, self.root / "writers", plan, plan.writer_points, plan.writer_budget_s
        )
        count_lost(writers, lambda run_id: [m.step for m in client.metric_history(run_id, "loss")])
        figures.writers = writers
        return figures


def measure_shipyard(
    label: str, store_url: str, root: Path, workers: int, plan: Plan, blob: Path, blob_sha: str, analyze: bool
) -> Figures:
    side = ShipyardServer(label, store_url, root, workers)
    progress(f"Shipyard [{label}]: writing {plan.scale_runs:,} runs into the server's store before it starts")
    fill_s, scale_m0 = side.fill(plan.scale_runs, analyze)
    progress(f"    {plan.scale_runs:,} runs in {fill_s:,.1f} s")
    port = free_port()
    env = child_env(SHIPYARD_HOME=str(root / "server-home"))
    name = f"shipyard-server-{root.name}"
    with serving(name, side.command(port), env, root / "server", SHIPYARD_HEALTH, plan) as server:
        side.url = server.url
        figures = side.measure(plan, scale_m0, blob, blob_sha)
        figures.server = {"ready_s": server.ready_s, "idle_s": server.idle_s}
    figures.scale.update(fill_s=fill_s, analyzed=analyze)
    figures.runs["name_clashes"] = side.name_clashes
    return figures


# ---------------------------------------------------------------------- MLflow
class MlflowServer:
    """``mlflow server`` on SQLite with proxied artifacts, and this process's client of it."""

    def __init__(self, root: Path) -> None:
        # NOTE: MLflow reads these when imported, so they are set first and mlflow is imported here.
        os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
        os.environ["DO_NOT_TRACK"] = "true"
        os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"
        # A failed request fails at once instead of being retried for minutes (counted in row (e)).
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "60"
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"  # the table owns stdout
        os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
        try:
            import mlflow
            from mlflow import MlflowClient
            from mlflow.entities import Metric, Param
        except ModuleNotFoundError as exc:
            sys.exit(f"MLflow is not installed ({exc}); install the peers with: pip install -e '.[bench]'")
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self.mlflow, self.MlflowClient, self.Metric, self.Param = mlflow, MlflowClient, Metric, Param
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.db_uri = f"sqlite:///{root / 'mlflow.db'}"
        self.url = ""

    def command(self, port: int) -> list[str]:
        return [
            str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
            "--backend-store-uri", self.db_uri,
            "--serve-artifacts", "--artifacts-destination", str(self.root / "server-artifacts"),
        ]  # fmt: skip

    def fill(self, count: int, budget_s: float) -> tuple[int, float, list[float]]:
        """The search rows' runs, written through MLflow's own SQL store before its server starts (through
        the server they would take ~4 requests of ~45 ms each per run)."""
        client = self.MlflowClient(tracking_uri=self.db_uri)
        experiment_id = client.create_experiment(EXP_SEARCH, artifact_location=(self.root / "fill").as_uri())
        timestamp = int(time.time() * 1000)

        def create(params: dict[str, str], metrics: dict[str, float]) -> None:
            run_id = client.create_run(experiment_id).info.run_id
            client.log_batch(
                run_id,
                metrics=[self.Metric(k, v, timestamp, 0) for k, v in metrics.items()],
                params=[self.Param(k, v) for k, v in params.items()],
            )
            client.set_terminated(run_id)

        done, seconds, m0_values = create_runs(create, count, budget_s, "MLflow store")
        with contextlib.suppress(Exception):  # let go of the file before the server opens it
            client._tracking_client.store.engine.dispose()
        return done, seconds, m0_values

    def measure(self, plan: Plan, search_m0: list[float], blob: Path, blob_sha: str) -> Figures:
        mlflow = self.mlflow
        figures = Figures("MLflow")
        os.environ["MLFLOW_TRACKING_URI"] = self.url
        mlflow.set_tracking_uri(self.url)
        client = self.MlflowClient(tracking_uri=self.url)
        ids = {
            name: client.create_experiment(name)
            for name in (EXP_METRICS, EXP_RUNS, EXP_ARTIFACTS, EXP_WRITERS)
        }
        search_id = client.get_experiment_by_name(EXP_SEARCH).experiment_id

        n = plan.single_points
        budget = plan.mlflow_single_budget_s
        begin(f"(a) MLflow: up to {n:,} mlflow.log_metric calls (one request each), budget {budget:.0f} s")
        done = 0
        with mlflow.start_run(experiment_id=ids[EXP_METRICS]) as active:
            harness.settle()
            start = clock()
            for step in range(n):
                mlflow.log_metric("loss", point_value(step), step=step)
                done += 1
                if clock() - start > budget:
                    break
            seconds = clock() - start
            stored = len(client.get_metric_history(active.info.run_id, "loss"))
        figures.single = {"points": done, "seconds": seconds, "rate": done / seconds, "stored": stored}

        budget = plan.mlflow_runs_budget_s
        begin(
            f"(b) MLflow: up to {plan.runs:,} runs with 10 params + 5 metrics, ended; budget {budget:.0f} s"
        )

        def create(params: dict[str, str], metrics: dict[str, float]) -> None:
            with mlflow.start_run(experiment_id=ids[EXP_RUNS]):
                mlflow.log_params(params)
                mlflow.log_metrics(metrics)

        done, seconds, _ = create_runs(create, plan.runs, budget, "MLflow")
        figures.runs = {"runs": done, "seconds": seconds, "rate": done / seconds, "planned": plan.runs}

        def search() -> list[float]:
            frame = mlflow.search_runs(
                experiment_ids=[search_id],
                filter_string=FILTER,
                order_by=ORDER_MLFLOW,
                max_results=MAX_RESULTS,
            )
            return [float(v) for v in frame["metrics.m0"]] if len(frame) else []

        begin(f"(c) MLflow: search over {len(search_m0):,} runs, {plan.search_repeats} calls")
        ms, samples = bounded_median_ms(search, plan.search_repeats, plan.mlflow_search_budget_s)
        found = search()
        figures.search = {
            "runs": len(search_m0),
            "ms": ms,
            "samples_ms": samples,
            "correct": found == expected_top(search_m0),
            "found": len(found),
        }

        begin(f"(d) MLflow: a {plan.artifact_mib} MiB artifact up and down (proxied through the server)")
        with mlflow.start_run(experiment_id=ids[EXP_ARTIFACTS]) as active:
            with RssPeak() as up_rss:
                start = clock()
                mlflow.log_artifact(str(blob), "data")
                up_s = clock() - start
            run_id = active.info.run_id
        out = self.root / "download"
        out.mkdir(exist_ok=True)
        with RssPeak() as down_rss:
            start = clock()
            got = client.download_artifacts(run_id, f"data/{blob.name}", str(out))
            down_s = clock() - start
        correct = sha256_of(Path(got)) == blob_sha
        shutil.rmtree(out, ignore_errors=True)
        figures.artifact = _artifact_figures(plan.artifact_mib, up_s, down_s, up_rss, down_rss, correct)

        budget = plan.mlflow_writer_budget_s
        begin(
            f"(e) MLflow: {plan.writers} writer processes, MlflowClient.log_metric one by one, {budget:.0f} s"
        )
        env = child_env(
            MLFLOW_TRACKING_URI=self.url,
            MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
            MLFLOW_HTTP_REQUEST_TIMEOUT="60",
        )
        writers = run_writers(
            "mlflow", self.url, env, self.root / "writers", plan, plan.single_points, budget
        )
        count_lost(writers, lambda run_id: [m.step for m in client.get_metric_history(run_id, "loss")])
        figures.writers = writers
        return figures


def measure_mlflow(root: Path, plan: Plan, blob: Path, blob_sha: str) -> Figures:
    side = MlflowServer(root)
    progress(f"MLflow: writing {plan.runs:,} runs for (c1) through its SQL store before its server starts")
    done, fill_s, search_m0 = side.fill(plan.runs, plan.mlflow_fill_budget_s)
    progress(f"    {done:,} runs in {fill_s:,.1f} s ({done / fill_s:,.0f} runs/s)")
    port = free_port()
    with serving(
        "mlflow server", side.command(port), child_env(), root / "server", MLFLOW_HEALTH, plan
    ) as server:
        side.url = server.url
        figures = side.measure(plan, search_m0, blob, blob_sha)
        figures.server = {"ready_s": server.ready_s, "idle_s": server.idle_s}
    figures.search["fill_s"] = fill_s
    figures.search["fill_rate"] = done / fill_s
    return figures


# ---------------------------------------------------------------------- the table
def build_results(plan: Plan, systems: list[Figures], ml: Figures) -> list[Result]:
    """The table's rows: for each row of the benchmark, one per Shipyard server (SQLite; PostgreSQL, its key
    primed), each against the same MLflow figure."""
    results: list[Result] = []
    for index, sy in enumerate(systems):
        results.append(row_single(plan, sy, ml, index, systems))
    for index, sy in enumerate(systems):
        results.append(row_runs(plan, sy, ml, index))
    for index, sy in enumerate(systems):
        results.append(row_search(plan, sy, ml, index))
    for index, sy in enumerate(systems):
        results.append(row_scale(plan, sy, ml, index))
    for index, sy in enumerate(systems):
        results.append(row_small(plan, sy, index))
    for direction in ("up", "down"):
        for index, sy in enumerate(systems):
            results.append(row_artifact(plan, sy, ml, index, direction, systems))
    for index, sy in enumerate(systems):
        results += rows_writers(plan, sy, ml, index)
    return results


def key(row: str, index: int) -> str:
    return row + "'" * index


def row_single(plan: Plan, sy: Figures, ml: Figures, index: int, systems: Sequence[Figures]) -> Result:
    n, notes = plan.single_points, []
    if index == 0:
        started = "; ".join(
            f"{f.label} answered its health check {f.server['ready_s']:.1f} s after its start and "
            + (
                f"settled {f.server['idle_s']:.0f} s later"
                if f.server["idle_s"] < plan.idle_budget_s
                else f"had not settled {plan.idle_budget_s:.0f} s later (measured anyway)"
            )
            for f in (*systems, ml)
        )
        notes.append(
            f"servers measured once settled (their CPU use under a quarter of a CPU over 2 s): {started}; "
            f"the machine's 1-minute load average ran {min(LOADS):.1f}-{max(LOADS):.1f} over the steps "
            "(other jobs share it: compare figures of the same run)"
        )
        notes.append(
            f"(a) Shipyard: median of {plan.single_rounds} fresh runs; log_metric buffers in the client, the "
            "flush sends the points in one request"
        )
        if ml.single["points"] < n:
            notes.append(
                f"(a) MLflow: one request per call; {ml.single['points']:,} of {n:,} calls measured in its "
                f"{plan.mlflow_single_budget_s:.0f} s budget, points/s computed from those"
            )
    return Result(
        key=key("a", index),
        title=f"log_metric x{n:,} one by one + flush [{sy.label}]",
        unit="points/s",
        higher_is_better=True,
        shipyard=sy.single["rate"],
        peer=ml.single["rate"],
        min_speedup=5000,
        valid=sy.single["stored_last_round"] == n and ml.single["stored"] == ml.single["points"],
        notes=tuple(notes),
        details={"shipyard": sy.single, "mlflow": ml.single},
    )


def row_runs(plan: Plan, sy: Figures, ml: Figures, index: int) -> Result:
    notes = []
    if sy.runs["runs"] < plan.runs:
        notes.append(f"(b) Shipyard [{sy.label}]: {sy.runs['runs']:,} of {plan.runs:,} runs in its budget")
    if index == 0:
        notes.append(
            "(b) requests per run: Shipyard 2 (create; end with the params and metrics, which an active "
            "run buffers against a server), MLflow 4 (create, params, metrics, end)"
        )
        if ml.runs["runs"] < plan.runs:
            notes.append(
                f"(b) MLflow: {ml.runs['runs']:,} of {plan.runs:,} runs made in its "
                f"{plan.mlflow_runs_budget_s:.0f} s budget; runs/s computed from those"
            )
    if sy.runs.get("name_clashes"):
        notes.append(f"(b) Shipyard BUG: {sy.runs['name_clashes']} generated run name(s) clashed; retried")
    return Result(
        key=key("b", index),
        title=f"create {plan.runs:,} runs (10 params + 5 metrics), ended [{sy.label}]",
        unit="runs/s",
        higher_is_better=True,
        shipyard=sy.runs["rate"],
        peer=ml.runs["rate"],
        min_speedup=20,
        notes=tuple(notes),
        details={"shipyard": sy.runs, "mlflow": ml.runs},
    )


def row_search(plan: Plan, sy: Figures, ml: Figures, index: int) -> Result:
    notes = []
    if index == 0:
        notes.append(
            f"(c1) {FILTER!r}, order by metrics.m0 desc, {MAX_RESULTS} results: shipyard.search_runs by "
            "experiment name (2 requests: the name, then the page), mlflow.search_runs by experiment id "
            f"(a DataFrame); Shipyard searches the runs of (b), MLflow {ml.search['runs']:,} runs written "
            f"through its SQL store before its server started ({ml.search['fill_rate']:,.0f} runs/s)"
        )
        if len(ml.search["samples_ms"]) < plan.search_repeats:
            notes.append(
                f"(c1) MLflow: {len(ml.search['samples_ms'])} calls timed in its "
                f"{plan.mlflow_search_budget_s:.0f} s budget"
            )
    for label, figures in ((f"Shipyard [{sy.label}]", sy.search), ("MLflow", ml.search)):
        if not figures["correct"]:
            notes.append(f"(c1) {label} returned wrong results ({figures['found']} runs)")
    return Result(
        key=key("c1", index),
        title=f"search_runs over {sy.search['runs']:,} runs, median [{sy.label}]",
        unit="ms",
        higher_is_better=False,
        shipyard=sy.search["ms"],
        peer=ml.search["ms"],
        valid=sy.search["correct"] and ml.search["correct"],
        notes=tuple(notes),
        details={"shipyard": sy.search, "mlflow": ml.search},
    )


def row_scale(plan: Plan, sy: Figures, ml: Figures, index: int) -> Result:
    analyzed = "; ANALYZE run after it, as autovacuum would" if sy.scale["analyzed"] else ""
    notes = [
        f"(c2) [{sy.label}] {sy.scale['runs']:,} runs written into the server's store before it started "
        f"({sy.scale['fill_s']:,.0f} s; no metric history{analyzed}); median of {plan.search_repeats}"
    ]
    if index == 0:
        rate = ml.search["fill_rate"]
        notes.append(
            f"(c2) MLflow not measured at {plan.scale_runs:,} runs: its store would take "
            f"~{plan.scale_runs / rate / 60:,.0f} min to write them here ({rate:,.0f} runs/s)"
        )
    if not sy.scale["correct"]:
        notes.append(f"(c2) Shipyard [{sy.label}] returned wrong results ({sy.scale['found']} runs)")
    return Result(
        key=key("c2", index),
        title=f"search_runs over {sy.scale['runs']:,} runs, median [{sy.label}]",
        unit="ms",
        higher_is_better=False,
        shipyard=sy.scale["ms"],
        max_shipyard=plan.scale_bound_ms,
        valid=sy.scale["correct"],
        notes=tuple(notes),
        details={"shipyard": sy.scale},
    )


def row_small(plan: Plan, sy: Figures, index: int) -> Result:
    notes = []
    if index == 0:
        notes.append(
            f"(c3) Shipyard only: the same search in an experiment of {sy.small['runs']} runs (made "
            f"through the API) in the store that holds the {sy.scale['runs']:,} runs of (c2); no target: it "
            "shows what a small experiment pays for a large one beside it"
        )
    if not sy.small["correct"]:
        notes.append(f"(c3) Shipyard [{sy.label}] returned wrong results ({sy.small['found']} runs)")
    return Result(
        key=key("c3", index),
        title=f"search_runs, {sy.small['runs']} runs beside {sy.scale['runs']:,}, median [{sy.label}]",
        unit="ms",
        higher_is_better=False,
        shipyard=sy.small["ms"],
        valid=sy.small["correct"],
        notes=tuple(notes),
        details={"shipyard": sy.small},
    )


def row_artifact(
    plan: Plan, sy: Figures, ml: Figures, index: int, direction: str, systems: Sequence[Figures]
) -> Result:
    notes = []
    if direction == "up" and index == 0:
        growth = "; ".join(
            f"{f.label} {f.artifact['up_rss_mib']:,.0f} / {f.artifact['down_rss_mib']:,.0f} MiB"
            for f in (*systems, ml)
        )
        notes.append(
            f"(d) {plan.artifact_mib} MiB of random bytes, proxied through each server (log_artifact, "
            f"download_artifacts); the client's RSS growth (peak over the start), up / down: {growth}"
        )
    for label, figures in ((f"Shipyard [{sy.label}]", sy.artifact), ("MLflow", ml.artifact)):
        if not figures["correct"] and direction == "down":
            notes.append(f"(d) {label}: the downloaded file differs from the uploaded one")
    verb = "upload" if direction == "up" else "download"
    return Result(
        key=key("d1" if direction == "up" else "d2", index),
        title=f"{plan.artifact_mib} MiB artifact {verb} [{sy.label}]",
        unit="MiB/s",
        higher_is_better=True,
        shipyard=sy.artifact[f"{direction}_rate"],
        peer=ml.artifact[f"{direction}_rate"],
        valid=sy.artifact["correct"] and ml.artifact["correct"],
        notes=tuple(notes),
        details={"shipyard": sy.artifact, "mlflow": ml.artifact},
    )


def rows_writers(plan: Plan, sy: Figures, ml: Figures, index: int) -> list[Result]:
    w, mw = sy.writers, ml.writers
    notes = []
    if index == 0:
        notes.append(
            f"(e1) {plan.writers} processes started first, then let go at once, one run each, log_metric one "
            f"by one: Shipyard {plan.writer_points:,} points each (buffered, sent in the background and at "
            f"the run's end); MLflow one request per point for {plan.mlflow_writer_budget_s:.0f} s "
            f"({mw['logged']:,} points, {mw['errors']:,} failed calls, {mw['lost']:,} lost); points/s = "
            "points / (last writer's end - first writer's start)"
        )
    for label, figures in ((f"Shipyard [{sy.label}]", w), ("MLflow", mw)):
        notes += [f"(e1) {label}: {failure}" for failure in figures["failures"]]
        if figures["errors"]:
            notes.append(f"(e1) {label}: {figures['errors']:,} call(s) failed")
    rate = Result(
        key=key("e1", index),
        title=f"{plan.writers} writer processes at once, points/s in all [{sy.label}]",
        unit="points/s",
        higher_is_better=True,
        shipyard=w["rate"],
        peer=mw["rate"],
        valid=not w["failures"] and not mw["failures"],
        notes=tuple(notes),
        details={"shipyard": w, "mlflow": mw},
    )
    twice = (f"(e2) [{sy.label}] {w['duplicates']:,} point(s) stored twice",) if w["duplicates"] else ()
    lost = Result(
        key=key("e2", index),
        title=f"points lost of {w['logged']:,} (logged - stored, read back) [{sy.label}]",
        unit="points",
        higher_is_better=False,
        shipyard=float(w["lost"]),
        peer=float(mw["lost"]),
        max_shipyard=1,
        valid=w["finished"] == plan.writers and not w["duplicates"] and not w["errors"],
        notes=twice,
        details={"shipyard_lost": w["lost"], "mlflow_lost": mw["lost"], "duplicates": w["duplicates"]},
    )
    return [rate, lost]


# ---------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--scale-runs", type=int, metavar="N", help="runs in the large search (100,000; quick: 10,000)"
    )
    parser.add_argument("--no-postgres", action="store_true", help="Shipyard's server on SQLite only")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary stores and logs, and say where"
    )
    args = parser.parse_args(argv)
    plan = Plan.for_args(args.quick, args.scale_runs, not args.no_postgres)
    root = Path(tempfile.mkdtemp(prefix="shipyard-bench-server-"))
    progress(f"stores under {root}; {'quick' if plan.quick else 'full'} mode; shipyard from {package_path()}")
    cluster: PostgresCluster | None = None
    try:
        blob = root / "blob.bin"
        blob_sha = make_blob(blob, plan.artifact_mib)
        systems = [
            measure_shipyard(
                "SQLite",
                f"sqlite:///{root / 'sy-sqlite' / 'shipyard.db'}",
                root / "sy-sqlite",
                1,
                plan,
                blob,
                blob_sha,
                analyze=False,
            )
        ]
        if plan.postgres:
            # A short path: the socket's path has a length limit.
            try:
                cluster = PostgresCluster(Path("/tmp") / f"sy-bench-pg-{uuid.uuid4().hex[:8]}")
                progress(f"PostgreSQL: starting a cluster on port {cluster.port}")
                cluster.start()
            except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
                detail = (getattr(exc, "stderr", b"") or b"").decode(errors="replace")[-300:]
                sys.exit(f"PostgreSQL did not start ({exc} {detail}); run with --no-postgres to skip it")
            url = cluster.create_database("shipyard_bench")
            systems.append(
                measure_shipyard(
                    "PostgreSQL, 2 workers", url, root / "sy-pg", 2, plan, blob, blob_sha, analyze=True
                )
            )
        ml = measure_mlflow(root / "mlflow", plan, blob, blob_sha)
    finally:
        if cluster is not None:
            cluster.stop()
            shutil.rmtree(cluster.root, ignore_errors=True)
        if args.keep:
            progress(f"kept the stores and server logs under {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    results = build_results(plan, systems, ml)
    info = harness.machine_info(PACKAGES)
    mode = "quick" if plan.quick else "full"
    harness.print_table(f"{TITLE}, {mode} mode", results, machine=harness.machine_line(info))
    if args.json:
        harness.write_json(args.json, TITLE, results, mode=mode, argv=list(sys.argv[1:]))
        progress(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
