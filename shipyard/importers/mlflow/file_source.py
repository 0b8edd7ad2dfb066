"""Reading an MLflow file store (an ``mlruns`` folder) as MLflow's ``FileStore`` lays it out.

::

    mlruns/<experiment id>/meta.yaml, tags/<key>            (.trash/<experiment id>/ when deleted)
    mlruns/<experiment id>/<run id>/meta.yaml, params/<key>, tags/<key>, metrics/<key>, inputs/<id>/meta.yaml
    mlruns/<experiment id>/datasets/<id>/meta.yaml
    mlruns/<experiment id>/models/<model id>/meta.yaml, params/, tags/, metrics/   (MLflow 3 logged models)
    mlruns/models/<name>/meta.yaml, tags/, aliases/<alias>, version-<n>/meta.yaml, version-<n>/tags/

A key with ``/`` in it is a nested file; a metric line is ``timestamp value [step [dataset digest]]``.
Nothing is written.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput, StoreError
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
from shipyard.tracking.chunks import Series

_RUN_STATUS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
_LOGGED_MODEL_STATUS = {0: "UNSPECIFIED", 1: "PENDING", 2: "READY", 3: "FAILED"}
_RESERVED = {"models", ".trash", "datasets"}


class FileSource:
    """An ``mlruns`` folder (a path or a ``file://`` URI)."""

    kind = "file"

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.root = Path(uri.removeprefix("file://")).expanduser()
        if not self.root.is_dir():
            raise InvalidInput(f"MLflow store {uri!r} does not exist or is not a folder")
        if not any(p.is_dir() and (p / "meta.yaml").is_file() for p in self._experiment_dirs()):
            raise InvalidInput(f"{uri!r} is not an MLflow file store (no <experiment>/meta.yaml inside)")
        self._dirs: dict[str, Path] = {}

    def fetch_artifacts(
        self, uri: str, artifacts_destination: str | None
    ) -> contextlib.AbstractContextManager[Path | None]:
        return on_disk(uri, artifacts_destination)

    def close(self) -> None:
        pass

    def _experiment_dirs(self) -> list[Path]:
        found = [p for p in self.root.iterdir() if p.name not in _RESERVED]
        trash = self.root / ".trash"
        if trash.is_dir():
            found += list(trash.iterdir())
        return [p for p in found if p.is_dir() and (p / "meta.yaml").is_file()]

    # ------------------------------------------------------------------ tracking
    def experiments(self) -> list[MlflowExperiment]:
        out = []
        for folder in self._experiment_dirs():
            meta = _yaml(folder / "meta.yaml")
            experiment_id = str(meta.get("experiment_id", folder.name))
            self._dirs[experiment_id] = folder
            out.append(
                MlflowExperiment(
                    experiment_id,
                    str(meta["name"]),
                    str(meta.get("artifact_location") or ""),
                    str(meta.get("lifecycle_stage") or "active"),
                    meta.get("creation_time"),
                    meta.get("last_update_time"),
                    _values(folder / "tags"),
                )
            )
        return sorted(out, key=lambda e: (len(e.experiment_id), e.experiment_id))

    def runs(self, experiment_id: str) -> list[MlflowRun]:
        folder = self._dirs[experiment_id]
        out = []
        for run_dir in folder.iterdir():
            if run_dir.name in _RESERVED or not (run_dir / "meta.yaml").is_file():
                continue
            meta = _yaml(run_dir / "meta.yaml")
            status = meta.get("status", 3)
            out.append(
                MlflowRun(
                    run_id=str(meta.get("run_id") or meta.get("run_uuid") or run_dir.name),
                    experiment_id=experiment_id,
                    name=meta.get("run_name"),
                    user_id=meta.get("user_id"),
                    status=_RUN_STATUS.get(status, str(status)) if isinstance(status, int) else str(status),
                    start_time=meta.get("start_time"),
                    end_time=meta.get("end_time"),
                    lifecycle_stage=str(meta.get("lifecycle_stage") or "active"),
                    artifact_uri=str(meta.get("artifact_uri") or ""),
                )
            )
        return sorted(out, key=lambda r: (r.start_time or 0, r.run_id))

    def run_data(self, runs: Sequence[MlflowRun]) -> dict[str, MlflowRunData]:
        out = {}
        for run in runs:
            folder = self._dirs[run.experiment_id] / run.run_id
            metrics = {}
            for key, path in _files(folder / "metrics"):
                metrics[key] = _series(path)
            datasets = []
            inputs = folder / "inputs"
            if inputs.is_dir():
                for input_dir in sorted(inputs.iterdir()):
                    link = _yaml(input_dir / "meta.yaml")
                    if link.get("source_type") != "DATASET":
                        continue
                    meta = _yaml(
                        self._dirs[run.experiment_id] / "datasets" / str(link["source_id"]) / "meta.yaml"
                    )
                    datasets.append(
                        MlflowDataset(
                            name=str(meta.get("name")),
                            digest=str(meta.get("digest")),
                            source_type=str(meta.get("source_type")),
                            source=str(meta.get("source")),
                            schema=meta.get("schema"),
                            profile=meta.get("profile"),
                            tags={str(k): str(v) for k, v in (link.get("tags") or {}).items()},
                        )
                    )
            out[run.run_id] = MlflowRunData(
                _values(folder / "params"), _values(folder / "tags"), metrics, tuple(datasets)
            )
        return out

    def logged_models(self) -> list[MlflowLoggedModel]:
        if not self._dirs:
            self.experiments()
        out = []
        for experiment_id, folder in self._dirs.items():
            models = folder / "models"
            if not models.is_dir():
                continue
            for model_dir in sorted(models.iterdir()):
                if not (model_dir / "meta.yaml").is_file():
                    continue
                meta = _yaml(model_dir / "meta.yaml")
                status = meta.get("status", 2)
                points = []
                for key, path in _files(model_dir / "metrics"):
                    series = _series(path)
                    points += [
                        (key, series.values[i], series.steps[i], series.timestamps[i])
                        for i in range(len(series))
                    ]
                out.append(
                    MlflowLoggedModel(
                        model_id=str(meta.get("model_id") or model_dir.name),
                        experiment_id=experiment_id,
                        name=str(meta.get("name")),
                        artifact_location=str(meta.get("artifact_location") or ""),
                        source_run_id=meta.get("source_run_id"),
                        status=_LOGGED_MODEL_STATUS.get(status, str(status))
                        if isinstance(status, int)
                        else str(status),
                        lifecycle_stage=str(meta.get("lifecycle_stage") or "active"),
                        creation_time=meta.get("creation_timestamp"),
                        params=_values(model_dir / "params"),
                        tags=_values(model_dir / "tags"),
                        metrics=tuple(points),
                    )
                )
        return out

    # ------------------------------------------------------------------ registry
    def registered_models(self) -> list[MlflowRegisteredModel]:
        models = self.root / "models"
        if not models.is_dir():
            return []
        out = []
        for model_dir in sorted(models.iterdir()):
            if not (model_dir / "meta.yaml").is_file():
                continue
            meta = _yaml(model_dir / "meta.yaml")
            versions = []
            for version_dir in model_dir.glob("version-*"):
                v = _yaml(version_dir / "meta.yaml")
                versions.append(
                    MlflowModelVersion(
                        name=str(v.get("name", meta["name"])),
                        version=int(v["version"]),
                        description=v.get("description") or None,
                        user_id=v.get("user_id"),
                        stage=str(v.get("current_stage") or "None"),
                        source=str(v.get("source") or ""),
                        run_id=v.get("run_id") or None,
                        status=str(v.get("status") or "READY"),
                        storage_location=v.get("storage_location"),
                        creation_time=v.get("creation_timestamp"),
                        last_updated_time=v.get("last_updated_timestamp"),
                        tags=_values(version_dir / "tags"),
                    )
                )
            aliases = {k: int(v) for k, v in _values(model_dir / "aliases").items()}
            aliases.update({str(k): int(v) for k, v in (meta.get("aliases") or {}).items()})
            out.append(
                MlflowRegisteredModel(
                    name=str(meta["name"]),
                    description=meta.get("description") or None,
                    creation_time=meta.get("creation_timestamp"),
                    last_updated_time=meta.get("last_updated_timestamp"),
                    tags=_values(model_dir / "tags"),
                    aliases=aliases,
                    versions=tuple(sorted(versions, key=lambda x: x.version)),
                )
            )
        return out


def _yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        loaded = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError) as exc:
        raise StoreError(f"cannot read MLflow file {path}: {exc}") from exc
    return loaded if isinstance(loaded, dict) else {}


def _files(folder: Path) -> list[tuple[str, Path]]:
    """(key, file) under ``folder``; a key with ``/`` is a nested file."""
    out = []
    top = str(folder)
    # os.walk on strings: pathlib's globbing costs more than reading the small files themselves.
    for directory, _, names in os.walk(top):
        prefix = directory[len(top) + 1 :].replace(os.sep, "/")
        out += [(f"{prefix}/{name}" if prefix else name, Path(directory, name)) for name in names]
    return sorted(out)


def _values(folder: Path) -> dict[str, str]:
    return {key: path.read_text() for key, path in _files(folder)}


def _series(path: Path) -> Series:
    """A metric file's points: ``timestamp value [step [dataset digest]]`` a line."""
    series = Series()
    text = path.read_text()
    lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
    parts = text.split()
    if len(parts) == 3 * lines:  # every line has a step (what MLflow writes): the columns in one go each
        series.timestamps.extend(int(p) for p in parts[0::3])
        series.values.extend(float(p) for p in parts[1::3])
        series.steps.extend(int(p) for p in parts[2::3])
        return series
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        series.timestamps.append(int(fields[0]))
        series.values.append(float(fields[1]))
        series.steps.append(int(fields[2]) if len(fields) >= 3 else 0)
    return series
