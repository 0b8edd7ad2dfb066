"""Lineage over REST: record an execution with its inputs and outputs, find an artifact, walk upstream."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from shipyard.auth.records import Role
from shipyard.lineage.records import ArtifactType
from shipyard.server.guard import EDIT, READ, guard
from shipyard.store import wire
from shipyard.store.protocol import LineageStore

router = APIRouter(tags=["lineage"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArtifactRef(_Body):
    uri: str
    type: ArtifactType
    sha256: str
    name: str | None = None


class NewExecution(_Body):
    execution_type: str
    name: str | None = None
    run_id: str | None = None
    pipeline_run_id: str | None = None
    inputs: list[ArtifactRef] = Field(default_factory=list)
    outputs: list[ArtifactRef] = Field(default_factory=list)
    properties: dict[str, Any] | None = None


def _store(request: Request) -> LineageStore:
    return request.app.state.stores.lineage


@router.post("/lineage/executions", status_code=201)
def record(body: NewExecution, request: Request) -> dict[str, int]:
    """Record one execution with its input and output artifacts at once; the execution id."""
    g = guard(request)
    if body.run_id is not None:
        g.run(body.run_id, EDIT)
    else:
        g.role(Role.EDITOR, "record lineage")
    execution_id = _store(request).record(
        body.execution_type,
        name=body.name,
        run_id=body.run_id,
        pipeline_run_id=body.pipeline_run_id,
        inputs=[(a.uri, a.type, a.sha256, a.name) for a in body.inputs],
        outputs=[(a.uri, a.type, a.sha256, a.name) for a in body.outputs],
        properties=body.properties,
    )
    return {"execution_id": execution_id}


@router.get("/lineage/artifacts")
def find(uri: str, request: Request) -> dict[str, Any]:
    """An artifact by URI (403 if it was made by a run of an experiment the caller cannot read)."""
    found = _store(request).find(uri)
    g = guard(request)
    if g.principal is not None:
        graph = _store(request).upstream(uri)
        g.runs({e.run_id for e in graph.executions.values() if e.run_id}, READ, missing_ok=True)
    return wire.to_json(found)


@router.get("/lineage/upstream")
def upstream(uri: str, request: Request) -> dict[str, Any]:
    """Everything ``uri`` was made from, back to the sources (403 if it passes through a run of an
    experiment the caller cannot read)."""
    graph = _store(request).upstream(uri)
    run_ids = {e.run_id for e in graph.executions.values() if e.run_id}
    guard(request).runs(run_ids, READ, missing_ok=True)
    return wire.to_json(graph)
