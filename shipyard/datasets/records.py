"""Dataset version records: a snapshot's files (its manifest) and what a store says about each version."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class SnapshotKind(enum.StrEnum):
    """What was snapshotted: one file (restored as that file) or a folder (restored as its tree)."""

    FILE = "file"
    DIRECTORY = "directory"


@dataclass(frozen=True)
class DatasetFile:
    """One file of a snapshot: its '/'-separated path inside the snapshot, size in bytes and sha256."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable version of a named dataset.

    Attributes:
        name: the dataset's name; ``version`` counts 1, 2, 3… per name and is never reused.
        sha256: the snapshot's hash, of its sorted manifest (see :mod:`shipyard.datasets.manifest`).
        size: bytes over all files; ``num_files`` how many.
        files: the manifest, sorted by path (empty in listings, which do not load it).
        created: False when :func:`~shipyard.datasets.add_dataset` found this content already recorded and
            returned the existing version instead of making a new one.
    """

    name: str
    version: int
    sha256: str
    kind: SnapshotKind
    size: int
    num_files: int
    created_at: int
    created_by: str | None = None
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    files: tuple[DatasetFile, ...] = ()
    created: bool = True

    @property
    def ref(self) -> str:
        """``name@version``, as commands and ``data:`` URIs name it."""
        return f"{self.name}@{self.version}"

    @property
    def uri(self) -> str:
        """``data:name@version``: how runs, pipelines and lineage refer to this version."""
        return f"data:{self.ref}"


@dataclass(frozen=True)
class DatasetSummary:
    """A dataset as ``shipyard data list`` shows it: its newest version and when that was added."""

    name: str
    latest_version: int
    versions: int
    size: int
    updated_at: int
    sha256: str
