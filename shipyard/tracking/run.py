"""`ActiveRun`: the handle you log into while a run is running.

Metric points go to the process's buffered writer (see :mod:`shipyard.tracking.writer`); params, tags,
artifacts and dataset inputs are written at once. Leaving the ``with`` block ends the run: FINISHED, FAILED
on an exception, KILLED on Ctrl-C — its last metric points and its status commit in one transaction.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import threading
import time
import traceback
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from shipyard.datasets.refs import is_dataset_uri
from shipyard.errors import InvalidInput, RunNotActive
from shipyard.lineage.records import ArtifactType
from shipyard.processes import interruption
from shipyard.store.artifacts import ArtifactStore, FileInfo
from shipyard.tracking import naming
from shipyard.tracking.client import TrackingClient
from shipyard.tracking.datasets import describe_dataset, describe_dataset_version
from shipyard.tracking.records import PIPELINE_RUN_TAG, ArtifactRecord, DatasetInput, Metric, Run, RunStatus
from shipyard.tracking.system_metrics import SystemMetricsMonitor
from shipyard.tracking.values import (
    MAX_I64,
    MIN_I64,
    checked_texts,
    metric_step,
    metric_timestamp,
    metric_value,
    param_changed,
    unwritable_reason,
)
from shipyard.tracking.writer import MetricWriter

# The per-point path reads these as module globals: each saves an attribute lookup per log_metric call.
_check_key = naming.check_key
_valid_keys = naming.valid_keys
_MIN_I64, _MAX_I64 = MIN_I64, MAX_I64
_RUNNING = RunStatus.RUNNING
_time_ns = time.time_ns
log = logging.getLogger(__name__)

# The artifact a FAILED run keeps its traceback in (`shipyard runs show` prints its last lines).
TRACEBACK_ARTIFACT = "traceback.txt"


class ActiveRun:
    """A running run. Thread-safe for logging; create with :func:`shipyard.start_run`."""

    def __init__(
        self, client: TrackingClient, writer: MetricWriter, record: Run, run_pk: int, *, beat: bool = False
    ) -> None:
        """``beat``: this process owns the run, and its writer keeps the run's heartbeat fresh until it ends
        (a pipeline worker logging into a run its engine owns does not beat)."""
        self._client = client
        self._writer = writer
        self._add_point = writer.add
        self._record = record
        self._pk = run_pk
        self._status = RunStatus.RUNNING
        self._end_lock = threading.Lock()
        self._monitor: SystemMetricsMonitor | None = None
        self._artifacts: ArtifactStore | None = None
        self._on_end: list[Any] = []
        self._beats = beat
        self._params: dict[str, str] = {}  # logged through this handle (checked here when buffered)
        self._params_lock = threading.Lock()
        if beat:
            writer.beat_for(run_pk)

    # ------------------------------------------------------------------ identity
    @property
    def run_id(self) -> str:
        return self._record.run_id

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def experiment_id(self) -> str:
        return self._record.experiment_id

    @property
    def parent_run_id(self) -> str | None:
        return self._record.parent_run_id

    @property
    def artifact_uri(self) -> str:
        return self._record.artifact_uri

    @property
    def client(self) -> TrackingClient:
        """The client this run writes through (same store and artifact root)."""
        return self._client

    @property
    def status(self) -> RunStatus:
        return self._status

    @property
    def record(self) -> Run:
        """The run as it was when this handle was made, without a query (``info`` reads it afresh)."""
        return self._record

    @property
    def info(self) -> Run:
        """The run as stored now (params, tags, latest metrics); flushes buffered points first."""
        self._writer.flush()
        return self._client.get_run(self.run_id)

    def __repr__(self) -> str:
        return f"<ActiveRun {self.name!r} id={self.run_id} status={self._status.value}>"

    # ------------------------------------------------------------------ params and tags
    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, values: Mapping[str, Any]) -> None:
        """Record params; changing an already-logged value raises `Conflict`.

        Against a server they are checked here and sent with the next metric batch (durable after
        :meth:`flush` or run end, like metrics): a run then costs two requests, not one per call. A value
        another process logged for the same key is refused by that flush.
        """
        self._check_active()
        if not self._client.buffers_params:
            self._client.log_params(self._pk, values)
            return
        checked = checked_texts(values, "param")
        with self._params_lock:
            for key, value in checked.items():
                old = self._params.get(key, value)
                if old != value:
                    raise param_changed(key, old, value)
            self._params.update(checked)
            self._writer.add_params(self._pk, checked)

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, values: Mapping[str, Any]) -> None:
        self._check_active()
        self._client.set_tags(self._pk, values)

    def delete_tag(self, key: str) -> None:
        self._check_active()
        self._client.delete_tag(self._pk, key)

    # ------------------------------------------------------------------ metrics
    def log_metric(self, key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
        """Buffer one point (NaN and ±inf are kept as is). Durable after :meth:`flush` or run end."""
        if self._status is not _RUNNING:
            self._check_active()
        if key.__class__ is not str or key not in _valid_keys:
            _check_key(key, "metric")
        # Every check comes before the point is buffered: a half-added point would misalign the buffer.
        if value.__class__ is not float:
            value = metric_value(key, value)
        if step.__class__ is not int or not _MIN_I64 <= step <= _MAX_I64:
            step = metric_step(key, step)
        if timestamp is None:
            timestamp = _time_ns() // 1_000_000
        elif timestamp.__class__ is not int or not 0 <= timestamp <= _MAX_I64:
            timestamp = metric_timestamp(key, timestamp)
        self._add_point(self._pk, key, value, step, timestamp)

    def log_metrics(self, values: Mapping[str, float], step: int = 0, timestamp: int | None = None) -> None:
        """Buffer several keys at one step."""
        self._check_active()
        ts = time.time_ns() // 1_000_000 if timestamp is None else timestamp
        self.log_batch((key, value, step, ts) for key, value in values.items())

    def log_batch(
        self, metrics: Iterable[Metric | tuple[str, float, int] | tuple[str, float, int, int]]
    ) -> None:
        """Buffer many points at once: `Metric` records or ``(key, value, step[, timestamp_ms])`` tuples.

        The batch is validated whole before any point is buffered: a bad point raises and adds nothing.
        """
        self._check_active()
        now = time.time_ns() // 1_000_000
        checked: list[tuple[str, float, int, int]] = []
        seen: set[str] = set()
        for point in metrics:
            if isinstance(point, Metric):
                key, value, step, ts = point.key, point.value, point.step, point.timestamp
            elif len(point) == 3:
                key, value, step = point  # type: ignore[misc]
                ts = now
            else:
                key, value, step, ts = point  # type: ignore[misc]
            if key not in seen:
                _check_key(key, "metric")
                seen.add(key)
            if value.__class__ is not float:
                value = metric_value(key, value)
            if step.__class__ is not int or not _MIN_I64 <= step <= _MAX_I64:
                step = metric_step(key, step)
            if ts.__class__ is not int or not 0 <= ts <= _MAX_I64:
                ts = metric_timestamp(key, ts)
            checked.append((key, value, step, ts))
        if checked:
            self._writer.add_points(self._pk, checked)

    def metric_history(self, key: str) -> list[Metric]:
        """Every point of ``key`` so far (buffered points are flushed first)."""
        self._writer.flush()
        return self._client.metric_history(self.run_id, key)

    def flush(self) -> None:
        """Block until every point logged so far is committed to the store."""
        self._writer.flush()

    # ------------------------------------------------------------------ artifacts
    @property
    def artifacts(self) -> ArtifactStore:
        if self._artifacts is None:
            self._artifacts = ArtifactStore.configured(self._client.settings, self.artifact_uri)
        return self._artifacts

    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> ArtifactRecord:
        """Copy a local file into the run's artifacts (under ``artifact_path``, a folder, when given)."""
        self._check_active()
        source = Path(local_path)
        if not source.is_file():
            raise InvalidInput(f"artifact {str(source)!r} is not a file (use log_artifacts for folders)")
        dest = f"{artifact_path.rstrip('/')}/{source.name}" if artifact_path else source.name
        return self._record_files([self.artifacts.put_file(source, dest)])[0]

    def log_artifacts(
        self, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[ArtifactRecord]:
        """Copy a folder's files (recursively) into the run's artifacts."""
        self._check_active()
        source = Path(local_dir)
        if not source.is_dir():
            raise InvalidInput(f"artifact folder {str(source)!r} is not a directory")
        return self._record_files(self.artifacts.put_dir(source, artifact_path or ""))

    def log_text(self, text: str, artifact_file: str) -> ArtifactRecord:
        return self.log_bytes(text.encode("utf-8"), artifact_file)

    def log_bytes(self, data: bytes, artifact_file: str) -> ArtifactRecord:
        """Write ``data`` as the artifact ``artifact_file`` (replacing one of that name)."""
        self._check_active()
        return self._record_files([self.artifacts.put_bytes(data, artifact_file)])[0]

    def log_dict(self, data: Mapping[str, Any] | list[Any], artifact_file: str) -> ArtifactRecord:
        """Save a dict as JSON, or YAML when ``artifact_file`` ends in .yaml/.yml."""
        if artifact_file.endswith((".yaml", ".yml")):
            try:
                import yaml
            except ModuleNotFoundError as exc:
                raise InvalidInput(
                    "saving YAML needs PyYAML: pip install pyyaml (or use a .json name)"
                ) from exc
        try:
            if artifact_file.endswith((".yaml", ".yml")):
                text = yaml.safe_dump(data, sort_keys=False)
            else:
                text = json.dumps(data, indent=2, default=_json_default, allow_nan=True)
        except ValueError as exc:
            raise InvalidInput(f"cannot write {artifact_file!r}: {unwritable_reason(data, exc)}") from None
        return self.log_text(text, artifact_file)

    def log_figure(self, figure: Any, artifact_file: str) -> ArtifactRecord:
        """Save a matplotlib figure (png/svg/pdf by extension) or a plotly figure (.html)."""
        self._check_active()
        buffer = io.BytesIO()
        if hasattr(figure, "savefig"):
            fmt = Path(artifact_file).suffix.lstrip(".") or "png"
            figure.savefig(buffer, format=fmt, bbox_inches="tight")
        elif hasattr(figure, "to_html"):
            buffer.write(figure.to_html(include_plotlyjs="cdn").encode())
        else:
            raise InvalidInput(f"log_figure takes a matplotlib or plotly figure, got {type(figure).__name__}")
        return self._record_files([self.artifacts.put_bytes(buffer.getvalue(), artifact_file)])[0]

    def list_artifacts(self, prefix: str = "") -> list[ArtifactRecord]:
        return self._client.list_artifacts(self.run_id, prefix)

    def _record_files(self, files: list[FileInfo]) -> list[ArtifactRecord]:
        records = [ArtifactRecord(f.path, f.size, f.sha256 or "") for f in files]
        self._client.record_artifacts(self._pk, records)
        return records

    # ------------------------------------------------------------------ datasets
    def log_input(self, data: Any, name: str | None = None, context: str | None = None) -> DatasetInput:
        """Record a dataset this run read: content hash, schema summary, source and row count.

        A dataset version (``"data:customers@3"``) is recorded by its snapshot hash, and as an input of this
        run in lineage too, so lineage from what the run made reaches that version.
        """
        self._check_active()
        if not is_dataset_uri(data):
            dataset = describe_dataset(data, name=name, context=context)
            self._client.log_dataset_input(self._pk, dataset)
            return dataset
        stores = self._client.stores
        dataset, version = describe_dataset_version(stores.datasets, data, name=name, context=context)
        self._client.log_dataset_input(self._pk, dataset)
        stores.lineage.record(
            "dataset_input",
            name=self.name,
            run_id=self.run_id,
            pipeline_run_id=self._record.tags.get(PIPELINE_RUN_TAG),
            inputs=[(version.uri, ArtifactType.DATASET, version.sha256, dataset.name)],
        )
        return dataset

    def log_dataset(self, dataset: DatasetInput) -> DatasetInput:
        """Record a dataset this run read, described by the caller (a training set names its own source)."""
        self._check_active()
        self._client.log_dataset_input(self._pk, dataset)
        return dataset

    # ------------------------------------------------------------------ lifecycle
    def start_system_metrics(self, interval: float) -> None:
        if self._monitor is None:
            self._monitor = SystemMetricsMonitor(self._log_system_sample, interval)
            self._monitor.start()

    def _log_system_sample(self, sample: Mapping[str, float], step: int) -> None:
        if self._status is RunStatus.RUNNING:
            self.log_metrics(sample, step=step)

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """End the run: buffered points and the terminal status commit together. Idempotent."""
        status = RunStatus(status)
        if not status.is_terminal:
            raise InvalidInput(f"a run ends as FINISHED, FAILED or KILLED, not {status.value}")
        with self._end_lock:
            if self._status is not RunStatus.RUNNING:
                return
            if self._monitor is not None:
                self._monitor.stop()
            end_time: list[int] = []
            refused = self._writer.flush_with(
                lambda rows, key, params: end_time.append(
                    self._client.set_terminated(self._pk, status, rows, idempotency_key=key, params=params)
                )
            )
            self._status = status
            self._record = Run(**{**self._record.__dict__, "status": status, "end_time": end_time[0]})
            if self._beats:
                self._writer.stop_beating(self._pk)
        for callback in self._on_end:
            callback(self)
        if refused is not None:  # the run ended with everything else; say which param was refused
            raise refused

    def log_traceback(self, text: str) -> None:
        """Keep a failure's traceback as the run's ``traceback.txt`` artifact. Best effort: a run that cannot
        store it (its artifact store is gone) still ends FAILED, with a warning in the log."""
        if self._status is not RunStatus.RUNNING or not text:
            return
        try:
            self.log_text(text, TRACEBACK_ARTIFACT)
        except Exception as exc:
            log.warning("could not save the traceback of run %s: %s", self.run_id, exc)

    def _check_active(self) -> None:
        if self._status is not RunStatus.RUNNING:
            raise RunNotActive(
                f"run {self.name!r} ({self.run_id}) has ended ({self._status.value}); "
                "start a new run or resume this one with start_run(run_id=...)"
            )

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.end(RunStatus.FINISHED)
        elif exc is not None and interruption(exc) is not None:  # also when cleanup replaced the stop
            self.end(RunStatus.KILLED)
        elif issubclass(exc_type, SystemExit):
            self.end(RunStatus.FINISHED)
        else:
            self.log_traceback("".join(traceback.format_exception(exc_type, exc, tb)))
            self.end(RunStatus.FAILED)


def _is_clean_exit(exc: BaseException | None) -> bool:
    return isinstance(exc, SystemExit) and exc.code in (0, None)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)
