"""Reading an MLflow SQL store (``sqlite:///…``, ``postgresql://…``, ``mysql://…``) with SQLAlchemy alone.

The tables are MLflow's own (checked against MLflow 3.17's schema); tables a store made by an older MLflow
lacks (``logged_models``, ``datasets``, ``registered_model_aliases``) read as empty. Nothing is written.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from shipyard.errors import InvalidInput, StoreError
from shipyard.importers.mlflow.records import (
    MlflowDataset,
    MlflowExperiment,
    MlflowLoggedModel,
    MlflowModelVersion,
    MlflowRegisteredModel,
    MlflowRun,
    MlflowRunData,
)
from shipyard.importers.mlflow.source import on_disk
from shipyard.tracking.chunks import Series

_CHUNK = 500  # run ids per IN (...) list
_LOGGED_MODEL_STATUS = {0: "UNSPECIFIED", 1: "PENDING", 2: "READY", 3: "FAILED"}


class SqlSource:
    """An MLflow tracking database. ``uri`` is SQLAlchemy's URL (MLflow's tracking URI as is)."""

    kind = "sql"

    def __init__(self, uri: str) -> None:
        self.uri = uri
        try:
            url = sa.engine.make_url(uri)
        except sa.exc.ArgumentError as exc:
            raise InvalidInput(f"{uri!r} is not a database URL: {_one_line(exc)}") from exc
        if url.get_backend_name() == "sqlite" and not (url.database and Path(url.database).is_file()):
            # SQLite would create an empty database there; an import reads, it never makes a store.
            raise InvalidInput(f"MLflow store {uri!r}: no database file {url.database!r}")
        try:
            self.engine = sa.create_engine(uri)
            self.tables = set(sa.inspect(self.engine).get_table_names())
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreError(f"cannot open the MLflow store {uri!r}: {_one_line(exc)}") from exc
        if not {"experiments", "runs", "metrics"} <= self.tables:
            raise InvalidInput(
                f"{uri!r} is not an MLflow tracking database (it has no experiments/runs tables)"
            )

    def fetch_artifacts(
        self, uri: str, artifacts_destination: str | None
    ) -> contextlib.AbstractContextManager[Path | None]:
        return on_disk(uri, artifacts_destination)

    def close(self) -> None:
        self.engine.dispose()

    def _rows(self, sql: str, **params: Any) -> list[Any]:
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(sa.text(sql), params))
        except SQLAlchemyError as exc:
            raise StoreError(f"reading the MLflow store {self.uri!r} failed: {_one_line(exc)}") from exc

    def _by_ids(self, sql: str, ids: Sequence[str]) -> Iterator[Any]:
        """Rows of ``sql`` (with ``IN :ids``) for ``ids``, a bounded list at a time."""
        for start in range(0, len(ids), _CHUNK):
            statement = sa.text(sql).bindparams(sa.bindparam("ids", expanding=True))
            try:
                with self.engine.connect() as conn:
                    # fetchall: a row at a time through the result costs more than the query itself.
                    yield from conn.execute(statement, {"ids": list(ids[start : start + _CHUNK])}).fetchall()
            except SQLAlchemyError as exc:
                raise StoreError(f"reading the MLflow store {self.uri!r} failed: {_one_line(exc)}") from exc

    # ------------------------------------------------------------------ tracking
    def experiments(self) -> list[MlflowExperiment]:
        tags: dict[str, dict[str, str]] = defaultdict(dict)
        if "experiment_tags" in self.tables:
            for key, value, experiment_id in self._rows(
                "SELECT key, value, experiment_id FROM experiment_tags"
            ):
                tags[str(experiment_id)][key] = value
        rows = self._rows(
            "SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time "
            "FROM experiments ORDER BY experiment_id"
        )
        return [
            MlflowExperiment(str(r[0]), r[1], r[2] or "", r[3] or "active", r[4], r[5], tags[str(r[0])])
            for r in rows
        ]

    def runs(self, experiment_id: str) -> list[MlflowRun]:
        rows = self._rows(
            "SELECT run_uuid, name, user_id, status, start_time, end_time, lifecycle_stage, artifact_uri "
            "FROM runs WHERE experiment_id = :e ORDER BY start_time, run_uuid",
            e=int(experiment_id) if experiment_id.isdigit() else experiment_id,
        )
        return [
            MlflowRun(
                r[0], experiment_id, r[1], r[2], r[3] or "FINISHED", r[4], r[5], r[6] or "active", r[7] or ""
            )
            for r in rows
        ]

    def run_data(self, runs: Sequence[MlflowRun]) -> dict[str, MlflowRunData]:
        """Params, tags, full metric histories and dataset inputs of ``runs``, a few queries per 500 runs."""
        ids = [r.run_id for r in runs]
        params: dict[str, dict[str, str]] = defaultdict(dict)
        tags: dict[str, dict[str, str]] = defaultdict(dict)
        metrics: dict[str, dict[str, Series]] = defaultdict(dict)
        for run_id, key, value in self._by_ids(
            "SELECT run_uuid, key, value FROM params WHERE run_uuid IN :ids", ids
        ):
            params[run_id][key] = value
        for run_id, key, value in self._by_ids(
            "SELECT run_uuid, key, value FROM tags WHERE run_uuid IN :ids", ids
        ):
            tags[run_id][key] = value
        # In (run, key, step) order, MLflow's own index: each series is one group, its columns filled at once.
        query = (
            "SELECT run_uuid, key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid IN :ids "
            "ORDER BY run_uuid, key, step, timestamp"
        )
        for (run_id, key), group in itertools.groupby(self._by_ids(query, ids), key=lambda r: (r[0], r[1])):
            rows = list(group)
            series = metrics[run_id][key] = Series()
            series.steps.extend(int(r[4] or 0) for r in rows)
            series.values.extend(math.nan if r[5] else float(r[2]) for r in rows)
            series.timestamps.extend(int(r[3] or 0) for r in rows)
        datasets = self._datasets(ids)
        return {
            run_id: MlflowRunData(params[run_id], tags[run_id], metrics[run_id], tuple(datasets[run_id]))
            for run_id in ids
        }

    def _datasets(self, ids: Sequence[str]) -> dict[str, list[MlflowDataset]]:
        out: dict[str, list[MlflowDataset]] = defaultdict(list)
        if not {"datasets", "inputs"} <= self.tables:
            return out
        input_tags: dict[str, dict[str, str]] = defaultdict(dict)
        query = (
            "SELECT i.destination_id, i.input_uuid, d.name, d.digest, d.dataset_source_type, "
            "d.dataset_source, d.dataset_schema, d.dataset_profile "
            "FROM inputs i JOIN datasets d ON d.dataset_uuid = i.source_id "
            "WHERE i.source_type = 'DATASET' AND i.destination_type = 'RUN' AND i.destination_id IN :ids "
            "ORDER BY i.input_uuid"
        )
        found = list(self._by_ids(query, ids))
        if "input_tags" in self.tables and found:
            tag_query = "SELECT input_uuid, name, value FROM input_tags WHERE input_uuid IN :ids"
            for input_id, key, value in self._by_ids(tag_query, [r[1] for r in found]):
                input_tags[input_id][key] = value
        for run_id, input_id, name, digest, source_type, source, schema, profile in found:
            out[run_id].append(
                MlflowDataset(name, digest, source_type, source, schema, profile, input_tags[input_id])
            )
        return out

    def logged_models(self) -> list[MlflowLoggedModel]:
        if "logged_models" not in self.tables:
            return []
        extras: dict[str, dict[str, Any]] = defaultdict(lambda: {"params": {}, "tags": {}, "metrics": []})
        if "logged_model_params" in self.tables:
            for model_id, key, value in self._rows(
                "SELECT model_id, param_key, param_value FROM logged_model_params"
            ):
                extras[model_id]["params"][key] = value
        if "logged_model_tags" in self.tables:
            for model_id, key, value in self._rows(
                "SELECT model_id, tag_key, tag_value FROM logged_model_tags"
            ):
                extras[model_id]["tags"][key] = value
        if "logged_model_metrics" in self.tables:
            query = (
                "SELECT model_id, metric_name, metric_value, metric_step, metric_timestamp_ms "
                "FROM logged_model_metrics ORDER BY model_id, metric_name, metric_step, metric_timestamp_ms"
            )
            for model_id, key, value, step, timestamp in self._rows(query):
                extras[model_id]["metrics"].append((key, float(value), int(step or 0), int(timestamp or 0)))
        rows = self._rows(
            "SELECT model_id, experiment_id, name, artifact_location, source_run_id, status, "
            "lifecycle_stage, "
            "creation_timestamp_ms FROM logged_models ORDER BY creation_timestamp_ms, model_id"
        )
        return [
            MlflowLoggedModel(
                model_id=r[0],
                experiment_id=str(r[1]),
                name=r[2],
                artifact_location=r[3] or "",
                source_run_id=r[4],
                status=_LOGGED_MODEL_STATUS.get(r[5], str(r[5])) if isinstance(r[5], int) else str(r[5]),
                lifecycle_stage=r[6] or "active",
                creation_time=r[7],
                params=extras[r[0]]["params"],
                tags=extras[r[0]]["tags"],
                metrics=tuple(extras[r[0]]["metrics"]),
            )
            for r in rows
        ]

    # ------------------------------------------------------------------ registry
    def registered_models(self) -> list[MlflowRegisteredModel]:
        if "registered_models" not in self.tables:
            return []
        model_tags: dict[str, dict[str, str]] = defaultdict(dict)
        version_tags: dict[tuple[str, int], dict[str, str]] = defaultdict(dict)
        aliases: dict[str, dict[str, int]] = defaultdict(dict)
        for key, value, name in self._rows("SELECT key, value, name FROM registered_model_tags"):
            model_tags[name][key] = value
        for key, value, name, version in self._rows(
            "SELECT key, value, name, version FROM model_version_tags"
        ):
            version_tags[(name, int(version))][key] = value
        if "registered_model_aliases" in self.tables:
            for alias, version, name in self._rows(
                "SELECT alias, version, name FROM registered_model_aliases"
            ):
                aliases[name][alias] = int(version)
        versions: dict[str, list[MlflowModelVersion]] = defaultdict(list)
        location = "storage_location" if "storage_location" in self._columns("model_versions") else "NULL"
        query = (
            "SELECT name, version, description, user_id, current_stage, source, run_id, status, "
            f"{location}, creation_time, last_updated_time FROM model_versions ORDER BY name, version"
        )
        for r in self._rows(query):
            versions[r[0]].append(
                MlflowModelVersion(
                    name=r[0],
                    version=int(r[1]),
                    description=r[2],
                    user_id=r[3],
                    stage=r[4] or "None",
                    source=r[5] or "",
                    run_id=r[6] or None,
                    status=r[7] or "READY",
                    storage_location=r[8],
                    creation_time=r[9],
                    last_updated_time=r[10],
                    tags=version_tags[(r[0], int(r[1]))],
                )
            )
        rows = self._rows(
            "SELECT name, description, creation_time, last_updated_time FROM registered_models ORDER BY name"
        )
        return [
            MlflowRegisteredModel(
                r[0], r[1], r[2], r[3], model_tags[r[0]], aliases[r[0]], tuple(versions[r[0]])
            )
            for r in rows
        ]

    def _columns(self, table: str) -> set[str]:
        return {c["name"] for c in sa.inspect(self.engine).get_columns(table)}


def _one_line(exc: BaseException) -> str:
    """A driver's error without SQLAlchemy's background link and the driver's hint lines."""
    original = getattr(exc, "orig", None) or exc
    return str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
