"""`TrackingClient`: experiments, runs, params, tags, metrics and artifact records in the metadata store.

This is the embedded client: it talks to the database directly. It is thread-safe and cheap to share; the
fluent API (`shipyard.start_run`) uses one per process. Run ids are public UUID hex strings; internally rows
point at an integer key, which the client caches per run.
"""

from __future__ import annotations

import functools
import getpass
import json
import os
import socket
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from shipyard.config import Settings, get_settings
from shipyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from shipyard.store.artifacts import ArtifactStore, safe_relpath
from shipyard.store.db import MetadataStore, open_store
from shipyard.store.schema import (
    artifacts,
    dataset_inputs,
    experiments,
    latest_metrics,
    metric_chunks,
    params,
    runs,
)
from shipyard.store.schema import tags as tags_table
from shipyard.tracking import backing, chunks, naming, querying
from shipyard.tracking.backing import BackedVersion
from shipyard.tracking.chunks import SeriesMap
from shipyard.tracking.records import (
    ArtifactRecord,
    DatasetInput,
    Experiment,
    LifecycleStage,
    Metric,
    Run,
    RunList,
    RunStatus,
)
from shipyard.tracking.values import text_value

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_EXPERIMENT = "Default"
_MAX_PARAM_VALUE = 8000
_MAX_TAG_VALUE = 8000


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
    "heartbeat_at",
    "pid",
    "host",
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_id() -> str:
    return uuid.uuid4().hex


class TrackingClient:
    """Reads and writes tracking records in one metadata store and artifact root."""

    def __init__(self, settings: Settings | None = None, *, store: MetadataStore | None = None) -> None:
        self.settings = settings or get_settings()
        self.store = store or open_store(self.settings.db_url)
        self._run_pks: dict[str, int] = {}
        self._active_experiments: dict[str, Experiment] = {}  # by name; saves a read per new run
        placeholder = "?" if self.store.engine.dialect.paramstyle == "qmark" else "%s"
        marks = ", ".join([placeholder] * 5)
        # The per-run hot path (create, params, metrics, end) is plain SQL prepared once: building SQLAlchemy
        # statements per call cost more than the SQLite transaction itself. Portable: SQLite ≥ 3.35, PG ≥ 9.5.
        p = placeholder
        columns = ", ".join(f'"{c}"' for c in _RUN_COLUMNS)
        self._sql_insert_run = (
            f"INSERT INTO runs ({columns}) VALUES ({', '.join([p] * len(_RUN_COLUMNS))}) RETURNING id"
        )
        self._sql_end_run = f"UPDATE runs SET status = {p}, end_time = {p} WHERE id = {p}"
        self._sql_insert_param = (
            f"INSERT INTO params (run_pk, key, value) VALUES ({p}, {p}, {p}) ON CONFLICT DO NOTHING"
        )
        chunk_columns = ", ".join(f'"{c}"' for c in chunks.CHUNK_COLUMNS)
        chunk_marks = ", ".join([p] * len(chunks.CHUNK_COLUMNS))
        self._sql_insert_chunk = f"INSERT INTO metric_chunks ({chunk_columns}) VALUES ({chunk_marks})"
        self._upsert_tag = self._upsert(tags_table)
        self._upsert_latest_sql = (
            f"INSERT INTO latest_metrics (run_pk, key, value, step, timestamp) VALUES ({marks}) "
            "ON CONFLICT (run_pk, key) DO UPDATE SET value = excluded.value, step = excluded.step, "
            "timestamp = excluded.timestamp WHERE excluded.step > latest_metrics.step OR "
            "(excluded.step = latest_metrics.step AND excluded.timestamp >= latest_metrics.timestamp)"
        )

    # ------------------------------------------------------------------ experiments
    def create_experiment(
        self, name: str, *, description: str | None = None, artifact_location: str | None = None
    ) -> Experiment:
        """Create an experiment; `AlreadyExists` if the name is taken (even by a deleted one)."""
        naming.check_name(name, "experiment name")
        experiment_id = new_id()
        location = artifact_location or f"{self.settings.artifact_root.rstrip('/')}/{experiment_id}"
        now = now_ms()
        row = {
            "experiment_id": experiment_id,
            "name": name,
            "description": description,
            "artifact_location": location,
            "lifecycle_stage": LifecycleStage.ACTIVE.value,
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self.store.write() as conn:
                conn.execute(experiments.insert().values(**row))
        except SAIntegrityError as exc:
            existing = self._find_experiment(name)
            hint = (
                " (it is deleted: run `shipyard gc` to purge it)"
                if existing and existing.lifecycle_stage == "deleted"
                else ""
            )
            raise AlreadyExists(f"experiment {name!r} already exists{hint}") from exc
        return _experiment_from_row(row)

    def get_experiment(self, id_or_name: str) -> Experiment:
        """An experiment by id or name; `NotFound` names what was asked for."""
        found = self._find_experiment(id_or_name)
        if found is None:
            raise NotFound(f"no experiment with id or name {id_or_name!r}")
        return found

    def get_or_create_experiment(self, name: str) -> Experiment:
        """The active experiment called ``name``, created if missing (safe under concurrent creators)."""
        cached = self._active_experiments.get(name)
        if cached is not None:
            return cached
        found = self._find_experiment(name)
        if found is None:
            try:
                found = self.create_experiment(name)
            except AlreadyExists:
                found = self.get_experiment(name)  # another process created it between our read and write
        if found.lifecycle_stage is LifecycleStage.DELETED:
            raise Conflict(
                f"experiment {name!r} is deleted; restore it or run `shipyard gc` to purge it first"
            )
        self._active_experiments[name] = found
        return found

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        query = sa.select(experiments).order_by(experiments.c.created_at)
        if not include_deleted:
            query = query.where(experiments.c.lifecycle_stage == LifecycleStage.ACTIVE.value)
        with self.store.read() as conn:
            return [_experiment_from_row(row._mapping) for row in conn.execute(query)]

    def delete_experiment(self, id_or_name: str, *, force: bool = False) -> Experiment:
        """Soft-delete an experiment and its runs (purged by ``shipyard gc``).

        Raises:
            Conflict: its runs back registered versions (named) and not ``force`` (see :meth:`delete_run`).
        """
        experiment = self.get_experiment(id_or_name)
        if not force:
            with self.store.read() as conn:
                backed = self._backed_versions(conn, runs.c.experiment_id == experiment.experiment_id)
            if backed:
                raise Conflict(
                    f"experiment {experiment.name!r} has runs backing registered model version(s) "
                    f"{backing.describe_all(backed)}; delete or move those versions first, or force the "
                    "delete (the versions keep their packages but lose their runs)"
                )
        return self._set_experiment_stage(experiment.experiment_id, LifecycleStage.DELETED)

    def versions_backed_by_experiment(self, id_or_name: str) -> list[BackedVersion]:
        """The registered versions whose packages runs of this experiment hold."""
        experiment = self.get_experiment(id_or_name)
        with self.store.read() as conn:
            return self._backed_versions(conn, runs.c.experiment_id == experiment.experiment_id)

    def restore_experiment(self, id_or_name: str) -> Experiment:
        """Undo a soft delete that garbage collection has not purged yet."""
        return self._set_experiment_stage(id_or_name, LifecycleStage.ACTIVE)

    def _set_experiment_stage(self, id_or_name: str, stage: LifecycleStage) -> Experiment:
        experiment = self.get_experiment(id_or_name)
        with self.store.write() as conn:
            conn.execute(
                experiments.update()
                .where(experiments.c.experiment_id == experiment.experiment_id)
                .values(lifecycle_stage=stage.value, updated_at=now_ms())
            )
            conn.execute(
                runs.update()
                .where(runs.c.experiment_id == experiment.experiment_id)
                .values(lifecycle_stage=stage.value)
            )
        self._active_experiments.pop(experiment.name, None)
        return self.get_experiment(experiment.experiment_id)

    def _find_experiment(self, id_or_name: str) -> Experiment | None:
        query = sa.select(experiments).where(
            sa.or_(experiments.c.experiment_id == id_or_name, experiments.c.name == id_or_name)
        )
        with self.store.read() as conn:
            row = conn.execute(query).first()
        return None if row is None else _experiment_from_row(row._mapping)

    # ------------------------------------------------------------------ runs
    def create_run(
        self,
        experiment: str = DEFAULT_EXPERIMENT,
        *,
        name: str | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> tuple[Run, int]:
        """Create a RUNNING run; returns its record and private integer key.

        Run names are unique per experiment: an explicit name that is taken raises `AlreadyExists`.
        """
        exp = self.get_or_create_experiment(experiment)
        if parent_run_id is not None:
            self.run_pk(parent_run_id)  # NotFound names the missing parent (a cached lookup)
        if name is not None:
            naming.check_name(name, "run name")
        tag_rows = _check_mapping(tags or {}, "tag", _MAX_TAG_VALUE)
        # A generated name can collide with an existing one (rarely): draw a new id and name then.
        attempts = 1 if name is not None else 5
        for attempt in range(attempts):
            run_id = new_id()
            started = now_ms()
            row = {
                "run_id": run_id,
                "experiment_id": exp.experiment_id,
                "name": name or naming.generate_run_name(run_id),
                "status": RunStatus.RUNNING.value,
                "parent_run_id": parent_run_id,
                "user": _current_user(),
                "start_time": started,
                "end_time": None,
                "artifact_uri": f"{exp.artifact_location.rstrip('/')}/{run_id}/artifacts",
                "lifecycle_stage": LifecycleStage.ACTIVE.value,
                # The creating process's first beat; it goes on beating while it holds the run open.
                "heartbeat_at": started,
                "pid": os.getpid(),
                "host": _host(),
            }
            try:
                with self.store.write() as conn:
                    run_pk = conn.exec_driver_sql(
                        self._sql_insert_run, tuple(row[c] for c in _RUN_COLUMNS)
                    ).scalar_one()
                    if tag_rows:
                        conn.execute(
                            self._upsert_tag,
                            [{"run_pk": run_pk, "key": k, "value": v} for k, v in tag_rows],
                        )
                break
            except SAIntegrityError as exc:
                if attempt + 1 < attempts:
                    continue
                raise AlreadyExists(
                    f"a run named {row['name']!r} already exists in experiment {exp.name!r}; "
                    "choose another name or resume that run by id"
                ) from exc
        self._run_pks[run_id] = run_pk
        return querying.run_from_row(row, tags=dict(tag_rows)), run_pk

    def resume_run(self, run_id: str) -> tuple[Run, int]:
        """Mark an existing run RUNNING again (to log more into it), beating from this process."""
        run = self.get_run(run_id)
        run_pk = self.run_pk(run_id)
        with self.store.write() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.id == run_pk)
                .values(
                    status=RunStatus.RUNNING.value,
                    end_time=None,
                    heartbeat_at=now_ms(),
                    pid=os.getpid(),
                    host=_host(),
                )
            )
        return self.get_run(run.run_id), run_pk

    def beat(self, run_pks: Iterable[int]) -> None:
        """Record that this process is alive and still running ``run_pks`` (one UPDATE; ended runs are
        left alone). The metric writer's thread calls it every ``heartbeat_interval`` seconds."""
        pks = list(run_pks)
        if pks:
            with self.store.write() as conn:
                conn.execute(
                    runs.update()
                    .where(runs.c.id.in_(pks), runs.c.status == RunStatus.RUNNING.value)
                    .values(heartbeat_at=now_ms())
                )

    def run_pk(self, run_id: str) -> int:
        pk = self._run_pks.get(run_id)
        if pk is None:
            with self.store.read() as conn:
                pk = conn.execute(sa.select(runs.c.id).where(runs.c.run_id == run_id)).scalar()
            if pk is None:
                raise NotFound(f"no run with id {run_id!r}")
            self._run_pks[run_id] = pk
        return pk

    def get_run(self, run_id: str) -> Run:
        """A run with its params, tags and latest metrics; `NotFound` if the id is unknown."""
        found = self._load_runs(sa.select(runs).where(runs.c.run_id == run_id))
        if not found:
            raise NotFound(f"no run with id {run_id!r}")
        return found[0]

    def get_run_by_name(self, name: str, experiment: str = DEFAULT_EXPERIMENT) -> Run:
        exp = self.get_experiment(experiment)
        found = self._load_runs(
            sa.select(runs).where(runs.c.experiment_id == exp.experiment_id, runs.c.name == name)
        )
        if not found:
            raise NotFound(f"no run named {name!r} in experiment {exp.name!r}")
        return found[0]

    def find_run(self, id_or_name: str, experiment: str | None = None) -> Run:
        """A run by id, or by name within ``experiment`` (or any experiment when the name is unique)."""
        query = sa.select(runs).where(sa.or_(runs.c.run_id == id_or_name, runs.c.name == id_or_name))
        if experiment is not None:
            query = query.where(runs.c.experiment_id == self.get_experiment(experiment).experiment_id)
        found = self._load_runs(query.limit(2))
        by_id = [r for r in found if r.run_id == id_or_name]
        if by_id:
            return by_id[0]
        if not found:
            where = f" in experiment {experiment!r}" if experiment else ""
            raise NotFound(f"no run with id or name {id_or_name!r}{where}")
        if len(found) > 1:
            raise InvalidInput(f"run name {id_or_name!r} is used in several experiments; pass the experiment")
        return found[0]

    def set_terminated(self, run_pk: int, status: RunStatus, pending: SeriesMap | None = None) -> int:
        """End a run: write its last metric points and its terminal status in one transaction."""
        end = now_ms()
        with self.store.write() as conn:
            if pending:
                self._write_series(conn, pending)
            conn.exec_driver_sql(self._sql_end_run, (status.value, end, run_pk))
        return end

    def run_status(self, run_pk: int) -> RunStatus:
        with self.store.read() as conn:
            value = conn.execute(sa.select(runs.c.status).where(runs.c.id == run_pk)).scalar()
        if value is None:
            raise NotFound(f"run #{run_pk} no longer exists")
        return RunStatus(value)

    def delete_run(self, run_id: str, *, force: bool = False) -> list[BackedVersion]:
        """Soft-delete a run and its descendants (purged by ``shipyard gc``).

        Returns:
            The registered versions whose packages the deleted runs hold (empty unless ``force``): they keep
            loading, as garbage collection leaves their packages in place, but lose their run.

        Raises:
            Conflict: the runs back registered versions (named, with stages and aliases) and not ``force``.
        """
        self.get_run(run_id)
        with self.store.write() as conn:
            ids = [run_id]
            frontier = [run_id]
            while frontier:
                children = (
                    conn.execute(sa.select(runs.c.run_id).where(runs.c.parent_run_id.in_(frontier)))
                    .scalars()
                    .all()
                )
                ids.extend(children)
                frontier = list(children)
            backed = self._backed_versions(conn, runs.c.run_id.in_(ids))
            if backed and not force:
                raise Conflict(
                    f"run {run_id} backs registered model version(s) {backing.describe_all(backed)}; "
                    "delete or move those versions first, or force the delete (the versions keep their "
                    "packages but lose their run: metrics, params, lineage)"
                )
            conn.execute(
                runs.update()
                .where(runs.c.run_id.in_(ids))
                .values(lifecycle_stage=LifecycleStage.DELETED.value)
            )
        return backed

    def _backed_versions(self, conn: Connection, which: Any) -> list[BackedVersion]:
        uris = conn.execute(sa.select(runs.c.artifact_uri).where(which)).scalars()
        # A run's folder holds its artifacts/ (and nothing a version could reference outside it).
        folders = [uri.removesuffix("/artifacts") for uri in uris]
        return [v for found in backing.versions_under(conn, folders).values() for v in found]

    def restore_run(self, run_id: str) -> None:
        self.get_run(run_id)
        with self.store.write() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.run_id == run_id)
                .values(lifecycle_stage=LifecycleStage.ACTIVE.value)
            )

    # ------------------------------------------------------------------ params and tags
    def log_params(self, run_pk: int, values: Mapping[str, Any]) -> None:
        """Record params. Re-logging a key with the same value is fine; a different value is a `Conflict`."""
        rows = _check_mapping(values, "param", _MAX_PARAM_VALUE)
        if not rows:
            return
        with self.store.write() as conn:
            result = conn.exec_driver_sql(self._sql_insert_param, [(run_pk, k, v) for k, v in rows])
            if result.rowcount == len(rows):
                return
            stored = dict(
                conn.execute(
                    sa.select(params.c.key, params.c.value).where(
                        params.c.run_pk == run_pk, params.c.key.in_([k for k, _ in rows])
                    )
                ).all()
            )
            clashes = [(k, stored[k], v) for k, v in rows if stored.get(k) != v]
            if clashes:
                key, old, new = clashes[0]
                raise Conflict(
                    f"param {key!r} is already {old!r} in this run; cannot change it to {new!r} "
                    "(params are immutable: log a new key or start a new run)"
                )

    def set_tags(self, run_pk: int, values: Mapping[str, Any]) -> None:
        rows = _check_mapping(values, "tag", _MAX_TAG_VALUE)
        if rows:
            with self.store.write() as conn:
                conn.execute(self._upsert_tag, [{"run_pk": run_pk, "key": k, "value": v} for k, v in rows])

    def delete_tag(self, run_pk: int, key: str) -> None:
        with self.store.write() as conn:
            deleted = conn.execute(
                tags_table.delete().where(tags_table.c.run_pk == run_pk, tags_table.c.key == key)
            ).rowcount
        if not deleted:
            raise NotFound(f"run has no tag {key!r}")

    # ------------------------------------------------------------------ metrics
    def write_metrics(self, pending: SeriesMap) -> None:
        """Append buffered points in one transaction and advance each key's latest value."""
        if pending:
            with self.store.write() as conn:
                self._write_series(conn, pending)

    def _write_series(self, conn: Connection, pending: SeriesMap) -> None:
        # The hot path: one history chunk and one latest-value upsert per (run, key), not per point.
        chunk_rows: list[tuple[Any, ...]] = []
        latest: list[tuple[int, str, float | None, int, int]] = []
        for (run_pk, key), series in pending.items():
            if not len(series):
                continue
            chunk_rows.extend(chunks.encode_series(run_pk, key, series))
            value, step, timestamp = chunks.latest_of(series)
            # NULL stands for NaN in latest_metrics (SQLite cannot store a NaN).
            latest.append((run_pk, key, None if value != value else value, step, timestamp))
        if chunk_rows:
            conn.exec_driver_sql(self._sql_insert_chunk, chunk_rows)
            conn.exec_driver_sql(self._upsert_latest_sql, latest)

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of ``key`` in ``run_id``, ordered by step then time."""
        run_pk = self.run_pk(run_id)
        query = (
            sa.select(metric_chunks.c.steps, metric_chunks.c["values"], metric_chunks.c.timestamps)
            .where(metric_chunks.c.run_pk == run_pk, metric_chunks.c.key == key)
            .order_by(metric_chunks.c.id)
        )
        with self.store.read() as conn:
            triples = [t for row in conn.execute(query) for t in chunks.decode_chunk(*row)]
            if not triples:
                keys = (
                    conn.execute(
                        sa.select(latest_metrics.c.key)
                        .where(latest_metrics.c.run_pk == run_pk)
                        .order_by("key")
                    )
                    .scalars()
                    .all()
                )
        # Sorted by step then time; the sort is stable, so equal points keep their logged order.
        triples.sort(key=lambda t: (t[0], t[2]))
        points = [Metric(key, value, step, timestamp) for step, value, timestamp in triples]
        if not points:
            have = ", ".join(keys) if keys else "none"
            raise NotFound(f"run {run_id} has no metric {key!r}; it has: {have}")
        return points

    # ------------------------------------------------------------------ artifacts and datasets
    def record_artifacts(self, run_pk: int, files: Iterable[ArtifactRecord]) -> None:
        rows = [
            {"run_pk": run_pk, "path": f.path, "size": f.size, "sha256": f.sha256, "created_at": now_ms()}
            for f in files
        ]
        if rows:
            stmt = self._upsert(artifacts, update=("size", "sha256", "created_at"))
            with self.store.write() as conn:
                conn.execute(stmt, rows)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactRecord]:
        run_pk = self.run_pk(run_id)
        query = sa.select(artifacts.c.path, artifacts.c.size, artifacts.c.sha256).where(
            artifacts.c.run_pk == run_pk
        )
        if prefix:
            query = query.where(
                artifacts.c.path.startswith(prefix.rstrip("/") + "/", autoescape=True)
                | (artifacts.c.path == prefix)
            )
        with self.store.read() as conn:
            return [ArtifactRecord(*row) for row in conn.execute(query.order_by(artifacts.c.path)).all()]

    def read_artifact(self, run_id: str, path: str) -> bytes:
        """An artifact's bytes, verified against the sha256 recorded when it was logged."""
        record = self._artifact_record(run_id, path)
        return ArtifactStore(self.get_run(run_id).artifact_uri).read_bytes(record.path, record.sha256)

    def download_artifacts(self, run_id: str, path: str, local_dir: str | os.PathLike[str]) -> Path:
        """Copy an artifact file, or every file under a folder, into ``local_dir``, verifying each sha256."""
        store = ArtifactStore(self.get_run(run_id).artifact_uri)
        files = self.list_artifacts(run_id, path)
        if not files:
            raise NotFound(f"run {run_id} has no artifact {path!r}")
        root = Path(local_dir)
        for record in files:
            # A path as recorded, checked again: a tampered store must not write outside local_dir.
            target = root / safe_relpath(record.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            store.get(record.path, target, expected_sha256=record.sha256)
        return root / path if path else root

    def _artifact_record(self, run_id: str, path: str) -> ArtifactRecord:
        clean = safe_relpath(path)
        for record in self.list_artifacts(run_id, clean):
            if record.path == clean:
                return record
        raise NotFound(f"run {run_id} has no artifact file {path!r}")

    def log_dataset_input(self, run_pk: int, dataset: DatasetInput) -> None:
        row = {
            "run_pk": run_pk,
            "name": dataset.name,
            "digest": dataset.digest,
            "source": dataset.source,
            "source_type": dataset.source_type,
            "num_rows": dataset.num_rows,
            "schema_json": json.dumps(dataset.schema, sort_keys=True, default=str),
            "context": dataset.context,
            "created_at": now_ms(),
        }
        with self.store.write() as conn:
            conn.execute(self._insert_ignore(dataset_inputs), [row])

    def dataset_inputs(self, run_id: str) -> list[DatasetInput]:
        run_pk = self.run_pk(run_id)
        query = (
            sa.select(dataset_inputs).where(dataset_inputs.c.run_pk == run_pk).order_by(dataset_inputs.c.id)
        )
        with self.store.read() as conn:
            return [
                DatasetInput(
                    name=r.name,
                    digest=r.digest,
                    source=r.source,
                    source_type=r.source_type,
                    num_rows=r.num_rows,
                    schema=json.loads(r.schema_json),
                    context=r.context,
                )
                for r in conn.execute(query)
            ]

    # ------------------------------------------------------------------ search
    def runs_with_tag(
        self, key: str, value: str, *, status: RunStatus | None = None, limit: int = 10
    ) -> list[Run]:
        """Active runs of any experiment whose tag ``key`` is ``value``, newest first: one indexed query,
        for lookups on a hot path (a pipeline step's cache key) where parsing a filter costs too much."""
        query = (
            sa.select(runs)
            .join(tags_table, tags_table.c.run_pk == runs.c.id)
            .where(
                tags_table.c.key == key,
                tags_table.c.value == value,
                runs.c.lifecycle_stage == LifecycleStage.ACTIVE.value,
            )
            .order_by(runs.c.start_time.desc(), runs.c.id.desc())
            .limit(limit)
        )
        if status is not None:
            query = query.where(runs.c.status == status.value)
        return self._load_runs(query)

    def child_runs(self, run_id: str, *, limit: int = 100) -> tuple[list[Run], int]:
        """The active runs nested under ``run_id``, oldest first (at most ``limit``), and how many there are
        in all (a search can have thousands of trials)."""
        self.run_pk(run_id)  # NotFound names the missing run
        where = (runs.c.parent_run_id == run_id, runs.c.lifecycle_stage == LifecycleStage.ACTIVE.value)
        with self.store.read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(runs).where(*where)).scalar_one()
        found = self._load_runs(
            sa.select(runs).where(*where).order_by(runs.c.start_time, runs.c.id).limit(max(limit, 0))
        )
        return found, int(total)

    def recent_metric_keys(
        self, run_ids: Sequence[str], *, limit: int = 6, exclude_prefixes: Sequence[str] = ("system/",)
    ) -> list[str]:
        """The metric keys logged most recently to any of ``run_ids``, newest first: the columns a runs table
        shows when nobody chose them (system metrics are sampled all the time, so they are left out)."""
        newest: dict[str, int] = {}
        ids = list(dict.fromkeys(run_ids))
        with self.store.read() as conn:
            for start in range(0, len(ids), 500):
                query = (
                    sa.select(latest_metrics.c.key, sa.func.max(latest_metrics.c.timestamp))
                    .join(runs, runs.c.id == latest_metrics.c.run_pk)
                    .where(runs.c.run_id.in_(ids[start : start + 500]))
                    .group_by(latest_metrics.c.key)
                )
                for key, stamp in conn.execute(query):
                    if not key.startswith(tuple(exclude_prefixes)):
                        newest[key] = max(stamp, newest.get(key, stamp))
        return sorted(newest, key=lambda k: (-newest[k], k))[: max(limit, 0)]

    def search_runs(
        self,
        experiments_: str | Sequence[str] | None = None,
        filter: str | None = None,
        *,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        columns: Sequence[str] | None = None,
        include_deleted: bool = False,
        output_format: str = "records",
    ) -> RunList | pd.DataFrame:
        """Runs matching a filter, one page at a time (grammar: :mod:`shipyard.tracking.filter_parser`)."""
        return querying.search_runs(
            self,
            experiments_,
            filter,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
            columns=columns,
            include_deleted=include_deleted,
            output_format=output_format,
        )

    def _load_runs(self, query: sa.Select) -> list[Run]:
        with self.store.read() as conn:
            rows = [row._mapping for row in conn.execute(query)]
            return querying.hydrate_runs(conn, rows, stale_before=querying.stale_before(self.settings))

    # ------------------------------------------------------------------ helpers
    def _dialect_insert(self, table: sa.Table) -> Any:
        if self.store.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table)

    def _insert_ignore(self, table: sa.Table) -> Any:
        return self._dialect_insert(table).on_conflict_do_nothing()

    def _upsert(self, table: sa.Table, update: Sequence[str] = ("value",)) -> Any:
        stmt = self._dialect_insert(table)
        keys = [c.name for c in table.primary_key.columns]
        return stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in update})


@functools.cache
def _host() -> str:
    return socket.gethostname()[:256]


@functools.cache
def _current_user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return None


def _check_mapping(values: Mapping[str, Any], what: str, max_len: int) -> list[tuple[str, str]]:
    if not isinstance(values, Mapping):
        raise InvalidInput(f"{what}s must be a mapping of key to value, got {type(values).__name__}")
    # A value that cannot be stored raises here, before any row of the mapping is written.
    return [
        (naming.check_key(key, what), text_value(what, key, value, max_len)) for key, value in values.items()
    ]


def _experiment_from_row(row: Mapping[str, Any]) -> Experiment:
    return Experiment(
        experiment_id=row["experiment_id"],
        name=row["name"],
        artifact_location=row["artifact_location"],
        lifecycle_stage=LifecycleStage(row["lifecycle_stage"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        description=row["description"],
    )
