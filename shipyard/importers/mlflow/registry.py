"""Copying MLflow's model registry: registered models (description, tags, times), their versions (numbers,
stages, descriptions, tags, times, creators) and aliases.

A version's package is the MLflow package the import copied into its run's artifacts (with a Shipyard
``MODEL.yaml`` listing every file's sha256: see :mod:`shipyard.importers.mlflow.packages`); a package
without a copied run (a logged model with no run, a folder) is copied under the artifact root's
``registry/<name>/``. Versions whose files are nowhere to be read are reported, not registered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlparse

import yaml

from shipyard.errors import InvalidInput, NotFound
from shipyard.importers.mlflow.logged import manifest_sha256
from shipyard.importers.mlflow.records import (
    MlflowLoggedModel,
    MlflowModelVersion,
    MlflowRegisteredModel,
    MlflowRun,
)
from shipyard.importers.mlflow.report import ImportReport
from shipyard.importers.mlflow.runs import latest_values
from shipyard.importers.mlflow.source import FetchArtifacts, local_files
from shipyard.registry import mlflow_packages as packages
from shipyard.registry.client import RegistryClient
from shipyard.registry.package import MANIFEST
from shipyard.registry.records import Stage
from shipyard.store.artifacts import ArtifactStore
from shipyard.store.protocol import ServerStores
from shipyard.tracking.client import TrackingClient
from shipyard.tracking.records import now_ms

_DELETED = "Deleted_Internal"  # MLflow's stage for a version deleted from its SQL store's registry


class RegistryCopier:
    """Copies registered models into one SQL deployment (see the module docstring)."""

    def __init__(
        self,
        stores: ServerStores,
        tracking: TrackingClient,
        report: ImportReport,
        *,
        dry_run: bool,
        fetch: FetchArtifacts,
        runs: Mapping[str, MlflowRun],
        logged: Mapping[str, MlflowLoggedModel],
        locations: Mapping[str, str],
    ) -> None:
        self.stores = stores
        self.tracking = tracking
        self.registry = RegistryClient(tracking)
        self.report = report
        self.dry_run = dry_run
        self.fetch = fetch
        self.runs = runs
        self.logged = logged
        self.locations = locations

    def copy(self, models: Sequence[MlflowRegisteredModel]) -> None:
        for model in models:
            try:
                self._model(model)
            except InvalidInput as exc:
                self.report.skip("registered model", repr(model.name), str(exc))

    def _model(self, model: MlflowRegisteredModel) -> None:
        try:
            stored = self.registry.get_model(model.name)
            existing = {v.version: v for v in self.registry.list_versions(model.name)}
            self.report.already["registered_models"] += 1
        except NotFound:
            stored, existing = None, {}
            self.report.add("registered_models")
        if not self.dry_run:
            created = model.creation_time or now_ms()
            self.stores.imports.put_model(
                model.name,
                description=model.description,
                tags=dict(model.tags),
                created_at=created,
                updated_at=model.last_updated_time or created,
            )
        carried: set[int] = set()
        for version in model.versions:
            where = f"{model.name}/{version.version}"
            if version.stage == _DELETED:
                self.report.skip("model version", where, "deleted in MLflow")
                continue
            held = existing.get(version.version)
            if held is not None:
                if held.lineage.get("source") == "mlflow" and held.source_uri == version.source:
                    self.report.already["versions"] += 1
                    carried.add(version.version)
                else:  # the Shipyard model of that name has a version of its own with this number
                    self.report.skip(
                        "model version",
                        where,
                        f"Shipyard's model {model.name!r} already has a version {version.version} of its own "
                        f"(from {held.source_uri}); version numbers are kept, so this one cannot be added",
                    )
                continue
            if self._version(version, where):
                carried.add(version.version)
        aliases = dict(stored.aliases) if stored is not None else {}
        for alias, number in sorted(model.aliases.items()):
            if number not in carried:
                self.report.skip(
                    "alias", f"{model.name}@{alias}", f"its version {number} was not carried over"
                )
            elif aliases.get(alias) == number:
                self.report.already["aliases"] += 1
            else:
                if not self.dry_run:
                    self.registry.set_alias(model.name, alias, number, reason="imported from MLflow")
                self.report.add("aliases")

    def _version(self, version: MlflowModelVersion, where: str) -> bool:
        try:
            stage = Stage.parse(version.stage)
        except InvalidInput as exc:
            self.report.skip("model version", where, str(exc))
            return False
        if version.status != "READY":
            self.report.note(f"model version {where} was {version.status} in MLflow; imported as registered")
        if self.dry_run:
            self.report.add("versions")
            return True
        located = self._package(version, where)
        if located is None:
            return False
        package_uri, manifest_sha256 = located
        run_id = version.run_id if version.run_id in self.runs else None
        lineage = {"source": "mlflow", "mlflow_source": version.source}
        if run_id:
            lineage["run_id"] = run_id
        created = version.creation_time or now_ms()
        self.stores.imports.put_version(
            version.name,
            version.version,
            flavor=packages.FLAVOR,
            stage=stage,
            source_uri=version.source,
            package_uri=package_uri,
            manifest_sha256=manifest_sha256,
            run_id=run_id,
            lineage=lineage,
            description=version.description,
            tags=dict(version.tags),
            created_by=version.user_id,
            created_at=created,
            updated_at=version.last_updated_time or created,
        )
        self.report.add("versions")
        self.report.note(
            "MLflow model versions are registered with flavor 'mlflow' (their files verified by sha256): "
            "Shipyard loads their scikit-learn models (skops ones as is, pickled ones only with "
            "trusted=True); other MLflow flavors load with mlflow.pyfunc.load_model after downloading "
            "the files"
        )
        return True

    # ------------------------------------------------------------------ where a version's package is
    def _package(self, version: MlflowModelVersion, where: str) -> tuple[str, str] | None:
        """(package URI, MODEL.yaml sha256) of the version's copied package, copying it now if no run holds
        it; None (reported) when its files cannot be read."""
        source = version.source
        model_id = source.removeprefix("models:/") if source.startswith("models:/m-") else None
        model = self.logged.get(model_id or "")
        if model is not None:
            folder = self.locations.get(model.model_id)
            sha = manifest_sha256(self.tracking.settings, folder) if folder else None
            if folder and sha:  # the logged model's copy (see logged.py)
                return folder, sha
            return self._copy_folder(version, where, model.artifact_location, model)
        if source.startswith("runs:/"):
            run_id, _, path = source.removeprefix("runs:/").partition("/")
            found = self._in_run(run_id, None, path.strip("/"))
            if found:
                return found
        run = self.runs.get(version.run_id or "")
        if run is not None and run.artifact_uri and source.startswith(run.artifact_uri.rstrip("/") + "/"):
            found = self._in_run(run.run_id, None, source[len(run.artifact_uri.rstrip("/")) + 1 :].strip("/"))
            if found:
                return found
        return self._copy_folder(version, where, version.storage_location or source, None)

    def _in_run(self, run_id: str, match: object, path: str | None = None) -> tuple[str, str] | None:
        """The package of the imported run ``run_id`` at ``path``, else the one whose lineage ``match``
        accepts."""
        try:
            run = self.tracking.get_run(run_id)
            records = self.tracking.list_artifacts(run_id)
        except NotFound:
            return None
        store = ArtifactStore.configured(self.tracking.settings, run.artifact_uri)
        for record in records:
            folder, _, leaf = record.path.rpartition("/")
            if leaf != MANIFEST:
                continue
            if path is not None:
                if folder != path:
                    continue
            else:
                manifest = yaml.safe_load(store.read_bytes(record.path, record.sha256)) or {}
                if not callable(match) or not match(manifest.get("lineage") or {}):
                    continue
            return (store.child(folder).root if folder else store.root), record.sha256
        return None

    def _copy_folder(
        self, version: MlflowModelVersion, where: str, uri: str, model: MlflowLoggedModel | None
    ) -> tuple[str, str] | None:
        with self.fetch(uri) as folder:
            if folder is None or not (folder / packages.MLMODEL).is_file():
                self.report.skip(
                    "model version",
                    where,
                    f"its package ({version.source}) is not among the imported runs' artifacts and its "
                    f"files ({uri or 'no location'}) cannot be read from here",
                )
                return None
            return self._copy_package(version, folder, uri, model)

    def _copy_package(
        self, version: MlflowModelVersion, folder: Path, uri: str, model: MlflowLoggedModel | None
    ) -> tuple[str, str]:
        scheme = urlparse(uri).scheme or "path"
        root = self.tracking.settings.artifact_root.rstrip("/")
        key = model.model_id if model is not None else f"v{version.version}-{scheme}"
        store = ArtifactStore.configured(
            self.tracking.settings, f"{root}/registry/{version.name}/mlflow-{key}"
        )
        listed = []
        for rel, path in local_files(folder):
            info = store.put_file(path, rel)
            listed.append((info.path, info.sha256 or "", info.size))
        data = packages.manifest_for(
            model.name if model else version.name,
            listed,
            (folder / packages.MLMODEL).read_bytes(),
            run_id=version.run_id,
            model_id=model.model_id if model else None,
            params=model.params if model else None,
            metrics=latest_values(model.metrics) if model else None,
            tags=model.tags if model else None,
            created_at=model.creation_time if model else None,
        )
        store.put_bytes(data, MANIFEST)
        return store.root, _sha256(data)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
