"""`SqlDeploymentStore`: deployment records in the SQL metadata database.

The store keeps rows; names and URLs are checked in :mod:`shipyard.deployments`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from shipyard.auth.records import ResourceType
from shipyard.deployments import DeploymentRecord, record_from_row
from shipyard.errors import AlreadyExists, NotFound
from shipyard.store.db import MetadataStore
from shipyard.store.schema import deployments, grants


class SqlDeploymentStore:
    """Deployment records in one SQL metadata database. Thread-safe; any number may share a database."""

    def __init__(self, db: MetadataStore) -> None:
        self.db = db

    def insert_deployment(self, row: Mapping[str, Any]) -> DeploymentRecord:
        try:
            with self.db.write() as conn:
                conn.execute(deployments.insert().values(**row))
        except sa.exc.IntegrityError as exc:
            raise AlreadyExists(f"a deployment named {row['name']!r} already exists") from exc
        return self.deployment(row["name"])

    def update_deployment(self, name: str, values: Mapping[str, Any]) -> DeploymentRecord:
        with self.db.write() as conn:
            query = deployments.update().where(deployments.c.name == name).values(**values)
            if not conn.execute(query).rowcount:
                raise _missing(name)
        return self.deployment(name)

    def deployment(self, name: str) -> DeploymentRecord:
        with self.db.read() as conn:
            row = conn.execute(sa.select(deployments).where(deployments.c.name == name)).first()
        if row is None:
            raise _missing(name)
        return record_from_row(row._mapping)

    def list_deployments(self) -> list[DeploymentRecord]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(deployments).order_by(deployments.c.name)).all()
        return [record_from_row(r._mapping) for r in rows]

    def delete_deployment(self, name: str) -> None:
        """Delete the record and, in the same transaction, every grant on it: a deployment registered later
        under the same name must not inherit the old one's grants."""
        with self.db.write() as conn:
            if not conn.execute(deployments.delete().where(deployments.c.name == name)).rowcount:
                raise _missing(name)
            conn.execute(
                grants.delete().where(
                    (grants.c.resource_type == ResourceType.DEPLOYMENT.value) & (grants.c.resource == name)
                )
            )


def _missing(name: str) -> NotFound:
    return NotFound(f"no deployment named {name!r}; list them with: shipyard deployments list")
