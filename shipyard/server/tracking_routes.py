"""Tracking over REST: experiments, runs, params, tags, metric batches, artifact records, datasets, search.

Each route is one :class:`~shipyard.store.protocol.TrackingStore` call on the server's store; runs are named
by id in paths (the store's integer keys never leave the server).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shipyard.auth.records import ResourceType, Role
from shipyard.errors import InvalidInput
from shipyard.server.answers import json_bytes
from shipyard.server.guard import EDIT, MANAGE, READ, guard
from shipyard.server.threads import in_thread
from shipyard.store import wire
from shipyard.store.protocol import TrackingStore
from shipyard.tracking import naming
from shipyard.tracking.chunks import Series
from shipyard.tracking.cursors import decode_cursor, encode_cursor, search_fingerprint
from shipyard.tracking.filter_parser import parse_order_by
from shipyard.tracking.records import ArtifactRecord, DatasetInput, RunStatus

router = APIRouter(tags=["tracking"])

# A client's key for one write, the same on each retry of it: the store records it with the write, so a retry
# after a lost answer (a dropped connection, a killed worker) is stored once.
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", pattern=r"^[A-Za-z0-9_-]{8,64}$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewExperiment(_Body):
    name: str
    description: str | None = None
    artifact_location: str | None = None


class ExperimentChange(_Body):
    name: str


class NewRun(_Body):
    experiment: str
    name: str | None = None
    parent_run_id: str | None = None
    tags: dict[str, Any] | None = None
    beats: bool = Field(True, description="False: no process beats for the run; it never shows LOST.")


class Values(_Body):
    values: dict[str, Any]


class RunIds(_Body):
    run_ids: list[str]


class SeriesEntry(_Body):
    """One (run, key)'s points: JSON lists, or base64 of little-endian int64 / float64 / int64 (what the
    Python client sends: far cheaper to encode and check than lists of numbers)."""

    run_id: str
    key: str
    steps: str | list[int]
    values: str | list[float | str]
    timestamps: str | list[int]


# Params by run id, sent with a batch by clients that buffer them (one request per flush, not per call).
ParamsByRun = dict[str, dict[str, Any]]


class MetricBatch(_Body):
    metrics: list[SeriesEntry]
    params: ParamsByRun = Field(default_factory=dict)


class PackedEntry(_Body):
    run_id: str
    key: str
    count: int = Field(ge=0)


class PackedHeader(_Body):
    """The JSON header of a packed metric batch (see :func:`shipyard.store.wire.pack_batch`)."""

    metrics: list[PackedEntry]
    params: ParamsByRun = Field(default_factory=dict)


_PACKED_BODY = {
    "requestBody": {
        "required": True,
        "content": {wire.PACKED_METRICS: {"schema": {"type": "string", "format": "binary"}}},
    }
}


class EndRun(_Body):
    status: RunStatus
    metrics: list[SeriesEntry] = Field(default_factory=list)
    params: ParamsByRun = Field(default_factory=dict)


class ArtifactFiles(_Body):
    files: list[dict[str, Any]]


class Dataset(_Body):
    name: str
    digest: str
    source: str
    source_type: str = Field(max_length=32)
    num_rows: int | None = None
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    context: str | None = None


class Search(_Body):
    experiment_ids: list[str]
    filter: str | None = None
    order_by: list[str] | None = None
    offset: int = Field(0, ge=0)
    limit: int = Field(100, ge=1, le=50_001)
    columns: list[str] | None = None
    include_deleted: bool = False
    after: str | None = Field(
        None,
        max_length=4096,
        description=(
            f"Start the page strictly after this cursor: the {wire.NEXT_CURSOR_HEADER} header of the page "
            "before, from the same search (experiments, filter, order, include_deleted). Not with an offset."
        ),
    )


class RecentKeys(_Body):
    run_ids: list[str]
    limit: int = Field(6, ge=0, le=1000)
    exclude_prefixes: list[str] = Field(default_factory=lambda: ["system/"])


_NO_CONTENT = 204


def _store(request: Request) -> TrackingStore:
    return request.app.state.stores.tracking


# The routes a training script calls per run and per flush are async and hop to a thread once (in_thread),
# for all of their store calls, answering with a ready Response: a plain sync route costs two thread hops
# (FastAPI also checks and encodes the answer in a thread), about a quarter of such a request's server time.
def _answer(data: Any, status: int = 200) -> Response:
    if status == _NO_CONTENT:
        return Response(status_code=_NO_CONTENT)
    body = json_bytes(data)
    return Response(body, status_code=status, media_type="application/json")


def _params(store: TrackingStore, params: ParamsByRun) -> dict[int, dict[str, Any]]:
    return {store.run_key(run_id): values for run_id, values in params.items()}


def _pending(store: TrackingStore, entries: list[SeriesEntry]) -> dict[tuple[int, str], Any]:
    return _keyed(store, wire.series_in(e.model_dump() for e in entries))


def _keyed(store: TrackingStore, triples: list[tuple[str, str, Series]]) -> dict[tuple[int, str], Series]:
    pending: dict[tuple[int, str], Series] = {}
    for run_id, key, series in triples:
        naming.check_key(key, "metric")
        found = pending.setdefault((store.run_key(run_id), key), series)
        if found is not series:  # the same key twice in one batch: keep both parts, in order
            found.extend(series)
    return pending


def _store_batch(
    request: Request,
    triples: list[tuple[str, str, Series]],
    params: ParamsByRun,
    idempotency_key: str | None,
) -> None:
    store = _store(request)
    guard(request).runs({run_id for run_id, _, _ in triples} | params.keys(), EDIT)
    store.write_metrics(
        _keyed(store, triples), idempotency_key=idempotency_key, params=_params(store, params)
    )


# ---------------------------------------------------------------------- a run's writes
# What the routes a training script calls per run and per flush do, in a worker thread: the routes below
# and the server's fast lane (:mod:`shipyard.server.fast_lane`, which serves them without the framework's
# layers) both run these.
def store_metrics(request: Request, body: MetricBatch, idempotency_key: str | None) -> None:
    triples = wire.series_in(e.model_dump() for e in body.metrics)
    _store_batch(request, triples, body.params, idempotency_key)


def parse_packed(body: bytes) -> tuple[PackedHeader, list[Series]]:
    """A packed batch's header (checked: a bad one raises `ValidationError`) and its entries' columns."""
    raw, columns = wire.unpack_batch(body)
    return PackedHeader.model_validate(raw), columns


def store_packed(
    request: Request, batch: tuple[PackedHeader, list[Series]], idempotency_key: str | None
) -> None:
    header, columns = batch
    triples = [(e.run_id, e.key, s) for e, s in zip(header.metrics, columns, strict=True)]
    _store_batch(request, triples, header.params, idempotency_key)


def start_run(request: Request, body: NewRun, idempotency_key: str | None) -> dict[str, Any]:
    g = guard(request)
    g.experiment_name(body.experiment, EDIT)
    if body.parent_run_id is not None:
        g.run(body.parent_run_id, READ)
    run, _ = _store(request).create_run(
        body.experiment,
        name=body.name,
        parent_run_id=body.parent_run_id,
        tags=body.tags,
        idempotency_key=idempotency_key,
        beats=body.beats,
    )
    g.own(ResourceType.EXPERIMENT, body.experiment, created_only=True)
    return wire.to_json(run)


def finish_run(request: Request, body: EndRun, idempotency_key: str | None, run_id: str) -> dict[str, int]:
    store, g = _store(request), guard(request)
    g.run(run_id, EDIT)
    if body.params.keys() - {run_id}:
        g.runs(body.params.keys(), EDIT)
    key, pending = store.run_key(run_id), _pending(store, body.metrics)
    params = _params(store, body.params)
    end = store.set_terminated(key, body.status, pending, idempotency_key=idempotency_key, params=params)
    return {"end_time": end}


# First in the table: FastAPI tries routes in order, and these are most of a server's requests.
@router.post("/metrics", status_code=204, response_model=None)
async def write_metrics(
    body: MetricBatch, request: Request, idempotency_key: IdempotencyKey = None
) -> Response:
    """Store a batch of points (one request per client flush), all or nothing, and once per key."""
    await in_thread(store_metrics, request, body, idempotency_key)
    return _answer(None, _NO_CONTENT)


@router.post("/metrics/binary", status_code=204, response_model=None, openapi_extra=_PACKED_BODY)
async def write_packed_metrics(request: Request, idempotency_key: IdempotencyKey = None) -> Response:
    """``POST /metrics`` with the points in one binary body (``application/vnd.shipyard.metrics``: a
    uint32 header length, a JSON header of entries and params, then each entry's columns as little-endian
    int64 / float64 / int64; see ``shipyard.store.wire.pack_batch``). What the Python client sends."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip()
    if media_type != wire.PACKED_METRICS:
        raise InvalidInput(f"content-type must be {wire.PACKED_METRICS}, not {media_type or 'none'!r}")
    body = await request.body()

    def work() -> None:
        try:
            batch = parse_packed(body)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from None
        store_packed(request, batch, idempotency_key)

    await in_thread(work)
    return _answer(None, _NO_CONTENT)


@router.post("/runs", status_code=201, response_model=dict[str, Any])
async def create_run(body: NewRun, request: Request, idempotency_key: IdempotencyKey = None) -> Response:
    return _answer(await in_thread(start_run, request, body, idempotency_key), 201)


@router.post("/runs/{run_id}/params", status_code=204, response_model=None)
async def log_params(run_id: str, body: Values, request: Request) -> Response:
    def work() -> None:
        store = _store(request)
        guard(request).run(run_id, EDIT)
        store.log_params(store.run_key(run_id), body.values)

    await in_thread(work)
    return _answer(None, _NO_CONTENT)


@router.post("/runs/{run_id}/end", response_model=dict[str, int])
async def end_run(
    run_id: str, body: EndRun, request: Request, idempotency_key: IdempotencyKey = None
) -> Response:
    """End a run with its last points, in one transaction; the end time."""
    return _answer(await in_thread(finish_run, request, body, idempotency_key, run_id))


@router.patch("/runs/{run_id}/tags", status_code=204, response_model=None)
async def set_tags(run_id: str, body: Values, request: Request) -> Response:
    def work() -> None:
        store = _store(request)
        guard(request).run(run_id, EDIT)
        store.set_tags(store.run_key(run_id), body.values)

    await in_thread(work)
    return _answer(None, _NO_CONTENT)


@router.post("/runs/beat", status_code=204, response_model=None)
async def beat(body: RunIds, request: Request) -> Response:
    def work() -> None:
        store = _store(request)
        guard(request).runs(body.run_ids, EDIT)
        store.beat([store.run_key(run_id) for run_id in body.run_ids])

    await in_thread(work)
    return _answer(None, _NO_CONTENT)


# ---------------------------------------------------------------------- experiments
@router.post("/experiments", status_code=201)
def create_experiment(body: NewExperiment, request: Request) -> dict[str, Any]:
    g = guard(request)
    g.role(Role.EDITOR, f"create experiment {body.name!r}")
    if body.artifact_location is not None:
        g.admin("choose an experiment's artifact location")  # it could point into another's files
    found = _store(request).create_experiment(
        body.name, description=body.description, artifact_location=body.artifact_location
    )
    g.own(ResourceType.EXPERIMENT, found.name)
    return wire.to_json(found)


@router.get("/experiments")
def list_experiments(request: Request, include_deleted: bool = False) -> list[dict[str, Any]]:
    g = guard(request)
    found = _store(request).list_experiments(include_deleted=include_deleted)
    return wire.to_json([e for e in found if g.can_read_experiment(e)])


@router.get("/experiments/{id_or_name}")
def get_experiment(id_or_name: str, request: Request) -> dict[str, Any]:
    guard(request).experiment(id_or_name, READ)
    return wire.to_json(_store(request).get_experiment(id_or_name))


@router.put("/experiments/{name}")
def get_or_create_experiment(name: str, request: Request) -> dict[str, Any]:
    """The active experiment ``name``, created when missing (idempotent)."""
    g = guard(request)
    g.experiment_name(name, READ)
    found = _store(request).get_or_create_experiment(name)
    g.own(ResourceType.EXPERIMENT, found.name, created_only=True)
    return wire.to_json(found)


@router.delete("/experiments/{id_or_name}")
def delete_experiment(id_or_name: str, request: Request, force: bool = False) -> dict[str, Any]:
    guard(request).experiment(id_or_name, MANAGE)
    return wire.to_json(_store(request).delete_experiment(id_or_name, force=force))


@router.post("/experiments/{id_or_name}/restore")
def restore_experiment(id_or_name: str, request: Request) -> dict[str, Any]:
    guard(request).experiment(id_or_name, MANAGE)
    return wire.to_json(_store(request).restore_experiment(id_or_name))


@router.patch("/experiments/{id_or_name}")
def rename_experiment(id_or_name: str, body: ExperimentChange, request: Request) -> dict[str, Any]:
    """Rename an experiment (its grants follow it: renaming needs MANAGE)."""
    g = guard(request)
    g.experiment(id_or_name, MANAGE)
    found = _store(request).rename_experiment(id_or_name, body.name)
    g.renamed()
    return wire.to_json(found)


@router.get("/experiments/{id_or_name}/backed-versions")
def versions_backed_by_experiment(id_or_name: str, request: Request) -> list[dict[str, Any]]:
    guard(request).experiment(id_or_name, READ)
    return wire.to_json(_store(request).versions_backed_by_experiment(id_or_name))


# ---------------------------------------------------------------------- runs
@router.get("/runs")
def find_run(
    request: Request,
    id_or_name: str | None = None,
    name: str | None = None,
    experiment: str | None = None,
) -> dict[str, Any]:
    """A run by ``id_or_name`` (in ``experiment`` when given), or by exact ``name`` in ``experiment``."""
    store, g = _store(request), guard(request)
    if experiment is not None:
        g.experiment(experiment, READ)
    if name is not None:
        run = store.get_run_by_name(name, experiment or "Default")
    else:
        run = store.find_run(id_or_name or "", experiment)
    g.experiment(run.experiment_id, READ)
    return wire.to_json(run)


@router.post(
    "/runs/search",
    responses={
        200: {
            "headers": {
                wire.NEXT_CURSOR_HEADER: {
                    "description": "The next page's `after`; absent on the last page.",
                    "schema": {"type": "string"},
                }
            }
        }
    },
)
def search_page(body: Search, request: Request, response: Response) -> list[dict[str, Any]]:
    """A page of runs, from ``offset`` or strictly after the cursor ``after`` (keyset pagination: a deep page
    costs what the first does); experiments the caller may not read are left out of the search."""
    fingerprint = search_fingerprint(body.experiment_ids, body.filter, body.order_by, body.include_deleted)
    after = None
    if body.after is not None:
        after = decode_cursor(body.after, fingerprint, parse_order_by(body.order_by), name="after")
    readable = guard(request).readable_experiment_ids(body.experiment_ids)
    if body.experiment_ids and not readable:
        return []
    found = _store(request).search_page(
        readable,
        body.filter,
        body.order_by,
        offset=body.offset,
        limit=body.limit,
        columns=body.columns,
        include_deleted=body.include_deleted,
        after=after,
    )
    if found.next_cursor is not None:
        response.headers[wire.NEXT_CURSOR_HEADER] = encode_cursor(found.next_cursor, fingerprint)
    return wire.to_json(found)


@router.get("/runs/with-tag")
def runs_with_tag(
    request: Request,
    key: str,
    value: str,
    status: RunStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10,
) -> list[dict[str, Any]]:
    found = _store(request).runs_with_tag(key, value, status=status, limit=limit)
    return wire.to_json(guard(request).readable_runs(found))


@router.post("/runs/recent-metric-keys")
def recent_metric_keys(body: RecentKeys, request: Request) -> list[str]:
    guard(request).runs(body.run_ids, READ)
    return _store(request).recent_metric_keys(
        body.run_ids, limit=body.limit, exclude_prefixes=body.exclude_prefixes
    )


@router.get("/runs/{run_id}")
def get_run(run_id: str, request: Request) -> dict[str, Any]:
    run = _store(request).get_run(run_id)
    guard(request).experiment(run.experiment_id, READ)
    return wire.to_json(run)


@router.post("/runs/{run_id}/resume")
def resume_run(run_id: str, request: Request) -> dict[str, Any]:
    guard(request).run(run_id, EDIT)
    run, _ = _store(request).resume_run(run_id)
    return wire.to_json(run)


@router.get("/runs/{run_id}/status")
def run_status(run_id: str, request: Request) -> dict[str, str]:
    store = _store(request)
    guard(request).run(run_id, READ)
    return {"status": store.run_status(store.run_key(run_id)).value}


@router.delete("/runs/{run_id}")
def delete_run(run_id: str, request: Request, force: bool = False) -> list[dict[str, Any]]:
    guard(request).run(run_id, MANAGE)
    return wire.to_json(_store(request).delete_run(run_id, force=force))


@router.post("/runs/{run_id}/restore", status_code=204)
def restore_run(run_id: str, request: Request) -> None:
    guard(request).run(run_id, MANAGE)
    _store(request).restore_run(run_id)


@router.delete("/runs/{run_id}/tags/{key}", status_code=204)
def delete_tag(run_id: str, key: str, request: Request) -> None:
    store = _store(request)
    guard(request).run(run_id, EDIT)
    store.delete_tag(store.run_key(run_id), key)


@router.get("/runs/{run_id}/metrics/{key}/history")
def metric_history(run_id: str, key: str, request: Request) -> list[dict[str, Any]]:
    guard(request).run(run_id, READ)
    return wire.to_json(_store(request).metric_history(run_id, key))


@router.post("/runs/latest-metrics")
def latest_metrics(body: RunIds, request: Request) -> dict[str, list[dict[str, Any]]]:
    """Each run's latest point per key, with its step and time (runs the caller cannot read: 403)."""
    guard(request).runs(body.run_ids, READ, missing_ok=True)
    return wire.to_json(_store(request).latest_metrics(body.run_ids))  # type: ignore[no-any-return]


@router.post("/runs/{run_id}/artifact-records", status_code=204)
def record_artifacts(run_id: str, body: ArtifactFiles, request: Request) -> None:
    store = _store(request)
    guard(request).run(run_id, EDIT)
    files = [ArtifactRecord(str(f["path"]), int(f["size"]), str(f["sha256"])) for f in body.files]
    store.record_artifacts(store.run_key(run_id), files)


@router.get("/runs/{run_id}/artifact-records")
def list_artifacts(run_id: str, request: Request, prefix: str = "") -> list[dict[str, Any]]:
    guard(request).run(run_id, READ)
    return wire.to_json(_store(request).list_artifacts(run_id, prefix))


@router.post("/runs/{run_id}/datasets", status_code=204)
def log_dataset_input(run_id: str, body: Dataset, request: Request) -> None:
    store = _store(request)
    guard(request).run(run_id, EDIT)
    dataset = DatasetInput(
        name=body.name,
        digest=body.digest,
        source=body.source,
        source_type=body.source_type,
        num_rows=body.num_rows,
        schema=body.schema_,
        context=body.context,
    )
    store.log_dataset_input(store.run_key(run_id), dataset)


@router.get("/runs/{run_id}/datasets")
def dataset_inputs(run_id: str, request: Request) -> list[dict[str, Any]]:
    guard(request).run(run_id, READ)
    return wire.to_json(_store(request).dataset_inputs(run_id))


@router.get("/runs/{run_id}/children")
def child_runs(
    run_id: str, request: Request, limit: Annotated[int, Query(ge=0, le=10_000)] = 100
) -> dict[str, Any]:
    g = guard(request)
    g.run(run_id, READ)
    found, total = _store(request).child_runs(run_id, limit=limit)
    readable = g.readable_runs(found)
    return {"runs": wire.to_json(readable), "total": total - (len(found) - len(readable))}


class Gc(_Body):
    older_than_ms: int = Field(0, ge=0)
    dry_run: bool = False


class Stale(_Body):
    timeout_s: float | None = Field(None, gt=0)
    dry_run: bool = False


# ---------------------------------------------------------------------- maintenance (admin)
@router.post("/admin/gc")
def collect_garbage(body: Gc, request: Request) -> dict[str, Any]:
    """Purge deleted runs and experiments (and their artifacts) on the server."""
    guard(request).admin("collect garbage")
    return wire.to_json(
        _store(request).collect_garbage(older_than_ms=body.older_than_ms, dry_run=body.dry_run)
    )


@router.post("/admin/stale-runs")
def mark_stale_runs(body: Stale, request: Request) -> list[dict[str, Any]]:
    """End the runs whose process stopped beating KILLED."""
    guard(request).admin("end stale runs")
    return wire.to_json(_store(request).mark_stale_runs(timeout_s=body.timeout_s, dry_run=body.dry_run))
