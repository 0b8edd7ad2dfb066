"""Records as JSON, the same on both sides of the platform server's API (server routes and the HTTP stores).

Floats that JSON cannot carry (NaN, ±inf: metrics may hold them) travel as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import math
from array import array
from collections.abc import Iterable, Mapping
from typing import Any

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
            data = base64.b64decode(raw, validate=True)
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


def schedule(data: Mapping[str, Any]) -> Any:
    """A `~shipyard.pipelines.schedule_store.Schedule` (imported here on use: it pulls in the pipelines)."""
    from shipyard.pipelines.schedule import Catchup
    from shipyard.pipelines.schedule_store import Schedule

    return Schedule(**{**data, "catchup": Catchup(data["catchup"])})
