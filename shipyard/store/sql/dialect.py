"""Statements whose spelling differs between SQLite and PostgreSQL (insert-or-ignore, upsert)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shipyard.store.db import MetadataStore


def insert(db: MetadataStore, table: sa.Table) -> Any:
    """The dialect's INSERT (it has ``on_conflict_do_nothing`` / ``on_conflict_do_update``)."""
    if db.dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table)


def insert_ignore(db: MetadataStore, table: sa.Table) -> Any:
    """INSERT that skips rows whose primary key exists."""
    return insert(db, table).on_conflict_do_nothing()


def upsert(db: MetadataStore, table: sa.Table, update: Sequence[str] = ("value",)) -> Any:
    """INSERT that overwrites ``update`` columns of a row whose primary key exists."""
    stmt = insert(db, table)
    keys = [c.name for c in table.primary_key.columns]
    return stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in update})


def next_number(conn: Connection, table: sa.Table, where: Any, counter: str, **values: Any) -> int:
    """Add one to ``counter`` on the row ``where`` picks and return it (with ``values`` set too).

    One ``UPDATE … RETURNING`` both allocates the number and locks the row until commit, so concurrent
    transactions get distinct numbers on SQLite (writers serialised) and PostgreSQL (row lock) alike.
    """
    column = table.c[counter]
    update = table.update().where(where).values({counter: column + 1, **values}).returning(column)
    return int(conn.execute(update).scalar_one())
