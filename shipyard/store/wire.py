"""Records as JSON, the same on both sides of the platform server's API (server routes and the HTTP stores).

Floats that JSON cannot carry (NaN, ±inf: metrics may hold them) travel as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import json
import math
import struct
from array import array
from collections.abc import Iterable, Mapping
from typing import Any

from shipyard.datasets.records import DatasetFile, DatasetSummary, DatasetVersion, SnapshotKind
from shipyard.errors import InvalidInput
from shipyard.lineage.records import ArtifactType, Edge, EventKind, Execution, LineageArtifact, LineageGraph
from shipyard.registry.records import ModelEvent, ModelVersion, RegisteredModel, Stage
from shipyard.tracking import chunks
from shipyard.tracking.backing import BackedVersion
from shipyard.tracking.chunks import Series
from shipyard.tracking.records import (
    ArtifactRecord,
    DatasetInput,
    Experiment,
    LifecycleStage,
    Metric,
    Run,
    RunStatus,
)

_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

# The response header of a runs search naming where the next page starts (absent on the last page): an opaque
# cursor (shipyard.tracking.cursors) to send back as the search's ``after``.
NEXT_CURSOR_HEADER = "X-Shipyard-Next-Cursor"


def number_out(value: float | None) -> float | str | None:
    """A float for JSON (NaN and ±inf as strings)."""
    if value is None or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def number_in(value: Any, field: str) -> float:
    """A float from JSON; `InvalidInput` naming ``field`` for anything else."""
    if isinstance(value, str) and value in _SPECIAL:
        return _SPECIAL[value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{field} must be a number, got {value!r}")
    return float(value)


def to_json(record: Any) -> Any:
    """A record (dataclass, enum, list, mapping) as plain JSON values; private fields are left out."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {
            f.name: to_json(getattr(record, f.name))
            for f in dataclasses.fields(record)
            if not f.name.startswith("_")
        }
    if isinstance(record, enum.Enum):
        return record.value
    if isinstance(record, Mapping):
        return {str(k): to_json(v) for k, v in record.items()}
    if isinstance(record, list | tuple):
        return [to_json(v) for v in record]
    if isinstance(record, float):
        return number_out(record)
    return record


def experiment(data: Mapping[str, Any]) -> Experiment:
    return Experiment(**{**data, "lifecycle_stage": LifecycleStage(data["lifecycle_stage"])})


def run(data: Mapping[str, Any]) -> Run:
    return Run(
        **{
            **data,
            "status": RunStatus(data["status"]),
            "lifecycle_stage": LifecycleStage(data["lifecycle_stage"]),
            "metrics": {k: number_in(v, f"metrics.{k}") for k, v in data.get("metrics", {}).items()},
        }
    )


def metric(data: Mapping[str, Any]) -> Metric:
    return Metric(data["key"], number_in(data["value"], data["key"]), data["step"], data["timestamp"])


def artifact_record(data: Mapping[str, Any]) -> ArtifactRecord:
    return ArtifactRecord(data["path"], data["size"], data["sha256"])


def dataset_input(data: Mapping[str, Any]) -> DatasetInput:
    return DatasetInput(**data)


def backed_version(data: Mapping[str, Any]) -> BackedVersion:
    return BackedVersion(**{**data, "aliases": tuple(data["aliases"])})


def series_out(run_id: str, key: str, series: Series) -> dict[str, Any]:
    """One (run, key)'s buffered points as a batch entry: base64 of little-endian int64 steps, float64
    values (NaN and ±inf as they are) and int64 timestamps — a tenth of the JSON lists' encoding and
    validation cost for a large flush."""
    return {
        "run_id": run_id,
        "key": key,
        "steps": base64.b64encode(chunks.to_le_bytes(series.steps)).decode("ascii"),
        "values": base64.b64encode(chunks.to_le_bytes(series.values)).decode("ascii"),
        "timestamps": base64.b64encode(chunks.to_le_bytes(series.timestamps)).decode("ascii"),
    }


PACKED_METRICS = "application/vnd.shipyard.metrics"
_PACKED_HEADER_MAX = 16 << 20


def pack_batch(entries: Iterable[tuple[str, str, Series]], params: Mapping[str, Any] | None = None) -> bytes:
    """A metric batch as one binary body (what the Python client sends): a little-endian uint32 header
    length, a JSON header ``{"metrics": [{"run_id", "key", "count"}…], "params": {run id: {key: value}}}``,
    then each entry's int64 steps, float64 values and int64 timestamps as little-endian bytes.

    Encoding 10,000 points as JSON text (base64 columns) and decoding them cost ~2 ms, more than storing them.
    """
    listed = list(entries)
    header = {
        "metrics": [{"run_id": run_id, "key": key, "count": len(s)} for run_id, key, s in listed],
        "params": dict(params or {}),
    }
    head = json.dumps(header, separators=(",", ":")).encode()
    parts = [struct.pack("<I", len(head)), head]
    for _, _, series in listed:
        parts += (
            chunks.to_le_bytes(series.steps),
            chunks.to_le_bytes(series.values),
            chunks.to_le_bytes(series.timestamps),
        )
    return b"".join(parts)


def unpack_batch(body: bytes) -> tuple[dict[str, Any], list[Series]]:
    """The header and the columns of a :func:`pack_batch` body; `InvalidInput` says what is malformed.

    The header is returned as parsed JSON, for the caller to validate; the columns are checked here to be
    exactly as long as the header's counts say.
    """
    view = memoryview(body)
    if len(view) < 4:
        raise InvalidInput("a packed metric batch starts with its header's length (4 bytes)")
    (size,) = struct.unpack_from("<I", view)
    if size > min(len(view) - 4, _PACKED_HEADER_MAX):
        raise InvalidInput(f"the packed batch's header length {size} runs past the body")
    try:
        header = json.loads(bytes(view[4 : 4 + size]))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"the packed batch's header is not JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("metrics"), list):
        raise InvalidInput("the packed batch's header must be an object with a 'metrics' list")
    counts = [e.get("count") if isinstance(e, dict) else None for e in header["metrics"]]
    for i, count in enumerate(counts):
        if type(count) is not int or count < 0:
            raise InvalidInput(f"metrics[{i}].count must be a non-negative integer")
    offset, found = 4 + size, []
    if len(view) - offset != 24 * sum(counts):
        raise InvalidInput(
            f"the packed batch holds {len(view) - offset} bytes of points; its header counts "
            f"{sum(counts)} points ({24 * sum(counts)} bytes)"
        )
    for count in counts:
        series = Series()
        width = 8 * count
        series.steps = chunks.from_le_bytes("q", view[offset : offset + width])
        series.values = chunks.from_le_bytes("d", view[offset + width : offset + 2 * width])
        series.timestamps = chunks.from_le_bytes("q", view[offset + 2 * width : offset + 3 * width])
        offset += 3 * width
        found.append(series)
    return header, found


def series_in(entries: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, Series]]:
    """Batch entries back as (run id, key, points); `InvalidInput` names a malformed entry.

    Each of steps, values and timestamps is either a JSON list (integers; numbers, or "NaN"/"Infinity"
    strings) or the base64 form :func:`series_out` writes.
    """
    found = []
    for i, entry in enumerate(entries):
        series = Series()
        try:
            series.steps = _column(entry.get("steps"), "q", f"metrics[{i}].steps")
            series.values = _column(entry.get("values"), "d", f"metrics[{i}].values")
            series.timestamps = _column(entry.get("timestamps"), "q", f"metrics[{i}].timestamps")
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidInput(f"metrics[{i}]: steps and timestamps must be integers ({exc})") from None
        if not len(series.steps) == len(series.values) == len(series.timestamps):
            raise InvalidInput(f"metrics[{i}]: steps, values and timestamps differ in length")
        found.append((str(entry.get("run_id")), str(entry.get("key")), series))
    return found


def _column(raw: Any, typecode: str, field: str) -> array:
    if isinstance(raw, str):
        try:
            # (b64decode's validate=True runs a regular expression over the text first: ~3x the cost)
            data = binascii.a2b_base64(raw, strict_mode=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(f"{field}: not a list and not base64") from None
        if len(data) % 8:
            raise InvalidInput(f"{field}: {len(data)} bytes is not a whole number of 8-byte items")
        return chunks.from_le_bytes(typecode, data)
    if not isinstance(raw, list):
        raise InvalidInput(f"{field} must be a list or base64 text")
    if typecode == "d":
        return array("d", (number_in(v, field) for v in raw))
    return array("q", (int(v) for v in raw))


def registered_model(data: Mapping[str, Any]) -> RegisteredModel:
    return RegisteredModel(**{**data, "aliases": {k: int(v) for k, v in data.get("aliases", {}).items()}})


def model_version(data: Mapping[str, Any]) -> ModelVersion:
    return ModelVersion(**{**data, "stage": Stage(data["stage"]), "aliases": tuple(data.get("aliases", ()))})


def model_event(data: Mapping[str, Any]) -> ModelEvent:
    return ModelEvent(**data)


def lineage_artifact(data: Mapping[str, Any]) -> LineageArtifact:
    return LineageArtifact(**{**data, "type": ArtifactType(data["type"])})


def lineage_graph(data: Mapping[str, Any]) -> LineageGraph:
    return LineageGraph(
        root=lineage_artifact(data["root"]),
        artifacts={int(k): lineage_artifact(v) for k, v in data["artifacts"].items()},
        executions={int(k): Execution(**v) for k, v in data["executions"].items()},
        edges=tuple(Edge(**{**e, "kind": EventKind(e["kind"])}) for e in data["edges"]),
    )


def dataset_file(data: Mapping[str, Any]) -> DatasetFile:
    return DatasetFile(**data)


def dataset_version(data: Mapping[str, Any]) -> DatasetVersion:
    files = tuple(dataset_file(f) for f in data.get("files") or ())
    return DatasetVersion(**{**data, "kind": SnapshotKind(data["kind"]), "files": files})


def dataset_summary(data: Mapping[str, Any]) -> DatasetSummary:
    return DatasetSummary(**data)


def schedule(data: Mapping[str, Any]) -> Any:
    """A `~shipyard.pipelines.schedule_store.Schedule` (imported here on use: it pulls in the pipelines)."""
    from shipyard.pipelines.schedule import Catchup
    from shipyard.pipelines.schedule_store import Schedule

    return Schedule(**{**data, "catchup": Catchup(data["catchup"])})
