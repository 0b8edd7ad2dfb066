"""The UI benchmark's data, written straight into each store's SQL tables: the same runs, params, metrics
and metric histories in Shipyard's store and in MLflow's.

Writing through either tracking API would take the better part of an hour at 100,000 runs of 40 values
each; executemany in a few large transactions takes a minute or two. Each store gets what its own client
would have stored for the same runs:

- Shipyard: a ``runs`` row (an integer key chosen here), ``params``, ``latest_metrics`` and one
  ``metric_chunks`` row per (run, key) holding its points (:func:`shipyard.tracking.chunks.encode_series`).
- MLflow 3: a ``runs`` row, ``params``, the ``mlflow.runName`` tag its client sets, ``latest_metrics`` and
  one ``metrics`` row per point (its schema: ``mlflow/store/tracking/dbmodels/models.py``), on a database
  whose tables its ``SqlAlchemyStore`` created.

Every value comes from :func:`table_run` and :func:`curve` (seeded, deterministic), so both stores hold the
same numbers. Nothing here measures anything.
"""

from __future__ import annotations

import random
import sqlite3
import struct
import uuid
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PARAMS, METRICS = 20, 20
CURVES = ("loss", "acc")  # the metrics with a history in the compare experiment
CHUNK_RUNS = 10_000  # runs per transaction
MLFLOW_USER = "bench"


@dataclass(frozen=True)
class TableRun:
    """One run of a runs-table experiment: its name, times, 20 params and 20 latest metric values."""

    name: str
    start_time: int
    end_time: int
    params: list[tuple[str, str]]
    metrics: list[tuple[str, float]]


def table_run(rng: random.Random, index: int, base_ms: int) -> TableRun:
    params = [(f"p{j:02d}", f"v{rng.randrange(50)}-{j}") for j in range(PARAMS)]
    metrics = [(f"m{j:02d}", rng.random()) for j in range(METRICS)]
    start = base_ms + index * 10
    return TableRun(f"run-{index:06d}", start, start + 5 + rng.randrange(5000), params, metrics)


def table_runs(count: int, seed: int, base_ms: int) -> Iterator[list[TableRun]]:
    """``count`` runs in lists of :data:`CHUNK_RUNS`."""
    rng = random.Random(seed)
    for first in range(0, count, CHUNK_RUNS):
        yield [table_run(rng, i, base_ms) for i in range(first, min(first + CHUNK_RUNS, count))]


def curve(run_index: int, key: str, steps: int) -> np.ndarray:
    """A run's history of ``key``: a decaying loss or a rising accuracy with seeded noise."""
    rng = np.random.default_rng(1000 * run_index + CURVES.index(key))
    x = np.arange(steps, dtype=np.float64)
    rate = 1.0 + (run_index % 17) / 4.0
    shape = np.exp(-rate * x / max(steps, 1))
    noise = rng.normal(0.0, 0.02, steps)
    return shape + noise if key == "loss" else 1.0 - 0.9 * shape + noise


def curve_times(base_ms: int, steps: int) -> np.ndarray:
    return base_ms + np.arange(steps, dtype=np.int64) * 100


# ---------------------------------------------------------------------- Shipyard
_SY_RUNS = (
    'INSERT INTO runs (id, run_id, experiment_id, name, status, parent_run_id, "user", start_time, end_time, '
    "artifact_uri, lifecycle_stage) VALUES (?, ?, ?, ?, 'FINISHED', ?, ?, ?, ?, ?, 'active')"
)
_SY_PARAMS = "INSERT INTO params (run_pk, key, value) VALUES (?, ?, ?)"
_SY_TAGS = "INSERT INTO tags (run_pk, key, value) VALUES (?, ?, ?)"
_SY_LATEST = 'INSERT INTO latest_metrics (run_pk, key, value, step, "timestamp") VALUES (?, ?, ?, ?, ?)'
_SY_CHUNKS = (
    'INSERT INTO metric_chunks (run_pk, key, count, min_step, max_step, steps, "values", timestamps) '
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


class ShipyardSeeder:
    """Bulk writes into the SQLite store of ``settings`` (experiments made through its client)."""

    def __init__(self, settings: Any) -> None:
        from shipyard.store.db import open_store
        from shipyard.tracking.client import TrackingClient

        self.settings = settings
        self.client = TrackingClient(settings)
        self.store = open_store(settings.db_url)

    def _experiment(self, name: str) -> tuple[str, str]:
        exp = self.client.get_or_create_experiment(name)
        return exp.experiment_id, exp.artifact_location.rstrip("/")

    def _next_pk(self) -> int:
        with self.store.write_raw() as tx:
            return int(tx.scalar("SELECT COALESCE(MAX(id), 0) FROM runs")) + 1

    def _write(self, statements: Sequence[tuple[str, Sequence[tuple[Any, ...]]]]) -> None:
        """Run each (sql, rows) with executemany, all in one transaction."""
        with self.store.write_raw() as tx:
            for sql, rows in statements:
                tx.executemany(sql, rows)

    def table(self, experiment: str, count: int, seed: int, base_ms: int) -> tuple[str, list[str]]:
        """An experiment of ``count`` runs; its id and its run ids (in index order)."""
        exp_id, location = self._experiment(experiment)
        pk = self._next_pk()
        run_ids: list[str] = []
        for runs in table_runs(count, seed, base_ms):
            run_rows, params, latest, chunks = [], [], [], []
            for run in runs:
                run_id = uuid.uuid4().hex
                run_ids.append(run_id)
                run_rows.append(
                    (pk, run_id, exp_id, run.name, None, MLFLOW_USER, run.start_time, run.end_time,
                     f"{location}/{run_id}/artifacts")
                )  # fmt: skip
                params += [(pk, k, v) for k, v in run.params]
                for key, value in run.metrics:
                    latest.append((pk, key, value, 0, run.end_time))
                    chunks.append(one_point_chunk(pk, key, value, run.end_time))
                pk += 1
            self._write(
                [(_SY_RUNS, run_rows), (_SY_PARAMS, params), (_SY_LATEST, latest), (_SY_CHUNKS, chunks)]
            )
        return exp_id, run_ids

    def curves(self, experiment: str, count: int, steps: int, base_ms: int) -> tuple[str, list[str]]:
        """An experiment of ``count`` runs with a ``steps``-point history of each of :data:`CURVES` (and 3
        params); its id and run ids."""
        from shipyard.tracking.chunks import Series, encode_series

        exp_id, location = self._experiment(experiment)
        pk = self._next_pk()
        stamps = curve_times(base_ms, steps)
        step_col = array("q", range(steps))
        stamp_col = array("q", stamps.tolist())
        run_ids: list[str] = []
        per_tx = max(1, 2_000_000 // max(steps, 1))  # about 2 million points a transaction
        for first in range(0, count, per_tx):
            run_rows, params, latest, chunks = [], [], [], []
            for i in range(first, min(first + per_tx, count)):
                run_id = uuid.uuid4().hex
                run_ids.append(run_id)
                run_rows.append(
                    (pk, run_id, exp_id, f"curve-{i:04d}", None, MLFLOW_USER, base_ms + i, int(stamps[-1]),
                     f"{location}/{run_id}/artifacts")
                )  # fmt: skip
                params += [(pk, k, v) for k, v in curve_params(i)]
                for key in CURVES:
                    values = curve(i, key, steps)
                    series = Series()
                    series.steps, series.timestamps = step_col, stamp_col
                    series.values = array("d", values.tobytes())
                    chunks += encode_series(pk, key, series)
                    latest.append((pk, key, float(values[-1]), steps - 1, int(stamps[-1])))
                pk += 1
            self._write(
                [(_SY_RUNS, run_rows), (_SY_PARAMS, params), (_SY_LATEST, latest), (_SY_CHUNKS, chunks)]
            )
        return exp_id, run_ids

    def pipeline(self, experiment: str, spec_yaml: str, step_names: Sequence[str], base_ms: int) -> str:
        """A finished pipeline run of ``step_names``, as an executor would have left it: the parent run
        (tagged ``shipyard.pipeline``, its spec as the ``pipeline.yaml`` artifact) made through the client,
        then one FINISHED step run per step (tagged ``shipyard.step``) written straight into the store."""
        from shipyard.pipelines.executors.engine import PIPELINE_FILE
        from shipyard.pipelines.run_status import PIPELINE_TAG, STEP_TAG
        from shipyard.tracking import start_run
        from shipyard.tracking.records import PIPELINE_RUN_TAG

        with start_run(experiment, "dag-2000", settings=self.settings, log_system_metrics=False) as run:
            run.set_tags({PIPELINE_TAG: "wide"})
            run.log_text(spec_yaml, PIPELINE_FILE)
            parent = run.run_id
        exp_id, location = self._experiment(experiment)
        pk = self._next_pk()
        run_rows, tags = [], []
        for i, step in enumerate(step_names):
            run_id = uuid.uuid4().hex
            start = base_ms + i * 20
            run_rows.append(
                (pk, run_id, exp_id, f"dag-2000.{step}", parent, MLFLOW_USER, start, start + 15,
                 f"{location}/{run_id}/artifacts")
            )  # fmt: skip
            tags += [(pk, STEP_TAG, step), (pk, PIPELINE_RUN_TAG, parent), (pk, "shipyard.attempts", "1")]
            pk += 1
        self._write([(_SY_RUNS, run_rows), (_SY_TAGS, tags)])
        return parent

    def close(self) -> None:
        self.store.engine.dispose()


def curve_params(index: int) -> list[tuple[str, str]]:
    return [("lr", f"{10 ** -(1 + index % 4):g}"), ("batch", str(32 << (index % 3))), ("seed", str(index))]


# ---------------------------------------------------------------------- the 2,000-step pipeline
def wide_pipeline(size: int, chains: int = 40) -> tuple[str, list[str]]:
    """A pipeline spec of ``size`` distinct steps (YAML) and its step names in spec order: ``ingest``,
    then ``chains`` parallel chains of different steps (each link after the one before it, every 7th also
    after its neighbour chain's link: a cross edge), a ``join`` after every chain's end, and a tail chain
    that makes up the exact size. No loops, so the run page folds nothing."""
    from shipyard.pipelines.spec import ComponentRef, PipelineSpec, StepSpec

    length = (size - 2) // chains
    order: list[tuple[str, tuple[str, ...]]] = [("ingest", ())]
    for depth in range(length):
        for c in range(chains):
            after = ("ingest",) if depth == 0 else (f"c{c:02d}_s{depth - 1:03d}",)
            if depth and depth % 7 == 0 and c:
                after += (f"c{c - 1:02d}_s{depth - 1:03d}",)
            order.append((f"c{c:02d}_s{depth:03d}", after))
    last: tuple[str, ...] = tuple(f"c{c:02d}_s{length - 1:03d}" for c in range(chains))
    order.append(("join", last))
    while len(order) < size:
        name = f"tail_{len(order):04d}"
        order.append((name, (order[-1][0],)))
    steps = {
        name: StepSpec(
            component=ComponentRef("bench_steps", name, "0" * 64, "1"),
            after=after,
        )
        for name, after in order
    }
    spec = PipelineSpec(name="wide", parameters={}, steps=steps)
    return spec.to_yaml(), [name for name, _ in order]


# ---------------------------------------------------------------------- MLflow
_ML_RUNS = (
    "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
    "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) "
    "VALUES (?, ?, 'UNKNOWN', '', '', ?, 'FINISHED', ?, ?, '', 'active', ?, ?)"
)
_ML_TAGS = "INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)"
_ML_PARAMS = "INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)"
_ML_LATEST = (
    "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, ?, ?)"
)
_ML_METRICS = "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)"


class MlflowSeeder:
    """Bulk writes into MLflow 3's own SQLite schema at ``db_path`` (tables made by its SqlAlchemyStore)."""

    def __init__(self, db_path: Path, artifact_root: Path) -> None:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        self.db_path, self.artifact_root = db_path, artifact_root
        self._store = SqlAlchemyStore(f"sqlite:///{db_path}", artifact_root.as_uri())

    def _experiment(self, name: str) -> tuple[str, str]:
        location = (self.artifact_root / name).as_uri()
        return str(self._store.create_experiment(name, artifact_location=location)), location

    def _write(self, statements: Sequence[tuple[str, Sequence[tuple[Any, ...]]]]) -> None:
        """Run each (sql, rows) with executemany, all in one transaction."""
        db = sqlite3.connect(self.db_path, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=OFF")  # this connection's writes only; MLflow's own settings stay
            db.execute("BEGIN")
            for sql, rows in statements:
                db.executemany(sql, rows)
            db.execute("COMMIT")
        finally:
            db.close()

    def table(self, experiment: str, count: int, seed: int, base_ms: int) -> tuple[str, list[str]]:
        """The same runs as :meth:`ShipyardSeeder.table` (same seed): id and run ids."""
        exp_id, location = self._experiment(experiment)
        run_ids: list[str] = []
        for runs in table_runs(count, seed, base_ms):
            run_rows, tags, params, latest, history = [], [], [], [], []
            for run in runs:
                run_id = uuid.uuid4().hex
                run_ids.append(run_id)
                run_rows.append(
                    (run_id, run.name, MLFLOW_USER, run.start_time, run.end_time,
                     f"{location}/{run_id}/artifacts", int(exp_id))
                )  # fmt: skip
                tags.append(("mlflow.runName", run.name, run_id))
                params += [(k, v, run_id) for k, v in run.params]
                latest += [(k, v, run.end_time, 0, 0, run_id) for k, v in run.metrics]
                history += [(k, v, run.end_time, run_id, 0, 0) for k, v in run.metrics]
            self._write(
                [(_ML_RUNS, run_rows), (_ML_TAGS, tags), (_ML_PARAMS, params), (_ML_LATEST, latest),
                 (_ML_METRICS, history)]
            )  # fmt: skip
        return exp_id, run_ids

    def curves(self, experiment: str, count: int, steps: int, base_ms: int) -> tuple[str, list[str]]:
        """The same runs and histories as :meth:`ShipyardSeeder.curves` (one ``metrics`` row a point)."""
        exp_id, location = self._experiment(experiment)
        stamps = curve_times(base_ms, steps).tolist()
        step_list = list(range(steps))
        run_ids: list[str] = []
        for i in range(count):
            run_id = uuid.uuid4().hex
            run_ids.append(run_id)
            name = f"curve-{i:04d}"
            history: list[tuple[Any, ...]] = []
            latest = []
            for key in CURVES:
                values = curve(i, key, steps).tolist()
                history += zip([key] * steps, values, stamps, [run_id] * steps, step_list, [0] * steps,
                               strict=True)  # fmt: skip
                latest.append((key, values[-1], stamps[-1], steps - 1, 0, run_id))
            row = (run_id, name, MLFLOW_USER, base_ms + i, stamps[-1], f"{location}/{run_id}/artifacts",
                   int(exp_id))  # fmt: skip
            self._write(
                [(_ML_RUNS, [row]), (_ML_TAGS, [("mlflow.runName", name, run_id)]),
                 (_ML_PARAMS, [(k, v, run_id) for k, v in curve_params(i)]), (_ML_LATEST, latest),
                 (_ML_METRICS, history)]
            )  # fmt: skip
        return exp_id, run_ids

    def close(self) -> None:
        self._store.engine.dispose()


def one_point_chunk(run_pk: int, key: str, value: float, timestamp: int) -> tuple[Any, ...]:
    """The ``metric_chunks`` row of a one-point series at step 0: what ``encode_series`` makes of it, built
    without a ``Series`` (2 million of them at 100,000 runs)."""
    return (run_pk, key, 1, 0, 0, _ZERO, struct.pack("<d", value), struct.pack("<q", timestamp))


_ZERO = struct.pack("<q", 0)
