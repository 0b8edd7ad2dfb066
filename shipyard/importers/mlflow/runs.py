"""Turning one MLflow run into a :class:`~shipyard.tracking.records.RunCopy`,
copying its artifact files on the way.

Files are copied before the run's records are stored: an import killed in between leaves files without a
run, and the next import copies them again (writes are atomic and replace); the run never appears without
its files.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from shipyard.config import Settings
from shipyard.errors import InvalidInput
from shipyard.importers.mlflow.records import (
    CONTEXT_TAG,
    PARENT_TAG,
    RUN_NAME_TAG,
    MlflowDataset,
    MlflowLoggedModel,
    MlflowRun,
    MlflowRunData,
)
from shipyard.importers.mlflow.report import ImportReport
from shipyard.importers.mlflow.source import FetchArtifacts, local_files
from shipyard.registry import mlflow_packages as packages
from shipyard.registry.package import MANIFEST
from shipyard.store.artifacts import ArtifactStore
from shipyard.tracking import naming
from shipyard.tracking.chunks import Series
from shipyard.tracking.records import (
    ArtifactRecord,
    DatasetInput,
    Experiment,
    LifecycleStage,
    RunCopy,
    RunStatus,
)
from shipyard.tracking.values import checked_texts


class RunCopier:
    """Builds run copies for one import; counts into ``report`` what each run carries (and what not)."""

    def __init__(
        self,
        settings: Settings,
        report: ImportReport,
        *,
        dry_run: bool,
        fetch: FetchArtifacts,
    ) -> None:
        self.settings = settings
        self.report = report
        self.dry_run = dry_run
        self.fetch = fetch

    def copy(self, run: MlflowRun, data: MlflowRunData, target: Experiment | None) -> RunCopy:
        """The run as Shipyard stores it; its files are copied under the target experiment (unless dry)."""
        where = f"run {run.run_id}"
        status = _status(run.status, self.report, where)
        location = target.artifact_location if target is not None else self.settings.artifact_root
        artifact_uri = f"{location.rstrip('/')}/{run.run_id}/artifacts"
        params = self._texts(data.params, "param", where)
        tags = self._texts(data.tags, "tag", where)
        metrics: dict[str, Series] = {}
        for key, series in data.metrics.items():
            try:
                naming.check_key(key, "metric")
            except InvalidInput as exc:
                self.report.skip("metric", f"{where} {key!r}", f"{exc} ({len(series)} points)")
                continue
            metrics[key] = series
        datasets = tuple(self._dataset(d, where) for d in data.datasets)
        artifacts = self._artifacts(run, artifact_uri, where)
        self.report.add("params", len(params))
        self.report.add("tags", len(tags))
        self.report.add("metric_points", sum(len(s) for s in metrics.values()))
        self.report.add("datasets", len(datasets))
        return RunCopy(
            run_id=run.run_id,
            experiment_id=target.experiment_id if target is not None else "",
            name=_name(run, data),
            status=status,
            start_time=run.start_time or 0,
            end_time=run.end_time if status.is_terminal else None,
            artifact_uri=artifact_uri,
            lifecycle_stage=LifecycleStage.DELETED
            if run.lifecycle_stage == "deleted"
            else LifecycleStage.ACTIVE,
            parent_run_id=data.tags.get(PARENT_TAG) or None,
            user=run.user_id,
            params=params,
            tags=tags,
            metrics=metrics,
            datasets=datasets,
            artifacts=tuple(artifacts),
        )

    def _texts(self, values: Mapping[str, str], what: str, where: str) -> dict[str, str]:
        try:
            return checked_texts(values, what)
        except InvalidInput:
            pass
        kept = {}
        for key, value in values.items():  # one by one, to name each that Shipyard cannot store
            try:
                kept.update(checked_texts({key: value}, what))
            except InvalidInput as exc:
                self.report.skip(what, f"{where} {key!r}", str(exc))
        return kept

    def _dataset(self, dataset: MlflowDataset, where: str) -> DatasetInput:
        schema: Any = None
        if dataset.schema:
            try:
                schema = json.loads(dataset.schema)
            except ValueError:
                schema = None
        num_rows = None
        if dataset.profile:
            try:
                profile = json.loads(dataset.profile)
                num_rows = profile.get("num_rows") if isinstance(profile, dict) else None
                extra = sorted(k for k in (profile if isinstance(profile, dict) else {}) if k != "num_rows")
                if extra:
                    self.report.note(
                        "dataset profiles keep only num_rows (Shipyard's dataset inputs have no profile); "
                        f"left out, e.g.: {', '.join(extra)}"
                    )
            except ValueError:
                pass
        other = sorted(k for k in dataset.tags if k != CONTEXT_TAG)
        if other:
            self.report.skip(
                "dataset input tags", f"{where} {dataset.name!r}", f"no place in Shipyard: {other}"
            )
        return DatasetInput(
            name=dataset.name,
            digest=dataset.digest,
            source=dataset.source,
            source_type=dataset.source_type,
            num_rows=int(num_rows) if isinstance(num_rows, int | float) else None,
            schema=schema
            if isinstance(schema, dict)
            else ({"mlflow_schema": dataset.schema} if dataset.schema else {}),
            context=dataset.tags.get(CONTEXT_TAG),
        )

    # ------------------------------------------------------------------ files
    def _artifacts(self, run: MlflowRun, artifact_uri: str, where: str) -> list[ArtifactRecord]:
        store = None if self.dry_run else ArtifactStore.configured(self.settings, artifact_uri)
        with self.fetch(run.artifact_uri) as folder:
            if folder is None:
                self.report.skip(
                    "artifacts",
                    where,
                    f"{run.artifact_uri} cannot be read from here (for mlflow-artifacts:/ give the "
                    "server's --artifacts-destination folder, or import through the server's http:// URL)",
                )
            files = local_files(folder) if folder is not None else []
            records = [self._put(store, path, rel) for rel, path in files]
            records += self._package_manifests(store, files, run.run_id)
        self.report.add("artifacts", len(records))
        self.report.add("artifact_bytes", sum(r.size for r in records))
        return records

    def _put(self, store: ArtifactStore | None, path: Path, rel: str) -> ArtifactRecord:
        if store is None:
            return ArtifactRecord(rel, path.stat().st_size, "")
        info = store.put_file(path, rel)
        return ArtifactRecord(info.path, info.size, info.sha256 or "")

    def _package_manifests(
        self, store: ArtifactStore | None, files: Sequence[tuple[str, Path]], run_id: str
    ) -> list[ArtifactRecord]:
        """A MODEL.yaml beside each MLmodel in the run's own files (MLflow 2 put models there)."""
        out = []
        rels = {rel for rel, _ in files}
        for rel, path in files:
            if rel.rsplit("/", 1)[-1] != packages.MLMODEL:
                continue
            folder = rel.rsplit("/", 1)[0] if "/" in rel else ""
            if (f"{folder}/{MANIFEST}" if folder else MANIFEST) in rels:
                continue
            prefix = f"{folder}/" if folder else ""
            inside = [(r[len(prefix) :], p) for r, p in files if r.startswith(prefix)]
            name = folder.rsplit("/", 1)[-1] or "model"
            out.append(self._manifest(store, inside, path.read_bytes(), prefix, name, run_id=run_id))
        return out

    def _manifest(
        self,
        store: ArtifactStore | None,
        files: Sequence[tuple[str, Path]],
        mlmodel: bytes | None,
        prefix: str,
        name: str,
        *,
        run_id: str | None,
        model: MlflowLoggedModel | None = None,
    ) -> ArtifactRecord:
        listed = [(rel, _sha256(path.read_bytes()), path.stat().st_size) for rel, path in files]
        data = packages.manifest_for(
            name,
            listed,
            mlmodel,
            run_id=run_id,
            model_id=model.model_id if model else None,
            params=model.params if model else None,
            metrics=latest_values(model.metrics) if model else None,
            tags=model.tags if model else None,
            created_at=model.creation_time if model else None,
        )
        rel = f"{prefix}{MANIFEST}"
        if store is None:
            return ArtifactRecord(rel, len(data), _sha256(data))
        info = store.put_bytes(data, rel)
        return ArtifactRecord(info.path, info.size, info.sha256 or "")


def latest_values(points: Sequence[tuple[str, float, int, int]]) -> dict[str, float]:
    """The value at the highest (step, timestamp) of each key."""
    best: dict[str, tuple[int, int, float]] = {}
    for key, value, step, timestamp in points:
        if key not in best or (step, timestamp) >= best[key][:2]:
            best[key] = (step, timestamp, value)
    return {k: v[2] for k, v in best.items() if not math.isnan(v[2])}


def _name(run: MlflowRun, data: MlflowRunData) -> str:
    # Longer names are cut (Shipyard's limit is 256 characters); tag mlflow.runName keeps the whole name.
    name = (run.name or data.tags.get(RUN_NAME_TAG) or "")[:256]
    try:
        return naming.check_name(name, "run name")
    except InvalidInput:
        return naming.generate_run_name(run.run_id) if len(run.run_id) >= 8 else f"mlflow-{run.run_id}"


def _status(value: str, report: ImportReport, where: str) -> RunStatus:
    if value == "SCHEDULED":
        report.note("SCHEDULED runs are imported as RUNNING (Shipyard has no SCHEDULED state)")
        return RunStatus.RUNNING
    try:
        return RunStatus(value)
    except ValueError:
        report.skip("run status", where, f"unknown status {value!r}, imported as FAILED")
        return RunStatus.FAILED


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
