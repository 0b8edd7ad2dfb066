"""The stores over HTTP: team mode, where a platform server (``shipyard server``) keeps the records.

:class:`HttpTrackingStore` implements :class:`~shipyard.store.protocol.TrackingStore` with one request per
call (a metric flush is one request, never one per point). Errors come back as the typed exceptions embedded
mode raises (the server's ``{"error": {"code", …}}``); connection errors, 502 and 503 are retried with
backoff, and an unreachable server is one line naming its URL.

Run keys are numbers this client hands out per run id; they never reach the server.
"""

from __future__ import annotations

import dataclasses
import itertools
import json as _json
import os
import ssl
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit
from urllib.request import getproxies, proxy_bypass

import httpx
import urllib3

from shipyard.config import Settings
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
from shipyard.lineage.records import ArtifactType, LineageArtifact, LineageGraph
from shipyard.registry.naming import check_alias
from shipyard.registry.records import ModelEvent, ModelVersion, RegisteredModel, Stage
from shipyard.registry.uri import RegistryUri, check_version
from shipyard.store import wire
from shipyard.store.http_datasets import HttpDatasetStore
from shipyard.store.keepalive import Dropped, Refused, Transport, render_head
from shipyard.store.protocol import RunKey
from shipyard.tracking.backing import BackedVersion
from shipyard.tracking.chunks import SeriesMap
from shipyard.tracking.cursors import RunPage, SearchCursor, decode_cursor, encode_cursor, search_fingerprint
from shipyard.tracking.filter_parser import parse_order_by
from shipyard.tracking.records import (
    DEFAULT_EXPERIMENT,
    ArtifactRecord,
    DatasetInput,
    Experiment,
    GcReport,
    Metric,
    Run,
    RunStatus,
    new_id,
)
from shipyard.tracking.values import checked_texts

if TYPE_CHECKING:
    from shipyard.features.records import Change, DefinitionVersion
    from shipyard.pipelines.schedule_store import Schedule

_CODES: dict[str, type[ShipyardError]] = {
    "NOT_FOUND": NotFound,
    "ALREADY_EXISTS": AlreadyExists,
    "CONFLICT": Conflict,
    "INVALID_INPUT": InvalidInput,
    "UNPROCESSABLE": InvalidInput,
    "UNAUTHORIZED": Unauthorized,
    "FORBIDDEN": Forbidden,
    "STORE_UNAVAILABLE": StoreError,
    "TOO_LARGE": InvalidInput,
}
_RETRY_STATUSES = frozenset({502, 503, 504})
_AGENT = "shipyard-client"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# How long a call keeps retrying: briefly for a server never reached (a wrong URL should fail fast), longer
# once it answered (a restarting server or database comes back within seconds).
_FIRST_CONTACT_S = 1.5
_RECONNECT_S = 15.0


class HttpClient:
    """JSON requests to one server, with retries and typed errors.

    Straight to the server on a lean keep-alive transport (:mod:`shipyard.store.keepalive`: a small request
    costs the client ~60 µs there, ~250 µs through urllib3, and a training script's run is two requests);
    through urllib3 when the environment names a proxy for the server. Thread-safe; proxies and CA bundles
    come from the environment as for httpx (``HTTPS_PROXY``, ``NO_PROXY``, ``SSL_CERT_FILE``,
    ``SSL_CERT_DIR``).
    """

    def __init__(self, url: str, *, token: str | None = None, timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        self._headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if token:
            if any(c in token for c in "\r\n\0"):
                raise InvalidInput("the tracking token holds a line break; copy it again without one")
            self._headers["Authorization"] = f"Bearer {token}"
        self._prefix = f"{parts.path}/api/v1"
        self._manager: urllib3.PoolManager | None = None
        self._transport: Transport | None = None
        proxy = getproxies().get(parts.scheme)
        if proxy and not proxy_bypass(parts.hostname or ""):
            self._manager = urllib3.ProxyManager(proxy, **_pool_options(self.url, timeout_s))
            self._prefix = f"{self.url}/api/v1"
        else:
            self._transport = Transport(
                parts.hostname or "localhost",
                parts.port or (443 if parts.scheme == "https" else 80),
                connect_timeout_s=min(timeout_s, 10.0),
                read_timeout_s=timeout_s,
                ssl_context=_ssl_context() if parts.scheme == "https" else None,
            )
            self._headers = {"Host": self._transport.host_header, "User-Agent": _AGENT, **self._headers}
        self._answered = False

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        content: tuple[bytes, str] | None = None,
    ) -> Any:
        """Send one request and return its JSON answer, retrying with backoff what is safe to retry.

        The body is ``json``, or ``content``: (bytes, media type).

        A read, or a write carrying an ``idempotency_key`` (the server stores it once, however often it
        arrives), is retried after any connection error and 502/503/504. Any other write is retried only
        when it cannot have been applied: the connection was refused, or the server answered 503 (it
        rolled back). An unreachable server is a `StoreError` naming its URL.
        """
        return self.call_with_headers(
            method, path, json=json, params=params, idempotency_key=idempotency_key, content=content
        )[0]

    def call_with_headers(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        content: tuple[bytes, str] | None = None,
    ) -> tuple[Any, dict[str, str]]:
        """:meth:`call`, returning the answer's headers too (names in lower case)."""
        repeatable = method in _SAFE_METHODS or idempotency_key is not None
        headers = self._headers
        if idempotency_key or content:
            headers = {**headers}
            if idempotency_key:
                headers["Idempotency-Key"] = idempotency_key
            if content:
                headers["Content-Type"] = content[1]
        url = self._prefix + path
        if params:
            url += "?" + urlencode(
                [(k, _query_value(v)) for k, v in params.items() if v is not None], doseq=True
            )
        body = content[0] if content else None
        if json is not None:
            body = _json.dumps(json, separators=(",", ":")).encode()
        deadline = time.monotonic() + (_RECONNECT_S if self._answered else _FIRST_CONTACT_S)
        delay = 0.05
        while True:
            try:
                status, data, answer_headers = self._exchange(method, url, headers, body)
            except (Refused, Dropped) as exc:
                # A refused connection cannot have been applied; a dropped one may have been.
                if not (repeatable or isinstance(exc, Refused)) or time.monotonic() + delay > deadline:
                    raise StoreError(f"cannot reach the Shipyard server at {self.url}: {exc}") from None
            else:
                self._answered = True
                retry = status in _RETRY_STATUSES and (repeatable or status == 503)
                if not retry or time.monotonic() + delay > deadline:
                    named = {
                        name.decode("latin-1").lower(): value.decode("latin-1")
                        for name, value in answer_headers
                    }
                    return _decoded(status, data, self.url), named
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _exchange(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        if self._transport is not None:
            if body is not None or method not in _SAFE_METHODS:
                headers = {**headers, "Content-Length": str(len(body or b""))}
            try:
                head = render_head(method, url, headers)
            except ValueError as exc:
                raise InvalidInput(str(exc)) from None
            return self._transport.request(head, body)
        assert self._manager is not None
        try:
            response = self._manager.urlopen(
                method, url, body=body, headers=headers, retries=False, redirect=False
            )
        except urllib3.exceptions.NewConnectionError as exc:
            raise Refused(_reason(exc)) from None
        except urllib3.exceptions.HTTPError as exc:
            raise Dropped(_reason(exc)) from None
        answer_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
        return response.status, response.data, answer_headers

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        if self._manager is not None:
            self._manager.clear()


def _pool_options(url: str, timeout_s: float) -> dict[str, Any]:
    options: dict[str, Any] = {
        "timeout": urllib3.Timeout(connect=min(timeout_s, 10.0), read=timeout_s),
        "maxsize": 32,  # connections kept for reuse: one per thread calling at once
    }
    if url.startswith("https:"):
        options["ssl_context"] = _ssl_context()
    return options


def _ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context(
        cafile=os.environ.get("SSL_CERT_FILE") or _default_ca_file(),
        capath=os.environ.get("SSL_CERT_DIR") or None,
    )


def _default_ca_file() -> str | None:
    try:
        import certifi
    except ImportError:  # the system's store, then
        return None
    return certifi.where()


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _reason(exc: Exception) -> str:
    # urllib3 wraps the cause (refused, reset, timed out) in layers of pool details; the cause is the news.
    reason = getattr(exc, "reason", None) or exc
    return str(getattr(reason, "__cause__", None) or reason)


def _decoded(status: int, content: bytes, url: str) -> Any:
    """The JSON of a 2xx answer; the typed exception of an error (``{"error": {"code", "message"}}``)."""
    if status < 400:
        return None if status == 204 or not content else _json.loads(content)
    try:
        error = _json.loads(content)["error"]
        kind, message = _CODES.get(error["code"], ShipyardError), str(error["message"])
    except (ValueError, KeyError, TypeError):
        kind, message = StoreError, f"the Shipyard server at {url} answered {status}"
    raise kind(message)


def _answer(response: httpx.Response, url: str) -> Any:
    return _decoded(response.status_code, response.content, url)


class HttpTrackingStore:
    """Tracking records on a platform server (a :class:`~shipyard.store.protocol.TrackingStore`)."""

    buffers_params = True

    def __init__(self, client: HttpClient) -> None:
        self._client = client
        self._keys: dict[str, RunKey] = {}
        self._ids: dict[RunKey, str] = {}
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def _key(self, run_id: str) -> RunKey:
        with self._lock:
            key = self._keys.get(run_id)
            if key is None:
                key = self._keys[run_id] = next(self._counter)
                self._ids[key] = run_id
            return key

    def _id(self, run_key: RunKey) -> str:
        try:
            return self._ids[run_key]
        except KeyError:
            raise NotFound(f"run #{run_key} is not known to this client") from None

    def _series(self, pending: SeriesMap | None) -> list[dict[str, Any]]:
        return [
            wire.series_out(self._id(key), name, s) for (key, name), s in (pending or {}).items() if len(s)
        ]

    # experiments
    def create_experiment(
        self, name: str, *, description: str | None = None, artifact_location: str | None = None
    ) -> Experiment:
        body = {"name": name, "description": description, "artifact_location": artifact_location}
        return wire.experiment(self._client.call("POST", "/experiments", json=body))

    def get_experiment(self, id_or_name: str) -> Experiment:
        return wire.experiment(self._client.call("GET", f"/experiments/{_part(id_or_name)}"))

    def get_or_create_experiment(self, name: str) -> Experiment:
        return wire.experiment(self._client.call("PUT", f"/experiments/{_part(name)}"))

    def list_experiments(self, *, include_deleted: bool = False) -> list[Experiment]:
        found = self._client.call("GET", "/experiments", params={"include_deleted": include_deleted})
        return [wire.experiment(e) for e in found]

    def delete_experiment(self, id_or_name: str, *, force: bool = False) -> Experiment:
        found = self._client.call("DELETE", f"/experiments/{_part(id_or_name)}", params={"force": force})
        return wire.experiment(found)

    def restore_experiment(self, id_or_name: str) -> Experiment:
        return wire.experiment(self._client.call("POST", f"/experiments/{_part(id_or_name)}/restore"))

    def rename_experiment(self, id_or_name: str, new_name: str) -> Experiment:
        found = self._client.call("PATCH", f"/experiments/{_part(id_or_name)}", json={"name": new_name})
        return wire.experiment(found)

    def versions_backed_by_experiment(self, id_or_name: str) -> list[BackedVersion]:
        found = self._client.call("GET", f"/experiments/{_part(id_or_name)}/backed-versions")
        return [wire.backed_version(v) for v in found]

    # runs
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
        body = {
            "experiment": experiment,
            "name": name,
            "parent_run_id": parent_run_id,
            "tags": _checked(tags, "tag"),
            **({} if beats else {"beats": False}),
        }
        key = idempotency_key or new_id()
        run = wire.run(self._client.call("POST", "/runs", json=body, idempotency_key=key))
        return run, self._key(run.run_id)

    def resume_run(self, run_id: str) -> tuple[Run, RunKey]:
        run = wire.run(self._client.call("POST", f"/runs/{_part(run_id)}/resume"))
        return run, self._key(run.run_id)

    def run_key(self, run_id: str) -> RunKey:
        if run_id not in self._keys:
            self.get_run(run_id)  # NotFound names a run the server does not have
        return self._key(run_id)

    def beat(self, run_keys: Iterable[RunKey]) -> None:
        ids = [self._id(key) for key in run_keys]
        if ids:
            self._client.call("POST", "/runs/beat", json={"run_ids": ids})

    def get_run(self, run_id: str) -> Run:
        return wire.run(self._client.call("GET", f"/runs/{_part(run_id)}"))

    def get_run_by_name(self, name: str, experiment: str = DEFAULT_EXPERIMENT) -> Run:
        return wire.run(self._client.call("GET", "/runs", params={"name": name, "experiment": experiment}))

    def find_run(self, id_or_name: str, experiment: str | None = None) -> Run:
        params = {"id_or_name": id_or_name, **({"experiment": experiment} if experiment else {})}
        return wire.run(self._client.call("GET", "/runs", params=params))

    def set_terminated(
        self,
        run_key: RunKey,
        status: RunStatus,
        pending: SeriesMap | None = None,
        *,
        idempotency_key: str | None = None,
        params: Mapping[RunKey, Mapping[str, Any]] | None = None,
    ) -> int:
        body = {"status": RunStatus(status).value, "metrics": self._series(pending)}
        if params:
            body["params"] = self._params(params)
        path, key = f"/runs/{self._id(run_key)}/end", idempotency_key or new_id()
        return int(self._client.call("POST", path, json=body, idempotency_key=key)["end_time"])

    def run_status(self, run_key: RunKey) -> RunStatus:
        return RunStatus(self._client.call("GET", f"/runs/{self._id(run_key)}/status")["status"])

    def delete_run(self, run_id: str, *, force: bool = False) -> list[BackedVersion]:
        found = self._client.call("DELETE", f"/runs/{_part(run_id)}", params={"force": force})
        return [wire.backed_version(v) for v in found]

    def restore_run(self, run_id: str) -> None:
        self._client.call("POST", f"/runs/{_part(run_id)}/restore")

    # params, tags, metrics
    def log_params(self, run_key: RunKey, values: Mapping[str, Any]) -> None:
        body = {"values": _checked(values, "param")}
        self._client.call("POST", f"/runs/{self._id(run_key)}/params", json=body)

    def set_tags(self, run_key: RunKey, values: Mapping[str, Any]) -> None:
        body = {"values": _checked(values, "tag")}
        self._client.call("PATCH", f"/runs/{self._id(run_key)}/tags", json=body)

    def delete_tag(self, run_key: RunKey, key: str) -> None:
        self._client.call("DELETE", f"/runs/{self._id(run_key)}/tags/{_part(key)}")

    def write_metrics(
        self,
        pending: SeriesMap,
        *,
        idempotency_key: str | None = None,
        params: Mapping[RunKey, Mapping[str, Any]] | None = None,
    ) -> None:
        entries = [(self._id(k), key, s) for (k, key), s in (pending or {}).items() if len(s)]
        checked = self._params(params) if params else {}
        if entries or checked:
            body = wire.pack_batch(entries, checked)
            self._client.call(
                "POST",
                "/metrics/binary",
                content=(body, wire.PACKED_METRICS),
                idempotency_key=idempotency_key or new_id(),
            )

    def _params(self, params: Mapping[RunKey, Mapping[str, Any]]) -> dict[str, dict[str, str]]:
        return {self._id(k): _checked(v, "param") or {} for k, v in params.items() if v}

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        found = self._client.call("GET", f"/runs/{_part(run_id)}/metrics/{_part(key)}/history")
        return [wire.metric(m) for m in found]

    def latest_metrics(self, run_ids: Sequence[str]) -> dict[str, list[Metric]]:
        if not run_ids:
            return {}
        found = self._client.call("POST", "/runs/latest-metrics", json={"run_ids": list(run_ids)})
        return {run_id: [wire.metric(m) for m in points] for run_id, points in found.items()}

    # artifact records and datasets
    def record_artifacts(self, run_key: RunKey, files: Iterable[ArtifactRecord]) -> None:
        body = {"files": [wire.to_json(f) for f in files]}
        if body["files"]:
            self._client.call("POST", f"/runs/{self._id(run_key)}/artifact-records", json=body)

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[ArtifactRecord]:
        found = self._client.call("GET", f"/runs/{_part(run_id)}/artifact-records", params={"prefix": prefix})
        return [wire.artifact_record(f) for f in found]

    def log_dataset_input(self, run_key: RunKey, dataset: DatasetInput) -> None:
        self._client.call("POST", f"/runs/{self._id(run_key)}/datasets", json=wire.to_json(dataset))

    def dataset_inputs(self, run_id: str) -> list[DatasetInput]:
        return [wire.dataset_input(d) for d in self._client.call("GET", f"/runs/{_part(run_id)}/datasets")]

    # queries
    def runs_with_tag(
        self, key: str, value: str, *, status: RunStatus | None = None, limit: int = 10
    ) -> list[Run]:
        params = {"key": key, "value": value, "limit": limit, **({"status": status.value} if status else {})}
        return [wire.run(r) for r in self._client.call("GET", "/runs/with-tag", params=params)]

    def child_runs(self, run_id: str, *, limit: int = 100) -> tuple[list[Run], int]:
        found = self._client.call("GET", f"/runs/{_part(run_id)}/children", params={"limit": limit})
        return [wire.run(r) for r in found["runs"]], int(found["total"])

    def recent_metric_keys(
        self, run_ids: Sequence[str], *, limit: int = 6, exclude_prefixes: Sequence[str] = ("system/",)
    ) -> list[str]:
        body = {"run_ids": list(run_ids), "limit": limit, "exclude_prefixes": list(exclude_prefixes)}
        return list(self._client.call("POST", "/runs/recent-metric-keys", json=body))

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
        # A cursor crosses the wire as the string the route expects, bound to this very search.
        fingerprint = search_fingerprint(experiment_ids, filter, order_by, include_deleted)
        body = {
            "experiment_ids": list(experiment_ids),
            "filter": filter,
            "order_by": None if order_by is None else list(order_by),
            "offset": offset,
            "limit": limit,
            "columns": None if columns is None else list(columns),
            "include_deleted": include_deleted,
        }
        if after is not None:  # only then: a server older than cursors refuses the field
            body["after"] = encode_cursor(after, fingerprint)
        found, headers = self._client.call_with_headers("POST", "/runs/search", json=body)
        next_text = headers.get(wire.NEXT_CURSOR_HEADER.lower())
        next_cursor = None
        if next_text is not None:
            keys = parse_order_by(order_by)
            next_cursor = decode_cursor(next_text, fingerprint, keys, name="the server's next cursor")
        return RunPage([wire.run(r) for r in found], next_cursor)

    # maintenance: the server does it on its own store and artifact storage
    def collect_garbage(self, *, older_than_ms: int = 0, dry_run: bool = False) -> GcReport:
        body = {"older_than_ms": older_than_ms, "dry_run": dry_run}
        found = self._client.call("POST", "/admin/gc", json=body)
        return GcReport(**{**found, "kept": tuple(found["kept"])})

    def mark_stale_runs(self, *, timeout_s: float | None = None, dry_run: bool = False) -> list[Run]:
        body = {"timeout_s": timeout_s, "dry_run": dry_run}
        return [wire.run(r) for r in self._client.call("POST", "/admin/stale-runs", json=body)]


class HttpRegistryStore:
    """Registry records on a platform server (a :class:`~shipyard.store.protocol.RegistryStore`)."""

    def __init__(self, client: HttpClient) -> None:
        self._client = client

    def create_model(
        self, name: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel:
        body = {"name": name, "description": description, "tags": _texts(tags)}
        return wire.registered_model(self._client.call("POST", "/registered-models", json=body))

    def get_model(self, name: str) -> RegisteredModel:
        return wire.registered_model(self._client.call("GET", f"/registered-models/{_part(name)}"))

    def list_models(self) -> list[RegisteredModel]:
        return [wire.registered_model(m) for m in self._client.call("GET", "/registered-models")]

    def delete_model(self, name: str, *, force: bool = False) -> None:
        self._client.call("DELETE", f"/registered-models/{_part(name)}", params={"force": force})

    def rename_model(self, name: str, new_name: str) -> RegisteredModel:
        found = self._client.call("PATCH", f"/registered-models/{_part(name)}", json={"name": new_name})
        return wire.registered_model(found)

    def update_model(self, name: str, *, description: str | None) -> RegisteredModel:
        path = f"/registered-models/{_part(name)}"
        found = self._client.call("PATCH", path, json={"description": description})
        return wire.registered_model(found)

    def delete_model_tag(self, name: str, key: str) -> None:
        self._client.call("DELETE", f"/registered-models/{_part(name)}/tags/{_part(key)}")

    def create_version(
        self,
        name: str,
        *,
        flavor: str,
        source_uri: str,
        package_uri: str,
        manifest_sha256: str,
        run_id: str | None,
        lineage: Mapping[str, Any],
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        body = {
            "flavor": flavor,
            "source_uri": source_uri,
            "package_uri": package_uri,
            "manifest_sha256": manifest_sha256,
            "run_id": run_id,
            "lineage": wire.to_json(dict(lineage)),
            "description": description,
            "tags": _texts(tags),
        }
        found = self._client.call("POST", f"/registered-models/{_part(name)}/versions", json=body)
        return wire.model_version(found)

    def get_version(self, name: str, version: int) -> ModelVersion:
        found = self._client.call("GET", f"/registered-models/{_part(name)}/versions/{_version(version)}")
        return wire.model_version(found)

    def list_versions(self, name: str) -> list[ModelVersion]:
        found = self._client.call("GET", f"/registered-models/{_part(name)}/versions")
        return [wire.model_version(v) for v in found]

    def resolve(self, ref: RegistryUri) -> ModelVersion:
        body = {
            "name": ref.name,
            "version": None if ref.version is None else _version(ref.version),
            "alias": ref.alias,
            "stage": None if ref.stage is None else ref.stage.value,
            "latest": ref.latest,
        }
        return wire.model_version(self._client.call("POST", "/registered-models/resolve", json=body))

    def delete_version(self, name: str, version: int, *, force: bool = False) -> ModelVersion:
        path = f"/registered-models/{_part(name)}/versions/{_version(version)}"
        return wire.model_version(self._client.call("DELETE", path, params={"force": force}))

    def set_alias(self, name: str, alias: str, version: int, *, reason: str | None = None) -> ModelVersion:
        check_alias(alias)
        path = f"/registered-models/{_part(name)}/aliases/{_part(alias)}"
        body = {"version": _version(version), "reason": reason}
        return wire.model_version(self._client.call("PUT", path, json=body))

    def delete_alias(self, name: str, alias: str) -> None:
        check_alias(alias)
        self._client.call("DELETE", f"/registered-models/{_part(name)}/aliases/{_part(alias)}")

    def transition(
        self,
        name: str,
        version: int,
        stage: Stage | str,
        *,
        reason: str | None = None,
        archive_others: bool = False,
    ) -> ModelVersion:
        path = f"/registered-models/{_part(name)}/versions/{_version(version)}/stage"
        body = {
            "stage": str(getattr(stage, "value", stage)),
            "reason": reason,
            "archive_others": archive_others,
        }
        return wire.model_version(self._client.call("POST", path, json=body))

    def update_version(self, name: str, version: int, *, description: str | None) -> ModelVersion:
        path = f"/registered-models/{_part(name)}/versions/{_version(version)}"
        return wire.model_version(self._client.call("PATCH", path, json={"description": description}))

    def delete_version_tag(self, name: str, version: int, key: str) -> None:
        path = f"/registered-models/{_part(name)}/versions/{_version(version)}/tags/{_part(key)}"
        self._client.call("DELETE", path)

    def set_version_tags(self, name: str, version: int, tags: Mapping[str, Any]) -> None:
        path = f"/registered-models/{_part(name)}/versions/{_version(version)}/tags"
        self._client.call("PATCH", path, json={"tags": _texts(tags)})

    def set_model_tags(self, name: str, tags: Mapping[str, Any]) -> None:
        self._client.call("PATCH", f"/registered-models/{_part(name)}/tags", json={"tags": _texts(tags)})

    def record_gate(
        self, name: str, version: int, *, passed: bool, summary: str, facts: Mapping[str, Any]
    ) -> ModelVersion:
        path = f"/registered-models/{_part(name)}/versions/{_version(version)}/gate"
        body = {"passed": passed, "summary": summary, "facts": _texts(facts)}
        return wire.model_version(self._client.call("POST", path, json=body))

    def events(self, name: str) -> list[ModelEvent]:
        found = self._client.call("GET", f"/registered-models/{_part(name)}/events")
        return [wire.model_event(e) for e in found]


class HttpLineageStore:
    """Lineage records on a platform server (a :class:`~shipyard.store.protocol.LineageStore`)."""

    def __init__(self, client: HttpClient) -> None:
        self._client = client

    def record(
        self,
        execution_type: str,
        *,
        name: str | None = None,
        run_id: str | None = None,
        pipeline_run_id: str | None = None,
        inputs: Iterable[tuple[str, ArtifactType, str, str | None]] = (),
        outputs: Iterable[tuple[str, ArtifactType, str, str | None]] = (),
        properties: Mapping[str, Any] | None = None,
    ) -> int:
        def refs(found: Iterable[tuple[str, ArtifactType, str, str | None]]) -> list[dict[str, Any]]:
            return [
                {"uri": uri, "type": ArtifactType(kind).value, "sha256": sha, "name": label}
                for uri, kind, sha, label in found
            ]

        body = {
            "execution_type": execution_type,
            "name": name,
            "run_id": run_id,
            "pipeline_run_id": pipeline_run_id,
            "inputs": refs(inputs),
            "outputs": refs(outputs),
            "properties": wire.to_json(dict(properties or {})),
        }
        return int(self._client.call("POST", "/lineage/executions", json=body)["execution_id"])

    def find(self, uri: str) -> LineageArtifact:
        return wire.lineage_artifact(self._client.call("GET", "/lineage/artifacts", params={"uri": uri}))

    def upstream(self, uri: str) -> LineageGraph:
        return wire.lineage_graph(self._client.call("GET", "/lineage/upstream", params={"uri": uri}))


class HttpScheduleStore:
    """Pipeline schedules on a platform server (a :class:`~shipyard.store.protocol.ScheduleStore`)."""

    def __init__(self, client: HttpClient) -> None:
        self._client = client

    def insert(self, row: Mapping[str, Any]) -> Schedule:
        return wire.schedule(self._client.call("POST", "/schedules", json={"row": wire.to_json(dict(row))}))

    def get(self, name: str) -> Schedule | None:
        try:
            return wire.schedule(self._client.call("GET", f"/schedules/{_part(name)}"))
        except NotFound:
            return None

    def list(self) -> list[Schedule]:
        return [wire.schedule(s) for s in self._client.call("GET", "/schedules")]

    def update(self, schedule_id: str, values: Mapping[str, Any]) -> None:
        body = {"values": wire.to_json(dict(values))}
        self._client.call("PATCH", f"/schedules/by-id/{_part(schedule_id)}", json=body)

    def delete(self, name: str) -> bool:
        return bool(self._client.call("DELETE", f"/schedules/{_part(name)}")["deleted"])

    def due(self, now_ms: int) -> list[Schedule]:
        return [
            wire.schedule(s) for s in self._client.call("GET", "/schedules/due", params={"now_ms": now_ms})
        ]

    def earliest_next_run(self) -> int | None:
        return self._client.call("GET", "/schedules/earliest-next-run")["next_run_at"]

    def advance(self, schedule_id: str, expected_next_run_at: int, next_run_at: int, updated_at: int) -> bool:
        body = {
            "expected_next_run_at": expected_next_run_at,
            "next_run_at": next_run_at,
            "updated_at": updated_at,
        }
        return bool(
            self._client.call("POST", f"/schedules/by-id/{_part(schedule_id)}/advance", json=body)["won"]
        )


class HttpFeatureRegistryStore:
    """Feature definitions' versions on a platform server (a
    :class:`~shipyard.store.protocol.FeatureRegistryStore`)."""

    def __init__(self, client: HttpClient) -> None:
        self._client = client

    # NOTE: the records are imported where used: shipyard.features pulls in pandas and pyarrow, which a
    # team-mode client that only logs runs should not pay for.
    def record(self, changes: Sequence[Change], user: str) -> list[DefinitionVersion]:
        from shipyard.features.records import DefinitionVersion

        del user  # the server records the caller its token names
        body = {"changes": [_change_json(c) for c in changes]}
        return [DefinitionVersion(**v) for v in self._client.call("POST", "/features/definitions", json=body)]

    def current(self) -> list[DefinitionVersion]:
        from shipyard.features.records import DefinitionVersion

        return [DefinitionVersion(**v) for v in self._client.call("GET", "/features/definitions")]

    def history(self, kind: str, name: str) -> list[DefinitionVersion]:
        from shipyard.features.records import DefinitionVersion

        path = f"/features/definitions/{_part(kind)}/{_part(name)}"
        return [DefinitionVersion(**v) for v in self._client.call("GET", path)]


def _change_json(change: Change) -> dict[str, Any]:
    data = dataclasses.asdict(change)
    data["details"] = list(change.details)
    return data


class HttpStores:
    """A deployment's stores on a platform server (a :class:`~shipyard.store.protocol.MetadataStores`)."""

    def __init__(self, url: str, settings: Settings, *, token: str | None = None) -> None:
        self.url = url
        self.settings = settings
        self.client = HttpClient(url, token=token)
        self.tracking = HttpTrackingStore(self.client)
        self.registry = HttpRegistryStore(self.client)
        self.lineage = HttpLineageStore(self.client)
        self.schedules = HttpScheduleStore(self.client)
        self.features = HttpFeatureRegistryStore(self.client)
        self.datasets = HttpDatasetStore(self.client)


def _part(value: str) -> str:
    """A path segment: ids and names are sent escaped, so '/' or '..' in a name cannot change the route
    (a name the server's routes cannot match is a plain 404)."""
    from urllib.parse import quote

    return quote(str(value), safe="")


def _text(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def _checked(values: Mapping[str, Any] | None, what: str) -> dict[str, str] | None:
    """Values as the text a store keeps, checked here as the SQL store checks them (same errors, no
    request for a value that cannot be stored)."""
    return None if values is None else checked_texts(values, what)


def _texts(values: Mapping[str, Any] | None) -> dict[str, str] | None:
    return _checked(values, "tag")


def _version(version: int) -> int:
    """A version number checked here, so a bad one is the same InvalidInput as embedded (not a 422)."""
    return check_version(version)
