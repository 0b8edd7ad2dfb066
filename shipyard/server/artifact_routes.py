"""Artifacts through the server: files stream up and down in chunks, checked by sha256, confined to the
server's artifact destination (every path goes through ``safe_relpath``: no ``..``, no absolute paths)."""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from shipyard.datasets.blobs import blob_digest
from shipyard.errors import IntegrityError, InvalidInput, NotFound
from shipyard.server.guard import ARTIFACTS_ROOT, EDIT, MANAGE, READ, artifact_path, guard
from shipyard.store.artifacts import CHUNK_SIZE, ArtifactStore, FileInfo, safe_relpath

router = APIRouter(tags=["artifacts"])
SHA256_HEADER = "X-Shipyard-SHA256"


def _store(request: Request) -> ArtifactStore:
    return request.app.state.artifacts


@router.put("/artifacts/{path:path}")
async def upload(path: str, request: Request) -> dict[str, Any]:
    """Store the request body at ``path``; with an ``X-Shipyard-SHA256`` header, a body that does not match
    it is refused (400) and nothing is kept."""
    rel = safe_relpath(path)
    await run_in_threadpool(artifact_path, guard(request), rel, EDIT)
    expected = request.headers.get(SHA256_HEADER)
    root, _, inner = rel.partition("/")
    if root == ARTIFACTS_ROOT and (named := blob_digest(inner)) is not None:
        # A dataset blob is named by its content: a body that hashes to anything else is refused, so no
        # upload can plant wrong content under a hash other versions rely on.
        if expected is not None and expected.lower() != named:
            raise InvalidInput(f"dataset blob {rel!r}: the declared sha256 {expected} is not its name")
        expected = named
    store = _store(request)
    digest = hashlib.sha256()
    size = 0
    sink = await run_in_threadpool(store.open, rel, "wb")
    try:
        async for chunk in request.stream():
            digest.update(chunk)
            size += len(chunk)
            await run_in_threadpool(sink.write, chunk)
        if expected is not None and expected.lower() != digest.hexdigest():
            raise InvalidInput(f"artifact {rel!r}: the body's sha256 {digest.hexdigest()} is not {expected}")
    except BaseException:
        discard = getattr(sink, "discard", None)
        if discard is not None:
            discard()  # an atomic local write: nothing lands
        else:
            sink.close()
            await run_in_threadpool(store.delete, rel)
        raise
    await run_in_threadpool(sink.close)
    return {"path": rel, "size": size, "sha256": digest.hexdigest()}


@router.get("/artifacts/{path:path}")
def download(path: str, request: Request) -> StreamingResponse:
    """The file at ``path``, streamed in chunks."""
    rel = safe_relpath(path)
    artifact_path(guard(request), rel, READ)
    source = _store(request).open(rel, "rb")

    def chunks() -> Iterator[bytes]:
        with source:
            while chunk := source.read(CHUNK_SIZE):
                yield chunk

    return StreamingResponse(chunks(), media_type="application/octet-stream")


@router.get("/artifact-entries")
def entries(request: Request, prefix: str = "", recursive: bool = False) -> list[dict[str, Any]]:
    """What lies under ``prefix``: files with their sizes, and (not recursive) directories."""
    rel = safe_relpath(prefix, allow_root=True)
    artifact_path(guard(request), rel, READ)
    return [
        {"path": e.path, "size": e.size, "is_dir": e.is_dir}
        for e in _store(request).list(rel, recursive=recursive)
    ]


@router.delete("/artifacts/{path:path}", status_code=204)
def delete(path: str, request: Request) -> None:
    rel = safe_relpath(path)
    artifact_path(guard(request), rel, MANAGE)
    if not _store(request).exists(rel):
        raise NotFound(f"no artifact {rel!r}")
    _store(request).delete(rel)


def package_store(request: Request, uri: str) -> ArtifactStore:
    """The store holding a registered package at ``uri``: the server's own files (``shipyard-artifacts:``),
    else wherever the package was registered (a folder, a bucket)."""
    settings = request.app.state.settings
    opener = getattr(ArtifactStore, "configured", None)
    return opener(settings, uri) if opener is not None else ArtifactStore(uri)


_BLOCK = 512


def tar_stream(store: ArtifactStore, files: Iterable[FileInfo]) -> Iterator[bytes]:
    """``files`` of ``store`` as a POSIX tar, streamed a chunk at a time (never a whole file in memory)."""
    for info in files:
        header = tarfile.TarInfo(info.path)
        header.size, header.mode, header.mtime = info.size, 0o644, 0
        yield header.tobuf(format=tarfile.PAX_FORMAT)
        sent = 0
        with store.open(info.path, "rb") as source:
            while chunk := source.read(CHUNK_SIZE):
                sent += len(chunk)
                yield chunk
        if sent != info.size:  # the file changed under us: a tar with a wrong size would be corrupt
            raise IntegrityError(f"{info.path} changed while it was being sent ({info.size} -> {sent} bytes)")
        yield b"\0" * (-sent % _BLOCK)
    yield b"\0" * (2 * _BLOCK)
