"""Dataset versions over REST: record a version (its manifest), read versions and list datasets. The files
are blobs that travel through the artifact routes; a client stores them before it records the version.

Requests are hostile until checked: names, versions and manifests go through the same checks as embedded
mode (the SQL store's), so a bad one is a 400 naming what is wrong.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from shipyard.auth.records import ResourceType, Role
from shipyard.datasets.records import DatasetFile, SnapshotKind
from shipyard.datasets.refs import parse_ref
from shipyard.server.guard import EDIT, READ, guard
from shipyard.store import wire
from shipyard.store.protocol import DatasetStore

router = APIRouter(tags=["datasets"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ManifestEntry(_Body):
    path: str
    size: int
    sha256: str


class NewDatasetVersion(_Body):
    sha256: str
    kind: SnapshotKind
    files: list[ManifestEntry]
    description: str | None = None
    tags: dict[str, Any] | None = None
    force: bool = False


class BlobLookup(_Body):
    sha256s: list[str] = Field(max_length=100_000)


def _store(request: Request) -> DatasetStore:
    return request.app.state.stores.datasets


@router.get("/datasets")
def list_datasets(request: Request) -> list[dict[str, Any]]:
    """Every dataset the caller may read, with its newest version."""
    g = guard(request)
    return wire.to_json([d for d in _store(request).list_datasets() if g.can_read_dataset(d.name)])


@router.post("/datasets/blob-holders")
def blob_holders(body: BlobLookup, request: Request) -> dict[str, list[str]]:
    """Which of these blobs some version records (so an adding client need not send them again), each with
    the datasets holding it that the caller may read. For editors: those who add versions."""
    g = guard(request)
    g.role(Role.EDITOR, "look up dataset blobs")
    found = _store(request).blob_holders(body.sha256s)
    return {digest: [n for n in names if g.can_read_dataset(n)] for digest, names in found.items()}


@router.post("/datasets/{name}/versions", status_code=201)
def create_version(name: str, body: NewDatasetVersion, request: Request) -> dict[str, Any]:
    """Record a version once its blobs are stored (the dataset is created on first use: an editor's, who
    then manages it). Content a version already has answers that version, unless ``force``."""
    g = guard(request)
    g.dataset_name(name, EDIT)
    found = _store(request).create_version(
        name,
        sha256=body.sha256,
        kind=body.kind,
        files=[DatasetFile(f.path, f.size, f.sha256) for f in body.files],
        description=body.description,
        tags=body.tags,
        force=body.force,
    )
    g.own(ResourceType.DATASET, name, created_only=True)
    return wire.to_json(found)


@router.get("/datasets/{name}/versions")
def list_versions(name: str, request: Request) -> list[dict[str, Any]]:
    guard(request).dataset(name, READ)
    return wire.to_json(_store(request).list_versions(name))


@router.get("/datasets/{name}/versions/{version}")
def get_version(name: str, version: str, request: Request) -> dict[str, Any]:
    """A version with its manifest; ``latest`` for the newest."""
    ref = parse_ref(f"{name}@{version}")
    guard(request).dataset(ref.name, READ)
    return wire.to_json(_store(request).get_version(ref.name, ref.version))
