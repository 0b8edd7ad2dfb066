"""Alembic environment: runs on the connection Shipyard hands over (see ``store/db.py``)."""

from __future__ import annotations

from alembic import context

from shipyard.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached from the alembic CLI without Shipyard
    raise RuntimeError("run migrations through shipyard.store.db.open_store, which passes a connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
