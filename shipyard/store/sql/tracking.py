"""`SqlTrackingStore`: experiments, runs, params, tags, metrics and artifact records in SQLite or PostgreSQL.

The SQL implementation of :class:`shipyard.store.protocol.TrackingStore`. It validates what it stores (keys,
names, value sizes), so whatever reaches it — a local script or the platform server — gets the same errors.
Thread-safe and cheap to share. Run ids are public UUID hex strings; rows point at an integer key, which is
also the run's :data:`~shipyard.store.protocol.RunKey` here (cached per run id).
"""

from __future__ import annotations

import functools
import getpass
import json
import logging
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from shipyard.auth.records import ACTOR, ResourceType
from shipyard.config import Settings
from shipyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound, ShipyardError, StoreError
from shipyard.processes import host_name
from shipyard.store.artifacts import ArtifactStore
from shipyard.store.db import ROWS_PER_STATEMENT, MetadataStore, RawTransaction, RowInsert, both_statement
from shipyard.store.protocol import Garbage, RunKey
from shipyard.store.schema import (
    artifacts,
    dataset_inputs,
    experiments,
    latest_metrics,
    metric_chunks,
    model_aliases,
    model_versions,
    params,
    registered_models,
    request_keys,
    runs,
)
from shipyard.store.schema import tags as tags_table
from shipyard.store.sql import dialect, run_statements, views
from shipyard.store.sql.auth import move_grants
from shipyard.store.sql.run_statements import RunStatements
from shipyard.store.sql.search import build_search_statement, cursor_after
from shipyard.tracking import backing, chunks, naming
from shipyard.tracking.backing import BackedVersion
from shipyard.tracking.chunks import SeriesMap
from shipyard.tracking.cursors import RunPage, SearchCursor
from shipyard.tracking.filter_parser import parse_filter, parse_order_by
from shipyard.tracking.querying import parse_columns, stale_before
from shipyard.tracking.records import (
    DEFAULT_EXPERIMENT,
    STALE_TAG,
    ArtifactRecord,
    DatasetInput,
    Experiment,
    GcReport,
    LifecycleStage,
    Metric,
    Run,
    RunStatus,
    is_lost,
    new_id,
    now_ms,
)
from shipyard.tracking.values import checked_texts, param_changed

log = logging.getLogger(__name__)
_CHUNK = 900  # ids per IN (...) list; well under every backend's bound-parameter limit
# Up to this many runs in the searched experiments (and under a tenth of the store's), SQLite searches them
# run by run (see search.py).
_FEW_RUNS = 5000
_KEY_TTL_MS = 24 * 3600 * 1000  # how long a retry can come after its first attempt and still be recognised
_PRUNE_EVERY = 1000  # claims between prunings of expired idempotency keys


class _Retried(Exception):
    """A write's idempotency key was already recorded: a retry of a stored write."""


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


class SqlTrackingStore:
    """Tracking records in one SQL metadata database; new experiments' artifacts go under the settings'
    artifact root."""

    buffers_params = False

    def __init__(self, db: MetadataStore, settings: Settings) -> None:
        self.settings = settings
        self.db = db
        self._run_pks: dict[str, int] = {}
        self._active_experiments: dict[str, Experiment] = {}  # by name; saves a read per new run
        placeholder = "?" if self.db.engine.dialect.paramstyle == "qmark" else "%s"
        # The per-run hot path (create, params, metrics, end) is plain SQL prepared once: building SQLAlchemy
        # statements per call cost more than the SQLite transaction itself. Portable: SQLite ≥ 3.35, PG ≥ 9.5.
        p = placeholder
        columns = ", ".join(f'"{c}"' for c in _RUN_COLUMNS)
        self._sql_insert_run = (
            f"INSERT INTO runs ({columns}) VALUES ({', '.join([p] * len(_RUN_COLUMNS))}) RETURNING id"
        )
        # PostgreSQL creates and ends a run in one statement each (see run_statements).
        self._one_statement = (
            RunStatements(self.db.engine.dialect, _RUN_COLUMNS) if self.db.dialect == "postgresql" else None
        )
        self._sql_end_run = f"UPDATE runs SET status = {p}, end_time = {p} WHERE id = {p}"
        self._sql_claim_key = (
            f"INSERT INTO request_keys (key, created_at, result) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT (key) DO NOTHING"
        )
        self._claims = 0
        self._insert_params = RowInsert(
            "INSERT INTO params (run_pk, key, value)", 3, "ON CONFLICT DO NOTHING"
        )
        chunk_columns = ", ".join(f'"{c}"' for c in chunks.CHUNK_COLUMNS)
        self._insert_chunks = RowInsert(
            f"INSERT INTO metric_chunks ({chunk_columns})", len(chunks.CHUNK_COLUMNS)
        )
        self._upsert_tags = RowInsert(
            "INSERT INTO tags (run_pk, key, value)",
            3,
            "ON CONFLICT (run_pk, key) DO UPDATE SET value = excluded.value",
        )
        self._sql_prune_keys = f"DELETE FROM request_keys WHERE created_at < {p}"
        self._upsert_latest = RowInsert(
            "INSERT INTO latest_metrics (run_pk, key, value, step, timestamp)",
            5,
            "ON CONFLICT (run_pk, key) DO UPDATE SET value = excluded.value, step = excluded.step, "
            "timestamp = excluded.timestamp WHERE excluded.step > latest_metrics.step OR "
            "(excluded.step = latest_metrics.step AND excluded.timestamp >= latest_metrics.timestamp)",
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
            with self.db.write() as conn:
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
        with self.db.read() as conn:
            return [_experiment_from_row(row._mapping) for row in conn.execute(query)]

    def delete_experiment(self, id_or_name: str, *, force: bool = False) -> Experiment:
        """Soft-delete an experiment and its runs (purged by ``shipyard gc``).

        Raises:
            Conflict: its runs back registered versions (named) and not ``force`` (see :meth:`delete_run`).
        """
        experiment = self.get_experiment(id_or_name)
        if not force:
            with self.db.read() as conn:
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
        with self.db.read() as conn:
            return self._backed_versions(conn, runs.c.experiment_id == experiment.experiment_id)

    def restore_experiment(self, id_or_name: str) -> Experiment:
        """Undo a soft delete that garbage collection has not purged yet."""
        return self._set_experiment_stage(id_or_name, LifecycleStage.ACTIVE)

    def rename_experiment(self, id_or_name: str, new_name: str) -> Experiment:
        """Rename an active experiment; its id, runs, artifacts and grants stay with it.

        Raises:
            NotFound: no such experiment.
            Conflict: it is deleted (restore it first).
            AlreadyExists: ``new_name`` is taken (by a deleted experiment too, until ``shipyard gc``).
            InvalidInput: ``new_name`` is not a valid experiment name.
        """
        naming.check_name(new_name, "experiment name")
        experiment = self.get_experiment(id_or_name)
        if experiment.name == new_name:
            return experiment
        try:
            with self.db.write() as conn:
                renamed = conn.execute(
                    experiments.update()
                    .where(
                        experiments.c.experiment_id == experiment.experiment_id,
                        experiments.c.lifecycle_stage == LifecycleStage.ACTIVE.value,
                    )
                    .values(name=new_name, updated_at=now_ms())
                ).rowcount
                if not renamed:
                    raise Conflict(
                        f"experiment {experiment.name!r} is deleted; restore it before renaming it"
                    )
                move_grants(conn, ResourceType.EXPERIMENT, experiment.name, new_name)
        except SAIntegrityError as exc:
            raise AlreadyExists(f"experiment {new_name!r} already exists; choose another name") from exc
        self._active_experiments.pop(experiment.name, None)
        return self.get_experiment(experiment.experiment_id)

    def _set_experiment_stage(self, id_or_name: str, stage: LifecycleStage) -> Experiment:
        experiment = self.get_experiment(id_or_name)
        with self.db.write() as conn:
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
        with self.db.read() as conn:
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
        idempotency_key: str | None = None,
        beats: bool = True,
    ) -> tuple[Run, RunKey]:
        """Create a RUNNING run; returns its record and private integer key.

        Run names are unique per experiment: an explicit name that is taken raises `AlreadyExists`. A retry
        carrying the ``idempotency_key`` of a creation that was stored returns that run instead of a second.
        ``beats`` False: no process will beat for the run (one an MLflow client made), so it is never LOST.
        """
        exp = self.get_or_create_experiment(experiment)
        if parent_run_id is not None:
            self.run_key(parent_run_id)  # NotFound names the missing parent (a cached lookup)
        if name is not None:
            naming.check_name(name, "run name")
        tag_rows = _checked_rows(tags or {}, "tag")
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
                "user": acting_user(),
                "start_time": started,
                "end_time": None,
                "artifact_uri": f"{exp.artifact_location.rstrip('/')}/{run_id}/artifacts",
                "lifecycle_stage": LifecycleStage.ACTIVE.value,
                # The creating process's first beat; it goes on beating while it holds the run open.
                "heartbeat_at": started if beats else None,
                "pid": os.getpid() if beats else None,
                "host": host_name() if beats else None,
            }
            try:
                if self._one_statement is not None:
                    run_pk = self._create_in_one(row, tag_rows, idempotency_key)
                else:
                    with self.db.write_raw() as tx:
                        run_pk = tx.scalar(self._sql_insert_run, tuple(row[c] for c in _RUN_COLUMNS))
                        if tag_rows:
                            tx.insert(self._upsert_tags, [(run_pk, k, v) for k, v in tag_rows])
                        if idempotency_key is not None and not self._claim(tx, idempotency_key, run_id):
                            raise _Retried
                break
            except _Retried:  # a retry of a stored creation (its row just rolled back): the stored run
                done = self._claimed_result(idempotency_key or "")
                if done is None:  # pragma: no cover - the claim's row is committed before it conflicts
                    raise StoreError("a retried run creation lost its key; retry it") from None
                return self.get_run(done), self.run_key(done)
            except SAIntegrityError as exc:
                done = None if idempotency_key is None else self._claimed_result(idempotency_key)
                if done is not None:  # a named run's retried creation: its name is taken by itself
                    return self.get_run(done), self.run_key(done)
                if attempt + 1 < attempts:
                    continue
                raise AlreadyExists(
                    f"a run named {row['name']!r} already exists in experiment {exp.name!r}; "
                    "choose another name or resume that run by id"
                ) from exc
        self._run_pks[run_id] = run_pk
        return run_from_row(row, tags=dict(tag_rows)), run_pk

    def _create_in_one(
        self, row: dict[str, Any], tag_rows: Sequence[tuple[str, str]], idempotency_key: str | None
    ) -> RunKey:
        assert self._one_statement is not None
        claim = None if idempotency_key is None else (idempotency_key, now_ms())
        sql, values = self._one_statement.create(row, tag_rows, claim)
        with self.db.write_raw(one_statement=True) as tx:
            run_pk = tx.scalar(sql, values)
            if claim is not None:
                self._count_claim(tx)
        if run_pk is None:
            raise _Retried
        return int(run_pk)

    def resume_run(self, run_id: str) -> tuple[Run, RunKey]:
        """Mark an existing run RUNNING again (to log more into it), beating from this process."""
        run = self.get_run(run_id)
        run_pk = self.run_key(run_id)
        with self.db.write() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.id == run_pk)
                .values(
                    status=RunStatus.RUNNING.value,
                    end_time=None,
                    heartbeat_at=now_ms(),
                    pid=os.getpid(),
                    host=host_name(),
                )
            )
        return self.get_run(run.run_id), run_pk

    def beat(self, run_keys: Iterable[RunKey]) -> None:
        """Record that this process is alive and still running ``run_keys`` (one UPDATE; ended runs are
        left alone). The metric writer's thread calls it every ``heartbeat_interval`` seconds."""
        pks = list(run_keys)
        if pks:
            with self.db.write() as conn:
                conn.execute(
                    runs.update()
                    .where(runs.c.id.in_(pks), runs.c.status == RunStatus.RUNNING.value)
                    .values(heartbeat_at=now_ms())
                )

    def run_key(self, run_id: str) -> RunKey:
        pk = self._run_pks.get(run_id)
        if pk is None:
            with self.db.read() as conn:
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

    def set_terminated(
        self,
        run_key: RunKey,
        status: RunStatus,
        pending: SeriesMap | None = None,
        *,
        idempotency_key: str | None = None,
        params: Mapping[RunKey, Mapping[str, Any]] | None = None,
    ) -> int:
        """End a run: write its last metric points (and buffered ``params`` of any run) and its terminal
        status in one transaction (the points once, however often a call with the same ``idempotency_key``
        is retried)."""
        checked = _checked_params(params)
        end = now_ms()
        chunk_rows, latest = _series_rows(pending or {})
        param_rows = [(pk, k, v) for pk, rows in checked.items() for k, v in rows]
        width = len(chunks.CHUNK_COLUMNS) * len(chunk_rows) + 5 * len(latest) + 3 * len(param_rows)
        if self._one_statement is not None and width <= run_statements.MAX_VALUES:
            claim = None
            if idempotency_key is not None and (chunk_rows or param_rows):
                claim = (idempotency_key, now_ms())
            sql, values = self._one_statement.end(
                (status.value, end, run_key), claim, param_rows, chunk_rows, latest
            )
            # Without params nothing can clash: the statement commits by itself.
            with self.db.write_raw(one_statement=not param_rows) as tx:
                if tx.scalar(sql, values) < len(param_rows):
                    self._check_params(tx, checked)
                if claim is not None:
                    self._count_claim(tx)
            return end
        with self.db.write_raw() as tx:
            if (pending or checked) and (idempotency_key is None or self._claim(tx, idempotency_key)):
                self._write_params(tx, checked)
                self._insert_series(tx, chunk_rows, latest)
            tx.execute(self._sql_end_run, (status.value, end, run_key))
        return end

    def run_status(self, run_key: RunKey) -> RunStatus:
        with self.db.read() as conn:
            value = conn.execute(sa.select(runs.c.status).where(runs.c.id == run_key)).scalar()
        if value is None:
            raise NotFound(f"run #{run_key} no longer exists")
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
        with self.db.write() as conn:
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
        return [v for found in versions_under(conn, folders).values() for v in found]

    def restore_run(self, run_id: str) -> None:
        self.get_run(run_id)
        with self.db.write() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.run_id == run_id)
                .values(lifecycle_stage=LifecycleStage.ACTIVE.value)
            )

    # ------------------------------------------------------------------ params and tags
    def log_params(self, run_key: RunKey, values: Mapping[str, Any]) -> None:
        """Record params. Re-logging a key with the same value is fine; a different value is a `Conflict`."""
        rows = _checked_rows(values, "param")
        if rows:
            with self.db.write_raw() as tx:
                self._write_params(tx, {run_key: rows})

    def _write_params(self, tx: RawTransaction, checked: Mapping[RunKey, list[tuple[str, str]]]) -> None:
        for run_key, rows in checked.items():
            if not rows:
                continue
            if tx.insert(self._insert_params, [(run_key, k, v) for k, v in rows]) < len(rows):
                self._check_params(tx, {run_key: rows})

    def _check_params(self, tx: RawTransaction, checked: Mapping[RunKey, list[tuple[str, str]]]) -> None:
        """Raise `Conflict` for the first param of ``checked`` stored with another value."""
        for run_key, rows in checked.items():
            stored: dict[str, str] = {}
            p = tx.mark
            for start in range(0, len(rows), _CHUNK):
                keys = [k for k, _ in rows[start : start + _CHUNK]]
                marks = ", ".join([p] * len(keys))
                sql = f"SELECT key, value FROM params WHERE run_pk = {p} AND key IN ({marks})"
                stored.update(tx.rows(sql, (run_key, *keys)))
            clashes = [(k, stored[k], v) for k, v in rows if stored.get(k) != v]
            if clashes:
                raise param_changed(*clashes[0])

    def set_tags(self, run_key: RunKey, values: Mapping[str, Any]) -> None:
        rows = _checked_rows(values, "tag")
        if rows:
            with self.db.write_raw() as tx:
                tx.insert(self._upsert_tags, [(run_key, k, v) for k, v in rows])

    def delete_tag(self, run_key: RunKey, key: str) -> None:
        with self.db.write() as conn:
            deleted = conn.execute(
                tags_table.delete().where(tags_table.c.run_pk == run_key, tags_table.c.key == key)
            ).rowcount
        if not deleted:
            raise NotFound(f"run has no tag {key!r}")

    # ------------------------------------------------------------------ metrics
    def write_metrics(
        self,
        pending: SeriesMap,
        *,
        idempotency_key: str | None = None,
        params: Mapping[RunKey, Mapping[str, Any]] | None = None,
    ) -> None:
        """Append buffered points (and buffered ``params``, per run) in one transaction and advance each
        key's latest value.

        A batch retried with the ``idempotency_key`` of one that was stored is not stored again.

        Raises:
            Conflict: a param already holds another value; nothing of the batch is stored.
        """
        checked = _checked_params(params)
        if not (pending or checked):
            return
        chunk_rows, latest = _series_rows(pending)
        if self._points_in_one(chunk_rows, latest) and not checked and idempotency_key is None:
            # A client logging point by point (MLflow's log_metric): one round trip per point.
            with self.db.write_raw(one_statement=True) as tx:
                tx.insert_both(self._insert_chunks, chunk_rows, self._upsert_latest, latest)
            return
        with self.db.write_raw() as tx:
            if idempotency_key is None or self._claim(tx, idempotency_key):
                self._write_params(tx, checked)
                self._insert_series(tx, chunk_rows, latest)

    def metrics_statement(self, pending: SeriesMap) -> tuple[str, list[Any]] | None:
        """What :meth:`write_metrics` runs for ``pending`` (no params, no idempotency key) when that is one
        PostgreSQL statement, atomic by itself — for a caller that sends it another way (the server's event
        loop, :mod:`shipyard.store.async_pg`); None when the write takes more than one."""
        chunk_rows, latest = _series_rows(pending)
        if not self._points_in_one(chunk_rows, latest):
            return None
        return both_statement(self._insert_chunks, chunk_rows, self._upsert_latest, latest)

    def _points_in_one(self, chunk_rows: Sequence[Any], latest: Sequence[Any]) -> bool:
        return (
            self.db.dialect == "postgresql"
            and 0 < len(chunk_rows) <= ROWS_PER_STATEMENT
            and 0 < len(latest) <= ROWS_PER_STATEMENT
        )

    def _few_runs(self, conn: Connection, experiment_ids: Sequence[str]) -> bool:
        """Whether the experiments hold a few thousand runs at most (counted no further than that), and
        under a tenth of the store's: then walking them beats walking a value index over every run."""
        some = sa.select(runs.c.id).where(runs.c.experiment_id.in_(list(experiment_ids)))
        counted = conn.execute(
            sa.select(sa.func.count()).select_from(some.limit(_FEW_RUNS + 1).subquery())
        ).scalar_one()
        if counted > _FEW_RUNS:
            return False
        # The highest id stands for the store's size: read off the primary key at once, where count(*)
        # scans the table (runs are never renumbered; deleted ones only make the store look bigger).
        return counted * 10 <= (conn.execute(sa.select(sa.func.max(runs.c.id))).scalar() or 0)

    def _claim(self, tx: RawTransaction, key: str, result: str | None = None) -> bool:
        """Record ``key`` in the caller's transaction; False when a committed write already holds it."""
        claimed = tx.execute(self._sql_claim_key, (key, now_ms(), result)) == 1
        self._count_claim(tx)
        return claimed

    def _count_claim(self, tx: RawTransaction) -> None:
        self._claims += 1
        if self._claims % _PRUNE_EVERY == 0:  # expired keys go now and then, in a claiming transaction
            tx.execute(self._sql_prune_keys, (now_ms() - _KEY_TTL_MS,))

    def _claimed_result(self, key: str) -> str | None:
        with self.db.read() as conn:
            return conn.execute(sa.select(request_keys.c.result).where(request_keys.c.key == key)).scalar()

    def _insert_series(
        self, tx: RawTransaction, chunk_rows: Sequence[tuple[Any, ...]], latest: Sequence[tuple[Any, ...]]
    ) -> None:
        if chunk_rows:
            tx.insert(self._insert_chunks, chunk_rows)
            tx.insert(self._upsert_latest, latest)

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of ``key`` in ``run_id``, ordered by step then time."""
        run_pk = self.run_key(run_id)
        query = (
            sa.select(metric_chunks.c.steps, metric_chunks.c["values"], metric_chunks.c.timestamps)
            .where(metric_chunks.c.run_pk == run_pk, metric_chunks.c.key == key)
            .order_by(metric_chunks.c.id)
        )
        with self.db.read() as conn:
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

    def latest_metrics(self, run_ids: Sequence[str]) -> dict[str, list[Metric]]:
        """Each run's latest point of every key (value, step, timestamp) by run id; ids of runs that are
        not there, or have no metrics, are left out."""
        ids = list(dict.fromkeys(run_ids))
        found: dict[str, list[Metric]] = {}
        with self.db.read() as conn:
            # A page of MLflow's search holds up to 50,000 runs: ids go in slices, under SQLite's bound on
            # a statement's variables.
            for start in range(0, len(ids), ROWS_PER_STATEMENT):
                query = (
                    sa.select(
                        runs.c.run_id,
                        latest_metrics.c.key,
                        latest_metrics.c.value,
                        latest_metrics.c.step,
                        latest_metrics.c.timestamp,
                    )
                    .join(runs, runs.c.id == latest_metrics.c.run_pk)
                    .where(runs.c.run_id.in_(ids[start : start + ROWS_PER_STATEMENT]))
                    .order_by(runs.c.run_id, latest_metrics.c.key)
                )
                for run_id, key, value, step, timestamp in conn.execute(query):
                    # NULL stands for NaN in latest_metrics (SQLite cannot store a NaN).
                    point = Metric(key, math.nan if value is None else value, step, timestamp)
                    found.setdefault(run_id, []).append(point)
        return found

    # ------------------------------------------------------------------ artifacts and datasets
    def record_artifacts(self, run_key: RunKey, files: Iterable[ArtifactRecord]) -> None:
        rows = [
            {"run_pk": run_key, "path": f.path, "size": f.size, "sha256": f.sha256, "created_at": now_ms()}
            for f in files
        ]
        if rows:
            stmt = self._upsert(artifacts, update=("size", "sha256", "created_at"))
            with self.db.write() as conn:
                conn.execute(stmt, rows)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactRecord]:
        run_pk = self.run_key(run_id)
        query = sa.select(artifacts.c.path, artifacts.c.size, artifacts.c.sha256).where(
            artifacts.c.run_pk == run_pk
        )
        if prefix:
            query = query.where(
                artifacts.c.path.startswith(prefix.rstrip("/") + "/", autoescape=True)
                | (artifacts.c.path == prefix)
            )
        with self.db.read() as conn:
            return [ArtifactRecord(*row) for row in conn.execute(query.order_by(artifacts.c.path)).all()]

    def log_dataset_input(self, run_key: RunKey, dataset: DatasetInput) -> None:
        row = {
            "run_pk": run_key,
            "name": dataset.name,
            "digest": dataset.digest,
            "source": dataset.source,
            "source_type": dataset.source_type,
            "num_rows": dataset.num_rows,
            "schema_json": json.dumps(dataset.schema, sort_keys=True, default=str),
            "context": dataset.context,
            "created_at": now_ms(),
        }
        with self.db.write() as conn:
            conn.execute(self._insert_ignore(dataset_inputs), [row])

    def dataset_inputs(self, run_id: str) -> list[DatasetInput]:
        run_pk = self.run_key(run_id)
        query = (
            sa.select(dataset_inputs).where(dataset_inputs.c.run_pk == run_pk).order_by(dataset_inputs.c.id)
        )
        with self.db.read() as conn:
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
        self.run_key(run_id)  # NotFound names the missing run
        where = (runs.c.parent_run_id == run_id, runs.c.lifecycle_stage == LifecycleStage.ACTIVE.value)
        with self.db.read() as conn:
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
        with self.db.read() as conn:
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

    def count_runs(self, experiment_ids: Sequence[str], filter: str | None) -> int:
        """How many active runs of ``experiment_ids`` match ``filter``."""
        return views.count_runs(self.db, experiment_ids, filter)

    def metric_arrays(self, run_ids: Sequence[str], key: str) -> dict[str, views.Arrays]:
        """Metric ``key`` of each of ``run_ids`` that has it: (steps, values, timestamps) arrays."""
        return views.metric_arrays(self.db, run_ids, key)

    def search_page(
        self,
        experiment_ids: Sequence[str],
        filter: str | None,
        order_by: Sequence[str] | None,
        *,
        offset: int = 0,
        limit: int,
        columns: Sequence[str] | None,
        include_deleted: bool,
        after: SearchCursor | None = None,
    ) -> RunPage:
        """One page of a search: the runs of ``experiment_ids`` matching ``filter`` in ``order_by`` order,
        ``limit`` of them from row ``offset`` or strictly after the cursor ``after``, with only the
        ``columns`` keys loaded (all when None); the page's ``next_cursor`` is set when more rows follow.

        Raises:
            FilterSyntaxError: a filter or order that does not parse (token and position named).
            InvalidInput: an offset with a cursor, or a cursor whose values do not fit the order.
        """
        keys = parse_order_by(order_by)
        with self.db.read() as conn:
            statement = build_search_statement(
                experiment_ids,
                parse_filter(filter),
                keys,
                lifecycle_stage=None if include_deleted else LifecycleStage.ACTIVE.value,
                offset=offset,
                limit=limit + 1 if limit > 0 else limit,  # one more tells whether a next page exists
                dialect_name=self.db.dialect,
                few_runs=self.db.dialect == "sqlite" and self._few_runs(conn, experiment_ids),
                after=after,
            )
            rows = [row._mapping for row in conn.execute(statement)]
            next_cursor = cursor_after(rows[limit - 1], keys) if len(rows) > limit else None
            found = hydrate_runs(conn, rows[:limit], parse_columns(columns), stale_before(self.settings))
        return RunPage(found, next_cursor)

    # ------------------------------------------------------------------ garbage and lost runs
    def _garbage(self, cutoff: int) -> Garbage:
        """Experiments deleted (last updated) at or before ``cutoff`` (epoch ms), runs deleted that started
        at or before it or belong to those experiments, and the registered versions whose packages lie in
        those runs' folders."""
        deleted = LifecycleStage.DELETED.value
        with self.db.read() as conn:
            doomed_experiments = conn.execute(
                sa.select(experiments.c.experiment_id, experiments.c.artifact_location).where(
                    experiments.c.lifecycle_stage == deleted, experiments.c.updated_at <= cutoff
                )
            ).all()
            experiment_ids = [row[0] for row in doomed_experiments]
            doomed_runs = conn.execute(
                sa.select(runs.c.id, runs.c.artifact_uri, runs.c.experiment_id).where(
                    sa.or_(
                        sa.and_(runs.c.lifecycle_stage == deleted, runs.c.start_time <= cutoff),
                        runs.c.experiment_id.in_(experiment_ids),
                    )
                )
            ).all()
            folders = [(pk, uri.removesuffix("/artifacts").rstrip("/"), eid) for pk, uri, eid in doomed_runs]
            protected = versions_under(conn, [folder for _, folder, _ in folders])
        return Garbage(
            experiments=[(eid, location) for eid, location in doomed_experiments],
            runs=folders,
            protected=protected,
        )

    def _purge(self, run_keys: Sequence[RunKey], experiment_ids: Sequence[str]) -> None:
        """Remove these runs' and experiments' records for good (their child rows go with them)."""
        keys = list(run_keys)
        with self.db.write() as conn:
            # Child rows go by ON DELETE CASCADE (foreign keys are enforced on SQLite too).
            for start in range(0, len(keys), _CHUNK):
                conn.execute(runs.delete().where(runs.c.id.in_(keys[start : start + _CHUNK])))
            if experiment_ids:
                conn.execute(
                    experiments.delete().where(experiments.c.experiment_id.in_(list(experiment_ids)))
                )
        self._forget_keys(keys)

    def _stale_runs(self, cutoff: int) -> list[Run]:
        """RUNNING runs whose last heartbeat is older than ``cutoff`` (epoch ms), oldest first, with tags."""
        query = sa.select(runs).where(
            runs.c.status == RunStatus.RUNNING.value,
            runs.c.heartbeat_at.is_not(None),
            runs.c.heartbeat_at < cutoff,
        )
        with self.db.read() as conn:
            rows = [row._mapping for row in conn.execute(query.order_by(runs.c.start_time))]
            return hydrate_runs(conn, rows, {"tags": None}, stale_before=cutoff)

    def _end_if_stale(self, run_key: RunKey, cutoff: int, end_time: int) -> bool:
        """End the run KILLED at ``end_time`` if it is still RUNNING with a heartbeat older than ``cutoff``
        (it may have beaten again since it was read); whether it was ended."""
        with self.db.write() as conn:
            ended = conn.execute(
                runs.update()
                .where(
                    runs.c.id == run_key,
                    runs.c.status == RunStatus.RUNNING.value,
                    runs.c.heartbeat_at < cutoff,
                )
                .values(status=RunStatus.KILLED.value, end_time=end_time)
            ).rowcount
        return bool(ended)

    def collect_garbage(self, *, older_than_ms: int = 0, dry_run: bool = False) -> GcReport:
        """Purge runs and experiments deleted at least ``older_than_ms`` ago (by start/update time), with
        their artifact folders.

        A folder holding a registered version's package is never removed (the version references it, not
        the run): such a run and its experiment stay deleted but unpurged, ``kept`` names the versions, and a
        later collection purges them once no version references the folder.
        """
        found = self._garbage(now_ms() - older_than_ms)
        protected = found.protected
        # A run whose folder holds a registered package stays (deleted, with its experiment) until no version
        # references it, so a later collection removes its records and folder together.
        kept_runs = [folder for _, folder, _ in found.runs if folder in protected]
        kept_experiments = {experiment for _, folder, experiment in found.runs if folder in protected}
        purged_runs = [(key, folder) for key, folder, _ in found.runs if folder not in protected]
        purged_experiments = [
            (eid, location) for eid, location in found.experiments if eid not in kept_experiments
        ]
        kept = tuple(
            sorted({v.describe() for versions in protected.values() for v in versions}, key=str.casefold)
        )
        if dry_run:
            return GcReport(len(purged_runs), len(purged_experiments), len(purged_runs), True, kept)
        self._purge([key for key, _ in purged_runs], [eid for eid, _ in purged_experiments])
        removed = sum(_remove_tree(self.settings, folder) for _, folder in purged_runs)
        for folder in kept_runs:
            log.info("kept %s: it holds %s", folder, backing.describe_all(protected[folder]))
        for _, location in purged_experiments:
            _remove_tree(self.settings, location)
        return GcReport(len(purged_runs), len(purged_experiments), removed, False, kept)

    def mark_stale_runs(self, *, timeout_s: float | None = None, dry_run: bool = False) -> list[Run]:
        """End every RUNNING run whose heartbeat is older than ``timeout_s`` (default: the heartbeat
        timeout) KILLED, at its last heartbeat, tagged with the process that stopped beating.

        A run that beats again between the read and the update (a paused, not dead, process) is left
        RUNNING: the update re-checks the heartbeat.

        Returns:
            The runs marked (or, with ``dry_run``, those that would be), as they were before.
        """
        cutoff = stale_before(self.settings) if timeout_s is None else now_ms() - int(timeout_s * 1000)
        found = self._stale_runs(cutoff)
        if dry_run:
            return found
        marked = []
        for run in found:
            assert run.heartbeat_at is not None
            key = self.run_key(run.run_id)
            if self._end_if_stale(key, cutoff, run.heartbeat_at):
                last = datetime.fromtimestamp(run.heartbeat_at / 1000, tz=UTC).strftime(
                    "%Y-%m-%d %H:%M:%S UTC"
                )
                who = f"process {run.process}" if run.process else "its process"
                self.set_tags(
                    key, {STALE_TAG: f"{who} stopped beating at {last}; ended by shipyard gc --stale"}
                )
                marked.append(run)
        return marked

    def _forget_keys(self, run_keys: Iterable[RunKey]) -> None:
        """Drop purged runs from the id → key cache (one pass, however many runs a collection purges)."""
        gone = set(run_keys)
        for run_id in [run_id for run_id, pk in self._run_pks.items() if pk in gone]:
            del self._run_pks[run_id]

    def _load_runs(self, query: sa.Select) -> list[Run]:
        with self.db.read() as conn:
            rows = [row._mapping for row in conn.execute(query)]
            return hydrate_runs(conn, rows, stale_before=stale_before(self.settings))

    # ------------------------------------------------------------------ helpers
    def _insert_ignore(self, table: sa.Table) -> Any:
        return dialect.insert_ignore(self.db, table)

    def _upsert(self, table: sa.Table, update: Sequence[str] = ("value",)) -> Any:
        return dialect.upsert(self.db, table, update)


def acting_user() -> str | None:
    """Who records are by: on a platform server, the signed-in user of the request; else the OS user."""
    return ACTOR.get() or _os_user()


@functools.cache
def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return None


def _series_rows(pending: SeriesMap) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The history chunks and latest-value rows of ``pending``: one of each per (run, key), not per point."""
    chunk_rows: list[tuple[Any, ...]] = []
    latest: list[tuple[Any, ...]] = []
    for (run_pk, key), series in pending.items():
        if not len(series):
            continue
        chunk_rows.extend(chunks.encode_series(run_pk, key, series))
        value, step, timestamp = chunks.latest_of(series)
        # NULL stands for NaN in latest_metrics (SQLite cannot store a NaN).
        latest.append((run_pk, key, None if value != value else value, step, timestamp))
    return chunk_rows, latest


def _checked_params(
    params: Mapping[RunKey, Mapping[str, Any]] | None,
) -> dict[RunKey, list[tuple[str, str]]]:
    return {k: _checked_rows(v, "param") for k, v in (params or {}).items() if v}


def _checked_rows(values: Mapping[str, Any], what: str) -> list[tuple[str, str]]:
    # A value that cannot be stored raises here, before any row of the mapping is written.
    return list(checked_texts(values, what).items())


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


def hydrate_runs(
    conn: Connection,
    rows: Sequence[Mapping[str, Any]],
    columns: Mapping[str, set[str] | None] | None = None,
    stale_before: int | None = None,
) -> list[Run]:
    """Build `Run` records for ``rows`` (of the runs table), loading only the requested keys; RUNNING runs
    whose heartbeat is older than ``stale_before`` (epoch ms) are marked ``lost``."""
    if not rows:
        return []
    wanted = columns if columns is not None else {"params": None, "metrics": None, "tags": None}
    pks = [row["id"] for row in rows]
    values: dict[str, dict[int, dict[str, Any]]] = {}
    for kind, table in (("params", params), ("metrics", latest_metrics), ("tags", tags_table)):
        per_run: dict[int, dict[str, Any]] = {pk: {} for pk in pks}
        values[kind] = per_run
        if kind not in wanted:
            continue
        keys = wanted[kind]
        for start in range(0, len(pks), _CHUNK):
            query = sa.select(table.c.run_pk, table.c.key, table.c.value).where(
                table.c.run_pk.in_(pks[start : start + _CHUNK])
            )
            if keys is not None:
                query = query.where(table.c.key.in_(sorted(keys)))
            for run_pk, key, value in conn.execute(query):
                per_run[run_pk][key] = (math.nan if value is None else value) if kind == "metrics" else value
    return [
        run_from_row(
            row,
            stale_before,
            params=values["params"][row["id"]],
            metrics=values["metrics"][row["id"]],
            tags=values["tags"][row["id"]],
        )
        for row in rows
    ]


def run_from_row(row: Mapping[str, Any], stale_before: int | None = None, **values: Mapping[str, Any]) -> Run:
    """A `Run` from a row of the runs table, with ``params``/``metrics``/``tags`` when given; it is ``lost``
    when RUNNING with a heartbeat older than ``stale_before`` (epoch ms; see :func:`stale_before`)."""
    status = RunStatus(row["status"])
    heartbeat = row.get("heartbeat_at")
    return Run(
        run_id=row["run_id"],
        experiment_id=row["experiment_id"],
        name=row["name"],
        status=status,
        start_time=row["start_time"],
        end_time=row["end_time"],
        artifact_uri=row["artifact_uri"],
        lifecycle_stage=LifecycleStage(row["lifecycle_stage"]),
        parent_run_id=row["parent_run_id"],
        user=row["user"],
        heartbeat_at=heartbeat,
        pid=row.get("pid"),
        host=row.get("host"),
        lost=is_lost(status, heartbeat, stale_before),
        **values,
    )


def versions_under(conn: Connection, roots: Iterable[str]) -> dict[str, list[BackedVersion]]:
    """The versions whose package lies in (or is) one of ``roots`` (artifact folder URIs or local paths), by
    root as given (without a trailing slash)."""
    wanted = {backing.canonical(root): root.rstrip("/") for root in roots}
    if not wanted:
        return {}
    aliases: dict[int, list[str]] = defaultdict(list)
    for pk, alias in conn.execute(sa.select(model_aliases.c.version_pk, model_aliases.c.alias)):
        aliases[pk].append(alias)
    query = sa.select(
        model_versions.c.id,
        registered_models.c.name,
        model_versions.c.version,
        model_versions.c.stage,
        model_versions.c.package_uri,
    ).join(registered_models, registered_models.c.model_id == model_versions.c.model_id)
    found: dict[str, list[BackedVersion]] = defaultdict(list)
    # NOTE: a registry holds thousands of versions at most; matching prefixes here keeps the SQL portable.
    for pk, name, version, stage, package_uri in conn.execute(query):
        for root in backing.containing_roots(backing.canonical(package_uri), wanted):
            found[wanted[root]].append(
                BackedVersion(name, version, stage, tuple(sorted(aliases[pk])), package_uri)
            )
    return dict(found)


def _remove_tree(settings: Settings, uri: str) -> int:
    try:
        store = ArtifactStore.configured(settings, uri)
        if store.exists(""):
            store.delete("")
            return 1
    except ShipyardError as exc:  # metadata is gone already; leftover files are only disk space
        log.warning("could not remove artifacts at %s: %s", uri, exc)
    return 0
