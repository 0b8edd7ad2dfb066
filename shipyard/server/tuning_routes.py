"""Tuning searches over REST: list them, read one with its spec, page through its trials.

The answers come from the tracking records (:mod:`shipyard.tuning.searches`): a search is a parent run with
the tuning tags, its trials nested runs in the same experiment, so reading a search needs READ on that
experiment, and a list leaves out the experiments the caller cannot read.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from shipyard.server.guard import READ, guard
from shipyard.store import wire
from shipyard.tracking.client import TrackingClient
from shipyard.tuning import searches

router = APIRouter(tags=["tuning"])

MaxResults = Annotated[int, Query(ge=1, le=1000)]


def _client(request: Request) -> TrackingClient:
    state = request.app.state
    return TrackingClient(state.settings, stores=state.stores)


@router.get("/tuning/searches")
def list_searches(
    request: Request,
    experiment: str | None = None,
    max_results: MaxResults = 100,
    page_token: str | None = None,
) -> dict[str, Any]:
    """Tuning searches, newest first (in ``experiment`` when given, else every experiment the caller may
    read), with trial counts by state; pass ``next_page_token`` back as ``page_token`` for more."""
    client, g = _client(request), guard(request)
    scope = None
    if experiment is not None:
        g.experiment(experiment, READ)
        ids = [client.get_experiment(experiment).experiment_id]
    else:
        ids = [e.experiment_id for e in client.list_experiments() if g.can_read_experiment(e)]
        scope = f"readable by {g.user}"  # the next page stays valid when an experiment is created meanwhile
    found, token = searches.list_searches(
        client, ids, max_results=max_results, page_token=page_token, page_scope=scope
    )
    return {"searches": wire.to_json(found), "next_page_token": token}


@router.get("/tuning/searches/{run_id}")
def get_search(run_id: str, request: Request) -> dict[str, Any]:
    """One search (404 naming the run when it is not a tuning search), with the spec it ran."""
    client = _client(request)
    guard(request).run(run_id, READ)
    run = searches.search_run(client, run_id)
    [summary] = searches.summarize(client, [run])
    return {**wire.to_json(summary), "spec": searches.search_spec(client, run)}


@router.get("/tuning/searches/{run_id}/trials")
def list_trials(
    run_id: str,
    request: Request,
    max_results: MaxResults = 100,
    page_token: str | None = None,
    intermediate: bool = False,
) -> dict[str, Any]:
    """The search's trials in the order they started: number, state, params, objective values, run and
    duration; with ``intermediate`` also each trial's reported values of the first objective."""
    client = _client(request)
    guard(request).run(run_id, READ)
    run = searches.search_run(client, run_id)
    found, token = searches.list_trials(
        client, run, max_results=max_results, page_token=page_token, intermediate=intermediate
    )
    return {"trials": wire.to_json(found), "next_page_token": token}
