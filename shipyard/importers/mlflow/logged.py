"""Copying MLflow 3 logged models: each becomes a Shipyard logged model (its MLflow id, name, source run,
status, params, tags and times kept), its files the MLflow package as is under
``<experiment's artifact location>/models/<id>/artifacts`` (where models MLflow's client logs to Shipyard's
server go), with a ``MODEL.yaml`` listing each file's sha256 and the model's params, metrics and tags.

Files are copied before the record is stored, so a record never names a folder without its files.
"""

from __future__ import annotations

import hashlib

from shipyard.config import Settings
from shipyard.importers.mlflow.records import MlflowLoggedModel
from shipyard.importers.mlflow.report import ImportReport
from shipyard.importers.mlflow.runs import latest_values
from shipyard.importers.mlflow.source import FetchArtifacts, local_files
from shipyard.registry import mlflow_packages as packages
from shipyard.registry.package import MANIFEST
from shipyard.store.artifacts import ArtifactStore
from shipyard.store.protocol import ImportStore
from shipyard.tracking.logged_models import LoggedModel, LoggedModelStatus
from shipyard.tracking.records import Experiment, LifecycleStage, now_ms

_STATUS = {
    "READY": LoggedModelStatus.READY,
    "PENDING": LoggedModelStatus.PENDING,
    "FAILED": LoggedModelStatus.FAILED,
    "UPLOAD_FAILED": LoggedModelStatus.FAILED,
}


def location(model: MlflowLoggedModel, target: Experiment) -> str:
    """Where the copy of ``model`` keeps its files."""
    return f"{target.artifact_location.rstrip('/')}/models/{model.model_id}/artifacts"


class LoggedModelCopier:
    """Copies logged models into one deployment, counting into ``report``."""

    def __init__(
        self,
        settings: Settings,
        imports: ImportStore,
        report: ImportReport,
        *,
        dry_run: bool,
        fetch: FetchArtifacts,
    ) -> None:
        self.settings = settings
        self.imports = imports
        self.report = report
        self.dry_run = dry_run
        self.fetch = fetch

    def copy(self, model: MlflowLoggedModel, target: Experiment | None, stored: bool) -> None:
        where = f"{model.model_id} ({model.name})"
        if stored:
            self.report.already["logged_models"] += 1
            return
        # A dry run reads the files too, to count what an import would copy.
        folder_uri = location(model, target) if target is not None else ""
        store = (
            None if self.dry_run or target is None else ArtifactStore.configured(self.settings, folder_uri)
        )
        with self.fetch(model.artifact_location) as folder:
            files = local_files(folder)
            listed = []
            for rel, path in files:
                if store is None:
                    listed.append((rel, hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_size))
                else:
                    info = store.put_file(path, rel)
                    listed.append((info.path, info.sha256 or "", info.size))
            mlmodel = folder / packages.MLMODEL if folder is not None else None
            data = packages.manifest_for(
                model.name,
                listed,
                mlmodel.read_bytes() if mlmodel is not None and mlmodel.is_file() else None,
                run_id=model.source_run_id,
                model_id=model.model_id,
                params=model.params,
                metrics=latest_values(model.metrics),
                tags=model.tags,
                created_at=model.creation_time,
            )
        if not files:
            self.report.skip(
                "logged model files",
                where,
                f"{model.artifact_location} cannot be read from here (record kept)",
            )
        self.report.add("logged_models")
        self.report.add("artifacts", len(listed) + (1 if files else 0))
        self.report.add("artifact_bytes", sum(n for _, _, n in listed) + (len(data) if files else 0))
        if store is None or target is None:
            return
        if files:
            store.put_bytes(data, MANIFEST)
        created = model.creation_time or now_ms()
        deleted = model.lifecycle_stage == "deleted"
        self.imports.put_logged_model(
            LoggedModel(
                model_id=model.model_id,
                experiment_id=target.experiment_id,
                name=model.name,
                source_run_id=model.source_run_id,
                status=_STATUS.get(model.status, LoggedModelStatus.READY),
                model_type=None,
                artifact_location=folder_uri,
                created_at=created,
                updated_at=created,
                lifecycle_stage=LifecycleStage.DELETED if deleted else LifecycleStage.ACTIVE,
                params=dict(model.params),
                tags=dict(model.tags),
            ),
            [(model.source_run_id, 0)] if model.source_run_id else [],
        )


def manifest_sha256(settings: Settings, folder_uri: str) -> str | None:
    """The sha256 of the ``MODEL.yaml`` in a copied package folder, None without one."""
    store = ArtifactStore.configured(settings, folder_uri)
    if not store.exists(MANIFEST):
        return None
    return hashlib.sha256(store.read_bytes(MANIFEST)).hexdigest()
