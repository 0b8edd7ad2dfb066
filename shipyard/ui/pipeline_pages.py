"""Pipelines: runs (newest first) and schedules with their next fire times, a run's DAG with live step
status, and each step's logs and tracked run."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from markupsafe import Markup

from shipyard.errors import Forbidden, NotFound
from shipyard.pipelines import run_status
from shipyard.pipelines.run_status import PipelineRunState
from shipyard.pipelines.spec import PipelineSpec
from shipyard.server.guard import READ, guard
from shipyard.tracking import TrackingClient
from shipyard.ui import pipeline_dag
from shipyard.ui.templating import render

router = APIRouter(include_in_schema=False)
PAGE_RUNS = 50
POLL_SECONDS = 2


def _client(request: Request) -> TrackingClient:
    state = request.app.state
    return TrackingClient(state.settings, stores=state.stores)


def _readable_schedules(request: Request) -> list[Any]:
    g = guard(request)
    out = []
    for found in request.app.state.stores.schedules.list():
        try:
            g.experiment(found.experiment or found.pipeline_name, READ)
        except NotFound:
            pass  # its experiment does not exist yet: the schedule has not run
        except Forbidden:
            continue
        out.append(found)
    return sorted(out, key=lambda s: s.next_run_at)


@router.get("/ui/pipelines")
def pipelines(request: Request, page: str | None = None) -> Response:
    g = guard(request)
    client = _client(request)
    ids = g.readable_experiment_ids(e.experiment_id for e in client.list_experiments())
    runs, next_page = run_status.pipeline_runs(client, ids, max_results=PAGE_RUNS, page_token=page)
    return render(
        request,
        "pipelines.html",
        section="pipelines",
        runs=runs,
        next_page=next_page,
        schedules=_readable_schedules(request),
    )


def _state(request: Request, run_id: str) -> tuple[PipelineSpec | None, PipelineRunState]:
    """The run's spec and state, the spec read once (a 2,000-step spec is most of such a page's time)."""
    guard(request).run(run_id, READ)
    client = _client(request)
    spec = run_status.pipeline_spec(client, run_id)
    return spec, run_status.pipeline_state(client, run_id, spec)


def _stamp(step: Any) -> int:
    return max(step.end_time or 0, step.start_time or 0)


@router.get("/ui/pipelines/runs/{run_id}")
def pipeline_run(run_id: str, request: Request) -> Response:
    spec, state = _state(request, run_id)
    drawing = pipeline_dag.draw(spec, state)
    return render(
        request,
        "pipeline_run.html",
        section="pipelines",
        state=state,
        dag=Markup(drawing.svg),
        collapsed=drawing.collapsed,
        since=max((_stamp(s) for s in state.steps), default=0),
        live=state.status == "RUNNING",
        poll_seconds=POLL_SECONDS,
    )


@router.get("/ui/pipelines/runs/{run_id}/changes")
def pipeline_changes(run_id: str, request: Request, since: int = 0) -> Response:
    """What changed since ``since`` (epoch ms): the run's status and the steps that started or ended
    after it, keyed as the DAG's nodes are, so a page polls for changes, not for the whole run."""
    spec, state = _state(request, run_id)
    changed = {s.key: pipeline_dag.step_status(s.status, s.cached) for s in state.steps if _stamp(s) > since}
    groups = {}
    if changed and len(state.steps) > pipeline_dag.VISIBLE_NODES:  # folded fan-outs: their boxes' status
        groups = pipeline_dag.summary_statuses(spec, state)
    return JSONResponse(
        {
            "status": state.status,
            "steps": {**changed, **groups},
            "since": max([since, *(_stamp(s) for s in state.steps)]),
            "done": state.status != "RUNNING",
        }
    )


@router.get("/ui/pipelines/runs/{run_id}/steps/{step}")
def pipeline_step(run_id: str, step: str, request: Request) -> Response:
    _, state = _state(request, run_id)
    found = next((s for s in state.steps if s.key == step), None)
    if found is None:
        known = ", ".join(s.key for s in state.steps[:50])
        raise NotFound(f"pipeline run {run_id} has no step {step!r}; it has: {known}")
    logs = None
    step_run = None
    if found.run_id is not None:
        client = _client(request)
        logs = run_status.step_logs(client, run_id, step)
        step_run = client.get_run(found.run_id)
    return render(
        request, "pipeline_step.html", section="pipelines", state=state, step=found, logs=logs, run=step_run
    )
