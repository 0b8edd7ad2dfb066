"""Reading a running MLflow tracking server (``http://…``) through its REST API, as the ``mlflow`` client
does.

Experiments, runs (with params, tags and dataset inputs) and registered models come from the paged search
endpoints, each metric's history from ``metrics/get-history``, logged models from ``logged-models/search``.
Artifacts the server proxies (``mlflow-artifacts:/…``) download through ``/api/2.0/mlflow-artifacts``;
others are read where they lie when this machine can reach them. ``MLFLOW_TRACKING_TOKEN`` (bearer) or
``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` (basic) authenticate, as for the client. Nothing is written.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import httpx

from shipyard.errors import InvalidInput, NotFound, StoreError
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
from shipyard.store.artifacts import safe_relpath
from shipyard.tracking.chunks import Series

_API = "/api/2.0/mlflow"
_ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
_PAGE = 1000
_HISTORY_PAGE = 25000


class RestSource:
    """An MLflow tracking server at ``uri`` (``http://host:port``, with any path prefix it serves under)."""

    kind = "rest"

    def __init__(self, uri: str, *, timeout: float = 60.0) -> None:
        self.uri = uri
        self.base = uri.rstrip("/")
        auth: Any = None
        headers = {}
        if os.environ.get("MLFLOW_TRACKING_TOKEN"):
            headers["Authorization"] = f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"
        elif os.environ.get("MLFLOW_TRACKING_USERNAME"):
            auth = (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ.get("MLFLOW_TRACKING_PASSWORD", ""))
        self.http = httpx.Client(timeout=timeout, headers=headers, auth=auth)
        self._data: dict[str, dict[str, Any]] = {}  # runs/search answers by run id, until run_data reads them
        self._experiment_ids: list[str] = []
        self._get(f"{_API}/experiments/get", experiment_id="0", missing_ok=True)  # reachable, and MLflow?

    def close(self) -> None:
        self.http.close()

    # ------------------------------------------------------------------ HTTP
    def _call(self, method: str, path: str, *, missing_ok: bool = False, **kwargs: Any) -> Any:
        url = f"{self.base}{path}"
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise StoreError(f"cannot reach the MLflow server {self.uri!r}: {exc}") from exc
        if response.status_code == 404 and missing_ok:
            return {}
        if response.status_code >= 400:
            try:
                body = response.json()
                detail = f"{body.get('error_code')}: {body.get('message')}"
            except ValueError:
                detail = response.text[:200]
            if response.status_code == 404:
                raise NotFound(f"MLflow server {self.uri!r}: {path} answered 404 ({detail})")
            raise StoreError(
                f"MLflow server {self.uri!r}: {method} {path} answered {response.status_code} ({detail})"
            )
        try:
            return response.json() if response.content else {}
        except ValueError as exc:
            raise InvalidInput(
                f"{self.uri!r} is not an MLflow tracking server ({path} did not answer JSON)"
            ) from exc

    def _get(self, path: str, *, missing_ok: bool = False, **params: Any) -> Any:
        return self._call("GET", path, missing_ok=missing_ok, params=params)

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        return self._call("POST", path, json=body)

    def _pages(self, path: str, body: dict[str, Any], field: str) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            answer = self._post(path, {**body, **({"page_token": token} if token else {})})
            yield from answer.get(field, [])
            token = answer.get("next_page_token")
            if not token:
                return

    # ------------------------------------------------------------------ tracking
    def experiments(self) -> list[MlflowExperiment]:
        body = {"max_results": _PAGE, "view_type": "ALL"}
        out = [
            MlflowExperiment(
                str(e["experiment_id"]),
                e["name"],
                e.get("artifact_location", ""),
                e.get("lifecycle_stage", "active"),
                _int(e.get("creation_time")),
                _int(e.get("last_update_time")),
                _pairs(e.get("tags")),
            )
            for e in self._pages(f"{_API}/experiments/search", body, "experiments")
        ]
        self._experiment_ids = [e.experiment_id for e in out]
        return sorted(out, key=lambda e: (len(e.experiment_id), e.experiment_id))

    def runs(self, experiment_id: str) -> list[MlflowRun]:
        body = {"experiment_ids": [experiment_id], "max_results": _PAGE, "run_view_type": "ALL"}
        out = []
        for run in self._pages(f"{_API}/runs/search", body, "runs"):
            info = run["info"]
            run_id = info.get("run_id") or info["run_uuid"]
            self._data[run_id] = run
            out.append(
                MlflowRun(
                    run_id=run_id,
                    experiment_id=experiment_id,
                    name=info.get("run_name"),
                    user_id=info.get("user_id"),
                    status=info.get("status", "FINISHED"),
                    start_time=_int(info.get("start_time")),
                    end_time=_int(info.get("end_time")),
                    lifecycle_stage=info.get("lifecycle_stage", "active"),
                    artifact_uri=info.get("artifact_uri", ""),
                )
            )
        return sorted(out, key=lambda r: (r.start_time or 0, r.run_id))

    def run_data(self, runs: Sequence[MlflowRun]) -> dict[str, MlflowRunData]:
        out = {}
        for run in runs:
            found = (
                self._data.pop(run.run_id, None) or self._get(f"{_API}/runs/get", run_id=run.run_id)["run"]
            )
            data = found.get("data", {})
            metrics = {m["key"]: self._history(run.run_id, m["key"]) for m in data.get("metrics", [])}
            datasets = tuple(
                MlflowDataset(
                    name=d["dataset"].get("name", ""),
                    digest=d["dataset"].get("digest", ""),
                    source_type=d["dataset"].get("source_type", ""),
                    source=d["dataset"].get("source", ""),
                    schema=d["dataset"].get("schema"),
                    profile=d["dataset"].get("profile"),
                    tags=_pairs(d.get("tags")),
                )
                for d in found.get("inputs", {}).get("dataset_inputs", [])
            )
            out[run.run_id] = MlflowRunData(
                _pairs(data.get("params")), _pairs(data.get("tags")), metrics, datasets
            )
        return out

    def _history(self, run_id: str, key: str) -> Series:
        series = Series()
        token = None
        while True:
            params = {"run_id": run_id, "metric_key": key, "max_results": _HISTORY_PAGE}
            answer = self._get(
                f"{_API}/metrics/get-history", **params, **({"page_token": token} if token else {})
            )
            for point in answer.get("metrics", []):
                series.steps.append(_int(point.get("step")) or 0)
                series.values.append(_float(point.get("value")))
                series.timestamps.append(_int(point.get("timestamp")) or 0)
            token = answer.get("next_page_token")
            if not token:
                return series

    def logged_models(self) -> list[MlflowLoggedModel]:
        if not self._experiment_ids:
            self.experiments()
        if not self._experiment_ids:
            return []
        out = []
        body = {"experiment_ids": self._experiment_ids, "max_results": 100}
        try:
            found = list(self._pages(f"{_API}/logged-models/search", body, "models"))
        except NotFound:  # an MLflow 2 server: no logged models
            return []
        for model in found:
            info, data = model.get("info", {}), model.get("data", {})
            out.append(
                MlflowLoggedModel(
                    model_id=info["model_id"],
                    experiment_id=str(info.get("experiment_id")),
                    name=info.get("name", ""),
                    artifact_location=info.get("artifact_uri", ""),
                    source_run_id=info.get("source_run_id") or None,
                    status=str(info.get("status", "")).removeprefix("LOGGED_MODEL_"),
                    lifecycle_stage=info.get("lifecycle_stage", "active"),
                    creation_time=_int(info.get("creation_timestamp_ms")),
                    params=_pairs(data.get("params")),
                    tags=_pairs(info.get("tags")),
                    metrics=tuple(
                        (
                            m["key"],
                            _float(m.get("value")),
                            _int(m.get("step")) or 0,
                            _int(m.get("timestamp")) or 0,
                        )
                        for m in data.get("metrics", [])
                    ),
                )
            )
        return out

    # ------------------------------------------------------------------ registry
    def registered_models(self) -> list[MlflowRegisteredModel]:
        out = []
        models = self._paged_get(f"{_API}/registered-models/search", "registered_models", max_results=_PAGE)
        for model in models:
            name = model["name"]
            versions = self._paged_get(
                f"{_API}/model-versions/search", "model_versions", filter=f"name = '{_quote(name)}'"
            )
            out.append(
                MlflowRegisteredModel(
                    name=name,
                    description=model.get("description") or None,
                    creation_time=_int(model.get("creation_timestamp")),
                    last_updated_time=_int(model.get("last_updated_timestamp")),
                    tags=_pairs(model.get("tags")),
                    aliases={a["alias"]: int(a["version"]) for a in model.get("aliases", [])},
                    versions=tuple(
                        sorted((_version(v) for v in versions), key=lambda v: v.version),
                    ),
                )
            )
        return out

    def _paged_get(self, path: str, field: str, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        token = None
        while True:
            answer = self._get(path, **params, **({"page_token": token} if token else {}))
            out += answer.get(field, [])
            token = answer.get("next_page_token")
            if not token:
                return out

    # ------------------------------------------------------------------ artifacts
    @contextlib.contextmanager
    def fetch_artifacts(self, uri: str, artifacts_destination: str | None) -> Iterator[Path | None]:
        """Proxied artifacts downloaded into a temporary folder (removed afterwards); others as on disk."""
        if urlparse(uri).scheme != "mlflow-artifacts":
            with on_disk(uri, artifacts_destination) as folder:
                yield folder
            return
        root = urlparse(uri).path.strip("/")
        folder = Path(tempfile.mkdtemp(prefix="shipyard-mlflow-"))
        try:
            for rel in self._listing(root, ""):
                target = folder / safe_relpath(rel)
                target.parent.mkdir(parents=True, exist_ok=True)
                url = f"{self.base}{_ARTIFACTS}/{quote(f'{root}/{rel}')}"
                try:
                    with self.http.stream("GET", url) as response, target.open("wb") as out:
                        response.raise_for_status()
                        for chunk in response.iter_bytes():
                            out.write(chunk)
                except httpx.HTTPError as exc:
                    raise StoreError(f"downloading {uri}/{rel} from {self.uri!r} failed: {exc}") from exc
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _listing(self, root: str, prefix: str) -> list[str]:
        path = f"{root}/{prefix}".rstrip("/")
        answer = self._call("GET", _ARTIFACTS, params={"path": path})
        out = []
        for entry in answer.get("files", []):
            # Entries are named relative to the listed folder (the protocol's listing quirk).
            rel = f"{prefix}/{entry['path'].rsplit('/', 1)[-1]}".lstrip("/")
            out += self._listing(root, rel) if entry.get("is_dir") else [rel]
        return out


def _version(v: dict[str, Any]) -> MlflowModelVersion:
    return MlflowModelVersion(
        name=v["name"],
        version=int(v["version"]),
        description=v.get("description") or None,
        user_id=v.get("user_id") or None,
        stage=v.get("current_stage") or "None",
        source=v.get("source", ""),
        run_id=v.get("run_id") or None,
        status=v.get("status", "READY"),
        storage_location=v.get("storage_location"),
        creation_time=_int(v.get("creation_timestamp")),
        last_updated_time=_int(v.get("last_updated_timestamp")),
        tags=_pairs(v.get("tags")),
    )


def _pairs(items: Any) -> dict[str, str]:
    if isinstance(items, dict):
        return {str(k): str(v) for k, v in items.items()}
    return {i["key"]: i.get("value", "") for i in items or []}


def _int(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


def _float(value: Any) -> float:
    # JSON has no NaN or infinities: MLflow writes them as strings ("NaN", "Infinity", "-Infinity").
    return math.nan if value is None else float(value)


def _quote(name: str) -> str:
    return name.replace("'", "\\'")
