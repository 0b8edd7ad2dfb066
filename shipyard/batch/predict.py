"""Batch inference: score a table too big for memory with a logged or registered model, as a tracked run.

The input is read in record batches (:mod:`shipyard.batch.io`): only the columns the model's signature
needs and the key columns, at most ``batch_rows`` rows at a time. Every file's columns are checked against
the signature before any row is scored. Each batch goes through the model's ``predict`` (the signature
enforced, as online) and is written out at once with the key columns, the prediction(s) and the model
version, so memory stays near one batch per worker. With ``workers`` above one, units of row groups are
scored by :mod:`shipyard.workers` processes and written in input order.

The job is a run (experiment ``batch-inference``, or the active run: a pipeline step's) with its rows and
rows/s, and a lineage execution: the input (a dataset version, or a file URI) and the model version in,
the output (with its sha256) out.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from shipyard.batch.io import Format, Sink, Source, batches, read_schema, resolve_source, row_groups
from shipyard.config import Settings, get_settings
from shipyard.errors import InvalidInput, PredictionFailed, ShipyardError
from shipyard.lineage import ArtifactType, LineageClient
from shipyard.processes import usable_cpus
from shipyard.registry.flavors.sklearn import PREFERENCES
from shipyard.registry.loading import LoadedModel, load_model, locate_package, read_verified_manifest
from shipyard.registry.signature import Signature, SignatureKind
from shipyard.tracking import get_client
from shipyard.workers import Call, WorkerPool

EXPERIMENT = "batch-inference"
VERSION_COLUMN = "model_version"
PREDICTION = "prediction"
MAX_BATCH_ROWS = 10_000_000

Progress = Callable[[int, int | None], None]  # rows scored so far, and the total when the input says


@dataclass(frozen=True)
class BatchResult:
    """A finished batch job: its run, the output and its sha256, the model version that scored it."""

    run_id: str
    output: str
    rows: int
    seconds: float
    model: str
    sha256: str

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


@dataclass(frozen=True)
class _Plan:
    """What each batch reads and writes (sent to the workers)."""

    features: tuple[str, ...] | None  # None: the model has no signature; every non-key column
    keys: tuple[str, ...]
    label: str
    probabilities: bool
    batch_rows: int
    flavor: str = ""
    prefer: str = "auto"


@dataclass(frozen=True)
class _Unit:
    """Rows one worker call scores: some row groups of one file (a CSV file whole)."""

    index: int
    path: str
    groups: tuple[int, ...] | None
    rows: int  # -1: unknown (CSV)


def batch_predict(
    model: str,
    source: str,
    output: str,
    *,
    keys: Sequence[str] | None = None,
    probabilities: bool = False,
    batch_rows: int = 100_000,
    workers: int = 1,
    executor: str = "local",
    overwrite: bool = False,
    output_format: Format | None = None,
    trusted: bool = False,
    prefer: str = "auto",
    experiment: str | None = None,
    run_name: str | None = None,
    settings: Settings | None = None,
    on_progress: Progress | None = None,
) -> BatchResult:
    """Score every row of ``source`` with ``model`` into ``output``.

    Args:
        model: ``models:/name/3``, ``models:/name@champion``, ``runs:/RUN/model`` or a package path.
        source: a ``.parquet`` or ``.csv`` file or a folder of them (a local path or any fsspec URL), or a
            dataset version ``data:name@3``.
        output: a ``.parquet`` or ``.csv`` file (local or fsspec URL), written whole or not at all.
        keys: input columns copied to the output beside the predictions (default: every input column the
            model does not read, such as ids).
        probabilities: also write a ``proba_<class>`` column per class (classifiers).
        batch_rows: rows read and scored at once: memory stays near this many rows per worker.
        workers: processes scoring at once (at most this machine's CPUs; on Ray, actors on the cluster).
        executor: ``local`` (this machine's processes) or ``ray``: Ray Data's ``map_batches`` on the cluster
            of the ``ray_address`` setting (a local one when unset), for inputs larger than one machine; the
            output is still written here, in input order.
        overwrite: replace an existing output.
        output_format: ``parquet`` or ``csv`` for an output named without a suffix (a step's artifact).
        trusted: load a pickled model (it runs code as it loads).
        prefer: the runtime of a model with a verified ONNX copy: ``auto`` (the copy, as ``shipyard serve``
            runs it: kept only when it reproduced the model's predictions), ``native`` or ``onnx``.
        experiment, run_name: where the job's run goes (default ``batch-inference``; inside an active run,
            a pipeline step's, that run records the job).
        on_progress: called with the rows scored so far and the total when known.

    Raises:
        InvalidInput: a column the model's signature needs is missing from an input file (named, before any
            row is scored), a key column is missing, or a bad setting.
        AlreadyExists: ``output`` exists and ``overwrite`` is False.
        NotFound: no model or input at that name.
    """
    settings = settings or get_settings()
    if executor not in ("local", "ray"):
        raise InvalidInput(f"executor must be local or ray, got {executor!r}")
    _check_sizes(batch_rows, workers if executor == "local" else 1)
    from shipyard.registry.fluent import registry_client

    found = resolve_source(source, settings)
    sink = Sink(output, overwrite=overwrite, fmt=output_format)
    registry = registry_client(settings)
    # The manifest alone (verified): workers load the model themselves, and importing a flavor's library
    # (skops imports every scikit-learn estimator) costs seconds this process need not spend on them.
    location = locate_package(model, registry)
    _, manifest = read_verified_manifest(location)
    label = location.version.uri if location.version is not None else location.source_uri
    signature = Signature.from_dict(manifest.signature) if manifest.signature else None
    if prefer not in PREFERENCES:
        raise InvalidInput(f"prefer must be one of {', '.join(PREFERENCES)}, got {prefer!r}")
    plan = _plan(signature, found, keys, label, probabilities, batch_rows)
    plan = dataclasses.replace(plan, flavor=manifest.flavor, prefer=prefer)
    units = _units(found, batch_rows)
    total = None if any(u.rows < 0 for u in units) else sum(u.rows for u in units)

    from shipyard.tracking.fluent import active_run, start_run

    outer = active_run()
    run = outer or start_run(experiment or EXPERIMENT, run_name, settings=settings, log_system_metrics=False)
    started = time.perf_counter()
    try:
        # Prefixed: an outer run (a pipeline step's) has params of its own, some of the same names.
        params = {
            "model": model,
            "model_version": label,
            "input": source,
            "output": output,
            "batch_rows": batch_rows,
            "workers": workers,
            "executor": executor,
            "prefer": prefer,
            "keys": ",".join(plan.keys),
        }
        run.log_params({f"batch.{name}": value for name, value in params.items()})
        if executor == "ray":
            scored = _score_ray(label, trusted, settings, plan, units, workers)
        elif workers == 1:
            loaded = load_model(label, registry, trusted=trusted, **_load_options(plan, None))
            scored = _score_local(loaded, plan, units)
        else:
            scored = _score_workers(label, trusted, settings, plan, units, workers)
        rows, schema = 0, None
        for table in scored:
            sink.write(table)
            schema = table.schema
            rows += table.num_rows
            if on_progress is not None:
                on_progress(rows, total)
        sha256 = sink.commit(schema if schema is not None else _empty_schema(plan, found))
    except BaseException:
        sink.abort()
        if outer is None:
            run.end("FAILED")
        raise
    seconds = time.perf_counter() - started
    run.log_metrics(
        {"rows": float(rows), "seconds": seconds, "rows_per_s": rows / seconds if seconds else 0.0}
    )
    LineageClient(get_client(settings)).record(
        "batch_inference",
        name=f"{label} on {found.uri}",
        run_id=run.run_id,
        inputs=[
            (found.uri, ArtifactType.DATASET, found.sha256, "data"),
            (label, ArtifactType.MODEL, location.manifest_sha256, "model"),
        ],
        outputs=[(sink.uri, ArtifactType.DATASET, sha256, "predictions")],
    )
    if outer is None:
        run.end("FINISHED")
    return BatchResult(run.run_id, output, rows, seconds, label, sha256)


def _check_sizes(batch_rows: int, workers: int) -> None:
    if (
        isinstance(batch_rows, bool)
        or not isinstance(batch_rows, int)
        or not 1 <= batch_rows <= MAX_BATCH_ROWS
    ):
        raise InvalidInput(
            f"batch_rows must be a whole number from 1 to {MAX_BATCH_ROWS:,}, got {batch_rows!r}"
        )
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInput(f"workers must be a whole number from 1 up, got {workers!r}")
    if workers > (cpus := usable_cpus()):
        raise InvalidInput(f"workers={workers} but this machine gives this process {cpus} CPUs")


def _plan(
    signature: Signature | None,
    source: Source,
    keys: Sequence[str] | None,
    label: str,
    probabilities: bool,
    batch_rows: int,
) -> _Plan:
    """The columns to read and copy, checked against every input file before any row is scored."""
    if signature is not None and signature.kind is SignatureKind.TENSOR:
        raise InvalidInput(
            f"model {label} takes a tensor, not a table: batch inference reads tables (Parquet, CSV)"
        )
    features = tuple(c.name for c in signature.inputs) if signature is not None else None
    chosen: tuple[str, ...] | None = None if keys is None else tuple(dict.fromkeys(keys))
    for path in source.files:
        names = read_schema(path).names
        present = set(names)
        missing = [c for c in features or () if c not in present]
        if missing:
            raise InvalidInput(
                f"batch input {path} lacks column(s) {', '.join(map(repr, missing))} that model {label}'s "
                f"signature needs (the file has: {', '.join(names[:40])}{', ...' if len(names) > 40 else ''})"
            )
        absent = [k for k in chosen or () if k not in present]
        if absent:
            raise InvalidInput(
                f"key column(s) {', '.join(map(repr, absent))} are not in batch input {path} "
                f"(it has: {', '.join(names[:40])})"
            )
        if chosen is None:  # the first file's non-feature columns: ids and the like
            if features is None:
                raise InvalidInput(
                    f"model {label} has no signature, so every column would be a feature: name the key "
                    "columns to copy (keys=[...], --keys) or none (keys=[], --keys '')"
                )
            chosen = tuple(n for n in names if n not in set(features))
    assert chosen is not None
    outputs = {PREDICTION, VERSION_COLUMN}
    clash = [k for k in chosen if k in outputs or k.startswith(("prediction_", "proba_"))]
    if clash:
        raise InvalidInput(
            f"key column(s) {', '.join(map(repr, clash))} would clash with the output's prediction columns; "
            "rename them or leave them out of --keys"
        )
    return _Plan(features, chosen, label, probabilities, batch_rows)


def _units(source: Source, batch_rows: int) -> list[_Unit]:
    """The input cut into calls: runs of a Parquet file's row groups of about ``batch_rows`` rows or more
    (a row group is the smallest piece a reader can skip to), each CSV file whole."""
    units: list[_Unit] = []
    for path in source.files:
        sizes = row_groups(path)
        if sizes == [-1]:
            units.append(_Unit(len(units), path, None, -1))
            continue
        group: list[int] = []
        rows = 0
        for index, size in enumerate(sizes):
            group.append(index)
            rows += size
            if rows >= batch_rows:
                units.append(_Unit(len(units), path, tuple(group), rows))
                group, rows = [], 0
        if group:
            units.append(_Unit(len(units), path, tuple(group), rows))
    return units


def _columns(plan: _Plan) -> list[str] | None:
    """The columns to read: the features and keys (None: every column, for a model without a signature)."""
    return None if plan.features is None else list(dict.fromkeys([*plan.features, *plan.keys]))


def _score_batch(model: LoadedModel, plan: _Plan, batch: pa.RecordBatch) -> pa.Table:
    """One batch's output: its key columns, the predictions and the model version."""
    if plan.features is not None:
        frame = batch.select(list(plan.features)).to_pandas()
    else:
        frame = batch.drop_columns(list(plan.keys)).to_pandas() if plan.keys else batch.to_pandas()
    columns: dict[str, Any] = {key: batch.column(key) for key in plan.keys}
    columns.update(_prediction_columns(model.predict(frame), PREDICTION))
    if plan.probabilities:
        classes = model.classes
        if classes is None:
            raise InvalidInput(
                f"model {plan.label} gives no class probabilities (not a classifier): drop --proba"
            )
        proba = np.asarray(model.predict_proba(frame))
        for position, name in enumerate(classes):
            columns[f"proba_{name}"] = pa.array(proba[:, position])
    columns[VERSION_COLUMN] = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(batch.num_rows, dtype=np.int32)), pa.array([plan.label])
    )
    return pa.table(columns)


def _prediction_columns(predicted: Any, name: str) -> dict[str, Any]:
    """A model's answer as output columns: ``prediction``, or ``prediction_<column>`` for several."""
    import pandas as pd

    if isinstance(predicted, pd.DataFrame):
        if len(predicted.columns) == 1:
            return {name: pa.array(predicted.iloc[:, 0].to_numpy())}
        return {f"{name}_{c}": pa.array(predicted[c].to_numpy()) for c in predicted.columns}
    if isinstance(predicted, pd.Series):
        return {name: pa.array(predicted.to_numpy())}
    values = np.asarray(predicted)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim == 1:
        return {name: pa.array(values)}
    if values.ndim == 2:
        return {f"{name}_{i}": pa.array(values[:, i]) for i in range(values.shape[1])}
    raise InvalidInput(
        f"the model returned predictions of shape {values.shape}; batch output needs 1 or 2 dims"
    )


def _score_local(model: LoadedModel, plan: _Plan, units: list[_Unit]) -> Iterator[pa.Table]:
    for unit in units:
        for batch in batches(unit.path, _columns(plan), plan.batch_rows, unit.groups):
            yield _score_batch(model, plan, batch)


_models: dict[tuple[str, str, bool], LoadedModel] = {}  # per worker process: loading verifies the package


def _score_unit(
    model: str, trusted: bool, settings: Settings, plan: _Plan, unit: _Unit, threads: int
) -> tuple[str, Any]:
    """In a worker: one unit's output as one table, or ``("refused", message)`` for a typed refusal."""
    from shipyard.registry.fluent import registry_client

    key = (model, settings.db_url, trusted)
    try:
        if key not in _models:
            options = _load_options(plan, threads)
            _models[key] = load_model(model, registry_client(settings), trusted=trusted, **options)
        _limit_threads(threads)  # after the load: threadpoolctl sees only the libraries loaded by then
        loaded = _models[key]
        tables = [
            _score_batch(loaded, plan, batch)
            for batch in batches(unit.path, _columns(plan), plan.batch_rows, unit.groups)
        ]
    except InvalidInput as exc:
        return "refused", str(exc)
    return "ok", pa.concat_tables(tables) if tables else None


_limited: list[Any] = []  # the limit set in this worker, held for its life
# Flavors whose loader sizes an onnxruntime session by ``threads`` (a worker's share of the CPUs).
_SESSION_FLAVORS = ("sklearn", "onnx")


def _load_options(plan: _Plan, threads: int | None) -> dict[str, Any]:
    """The loader options a batch job asks for: the runtime (``prefer``; a flavor with one runtime ignores
    ``auto``) and, in a worker, an ONNX session of the worker's share of the threads: onnxruntime sizes its
    pool by the machine's cores, and two workers' pools would spin against each other."""
    options: dict[str, Any] = {"prefer": plan.prefer}
    if threads is not None and plan.flavor in _SESSION_FLAVORS:
        options["threads"] = threads
    return options


def _limit_threads(threads: int) -> None:
    """A worker's share of the CPUs for the native thread pools its model's predict starts (OpenMP, BLAS):
    each would otherwise start a thread per core, and the workers would fight over them. The user's own
    ``OMP_NUM_THREADS`` wins."""
    if _limited or os.environ.get("OMP_NUM_THREADS"):
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # no scikit-learn, so nothing that sizes its pools by the cores
        return
    _limited.append(threadpool_limits(threads))


def _score_workers(
    model: str, trusted: bool, settings: Settings, plan: _Plan, units: list[_Unit], workers: int
) -> Iterator[pa.Table]:
    """Units scored by ``workers`` processes and handed back in input order; at most ``2 * workers`` units
    ahead of the next one to write, so a slow unit does not let finished ones pile up in memory."""
    pool = WorkerPool(workers, preload=[__name__])
    threads = max(1, usable_cpus() // workers)
    done: dict[int, pa.Table | None] = {}
    following = 0
    waiting = iter(units)
    pending = 0
    ahead = 2 * workers
    try:
        while following < len(units):
            while pool.free > 0 and pending + len(done) < ahead:
                unit = next(waiting, None)
                if unit is None:
                    break
                call = Call(_score_unit, (model, trusted, settings, plan, unit, threads))
                pool.submit(unit.index, call)
                pending += 1
            for outcome in pool.wait(None):
                pending -= 1
                where = units[outcome.key]
                if outcome.kind == "died":
                    raise PredictionFailed(f"scoring {where.path} killed its worker ({outcome.value})")
                if outcome.kind == "error":
                    raise PredictionFailed(f"scoring {where.path} failed: {outcome.error_line}")
                status, value = outcome.value
                if status == "refused":
                    raise InvalidInput(value)
                done[outcome.key] = value
            while following in done:
                table = done.pop(following)
                following += 1
                if table is not None:
                    yield table
    finally:
        pool.close()


def _empty_schema(plan: _Plan, source: Source) -> pa.Schema:
    """The output's columns when the input has no rows: the key columns' types and a prediction column."""
    schema = read_schema(source.files[0])
    fields = [schema.field(k) for k in plan.keys]
    return pa.schema([*fields, pa.field(PREDICTION, pa.float64()), pa.field(VERSION_COLUMN, pa.string())])


class _RayScorer:
    """A Ray Data actor: loads the model once, then scores the units (row groups of a file) Ray hands it,
    reading each itself: no separate read tasks competing with the actors for the cluster's CPUs."""

    def __init__(self, model: str, trusted: bool, settings: Settings, plan: _Plan, threads: int) -> None:
        from shipyard.registry.fluent import registry_client

        options = _load_options(plan, threads)
        self.model = load_model(model, registry_client(settings), trusted=trusted, **options)
        _limit_threads(threads)  # after the load: threadpoolctl sees only the libraries loaded by then
        self.plan = plan

    def __call__(self, units: dict[str, Any]) -> pa.Table:
        tables = []
        for path, groups in zip(units["path"], units["groups"], strict=True):
            chosen = None if groups is None or len(groups) == 0 else [int(g) for g in groups]
            for batch in batches(str(path), _columns(self.plan), self.plan.batch_rows, chosen):
                tables.append(_score_batch(self.model, self.plan, batch))
        return pa.concat_tables(tables)


def _score_ray(
    model: str, trusted: bool, settings: Settings, plan: _Plan, units: list[_Unit], workers: int
) -> Iterator[pa.Table]:
    """The units scored by ``workers`` Ray Data actors (one CPU each), back here in input order."""
    from shipyard.workers import connect

    ray = connect(settings.ray_address)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # the output follows the input, as locally
    items = [{"path": u.path, "groups": list(u.groups or [])} for u in units]
    scored = ray.data.from_items(items).map_batches(
        _RayScorer,
        fn_constructor_args=(model, trusted, settings, plan, 1),
        batch_format="numpy",
        batch_size=1,
        concurrency=workers,
        num_cpus=1,
    )
    try:
        for table in scored.iter_batches(batch_format="pyarrow", batch_size=None):
            if table.num_rows:
                yield table
    except Exception as exc:  # Ray wraps an actor's error: the typed one (a bad value) comes back as is
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, ShipyardError):
            cause = cause.__cause__ or getattr(cause, "cause", None)
        if cause is not None:
            raise cause from None
        raise PredictionFailed(f"scoring on Ray failed: {type(exc).__name__}: {exc}") from exc
