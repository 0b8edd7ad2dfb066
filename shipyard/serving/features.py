"""Features at serving time: Feast's online-features route, and a model's inputs built from its feature
service — the request sends entity keys (and any request data), the server looks the features up.

``POST /v1/features/get-online-features`` takes Feast's request shape::

    {"features": ["customer_stats:spend_30d", ...] | "feature_service": "churn",
     "entities": {"customer_id": [1, 2]}, "full_feature_names": false}

and answers Feast's: ``{"metadata": {"feature_names": [...]}, "results": [{"values": [...], "statuses":
[...], "event_timestamps": [...]}, ...]}`` (one result per name: the join keys first, then the features).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from shipyard.errors import InvalidInput, StoreError
from shipyard.features import FeatureStore
from shipyard.features.online import RedisOnlineStore
from shipyard.serving.repository import ModelConfig
from shipyard.serving.tensors import parse_json_body

_EPOCH = "1970-01-01T00:00:00Z"


class FeatureLookup:
    """A deployment's feature store, as the inference server uses it. Thread-safe (lookups run on the
    server's worker threads)."""

    def __init__(self, store: FeatureStore) -> None:
        self.store = store

    def check_services(self, services: Sequence[str]) -> None:
        """Every feature service a model names exists (at start-up: a typo is one line, no server)."""
        for name in services:
            self.store.feature_service(name)

    def problem(self) -> str | None:
        """Why lookups would fail now (the online store unreachable), for the readiness route; None: fine."""
        online = self.store.online_store
        if isinstance(online, RedisOnlineStore):
            try:
                online.ping()
            except StoreError as exc:
                return str(exc)
        return None

    def feast_request(self, body: bytes) -> dict[str, Any]:
        """Answer a Feast ``get-online-features`` body."""
        document = parse_json_body(body)
        if not isinstance(document, dict):
            raise InvalidInput('a get-online-features body is {"features": [...], "entities": {...}}')
        unknown = sorted(set(document) - {"features", "feature_service", "entities", "full_feature_names"})
        if unknown:
            raise InvalidInput(f"get-online-features: unknown field {unknown[0]!r}")
        features: Any = document.get("feature_service") or document.get("features")
        if not features:
            raise InvalidInput(
                "get-online-features: give features (a list of view:feature) or feature_service"
            )
        if not isinstance(features, str) and not (
            isinstance(features, list) and all(isinstance(f, str) for f in features)
        ):
            raise InvalidInput("get-online-features: features is a list of 'view:feature' strings")
        entities = document.get("entities")
        if (
            not isinstance(entities, dict)
            or not entities
            or not all(isinstance(v, list) for v in entities.values())
        ):
            raise InvalidInput('get-online-features: entities is {"join_key": [value, ...], ...}')
        found = self.store.get_online_features(
            features, entities, full_feature_names=bool(document.get("full_feature_names", False))
        )
        names = list(found.columns)
        results = []
        for name in names:
            values = [_json_value(v) for v in found.columns[name]]
            statuses = found.statuses.get(name) or ["PRESENT"] * len(values)
            stamps = found.event_ms.get(name) or [None] * len(values)
            results.append(
                {
                    "values": values,
                    "statuses": statuses,
                    "event_timestamps": [_EPOCH if s is None else _iso(s) for s in stamps],
                }
            )
        return {"metadata": {"feature_names": names}, "results": results}

    def model_columns(
        self, service: str, records: Sequence[Mapping[str, Any]], input_names: Sequence[str] | None
    ) -> list[tuple[str, np.ndarray]]:
        """A model's input columns for ``records`` (entity keys and request data): its service's features
        looked up, then, for inputs the service does not provide, the records' own values. Without a
        signature the model gets the service's features, in the service's order."""
        if not records or not all(isinstance(r, Mapping) for r in records):
            raise InvalidInput("a model served with features takes records: [{join_key: value, ...}, ...]")
        columns = {str(k): [r.get(k) for r in records] for k in dict.fromkeys(k for r in records for k in r)}
        found = self.store.get_online_features(service, columns)
        provided = [n for n in found.columns if n not in columns]  # the features, not the keys echoed
        wanted = list(input_names) if input_names is not None else provided
        out = []
        for name in wanted:
            if name in found.columns and name in provided:
                values = found.columns[name]
            elif name in columns:
                values = columns[name]
            else:
                raise InvalidInput(
                    f"the model's input {name!r} is neither a feature of service {service!r} nor a field of "
                    "the request"
                )
            out.append((name, _array(values)))
        return out


def services_from_models(
    configs: Sequence[ModelConfig], version_of: Callable[[str], Any]
) -> list[ModelConfig]:
    """``configs`` with each model's feature service filled in from what its registered versions recorded
    (``models.log`` notes the service of the run's training set) when the deployment names none; the
    versions of one model must agree. ``version_of``: a ``models:/`` URI's version (its ``lineage``)."""
    out = []
    for config in configs:
        if config.feature_service:
            out.append(config)
            continue
        found = set()
        for _, uri in config.targets():
            if not uri.startswith("models:/"):
                continue
            service = (version_of(uri).lineage or {}).get("feature_service") or {}
            if service.get("name"):
                found.add(str(service["name"]))
        if len(found) > 1:
            raise InvalidInput(
                f"model {config.name!r}: its versions were trained on different feature services "
                f"({', '.join(sorted(found))}); name one with feature_service"
            )
        out.append(dataclasses.replace(config, feature_service=found.pop()) if found else config)
    return out


def _array(values: list[Any]) -> np.ndarray:
    if all(isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=bool)
    numbers = [v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values]
    if all(numbers) and all(isinstance(v, int) for v in values):
        return np.asarray(values, dtype=np.int64)
    if all(numbers):  # a missing value (NOT_FOUND, stale) is NaN: the model's own missing-value handling
        return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    return np.asarray(values, dtype=object)


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat().replace("+00:00", "Z")
