"""`SqlScheduleStore`: pipeline schedules in SQL, claimed tick by tick with a compare-and-set."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from shipyard.errors import AlreadyExists
from shipyard.pipelines.schedule import Catchup
from shipyard.pipelines.schedule_store import Schedule
from shipyard.store.db import MetadataStore
from shipyard.store.schema import pipeline_schedules
from shipyard.store.sql.tracking import acting_user


class SqlScheduleStore:
    """Pipeline schedules in one SQL metadata database. Thread-safe; any number may share a database."""

    def __init__(self, db: MetadataStore) -> None:
        self.db = db

    def insert(self, row: Mapping[str, Any]) -> Schedule:
        """Store a new schedule (``row`` holds every column but its creator: the acting user, whatever the
        row says); `AlreadyExists` if its name is taken."""
        row = {**row, "created_by": acting_user()}
        try:
            with self.db.write() as conn:
                conn.execute(pipeline_schedules.insert().values(**row))
        except sa.exc.IntegrityError as exc:
            raise AlreadyExists(
                f"a schedule named {row['name']!r} already exists; choose another name (--name) or delete it"
            ) from exc
        return _schedule(row)

    def get(self, name: str) -> Schedule | None:
        with self.db.read() as conn:
            row = conn.execute(sa.select(pipeline_schedules).where(pipeline_schedules.c.name == name)).first()
        return None if row is None else _schedule(row._mapping)

    def list(self) -> list[Schedule]:
        """Every schedule, by name."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(pipeline_schedules).order_by(pipeline_schedules.c.name)).all()
        return [_schedule(row._mapping) for row in rows]

    def update(self, schedule_id: str, values: Mapping[str, Any]) -> None:
        with self.db.write() as conn:
            conn.execute(
                pipeline_schedules.update()
                .where(pipeline_schedules.c.schedule_id == schedule_id)
                .values(**values)
            )

    def delete(self, name: str) -> bool:
        """Remove ``name``; whether it existed."""
        with self.db.write() as conn:
            deleted = conn.execute(pipeline_schedules.delete().where(pipeline_schedules.c.name == name))
        return bool(deleted.rowcount)

    def due(self, now_ms: int) -> list[Schedule]:
        """Unpaused schedules whose next tick is at or before ``now_ms``, earliest first (then by name)."""
        query = (
            sa.select(pipeline_schedules)
            .where(pipeline_schedules.c.paused.is_(False), pipeline_schedules.c.next_run_at <= now_ms)
            .order_by(pipeline_schedules.c.next_run_at, pipeline_schedules.c.name)
        )
        with self.db.read() as conn:
            return [_schedule(row._mapping) for row in conn.execute(query)]

    def earliest_next_run(self) -> int | None:
        """The earliest ``next_run_at`` of the unpaused schedules (``None`` when there are none)."""
        query = sa.select(sa.func.min(pipeline_schedules.c.next_run_at)).where(
            pipeline_schedules.c.paused.is_(False)
        )
        with self.db.read() as conn:
            return conn.execute(query).scalar()

    def advance(self, schedule_id: str, expected_next_run_at: int, next_run_at: int, updated_at: int) -> bool:
        """Compare-and-set: move an unpaused schedule's next tick from ``expected_next_run_at`` to
        ``next_run_at``; whether this caller did (exactly one of any number of concurrent callers does)."""
        table = pipeline_schedules.c
        with self.db.write() as conn:
            hit = conn.execute(
                pipeline_schedules.update()
                .where(
                    table.schedule_id == schedule_id,
                    table.next_run_at == expected_next_run_at,
                    table.paused.is_(False),
                )
                .values(next_run_at=next_run_at, updated_at=updated_at)
            ).rowcount
        return hit == 1


def _schedule(row: Mapping[str, Any]) -> Schedule:
    fields = {k: v for k, v in row.items() if k != "parameters_json"}
    fields.update(
        parameters=json.loads(row["parameters_json"]),
        catchup=Catchup(row["catchup"]),
        cache=bool(row["cache"]),
        paused=bool(row["paused"]),
    )
    return Schedule(**fields)
