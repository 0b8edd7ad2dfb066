"""Pipelines on the server: submit a compiled spec, list runs, read status and step logs, cancel, resume.

Submitting a spec is running code installed on the server: the spec names each step's module and function,
and the server's driver imports them from its own Python path and ``--pipelines-path`` only, never from the
spec's ``project_dir``, and only ``@component`` s with the source the spec was compiled from (see
:mod:`shipyard.server.pipeline_driver`). So submitting and resuming need an editor with EDIT on the target
experiment, checked before any driver starts. Reads are filtered to experiments the caller may read.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from shipyard.auth.records import ResourceType, Role
from shipyard.errors import Conflict, InvalidInput
from shipyard.pipelines import run_status
from shipyard.pipelines.binding import bind_parameters
from shipyard.pipelines.spec import PipelineSpec
from shipyard.server.guard import EDIT, READ, Guard, guard
from shipyard.server.pipeline_driver import SUBMITTED_BY_TAG, DriverConfig, Job, cancel, launch
from shipyard.tracking import RunStatus, TrackingClient

router = APIRouter(tags=["pipelines"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Submission(_Body):
    spec: str = Field(
        description="The compiled pipeline spec (YAML), as `shipyard pipeline compile` writes it."
    )
    parameters: dict[str, Any] = Field(default_factory=dict)
    experiment: str | None = Field(default=None, description="Default: the pipeline's name.")
    run_name: str | None = None
    cache: bool = True


class Resumption(_Body):
    run_name: str | None = None


def _client(request: Request) -> TrackingClient:
    state = request.app.state
    return TrackingClient(state.settings, stores=state.stores)


def _config(request: Request) -> DriverConfig:
    return request.app.state.pipelines  # type: ignore[no-any-return]


def _may_run(g: Guard) -> None:
    g.role(Role.EDITOR, "run pipelines on the server")


@router.post("/pipelines/runs", status_code=202)
def submit(body: Submission, request: Request) -> dict[str, Any]:
    """Run a compiled spec on the server's executor, in a driver process of its own; answers once the
    pipeline run exists. The steps run server-installed code only (see the module's docstring)."""
    g = guard(request)
    _may_run(g)
    if body.experiment:  # refused before the spec is even read
        g.experiment_name(body.experiment, EDIT)
    spec = PipelineSpec.from_yaml(body.spec, source="the submitted spec")
    bind_parameters(spec, body.parameters)  # names the unknown, missing or mistyped parameter
    experiment = body.experiment or spec.name
    if not body.experiment:
        g.experiment_name(experiment, EDIT)
    config = _config(request)
    job = Job(
        "run",
        config.settings.executor,
        spec_yaml=body.spec,
        parameters=body.parameters,
        experiment=experiment,
        run_name=body.run_name,
        cache=body.cache,
        user=g.principal.user if g.principal else None,
        tags={SUBMITTED_BY_TAG: g.user},
    )
    started = launch(config, job)
    g.own(ResourceType.EXPERIMENT, experiment, created_only=True)
    return {"run_id": started.run_id, "experiment": experiment}


@router.get("/pipelines/runs")
def list_runs(
    request: Request,
    experiment: str | None = None,
    max_results: Annotated[int, Query(ge=1, le=1000)] = 100,
    page_token: str | None = None,
) -> dict[str, Any]:
    """Pipeline runs, newest first, of the experiments the caller may read (or of ``experiment``)."""
    g = guard(request)
    client = _client(request)
    if experiment is not None:
        g.experiment(experiment, READ)
        ids = [client.get_experiment(experiment).experiment_id]
    else:
        ids = g.readable_experiment_ids(e.experiment_id for e in client.list_experiments())
    runs, token = run_status.pipeline_runs(client, ids, max_results=max_results, page_token=page_token)
    return {"runs": [r.to_dict() for r in runs], "next_page_token": token}


@router.get("/pipelines/runs/{run_id}")
def status(run_id: str, request: Request) -> dict[str, Any]:
    """The pipeline run's status and each step's: key, status, step run, start and end, attempts, cached."""
    guard(request).run(run_id, READ)
    return run_status.pipeline_state(_client(request), run_id).to_dict()


@router.get("/pipelines/runs/{run_id}/steps/{step}/logs")
def step_logs(run_id: str, step: str, request: Request) -> dict[str, str]:
    """What the step printed (``score.1`` for a loop iteration); available once the step has ended."""
    guard(request).run(run_id, READ)
    logs = run_status.step_logs(_client(request), run_id, step)
    return {
        "run_id": logs.run_id,
        "step": logs.step,
        "step_run_id": logs.step_run_id,
        "stdout": logs.stdout,
        "stderr": logs.stderr,
    }


@router.post("/pipelines/runs/{run_id}/cancel", status_code=202)
def cancel_run(run_id: str, request: Request) -> dict[str, Any]:
    """Stop the run's driver (SIGTERM): the run and its running steps end KILLED within moments.

    Whichever server process gets this signals the driver recorded on the run; 409 when it runs on another
    host, was not started by a server, or has ended."""
    g = guard(request)
    _may_run(g)
    g.run(run_id, EDIT)
    run = run_status.pipeline_run(_client(request), run_id)
    if run.status is not RunStatus.RUNNING or run.lost:
        raise Conflict(f"pipeline run {run_id} is not running (it is {run.display_status})")
    pid = cancel(run_id, run.pid, run.host, dict(run.tags))
    return {"run_id": run_id, "signalled": f"{pid}@{run.host}"}


@router.post("/pipelines/runs/{run_id}/resume", status_code=202)
def resume(run_id: str, request: Request, body: Resumption | None = None) -> dict[str, Any]:
    """Re-run a failed (or killed) pipeline run from its failed steps on, as a new run on the server."""
    g = guard(request)
    _may_run(g)
    g.run(run_id, EDIT)
    original = run_status.pipeline_run(_client(request), run_id)
    if original.status is RunStatus.FINISHED:
        raise InvalidInput(f"pipeline run {run_id} succeeded; there is nothing to resume")
    config = _config(request)
    job = Job(
        "resume",
        config.settings.executor,
        resume_of=run_id,
        run_name=body.run_name if body else None,
        user=g.principal.user if g.principal else None,
        tags={SUBMITTED_BY_TAG: g.user},
    )
    return {"run_id": launch(config, job).run_id, "resumed_from": run_id}
