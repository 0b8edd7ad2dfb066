"""Experiments, the runs table, a run's page and the compare view.

Every view's state (filter, sort, columns, selection) lives in its URL, so a view can be opened in a new tab
or shared. The runs table pages by a cursor on its sort (never OFFSET): the page after row 50,000 costs what
the first one does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from shipyard.errors import FilterSyntaxError, InvalidInput, NotFound
from shipyard.server.guard import READ, guard
from shipyard.store.protocol import TrackingStore
from shipyard.tracking.cursors import decode_cursor, encode_cursor, search_fingerprint
from shipyard.tracking.filter_parser import parse_order_by
from shipyard.tracking.records import Experiment, Run
from shipyard.ui import downsample
from shipyard.ui.parallel import parallel_svg
from shipyard.ui.templating import render

router = APIRouter(include_in_schema=False)
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")

PAGE_ROWS = 50
MAX_COLUMNS = 40
DEFAULT_METRICS = 6
DEFAULT_PARAMS = 4
MAX_COMPARE = 500
# Points a series may keep on a chart: the run page's budget, shared out among the runs of a compare.
CHART_POINTS = downsample.MAX_POINTS
COMPARE_POINTS_IN_ALL = 250_000
SERIES_MEDIA_TYPE = "application/vnd.shipyard.series"  # see _binary_columns
AXES = {"step": (0, 1.0), "time": (2, 1000.0)}  # a chart's x axis: which of a metric's arrays, its scale


def _store(request: Request) -> TrackingStore:
    return request.app.state.stores.tracking


@router.get("/")
def home() -> Response:
    return RedirectResponse("/ui/", status_code=303)


@router.get("/favicon.ico")
def favicon() -> Response:
    return RedirectResponse("/static/favicon.svg", status_code=301)


@router.get("/ui/")
def experiments(request: Request) -> Response:
    g = guard(request)
    found = [e for e in _store(request).list_experiments() if g.can_read_experiment(e)]
    found.sort(key=lambda e: -e.updated_at)
    return render(request, "experiments.html", section="experiments", experiments=found)


@dataclass(frozen=True)
class TableView:
    """What a runs table shows, read from its URL."""

    filter: str
    order: str
    columns: tuple[str, ...]
    chosen: bool  # the URL named the columns (else they follow the runs shown)

    @classmethod
    def parse(cls, filter: str | None, order: str | None, cols: list[str]) -> TableView:
        columns = tuple(dict.fromkeys(c.strip() for c in cols if c.strip()))[:MAX_COLUMNS]
        for column in columns:
            kind, _, key = column.partition(".")
            if kind not in ("metrics", "params", "tags") or not key:
                raise InvalidInput(f"column {column!r} must look like metrics.KEY, params.KEY or tags.KEY")
        return cls((filter or "").strip(), (order or "").strip(), columns, bool(columns))

    def state(self) -> dict[str, Any]:
        """The URL parameters that rebuild this view."""
        return {"filter": self.filter or None, "order": self.order or None, "cols": list(self.columns)}

    def sort_link(self, column: str) -> str:
        """The order a click on ``column``'s header asks for: descending first, then ascending."""
        return f"{column} ASC" if self.order == f"{column} DESC" else f"{column} DESC"

    def sorted_by(self, column: str) -> str | None:
        if self.order in (column, f"{column} ASC"):
            return "ascending"
        return "descending" if self.order == f"{column} DESC" else None


def _experiment(request: Request, experiment_id: str) -> Experiment:
    guard(request).experiment(experiment_id, READ)
    return _store(request).get_experiment(experiment_id)


def _search(
    request: Request, experiment: Experiment, view: TableView, after: str | None
) -> tuple[list[Run], str | None]:
    """One page of the table's runs and the cursor after it (None at the end): a seek on the sort, so a
    page deep in 100,000 runs costs what the first does."""
    order = [view.order] if view.order else None
    scope = [experiment.experiment_id]
    fingerprint = search_fingerprint(scope, view.filter or None, order, False)
    cursor = None
    if after:
        cursor = decode_cursor(after, fingerprint, parse_order_by(order), name="after")
    found = _store(request).search_page(
        scope, view.filter or None, order, limit=PAGE_ROWS, columns=None, include_deleted=False, after=cursor
    )
    following = None if found.next_cursor is None else encode_cursor(found.next_cursor, fingerprint)
    return list(found), following


def _columns(found: list[Run], view: TableView) -> list[str]:
    if view.chosen:
        return list(view.columns)
    metrics: dict[str, None] = {}
    params: dict[str, None] = {}
    for run in found:
        metrics.update(dict.fromkeys(k for k in run.metrics if not k.startswith("system/")))
        params.update(dict.fromkeys(run.params))
    return [f"metrics.{k}" for k in sorted(metrics)[:DEFAULT_METRICS]] + [
        f"params.{k}" for k in sorted(params)[:DEFAULT_PARAMS]
    ]


def _keys_offered(found: list[Run]) -> dict[str, list[str]]:
    """The keys the column picker offers: those of the runs on the page."""
    kinds: dict[str, dict[str, None]] = {"metrics": {}, "params": {}, "tags": {}}
    for run in found:
        kinds["metrics"].update(dict.fromkeys(run.metrics))
        kinds["params"].update(dict.fromkeys(run.params))
        kinds["tags"].update(dict.fromkeys(k for k in run.tags if not k.startswith("shipyard.")))
    return {kind: sorted(keys) for kind, keys in kinds.items()}


def cell(run: Run, column: str) -> Any:
    kind, _, key = column.partition(".")
    return getattr(run, kind).get(key)


@router.get("/ui/experiments/{experiment_id}")
def runs_table(
    experiment_id: str,
    request: Request,
    filter: str | None = None,
    order: str | None = None,
    cols: list[str] = Query(default_factory=list),
    after: str | None = None,
) -> Response:
    experiment = _experiment(request, experiment_id)
    view = TableView.parse(filter, order, cols)
    problem = None
    try:
        found, next_after = _search(request, experiment, view, after)
    except FilterSyntaxError as exc:
        found, next_after, problem = [], None, str(exc)
    context = {
        "experiment": experiment,
        "view": view,
        "runs": found,
        "columns": _columns(found, view),
        "offered": _keys_offered(found),
        "next_after": next_after,
        "problem": problem,
        "cell": cell,
    }
    template = "runs_rows.html" if request.headers.get("hx-request") and after else "runs.html"
    return render(request, template, section="experiments", **context)


@router.get("/ui/experiments/{experiment_id}/count")
def runs_count(experiment_id: str, request: Request, filter: str | None = None) -> Response:
    """How many runs match (asked for after the first rows are on screen: counting is a scan)."""
    experiment = _experiment(request, experiment_id)
    try:
        total = _store(request).count_runs([experiment.experiment_id], (filter or "").strip() or None)
    except FilterSyntaxError:
        return render(request, "count.html", total=None)
    return render(request, "count.html", total=total)


def _run(request: Request, run_id: str) -> Run:
    guard(request).run(run_id, READ)
    return _store(request).get_run(run_id)


@router.get("/ui/runs/{run_id}")
def run_page(run_id: str, request: Request) -> Response:
    run = _run(request, run_id)
    store = _store(request)
    experiment = store.get_experiment(run.experiment_id)
    children, child_total = store.child_runs(run_id, limit=100)
    metric_keys = sorted(k for k in run.metrics if not k.startswith("system/"))
    system_keys = sorted(k for k in run.metrics if k.startswith("system/"))
    return render(
        request,
        "run.html",
        section="experiments",
        run=run,
        experiment=experiment,
        metric_keys=metric_keys,
        system_keys=system_keys,
        children=children,
        child_total=child_total,
        artifacts=store.list_artifacts(run_id),
        datasets=store.dataset_inputs(run_id),
    )


def series_arrays(arrays: tuple[np.ndarray, np.ndarray, np.ndarray], budget: int) -> dict[str, Any]:
    """A metric's points for a chart, by step and by time (epoch seconds), each thinned to ``budget``."""
    steps, values, stamps = arrays
    by_step = downsample.thin(steps.astype(np.float64), values, budget)
    by_time = downsample.thin(stamps / 1000.0, values, budget)
    return {"step": [by_step.x, by_step.y], "time": [by_time.x, by_time.y], "total": by_step.total}


def _floats(values: np.ndarray) -> str:
    """A float array as a JSON list, NaN and infinities as null (a gap on a chart). Encoded whole, not
    value by value: a compare sends up to a million of them."""
    text = json.dumps(np.asarray(values, dtype=np.float64).tolist())
    return text.replace("NaN", "null").replace("-Infinity", "null").replace("Infinity", "null")


def _json_answer(meta: dict[str, Any], arrays: dict[str, list[np.ndarray]]) -> Response:
    """``meta`` (any JSON) with float-array members added: ``{"step": [[x…], [y…]]}``."""
    head = json.dumps(meta)[:-1]
    parts = [
        f"{json.dumps(name)}:[{','.join(_floats(column) for column in columns)}]"
        for name, columns in arrays.items()
    ]
    separator = "," if meta else ""
    return Response(head + separator + ",".join(parts) + "}", media_type="application/json")


def _binary_columns(meta: dict[str, Any], columns: list[np.ndarray]) -> Response:
    """Equal-length float columns as one binary answer: a little-endian uint32 ``n``, ``n`` bytes of JSON
    (``meta`` with ``points``, the columns' length; space-padded so the floats start 8-byte aligned), then
    the columns one after another as little-endian float64 (NaN for a gap). A compare of 500 runs is 2 MB
    this way where JSON took 5 MB and more time to write and to read than to compute."""
    points = len(columns[0]) if columns else 0
    head = json.dumps({**meta, "points": points}).encode()
    head += b" " * (-(len(head) + 4) % 8)
    body = np.concatenate(columns).astype("<f8").tobytes() if columns else b""
    return Response(len(head).to_bytes(4, "little") + head + body, media_type=SERIES_MEDIA_TYPE)


@router.get("/ui/runs/{run_id}/series")
def run_series(run_id: str, request: Request, key: str) -> Response:
    guard(request).run(run_id, READ)
    found = _store(request).metric_arrays([run_id], key)
    if run_id not in found:
        raise NotFound(f"run {run_id} has no metric {key!r}")
    thinned = series_arrays(found[run_id], CHART_POINTS)
    total = thinned.pop("total")
    return _json_answer({"key": key, "total": total}, thinned)


def _runs_by_id(request: Request, chosen: list[str], columns: list[str] | None = None) -> list[Run]:
    """The runs ``chosen`` names, in that order, read in one search over the experiments the caller may
    read (500 runs read one by one took a second); a run not found there is explained by the guard
    (`NotFound`, or `Forbidden` for a run of an experiment the caller may not read)."""
    for run_id in chosen:
        if not _RUN_ID.match(run_id):
            raise InvalidInput(f"runs: {run_id[:64]!r} is not a run id")
    g, store = guard(request), _store(request)
    readable = g.readable_experiment_ids(e.experiment_id for e in store.list_experiments())
    found: dict[str, Run] = {}
    for start in range(0, len(chosen), 100):
        ids = ", ".join(f"'{run_id}'" for run_id in chosen[start : start + 100])
        page = store.search_page(
            readable, f"attributes.run_id in ({ids})", None, limit=100, columns=columns, include_deleted=True
        )
        found.update((run.run_id, run) for run in page)
    for run_id in chosen:
        if run_id not in found:
            g.run(run_id, READ)  # Forbidden, or NotFound
            found[run_id] = store.get_run(run_id)
    return [found[run_id] for run_id in chosen]


@router.get("/ui/compare")
def compare(request: Request, runs: list[str] = Query(default_factory=list)) -> Response:
    chosen = list(dict.fromkeys(r for r in runs if r))
    if not chosen:
        raise InvalidInput("choose runs to compare: tick them in a runs table, then Compare")
    if len(chosen) > MAX_COMPARE:
        raise InvalidInput(f"at most {MAX_COMPARE} runs can be compared at once, got {len(chosen)}")
    found = _runs_by_id(request, chosen)
    params = sorted({k for run in found for k in run.params})
    metrics = sorted({k for run in found for k in run.metrics if not k.startswith("system/")})
    differing = [k for k in params if len({run.params.get(k) for run in found}) > 1]
    return render(
        request,
        "compare.html",
        section="experiments",
        runs=found,
        names={run.run_id: run.name for run in found},
        params=params,
        differing=set(differing),
        metrics=metrics,
        parallel=parallel_svg(
            [run.name for run in found],
            {
                **{f"params.{k}": [run.params.get(k) for run in found] for k in differing},
                **{f"metrics.{k}": [run.metrics.get(k) for run in found] for k in metrics},
            },
        ),
    )


@router.get("/ui/compare/series")
def compare_series(
    request: Request, key: str, runs: list[str] = Query(default_factory=list), axis: str = "step"
) -> Response:
    """One metric of every compared run on a shared x grid of ``axis`` (``step``, or ``time`` in epoch
    seconds), each run's points thinned to its share of the points a chart can draw (spikes kept).

    One axis an answer: at 500 runs each is megabytes of JSON, and the page shows one at a time.
    """
    if axis not in AXES:
        raise InvalidInput(f"axis: {axis[:32]!r} is not one of {', '.join(AXES)}")
    chosen = list(dict.fromkeys(r for r in runs if r))[:MAX_COMPARE]
    _runs_by_id(request, chosen, columns=[])  # readable, all of them (no values loaded)
    spans = max(COMPARE_POINTS_IN_ALL // max(len(chosen), 1) // 2, 50)
    spans = min(spans, CHART_POINTS // 2)
    found = _store(request).metric_arrays(chosen, key)
    pick, scale = AXES[axis]
    columns = {
        run_id: (arrays[pick].astype(np.float64) / scale, arrays[1]) for run_id, arrays in found.items()
    }
    lo = min((float(x.min()) for x, _ in columns.values() if len(x)), default=0.0)
    hi = max((float(x.max()) for x, _ in columns.values() if len(x)), default=0.0)
    empty = np.full(2 * spans, np.nan)
    answer = [
        downsample.grid(lo, hi, spans),
        *(downsample.on_grid(*columns[r], lo, hi, spans) if r in columns else empty for r in chosen),
    ]
    return _binary_columns({"key": key, "runs": chosen, "axis": axis}, answer)
