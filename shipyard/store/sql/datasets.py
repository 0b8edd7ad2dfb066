"""`SqlDatasetStore`: dataset versions and their manifests in SQL.

Version numbers are allocated inside the adding transaction by one ``UPDATE … RETURNING`` on the dataset's
row (SQLite serialises writers; PostgreSQL locks the row until commit), so two processes adding to one name
at once get N and N+1, never the same number. The identical-content check runs in that same transaction, so
two processes adding the same files get one version between them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shipyard.datasets.manifest import SHA256, check_manifest
from shipyard.datasets.records import DatasetFile, DatasetSummary, DatasetVersion, SnapshotKind
from shipyard.datasets.refs import MAX_VERSION, check_dataset_name
from shipyard.errors import InvalidInput, NotFound
from shipyard.store.db import MetadataStore
from shipyard.store.schema import dataset_files, dataset_versions, datasets
from shipyard.store.sql import dialect
from shipyard.store.sql.tracking import acting_user
from shipyard.tracking.records import new_id, now_ms
from shipyard.tracking.values import checked_texts

_FILE_BATCH = 5_000  # manifest rows per INSERT: bounded statements for snapshots of many files


class SqlDatasetStore:
    """Dataset versions in one SQL metadata database. Thread-safe."""

    def __init__(self, db: MetadataStore) -> None:
        self.db = db

    def create_version(
        self,
        name: str,
        *,
        sha256: str,
        kind: SnapshotKind,
        files: Sequence[DatasetFile],
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        force: bool = False,
    ) -> DatasetVersion:
        """Record a version of ``name`` (created on first use) with its manifest, in one transaction."""
        check_dataset_name(name)
        manifest = check_manifest(files, sha256)
        kind = SnapshotKind(kind)
        if kind is SnapshotKind.FILE and len(manifest) != 1:
            raise InvalidInput(f"a file snapshot holds one file, not {len(manifest)}")
        tag_text = json.dumps(checked_texts(tags or {}, "tag"), sort_keys=True)
        now = now_ms()
        with self.db.write() as conn:
            dataset_id = self._dataset_id_or_create(conn, name, now)
            if not force:
                same = conn.execute(
                    sa.select(dataset_versions.c.version)
                    .where(dataset_versions.c.dataset_id == dataset_id, dataset_versions.c.sha256 == sha256)
                    .order_by(dataset_versions.c.version.desc())
                    .limit(1)
                ).scalar()
                if same is not None:
                    return self._version(conn, name, dataset_id, same, created=False)
            where = datasets.c.dataset_id == dataset_id
            number = dialect.next_number(conn, datasets, where, "last_version", updated_at=now)
            version_pk = conn.execute(
                dataset_versions.insert().values(
                    dataset_id=dataset_id,
                    version=number,
                    sha256=sha256,
                    kind=kind.value,
                    size=sum(f.size for f in manifest),
                    num_files=len(manifest),
                    description=description,
                    tags_json=tag_text,
                    created_by=acting_user(),
                    created_at=now,
                )
            ).inserted_primary_key[0]
            rows = [
                {"version_pk": version_pk, "path": f.path, "size": f.size, "sha256": f.sha256}
                for f in manifest
            ]
            for start in range(0, len(rows), _FILE_BATCH):
                conn.execute(dataset_files.insert(), rows[start : start + _FILE_BATCH])
            return self._version(conn, name, dataset_id, number)

    def get_version(self, name: str, version: int | None = None) -> DatasetVersion:
        """A version with its manifest (``version`` None: the newest)."""
        check_dataset_name(name)
        if version is not None and (
            isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION
        ):
            raise InvalidInput(f"dataset version {version!r} is not a number from 1 to {MAX_VERSION}")
        with self.db.read() as conn:
            dataset_id = self._dataset_id(conn, name)
            numbers = self._numbers(conn, dataset_id)
            if not numbers:
                raise NotFound(f"dataset {name!r} has no versions")
            wanted = numbers[-1] if version is None else version
            if wanted not in numbers:
                raise NotFound(f"dataset {name!r} has no version {wanted}; it has: {_span(numbers)}")
            return self._version(conn, name, dataset_id, wanted, with_files=True)

    def list_versions(self, name: str) -> list[DatasetVersion]:
        """Every version of ``name``, oldest first, without manifests."""
        check_dataset_name(name)
        with self.db.read() as conn:
            dataset_id = self._dataset_id(conn, name)
            rows = conn.execute(
                sa.select(dataset_versions)
                .where(dataset_versions.c.dataset_id == dataset_id)
                .order_by(dataset_versions.c.version)
            ).all()
        return [_record(name, row) for row in rows]

    def list_datasets(self) -> list[DatasetSummary]:
        """Every dataset with its newest version, by name."""
        counts = (
            sa.select(
                dataset_versions.c.dataset_id,
                sa.func.max(dataset_versions.c.version).label("latest"),
                sa.func.count().label("versions"),
            )
            .group_by(dataset_versions.c.dataset_id)
            .subquery()
        )
        query = (
            sa.select(datasets.c.name, counts.c.latest, counts.c.versions, dataset_versions)
            .join(counts, counts.c.dataset_id == datasets.c.dataset_id)
            .join(
                dataset_versions,
                (dataset_versions.c.dataset_id == datasets.c.dataset_id)
                & (dataset_versions.c.version == counts.c.latest),
            )
            .order_by(datasets.c.name)
        )
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [DatasetSummary(r.name, r.latest, r.versions, r.size, r.created_at, r.sha256) for r in rows]

    def blob_holders(self, sha256s: Sequence[str]) -> dict[str, list[str]]:
        """Of ``sha256s``, those some version records, each with the names of the datasets holding it."""
        wanted = sorted(set(sha256s))
        for digest in wanted:
            if not isinstance(digest, str) or not SHA256.fullmatch(digest):
                raise InvalidInput(f"blob sha256 {digest!r} is not 64 lowercase hex digits")
        found: dict[str, set[str]] = {}
        with self.db.read() as conn:
            for start in range(0, len(wanted), 500):  # bounded IN lists
                rows = conn.execute(
                    sa.select(dataset_files.c.sha256, datasets.c.name)
                    .join(dataset_versions, dataset_versions.c.id == dataset_files.c.version_pk)
                    .join(datasets, datasets.c.dataset_id == dataset_versions.c.dataset_id)
                    .where(dataset_files.c.sha256.in_(wanted[start : start + 500]))
                    .distinct()
                ).all()
                for digest, name in rows:
                    found.setdefault(digest, set()).add(name)
        return {digest: sorted(names) for digest, names in found.items()}

    # ------------------------------------------------------------------ internals
    def _dataset_id_or_create(self, conn: Connection, name: str, now: int) -> str:
        conn.execute(
            dialect.insert(self.db, datasets)
            .values(dataset_id=new_id(), name=name, created_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        return self._dataset_id(conn, name)

    def _dataset_id(self, conn: Connection, name: str) -> str:
        found = conn.execute(sa.select(datasets.c.dataset_id).where(datasets.c.name == name)).scalar()
        if found is None:
            raise NotFound(f"no dataset named {name!r}; add one with: shipyard data add PATH --name {name}")
        return found

    def _numbers(self, conn: Connection, dataset_id: str) -> list[int]:
        return list(
            conn.execute(
                sa.select(dataset_versions.c.version)
                .where(dataset_versions.c.dataset_id == dataset_id)
                .order_by(dataset_versions.c.version)
            ).scalars()
        )

    def _version(
        self,
        conn: Connection,
        name: str,
        dataset_id: str,
        number: int,
        *,
        created: bool = True,
        with_files: bool = True,
    ) -> DatasetVersion:
        row = conn.execute(
            sa.select(dataset_versions).where(
                dataset_versions.c.dataset_id == dataset_id, dataset_versions.c.version == number
            )
        ).one()
        files: tuple[DatasetFile, ...] = ()
        if with_files:
            files = tuple(
                DatasetFile(f.path, f.size, f.sha256)
                for f in conn.execute(
                    sa.select(dataset_files.c.path, dataset_files.c.size, dataset_files.c.sha256)
                    .where(dataset_files.c.version_pk == row.id)
                    .order_by(dataset_files.c.path)
                )
            )
        return _record(name, row, files, created)


def _record(name: str, row: Any, files: tuple[DatasetFile, ...] = (), created: bool = True) -> DatasetVersion:
    return DatasetVersion(
        name=name,
        version=row.version,
        sha256=row.sha256,
        kind=SnapshotKind(row.kind),
        size=row.size,
        num_files=row.num_files,
        created_at=row.created_at,
        created_by=row.created_by,
        description=row.description,
        tags=json.loads(row.tags_json),
        files=files,
        created=created,
    )


def _span(numbers: list[int]) -> str:
    """Version numbers for a message: all of a few, else the first and last few."""
    shown = [str(n) for n in numbers]
    return ", ".join(shown) if len(shown) <= 8 else f"{', '.join(shown[:3])}, …, {', '.join(shown[-3:])}"
