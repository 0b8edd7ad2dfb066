"""MLflow's tracking REST API (``/api/2.0/mlflow/…``) over Shipyard's store: experiments, runs, params,
metrics, tags, datasets and search, as the official client calls them.

Each route reads the client's JSON or query, checks the caller's permission on what it touches (the same
:class:`~shipyard.server.guard.Guard` as ``/api/v1``) and makes the same store calls Shipyard's own routes
make, so a run logged by MLflow is an ordinary Shipyard run. What differs is only the shape: ids as strings,
``"0"`` for Default, errors as ``{"error_code", "message"}``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response

from shipyard.auth.records import ResourceType, Role
from shipyard.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.server.guard import EDIT, MANAGE, READ, guard
from shipyard.server.mlflow import protocol as p
from shipyard.server.threads import in_thread
from shipyard.store.protocol import TrackingStore
from shipyard.tracking import naming
from shipyard.tracking.chunks import Series
from shipyard.tracking.cursors import decode_cursor, encode_cursor, search_fingerprint
from shipyard.tracking.filter_parser import parse_order_by
from shipyard.tracking.records import DatasetInput, Experiment, LifecycleStage, Run, RunStatus, now_ms

router = APIRouter(route_class=p.MlflowRoute, tags=["mlflow"])

# MLflow's own limits on one log-batch call (the client splits larger batches itself).
MAX_BATCH_METRICS, MAX_BATCH_PARAMS, MAX_BATCH_TAGS = 1000, 100, 100
MAX_SEARCH_RESULTS = 50_000
_VIEW_TYPES = {"ACTIVE_ONLY", "DELETED_ONLY", "ALL"}


def _store(request: Request) -> TrackingStore:
    return request.app.state.stores.tracking


def _ids(store: TrackingStore) -> Callable[[str], str]:
    """Shipyard experiment id → MLflow's (Default's is ``"0"``), looking Default up once per request."""
    default: list[str | None] = []

    def mlflow_id(experiment_id: str) -> str:
        if not default:
            try:
                default.append(store.get_experiment(p.DEFAULT_NAME).experiment_id)
            except NotFound:
                default.append(None)
        return p.DEFAULT_ID if experiment_id == default[0] else experiment_id

    return mlflow_id


def _run_json(
    store: TrackingStore, run: Run, *, datasets: bool = False, outputs: Any = None
) -> dict[str, Any]:
    inputs = store.dataset_inputs(run.run_id) if datasets else None
    latest = store.latest_metrics([run.run_id]).get(run.run_id, []) if run.metrics else []
    found = p.run_json(run, _ids(store)(run.experiment_id), inputs, latest)
    if outputs is not None:  # the logged models the run output (MLflow 3's run.outputs)
        models = [{"model_id": m, "step": step} for m, step in outputs.outputs(run.run_id)]
        if models:
            found["outputs"] = {"model_outputs": models}
    return found


# ---------------------------------------------------------------------- experiments
@router.get("/experiments/get-by-name")
async def get_experiment_by_name(request: Request) -> Response:
    name = p.text(request.query_params, "experiment_name")

    def work() -> dict[str, Any]:
        store = _store(request)
        found = store.get_experiment(name)
        if found.name != name:  # get_experiment also takes an id
            raise NotFound(f"no experiment named {name!r}")
        guard(request).experiment(found.experiment_id, READ)
        return {"experiment": p.experiment_json(found)}

    return p.answer(await in_thread(work))


@router.get("/experiments/get")
async def get_experiment(request: Request) -> Response:
    experiment_id = p.text(request.query_params, "experiment_id")

    def work() -> dict[str, Any]:
        found = p.experiment_of(_store(request), experiment_id)
        guard(request).experiment(found.experiment_id, READ)
        return {"experiment": p.experiment_json(found)}

    return p.answer(await in_thread(work))


@router.post("/experiments/create")
async def create_experiment(request: Request) -> Response:
    body = await p.body_of(request)
    name = p.text(body, "name")
    location = p.text(body, "artifact_location", required=False)
    tags = dict(p.key_values(body, "tags"))

    def work() -> dict[str, Any]:
        g = guard(request)
        g.role(Role.EDITOR, f"create experiment {name!r}")
        if location is not None:
            g.admin("choose an experiment's artifact location")  # it could point into another's files
        store = _store(request)
        try:
            existing = store.get_experiment(name)
        except NotFound:
            existing = None
        if existing is not None and existing.name == name:
            raise AlreadyExists(f"experiment {name!r} already exists")
        found = store.create_experiment(name, description=tags.get(p.NOTE_TAG), artifact_location=location)
        g.own(ResourceType.EXPERIMENT, found.name)
        return {"experiment_id": p.mlflow_experiment_id(found)}

    return p.answer(await in_thread(work))


@router.api_route("/experiments/search", methods=["GET", "POST"])
async def search_experiments(request: Request) -> Response:
    body = await p.body_of(request) if request.method == "POST" else dict(request.query_params)
    view = p.text(body, "view_type", required=False, default="ACTIVE_ONLY")
    if view not in _VIEW_TYPES:
        raise InvalidInput(f"view_type {view!r} is not one of {', '.join(sorted(_VIEW_TYPES))}")
    limit = p.integer(body, "max_results", 1000)
    if not 1 <= limit <= MAX_SEARCH_RESULTS:
        raise InvalidInput(f"max_results must be between 1 and {MAX_SEARCH_RESULTS}, got {limit}")
    match = _experiment_filter(p.text(body, "filter", required=False) or "")
    start = _offset(p.text(body, "page_token", required=False))

    def work() -> dict[str, Any]:
        g = guard(request)
        found = [
            e
            for e in _store(request).list_experiments(include_deleted=view != "ACTIVE_ONLY")
            if (view != "DELETED_ONLY" or e.lifecycle_stage is LifecycleStage.DELETED)
            and match(e)
            and g.can_read_experiment(e)
        ]
        found.sort(key=lambda e: (-e.updated_at, e.name))
        return page_of("experiments", found, start, limit, p.experiment_json)

    return p.answer(await in_thread(work))


def _experiment_filter(text: str) -> Callable[[Experiment], bool]:
    """MLflow's experiment filter: ``name`` compared with ``=``, ``!=``, ``LIKE`` or ``ILIKE``, joined by
    ``AND``; anything else is refused naming it."""
    import re

    clauses = [c.strip() for c in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE) if c.strip()]
    tests: list[Callable[[Experiment], bool]] = []
    for clause in clauses:
        found = re.fullmatch(
            r"(?:attributes?\.)?name\s*(=|!=|like|ilike)\s*(['\"])(.*)\2", clause, flags=re.IGNORECASE | re.S
        )
        if found is None:
            raise InvalidInput(
                f"experiment filter {clause!r}: only name = / != / LIKE / ILIKE '...' is supported"
            )
        op, value = found.group(1).lower(), found.group(3)
        if op in ("like", "ilike"):
            pattern = re.compile(
                "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in value),
                re.IGNORECASE if op == "ilike" else 0,
            )
            tests.append(lambda e, pattern=pattern: pattern.fullmatch(e.name) is not None)
        elif op == "=":
            tests.append(lambda e, value=value: e.name == value)
        else:
            tests.append(lambda e, value=value: e.name != value)
    return lambda e: all(t(e) for t in tests)


async def _manage_experiment(request: Request, act: Callable[[TrackingStore, str], Any]) -> Response:
    """Delete or restore the experiment a body names (MANAGE on it)."""
    experiment_id = p.text(await p.body_of(request), "experiment_id")

    def work() -> None:
        store = _store(request)
        found = p.experiment_of(store, experiment_id)
        guard(request).experiment(found.experiment_id, MANAGE)
        act(store, found.experiment_id)

    await in_thread(work)
    return p.answer({})


@router.post("/experiments/delete")
async def delete_experiment(request: Request) -> Response:
    return await _manage_experiment(request, lambda store, i: store.delete_experiment(i))


@router.post("/experiments/restore")
async def restore_experiment(request: Request) -> Response:
    return await _manage_experiment(request, lambda store, i: store.restore_experiment(i))


@router.post("/experiments/update")
async def update_experiment(request: Request) -> Response:
    """Rename an experiment (MANAGE on it: its grants follow the name)."""
    body = await p.body_of(request)
    experiment_id, new_name = p.text(body, "experiment_id"), p.text(body, "new_name")

    def work() -> None:
        store, g = _store(request), guard(request)
        found = p.experiment_of(store, experiment_id)
        g.experiment(found.experiment_id, MANAGE)
        store.rename_experiment(found.experiment_id, new_name)
        g.renamed()

    await in_thread(work)
    return p.answer({})


# ---------------------------------------------------------------------- runs
@router.post("/runs/create")
async def create_run(request: Request) -> Response:
    body = await p.body_of(request)
    experiment_id = p.text(body, "experiment_id", required=False, default=p.DEFAULT_ID)
    # The MLflow system tags stay tags too (they are what MLflow users filter on: tags.mlflow.parentRunId).
    tags = dict(p.key_values(body, "tags"))
    name = p.text(body, "run_name", required=False) or tags.get(p.RUN_NAME_TAG)
    parent = tags.get(p.PARENT_TAG)
    user = p.text(body, "user_id", required=False)
    if user and p.USER_TAG not in tags:
        tags[p.USER_TAG] = user

    def work() -> dict[str, Any]:
        store, g = _store(request), guard(request)
        experiment = p.experiment_of(store, experiment_id)
        g.experiment(experiment.experiment_id, EDIT)
        if parent is not None:
            g.run(parent, READ)
        try:
            run, _ = store.create_run(
                experiment.experiment_id,
                name=name,
                parent_run_id=parent,
                tags={**tags, p.RUN_NAME_TAG: name} if name else tags,
                beats=False,
            )
        except AlreadyExists:
            # MLflow names need not be unique; Shipyard's are, per experiment: the run keeps the name the
            # client gave as its MLflow run name (mlflow.runName), and gets a unique one of its own.
            run, _ = store.create_run(
                experiment.experiment_id,
                parent_run_id=parent,
                tags={**tags, p.RUN_NAME_TAG: name},
                beats=False,
            )
        if not name:  # the server names it: that name is its MLflow run name too
            store.set_tags(store.run_key(run.run_id), {p.RUN_NAME_TAG: run.name})
            run = store.get_run(run.run_id)
        return {"run": _run_json(store, run)}

    return p.answer(await in_thread(work))


@router.get("/runs/get")
async def get_run(request: Request) -> Response:
    run_id = p.run_id_of(request.query_params)

    def work() -> dict[str, Any]:
        guard(request).run(run_id, READ)
        store = _store(request)
        run = store.get_run(run_id)
        return {"run": _run_json(store, run, datasets=True, outputs=request.app.state.stores.logged_models)}

    return p.answer(await in_thread(work))


@router.post("/runs/update")
async def update_run(request: Request) -> Response:
    body = await p.body_of(request)
    run_id = p.run_id_of(body)
    status = p.text(body, "status", required=False)
    name = p.text(body, "run_name", required=False)
    if status is not None and status not in RunStatus.__members__:
        raise InvalidInput(f"status {status!r} is not one of {', '.join(RunStatus.__members__)}")

    def work() -> dict[str, Any]:
        guard(request).run(run_id, EDIT)
        store = _store(request)
        key = store.run_key(run_id)
        if name is not None:
            naming.check_name(name, "run name")
            store.set_tags(key, {p.RUN_NAME_TAG: name})
        run = store.get_run(run_id)
        wanted = RunStatus(status) if status is not None else None
        if wanted is not None and wanted.is_terminal and run.status is not wanted:
            if run.status.is_terminal:
                raise InvalidInput(f"run {run_id} already ended as {run.status.value}")
            store.set_terminated(key, wanted)
            run = store.get_run(run_id)
        return {"run_info": p.run_info(run, _ids(store)(run.experiment_id))}

    return p.answer(await in_thread(work))


async def _manage_run(request: Request, act: Callable[[TrackingStore, str], Any]) -> Response:
    """Delete or restore the run a body names (MANAGE on its experiment)."""
    run_id = p.run_id_of(await p.body_of(request))

    def work() -> None:
        guard(request).run(run_id, MANAGE)
        act(_store(request), run_id)

    await in_thread(work)
    return p.answer({})


@router.post("/runs/delete")
async def delete_run(request: Request) -> Response:
    return await _manage_run(request, lambda store, run_id: store.delete_run(run_id))


@router.post("/runs/restore")
async def restore_run(request: Request) -> Response:
    return await _manage_run(request, lambda store, run_id: store.restore_run(run_id))


# ---------------------------------------------------------------------- params, metrics, tags
def _series(metrics: list[Any], run_id: str) -> dict[str, Series]:
    """MLflow metric objects as one series per key, in the order sent."""
    out: dict[str, Series] = {}
    for i, m in enumerate(metrics):
        if not isinstance(m, dict):
            raise InvalidInput(f"metrics[{i}] must be an object with key, value, timestamp and step")
        key = p.checked_key(p.text(m, "key"), "metric")
        series = out.setdefault(key, Series())
        series.values.append(p.number(m.get("value"), f"metrics[{i}].value"))
        series.timestamps.append(p.integer(m, "timestamp", now_ms()))
        series.steps.append(p.integer(m, "step", 0))
    return out


def _write(
    request: Request,
    run_id: str,
    params: list[tuple[str, str]],
    metrics: dict[str, Series],
    tags: list[tuple[str, str]],
) -> None:
    guard(request).run(run_id, EDIT)
    store = _store(request)
    key = store.run_key(run_id)
    if params:
        store.log_params(key, dict(params))
    if metrics:
        store.write_metrics({(key, k): s for k, s in metrics.items()})
    if tags:
        store.set_tags(key, dict(tags))


# The calls a training script makes per logged value: the routes below, and the server's fast lane (which
# serves them without the framework's layers, see shipyard.server.fast_lane), run these same functions.
def log_param_call(request: Request, body: dict[str, Any], _key: str | None = None) -> dict[str, Any]:
    run_id, key = p.run_id_of(body), p.checked_key(p.text(body, "key"), "param")
    value = body.get("value")
    _write(request, run_id, [(key, "" if value is None else str(value))], {}, [])
    return {}


def log_metric_call(request: Request, body: dict[str, Any], _key: str | None = None) -> dict[str, Any]:
    run_id = p.run_id_of(body)
    _write(request, run_id, [], _series([body], run_id), [])
    return {}


def log_metric_statement(request: Request, body: dict[str, Any]) -> tuple[str, list[Any]] | None:
    """``log_metric_call``'s checks, and the one statement its write is on PostgreSQL (None otherwise),
    for the fast lane to send from the event loop."""
    run_id = p.run_id_of(body)
    guard(request).run(run_id, EDIT)
    store = _store(request)
    key = store.run_key(run_id)
    statement = getattr(store, "metrics_statement", None)
    return None if statement is None else statement({(key, k): s for k, s in _series([body], run_id).items()})


def set_tag_call(request: Request, body: dict[str, Any], _key: str | None = None) -> dict[str, Any]:
    run_id, key = p.run_id_of(body), p.checked_key(p.text(body, "key"), "tag")
    value = body.get("value")
    _write(request, run_id, [], {}, [(key, "" if value is None else str(value))])
    return {}


def log_batch_call(request: Request, body: dict[str, Any], _key: str | None = None) -> dict[str, Any]:
    run_id = p.run_id_of(body)
    params, tags = p.key_values(body, "params"), p.key_values(body, "tags")
    metrics = body.get("metrics") or []
    if not isinstance(metrics, list):
        raise InvalidInput("parameter 'metrics' must be a list of metric objects")
    for what, items, limit in (
        ("metrics", metrics, MAX_BATCH_METRICS),
        ("params", params, MAX_BATCH_PARAMS),
        ("tags", tags, MAX_BATCH_TAGS),
    ):
        if len(items) > limit:
            raise InvalidInput(f"a batch may hold at most {limit} {what}, got {len(items)}")
    _write(request, run_id, params, _series(metrics, run_id), tags)
    return {}


@router.post("/runs/log-parameter")
async def log_param(request: Request) -> Response:
    return p.answer(await in_thread(log_param_call, request, await p.body_of(request)))


@router.post("/runs/log-metric")
async def log_metric(request: Request) -> Response:
    return p.answer(await in_thread(log_metric_call, request, await p.body_of(request)))


@router.post("/runs/set-tag")
async def set_tag(request: Request) -> Response:
    return p.answer(await in_thread(set_tag_call, request, await p.body_of(request)))


@router.post("/runs/log-batch")
async def log_batch(request: Request) -> Response:
    return p.answer(await in_thread(log_batch_call, request, await p.body_of(request)))


@router.post("/runs/delete-tag")
async def delete_tag(request: Request) -> Response:
    body = await p.body_of(request)
    run_id, key = p.run_id_of(body), p.text(body, "key")

    def work() -> None:
        guard(request).run(run_id, EDIT)
        store = _store(request)
        store.delete_tag(store.run_key(run_id), key)

    await in_thread(work)
    return p.answer({})


@router.get("/metrics/get-history")
async def metric_history(request: Request) -> Response:
    query = request.query_params
    run_id, key = p.run_id_of(query), p.text(query, "metric_key")
    limit = p.integer(query, "max_results", 25_000)
    if limit < 1:
        raise InvalidInput(f"max_results must be positive, got {limit}")
    start = _offset(p.text(query, "page_token", required=False))

    def work() -> dict[str, Any]:
        guard(request).run(run_id, READ)
        points = _store(request).metric_history(run_id, key)
        return page_of("metrics", points, start, limit, p.metric_json)

    return p.answer(await in_thread(work))


@router.post("/runs/log-inputs")
async def log_inputs(request: Request) -> Response:
    body = await p.body_of(request)
    run_id = p.run_id_of(body)
    entries = body.get("datasets") or []
    if not isinstance(entries, list):
        raise InvalidInput("parameter 'datasets' must be a list of dataset inputs")
    datasets = []
    for i, entry in enumerate(entries):
        dataset = entry.get("dataset") if isinstance(entry, dict) else None
        if not isinstance(dataset, dict):
            raise InvalidInput(f"datasets[{i}] must be an object with a 'dataset'")
        tags = dict(p.key_values(entry, "tags"))
        source_type = p.text(dataset, "source_type")
        if len(source_type) > 32:
            raise InvalidInput(f"datasets[{i}].dataset.source_type is longer than 32 characters")
        kept = {k: v for k in ("schema", "profile") if isinstance(v := dataset.get(k), str) and v}
        source = p.text(dataset, "source", required=False, default="")
        kept["source"] = source  # MLflow's own form (JSON), handed back as it came
        datasets.append(
            DatasetInput(
                name=p.text(dataset, "name"),
                digest=p.text(dataset, "digest"),
                source=_source_uri(source),
                source_type=source_type,
                num_rows=_rows(kept.get("profile")),
                schema={f"mlflow_{k}": v for k, v in kept.items()},
                context=tags.get("mlflow.data.context"),
            )
        )

    def work() -> None:
        guard(request).run(run_id, EDIT)
        store = _store(request)
        key = store.run_key(run_id)
        for dataset in datasets:
            store.log_dataset_input(key, dataset)

    await in_thread(work)
    return p.answer({})


def _source_uri(source: str) -> str:
    """The URI in MLflow's dataset source (``{"uri": "s3://…"}``), which Shipyard's lineage and search
    use; the source as sent when it names none."""
    try:
        uri = json.loads(source).get("uri")
    except (ValueError, AttributeError):
        return source
    return uri if isinstance(uri, str) and uri else source


def _rows(profile: str | None) -> int | None:
    """The row count MLflow's pandas datasets put in their profile (``{"num_rows": …}``), if any."""
    try:
        rows = json.loads(profile or "{}").get("num_rows")
    except (ValueError, AttributeError):
        return None
    return rows if isinstance(rows, int) and not isinstance(rows, bool) and rows >= 0 else None


# ---------------------------------------------------------------------- search
@router.post("/runs/search")
async def search_runs(request: Request) -> Response:
    body = await p.body_of(request)
    raw_ids = body.get("experiment_ids") or []
    if not isinstance(raw_ids, list) or not all(isinstance(i, str | int) for i in raw_ids):
        raise InvalidInput("parameter 'experiment_ids' must be a list of experiment ids")
    view = p.text(body, "run_view_type", required=False, default="ACTIVE_ONLY")
    if view not in _VIEW_TYPES:
        raise InvalidInput(f"run_view_type {view!r} is not one of {', '.join(sorted(_VIEW_TYPES))}")
    limit = p.integer(body, "max_results", 1000)
    if not 1 <= limit <= MAX_SEARCH_RESULTS:
        raise InvalidInput(f"max_results must be between 1 and {MAX_SEARCH_RESULTS}, got {limit}")
    order_by = body.get("order_by") or None
    if order_by is not None and (
        not isinstance(order_by, list) or not all(isinstance(o, str) for o in order_by)
    ):
        raise InvalidInput("parameter 'order_by' must be a list of strings")
    filter_text = p.text(body, "filter", required=False)
    token = p.text(body, "page_token", required=False)

    def work() -> dict[str, Any]:
        store, g = _store(request), guard(request)
        ids = [p.experiment_of(store, str(i)).experiment_id for i in raw_ids]
        deleted = view != "ACTIVE_ONLY"
        fingerprint = search_fingerprint(ids, filter_text, order_by, deleted)
        after = None
        if token is not None:
            after = decode_cursor(token, fingerprint, parse_order_by(order_by), name="page_token")
        readable = g.readable_experiment_ids(ids)
        if not readable:
            return {}
        found = store.search_page(
            readable,
            filter_text,
            order_by,
            limit=limit,
            columns=None,
            include_deleted=deleted,
            after=after,
        )
        runs = [r for r in found if view != "DELETED_ONLY" or r.lifecycle_stage is LifecycleStage.DELETED]
        mlflow_id = _ids(store)  # Default's id looked up once for the page, not once a run
        latest = store.latest_metrics([r.run_id for r in runs if r.metrics])
        out: dict[str, Any] = {
            "runs": [p.run_json(r, mlflow_id(r.experiment_id), None, latest.get(r.run_id, [])) for r in runs]
        }
        if found.next_cursor is not None:
            out["next_page_token"] = encode_cursor(found.next_cursor, fingerprint)
        return out

    return p.answer(await in_thread(work))


# ---------------------------------------------------------------------- pages of in-memory lists
def page_of(key: str, rows: list[Any], start: int, limit: int, shape: Callable[[Any], Any]) -> dict[str, Any]:
    """``{key: rows[start:start+limit] shaped, "next_page_token"?}``: one page and where the next starts."""
    out: dict[str, Any] = {key: [shape(r) for r in rows[start : start + limit]]}
    if start + limit < len(rows):
        out["next_page_token"] = _token(start + limit)
    return out


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode() + b"==="))["offset"]
    except (ValueError, KeyError, TypeError):
        raise InvalidInput(f"page_token {token[:40]!r} is not a token this server gave") from None
    if not isinstance(offset, int) or offset < 0:
        raise InvalidInput(f"page_token {token[:40]!r} is not a token this server gave")
    return offset
