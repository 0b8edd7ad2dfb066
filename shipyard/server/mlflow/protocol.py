"""What the official ``mlflow`` client sends and expects, and Shipyard's records in its shapes.

The client (``mlflow/store/tracking/rest_store.py``) parses answers into protobuf messages: ids are JSON
strings, unknown fields are ignored, errors are ``{"error_code", "message"}`` with a non-2xx status. It
retries 408/429/5xx for minutes, so a deterministic failure is never answered with one of those. Experiment
``"0"`` is MLflow's "Default": here the experiment named Default, whatever its id.
"""

from __future__ import annotations

import json
import logging
import math
import posixpath
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from shipyard.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ShipyardError,
    StoreError,
    Unauthorized,
)
from shipyard.server.answers import json_bytes
from shipyard.store.protocol import TrackingStore
from shipyard.tracking import naming
from shipyard.tracking.records import DatasetInput, Experiment, Metric, Run

log = logging.getLogger(__name__)
DEFAULT_ID = "0"
DEFAULT_NAME = "Default"
SERVED_PREFIX = "shipyard-artifacts://artifacts/"
MLFLOW_ARTIFACTS = "mlflow-artifacts:/"
RUN_NAME_TAG = "mlflow.runName"
PARENT_TAG = "mlflow.parentRunId"
USER_TAG = "mlflow.user"
NOTE_TAG = "mlflow.note.content"

# (error class, HTTP status, MLflow error code): the first match wins, so subclasses come first. A store
# that is down is the one failure worth the client's retries.
ERRORS: list[tuple[type[ShipyardError], int, str]] = [
    (NotFound, 404, "RESOURCE_DOES_NOT_EXIST"),
    (AlreadyExists, 400, "RESOURCE_ALREADY_EXISTS"),
    (Conflict, 400, "INVALID_PARAMETER_VALUE"),  # a param logged again with another value, a dead run
    (InvalidInput, 400, "INVALID_PARAMETER_VALUE"),
    (Unauthorized, 401, "UNAUTHENTICATED"),
    (Forbidden, 403, "PERMISSION_DENIED"),
    (StoreError, 503, "TEMPORARILY_UNAVAILABLE"),
    (ShipyardError, 400, "INVALID_STATE"),
]


def error_response(status: int, code: str, message: str) -> Response:
    body = json_bytes({"error_code": code, "message": message})
    return Response(body, status_code=status, media_type="application/json")


def refusal(exc: ShipyardError) -> tuple[int, dict[str, Any]]:
    """``exc`` as the client expects an error: the status, and its MLflow code with our message (naming the
    bad thing)."""
    for kind, status, code in ERRORS:
        if isinstance(exc, kind):
            return status, {"error_code": code, "message": str(exc)}
    return 400, {"error_code": "INVALID_STATE", "message": str(exc)}  # pragma: no cover


def mlflow_error(exc: ShipyardError) -> Response:
    status, body = refusal(exc)
    return Response(json_bytes(body), status_code=status, media_type="application/json")


class MlflowRoute(APIRoute):
    """A route answering errors in MLflow's shape instead of the server's own."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except ShipyardError as exc:
                return mlflow_error(exc)
            except Exception:  # a bug: answered in the client's shape (and logged), not a dropped connection
                log.exception("MLflow route %s %s failed", request.method, request.url.path)
                return error_response(500, "INTERNAL_ERROR", "the server failed; its log has the details")

        return route


def answer(data: Any) -> Response:
    return Response(json_bytes(data), media_type="application/json")


# ---------------------------------------------------------------------- reading requests
async def body_of(request: Request) -> dict[str, Any]:
    """The JSON object a POST/PATCH sends (an empty body is ``{}``).

    Raises:
        InvalidInput: not JSON, or not an object.
    """
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}") from None
    except RecursionError:  # nested deeper than the parser goes: not a request any client sends
        raise InvalidInput("the request body is nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object")
    return data


def text(data: Mapping[str, Any], field: str, *, required: bool = True, default: str | None = None) -> Any:
    """``data[field]`` as a string; numbers are taken as their text (ids sent as numbers by other clients).

    Raises:
        InvalidInput: missing (when required) or not a string, naming the field.
    """
    value = data.get(field)
    if value is None or value == "":
        if required:
            raise InvalidInput(f"missing value for required parameter {field!r}")
        return default
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidInput(f"parameter {field!r} must be a string, got {type(value).__name__}")
    return str(value)


def integer(data: Mapping[str, Any], field: str, default: int | None = None) -> Any:
    """``data[field]`` as an int64 (a number, or its text: protobuf's JSON sends int64 either way)."""
    value = data.get(field)
    if value is None or value == "":
        return default
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"parameter {field!r} must be an integer, got {value!r}") from None
    if not -(2**63) <= number < 2**63:
        raise InvalidInput(f"parameter {field!r} is out of the int64 range: {number}")
    return number


def number(value: Any, field: str) -> float:
    """A metric value: a number, or ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (protobuf's JSON)."""
    if isinstance(value, bool):
        raise InvalidInput(f"{field} must be a number, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise InvalidInput(f"{field} must be a number, got {value!r}")


def key_values(data: Mapping[str, Any], field: str) -> list[tuple[str, str]]:
    """``[{"key", "value"}, …]`` (tags, params) as pairs; a value of any scalar type is kept as its text."""
    items = data.get(field) or []
    if not isinstance(items, list):
        raise InvalidInput(f"parameter {field!r} must be a list of {{key, value}} objects")
    pairs = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str) or not item["key"]:
            raise InvalidInput(f"{field}[{i}] must be an object with a non-empty string 'key'")
        value = item.get("value")
        pairs.append((checked_key(item["key"], field.rstrip("s")), "" if value is None else str(value)))
    return pairs


def checked_key(key: str, what: str) -> str:
    """A metric, param or tag name as MLflow accepts it: Shipyard's key rules, and (MLflow's own) a name
    that stays itself as a path — no ``..`` segments, no leading ``/`` — since MLflow's stores use names as
    file names."""
    naming.check_key(key, what)
    norm = posixpath.normpath(key)
    if norm != key or norm == "." or norm.startswith(("..", "/")):
        raise InvalidInput(f"invalid {what} name {key!r}: it must not resolve to another name as a path")
    return key


def run_id_of(data: Mapping[str, Any]) -> str:
    """The run a call names: ``run_id``, or the older ``run_uuid`` (the client sends both)."""
    found = text(data, "run_id", required=False) or text(data, "run_uuid", required=False)
    if found is None:
        raise InvalidInput("missing value for required parameter 'run_id'")
    return str(found)


# ---------------------------------------------------------------------- ids and locations
def experiment_of(store: TrackingStore, experiment_id: str) -> Experiment:
    """The experiment an MLflow id names (``"0"``: Default, made when first needed).

    Raises:
        NotFound: no experiment with that id.
    """
    if experiment_id == DEFAULT_ID:
        return store.get_or_create_experiment(DEFAULT_NAME)
    found = store.get_experiment(experiment_id)
    if found.experiment_id != experiment_id:  # get_experiment also takes a name: an id is wanted here
        raise NotFound(f"no experiment with id {experiment_id!r}")
    return found


def mlflow_experiment_id(experiment: Experiment) -> str:
    return DEFAULT_ID if experiment.name == DEFAULT_NAME else experiment.experiment_id


def location(uri: str) -> str:
    """A location as the client should use it: the server's own files as ``mlflow-artifacts:/…`` (which the
    client reaches through this server), anything else (a bucket, a path) as it is."""
    if uri.startswith(SERVED_PREFIX):
        return MLFLOW_ARTIFACTS + uri[len(SERVED_PREFIX) :]
    return uri


# ---------------------------------------------------------------------- records in MLflow's shapes
def experiment_json(experiment: Experiment) -> dict[str, Any]:
    tags = [] if not experiment.description else [{"key": NOTE_TAG, "value": experiment.description}]
    return {
        "experiment_id": mlflow_experiment_id(experiment),
        "name": experiment.name,
        "artifact_location": location(experiment.artifact_location),
        "lifecycle_stage": experiment.lifecycle_stage.value,
        "creation_time": experiment.created_at,
        "last_update_time": experiment.updated_at,
        "tags": tags,
    }


def _metric_value(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def run_info(run: Run, experiment_id: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "run_id": run.run_id,
        "run_uuid": run.run_id,
        "experiment_id": experiment_id,
        "run_name": run.tags.get(RUN_NAME_TAG) or run.name,
        "user_id": run.tags.get(USER_TAG) or run.user or "",
        "status": run.status.value,
        "start_time": run.start_time,
        "artifact_uri": location(run.artifact_uri),
        "lifecycle_stage": run.lifecycle_stage.value,
    }
    if run.end_time is not None:
        info["end_time"] = run.end_time
    return info


def run_json(
    run: Run,
    experiment_id: str,
    datasets: list[DatasetInput] | None = None,
    latest: Sequence[Metric] = (),
) -> dict[str, Any]:
    """A run as ``runs/get`` and ``runs/search`` give it. Metrics carry their latest point (MLflow's
    ``run.data.metrics``, with the step and time of ``latest``); their full series is
    ``metrics/get-history``."""
    at = {m.key: (m.step, m.timestamp) for m in latest}
    tags = dict(run.tags)
    tags.setdefault(RUN_NAME_TAG, run.name)
    if run.parent_run_id:
        tags[PARENT_TAG] = run.parent_run_id
    if run.user:
        tags.setdefault(USER_TAG, run.user)
    data = {
        "metrics": [_latest_json(k, v, at.get(k, (0, 0))) for k, v in run.metrics.items()],
        "params": [{"key": k, "value": v} for k, v in run.params.items()],
        "tags": [{"key": k, "value": v} for k, v in tags.items()],
    }
    found: dict[str, Any] = {"info": run_info(run, experiment_id), "data": data}
    if datasets:
        found["inputs"] = {"dataset_inputs": [dataset_json(d) for d in datasets]}
    return found


def _latest_json(key: str, value: float, at: tuple[int, int]) -> dict[str, Any]:
    return {"key": key, "value": _metric_value(value), "step": at[0], "timestamp": at[1]}


def dataset_json(dataset: DatasetInput) -> dict[str, Any]:
    tags = [] if not dataset.context else [{"key": "mlflow.data.context", "value": dataset.context}]
    kept = dataset.schema if isinstance(dataset.schema, Mapping) else {}
    schema, profile = kept.get("mlflow_schema"), kept.get("mlflow_profile")
    return {
        "tags": tags,
        "dataset": {
            "name": dataset.name,
            "digest": dataset.digest,
            "source_type": dataset.source_type,
            "source": kept.get("mlflow_source") or json.dumps({"uri": dataset.source}),
            **({"schema": schema} if isinstance(schema, str) else {}),
            **({"profile": profile} if isinstance(profile, str) else {}),
        },
    }


def metric_json(metric: Metric) -> dict[str, Any]:
    value = _metric_value(metric.value)
    return {"key": metric.key, "value": value, "timestamp": metric.timestamp, "step": metric.step}
