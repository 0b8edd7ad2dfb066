"""`SqlFeatureRegistryStore`: versioned feature definitions in the SQL metadata database."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from shipyard.errors import Conflict
from shipyard.features.records import Change, DefinitionVersion
from shipyard.store.db import MetadataStore
from shipyard.store.schema import feature_definitions as table

_ATTEMPTS = 5  # concurrent applies racing for a version number: the loser retries with the next one


class SqlFeatureRegistryStore:
    """Feature definitions' versions in one SQL database. Thread- and process-safe."""

    def __init__(self, db: MetadataStore) -> None:
        self.db = db

    def record(self, changes: Sequence[Change], user: str) -> list[DefinitionVersion]:
        """Add one version for each change, all in one transaction (an apply lands whole or not at all)."""
        for attempt in range(_ATTEMPTS):
            try:
                return self._record(changes, user)
            except sa.exc.IntegrityError as exc:  # another apply took a version number first
                if attempt == _ATTEMPTS - 1:
                    raise Conflict("feature definitions changed while applying; apply again") from exc
        raise AssertionError("unreachable")

    def _record(self, changes: Sequence[Change], user: str) -> list[DefinitionVersion]:
        now = int(time.time() * 1000)
        rows = []
        with self.db.write() as conn:
            for change in changes:
                latest = conn.execute(
                    sa.select(sa.func.max(table.c.version)).where(
                        (table.c.kind == change.kind) & (table.c.name == change.name)
                    )
                ).scalar()
                spec = (
                    change.spec
                    if change.spec is not None
                    else dict(change.previous.spec if change.previous else {})
                )
                row = {
                    "kind": change.kind,
                    "name": change.name,
                    "version": (latest or 0) + 1,
                    "spec": json.dumps(spec, sort_keys=True),
                    "sha256": change.sha256 or (change.previous.sha256 if change.previous else ""),
                    "deleted": change.spec is None,
                    "created_by": user,
                    "created_at": now,
                }
                conn.execute(table.insert().values(**row))
                rows.append(row)
        return [_version(r) for r in rows]

    def current(self) -> list[DefinitionVersion]:
        """The newest version of every definition ever applied (removed ones marked deleted)."""
        newest = (
            sa.select(table.c.kind, table.c.name, sa.func.max(table.c.version).label("version"))
            .group_by(table.c.kind, table.c.name)
            .subquery()
        )
        query = sa.select(table).join(
            newest,
            (table.c.kind == newest.c.kind)
            & (table.c.name == newest.c.name)
            & (table.c.version == newest.c.version),
        )
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(table.c.kind, table.c.name)).all()
        return [_version(r._mapping) for r in rows]

    def history(self, kind: str, name: str) -> list[DefinitionVersion]:
        query = (
            sa.select(table).where((table.c.kind == kind) & (table.c.name == name)).order_by(table.c.version)
        )
        with self.db.read() as conn:
            return [_version(r._mapping) for r in conn.execute(query).all()]


def _version(row: Mapping[str, Any]) -> DefinitionVersion:
    return DefinitionVersion(
        kind=row["kind"],
        name=row["name"],
        version=int(row["version"]),
        spec=json.loads(row["spec"]),
        sha256=row["sha256"],
        deleted=bool(row["deleted"]),
        created_by=row["created_by"],
        created_at=int(row["created_at"]),
    )
