"""Tuning searches: the list (newest first, with trial counts and the best value), and a search's page — its
spec, a trials table, the optimization history, parameter importances and, with several objectives, the
Pareto front of the first two.

Built for searches of tens of thousands of trials (Optuna Dashboard loads every trial into the page): the
trials table pages by a cursor on its sort (50 rows, never OFFSET); the history is one scan of the completed
trials' objective, thinned to a chart's points; importances read a fixed random sample of at most
:data:`IMPORTANCE_SAMPLE` completed trials; the Pareto front is one scan of two objectives and an
O(n log n) sweep. The history, importances and front load after the page (a chart's JSON, two htmx
fragments), so the table shows at once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml
from fastapi import APIRouter, Request
from fastapi.responses import Response
from optuna.distributions import BaseDistribution
from pydantic import ValidationError

from shipyard.errors import InvalidInput
from shipyard.server.guard import READ, guard
from shipyard.store.protocol import TrackingStore
from shipyard.tracking.client import TrackingClient
from shipyard.tracking.cursors import decode_cursor, encode_cursor, search_fingerprint
from shipyard.tracking.filter_parser import parse_order_by
from shipyard.tracking.records import Run, RunList
from shipyard.tuning import searches
from shipyard.tuning.runner import PARENT_TAG, STATE_TAG, TRIAL_TAG
from shipyard.tuning.space import Parameter
from shipyard.ui import tuning_stats, tuning_svg
from shipyard.ui.templating import render

router = APIRouter(include_in_schema=False)

PAGE_SEARCHES = 50
PAGE_TRIALS = 50
IMPORTANCE_SAMPLE = 2000
SCAN_PAGE = 10_000  # runs read per query when a panel scans every completed trial


def _client(request: Request) -> TrackingClient:
    state = request.app.state
    return TrackingClient(state.settings, stores=state.stores)


def _store(request: Request) -> TrackingStore:
    return request.app.state.stores.tracking


# ---------------------------------------------------------------------------------------------- the list
@dataclass(frozen=True)
class SearchRow:
    summary: searches.SearchSummary
    algorithm: str
    experiment: str


@router.get("/ui/tuning")
def search_list(request: Request, experiment: str | None = None, page: str | None = None) -> Response:
    """Searches newest first, in the experiments the caller may read (or in ``experiment``), a page at a
    time; a page link stays valid when an experiment is created meanwhile (as in the REST route)."""
    client, g = _client(request), guard(request)
    scope = None
    if experiment:
        g.experiment(experiment, READ)
        readable = [client.get_experiment(experiment)]
    else:
        readable = [e for e in client.list_experiments() if g.can_read_experiment(e)]
        scope = f"readable by {g.user}"
    names = {e.experiment_id: e.name for e in readable}
    found = RunList([], None)
    if readable:
        found = client.search_runs(  # type: ignore[assignment]
            list(names),
            searches.SEARCHES,
            order_by=["attributes.start_time desc"],
            max_results=PAGE_SEARCHES,
            page_token=page,
            page_scope=scope,
        )
    rows = [
        SearchRow(summary, run.params.get("algorithm", ""), names.get(run.experiment_id, run.experiment_id))
        for run, summary in zip(found, searches.summarize(client, found), strict=True)
    ]
    return render(
        request,
        "tuning.html",
        section="tuning",
        rows=rows,
        experiment=experiment,
        next_page=found.next_page_token,
        first_page=page is not None,
    )


# ------------------------------------------------------------------------------------------ the trials table
@dataclass(frozen=True)
class TrialRow:
    """One trial in the table: ``values`` follow the search's objectives."""

    number: int | None
    state: str
    params: dict[str, str]
    values: list[float | None]
    run: Run


@dataclass(frozen=True)
class TrialView:
    """The table's order, read from its URL: ``number`` (the order trials started in), ``state``, or an
    objective's name; ``descending`` or not."""

    order: str
    descending: bool
    objective: tuple[str, ...]
    directions: tuple[str, ...]

    @classmethod
    def parse(
        cls, order: str | None, direction: str | None, objective: Sequence[str], directions: Sequence[str]
    ) -> TrialView:
        order = order or "number"
        if order not in ("number", "state", *objective):
            offered = ", ".join(["number", "state", *objective])
            raise InvalidInput(f"order: the trials sort by {offered}; got {order!r}")
        if direction not in (None, "", "asc", "desc"):
            raise InvalidInput(f"dir: asc or desc, got {direction!r}")
        descending = direction == "desc" if direction else cls._best_first(order, objective, directions)
        return cls(order, descending, tuple(objective), tuple(directions))

    @staticmethod
    def _best_first(order: str, objective: Sequence[str], directions: Sequence[str]) -> bool:
        """A first click on an objective shows the best trials first; number and state sort ascending."""
        if order in objective:
            return dict(zip(objective, directions, strict=False)).get(order) == "maximize"
        return False

    def store_order(self) -> str:
        column = {"number": "attributes.start_time", "state": f"tags.`{STATE_TAG}`"}.get(
            self.order, f"metrics.`{self.order}`"
        )
        return f"{column} {'DESC' if self.descending else 'ASC'}"

    def state(self) -> dict[str, Any]:
        return {"order": self.order, "dir": "desc" if self.descending else "asc"}

    def sort_link(self, column: str) -> dict[str, Any]:
        """The URL parameters of a click on ``column``'s header: the other direction when the table sorts by
        it already, else that column's first direction."""
        if column == self.order:
            return {"order": column, "dir": "asc" if self.descending else "desc"}
        first = self._best_first(column, self.objective, self.directions)
        return {"order": column, "dir": "desc" if first else "asc"}

    def sorted_by(self, column: str) -> str | None:
        if column != self.order:
            return None
        return "descending" if self.descending else "ascending"


def _trials_of(search: Run) -> str:
    return f"tags.`{PARENT_TAG}` = '{search.run_id}'"  # run ids are hex: nothing to escape


def _completed_of(search: Run) -> str:
    return f"{_trials_of(search)} and tags.`{STATE_TAG}` = 'COMPLETE'"


def _number(run: Run) -> int | None:
    _, _, number = run.tags.get(TRIAL_TAG, "").rpartition(":")
    return int(number) if number.isdigit() else None


def _row(run: Run, objective: Sequence[str]) -> TrialRow:
    state = run.tags.get(STATE_TAG) or run.display_status
    values = [run.metrics.get(name) for name in objective]
    return TrialRow(_number(run), state, dict(run.params), values, run)


def _trial_page(
    request: Request, search: Run, view: TrialView, after: str | None
) -> tuple[list[TrialRow], str | None]:
    """One page of the table and the cursor after it (None at the end): a seek on the sort, so the last
    page of 46,000 trials costs what the first one does."""
    filter, order = _trials_of(search), [view.store_order()]
    fingerprint = search_fingerprint([search.experiment_id], filter, order, False)
    cursor = decode_cursor(after, fingerprint, parse_order_by(order), name="after") if after else None
    found = _store(request).search_page(
        [search.experiment_id],
        filter,
        order,
        limit=PAGE_TRIALS,
        columns=None,
        include_deleted=False,
        after=cursor,
    )
    following = None if found.next_cursor is None else encode_cursor(found.next_cursor, fingerprint)
    return [_row(run, view.objective) for run in found], following


# -------------------------------------------------------------------------------------------- a search
@dataclass(frozen=True)
class SpaceRow:
    """One parameter of the search space as the page lists it."""

    name: str
    type: str
    values: str
    condition: str


def _search(request: Request, search_id: str) -> tuple[TrackingClient, Run]:
    client = _client(request)
    guard(request).run(search_id, READ)
    return client, searches.search_run(client, search_id)


def _spec(client: TrackingClient, search: Run) -> tuple[dict[str, Any], list[Parameter] | None]:
    """The spec the search ran and its parameters (None when it logged none, or they no longer parse)."""
    try:
        spec = searches.search_spec(client, search)
    except (InvalidInput, yaml.YAMLError):
        return {}, None
    try:
        return spec, [Parameter.model_validate(p) for p in spec.get("parameters") or []] or None
    except (ValidationError, TypeError):
        return spec, None


def _space_rows(parameters: Sequence[Parameter]) -> list[SpaceRow]:
    rows = []
    for p in parameters:
        if p.type == "categorical":
            values = ", ".join(str(c) for c in p.choices or [])
        else:
            values = (
                f"{p.low:g} … {p.high:g}"
                + (" log" if p.log else "")
                + (f" step {p.step:g}" if p.step else "")
            )
        condition = "; ".join(f"{k} in {', '.join(map(str, v))}" for k, v in (p.condition or {}).items())
        rows.append(SpaceRow(p.name, p.type, values, condition))
    return rows


@router.get("/ui/tuning/{search_id}")
def search_page(
    search_id: str,
    request: Request,
    order: str | None = None,
    dir: str | None = None,
    after: str | None = None,
) -> Response:
    client, run = _search(request, search_id)
    [summary] = searches.summarize(client, [run])
    spec, parameters = _spec(client, run)
    view = TrialView.parse(order, dir, summary.objective, summary.directions)
    trials, next_after = _trial_page(request, run, view, after)
    columns = [p.name for p in parameters] if parameters else sorted({k for t in trials for k in t.params})
    return render(
        request,
        "tuning_search.html",
        section="tuning",
        search=summary,
        run=run,
        experiment=client.get_experiment(run.experiment_id),
        spec=spec,
        space=_space_rows(parameters or []),
        objectives=list(zip(summary.objective, summary.directions, strict=False)),
        view=view,
        trials=trials,
        param_columns=columns,
        next_after=next_after,
        paged=after is not None,
        total=sum(summary.trials.values()),
        sample=IMPORTANCE_SAMPLE,
    )


# ------------------------------------------------------------------------------------ the panels' data
def _scan(request: Request, search: Run, columns: list[str]) -> Iterator[Run]:
    """Every completed trial of ``search`` with only ``columns`` loaded, a page of runs at a time."""
    cursor = None
    while True:
        found = _store(request).search_page(
            [search.experiment_id],
            _completed_of(search),
            None,
            limit=SCAN_PAGE,
            columns=columns,
            include_deleted=False,
            after=cursor,
        )
        yield from found
        if found.next_cursor is None:
            return
        cursor = found.next_cursor


def _objective(search: Run) -> tuple[list[str], list[str]]:
    """The search's objective metrics and their directions, as its run's params recorded them."""
    names = [n for n in (search.params.get("objective") or "").split(",") if n]
    directions = [d for d in (search.params.get("directions") or "").split(",") if d]
    if not names or len(directions) != len(names):
        raise InvalidInput(f"search {search.run_id} ({search.name}) records no objective and direction")
    return names, directions


def _floats(values: np.ndarray) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in np.asarray(values, dtype=np.float64).tolist()]


@router.get("/ui/tuning/{search_id}/history")
def search_history(search_id: str, request: Request) -> Response:
    """The first objective of every completed trial and the best so far, by trial number (``step``) and by
    finish time (``time``), thinned to a chart's points; as the charts of app.js read them."""
    _, run = _search(request, search_id)
    names, directions = _objective(run)
    key, maximize = names[0], directions[0] == "maximize"
    numbers, times, values = [], [], []
    for trial in _scan(request, run, [f"metrics.{key}", f"tags.{TRIAL_TAG}"]):
        number = _number(trial)
        value = trial.metrics.get(key)
        if number is None or value is None:
            continue
        numbers.append(number)
        times.append((trial.end_time or trial.start_time) / 1000.0)
        values.append(value)
    by_number = tuning_stats.history(np.array(numbers), np.array(values), maximize)
    by_time = tuning_stats.history(np.array(times), np.array(values), maximize)
    answer = {
        "key": key,
        "total": by_number.total,
        "names": [key, "best so far"],
        "marks": ["points", "steps"],
        "step": [_floats(by_number.x), _floats(by_number.values), _floats(by_number.best)],
        "time": [_floats(by_time.x), _floats(by_time.values), _floats(by_time.best)],
    }
    return Response(json.dumps(answer, allow_nan=False), media_type="application/json")


def _sample_filter(search: Run, completed: int) -> tuple[str, float]:
    """A filter for a fixed random sample of about :data:`IMPORTANCE_SAMPLE` of the ``completed`` trials,
    and the share it takes: run ids are random (UUID4 hex), so those below a bound are a uniform sample —
    the same one on every visit, found through the index on run ids."""
    share = min(1.0, IMPORTANCE_SAMPLE / completed) if completed else 1.0
    if share >= 1.0:
        return _completed_of(search), 1.0
    bound = max(1, math.ceil(share * 0x10000))
    return f"{_completed_of(search)} and attributes.run_id < '{bound:04x}'", bound / 0x10000


@router.get("/ui/tuning/{search_id}/importances")
def search_importances(search_id: str, request: Request) -> Response:
    """Parameter importances for the first objective (an htmx fragment)."""
    client, run = _search(request, search_id)
    [summary] = searches.summarize(client, [run])
    _, parameters = _spec(client, run)
    names, directions = _objective(run)
    key, maximize = names[0], directions[0] == "maximize"
    completed = summary.trials.get("COMPLETE", 0)
    filter, share = _sample_filter(run, completed)
    found = _store(request).search_page(
        [run.experiment_id],
        filter,
        ["attributes.run_id ASC"],
        limit=IMPORTANCE_SAMPLE,
        columns=["params.*", f"metrics.{key}"],
        include_deleted=False,
    )
    trials = [(t.params, t.metrics[key]) for t in found if t.metrics.get(key) is not None]
    distributions: dict[str, BaseDistribution] | None = None
    if parameters:
        distributions = {p.name: p.distribution() for p in parameters}
    try:
        scored = tuning_stats.importances(trials, distributions, maximize)
    except InvalidInput as exc:
        return render(request, "tuning_panel.html", figure=None, problem=str(exc), note="")
    note = f"PED-ANOVA (Optuna) over {scored.trials:,} completed trials"
    if share < 1.0:
        note += f": a fixed random sample (run ids below a bound) of the {completed:,} completed"
    if scored.inferred:
        note += "; the search logged no spec, so each parameter's range is the one its values span"
    if len(names) > 1:
        note += f"; for {key}, the first objective"
    return render(
        request,
        "tuning_panel.html",
        figure=tuning_svg.importance_bars(scored.values),
        problem=None,
        note=note,
    )


@router.get("/ui/tuning/{search_id}/pareto")
def search_pareto(search_id: str, request: Request) -> Response:
    """The completed trials by the first two objectives, the Pareto front highlighted (an htmx fragment)."""
    _, run = _search(request, search_id)
    names, directions = _objective(run)
    if len(names) < 2:
        problem = f"search {run.name} has one objective ({names[0]}): no Pareto front"
        return render(request, "tuning_panel.html", figure=None, problem=problem, note="")
    names, directions = names[:2], directions[:2]
    first, second, numbers, run_ids = [], [], [], []
    columns = [f"metrics.{names[0]}", f"metrics.{names[1]}", f"tags.{TRIAL_TAG}"]
    for trial in _scan(request, run, columns):
        first.append(trial.metrics.get(names[0], math.nan))
        second.append(trial.metrics.get(names[1], math.nan))
        number = _number(trial)
        numbers.append(-1 if number is None else number)
        run_ids.append(trial.run_id)
    a, b = np.array(first, dtype=np.float64), np.array(second, dtype=np.float64)
    front = tuning_stats.pareto_front(a, b, (directions[0] == "maximize", directions[1] == "maximize"))
    figure = tuning_svg.pareto_scatter(a, b, front, names, directions, np.array(numbers), run_ids)
    note = f"{int(front.sum()):,} of {len(a):,} completed trials on the front"
    if len(a) > tuning_svg.MAX_DOMINATED:
        note += f" (the others thinned to at most {tuning_svg.MAX_DOMINATED:,} dots)"
    return render(request, "tuning_panel.html", figure=figure, problem=None, note=note)
