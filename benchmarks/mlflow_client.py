"""The official MLflow client against ``mlflow server`` and against ``shipyard server``: the same client code.

    python benchmarks/mlflow_client.py [--quick] [--json out.json] [--no-postgres] [--keep]

Needs MLflow (the ``bench`` extra: ``.venv-bench``) and, for the PostgreSQL column, Debian's PostgreSQL
(``--no-postgres`` without it). Every server is a real process on a free port on 127.0.0.1, waited for on its
health endpoint, measured once it has settled (MLflow 3 spawns job consumers after answering /health), and
stopped (its whole process group) on the way out:

- ``mlflow server --backend-store-uri sqlite:///… --serve-artifacts`` (the peer),
- ``shipyard server --store sqlite:///… --artifacts DIR`` (one worker),
- ``shipyard server --store postgresql+psycopg://… --artifacts DIR --workers 2``.

The client is ``mlflow.MlflowClient`` in this process, synchronous (``MLFLOW_ENABLE_ASYNC_LOGGING=false``),
unchanged between servers. Rows:

(a) 10,000 ``log_metric`` calls one by one — each one HTTP round trip; the peer's loop is bounded in time
    and its rate computed from what it did (points/s). (a2) the server's part of each call: the call's time
    less the client's own, measured against a server that answers ``{}`` and does nothing (ms); the
    issue's 10x target is on the server's cost per request, which is what (a2) compares. All servers and
    the do-nothing one are up together for (a), and take turns in 20 rounds (each round a 20th of every
    loop), so that a drift of the machine's speed over the minutes falls on each of them alike
(b) 100 ``log_batch`` calls of 1,000 points (points/s)
(c) 1,000 runs created with 10 params and ended (runs/s; the peer bounded in time)
(d) ``search_runs`` over 10,000 runs: ``metrics.m0 > 0.5`` ordered by ``metrics.m0 DESC``, 100 results
    (median ms); the runs are written into each server's store before it starts, and the answers are
    checked against the values written

(e) ``mlflow.sklearn.log_model`` of a small scikit-learn model in a run, then ``mlflow.pyfunc.load_model`` of
    it by its ``models:/`` URI (median ms of 3 each; the files go through the server, which keeps them)

Every figure is checked: the points of (a) and (b) are read back through the client (``get_metric_history``)
and counted, the searches' top values compared with the expected ones, the loaded models' predictions with
the fitted model's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
from harness import PostgresCluster, Result, clock, free_port, progress
from server import FILTER, MlflowServer, ShipyardServer, child_env, expected_top, wait_idle
from serving import Server

TITLE = "The MLflow client against mlflow server and shipyard server (real processes on 127.0.0.1)"
PACKAGES = ("shipyard", "mlflow", "sqlalchemy", "psycopg", "fastapi", "uvicorn")
ORDER = ["metrics.m0 DESC"]


@dataclass(frozen=True)
class Plan:
    single: int  # (a) calls
    single_budget_s: float  # the peer's (a) loop, bounded
    batches: int  # (b) calls of BATCH points
    runs: int  # (c)
    runs_budget_s: float
    search_runs: int  # (d)
    searches: int  # (d) repeats
    fill_budget_s: float  # the peer's store filled before its server starts

    @classmethod
    def for_args(cls, quick: bool) -> Plan:
        if quick:
            return cls(1_000, 10.0, 10, 100, 10.0, 1_000, 5, 60.0)
        return cls(10_000, 30.0, 100, 1_000, 30.0, 10_000, 15, 900.0)


BATCH = 1_000


@dataclass
class Figures:
    label: str
    single_rate: float = 0.0
    single_done: int = 0
    single_stored: int = 0
    batch_rate: float = 0.0
    batch_done: int = 0
    batch_stored: int = 0
    runs_rate: float = 0.0
    runs_done: int = 0
    search_ms: float = 0.0
    search_ok: bool = False
    search_runs: int = 0
    log_model_ms: float = 0.0
    load_model_ms: float = 0.0
    models_ok: bool = False


def bounded(count: int, budget_s: float, step: Callable[[int], None]) -> tuple[int, float]:
    """Call ``step(i)`` for i in range(count), stopping once ``budget_s`` has passed; (calls, seconds)."""
    start = clock()
    done = 0
    while done < count and clock() - start < budget_s:
        step(done)
        done += 1
    return done, clock() - start


ROUNDS = 20


@dataclass
class Target:
    """A server under test (or the do-nothing one), its client, and its one-by-one loop's progress."""

    label: str
    url: str
    client: Any
    bounded_in_time: bool  # the peer: its slow loops stop at the plan's budgets
    search_experiment: str = ""
    m0: list[float] = field(default_factory=list)
    experiment: str = ""
    run_id: str = ""
    calls: int = 0
    seconds: float = 0.0

    def prepare(self) -> None:
        """An experiment and a run to log into, and a warm connection."""
        if self.search_experiment:
            self.experiment = self.client.create_experiment(f"mlflow-client-{uuid.uuid4().hex[:8]}")
            self.run_id = self.client.create_run(self.experiment).info.run_id
        else:
            self.run_id = uuid.uuid4().hex  # the do-nothing server keeps nothing
        for i in range(20):
            self.client.log_metric(self.run_id, "warm", 0.0, step=i)


def one_by_one(targets: list[Target], plan: Plan) -> None:
    """(a): every target's loop in ROUNDS turns, round robin; the peer's turns bounded in time."""
    progress(f"    (a) {plan.single:,} log_metric calls one by one each, in {ROUNDS} rounds taking turns")
    for target in targets:
        target.prepare()
    per_round = plan.single // ROUNDS
    for _ in range(ROUNDS):
        for target in targets:
            client, run_id, first = target.client, target.run_id, target.calls
            budget = plan.single_budget_s / ROUNDS if target.bounded_in_time else 600.0
            done, seconds = bounded(
                per_round,
                budget,
                lambda i: client.log_metric(run_id, "loss", (first + i) * 1e-3, step=first + i),  # noqa: B023
            )
            target.calls += done
            target.seconds += seconds


def workload(target: Target, metric: Any, param: Any, plan: Plan) -> Figures:
    """The same client calls against whichever server ``target`` is; its (a) loop ran before, taking turns
    with the others. The peer's slow loops stop at the plan's budgets, Shipyard's run to the end."""
    client, run_id, experiment = target.client, target.run_id, target.experiment
    figures = Figures(target.label)
    single_budget = plan.single_budget_s if target.bounded_in_time else 600.0
    runs_budget = plan.runs_budget_s if target.bounded_in_time else 600.0
    figures.single_done, figures.single_rate = target.calls, target.calls / target.seconds
    figures.single_stored = len(client.get_metric_history(run_id, "loss"))

    progress(f"    (b) {plan.batches} log_batch calls of {BATCH:,} points")
    now = int(time.time() * 1000)
    batches = [
        [metric("batched", float(b * BATCH + i), now, b * BATCH + i) for i in range(BATCH)]
        for b in range(plan.batches)
    ]
    done, seconds = bounded(
        plan.batches, single_budget * 4, lambda b: client.log_batch(run_id, metrics=batches[b])
    )
    figures.batch_done, figures.batch_rate = done * BATCH, done * BATCH / seconds
    figures.batch_stored = len(client.get_metric_history(run_id, "batched"))
    client.set_terminated(run_id)

    progress(f"    (c) {plan.runs:,} runs with 10 params, ended (at most {runs_budget:.0f} s)")
    params = [param(f"p{k}", str(k * 7)) for k in range(10)]

    def one_run(i: int) -> None:
        made = client.create_run(experiment).info.run_id
        client.log_batch(made, params=params)
        client.set_terminated(made)

    done, seconds = bounded(plan.runs, runs_budget, one_run)
    figures.runs_done, figures.runs_rate = done, done / seconds

    progress(f"    (d) search over {len(target.m0):,} runs, {plan.searches} times")
    search_id = client.get_experiment_by_name(target.search_experiment).experiment_id
    want = expected_top(target.m0)
    times, ok = [], True
    for _ in range(plan.searches + 1):
        start = clock()
        found = client.search_runs([search_id], FILTER, max_results=100, order_by=ORDER)
        times.append((clock() - start) * 1000)
        ok = ok and [r.data.metrics["m0"] for r in found] == want
    figures.search_ms, figures.search_ok = statistics.median(times[1:]), ok
    figures.search_runs = len(target.m0)
    log_and_load(target, figures)
    return figures


MODELS = 3


def log_and_load(target: Target, figures: Figures) -> None:
    """(e): ``log_model`` in a run, then ``load_model`` by the logged model's URI, MODELS times."""
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    progress(f"    (e) log_model + load_model, {MODELS} times")
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression().fit(X, [0, 0, 1, 1])
    want = model.predict(X).tolist()
    mlflow.set_tracking_uri(target.url)
    logged, loaded, ok = [], [], True
    for _ in range(MODELS):
        start = clock()
        with mlflow.start_run(experiment_id=target.experiment):
            info = mlflow.sklearn.log_model(model, name="model")
        logged.append((clock() - start) * 1000)
        start = clock()
        again = mlflow.pyfunc.load_model(info.model_uri)
        loaded.append((clock() - start) * 1000)
        ok = ok and again.predict(X).tolist() == want
    figures.log_model_ms, figures.load_model_ms = statistics.median(logged), statistics.median(loaded)
    figures.models_ok = ok


@contextlib.contextmanager
def started(label: str, cmd: list[str], env: dict[str, str], cwd: Path, health: str) -> Iterator[Server]:
    cwd.mkdir(parents=True, exist_ok=True)
    server = Server(label, cmd, env, cwd, set())
    try:
        ready = server.wait_ready(health, 180.0)
        idle = wait_idle(server, 60.0)
        progress(f"  {label}: ready in {ready:.1f} s, settled after {idle:.1f} s more")
        yield server
    finally:
        server.stop()


def start_shipyard(
    stack: contextlib.ExitStack, label: str, store_url: str, root: Path, workers: int, plan: Plan, peer: Any
) -> Target:
    from server import EXP_SCALE

    side = ShipyardServer(label, store_url, root, workers)
    progress(f"Shipyard [{label}]: {plan.search_runs:,} runs into the store before the server starts")
    _, m0 = side.fill(plan.search_runs, analyze="postgres" in store_url)
    port = free_port()
    env = child_env(SHIPYARD_HOME=str(root / "server-home"))
    s = stack.enter_context(
        started(f"shipyard server [{label}]", side.command(port), env, root / "server", "/api/v1/health")
    )
    return Target(f"Shipyard [{label}]", s.url, peer.MlflowClient(tracking_uri=s.url), False, EXP_SCALE, m0)


def start_mlflow(stack: contextlib.ExitStack, root: Path, plan: Plan, peer: MlflowServer) -> Target:
    from server import EXP_SEARCH

    progress(f"MLflow: {plan.search_runs:,} runs into its SQL store before its server starts")
    done, fill_s, m0 = peer.fill(plan.search_runs, plan.fill_budget_s)
    progress(f"    {done:,} runs in {fill_s:,.1f} s")
    port = free_port()
    s = stack.enter_context(
        started("mlflow server", peer.command(port), child_env(), root / "server", "/health")
    )
    return Target("MLflow", s.url, peer.MlflowClient(tracking_uri=s.url), True, EXP_SEARCH, m0)


# A server that answers every request with ``{}`` as soon as it has arrived (keep-alive): what the client
# costs on its own. Raw asyncio in a process of its own (in this one, client and stub would share the GIL).
_DO_NOTHING = """
import asyncio, sys
ANSWER = b"HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\ncontent-length: 2\\r\\n\\r\\n{}"
class DoNothing(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""
    def data_received(self, data):
        self.buffer += data
        while b"\\r\\n\\r\\n" in self.buffer:
            head, _, rest = self.buffer.partition(b"\\r\\n\\r\\n")
            length = 0
            for line in head.split(b"\\r\\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if len(rest) < length:
                return
            self.buffer = rest[length:]
            self.transport.write(ANSWER)
async def main():
    server = await asyncio.get_running_loop().create_server(DoNothing, "127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


@contextlib.contextmanager
def do_nothing_server(peer: Any) -> Iterator[Target]:
    """The client against a server that does nothing: what a ``log_metric`` call costs the client itself
    (its HTTP stack, its checks), which no server can go under."""
    port = free_port()
    stub = subprocess.Popen([sys.executable, "-c", _DO_NOTHING, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert stub.stdout is not None and stub.stdout.readline().strip() == "ready"
        url = f"http://127.0.0.1:{port}"
        yield Target("the client alone", url, peer.MlflowClient(tracking_uri=url), False)
    finally:
        stub.kill()
        stub.wait(10)


def build_results(plan: Plan, systems: list[Figures], ml: Figures, floor_s: float) -> list[Result]:
    results = []
    for sy in systems:
        complete = sy.single_stored == sy.single_done == plan.single and ml.single_stored == ml.single_done
        # The server's time a call: the call's time less the client's own (its floor, measured alike).
        server_ms, peer_ms = (
            (1000 / sy.single_rate - floor_s * 1000),
            (1000 / ml.single_rate - floor_s * 1000),
        )
        results.append(
            Result(
                f"a2-{sy.label}",
                f"(a2) the server's time per log_metric (call time less the client's own), {sy.label}",
                "ms",
                False,
                max(server_ms, 1e-3),
                peer_ms,
                min_speedup=10.0,
                valid=complete and server_ms > 0,
                notes=(
                    f"the client alone, against a server that does nothing: {floor_s * 1000:.2f} ms a call "
                    f"({1 / floor_s:,.0f} calls/s), so no server can give more than that through it",
                ),
            )
        )
        results.append(
            Result(
                f"a-{sy.label}",
                f"(a) log_metric one by one, {sy.label}",
                "points/s",
                True,
                sy.single_rate,
                ml.single_rate,
                valid=complete,
                notes=(
                    f"{sy.single_done:,} calls, {sy.single_stored:,} read back; MLflow {ml.single_done:,} "
                    f"calls in its time budget, {ml.single_stored:,} read back",
                ),
            )
        )
    for sy in systems:
        complete = sy.batch_stored == sy.batch_done and ml.batch_stored == ml.batch_done
        results.append(
            Result(
                f"b-{sy.label}",
                f"(b) log_batch of {BATCH:,} points, {sy.label}",
                "points/s",
                True,
                sy.batch_rate,
                ml.batch_rate,
                valid=complete,
                notes=(f"{sy.batch_done:,} points; read back: {sy.batch_stored:,} / {ml.batch_stored:,}",),
            )
        )
    for sy in systems:
        results.append(
            Result(
                f"c-{sy.label}",
                f"(c) runs with 10 params, created and ended, {sy.label}",
                "runs/s",
                True,
                sy.runs_rate,
                ml.runs_rate,
                valid=sy.runs_done == plan.runs,
                notes=(f"{sy.runs_done:,} runs; MLflow {ml.runs_done:,} in its time budget",),
            )
        )
    for sy in systems:
        results.append(
            Result(
                f"d-{sy.label}",
                f"(d) search_runs over {sy.search_runs:,} runs, {sy.label}",
                "ms",
                False,
                sy.search_ms,
                ml.search_ms,
                min_speedup=10.0,
                valid=sy.search_ok and ml.search_ok and ml.search_runs == sy.search_runs,
                notes=(
                    f"top 100 equal to the values written: Shipyard {sy.search_ok}, MLflow {ml.search_ok}; "
                    f"MLflow's store held {ml.search_runs:,} runs",
                ),
            )
        )
    for sy in systems:
        for key, title, mine, theirs in (
            ("e1", "mlflow.sklearn.log_model in a run", sy.log_model_ms, ml.log_model_ms),
            ("e2", "mlflow.pyfunc.load_model by models:/ URI", sy.load_model_ms, ml.load_model_ms),
        ):
            results.append(
                Result(
                    f"{key}-{sy.label}",
                    f"({key}) {title}, {sy.label}",
                    "ms",
                    False,
                    mine,
                    theirs,
                    valid=sy.models_ok and ml.models_ok,
                    notes=(f"median of {MODELS}; predictions as fitted: {sy.models_ok} / {ml.models_ok}",),
                )
            )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = harness.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--no-postgres", action="store_true", help="Shipyard's server on SQLite only")
    parser.add_argument("--keep", action="store_true", help="keep the stores and server logs, say where")
    args = parser.parse_args(argv)
    plan = Plan.for_args(args.quick)
    root = Path(tempfile.mkdtemp(prefix="shipyard-bench-mlflow-client-"))
    os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "false"
    peer = MlflowServer(root / "mlflow")  # imports mlflow, with its environment set first
    cluster: PostgresCluster | None = None
    try:
        with contextlib.ExitStack() as stack:
            sqlite_url = f"sqlite:///{root / 'sy-sqlite' / 'shipyard.db'}"
            targets = [start_shipyard(stack, "SQLite", sqlite_url, root / "sy-sqlite", 1, plan, peer)]
            if not args.no_postgres:
                try:
                    cluster = PostgresCluster(Path("/tmp") / f"sy-bench-pg-{uuid.uuid4().hex[:8]}")
                    cluster.start()
                except (RuntimeError, OSError) as exc:
                    sys.exit(f"PostgreSQL did not start ({exc}); run with --no-postgres to skip it")
                url = cluster.create_database("shipyard_bench")
                targets.append(
                    start_shipyard(stack, "PostgreSQL, 2 workers", url, root / "sy-pg", 2, plan, peer)
                )
            targets.append(start_mlflow(stack, root / "mlflow", plan, peer))
            floor = stack.enter_context(do_nothing_server(peer))
            progress("All servers up, and one that does nothing (the client's own cost)")
            one_by_one([*targets, floor], plan)
            floor_s = floor.seconds / floor.calls
            figures = []
            for target in targets:
                progress(f"{target.label}: the other rows")
                figures.append(workload(target, peer.Metric, peer.Param, plan))
            *systems, ml = figures
    finally:
        if cluster is not None:
            cluster.stop()
            shutil.rmtree(cluster.root, ignore_errors=True)
        if args.keep:
            progress(f"kept the stores and logs under {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    results = build_results(plan, systems, ml, floor_s)
    mode = "quick" if args.quick else "full"
    info = harness.machine_info(PACKAGES)
    harness.print_table(f"{TITLE}, {mode} mode", results, machine=harness.machine_line(info), peer="MLflow")
    if args.json:
        harness.write_json(args.json, TITLE, results, mode=mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
