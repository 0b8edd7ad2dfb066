"""Registering packages as versions, exporting and importing them, and comparing two versions."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.lineage import ArtifactType, LineageClient
from shipyard.registry import package
from shipyard.registry.client import RegistryClient, check_model_name
from shipyard.registry.loading import fetch_package, locate_package, read_verified_manifest
from shipyard.registry.records import ModelVersion
from shipyard.registry.uri import PathUri, check_version, parse_model_uri
from shipyard.store.artifacts import ArtifactStore


def register(
    uri: str,
    name: str,
    registry: RegistryClient,
    *,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    source_uri: str | None = None,
) -> ModelVersion:
    """Register the package at ``uri`` (a run's model, a registry version or a local folder) as a new version.

    A run's package is referenced where it is (run artifacts are immutable and hash-indexed); a local folder
    is copied into the artifact store first, so the version never depends on files outside it.
    """
    check_model_name(name)  # before the name becomes part of a storage path
    location = locate_package(uri, registry)
    if isinstance(parse_model_uri(uri), PathUri):
        fetched = fetch_package(uri, registry)  # every file verified on the way in
        try:
            root = registry.tracking.settings.artifact_root.rstrip("/")
            target = ArtifactStore.configured(
                registry.tracking.settings, f"{root}/registry/{name}/{uuid.uuid4().hex}"
            )
            target.put_dir(fetched.directory)
        finally:
            shutil.rmtree(fetched.directory, ignore_errors=True)
        manifest, package_uri = fetched.manifest, target.root
    else:
        # Run artifacts and registered packages are already hash-indexed: check the manifest here, and
        # every file when the version is loaded.
        _, manifest = read_verified_manifest(location)
        package_uri = location.package_uri
    lineage = dict(manifest.lineage)
    version = registry.create_version(
        name,
        flavor=manifest.flavor,
        source_uri=source_uri or uri,
        package_uri=package_uri,
        manifest_sha256=location.manifest_sha256,
        run_id=lineage.get("run_id"),
        lineage=lineage,
        description=description or manifest.description,
        tags=tags,
    )
    LineageClient(registry.tracking).record(
        "registration",
        name=f"{version.name}/{version.version}",
        run_id=version.run_id,
        pipeline_run_id=version.pipeline_run_id,
        inputs=[(source_uri or uri, ArtifactType.MODEL, location.manifest_sha256, manifest.name)],
        outputs=[(version.uri, ArtifactType.MODEL, location.manifest_sha256, version.name)],
    )
    return version


def export_version(name: str, version: int, destination: str | Path, registry: RegistryClient) -> Path:
    """Write a version's package and registry facts to a ``.tar.gz``."""
    fetched = fetch_package(f"models:/{name}/{check_version(version)}", registry)
    record = fetched.version
    assert record is not None
    info = {
        "name": record.name,
        "version": record.version,
        "flavor": record.flavor,
        "stage": record.stage.value,
        "aliases": list(record.aliases),
        "tags": dict(record.tags),
        "source_uri": record.source_uri,
        "lineage": dict(record.lineage),
        "description": record.description,
    }
    try:
        return package.export_tarball(fetched.directory, Path(destination), info)
    finally:
        shutil.rmtree(fetched.directory, ignore_errors=True)


def import_version(source: str | Path, registry: RegistryClient, *, name: str | None = None) -> ModelVersion:
    """Register an exported archive as a new version (of ``name``, or of the name it was exported from)."""
    with tempfile.TemporaryDirectory(prefix="shipyard-import-") as tmp:
        folder = Path(tmp) / "package"
        info = package.import_tarball(Path(source), folder)
        target_name = name or info.get("name")
        if not target_name:
            raise InvalidInput(f"{source} does not say which model it is: pass a name")
        tags = {**info.get("tags", {}), "imported_from": f"{info.get('name')}/{info.get('version')}"}
        return register(
            str(folder),
            str(target_name),
            registry,
            description=info.get("description"),
            tags=tags,
            source_uri=f"archive:{Path(source).resolve()}",
        )


@dataclass(frozen=True)
class VersionDiff:
    """Two versions side by side: rows of (key, left, right) for metrics, params and signature columns."""

    left: ModelVersion
    right: ModelVersion
    metrics: list[tuple[str, Any, Any]]
    params: list[tuple[str, Any, Any]]
    signature: list[tuple[str, Any, Any]]


def diff_versions(name: str, left: int, right: int, registry: RegistryClient) -> VersionDiff:
    """Compare the metrics, params and signature recorded in two versions' manifests."""
    numbers = [check_version(v) for v in (left, right)]  # both checked before either is fetched
    sides = [fetch_package(f"models:/{name}/{v}", registry) for v in numbers]
    try:
        manifests = [s.manifest for s in sides]
        return VersionDiff(
            left=sides[0].version,  # type: ignore[arg-type]
            right=sides[1].version,  # type: ignore[arg-type]
            metrics=_rows(manifests[0].metrics, manifests[1].metrics),
            params=_rows(manifests[0].params, manifests[1].params),
            signature=_rows(_columns(manifests[0].signature), _columns(manifests[1].signature)),
        )
    finally:
        for side in sides:
            shutil.rmtree(side.directory, ignore_errors=True)


def _rows(left: Mapping[str, Any], right: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    return [(key, left.get(key), right.get(key)) for key in sorted(set(left) | set(right))]


def _columns(signature: Mapping[str, Any] | None) -> dict[str, str]:
    if not signature:
        return {}
    out = {}
    for index, column in enumerate(signature.get("inputs", [])):
        key = column.get("name") or f"input[{index}]"
        shape = column.get("shape")
        out[key] = f"{column.get('dtype')}{'' if shape is None else list(shape)}"
    return out
