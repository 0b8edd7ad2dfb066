"""Artifacts on an object-store root: how a step's files travel between the store and a worker's disk.

Components read and write plain local paths. When the pipeline run's artifact root is an object store
(``s3://…``), the engine hands a step URIs instead; the worker downloads each input into a temp folder,
checking it against the sha256 recorded when it was written, gives the component local paths for its
outputs, and uploads them afterwards, returning their sha256. So a step runs the same on any node that can
reach the store (multi-node Ray), and the engine never needs the files on its own disk.

Digests are those of :func:`path_sha256`: a file's content, or a folder's relative file names and their
contents' digests, in ``os.walk`` order; :func:`uri_sha256` computes the same over a stored tree.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from shipyard.datasets.refs import is_dataset_uri
from shipyard.errors import IntegrityError, NotFound, PipelineError
from shipyard.store.artifacts import CHUNK_SIZE, ArtifactStore

if TYPE_CHECKING:
    from shipyard.config import Settings
    from shipyard.pipelines.executors.worker import ArtifactRef


def is_remote(location: str) -> bool:
    """Whether an artifact location is a URL of a store other than the local filesystem."""
    scheme, sep, _ = location.partition("://")
    return bool(sep) and scheme.lower() not in ("file", "local")


def artifact_uri(location: str) -> str:
    """The URI lineage records for an artifact location (a local path becomes ``file://…``; a dataset
    version keeps its ``data:name@version``)."""
    return location if "://" in location or is_dataset_uri(location) else "file://" + location


def path_sha256(path: str) -> str:
    """sha256 of a local file's content, or of a folder's relative file names and contents (sorted)."""
    if os.path.isdir(path):
        files = []
        for folder, dirs, names in os.walk(path):
            dirs.sort()
            files += [
                (os.path.relpath(os.path.join(folder, n), path), path_sha256(os.path.join(folder, n)))
                for n in sorted(names)
            ]
        return _tree_sha256(files)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK_SIZE), b""):
            digest.update(block)
    return digest.hexdigest()


def _tree_sha256(files: Iterable[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for rel, file_digest in files:
        digest.update(rel.replace(os.sep, "/").encode("utf-8") + b"\0")
        digest.update(file_digest.encode("ascii"))
    return digest.hexdigest()


def _walk_order(rel: str) -> tuple[tuple[int, str], ...]:
    # os.walk with sorted names visits a folder's files before its sub-folders: at each level a file (0)
    # sorts before a folder (1), then by name.
    parts = rel.split("/")
    return tuple((0 if i == len(parts) - 1 else 1, part) for i, part in enumerate(parts))


def _store_and_name(uri: str, settings: Settings) -> tuple[ArtifactStore, str]:
    """The store holding ``uri``'s folder (with the settings' storage options) and ``uri``'s name in it."""
    head, _, name = uri.rstrip("/").rpartition("/")
    return ArtifactStore.configured(settings, head), name


def uri_sha256(uri: str, settings: Settings) -> str:
    """The :func:`path_sha256` of a stored file or folder, streamed from the store (nothing lands on disk).

    Raises:
        NotFound: nothing at ``uri``.
    """
    store, name = _store_and_name(uri, settings)
    infos = store.list(name, recursive=True)
    if len(infos) == 1 and infos[0].path == name:
        return _stream_sha256(store, name)
    return _tree_sha256(
        (rel, _stream_sha256(store, f"{name}/{rel}"))
        for rel in sorted((info.path[len(name) + 1 :] for info in infos), key=_walk_order)
    )


def _stream_sha256(store: ArtifactStore, path: str) -> str:
    digest = hashlib.sha256()
    with store.open(path, "rb") as f:
        while block := f.read(CHUNK_SIZE):
            digest.update(block)
    return digest.hexdigest()


def read_bytes(location: str, settings: Settings) -> bytes:
    """The content of an artifact file, local or stored."""
    if not is_remote(location):
        with open(location, "rb") as f:
            return f.read()
    store, name = _store_and_name(location, settings)
    return store.read_bytes(name)


@contextmanager
def staged(artifacts: dict[str, ArtifactRef], settings: Settings | None) -> Iterator[dict[str, ArtifactRef]]:
    """Local copies of a step's remote artifacts while the step runs; ``artifacts`` as given when all local.

    Yields the refs with local paths: inputs downloaded and verified, dataset versions (``data:``) as the
    read-only local copy of :meth:`~shipyard.datasets.DatasetClient.local_path` (built here once per
    version and machine), outputs pointing at an empty temp folder. The caller uploads the outputs with
    :func:`upload_outputs` before leaving the block, which removes the temp folder.

    Raises:
        IntegrityError: a downloaded input does not match the sha256 recorded when it was written.
        PipelineError: a remote artifact but no settings to open its store with.
    """
    artifacts = _with_datasets(artifacts, settings)
    remote = {name: ref for name, ref in artifacts.items() if is_remote(ref.uri) and not ref.path}
    if not remote:
        yield artifacts
        return
    if settings is None:
        raise PipelineError(f"artifacts {sorted(remote)} are remote, but the task carries no settings")
    workdir = tempfile.mkdtemp(prefix="shipyard-stage-")
    try:
        local = dict(artifacts)
        for name, ref in remote.items():
            store, base = _store_and_name(ref.uri, settings)
            path = os.path.join(workdir, "outputs" if ref.output else "inputs", name, base)
            os.makedirs(os.path.dirname(path))
            if not ref.output:
                try:
                    store.get(base, path)
                except NotFound as exc:
                    raise PipelineError(f"artifact input {name!r} at {ref.uri} is gone: {exc}") from exc
                actual = path_sha256(path)
                if ref.sha256 and actual != ref.sha256:
                    raise IntegrityError(
                        f"artifact input {name!r} at {ref.uri} is corrupt: expected sha256 {ref.sha256}, "
                        f"got {actual}"
                    )
            local[name] = replace(ref, path=path)
        yield local
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _with_datasets(artifacts: dict[str, ArtifactRef], settings: Settings | None) -> dict[str, ArtifactRef]:
    """``artifacts`` with each dataset version input given the path of its local copy."""
    wanted = {name: ref for name, ref in artifacts.items() if is_dataset_uri(ref.uri) and not ref.path}
    if not wanted:
        return artifacts
    if settings is None:
        raise PipelineError(f"inputs {sorted(wanted)} are dataset versions, but the task carries no settings")
    from shipyard.datasets import DatasetClient
    from shipyard.tracking import get_client

    datasets = DatasetClient(get_client(settings))
    local = dict(artifacts)
    for name, ref in wanted.items():
        try:
            version = datasets.version(ref.uri)
            if ref.sha256 and version.sha256 != ref.sha256:
                raise IntegrityError(
                    f"dataset input {name!r} ({ref.uri}) has snapshot sha256 {version.sha256}, but the step "
                    f"was started for {ref.sha256}"
                )
            local[name] = replace(ref, path=str(datasets.local_path(version)))
        except NotFound as exc:
            raise PipelineError(f"dataset input {name!r} ({ref.uri}) is gone: {exc}") from exc
    return local


def upload_outputs(
    original: dict[str, ArtifactRef], local: dict[str, ArtifactRef], settings: Settings | None
) -> dict[str, str]:
    """Upload what a step wrote for its remote outputs; their sha256 by output name.

    Raises:
        PipelineError: the step did not write an output (its name and URI given).
    """
    hashes: dict[str, str] = {}
    for name, ref in original.items():
        if not (ref.output and is_remote(ref.uri) and not ref.path) or settings is None:
            continue
        path = local[name].path
        if not os.path.exists(path):
            raise PipelineError(f"the step did not write artifact output {name!r} at {ref.uri}")
        store, base = _store_and_name(ref.uri, settings)
        hashes[name] = path_sha256(path)
        if os.path.isdir(path):
            store.put_dir(path, base)
        else:
            store.put_file(path, base)
    return hashes
