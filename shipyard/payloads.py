"""Payload logs: a sample of requests with their inputs, outputs, version and latency, as Parquet files.

A records-level module: the inference server writes these files and the monitoring jobs read them, so neither
imports the other.

Records are buffered in memory and written by a background thread as Parquet files of at most ``max_rows``
records, under ``payloads/<model>/<YYYY-MM-DD>/<HHMMSSffffff>-<n>-<id>.parquet`` in the artifact store, when
``max_rows`` are buffered or ``max_seconds`` have passed (rotation by size and time), and on shutdown.
The monitoring jobs read them back with :func:`read_payloads`. Inputs and outputs are stored as JSON text
columns, so models of any signature share one file schema.

``model_uri`` records where the answering version came from: ``models:/churn/3`` for a registry version
(whatever name, alias or version label it is served under), else the URI it was loaded from. The monitoring
job finds the registered baseline by it. Files written before a column existed read back with it null.

``transformed`` holds a request's rows as a deployment's pre-processor handed them to the model (null
without one); :func:`model_inputs` picks them over the raw ``inputs``, for what compares with the model's
training data.
"""

from __future__ import annotations

import io
import json
import logging
import random
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from shipyard.errors import InvalidInput
from shipyard.store.artifacts import ArtifactStore

log = logging.getLogger("shipyard.serving")

PREFIX = "payloads"
# Where monitoring runs write each model's gauges, which the server exports (``<prefix>/<model>.prom``).
METRICS_PREFIX = "monitoring/metrics"
# Where A/B test readings write their gauges, which the server exports too (``<prefix>/<model>.prom``).
RELEASE_METRICS_PREFIX = "releases/metrics"
SCHEMA = pa.schema(
    [
        ("timestamp", pa.timestamp("ms", tz="UTC")),
        ("request_id", pa.string()),
        ("model", pa.string()),
        ("version", pa.string()),
        ("label", pa.string()),
        ("protocol", pa.string()),
        ("shadow", pa.bool_()),
        ("status", pa.int32()),
        ("latency_ms", pa.float64()),
        ("rows", pa.int32()),
        ("inputs", pa.string()),
        ("outputs", pa.string()),
        ("error", pa.string()),
        ("model_uri", pa.string()),
        ("experiment", pa.string()),
        ("transformed", pa.string()),
    ]
)


@dataclass(frozen=True)
class PayloadLogConfig:
    """``sample_rate``: share of requests logged (0: off); files rotate at ``max_rows`` or ``max_seconds``."""

    sample_rate: float = 0.0
    max_rows: int = 10_000
    max_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.sample_rate <= 1.0:
            raise InvalidInput(f"payload sample rate must be between 0 and 1, got {self.sample_rate}")
        if self.max_rows < 1 or self.max_seconds <= 0:
            raise InvalidInput("payload log max_rows must be >= 1 and max_seconds > 0")


class PayloadLogger:
    """Buffers sampled records and writes them in the background. ``log`` is cheap and thread-safe."""

    def __init__(
        self, store: ArtifactStore, config: PayloadLogConfig, rng: random.Random | None = None
    ) -> None:
        self.store = store
        self.config = config
        self._rng = rng or random.Random()
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.files_written = 0

    @property
    def enabled(self) -> bool:
        return self.config.sample_rate > 0

    def sampled(self) -> bool:
        """Whether to log the next request (decide before building its record)."""
        return self.enabled and (
            self.config.sample_rate >= 1.0 or self._rng.random() < self.config.sample_rate
        )

    def log(
        self,
        *,
        model: str,
        version: str,
        label: str,
        protocol: str,
        request_id: str | None,
        status: int,
        latency_s: float,
        inputs: Any,
        outputs: Mapping[str, Any] | None,
        rows: int,
        shadow: bool = False,
        error: str | None = None,
        model_uri: str | None = None,
        experiment: str | None = None,
        transformed: Any = None,
    ) -> None:
        """Buffer one record (the caller has already decided it is logged); ``model_uri`` is where the
        answering version came from (``models:/churn/3``); ``experiment`` the A/B test that assigned it;
        ``transformed`` the rows a pre-processor made of ``inputs``."""
        record = {
            "timestamp": datetime.now(UTC),
            "request_id": request_id,
            "model": model,
            "version": version,
            "label": label,
            "protocol": protocol,
            "shadow": shadow,
            "status": status,
            "latency_ms": latency_s * 1000,
            "rows": rows,
            "inputs": _to_json(inputs),
            "outputs": _to_json(outputs),
            "error": error,
            "model_uri": model_uri,
            "experiment": experiment,
            "transformed": _to_json(transformed),
        }
        with self._lock:
            self._buffer.append(record)
            full = len(self._buffer) >= self.config.max_rows
        if full:
            self._wake.set()

    def start(self) -> None:
        """Start the background writer (idempotent). It runs with sampling off too: an A/B test's requests
        are logged whatever the sample rate."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="payload-log", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the writer and write what is buffered."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        self.flush()

    def flush(self) -> None:
        """Write everything buffered now: one file per model."""
        with self._lock:
            records, self._buffer = self._buffer, []
        by_model: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            by_model.setdefault(record["model"], []).append(record)
        size = self.config.max_rows
        for model, rows in by_model.items():
            for start in range(0, len(rows), size):  # no file holds more than max_rows records
                chunk = rows[start : start + size]
                try:
                    self._write(model, chunk)
                except Exception as exc:  # a full disk must not take the server down; say what was lost
                    log.error("could not write %d payload records of model %s: %s", len(chunk), model, exc)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.config.max_seconds)
            self._wake.clear()
            self.flush()

    def _write(self, model: str, rows: list[dict[str, Any]]) -> None:
        table = pa.Table.from_pylist(rows, schema=SCHEMA)
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        now = datetime.now(UTC)
        # Names sort in write order (time to the microsecond, then this logger's count): readers rely on it.
        name = f"{now:%H%M%S%f}-{self.files_written:06d}-{uuid.uuid4().hex[:8]}.parquet"
        path = f"{PREFIX}/{model}/{now:%Y-%m-%d}/{name}"
        self.store.put_bytes(buffer.getvalue(), path)
        self.files_written += 1


def read_payloads(store: ArtifactStore, model: str | None = None) -> pd.DataFrame:
    """Every logged record (of ``model``, or all), oldest first, with ``inputs``/``outputs`` as JSON text."""
    prefix = PREFIX if model is None else f"{PREFIX}/{model}"
    if not store.exists(prefix):
        return SCHEMA.empty_table().to_pandas()
    files = sorted(f.path for f in store.list(prefix, recursive=True) if f.path.endswith(".parquet"))
    tables = [_conformed(pq.read_table(io.BytesIO(store.read_bytes(path)))) for path in files]
    if not tables:
        return SCHEMA.empty_table().to_pandas()
    return pa.concat_tables(tables).to_pandas().sort_values("timestamp", kind="stable").reset_index(drop=True)


def model_inputs(records: pd.DataFrame) -> pd.Series:
    """Each record's inputs as its model took them: ``transformed`` where a pre-processor made them, else
    the request's own ``inputs`` (JSON text, as :func:`read_payloads` gives them)."""
    return records["transformed"].where(records["transformed"].notna(), records["inputs"])


def _conformed(table: pa.Table) -> pa.Table:
    """``table`` in :data:`SCHEMA`'s columns and order: a column an older server did not write is null."""
    if table.schema.equals(SCHEMA):
        return table
    columns = [
        table[field.name].cast(field.type)
        if field.name in table.column_names
        else pa.nulls(len(table), field.type)
        for field in SCHEMA
    ]
    return pa.Table.from_arrays(columns, schema=SCHEMA)


def _to_json(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, default=_jsonable, allow_nan=True)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, pd.DataFrame):
        return value.to_dict(orient="list")
    return str(value)
