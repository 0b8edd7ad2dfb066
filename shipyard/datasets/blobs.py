"""Content-addressed blobs: each distinct file of any snapshot, stored once under its sha256
(``datasets/blobs/ab/abcdef…`` under the artifact root), whatever dataset or version holds it.

A blob lands whole or not at all (the artifact store writes a temp file, fsyncs it and renames it into
place; an object store stores an object on close), and every read is checked against the hash it is named by.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable
from pathlib import Path

from shipyard.datasets.manifest import SHA256
from shipyard.datasets.records import DatasetFile
from shipyard.errors import Conflict, IntegrityError, NotFound
from shipyard.store.artifacts import ArtifactStore

BLOBS_PREFIX = "datasets/blobs"


def blob_path(sha256: str) -> str:
    """Where a blob lies under :data:`BLOBS_PREFIX`: fanned out by its first two hex digits."""
    return f"{sha256[:2]}/{sha256}"


def blob_digest(path: str) -> str | None:
    """The sha256 a path relative to the artifact root names when it is a blob's
    (``datasets/blobs/ab/abcdef…``), else None."""
    parts = path.split("/")
    if len(parts) != 4 or "/".join(parts[:2]) != BLOBS_PREFIX or not SHA256.fullmatch(parts[3]):
        return None
    return parts[3] if parts[2] == parts[3][:2] else None


class BlobStore:
    """The blobs under one artifact root. Thread-safe, as the artifact store is."""

    def __init__(self, artifacts: ArtifactStore) -> None:
        self.store = artifacts.child(BLOBS_PREFIX)

    def put_missing(self, source: Path, files: Iterable[DatasetFile], recorded: Collection[str]) -> int:
        """Store every file of ``source`` (a folder, or the file itself) whose blob is not there yet; returns
        the bytes written. Blobs in ``recorded`` (named by a stored version) are known to be there already.

        Raises:
            Conflict: a file changed since it was hashed (its blob is not kept).
        """
        written = 0
        seen: set[str] = set(recorded)
        for f in files:
            if f.sha256 in seen:
                continue
            seen.add(f.sha256)
            target = blob_path(f.sha256)
            if self.store.exists(target):
                continue
            local = source if source.is_file() else source.joinpath(*f.path.split("/"))
            stored = self.store.put_file(local, target)
            if stored.sha256 != f.sha256:
                with contextlib.suppress(NotFound):
                    self.store.delete(target)
                raise Conflict(f"{f.path!r} changed while it was being added; add it again once it is still")
            written += stored.size
        return written

    def fetch(self, f: DatasetFile, dest: Path, *, owner: str) -> None:
        """Copy ``f``'s blob to ``dest`` (atomically), checked against its sha256 as it copies.

        Raises:
            IntegrityError: the blob is missing or its content does not match (``owner``'s file and the blob
                named); nothing lands at ``dest`` then.
        """
        target = blob_path(f.sha256)
        try:
            self.store.get(target, dest, expected_sha256=f.sha256)
        except IntegrityError as exc:
            raise IntegrityError(f"{owner}: file {f.path!r} is corrupt in the store ({exc})") from exc
        except NotFound as exc:
            raise IntegrityError(
                f"{owner}: file {f.path!r} is missing from the store (no blob {self.store.uri(target)})"
            ) from exc
