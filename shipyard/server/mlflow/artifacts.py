"""MLflow's proxied artifacts (``/api/2.0/mlflow-artifacts/…``) over the server's own files.

The client is handed ``mlflow-artifacts:/<experiment>/<run>/artifacts`` locations, which name the same files
Shipyard's clients reach as ``shipyard-artifacts://artifacts/<experiment>/<run>/artifacts``: one upload, one
list, one download per file, each path confined to the server's artifact root and checked against the
caller's permission on the experiment (or model) it belongs to. A file a client puts under a run is also
recorded on the run (size, sha256), so ``shipyard runs show`` lists it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from shipyard.errors import InvalidInput, NotFound
from shipyard.server import artifact_routes
from shipyard.server.guard import ARTIFACTS_ROOT, READ, artifact_path, guard
from shipyard.server.mlflow import protocol as p
from shipyard.server.threads import in_thread
from shipyard.store.artifacts import ArtifactStore, safe_relpath
from shipyard.tracking.records import ArtifactRecord

router = APIRouter(route_class=p.MlflowRoute, tags=["mlflow"])


def _served(request: Request) -> ArtifactStore:
    store = getattr(request.app.state, "artifacts", None)
    if store is None:
        raise InvalidInput(
            "this server keeps no artifacts (started with --artifacts ''): clients write to the artifact "
            "locations its experiments name"
        )
    return store


def _rel(path: str) -> str:
    return f"{ARTIFACTS_ROOT}/{safe_relpath(path)}"


@router.put("/artifacts/{path:path}")
async def upload(path: str, request: Request) -> Response:
    _served(request)
    stored = await artifact_routes.upload(_rel(path), request)
    await in_thread(_record, request, path, stored)
    return p.answer({})


def _record(request: Request, path: str, stored: dict[str, Any]) -> None:
    """Record a file put under ``<experiment>/<run>/artifacts/`` on that run (other paths: a logged model's
    files, say, belong to no run's listing)."""
    parts = safe_relpath(path).split("/")
    if len(parts) < 4 or parts[2] != "artifacts":
        return
    store = request.app.state.stores.tracking
    try:
        run = store.get_run(parts[1])
    except NotFound:
        return
    if not run.artifact_uri.endswith(f"/{parts[0]}/{parts[1]}/artifacts"):
        return  # a path shaped like a run's that is not where this run keeps its files
    record = ArtifactRecord("/".join(parts[3:]), stored["size"], stored["sha256"])
    store.record_artifacts(store.run_key(run.run_id), [record])


@router.get("/artifacts/{path:path}")
async def download(path: str, request: Request) -> StreamingResponse:
    _served(request)
    return await in_thread(artifact_routes.download, _rel(path), request)


@router.get("/artifacts")
async def list_artifacts(request: Request) -> Response:
    """A folder's entries by their names in it; ``{}`` for a file or nothing (how the client tells a file
    from a folder)."""
    store = _served(request)
    wanted = request.query_params.get("path", "")
    rel = f"{ARTIFACTS_ROOT}/{safe_relpath(wanted)}" if wanted.strip("/") else ARTIFACTS_ROOT

    def work() -> dict[str, Any]:
        artifact_path(guard(request), rel, READ)
        try:
            entries = store.list(rel)
        except NotFound:
            return {}
        if len(entries) == 1 and entries[0].path == rel and not entries[0].is_dir:
            return {}  # a file
        files = []
        for e in entries:
            entry: dict[str, Any] = {"path": e.path.rsplit("/", 1)[-1], "is_dir": e.is_dir}
            if not e.is_dir:
                entry["file_size"] = e.size
            files.append(entry)
        return {"files": files}

    return p.answer(await in_thread(work))
