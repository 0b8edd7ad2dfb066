"""The model registry over REST: models, versions, aliases, stages, tags and the audit log.

Each route is one :class:`~shipyard.store.protocol.RegistryStore` call on the server's store. Packages stay
where their runs logged them; this API moves records, not files.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from shipyard.auth.records import ResourceType, Role
from shipyard.errors import NotFound
from shipyard.registry.package import MANIFEST
from shipyard.registry.uri import RegistryUri
from shipyard.server.artifact_routes import package_store, tar_stream
from shipyard.server.guard import EDIT, MANAGE, READ, guard
from shipyard.store import wire
from shipyard.store.protocol import RegistryStore
from shipyard.store.server_artifacts import PROTOCOL

router = APIRouter(tags=["registry"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewModel(_Body):
    name: str
    description: str | None = None
    tags: dict[str, Any] | None = None


class ModelChange(_Body):
    """A rename (``name``) or a new ``description`` (null clears it); either or both."""

    name: str | None = None
    description: str | None = None


class VersionChange(_Body):
    description: str | None


class NewVersion(_Body):
    flavor: str
    source_uri: str
    package_uri: str
    manifest_sha256: str
    run_id: str | None = None
    lineage: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None
    tags: dict[str, Any] | None = None


class Alias(_Body):
    version: int
    reason: str | None = None


class Transition(_Body):
    stage: str
    reason: str | None = None
    archive_others: bool = False


class Tags(_Body):
    tags: dict[str, Any]


class Reference(_Body):
    name: str
    version: int | None = None
    alias: str | None = None
    stage: str | None = None
    latest: bool = False


def _store(request: Request) -> RegistryStore:
    return request.app.state.stores.registry


@router.post("/registered-models", status_code=201)
def create_model(body: NewModel, request: Request) -> dict[str, Any]:
    g = guard(request)
    g.role(Role.EDITOR, f"create registered model {body.name!r}")
    found = _store(request).create_model(body.name, description=body.description, tags=body.tags)
    g.own(ResourceType.REGISTERED_MODEL, found.name)
    return wire.to_json(found)


@router.get("/registered-models")
def list_models(request: Request) -> list[dict[str, Any]]:
    g = guard(request)
    return wire.to_json([m for m in _store(request).list_models() if g.can_read_model(m.name)])


@router.post("/registered-models/resolve")
def resolve(body: Reference, request: Request) -> dict[str, Any]:
    """The version a ``models:/`` reference names (a number, an alias, a stage or latest)."""
    from shipyard.registry.records import Stage

    stage = None if body.stage is None else Stage.parse(body.stage)
    guard(request).model(body.name, READ)
    ref = RegistryUri(body.name, body.version, body.alias, stage, body.latest)
    return wire.to_json(_store(request).resolve(ref))


@router.get("/registered-models/{name}")
def get_model(name: str, request: Request) -> dict[str, Any]:
    guard(request).model(name, READ)
    return wire.to_json(_store(request).get_model(name))


@router.delete("/registered-models/{name}", status_code=204)
def delete_model(name: str, request: Request, force: bool = False) -> None:
    guard(request).model(name, MANAGE)
    _store(request).delete_model(name, force=force)


@router.patch("/registered-models/{name}")
def update_model(name: str, body: ModelChange, request: Request) -> dict[str, Any]:
    """Change a model's description (EDIT) and/or rename it (MANAGE: its grants follow it)."""
    g = guard(request)
    g.model(name, MANAGE if body.name is not None else EDIT)
    store = _store(request)
    if "description" in body.model_fields_set:
        store.update_model(name, description=body.description)
    found = store.get_model(name) if body.name is None else store.rename_model(name, body.name)
    return wire.to_json(found)


@router.patch("/registered-models/{name}/tags", status_code=204)
def set_model_tags(name: str, body: Tags, request: Request) -> None:
    guard(request).model(name, EDIT)
    _store(request).set_model_tags(name, body.tags)


@router.delete("/registered-models/{name}/tags/{key}", status_code=204)
def delete_model_tag(name: str, key: str, request: Request) -> None:
    guard(request).model(name, EDIT)
    _store(request).delete_model_tag(name, key)


@router.get("/registered-models/{name}/events")
def events(name: str, request: Request) -> list[dict[str, Any]]:
    guard(request).model(name, READ)
    return wire.to_json(_store(request).events(name))


@router.post("/registered-models/{name}/versions", status_code=201)
def create_version(name: str, body: NewVersion, request: Request) -> dict[str, Any]:
    """A new version (the model is created on first use: an editor's, who then manages it)."""
    g = guard(request)
    g.model_name(name, EDIT)
    if body.run_id is not None:
        g.run(body.run_id, READ)
    found = _store(request).create_version(
        name,
        flavor=body.flavor,
        source_uri=body.source_uri,
        package_uri=body.package_uri,
        manifest_sha256=body.manifest_sha256,
        run_id=body.run_id,
        lineage=body.lineage,
        description=body.description,
        tags=body.tags,
    )
    g.own(ResourceType.REGISTERED_MODEL, name, created_only=True)
    return wire.to_json(found)


@router.get("/registered-models/{name}/versions")
def list_versions(name: str, request: Request) -> list[dict[str, Any]]:
    guard(request).model(name, READ)
    return wire.to_json(_store(request).list_versions(name))


@router.get("/registered-models/{name}/versions/{version}")
def get_version(name: str, version: int, request: Request) -> dict[str, Any]:
    guard(request).model(name, READ)
    return wire.to_json(_store(request).get_version(name, version))


@router.get("/registered-models/{name}/versions/{version}/package")
def download_package(name: str, version: int, request: Request) -> StreamingResponse:
    """The version's package as an uncompressed tar stream (``MLmodel.json`` manifest first, then every
    file under the package's folder); each file's sha256 is in the manifest, so the receiver can check it."""
    guard(request).model(name, READ)
    found = _store(request).get_version(name, version)
    if not found.package_uri.startswith(f"{PROTOCOL}:"):
        # A version's package_uri is what its registering client said: serve only this server's own files.
        raise NotFound(
            f"the package of {name} version {version} is not kept by this server ({found.package_uri})"
        )
    store = package_store(request, found.package_uri)
    files = sorted(store.list("", recursive=True), key=lambda f: (f.path != MANIFEST, f.path))
    if not any(f.path == MANIFEST for f in files):
        raise NotFound(f"the package of {name} version {version} is gone from {found.package_uri}")
    headers = {"Content-Disposition": f'attachment; filename="{name}-v{version}.tar"'}
    return StreamingResponse(tar_stream(store, files), media_type="application/x-tar", headers=headers)


@router.delete("/registered-models/{name}/versions/{version}")
def delete_version(name: str, version: int, request: Request, force: bool = False) -> dict[str, Any]:
    guard(request).model(name, MANAGE)
    return wire.to_json(_store(request).delete_version(name, version, force=force))


@router.patch("/registered-models/{name}/versions/{version}")
def update_version(name: str, version: int, body: VersionChange, request: Request) -> dict[str, Any]:
    guard(request).model(name, EDIT)
    return wire.to_json(_store(request).update_version(name, version, description=body.description))


@router.patch("/registered-models/{name}/versions/{version}/tags", status_code=204)
def set_version_tags(name: str, version: int, body: Tags, request: Request) -> None:
    guard(request).model(name, EDIT)
    _store(request).set_version_tags(name, version, body.tags)


class GateOutcome(_Body):
    passed: bool
    summary: str = Field(max_length=4000)
    facts: dict[str, str] = Field(default_factory=dict)


@router.post("/registered-models/{name}/versions/{version}/gate")
def record_gate(name: str, version: int, body: GateOutcome, request: Request) -> dict[str, Any]:
    """Record the outcome of `shipyard models gate` (evaluated by the caller) on the version."""
    guard(request).model(name, EDIT)
    found = _store(request).record_gate(
        name, version, passed=body.passed, summary=body.summary, facts=body.facts
    )
    return wire.to_json(found)


@router.delete("/registered-models/{name}/versions/{version}/tags/{key}", status_code=204)
def delete_version_tag(name: str, version: int, key: str, request: Request) -> None:
    guard(request).model(name, EDIT)
    _store(request).delete_version_tag(name, version, key)


@router.post("/registered-models/{name}/versions/{version}/stage")
def transition(name: str, version: int, body: Transition, request: Request) -> dict[str, Any]:
    guard(request).model(name, EDIT)
    found = _store(request).transition(
        name, version, body.stage, reason=body.reason, archive_others=body.archive_others
    )
    return wire.to_json(found)


@router.put("/registered-models/{name}/aliases/{alias}")
def set_alias(name: str, alias: str, body: Alias, request: Request) -> dict[str, Any]:
    guard(request).model(name, EDIT)
    return wire.to_json(_store(request).set_alias(name, alias, body.version, reason=body.reason))


@router.delete("/registered-models/{name}/aliases/{alias}", status_code=204)
def delete_alias(name: str, alias: str, request: Request) -> None:
    guard(request).model(name, EDIT)
    _store(request).delete_alias(name, alias)
