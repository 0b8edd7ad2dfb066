"""Two versions compared: files added, removed and changed by path and sha256, and for each table changed
between them, its columns and rows (:mod:`shipyard.datasets.tabular`)."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.datasets.records import DatasetFile, DatasetVersion
from shipyard.datasets.tabular import TableDiff, diff_table, is_tabular

if TYPE_CHECKING:
    from shipyard.datasets.blobs import BlobStore


@dataclass(frozen=True)
class DatasetDiff:
    """What differs from version ``a`` to version ``b`` (refs like ``customers@2``)."""

    a: str
    b: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: int
    tables: tuple[TableDiff, ...]

    @property
    def identical(self) -> bool:
        return not (self.added or self.removed or self.changed)


def diff_versions(
    a: DatasetVersion, b: DatasetVersion, blobs: BlobStore, *, key: Sequence[str] | None = None
) -> DatasetDiff:
    """Compare two versions (with manifests); tables changed between them are fetched (checked by sha256)
    into a temporary folder and compared there.

    Raises:
        InvalidInput: a ``key`` column missing from a changed table (its columns named).
        IntegrityError: a blob of a compared table is missing or corrupt.
    """
    old = {f.path: f for f in a.files}
    new = {f.path: f for f in b.files}
    changed = sorted(p for p in old.keys() & new.keys() if old[p].sha256 != new[p].sha256)
    tables = []
    with tempfile.TemporaryDirectory(prefix="shipyard-diff-") as tmp:
        for path in (p for p in changed if is_tabular(p)):
            before = _fetch(blobs, old[path], Path(tmp) / "a", a.ref)
            after = _fetch(blobs, new[path], Path(tmp) / "b", b.ref)
            tables.append(diff_table(path, before, after, key=key, labels=(a.ref, b.ref)))
    return DatasetDiff(
        a.ref,
        b.ref,
        added=tuple(sorted(new.keys() - old.keys())),
        removed=tuple(sorted(old.keys() - new.keys())),
        changed=tuple(changed),
        unchanged=len(old.keys() & new.keys()) - len(changed),
        tables=tuple(tables),
    )


def _fetch(blobs: BlobStore, f: DatasetFile, folder: Path, owner: str) -> Path:
    # Named by hash with the table's suffix: DuckDB picks its reader by the name, and no path from a manifest
    # is joined onto the temporary folder.
    dest = folder / (f.sha256 + Path(f.path).suffix.lower())
    folder.mkdir(parents=True, exist_ok=True)
    blobs.fetch(f, dest, owner=owner)
    return dest
