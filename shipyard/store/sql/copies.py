"""`SqlImportStore`: records copied from another system, written as they were recorded there.

The SQL implementation of :class:`shipyard.store.protocol.ImportStore`. Runs go in batches, each batch one
transaction of multi-row inserts (a run's row, params, tags, history chunks, latest values, dataset inputs,
artifact records), so ten thousand imported runs cost a few hundred transactions, not a million statements.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from shipyard.config import Settings
from shipyard.errors import InvalidInput
from shipyard.registry.naming import check_model_name
from shipyard.registry.records import Stage
from shipyard.store.db import MetadataStore, RowInsert
from shipyard.store.schema import (
    experiments,
    logged_model_outputs,
    logged_models,
    model_version_tags,
    model_versions,
    registered_model_tags,
    registered_models,
)
from shipyard.store.schema import runs as runs_table
from shipyard.store.sql import dialect
from shipyard.store.sql.registry import insert_model_event
from shipyard.store.sql.tracking import _experiment_from_row, _series_rows
from shipyard.tracking import chunks, naming
from shipyard.tracking.logged_models import LoggedModel
from shipyard.tracking.records import Experiment, LifecycleStage, RunCopy, new_id, now_ms
from shipyard.tracking.values import checked_texts

_CHUNK = 900  # ids per IN (...) list
_RUN_COLUMNS = (
    "run_id",
    "experiment_id",
    "name",
    "status",
    "parent_run_id",
    "user",
    "start_time",
    "end_time",
    "artifact_uri",
    "lifecycle_stage",
)
_DATASET_COLUMNS = (
    "run_pk",
    "name",
    "digest",
    "source",
    "source_type",
    "num_rows",
    "schema_json",
    "context",
    "created_at",
)


class SqlImportStore:
    """Copied records in one SQL metadata database. Thread-safe."""

    def __init__(self, db: MetadataStore, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        p = "?" if db.engine.dialect.paramstyle == "qmark" else "%s"
        self._mark = p
        columns = ", ".join(f'"{c}"' for c in _RUN_COLUMNS)
        self._insert_run = (
            f"INSERT INTO runs ({columns}) VALUES ({', '.join([p] * len(_RUN_COLUMNS))}) "
            "ON CONFLICT (run_id) DO NOTHING RETURNING id"
        )
        self._params = RowInsert("INSERT INTO params (run_pk, key, value)", 3, "ON CONFLICT DO NOTHING")
        self._tags = RowInsert("INSERT INTO tags (run_pk, key, value)", 3, "ON CONFLICT DO NOTHING")
        chunk_columns = ", ".join(f'"{c}"' for c in chunks.CHUNK_COLUMNS)
        self._chunks = RowInsert(f"INSERT INTO metric_chunks ({chunk_columns})", len(chunks.CHUNK_COLUMNS))
        self._latest = RowInsert(
            "INSERT INTO latest_metrics (run_pk, key, value, step, timestamp)", 5, "ON CONFLICT DO NOTHING"
        )
        self._artifacts = RowInsert(
            "INSERT INTO artifacts (run_pk, path, size, sha256, created_at)", 5, "ON CONFLICT DO NOTHING"
        )
        dataset_columns = ", ".join(f'"{c}"' for c in _DATASET_COLUMNS)
        self._datasets = RowInsert(
            f"INSERT INTO dataset_inputs ({dataset_columns})", len(_DATASET_COLUMNS), "ON CONFLICT DO NOTHING"
        )

    # ------------------------------------------------------------------ experiments and runs
    def put_experiment(
        self,
        name: str,
        *,
        description: str | None,
        artifact_location: str | None,
        created_at: int,
        updated_at: int,
    ) -> Experiment:
        """The experiment called ``name``: the stored one (deleted or not), else a new one with these
        times."""
        naming.check_name(name, "experiment name")
        experiment_id = new_id()
        row = {
            "experiment_id": experiment_id,
            "name": name,
            "description": description,
            "artifact_location": artifact_location
            or f"{self.settings.artifact_root.rstrip('/')}/{experiment_id}",
            "lifecycle_stage": LifecycleStage.ACTIVE.value,
            "created_at": created_at,
            "updated_at": updated_at,
        }
        with self.db.write() as conn:
            insert = dialect.insert(self.db, experiments).values(**row)
            conn.execute(insert.on_conflict_do_nothing(index_elements=["name"]))
            stored = conn.execute(sa.select(experiments).where(experiments.c.name == name)).one()
        return _experiment_from_row(stored._mapping)

    def existing_runs(self, run_ids: Sequence[str]) -> set[str]:
        """Which of ``run_ids`` are stored."""
        found: set[str] = set()
        with self.db.read() as conn:
            for start in range(0, len(run_ids), _CHUNK):
                part = list(run_ids[start : start + _CHUNK])
                found.update(
                    conn.execute(
                        sa.select(runs_table.c.run_id).where(runs_table.c.run_id.in_(part))
                    ).scalars()
                )
        return found

    def put_runs(self, runs: Sequence[RunCopy]) -> dict[str, str]:
        """Store the runs not stored yet, each with everything logged to it, in one transaction.

        A name its experiment already uses (MLflow allows repeats, Shipyard does not) gets the run id's first
        eight characters appended.

        Returns:
            By run id, the name each newly stored run got (runs already stored are left out).

        Raises:
            InvalidInput: a name, key or value Shipyard cannot store (nothing of the batch is stored).
        """
        checked = [(copy, *_checked(copy)) for copy in runs]
        names = self._free_names(runs)
        stored: dict[str, str] = {}
        now = now_ms()
        with self.db.write_raw() as tx:
            param_rows: list[tuple[Any, ...]] = []
            tag_rows: list[tuple[Any, ...]] = []
            artifact_rows: list[tuple[Any, ...]] = []
            dataset_rows: list[tuple[Any, ...]] = []
            series: dict[tuple[int, str], chunks.Series] = {}
            for copy, params, tags in checked:
                name = names[copy.run_id]
                row = {
                    **{c: getattr(copy, c, None) for c in _RUN_COLUMNS},
                    "name": name,
                    "status": copy.status.value,
                    "lifecycle_stage": copy.lifecycle_stage.value,
                }
                pk = tx.scalar(self._insert_run, tuple(row[c] for c in _RUN_COLUMNS))
                if pk is None:  # stored by an earlier import
                    continue
                stored[copy.run_id] = name
                param_rows += [(pk, k, v) for k, v in params.items()]
                tag_rows += [(pk, k, v) for k, v in tags.items()]
                artifact_rows += [(pk, a.path, a.size, a.sha256, now) for a in copy.artifacts]
                dataset_rows += [
                    (
                        pk,
                        d.name,
                        d.digest,
                        d.source,
                        d.source_type,
                        d.num_rows,
                        json.dumps(d.schema, sort_keys=True, default=str),
                        d.context,
                        now,
                    )
                    for d in copy.datasets
                ]
                for key, points in copy.metrics.items():
                    if len(points):
                        series[(pk, key)] = points
            tx.insert(self._params, param_rows)
            tx.insert(self._tags, tag_rows)
            tx.insert(self._artifacts, artifact_rows)
            tx.insert(self._datasets, dataset_rows)
            chunk_rows, latest = _series_rows(series)
            tx.insert(self._chunks, chunk_rows)
            tx.insert(self._latest, latest)
        return stored

    def _free_names(self, copies: Sequence[RunCopy]) -> dict[str, str]:
        wanted: dict[tuple[str, str], list[str]] = {}
        for copy in copies:
            naming.check_name(copy.name, "run name")
            wanted.setdefault((copy.experiment_id, copy.name), []).append(copy.run_id)
        taken: set[tuple[str, str]] = set()
        by_experiment: dict[str, list[str]] = {}
        for experiment_id, name in wanted:
            by_experiment.setdefault(experiment_id, []).append(name)
        with self.db.read() as conn:
            for experiment_id, names in by_experiment.items():
                for start in range(0, len(names), _CHUNK):
                    query = sa.select(runs_table.c.name, runs_table.c.run_id).where(
                        runs_table.c.experiment_id == experiment_id,
                        runs_table.c.name.in_(names[start : start + _CHUNK]),
                    )
                    for name, run_id in conn.execute(query):
                        if run_id not in wanted[(experiment_id, name)]:  # another run holds it
                            taken.add((experiment_id, name))
        out: dict[str, str] = {}
        for (experiment_id, name), ids in wanted.items():
            for index, run_id in enumerate(ids):
                clash = index > 0 or (experiment_id, name) in taken
                out[run_id] = f"{name[:247]}-{run_id[:8]}" if clash else name
        return out

    def existing_logged_models(self, model_ids: Sequence[str]) -> set[str]:
        """Which of ``model_ids`` are stored logged models."""
        found: set[str] = set()
        column = logged_models.c.model_id
        with self.db.read() as conn:
            for start in range(0, len(model_ids), _CHUNK):
                part = list(model_ids[start : start + _CHUNK])
                found.update(conn.execute(sa.select(column).where(column.in_(part))).scalars())
        return found

    def put_logged_model(self, model: LoggedModel, outputs: Sequence[tuple[str, int]]) -> bool:
        """Store a logged model with its id, times and status, and the (run id, step) pairs that output it,
        unless a model of that id is stored; True if new."""
        naming.check_name(model.name, "logged model name")
        row = {
            "model_id": model.model_id,
            "experiment_id": model.experiment_id,
            "name": model.name,
            "source_run_id": model.source_run_id,
            "status": model.status.value,
            "model_type": model.model_type,
            "artifact_location": model.artifact_location,
            "params_json": json.dumps(checked_texts(model.params, "param"), sort_keys=True),
            "tags_json": json.dumps(checked_texts(model.tags, "tag"), sort_keys=True),
            "lifecycle_stage": model.lifecycle_stage.value,
            "created_at": model.created_at,
            "updated_at": model.updated_at,
        }
        with self.db.write() as conn:
            insert = dialect.insert(self.db, logged_models).values(**row).on_conflict_do_nothing()
            if conn.execute(insert.returning(logged_models.c.model_id)).first() is None:
                return False
            rows = [{"run_id": r, "model_id": model.model_id, "step": s} for r, s in outputs]
            if rows:
                conn.execute(dialect.insert_ignore(self.db, logged_model_outputs), rows)
        return True

    # ------------------------------------------------------------------ registry
    def put_model(
        self,
        name: str,
        *,
        description: str | None,
        tags: Mapping[str, str],
        created_at: int,
        updated_at: int,
    ) -> bool:
        """Store a registered model unless one of that name exists (then its tags are added); True if new."""
        check_model_name(name)
        checked = checked_texts(tags, "tag")
        with self.db.write() as conn:
            insert = dialect.insert(self.db, registered_models).values(
                model_id=new_id(),
                name=name,
                description=description,
                created_at=created_at,
                updated_at=updated_at,
            )
            # RETURNING says whether the row went in (rowcount is not reliable for it on every driver).
            inserted = insert.on_conflict_do_nothing(index_elements=["name"]).returning(
                registered_models.c.model_id
            )
            created = conn.execute(inserted).first() is not None
            model_id = conn.execute(
                sa.select(registered_models.c.model_id).where(registered_models.c.name == name)
            ).scalar_one()
            rows = [{"model_id": model_id, "key": k, "value": v} for k, v in checked.items()]
            if rows:
                conn.execute(dialect.insert_ignore(self.db, registered_model_tags), rows)
            if created:
                insert_model_event(conn, name, None, "import_model", None, None, "imported", created_at)
        return created

    def put_version(
        self,
        name: str,
        version: int,
        *,
        flavor: str,
        stage: Stage,
        source_uri: str,
        package_uri: str,
        manifest_sha256: str,
        run_id: str | None,
        lineage: Mapping[str, Any],
        description: str | None,
        tags: Mapping[str, str],
        created_by: str | None,
        created_at: int,
        updated_at: int,
    ) -> bool:
        """Store version ``version`` of a stored model with its number, stage and times, unless it exists;
        the model's counter moves past it so later registrations never reuse the number. True if new."""
        if version < 1:
            raise InvalidInput(f"model {name!r}: version numbers start at 1, got {version}")
        checked = checked_texts(tags, "tag")
        with self.db.write() as conn:
            model_id = conn.execute(
                sa.select(registered_models.c.model_id).where(registered_models.c.name == name)
            ).scalar_one()
            insert = dialect.insert(self.db, model_versions).values(
                model_id=model_id,
                version=version,
                flavor=flavor,
                stage=stage.value,
                description=description,
                source_uri=source_uri,
                package_uri=package_uri,
                manifest_sha256=manifest_sha256,
                run_id=run_id,
                pipeline_run_id=None,
                lineage_json=json.dumps(dict(lineage), sort_keys=True, default=str),
                created_by=created_by,
                created_at=created_at,
                updated_at=updated_at,
            )
            inserted = insert.on_conflict_do_nothing(index_elements=["model_id", "version"])
            version_pk = conn.execute(inserted.returning(model_versions.c.id)).scalar()
            if version_pk is None:
                return False
            rows = [{"version_pk": version_pk, "key": k, "value": v} for k, v in checked.items()]
            if rows:
                conn.execute(dialect.insert_ignore(self.db, model_version_tags), rows)
            conn.execute(
                registered_models.update()
                .where(registered_models.c.model_id == model_id, registered_models.c.last_version < version)
                .values(last_version=version)
            )
            insert_model_event(
                conn, name, version, "import_version", None, source_uri, "imported", created_at
            )
        return True


def _checked(copy: RunCopy) -> tuple[dict[str, str], dict[str, str]]:
    try:
        return checked_texts(copy.params, "param"), checked_texts(copy.tags, "tag")
    except InvalidInput as exc:
        raise InvalidInput(f"run {copy.run_id}: {exc}") from exc
