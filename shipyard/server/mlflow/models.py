"""MLflow 3's logged models and MLflow's model registry (``/api/2.0/mlflow/…``) over Shipyard's records.

``mlflow.<flavor>.log_model`` creates a logged model (its files go under the experiment's
``models/<id>/artifacts`` on the server), uploads its files and marks it ready; registering it makes a
version of a Shipyard registered model whose package is that MLflow package, with a ``MODEL.yaml`` written
beside its ``MLmodel`` listing every file's sha256 (see :mod:`shipyard.registry.mlflow_packages`), so the
registry verifies it as it does its own packages. Shipyard never unpickles it: ``mlflow.pyfunc.load_model``
loads it, after the client has downloaded the files through ``get-download-uri``.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from typing import Any

from fastapi import APIRouter, Request, Response

from shipyard.auth.records import ResourceType
from shipyard.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.lineage import ArtifactType
from shipyard.registry import mlflow_packages
from shipyard.registry.records import ModelVersion, RegisteredModel, Stage
from shipyard.registry.saving import dataset_uri
from shipyard.registry.uri import check_version
from shipyard.server.guard import EDIT, MANAGE, READ, guard
from shipyard.server.mlflow import protocol as p
from shipyard.server.mlflow.tracking import _offset, _store, _token, page_of
from shipyard.server.threads import in_thread
from shipyard.store.artifacts import CHUNK_SIZE, ArtifactStore
from shipyard.tracking.logged_models import LoggedModel, LoggedModelStatus
from shipyard.tracking.records import LifecycleStage

router = APIRouter(route_class=p.MlflowRoute, tags=["mlflow"])

MODEL_VERSIONS_TAG = "mlflow.modelVersions"
_STATUSES = {s.value for s in LoggedModelStatus}


def _models(request: Request) -> Any:
    return request.app.state.stores.logged_models


def _registry(request: Request) -> Any:
    return request.app.state.stores.registry


# ---------------------------------------------------------------------- logged models
def model_json(model: LoggedModel, experiment_id: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "model_id": model.model_id,
        "experiment_id": experiment_id,
        "name": model.name,
        "artifact_uri": p.location(model.artifact_location),
        "status": model.status.value,
        "creation_timestamp_ms": model.created_at,
        "last_updated_timestamp_ms": model.updated_at,
        "tags": [{"key": k, "value": v} for k, v in model.tags.items()],
    }
    if model.source_run_id:
        info["source_run_id"] = model.source_run_id
    if model.model_type:
        info["model_type"] = model.model_type
    params = [{"key": k, "value": v} for k, v in model.params.items()]
    return {"info": info, "data": {"params": params, "metrics": []}}


def _model_answer(request: Request, model: LoggedModel) -> dict[str, Any]:
    experiment = _store(request).get_experiment(model.experiment_id)
    return {"model": model_json(model, p.mlflow_experiment_id(experiment))}


def _readable_model(request: Request, model_id: str, needed: Any = READ) -> LoggedModel:
    model = _models(request).get(model_id)
    guard(request).experiment(model.experiment_id, needed)
    return model


@router.post("/logged-models")
async def create_logged_model(request: Request) -> Response:
    body = await p.body_of(request)
    experiment_id = p.text(body, "experiment_id")
    name = p.text(body, "name", required=False) or "model"
    run_id = p.text(body, "source_run_id", required=False)
    model_type = p.text(body, "model_type", required=False)
    params, tags = dict(p.key_values(body, "params")), dict(p.key_values(body, "tags"))

    def work() -> dict[str, Any]:
        store, g = _store(request), guard(request)
        experiment = p.experiment_of(store, experiment_id)
        g.experiment(experiment.experiment_id, EDIT)
        if run_id is not None and store.get_run(run_id).experiment_id != experiment.experiment_id:
            raise InvalidInput(f"run {run_id} is not in experiment {experiment_id}")
        model = _models(request).create(
            experiment.experiment_id,
            name,
            artifact_root=experiment.artifact_location,
            source_run_id=run_id,
            model_type=model_type,
            params=params,
            tags=tags,
        )
        return _model_answer(request, model)

    return p.answer(await in_thread(work))


@router.get("/logged-models/{model_id}")
async def get_logged_model(model_id: str, request: Request) -> Response:
    def work() -> dict[str, Any]:
        return _model_answer(request, _readable_model(request, model_id))

    return p.answer(await in_thread(work))


@router.patch("/logged-models/{model_id}")
async def finalize_logged_model(model_id: str, request: Request) -> Response:
    status = p.text(await p.body_of(request), "status")
    if status not in _STATUSES:
        raise InvalidInput(f"status {status!r} is not one of {', '.join(sorted(_STATUSES))}")

    def work() -> dict[str, Any]:
        _readable_model(request, model_id, EDIT)
        return _model_answer(request, _models(request).set_status(model_id, status))

    return p.answer(await in_thread(work))


@router.delete("/logged-models/{model_id}")
async def delete_logged_model(model_id: str, request: Request) -> Response:
    def work() -> None:
        _readable_model(request, model_id, MANAGE)
        _models(request).delete(model_id)

    await in_thread(work)
    return p.answer({})


@router.patch("/logged-models/{model_id}/tags")
async def set_logged_model_tags(model_id: str, request: Request) -> Response:
    tags = dict(p.key_values(await p.body_of(request), "tags"))

    def work() -> None:
        _readable_model(request, model_id, EDIT)
        _models(request).set_tags(model_id, tags)

    await in_thread(work)
    return p.answer({})


@router.delete("/logged-models/{model_id}/tags/{key:path}")
async def delete_logged_model_tag(model_id: str, key: str, request: Request) -> Response:
    def work() -> None:
        _readable_model(request, model_id, EDIT)
        _models(request).delete_tag(model_id, key)

    await in_thread(work)
    return p.answer({})


_NAME_FILTER = re.compile(r"\s*name\s*=\s*(['\"])(.*)\1\s*", re.S)


@router.post("/logged-models/search")
async def search_logged_models(request: Request) -> Response:
    """Logged models of the experiments named; the filter MLflow's client sends (``name = '…'``), or none."""
    body = await p.body_of(request)
    ids = body.get("experiment_ids") or []
    if not isinstance(ids, list) or not all(isinstance(i, str | int) for i in ids):
        raise InvalidInput("parameter 'experiment_ids' must be a list of experiment ids")
    text = p.text(body, "filter", required=False) or ""
    name = None
    if text.strip():
        found = _NAME_FILTER.fullmatch(text)
        if found is None:
            raise InvalidInput(f"logged model filter {text!r}: only name = '...' is supported")
        name = found.group(2)
    limit = p.integer(body, "max_results", 100)
    start = _offset(p.text(body, "page_token", required=False))

    def work() -> dict[str, Any]:
        store, g = _store(request), guard(request)
        experiments = [p.experiment_of(store, str(i)) for i in ids]
        for experiment in experiments:
            g.experiment(experiment.experiment_id, READ)
        mlflow_ids = {e.experiment_id: p.mlflow_experiment_id(e) for e in experiments}
        models, more = _models(request).search(list(mlflow_ids), name=name, offset=start, limit=limit)
        out: dict[str, Any] = {"models": [model_json(m, mlflow_ids[m.experiment_id]) for m in models]}
        if more:
            out["next_page_token"] = _token(start + limit)
        return out

    return p.answer(await in_thread(work))


@router.post("/runs/outputs")
async def log_outputs(request: Request) -> Response:
    body = await p.body_of(request)
    run_id = p.run_id_of(body)
    entries = body.get("models") or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InvalidInput("parameter 'models' must be a list of {model_id, step} objects")
    outputs = [(p.text(e, "model_id"), p.integer(e, "step", 0)) for e in entries]

    def work() -> None:
        guard(request).run(run_id, EDIT)
        run = _store(request).get_run(run_id)
        for model_id, _ in outputs:
            if _models(request).get(model_id).experiment_id != run.experiment_id:
                raise InvalidInput(f"logged model {model_id} is not in run {run_id}'s experiment")
        _models(request).add_outputs(run_id, outputs)

    await in_thread(work)
    return p.answer({})


# ---------------------------------------------------------------------- the registry
def version_json(version: ModelVersion) -> dict[str, Any]:
    found: dict[str, Any] = {
        "name": version.name,
        "version": str(version.version),
        "creation_timestamp": version.created_at,
        "last_updated_timestamp": version.updated_at,
        "current_stage": version.stage.value,
        "source": version.source_uri,
        "status": "READY",
        "aliases": list(version.aliases),
        "tags": [{"key": k, "value": v} for k, v in version.tags.items()],
    }
    if version.description:
        found["description"] = version.description
    if version.run_id:
        found["run_id"] = version.run_id
    model_id = version.lineage.get("mlflow_model_id") if isinstance(version.lineage, dict) else None
    if model_id:
        found["model_id"] = model_id
    return found


def registered_json(request: Request, model: RegisteredModel) -> dict[str, Any]:
    versions = _registry(request).list_versions(model.name)
    latest: dict[str, ModelVersion] = {}
    for v in versions:  # MLflow's latest_versions: the newest version of each stage
        if v.stage.value not in latest or v.version > latest[v.stage.value].version:
            latest[v.stage.value] = v
    found: dict[str, Any] = {
        "name": model.name,
        "creation_timestamp": model.created_at,
        "last_updated_timestamp": model.updated_at,
        "latest_versions": [version_json(v) for v in sorted(latest.values(), key=lambda v: v.version)],
        "tags": [{"key": k, "value": v} for k, v in model.tags.items()],
        "aliases": [{"alias": a, "version": str(n)} for a, n in model.aliases.items()],
    }
    if model.description:
        found["description"] = model.description
    return found


def _version_number(data: Any) -> int:
    raw = p.text(data, "version")
    try:
        return check_version(int(raw))
    except ValueError:
        raise InvalidInput(f"version {raw!r} is not a version number") from None


@router.post("/registered-models/create")
async def create_registered_model(request: Request) -> Response:
    body = await p.body_of(request)
    name = p.text(body, "name")
    description = p.text(body, "description", required=False)
    tags = dict(p.key_values(body, "tags"))

    def work() -> dict[str, Any]:
        g = guard(request)
        g.model_name(name, EDIT)
        try:
            _registry(request).get_model(name)
        except NotFound:
            pass
        else:
            raise AlreadyExists(f"registered model {name!r} already exists")
        model = _registry(request).create_model(name, description=description, tags=tags)
        g.own(ResourceType.REGISTERED_MODEL, name)
        return {"registered_model": registered_json(request, model)}

    return p.answer(await in_thread(work))


@router.get("/registered-models/get")
async def get_registered_model(request: Request) -> Response:
    name = p.text(request.query_params, "name")

    def work() -> dict[str, Any]:
        guard(request).model(name, READ)
        return {"registered_model": registered_json(request, _registry(request).get_model(name))}

    return p.answer(await in_thread(work))


@router.api_route("/registered-models/search", methods=["GET", "POST"])
async def search_registered_models(request: Request) -> Response:
    body = await p.body_of(request) if request.method == "POST" else dict(request.query_params)
    match = _name_filter(p.text(body, "filter", required=False) or "")
    limit = p.integer(body, "max_results", 100)
    start = _offset(p.text(body, "page_token", required=False))

    def work() -> dict[str, Any]:
        g = guard(request)
        found = [m for m in _registry(request).list_models() if match(m.name) and g.can_read_model(m.name)]
        found.sort(key=lambda m: m.name)
        return page_of("registered_models", found, start, limit, lambda m: registered_json(request, m))

    return p.answer(await in_thread(work))


def _name_filter(text: str) -> Any:
    if not text.strip():
        return lambda name: True
    found = re.fullmatch(r"\s*name\s*(=|like|ilike)\s*(['\"])(.*)\2\s*", text, re.IGNORECASE | re.S)
    if found is None:
        raise InvalidInput(f"registered model filter {text!r}: only name = / LIKE / ILIKE '...' is supported")
    op, value = found.group(1).lower(), found.group(3)
    if op == "=":
        return lambda name: name == value
    pattern = re.compile(
        "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in value),
        re.IGNORECASE if op == "ilike" else 0,
    )
    return lambda name: pattern.fullmatch(name) is not None


@router.api_route("/registered-models/delete", methods=["DELETE", "POST"])
async def delete_registered_model(request: Request) -> Response:
    name = p.text(await p.body_of(request), "name")

    def work() -> None:
        guard(request).model(name, MANAGE)
        _registry(request).delete_model(name)

    await in_thread(work)
    return p.answer({})


@router.post("/registered-models/set-tag")
async def set_registered_model_tag(request: Request) -> Response:
    body = await p.body_of(request)
    name, key = p.text(body, "name"), p.checked_key(p.text(body, "key"), "tag")
    value = str(body.get("value") or "")

    def work() -> None:
        guard(request).model(name, EDIT)
        _registry(request).set_model_tags(name, {key: value})

    await in_thread(work)
    return p.answer({})


@router.api_route("/registered-models/delete-tag", methods=["DELETE", "POST"])
async def delete_registered_model_tag(request: Request) -> Response:
    body = await p.body_of(request) or dict(request.query_params)
    name, key = p.text(body, "name"), p.text(body, "key")

    def work() -> None:
        guard(request).model(name, EDIT)
        registry = _registry(request)
        registry.get_model(name)  # a missing model is an error; a missing tag, as in MLflow, is not
        with contextlib.suppress(NotFound):
            registry.delete_model_tag(name, key)

    await in_thread(work)
    return p.answer({})


@router.post("/registered-models/rename")
async def rename_registered_model(request: Request) -> Response:
    """Rename a model (MANAGE on it: its grants follow the name)."""
    body = await p.body_of(request)
    name, new_name = p.text(body, "name"), p.text(body, "new_name")

    def work() -> dict[str, Any]:
        guard(request).model(name, MANAGE)
        model = _registry(request).rename_model(name, new_name)
        return {"registered_model": registered_json(request, model)}

    return p.answer(await in_thread(work))


@router.patch("/registered-models/update")
async def update_registered_model(request: Request) -> Response:
    body = await p.body_of(request)
    name, description = p.text(body, "name"), p.text(body, "description", required=False)

    def work() -> dict[str, Any]:
        guard(request).model(name, EDIT)
        model = _registry(request).update_model(name, description=description)
        return {"registered_model": registered_json(request, model)}

    return p.answer(await in_thread(work))


@router.api_route("/registered-models/alias", methods=["GET", "POST", "DELETE"])
async def alias(request: Request) -> Response:
    """Set (POST), read (GET: the version it names) or delete (DELETE) an alias."""
    data = dict(request.query_params) if request.method == "GET" else await p.body_of(request)
    if request.method == "DELETE" and not data:
        data = dict(request.query_params)
    name, alias_name = p.text(data, "name"), p.text(data, "alias")

    def work() -> dict[str, Any]:
        g, registry = guard(request), _registry(request)
        if request.method == "GET":
            g.model(name, READ)
            model = registry.get_model(name)
            if alias_name not in model.aliases:
                raise NotFound(f"registered model {name!r} has no alias {alias_name!r}")
            return {"model_version": version_json(registry.get_version(name, model.aliases[alias_name]))}
        g.model(name, EDIT)
        if request.method == "POST":
            registry.set_alias(name, alias_name, _version_number(data))
        else:
            registry.delete_alias(name, alias_name)
        return {}

    return p.answer(await in_thread(work))


@router.post("/model-versions/create")
async def create_model_version(request: Request) -> Response:
    body = await p.body_of(request)
    name, source = p.text(body, "name"), p.text(body, "source")
    run_id = p.text(body, "run_id", required=False)
    model_id = p.text(body, "model_id", required=False)
    description = p.text(body, "description", required=False)
    tags = dict(p.key_values(body, "tags"))

    def work() -> dict[str, Any]:
        g = guard(request)
        registry = _registry(request)
        g.model(name, EDIT)  # MLflow registers into an existing model: a missing one is NOT_FOUND
        registry.get_model(name)
        logged = _logged_model_of(request, source, model_id)
        g.experiment(logged.experiment_id, READ)
        package_uri, manifest_sha = _package(request, logged)
        version = registry.create_version(
            name,
            flavor=mlflow_packages.FLAVOR,
            source_uri=source,
            package_uri=package_uri,
            manifest_sha256=manifest_sha,
            run_id=run_id or logged.source_run_id,
            lineage={
                "source": "mlflow",
                "run_id": run_id or logged.source_run_id,
                "experiment_id": logged.experiment_id,
                "mlflow_model_id": logged.model_id,
            },
            description=description,
            tags=tags,
        )
        model_uri = f"models:/{logged.model_id}"
        lineage = request.app.state.stores.lineage
        if logged.source_run_id:  # what the model was trained on: the datasets its run logged
            datasets = [
                (dataset_uri({"source": d.source, "name": d.name}), d.digest, d.name)
                for d in _store(request).dataset_inputs(logged.source_run_id)
            ]
            lineage.record(
                "training",
                name=logged.name,
                run_id=logged.source_run_id,
                inputs=[(uri, ArtifactType.DATASET, digest, name) for uri, digest, name in datasets],
                outputs=[(model_uri, ArtifactType.MODEL, manifest_sha, logged.name)],
            )
        lineage.record(
            "registration",
            name=f"{version.name}/{version.version}",
            run_id=version.run_id,
            inputs=[(model_uri, ArtifactType.MODEL, manifest_sha, logged.name)],
            outputs=[(version.uri, ArtifactType.MODEL, manifest_sha, version.name)],
        )
        return {"model_version": version_json(version)}

    return p.answer(await in_thread(work))


def _logged_model_of(request: Request, source: str, model_id: str | None) -> LoggedModel:
    """The logged model a registration names: ``models:/<model_id>`` (MLflow 3), or its ``model_id``."""
    found = re.fullmatch(r"models:/(m-[0-9a-f]{32})", source)
    wanted = found.group(1) if found else model_id
    if wanted is None:
        raise InvalidInput(
            f"source {source!r}: this server registers MLflow 3 logged models (models:/<model_id>)"
        )
    model = _models(request).get(wanted)
    if model.status is not LoggedModelStatus.READY:
        raise InvalidInput(f"logged model {wanted} is {model.status.value}, not ready to register")
    if model.lifecycle_stage is LifecycleStage.DELETED:
        raise NotFound(f"logged model {wanted} is deleted")
    return model


def _package(request: Request, model: LoggedModel) -> tuple[str, str]:
    """The logged model's folder as a package (its ``MODEL.yaml`` written once) and that file's sha256."""
    location = model.artifact_location
    store = ArtifactStore.configured(request.app.state.settings, location)
    manifest = mlflow_packages.MANIFEST
    if not store.exists(manifest):
        files = []
        for info in store.list("", recursive=True):
            if info.path == manifest:
                continue
            digest = hashlib.sha256()
            with store.open(info.path, "rb") as source:
                while chunk := source.read(CHUNK_SIZE):
                    digest.update(chunk)
            files.append((info.path, digest.hexdigest(), info.size))
        if not files:
            raise InvalidInput(f"logged model {model.model_id} has no files")
        mlmodel = store.read_bytes(mlflow_packages.MLMODEL) if store.exists(mlflow_packages.MLMODEL) else None
        store.put_bytes(
            mlflow_packages.manifest_for(
                model.name,
                files,
                mlmodel,
                run_id=model.source_run_id,
                model_id=model.model_id,
                params=model.params,
                tags=model.tags,
                created_at=model.created_at,
            ),
            manifest,
        )
    return location, hashlib.sha256(store.read_bytes(manifest)).hexdigest()


@router.get("/model-versions/get")
async def get_model_version(request: Request) -> Response:
    query = request.query_params
    name, number = p.text(query, "name"), _version_number(query)

    def work() -> dict[str, Any]:
        guard(request).model(name, READ)
        return {"model_version": version_json(_registry(request).get_version(name, number))}

    return p.answer(await in_thread(work))


@router.get("/model-versions/get-download-uri")
async def get_download_uri(request: Request) -> Response:
    query = request.query_params
    name, number = p.text(query, "name"), _version_number(query)

    def work() -> dict[str, Any]:
        guard(request).model(name, READ)
        return {"artifact_uri": p.location(_registry(request).get_version(name, number).package_uri)}

    return p.answer(await in_thread(work))


@router.api_route("/model-versions/search", methods=["GET", "POST"])
async def search_model_versions(request: Request) -> Response:
    body = await p.body_of(request) if request.method == "POST" else dict(request.query_params)
    text = p.text(body, "filter", required=False) or ""
    found = re.fullmatch(r"\s*(name|run_id)\s*=\s*(['\"])(.*)\2\s*", text, re.S) if text.strip() else None
    if text.strip() and found is None:
        raise InvalidInput(f"model version filter {text!r}: only name = '...' or run_id = '...' is supported")
    field, value = (found.group(1), found.group(3)) if found else (None, None)

    def work() -> dict[str, Any]:
        g, registry = guard(request), _registry(request)
        names = [value] if field == "name" else [m.name for m in registry.list_models()]
        out = []
        for name in names:
            if not g.can_read_model(name):
                continue
            try:
                versions = registry.list_versions(name)
            except NotFound:
                continue
            out += [v for v in versions if field != "run_id" or v.run_id == value]
        return {"model_versions": [version_json(v) for v in out]}

    return p.answer(await in_thread(work))


@router.post("/model-versions/transition-stage")
async def transition_stage(request: Request) -> Response:
    body = await p.body_of(request)
    name, number, stage = p.text(body, "name"), _version_number(body), p.text(body, "stage")
    archive = bool(body.get("archive_existing_versions"))

    def work() -> dict[str, Any]:
        guard(request).model(name, EDIT)
        version = _registry(request).transition(name, number, Stage.parse(stage), archive_others=archive)
        return {"model_version": version_json(version)}

    return p.answer(await in_thread(work))


@router.post("/model-versions/set-tag")
async def set_model_version_tag(request: Request) -> Response:
    body = await p.body_of(request)
    name, number = p.text(body, "name"), _version_number(body)
    key, value = p.checked_key(p.text(body, "key"), "tag"), str(body.get("value") or "")

    def work() -> None:
        guard(request).model(name, EDIT)
        _registry(request).set_version_tags(name, number, {key: value})

    await in_thread(work)
    return p.answer({})


@router.api_route("/model-versions/delete-tag", methods=["DELETE", "POST"])
async def delete_model_version_tag(request: Request) -> Response:
    body = await p.body_of(request) or dict(request.query_params)
    name, number, key = p.text(body, "name"), _version_number(body), p.text(body, "key")

    def work() -> None:
        guard(request).model(name, EDIT)
        registry = _registry(request)
        registry.get_version(name, number)  # a missing version is an error; a missing tag is not
        with contextlib.suppress(NotFound):
            registry.delete_version_tag(name, number, key)

    await in_thread(work)
    return p.answer({})


@router.patch("/model-versions/update")
async def update_model_version(request: Request) -> Response:
    body = await p.body_of(request)
    name, number = p.text(body, "name"), _version_number(body)
    description = p.text(body, "description", required=False)

    def work() -> dict[str, Any]:
        guard(request).model(name, EDIT)
        return {
            "model_version": version_json(
                _registry(request).update_version(name, number, description=description)
            )
        }

    return p.answer(await in_thread(work))


@router.api_route("/model-versions/delete", methods=["DELETE", "POST"])
async def delete_model_version(request: Request) -> Response:
    body = await p.body_of(request)
    name, number = p.text(body, "name"), _version_number(body)

    def work() -> None:
        guard(request).model(name, MANAGE)
        _registry(request).delete_version(name, number)

    await in_thread(work)
    return p.answer({})
