"""`SqlLoggedModelStore`: logged models (MLflow 3's ``LoggedModel``) and the runs that output them, in SQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from shipyard.errors import InvalidInput, NotFound
from shipyard.store.db import MetadataStore
from shipyard.store.schema import logged_model_outputs, logged_models
from shipyard.tracking import naming
from shipyard.tracking.logged_models import LoggedModel, LoggedModelStatus
from shipyard.tracking.records import LifecycleStage, now_ms
from shipyard.tracking.values import checked_texts

MAX_SEARCH = 1000


class SqlLoggedModelStore:
    """Logged models in one SQL metadata database. Thread-safe."""

    def __init__(self, db: MetadataStore) -> None:
        self.db = db

    def create(
        self,
        experiment_id: str,
        name: str,
        *,
        artifact_root: str,
        source_run_id: str | None = None,
        model_type: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> LoggedModel:
        """A new PENDING logged model whose files go under ``artifact_root``/models/<id>/artifacts."""
        naming.check_name(name, "logged model name")
        model_id = f"m-{uuid.uuid4().hex}"
        now = now_ms()
        row = {
            "model_id": model_id,
            "experiment_id": experiment_id,
            "name": name,
            "source_run_id": source_run_id,
            "status": LoggedModelStatus.PENDING.value,
            "model_type": model_type,
            "artifact_location": f"{artifact_root.rstrip('/')}/models/{model_id}/artifacts",
            "params_json": json.dumps(checked_texts(params or {}, "param"), sort_keys=True),
            "tags_json": json.dumps(checked_texts(tags or {}, "tag"), sort_keys=True),
            "lifecycle_stage": LifecycleStage.ACTIVE.value,
            "created_at": now,
            "updated_at": now,
        }
        with self.db.write() as conn:
            conn.execute(logged_models.insert().values(**row))
        return _model(row)

    def get(self, model_id: str) -> LoggedModel:
        """The logged model ``model_id`` (deleted ones too).

        Raises:
            NotFound: no such logged model.
        """
        with self.db.read() as conn:
            query = sa.select(logged_models).where(logged_models.c.model_id == model_id)
            found = conn.execute(query).mappings().first()
        if found is None:
            raise NotFound(f"no logged model {model_id!r}")
        return _model(found)

    def set_status(self, model_id: str, status: LoggedModelStatus | str) -> LoggedModel:
        status = LoggedModelStatus(status)
        self._update(model_id, status=status.value)
        return self.get(model_id)

    def set_tags(self, model_id: str, tags: Mapping[str, Any]) -> LoggedModel:
        found = self.get(model_id)
        merged = {**found.tags, **checked_texts(tags, "tag")}
        self._update(model_id, tags_json=json.dumps(merged, sort_keys=True))
        return self.get(model_id)

    def delete_tag(self, model_id: str, key: str) -> None:
        found = self.get(model_id)
        if key not in found.tags:
            raise NotFound(f"logged model {model_id!r} has no tag {key!r}")
        kept = {k: v for k, v in found.tags.items() if k != key}
        self._update(model_id, tags_json=json.dumps(kept, sort_keys=True))

    def delete(self, model_id: str) -> None:
        self._update(model_id, lifecycle_stage=LifecycleStage.DELETED.value)

    def search(
        self,
        experiment_ids: Sequence[str],
        *,
        name: str | None = None,
        source_run_id: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[LoggedModel], bool]:
        """Active logged models of ``experiment_ids``, newest first, and whether more follow."""
        if not 1 <= limit <= MAX_SEARCH:
            raise InvalidInput(f"max_results must be between 1 and {MAX_SEARCH}, got {limit}")
        query = sa.select(logged_models).where(
            logged_models.c.experiment_id.in_(list(experiment_ids)),
            logged_models.c.lifecycle_stage == LifecycleStage.ACTIVE.value,
        )
        if name is not None:
            query = query.where(logged_models.c.name == name)
        if source_run_id is not None:
            query = query.where(logged_models.c.source_run_id == source_run_id)
        query = query.order_by(logged_models.c.created_at.desc(), logged_models.c.model_id)
        with self.db.read() as conn:
            rows = conn.execute(query.offset(offset).limit(limit + 1)).mappings().all()
        return [_model(r) for r in rows[:limit]], len(rows) > limit

    def add_outputs(self, run_id: str, outputs: Iterable[tuple[str, int]]) -> None:
        """Record that run ``run_id`` output these (model id, step) pairs (again: the step is updated)."""
        pairs = list(outputs)
        for model_id, _ in pairs:
            self.get(model_id)
        with self.db.write() as conn:
            table = logged_model_outputs
            for model_id, step in pairs:
                conn.execute(table.delete().where(table.c.run_id == run_id, table.c.model_id == model_id))
                conn.execute(table.insert().values(run_id=run_id, model_id=model_id, step=step))

    def outputs(self, run_id: str) -> list[tuple[str, int]]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(logged_model_outputs.c.model_id, logged_model_outputs.c.step)
                .where(logged_model_outputs.c.run_id == run_id)
                .order_by(logged_model_outputs.c.model_id)
            ).all()
        return [(r[0], int(r[1])) for r in rows]

    def _update(self, model_id: str, **values: Any) -> None:
        with self.db.write() as conn:
            done = conn.execute(
                logged_models.update()
                .where(logged_models.c.model_id == model_id)
                .values(**values, updated_at=now_ms())
            )
        if not done.rowcount:
            raise NotFound(f"no logged model {model_id!r}")


def _model(row: Mapping[str, Any]) -> LoggedModel:
    return LoggedModel(
        model_id=row["model_id"],
        experiment_id=row["experiment_id"],
        name=row["name"],
        source_run_id=row["source_run_id"],
        status=LoggedModelStatus(row["status"]),
        model_type=row["model_type"],
        artifact_location=row["artifact_location"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        lifecycle_stage=LifecycleStage(row["lifecycle_stage"]),
        params=json.loads(row["params_json"] or "{}"),
        tags=json.loads(row["tags_json"] or "{}"),
    )
