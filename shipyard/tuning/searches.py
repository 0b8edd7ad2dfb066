"""Tuning searches as the tracking store records them: summaries of searches and their trials.

Everything here reads tracking records only (the parent run's tags, params and metrics; the trials' nested
runs), never the Optuna study: the study may live in a journal file on the machine that ran the search, while
the records are wherever the tracking store is (the platform server in team mode). So the same functions
answer ``shipyard tune list``/``show`` and the server's ``/api/v1/tuning`` routes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from shipyard.errors import InvalidInput, NotFound
from shipyard.tracking.records import Metric, Run, RunStatus
from shipyard.tuning.runner import NAME_TAG, PARENT_TAG, SPEC_ARTIFACT, STATE_TAG, STUDY_TAG, TRIAL_TAG

if TYPE_CHECKING:
    from shipyard.tracking.client import TrackingClient

SEARCHES = f"tags.`{STUDY_TAG}` is not null"
_NEWEST_FIRST = ["attributes.start_time desc"]
_OLDEST_FIRST = ["attributes.start_time asc"]
_TRIAL_STATES = ("COMPLETE", "PRUNED", "FAIL")
_ALL = 50_000  # the largest search page: trial counts read every trial's state tag, a page at a time


@dataclass(frozen=True)
class SearchSummary:
    """One tuning search: its parent run and what its trials came to.

    Attributes:
        state: the search's own state (running, completed, goal_reached, timeout, failed, stopped);
            ``status`` the run's (FINISHED, KILLED, LOST …).
        objective: the objective metric names (the first one is ranked); ``directions`` one per name.
        best_value: the best value of the first objective so far (single objective searches only).
        trials: trial counts by state (COMPLETE, PRUNED, FAIL, RUNNING …).
    """

    run_id: str
    name: str
    spec_name: str | None
    experiment_id: str
    state: str
    status: str
    objective: list[str]
    directions: list[str]
    best_value: float | None
    best_trial: int | None
    max_trials: int | None
    trials: dict[str, int]
    start_time: int
    end_time: int | None


@dataclass(frozen=True)
class TrialSummary:
    """One trial as its nested run recorded it. ``values`` follow the search's objective metrics (None
    where the trial logged none); ``intermediate`` is the first objective's history, when asked for."""

    number: int
    state: str
    params: dict[str, str]
    values: list[float | None]
    metrics: dict[str, float]
    run_id: str
    name: str
    status: str
    start_time: int
    end_time: int | None
    duration_ms: int | None
    error: str | None = None
    intermediate: list[dict[str, float]] | None = field(default=None)


def is_search(run: Run) -> bool:
    return STUDY_TAG in run.tags


def search_run(client: TrackingClient, run_id: str) -> Run:
    """The parent run of the search ``run_id``.

    Raises:
        NotFound: no such run, or it is not a tuning search (named).
    """
    run = client.get_run(run_id)
    if not is_search(run):
        raise NotFound(f"run {run_id} ({run.name}) is not a tuning search: it has no {STUDY_TAG} tag")
    return run


def list_searches(
    client: TrackingClient,
    experiment_ids: Sequence[str],
    *,
    max_results: int = 100,
    page_token: str | None = None,
    page_scope: str | None = None,
) -> tuple[list[SearchSummary], str | None]:
    """The searches in ``experiment_ids``, newest first, a page at a time; and the next page's token
    (bound to ``page_scope`` rather than the ids when given: see `TrackingClient.search_runs`)."""
    if not experiment_ids:
        return [], None
    found = client.search_runs(
        list(experiment_ids),
        SEARCHES,
        order_by=_NEWEST_FIRST,
        max_results=max_results,
        page_token=page_token,
        page_scope=page_scope,
    )
    return summarize(client, found), found.next_page_token  # type: ignore[union-attr]


def summarize(client: TrackingClient, searches: Sequence[Run]) -> list[SearchSummary]:
    """Summaries of these parent runs; trials are counted with one search for all the unfinished ones (a
    finished search logged its counts as metrics)."""
    counted = {r.run_id: _logged_counts(r) for r in searches}
    unknown = [r for r in searches if counted[r.run_id] is None]
    if unknown:
        counts = _count_trials(client, unknown)
        counted.update({r.run_id: counts.get(r.run_id, {}) for r in unknown})
    return [_summary(r, counted[r.run_id] or {}) for r in searches]


def list_trials(
    client: TrackingClient,
    search: Run,
    *,
    max_results: int = 100,
    page_token: str | None = None,
    intermediate: bool = False,
) -> tuple[list[TrialSummary], str | None]:
    """The trials of ``search`` in the order they started, a page at a time; and the next page's token.
    With ``intermediate``, each trial's history of the first objective metric (one read per trial)."""
    objective = _names(search.params.get("objective"))
    found = client.search_runs(
        [search.experiment_id],
        _trials_of([search.run_id]),
        order_by=_OLDEST_FIRST,
        max_results=max_results,
        page_token=page_token,
    )
    trials = []
    for run in found:
        history = None
        if intermediate and objective:
            history = _points(client.metric_history(run.run_id, objective[0]))
        trials.append(_trial(run, objective, history))
    return trials, found.next_page_token  # type: ignore[union-attr]


def search_spec(client: TrackingClient, search: Run) -> dict[str, Any]:
    """The spec the search ran (``tuning/spec.yaml`` on its run), as a dict."""
    try:
        text = client.read_artifact(search.run_id, SPEC_ARTIFACT).decode("utf-8")
    except NotFound:
        return {}  # a search killed before it logged its spec
    loaded = yaml.safe_load(text)
    if not isinstance(loaded, Mapping):
        raise InvalidInput(f"{SPEC_ARTIFACT} of run {search.run_id} is not a mapping")
    return dict(loaded)


def _trials_of(parent_ids: Sequence[str]) -> str:
    quoted = ", ".join(f"'{run_id}'" for run_id in parent_ids)  # run ids are hex: nothing to escape
    return f"tags.`{PARENT_TAG}` in ({quoted})"


def _logged_counts(run: Run) -> dict[str, int] | None:
    if run.status is RunStatus.RUNNING:
        return None  # counts logged by an earlier end are stale while a resumed search runs
    logged = {s: run.metrics.get(f"trials_{s.lower()}") for s in _TRIAL_STATES}
    if any(v is None for v in logged.values()):
        return None
    return {s: int(v) for s, v in logged.items() if v}  # type: ignore[arg-type]


def _count_trials(client: TrackingClient, searches: Sequence[Run]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = {}
    experiments = sorted({r.experiment_id for r in searches})
    token = None
    while True:
        page = client.search_runs(
            experiments,
            _trials_of([r.run_id for r in searches]),
            max_results=_ALL,
            page_token=token,
            columns=[f"tags.{STATE_TAG}"],
        )
        for run in page:
            counts.setdefault(run.parent_run_id or "", Counter())[_state(run)] += 1
        token = page.next_page_token  # type: ignore[union-attr]
        if token is None:
            return {parent: dict(counter) for parent, counter in counts.items()}


def _summary(run: Run, trials: dict[str, int]) -> SearchSummary:
    objective = _names(run.params.get("objective"))
    best = run.metrics.get(f"best_{objective[0]}") if len(objective) == 1 else None
    best_trial = run.tags.get("shipyard.tuning.best_trial")
    max_trials = run.params.get("max_trials")
    return SearchSummary(
        run_id=run.run_id,
        name=run.name,
        spec_name=run.tags.get(NAME_TAG),
        experiment_id=run.experiment_id,
        state=run.tags.get(STATE_TAG, "running"),
        status=run.display_status,
        objective=objective,
        directions=_names(run.params.get("directions")),
        best_value=best,
        best_trial=int(best_trial) if best_trial and best_trial.isdigit() else None,
        max_trials=int(max_trials) if max_trials and max_trials.isdigit() else None,
        trials=trials,
        start_time=run.start_time,
        end_time=run.end_time,
    )


def _trial(run: Run, objective: list[str], history: list[dict[str, float]] | None) -> TrialSummary:
    _, _, number = run.tags.get(TRIAL_TAG, "").rpartition(":")
    return TrialSummary(
        number=int(number) if number.isdigit() else -1,
        state=_state(run),
        params=dict(run.params),
        values=[run.metrics.get(name) for name in objective],
        metrics=dict(run.metrics),
        run_id=run.run_id,
        name=run.name,
        status=run.display_status,
        start_time=run.start_time,
        end_time=run.end_time,
        duration_ms=run.duration_ms,
        error=run.tags.get("shipyard.tuning.error"),
        intermediate=history,
    )


def _state(run: Run) -> str:
    """A trial's outcome tag; one still going (or lost before it was tagged) by its run's status."""
    return run.tags.get(STATE_TAG) or run.display_status


def _names(text: str | None) -> list[str]:
    return [part for part in (text or "").split(",") if part]


def _points(history: Sequence[Metric]) -> list[dict[str, float]]:
    return [{"step": m.step, "value": m.value} for m in history]


__all__ = [
    "SEARCHES",
    "SearchSummary",
    "TrialSummary",
    "is_search",
    "list_searches",
    "list_trials",
    "search_run",
    "search_spec",
    "summarize",
]
