"""Dataset versions, the Python API: add a snapshot, read one back, list and show them.

``add_dataset`` hashes every file, stores the blobs it does not have yet, then records the version in one
transaction; a version is acknowledged only once all its blobs are stored. Reads check each file against its
sha256 as it copies.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.datasets import manifest
from shipyard.datasets.blobs import BlobStore
from shipyard.datasets.diff import DatasetDiff, diff_versions
from shipyard.datasets.records import DatasetSummary, DatasetVersion, SnapshotKind
from shipyard.datasets.refs import DatasetRef, check_dataset_name, parse_ref
from shipyard.errors import Conflict, InvalidInput
from shipyard.store.artifacts import ArtifactStore, safe_relpath
from shipyard.store.protocol import DatasetStore
from shipyard.tracking import fluent
from shipyard.tracking.client import TrackingClient
from shipyard.tracking.records import Run

_COMPLETE = (
    ".shipyard-complete"  # written last into a cached snapshot: its presence means every file is there
)


@dataclass(frozen=True)
class Restored:
    """What :func:`get_dataset` did: the version, where it lies (the file itself for a file snapshot), the
    files it wrote and those already there with the right content."""

    version: DatasetVersion
    path: Path
    written: tuple[str, ...]
    unchanged: tuple[str, ...]


class DatasetClient:
    """Dataset versions in the same deployment as ``tracking``'s runs (its stores and artifact root)."""

    def __init__(self, tracking: TrackingClient | None = None) -> None:
        # NOTE: fluent.get_client, looked up now: tracking's runs import shipyard.datasets, so tracking may be
        # half-loaded while this module loads.
        self.tracking = tracking or fluent.get_client()
        self.backend: DatasetStore = self.tracking.stores.datasets
        self.blobs = BlobStore(ArtifactStore.configured(self.tracking.settings))

    def add(
        self,
        path: str | os.PathLike[str],
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        force: bool = False,
    ) -> DatasetVersion:
        """Snapshot the file or folder at ``path`` as the next version of ``name``.

        Content a version of ``name`` already has returns that version (``created`` False) unless ``force``.

        Raises:
            NotFound: nothing at ``path``.
            InvalidInput: a bad name, an empty folder, a symlink leaving the folder.
            Conflict: a file changed while it was being added.
        """
        check_dataset_name(name)
        kind, source, files = manifest.scan(path)
        sha256 = manifest.snapshot_sha256(files)
        recorded = self.backend.blob_holders(sorted({f.sha256 for f in files}))
        self.blobs.put_missing(source, files, recorded)
        version = self.backend.create_version(
            name, sha256=sha256, kind=kind, files=files, description=description, tags=tags, force=force
        )
        return version

    def version(self, ref: str | DatasetRef | DatasetVersion) -> DatasetVersion:
        """The version ``ref`` names (``customers@3``, ``customers@latest``, ``customers``), with its
        manifest."""
        if isinstance(ref, DatasetVersion):
            return ref if ref.files else self.backend.get_version(ref.name, ref.version)
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        return self.backend.get_version(parsed.name, parsed.version)

    def list(self) -> list[DatasetSummary]:
        """Every dataset with its newest version."""
        return self.backend.list_datasets()

    def versions(self, name: str) -> list[DatasetVersion]:
        """Every version of ``name``, oldest first (without manifests)."""
        return self.backend.list_versions(name)

    def get(
        self, ref: str | DatasetRef | DatasetVersion, out_dir: str | os.PathLike[str], *, force: bool = False
    ) -> Restored:
        """Restore a version's files under ``out_dir``, each checked against its sha256 as it is copied.

        Files already there with the right content are left alone. Nothing is written when any file there
        differs, unless ``force``.

        Raises:
            Conflict: files under ``out_dir`` that differ from the version's (named), without ``force``.
            IntegrityError: a blob is missing or corrupt (the file named); that file is not written.
        """
        version = self.version(ref)
        root = Path(out_dir)
        if root.exists() and not root.is_dir():
            raise InvalidInput(f"{str(root)!r} is a file; give a folder to restore {version.ref} into")
        plan = [(f, _destination(root, f.path)) for f in version.files]
        unchanged, clashes = [], []
        for f, dest in plan:
            if dest.is_dir():
                clashes.append(f.path)
            elif dest.exists():
                if dest.stat().st_size == f.size and manifest.file_sha256(dest) == f.sha256:
                    unchanged.append(f.path)
                else:
                    clashes.append(f.path)
        if clashes and not force:
            shown = ", ".join(repr(p) for p in clashes[:5]) + (" …" if len(clashes) > 5 else "")
            raise Conflict(
                f"{len(clashes)} file(s) under {str(root)!r} differ from {version.ref}: {shown}; "
                "pass --force (force=True) to overwrite them"
            )
        written = []
        for f, dest in plan:
            if f.path in unchanged:
                continue
            if dest.is_dir():
                shutil.rmtree(dest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.blobs.fetch(f, dest, owner=version.ref)
            written.append(f.path)
        path = plan[0][1] if version.kind is SnapshotKind.FILE else root
        return Restored(version, path, tuple(written), tuple(unchanged))

    def diff(
        self, a: str | DatasetRef, b: str | DatasetRef, *, key: Sequence[str] | None = None
    ) -> DatasetDiff:
        """What changed from ``a`` to ``b``: files, and inside changed tables columns and rows (by ``key``
        columns, else whole rows). See :func:`shipyard.datasets.diff.diff_versions`."""
        return diff_versions(self.version(a), self.version(b), self.blobs, key=key)

    def runs_using(self, ref: str | DatasetRef | DatasetVersion, *, limit: int = 100) -> list[Run]:
        """The runs (that the caller may read) which logged this version as an input, newest first."""
        version = self.version(ref)
        found = self.tracking.search_runs(
            None,
            f"datasets.source = '{version.uri}'",
            order_by=["attributes.start_time desc"],
            max_results=limit,
        )
        return list(found)

    def local_path(self, ref: str | DatasetRef | DatasetVersion) -> Path:
        """A local, read-only copy of a version for reading (the file itself for a file snapshot), kept in
        ``<home>/cache/datasets`` and built once, verified, per version."""
        version = self.version(ref)
        cache = Path(self.tracking.settings.home) / "cache" / "datasets" / version.name
        folder = cache / f"{version.version}-{version.sha256[:16]}"
        if not (folder / _COMPLETE).exists():
            cache.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{version.version}-", dir=cache))
            try:
                self.get(version, staging)
                for f in version.files:
                    _destination(staging, f.path).chmod(0o444)
                (staging / _COMPLETE).write_text(version.sha256)
                try:
                    os.rename(staging, folder)
                except OSError:  # another process built it first: theirs is as good
                    if not (folder / _COMPLETE).exists():
                        raise
            finally:
                if staging.exists():
                    shutil.rmtree(staging, onerror=_writable)
        if version.kind is SnapshotKind.FILE:
            return _destination(folder, version.files[0].path)
        return folder


def _destination(root: Path, path: str) -> Path:
    """Where manifest path ``path`` lands under ``root``: never outside it, not even through a symlink."""
    dest = root.joinpath(*safe_relpath(path).split("/"))
    real_root = os.path.realpath(root)
    real_parent = os.path.realpath(dest.parent)
    if real_parent != real_root and not real_parent.startswith(real_root + os.sep):
        raise InvalidInput(f"{path!r} would land outside {str(root)!r} (through a symlink)")
    if dest.is_symlink():
        raise InvalidInput(f"{str(dest)!r} is a symlink; refusing to write through it")
    return dest


def _writable(function: Any, path: str, _exc: Any) -> None:
    os.chmod(os.path.dirname(path), 0o755)
    function(path)


# ---------------------------------------------------------------------- module-level API (the active client)
def _client() -> DatasetClient:
    return DatasetClient(fluent.get_client())


def add_dataset(
    path: str | os.PathLike[str],
    name: str,
    *,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    force: bool = False,
) -> DatasetVersion:
    """Snapshot a file or folder as the next version of ``name`` (see :meth:`DatasetClient.add`)."""
    return _client().add(path, name, description=description, tags=tags, force=force)


def get_dataset(ref: str, out_dir: str | os.PathLike[str], *, force: bool = False) -> Restored:
    """Restore ``ref``'s files under ``out_dir``, checked by sha256 (see :meth:`DatasetClient.get`)."""
    return _client().get(ref, out_dir, force=force)


def dataset_version(ref: str) -> DatasetVersion:
    """The version ``ref`` names, with its manifest (``customers@3``, ``customers``: the newest)."""
    return _client().version(ref)


def diff_datasets(a: str, b: str, key: str | Sequence[str] | None = None) -> DatasetDiff:
    """What changed from version ``a`` to ``b`` (see :meth:`DatasetClient.diff`); ``key``: a column or columns
    identifying a row in the tables compared."""
    return _client().diff(a, b, key=[key] if isinstance(key, str) else key)


def list_datasets() -> list[DatasetSummary]:
    """Every dataset with its newest version."""
    return _client().list()


def dataset_path(ref: str) -> Path:
    """A local read-only copy of ``ref`` to read from (see :meth:`DatasetClient.local_path`)."""
    return _client().local_path(ref)


__all__ = [
    "DatasetClient",
    "Restored",
    "add_dataset",
    "dataset_path",
    "dataset_version",
    "diff_datasets",
    "get_dataset",
    "list_datasets",
]
