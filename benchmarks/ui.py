"""Shipyard's web UI vs ``mlflow ui`` in headless Chromium, on the same data in both stores.

    python benchmarks/ui.py [--quick] [--json out.json] [--keep]

Needs MLflow and Playwright in the same environment (``pip install -e '.[bench]' playwright``; never
``playwright install``: Debian's ``/usr/bin/chromium`` is used) and Shipyard on the path.

The same runs go into both stores first, written straight into their SQL tables (``ui_seed.py``): runs-table
experiments of 1,000, 10,000 and 100,000 runs with 20 params and 20 metrics each; a compare experiment of
500 runs with a 10,000-step history of 2 metrics (MLflow gets its first 100: one ``metrics`` row a point);
and, for Shipyard alone, a finished pipeline run of 2,000 distinct steps. Then each UI runs as a real server
process on 127.0.0.1 (``shipyard ui``, ``mlflow ui``), one after the other, measured once it has settled,
and Chromium loads its pages (``ui_browser.py``), timing from navigation start until:

(a) the runs table shows its first row (the experiment's newest run) — each size, both UIs;
(b) Shipyard's runs-table request at the largest size, median of 20 GETs (httpx, keep-alive) beside the
    request MLflow's table waits on (its runs/search, replayed); the route's own time in-process in the
    footnote (the app through Starlette's TestClient, no socket; and its store query alone);
(c) a compare of 100 and 500 runs has drawn every chart (Shipyard: a uPlot canvas per metric; MLflow: its
    metric page's Plotly chart of both metrics for every run, at 100 runs);
(d) the 2,000-step pipeline DAG is in the DOM and laid out (Shipyard alone: MLflow has no pipelines).

``--quick``: 1,000 and 10,000 runs, compare of 20 and 50 runs x 2,000 steps, fewer loads (a few minutes).
Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import harness
from harness import Result, clock, free_port, progress
from server import child_env, package_path, serving
from ui_browser import DAG_DRAWN, FIRST_ROW, PLOTLY_LINES, UPLOT_CHARTS, Browser, Loads
from ui_seed import CURVES, METRICS, PARAMS, MlflowSeeder, ShipyardSeeder, wide_pipeline

BIN = Path(sys.executable).parent
TITLE = "Shipyard UI vs MLflow 3 UI in headless Chromium (real server processes on 127.0.0.1)"
PACKAGES = ("shipyard", "mlflow", "sqlalchemy", "fastapi", "uvicorn", "playwright")
SHIPYARD_HEALTH, MLFLOW_HEALTH = "/api/v1/health", "/health"
SHIPYARD_ROW = "#runs-body tr[data-href]"
MLFLOW_ROW = '.ag-row[row-index="0"] a'  # ag-grid's first row; its first link is the run's name
# The targets, at its sizes (a quick run checks those of its sizes that it measures).
TARGET_ROWS_AT, TARGET_ROWS_MS = 100_000, 1000.0
TARGET_SPEEDUP_AT, TARGET_SPEEDUP = 10_000, 10.0
TARGET_SERVER_MS = 50.0
TARGET_COMPARE_AT, TARGET_COMPARE_MS = 500, 2000.0
TARGET_DAG_MS = 2000.0


@dataclass(frozen=True)
class Plan:
    """Sizes, repeats and time budgets of one run."""

    quick: bool
    table_sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    loads: int = 5  # timed page loads after a warm-up one
    page_budget_s: float = 60.0  # per load, each UI
    server_repeats: int = 20
    mlflow_server_budget_s: float = 60.0
    compare_sizes: tuple[int, ...] = (100, 500)
    compare_steps: int = 10_000
    mlflow_compare_max: int = 100  # 500 runs x 10,000 steps x 2 metrics would be 10 million metric rows
    compare_loads: int = 3
    compare_budget_s: float = 120.0
    mlflow_compare_budget_s: float = 300.0  # its metric page took ~150 s at 100 runs here
    mlflow_compare_total_s: float = 360.0  # warm-up and timed loads together: at least one timed load
    dag_steps: int = 2_000
    dag_loads: int = 3
    dag_budget_s: float = 120.0
    start_budget_s: float = 120.0
    idle_budget_s: float = 60.0  # how long a started server may take to settle (server.serving)

    @classmethod
    def for_args(cls, quick: bool) -> Plan:
        if quick:
            return cls(
                quick=True,
                table_sizes=(1_000, 10_000),
                loads=3,
                server_repeats=10,
                mlflow_server_budget_s=20.0,
                compare_sizes=(20, 50),
                compare_steps=2_000,
                compare_loads=2,
                dag_loads=2,
                idle_budget_s=40.0,
            )
        return cls(quick=False)


@dataclass
class Side:
    """One system's data (filled by the seeding) and figures (by the measuring)."""

    label: str
    tables: dict[int, str] = field(default_factory=dict)  # size -> experiment id
    newest: dict[int, str] = field(default_factory=dict)  # size -> the run the table shows first
    compare_runs: list[str] = field(default_factory=list)
    compare_experiment: str = ""
    pipeline_run: str = ""
    seed_s: dict[str, float] = field(default_factory=dict)
    rows: dict[int, Loads] = field(default_factory=dict)
    compare: dict[int, Loads] = field(default_factory=dict)
    dag: Loads | None = None
    server: dict[str, Any] = field(default_factory=dict)  # the runs-table request at the largest size
    in_process: dict[str, Any] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)


LOADS: list[float] = []  # the machine's 1-minute load average at each step (it may be shared)


def begin(message: str) -> None:
    LOADS.append(os.getloadavg()[0])
    progress(message)


# ---------------------------------------------------------------------- seeding
def seed_shipyard(root: Path, plan: Plan, base_ms: int) -> tuple[Side, Any]:
    import shipyard

    side = Side("Shipyard")
    home = root / "sy-home"
    settings = shipyard.Settings.load(
        environ={"SHIPYARD_HOME": str(home), "SHIPYARD_CEILING_DIRECTORIES": str(root)}, cwd=home
    )
    seeder = ShipyardSeeder(settings)
    try:
        for n in plan.table_sizes:
            begin(f"Shipyard: writing {n:,} runs ({PARAMS} params + {METRICS} metrics each) into its store")
            start = clock()
            side.tables[n], _ = seeder.table(f"table-{n}", n, n, base_ms)
            side.newest[n] = f"run-{n - 1:06d}"
            side.seed_s[f"table-{n}"] = clock() - start
        count = max(plan.compare_sizes)
        begin(f"Shipyard: writing {count} runs x {plan.compare_steps:,} steps of {', '.join(CURVES)}")
        start = clock()
        side.compare_experiment, side.compare_runs = seeder.curves(
            "compare", count, plan.compare_steps, base_ms
        )
        side.seed_s["compare"] = clock() - start
        begin(f"Shipyard: writing a pipeline run of {plan.dag_steps:,} steps")
        start = clock()
        spec_yaml, steps = wide_pipeline(plan.dag_steps)
        side.pipeline_run = seeder.pipeline("pipelines", spec_yaml, steps, base_ms)
        side.seed_s["pipeline"] = clock() - start
        side.seed_s["spec_kib"] = len(spec_yaml.encode()) / 1024
    finally:
        seeder.close()
    return side, settings


def seed_mlflow(root: Path, plan: Plan, base_ms: int) -> tuple[Side, Path]:
    os.environ.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    side = Side("MLflow")
    folder = root / "mlflow"
    folder.mkdir(parents=True, exist_ok=True)
    start = clock()
    seeder = MlflowSeeder(folder / "mlflow.db", folder / "artifacts")
    side.seed_s["schema"] = clock() - start
    try:
        for n in plan.table_sizes:
            begin(f"MLflow: writing {n:,} runs ({PARAMS} params + {METRICS} metrics each) into its store")
            start = clock()
            side.tables[n], _ = seeder.table(f"table-{n}", n, n, base_ms)
            side.newest[n] = f"run-{n - 1:06d}"
            side.seed_s[f"table-{n}"] = clock() - start
        count = min(max(plan.compare_sizes), plan.mlflow_compare_max)
        begin(f"MLflow: writing {count} runs x {plan.compare_steps:,} steps of {', '.join(CURVES)}")
        start = clock()
        side.compare_experiment, side.compare_runs = seeder.curves(
            "compare", count, plan.compare_steps, base_ms
        )
        side.seed_s["compare"] = clock() - start
    finally:
        seeder.close()
    return side, folder / "mlflow.db"


# ---------------------------------------------------------------------- Shipyard
def route_in_process(settings: Any, side: Side, plan: Plan) -> None:
    """The runs-table route at the largest size with no server around it: the app through Starlette's
    TestClient (no socket, no uvicorn), and the store's page query alone."""
    from starlette.testclient import TestClient

    from shipyard.server.app import create_app

    n = max(plan.table_sizes)
    experiment = side.tables[n]
    begin(f"Shipyard: the runs-table route in-process at {n:,} runs, {plan.server_repeats} calls")
    app = create_app(settings)
    store = app.state.stores.tracking
    with TestClient(app) as client:
        path = f"/ui/experiments/{experiment}"

        def get() -> None:
            answer = client.get(path)
            assert answer.status_code == 200, answer.text[-300:]

        route_ms, route_samples = harness.median_ms(get, repeats=plan.server_repeats)

        def query() -> None:
            store.search_page([experiment], None, None, limit=50, columns=None, include_deleted=False)

        query_ms, query_samples = harness.median_ms(query, repeats=plan.server_repeats)
    side.in_process = {
        "runs": n,
        "route_ms": route_ms,
        "route_samples_ms": route_samples,
        "search_page_ms": query_ms,
        "search_page_samples_ms": query_samples,
        **route_parts(app, side, plan),
    }


def route_parts(app: Any, side: Side, plan: Plan) -> dict[str, float]:
    """The parts of the compare and pipeline-run routes, in-process, once each (ms): where their time goes."""
    from shipyard.pipelines import run_status
    from shipyard.tracking import TrackingClient
    from shipyard.ui import pipeline_dag

    k = max(plan.compare_sizes)
    begin(f"Shipyard: the parts of the compare ({k} runs) and pipeline-run routes, in-process")
    store = app.state.stores.tracking
    client = TrackingClient(app.state.settings, stores=app.state.stores)
    parts: dict[str, float] = {}

    def part(name: str, fn: Any) -> Any:
        harness.settle()
        start = clock()
        value = fn()
        parts[name] = (clock() - start) * 1000.0
        return value

    part("compare_metric_arrays_ms", lambda: store.metric_arrays(side.compare_runs[:k], CURVES[0]))
    run = client.get_run(side.pipeline_run)
    part("dag_step_runs_ms", lambda: run_status.step_runs(client, run))
    part("dag_spec_parse_ms", lambda: run_status.pipeline_spec(client, side.pipeline_run))
    state = part("dag_pipeline_state_ms", lambda: run_status.pipeline_state(client, side.pipeline_run))
    spec = run_status.pipeline_spec(client, side.pipeline_run)
    part("dag_draw_ms", lambda: pipeline_dag.draw(spec, state))
    return parts


def median_get(url: str, repeats: int, budget_s: float) -> dict[str, Any]:
    """Median wall time of GETs of ``url`` over one keep-alive connection, after one untimed."""
    import httpx

    with httpx.Client(timeout=budget_s) as web:
        first = web.get(url)
        first.raise_for_status()
        samples = []
        start = clock()
        for _ in range(repeats):
            began = clock()
            web.get(url).raise_for_status()
            samples.append((clock() - began) * 1000.0)
            if len(samples) >= 3 and clock() - start > budget_s:
                break
    return {"ms": statistics.median(samples), "samples_ms": samples, "bytes": len(first.content)}


def measure_shipyard(root: Path, side: Side, plan: Plan, browser: Browser) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "shipyard.cli", "ui", "--port", str(port)]
    env = child_env(SHIPYARD_HOME=str(root / "sy-home"), SHIPYARD_CEILING_DIRECTORIES=str(root))
    with serving("shipyard ui", cmd, env, root / "sy-server", SHIPYARD_HEALTH, plan) as server:
        side.started = {"ready_s": server.ready_s, "idle_s": server.idle_s}
        tab = browser.tab()
        try:
            for n in plan.table_sizes:
                begin(f"Shipyard: runs table of {n:,} runs, {plan.loads} loads")
                url = f"{server.url}/ui/experiments/{side.tables[n]}"
                side.rows[n] = tab.loads(url, FIRST_ROW, SHIPYARD_ROW, plan.page_budget_s, plan.loads)
            n = max(plan.table_sizes)
            begin(f"Shipyard: the runs-table request at {n:,} runs, {plan.server_repeats} GETs")
            url = f"{server.url}/ui/experiments/{side.tables[n]}"
            side.server = median_get(url, plan.server_repeats, plan.page_budget_s)
            for k in plan.compare_sizes:
                begin(
                    f"Shipyard: compare of {k} runs x {plan.compare_steps:,} steps, "
                    f"{plan.compare_loads} loads after a warm-up"
                )
                url = f"{server.url}/ui/compare?" + "&".join(f"runs={r}" for r in side.compare_runs[:k])
                side.compare[k] = tab.loads(
                    url,
                    UPLOT_CHARTS,
                    len(CURVES),
                    plan.compare_budget_s,
                    plan.compare_loads,
                    "/ui/compare/series",
                )
            begin(f"Shipyard: pipeline run of {plan.dag_steps:,} steps, {plan.dag_loads} loads")
            url = f"{server.url}/ui/pipelines/runs/{side.pipeline_run}"
            side.dag = tab.loads(url, DAG_DRAWN, plan.dag_steps, plan.dag_budget_s, plan.dag_loads)
        finally:
            tab.close()


# ---------------------------------------------------------------------- MLflow
def metric_page(base: str, runs: list[str], experiment: str) -> str:
    """MLflow's metric page for ``runs``, plotting every metric of :data:`CURVES` (the URL its compare view
    links to, as its ``getMetricPageRoute`` builds it)."""
    query = (
        f"runs={json.dumps(runs, separators=(',', ':'))}&metric={quote(json.dumps(CURVES[0]))}"
        f"&experiments={json.dumps([experiment])}&plot_metric_keys={quote(json.dumps(list(CURVES)))}"
        "&plot_layout={}&x_axis=step&y_axis_scale=linear&line_smoothness=1&show_point=false"
        "&deselected_curves=[]&last_linear_y_axis_range=[]"
    )
    return f"{base}/#/metric?{query}"


def replay_search(base: str, experiment: str, repeats: int, budget_s: float) -> dict[str, Any]:
    """Median wall time of the runs/search request MLflow's runs table sends (its first page of 100 runs,
    newest first), over one keep-alive connection."""
    import httpx

    body = {
        "experiment_ids": [experiment],
        "filter": "",
        "run_view_type": "ACTIVE_ONLY",
        "max_results": 100,
        "order_by": ["attributes.start_time DESC"],
    }
    url = f"{base}/ajax-api/2.0/mlflow/runs/search"
    with httpx.Client(timeout=max(budget_s, 120.0)) as web:
        first = web.post(url, json=body)
        first.raise_for_status()
        samples = []
        start = clock()
        for _ in range(repeats):
            began = clock()
            web.post(url, json=body).raise_for_status()
            samples.append((clock() - began) * 1000.0)
            if len(samples) >= 3 and clock() - start > budget_s:
                break
    return {
        "ms": statistics.median(samples),
        "samples_ms": samples,
        "bytes": len(first.content),
        "runs": len(first.json().get("runs", [])),
    }


def measure_mlflow(root: Path, db: Path, side: Side, plan: Plan, browser: Browser) -> None:
    port = free_port()
    cmd = [str(BIN / "mlflow"), "ui", "--backend-store-uri", f"sqlite:///{db}", "--host", "127.0.0.1"]
    cmd += ["--port", str(port)]
    with serving("mlflow ui", cmd, child_env(), root / "mlflow-server", MLFLOW_HEALTH, plan) as server:
        side.started = {"ready_s": server.ready_s, "idle_s": server.idle_s}
        tab = browser.tab()
        try:
            for n in plan.table_sizes:
                begin(
                    f"MLflow: runs table of {n:,} runs, {plan.loads} loads, {plan.page_budget_s:.0f} s budget"
                )
                url = f"{server.url}/#/experiments/{side.tables[n]}/runs"
                side.rows[n] = tab.loads(
                    url, FIRST_ROW, MLFLOW_ROW, plan.page_budget_s, plan.loads, "runs/search"
                )
            n = max(plan.table_sizes)
            begin(f"MLflow: its runs-table request (runs/search) at {n:,} runs, up to {plan.server_repeats}")
            side.server = replay_search(
                server.url, side.tables[n], plan.server_repeats, plan.mlflow_server_budget_s
            )
            for k in plan.compare_sizes:
                if k > len(side.compare_runs):
                    continue
                begin(
                    f"MLflow: metric page of {k} runs x {plan.compare_steps:,} steps, {plan.compare_loads} "
                    "loads after a warm-up"
                )
                url = metric_page(server.url, side.compare_runs[:k], side.compare_experiment)
                side.compare[k] = tab.loads(
                    url, PLOTLY_LINES, len(CURVES) * k, plan.mlflow_compare_budget_s, plan.compare_loads,
                    "/metrics/get-history", plan.mlflow_compare_total_s,
                )  # fmt: skip
        finally:
            tab.close()


# ---------------------------------------------------------------------- the table
def first_text_ok(loads: Loads, expected: str) -> bool:
    return all(expected in load.seen.get("text", "") for load in (loads.warmup, *loads.timed) if load.ms)


def server_ms(loads: Loads) -> float | None:
    """Median server time of the page's document (Shipyard) or of its watched requests (the slowest of
    each load's)."""
    per_load = []
    for load in loads.timed:
        if load.server_ms:
            per_load.append(max(load.server_ms))
        elif load.document_server_ms is not None:
            per_load.append(load.document_server_ms)
    return statistics.median(per_load) if per_load else None


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def row_first_rows(plan: Plan, sy: Side, ml: Side, n: int, index: int) -> Result:
    s, m = sy.rows[n], ml.rows[n]
    notes = []
    if index == 0:
        notes.append(
            "(a) navigation start -> the table's first row (the newest run) visible, in the page's own "
            "clock; "
            f"median of {plan.loads} loads after a warm-up one, server warm, browser cache warm (one context "
            f"per UI), {BROWSER_VERSION[0]}, viewport 1400x900. Shipyard renders its first 50 rows on the "
            f"server; MLflow's page is a React app that fetches its runs (runs/search) after its bundle runs"
        )
    if m.median_ms is None:
        notes.append(
            f"(a) MLflow at {n:,} runs: did not show rows within {plan.page_budget_s:.0f} s "
            f"({'warm-up' if m.warmup.ms is None else 'a timed load'} ran out of its budget)"
        )
    else:
        notes.append(
            f"(a) at {n:,} runs: document server time Shipyard {fmt_ms(server_ms(s))}; MLflow's runs/search "
            f"server time {fmt_ms(server_ms(m))} (the slowest of each load's, median)"
        )
    valid = s.complete and first_text_ok(s, sy.newest[n]) and first_text_ok(m, ml.newest[n])
    if not first_text_ok(s, sy.newest[n]) or not first_text_ok(m, ml.newest[n]):
        notes.append(f"(a) at {n:,} runs a first row was not the newest run ({sy.newest[n]})")
    return Result(
        key=f"a{index + 1}",
        title=f"runs table, first rows shown, {n:,} runs",
        unit="ms",
        higher_is_better=False,
        shipyard=s.median_ms or 0.0,
        peer=m.median_ms,
        min_speedup=TARGET_SPEEDUP if n == TARGET_SPEEDUP_AT else None,
        max_shipyard=TARGET_ROWS_MS if n == TARGET_ROWS_AT else None,
        valid=valid,
        notes=tuple(notes),
        details={"shipyard": s.summary(), "mlflow": m.summary()},
    )


def row_server(plan: Plan, sy: Side, ml: Side) -> Result:
    n = max(plan.table_sizes)
    ip = sy.in_process
    notes = [
        f"(b) median of {len(sy.server['samples_ms'])} GETs of the runs-table page ({sy.server['bytes']:,} "
        f"bytes) over one keep-alive connection; MLflow: the runs/search POST its table waits on (100 runs, "
        f"newest first, {ml.server['bytes']:,} bytes), replayed {len(ml.server['samples_ms'])} times",
        f"(b) in-process (no server): the route through Starlette's TestClient {ip['route_ms']:,.1f} ms, of "
        f"which the store's page query (search_page, 50 runs with their params and metrics) "
        f"{ip['search_page_ms']:,.1f} ms; median of {plan.server_repeats}",
    ]
    return Result(
        key="b",
        title=f"runs-table request, server time, {n:,} runs",
        unit="ms",
        higher_is_better=False,
        shipyard=sy.server["ms"],
        peer=ml.server["ms"],
        max_shipyard=TARGET_SERVER_MS if n == TARGET_ROWS_AT else None,
        notes=tuple(notes),
        details={"shipyard": sy.server, "in_process": ip, "mlflow": ml.server},
    )


def row_compare(plan: Plan, sy: Side, ml: Side, k: int, index: int) -> Result:
    s, m = sy.compare[k], ml.compare.get(k)
    notes = []
    if index == 0:
        notes.append(
            f"(c) navigation start -> every chart drawn: Shipyard's compare page ({len(CURVES)} metrics, a "
            "uPlot canvas each, the shown axis's series fetched from /ui/compare/series as float64s, "
            "thinned on the server); MLflow's "
            f"metric page (its compare view's link), one Plotly chart of {' and '.join(CURVES)} for every "
            "run: it fetches each run's full history of each metric (get-history) and then the thinned ones "
            f"it plots (get-history-bulk-interval); median of up to {plan.compare_loads} loads after a "
            f"warm-up one (MLflow: {plan.mlflow_compare_budget_s:.0f} s a load, "
            f"{plan.mlflow_compare_total_s:.0f} s for all)"
        )
    if m is None:
        notes.append(
            f"(c) MLflow not measured at {k} runs: {k} x {plan.compare_steps:,} steps x {len(CURVES)} "
            f"metrics would be {k * plan.compare_steps * len(CURVES) / 1e6:,.0f} million rows in its metrics "
            f"table; its store holds the first {len(ml.compare_runs)} runs"
        )
    elif m.median_ms is None:
        notes.append(
            f"(c) MLflow at {k} runs: the chart was not drawn within {plan.mlflow_compare_budget_s:.0f} s"
        )
    mlflow_part = ""
    if m is not None:
        last = (m.timed or [m.warmup])[-1]
        mlflow_part = (
            f"; MLflow made {len(last.server_ms)} history requests a load, the slowest's server time "
            f"{fmt_ms(server_ms(m) if m.timed else max(last.server_ms, default=None))}, over "
            f"{len(m.timed)} timed load(s)"
        )
    notes.append(
        f"(c) {k} runs: Shipyard's /ui/compare/series server time {fmt_ms(server_ms(s))} (the slower of the "
        f"two, both asked at once){mlflow_part}"
    )
    if k == max(plan.compare_sizes):
        notes.append(
            f"(c) in-process, once: reading one metric's histories of the {k} runs (store.metric_arrays, "
            f"{k} x {plan.compare_steps:,} points) {fmt_ms(sy.in_process['compare_metric_arrays_ms'])}"
        )
    seen = [load.seen for load in (s.warmup, *s.timed) if load.ms is not None]
    valid = s.complete and all(x.get("series") == [k] * len(CURVES) for x in seen)
    return Result(
        key=f"c{index + 1}",
        title=f"compare {k} runs x {plan.compare_steps:,} steps, every chart drawn",
        unit="ms",
        higher_is_better=False,
        shipyard=s.median_ms or 0.0,
        peer=None if m is None else m.median_ms,
        max_shipyard=TARGET_COMPARE_MS if k == TARGET_COMPARE_AT else None,
        valid=valid,
        notes=tuple(notes),
        details={"shipyard": s.summary(), "mlflow": None if m is None else m.summary()},
    )


def row_dag(plan: Plan, sy: Side) -> Result:
    d = sy.dag
    assert d is not None
    totals = [load.navigation.get("load") for load in d.timed if load.navigation.get("load")]
    total = statistics.median(totals) if totals else None
    ip = sy.in_process
    notes = (
        f"(d) Shipyard only (MLflow has no pipelines): a finished run of {plan.dag_steps:,} distinct steps "
        f"(40 parallel chains with cross edges, a join, a tail; nothing to fold), its spec "
        f"{sy.seed_s['spec_kib']:,.0f} KiB of YAML; navigation start -> the SVG in the DOM with every node "
        f"and laid out; median of {plan.dag_loads} loads after a warm-up one. The page's server time "
        f"{fmt_ms(server_ms(d))}, its load event at {fmt_ms(total)}. The server keeps parsed specs (by "
        f"hash), so the warm-up load is the one that parses it: {fmt_ms(d.warmup.ms)}",
        f"(d) the route's parts in-process, once each: the run's spec read and parsed, cold "
        f"(run_status.pipeline_spec) {fmt_ms(ip['dag_spec_parse_ms'])}; run_status.pipeline_state "
        f"{fmt_ms(ip['dag_pipeline_state_ms'])} (the spec kept, the step runs searched: "
        f"{fmt_ms(ip['dag_step_runs_ms'])}); layout + SVG (pipeline_dag.draw) {fmt_ms(ip['dag_draw_ms'])}",
    )
    seen = [load.seen for load in (d.warmup, *d.timed) if load.ms is not None]
    return Result(
        key="d",
        title=f"pipeline DAG of {plan.dag_steps:,} steps drawn",
        unit="ms",
        higher_is_better=False,
        shipyard=d.median_ms or 0.0,
        max_shipyard=TARGET_DAG_MS if plan.dag_steps == 2000 else None,
        valid=d.complete and all(x.get("nodes") == plan.dag_steps for x in seen),
        notes=notes,
        details={"shipyard": d.summary(), "page_load_ms": total},
    )


def build_results(plan: Plan, sy: Side, ml: Side) -> list[Result]:
    results = [row_first_rows(plan, sy, ml, n, i) for i, n in enumerate(plan.table_sizes)]
    results.append(row_server(plan, sy, ml))
    results += [row_compare(plan, sy, ml, k, i) for i, k in enumerate(plan.compare_sizes)]
    results.append(row_dag(plan, sy))
    seeded = "; ".join(
        f"{side.label} " + ", ".join(f"{k} {v:,.0f} s" for k, v in side.seed_s.items() if k != "spec_kib")
        for side in (sy, ml)
    )
    started = "; ".join(
        f"{side.label} answered its health check {side.started['ready_s']:.1f} s after its start and settled "
        f"{side.started['idle_s']:.0f} s later"
        for side in (sy, ml)
    )
    extra = (
        f"seeding (straight into each store's tables): {seeded}. Servers measured once settled: {started}; "
        f"the machine's 1-minute load average ran {min(LOADS):.1f}-{max(LOADS):.1f} over the steps (other "
        "jobs share it: compare figures of the same run)"
    )
    first = results[0]
    results[0] = Result(**{**vars(first), "notes": (*first.notes, extra)})
    return results


BROWSER_VERSION = ["Chromium"]


# ---------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = harness.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the stores and server logs, and say where")
    args = parser.parse_args(argv)
    plan = Plan.for_args(args.quick)
    root = Path(tempfile.mkdtemp(prefix="shipyard-bench-ui-"))
    mode = "quick" if plan.quick else "full"
    progress(f"stores under {root}; {mode} mode; shipyard from {package_path()}")
    base_ms = int(time.time() * 1000) - 2 * 86_400_000  # the runs started two days ago
    browser = None
    try:
        sy, settings = seed_shipyard(root, plan, base_ms)
        ml, db = seed_mlflow(root, plan, base_ms)
        route_in_process(settings, sy, plan)
        browser = Browser()
        BROWSER_VERSION[0] = f"Chromium {browser.version}"
        measure_shipyard(root, sy, plan, browser)
        measure_mlflow(root, db, ml, plan, browser)
    finally:
        if browser is not None:
            browser.close()
        if args.keep:
            progress(f"kept the stores and server logs under {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    results = build_results(plan, sy, ml)
    info = harness.machine_info(PACKAGES)
    harness.print_table(f"{TITLE}, {mode} mode", results, machine=harness.machine_line(info))
    if args.json:
        harness.write_json(
            args.json, TITLE, results, mode=mode, argv=list(sys.argv[1:]), browser=BROWSER_VERSION[0]
        )
        progress(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
