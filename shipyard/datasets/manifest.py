"""A snapshot's manifest: every file's relative path, size and sha256, and the snapshot's own hash.

The snapshot hash is the sha256 of the manifest in one canonical form (sorted by path, one
``path\\0size\\0sha256\\n`` line per file), so the same files give the same hash on any machine, whatever the
order they were found in. A manifest from elsewhere (a request body, a server's answer) is hostile until
:func:`check_manifest` has passed it.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from shipyard.datasets.records import DatasetFile, SnapshotKind
from shipyard.errors import InvalidInput, NotFound
from shipyard.store.artifacts import CHUNK_SIZE, ArtifactStore, safe_relpath

SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_FILES = 1_000_000  # a bound on one snapshot, so a hostile manifest cannot exhaust the server


def snapshot_sha256(files: Iterable[DatasetFile]) -> str:
    """The hash of a snapshot: of its manifest, sorted by path."""
    digest = hashlib.sha256()
    for f in sorted(files, key=lambda f: f.path):
        digest.update(f"{f.path}\0{f.size}\0{f.sha256}\n".encode())
    return digest.hexdigest()


def check_manifest(files: Iterable[DatasetFile], sha256: str) -> tuple[DatasetFile, ...]:
    """The manifest sorted by path, once every entry is sound and the whole hashes to ``sha256``.

    Raises:
        InvalidInput: naming the entry: an unsafe path (absolute, ``..``, a URL), a path given twice or both
            a file and a folder, a negative size, a digest that is not 64 lowercase hex characters, no files
            at all, or a manifest that does not hash to ``sha256``.
    """
    checked: dict[str, DatasetFile] = {}
    for f in files:
        path = safe_relpath(f.path)
        if path != f.path:
            raise InvalidInput(f"manifest path {f.path!r} is not in canonical form ({path!r})")
        if path in checked:
            raise InvalidInput(f"manifest lists {path!r} twice")
        if isinstance(f.size, bool) or not isinstance(f.size, int) or f.size < 0:
            raise InvalidInput(f"manifest entry {path!r}: size {f.size!r} is not a byte count")
        if not isinstance(f.sha256, str) or not SHA256.fullmatch(f.sha256):
            raise InvalidInput(f"manifest entry {path!r}: sha256 {f.sha256!r} is not 64 lowercase hex digits")
        checked[path] = f
        if len(checked) > MAX_FILES:
            raise InvalidInput(f"a snapshot holds at most {MAX_FILES:,} files")
    if not checked:
        raise InvalidInput("a snapshot needs at least one file")
    ordered = tuple(checked[p] for p in sorted(checked))
    for path in checked:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            if (parent := "/".join(parts[:depth])) in checked:
                raise InvalidInput(f"manifest has {parent!r} as a file and as a folder")
    if not isinstance(sha256, str) or snapshot_sha256(ordered) != sha256:
        raise InvalidInput(f"the manifest does not hash to the snapshot sha256 {sha256!r}")
    return ordered


def scan(path: str | os.PathLike[str]) -> tuple[SnapshotKind, Path, tuple[DatasetFile, ...]]:
    """The manifest of a local file or folder, each file hashed: (kind, real path, files by path).

    A folder's symlinks are followed only where they stay inside it; a file's manifest path is its name.

    Raises:
        NotFound: nothing at ``path``.
        InvalidInput: an empty folder, a symlink that leaves it, a name that is not a safe relative path.
    """
    source = Path(os.path.abspath(os.fspath(path)))
    if not source.exists():
        raise NotFound(f"cannot add {str(path)!r}: no such file or folder")
    if source.is_dir():
        tree = ArtifactStore(source)  # its listing refuses symlinks that escape the folder
        names = [info.path for info in tree.list("", recursive=True)]
        files = tuple(_hashed(tree, name) for name in names)
        if not files:
            raise InvalidInput(f"cannot add {str(path)!r}: the folder holds no files")
        return SnapshotKind.DIRECTORY, source, files
    if not source.is_file():
        raise InvalidInput(f"cannot add {str(path)!r}: not a regular file or folder")
    # A file the user named is read wherever a symlink to it leads; the snapshot keeps the name given.
    real = source.resolve()
    return (
        SnapshotKind.FILE,
        real,
        (_hashed(ArtifactStore(real.parent), real.name, safe_relpath(source.name)),),
    )


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of a local file, read in chunks."""
    with open(path, "rb") as f:
        return _digest(f)[0]


def _hashed(tree: ArtifactStore, name: str, as_name: str | None = None) -> DatasetFile:
    with tree.open(name, "rb") as f:
        sha256, size = _digest(f)
    return DatasetFile(as_name or name, size, sha256)


def _digest(stream: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK_SIZE):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size
