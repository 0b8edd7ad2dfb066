"""Fetching and loading packages by URI, verifying every file's sha256 before a flavor reads it.

A package is copied into a private temporary folder while it is hashed, so what the flavor loads is exactly
what was verified (no window for a file to change between the check and the load).
"""

from __future__ import annotations

import hashlib
import inspect
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shipyard.errors import IntegrityError, InvalidInput, NotFound
from shipyard.registry import package
from shipyard.registry.client import RegistryClient
from shipyard.registry.flavors.base import Predictor
from shipyard.registry.flavors.catalog import get_flavor
from shipyard.registry.package import MANIFEST, Manifest
from shipyard.registry.records import ModelVersion
from shipyard.registry.signature import Signature, enforce
from shipyard.registry.uri import PathUri, RegistryUri, RunModelUri, parse_model_uri
from shipyard.store.artifacts import ArtifactStore, safe_relpath


@dataclass(frozen=True)
class FetchedPackage:
    """A verified local copy of a package; ``version`` is set when it came from the registry."""

    directory: Path
    manifest: Manifest
    manifest_sha256: str
    source_uri: str
    package_uri: str
    version: ModelVersion | None = None


class LoadedModel:
    """A model ready to predict: inputs are checked against the signature before the flavor sees them."""

    def __init__(self, predictor: Predictor, fetched: FetchedPackage) -> None:
        self._predictor = predictor
        self.manifest = fetched.manifest
        self.uri = fetched.source_uri
        self.version = fetched.version
        self.manifest_sha256 = fetched.manifest_sha256  # the package's identity, as lineage records it
        self.signature = (
            Signature.from_dict(fetched.manifest.signature) if fetched.manifest.signature else None
        )
        self._directory = fetched.directory
        weakref.finalize(self, shutil.rmtree, str(fetched.directory), True)

    @property
    def flavor(self) -> str:
        return self.manifest.flavor

    @property
    def raw(self) -> Predictor:
        """The flavor's own loaded object (no signature checks)."""
        return self._predictor

    def predict(self, data: Any) -> Any:
        """Predict; `InvalidInput` names a missing column, an unsafe dtype or a wrong shape."""
        if self.signature is not None:
            data = enforce(self.signature, data)
        return self._predictor.predict(data)

    @property
    def classes(self) -> list[Any] | None:
        """The class labels in the column order of :meth:`predict_proba`, when the flavor knows them."""
        classes = getattr(self._predictor, "classes", None)
        return list(classes) if classes is not None else None

    def predict_proba(self, data: Any) -> Any:
        """Class probabilities, one column per entry of :attr:`classes`; `AttributeError` for a model
        without them (a regressor), `InvalidInput` as for :meth:`predict`."""
        method = getattr(self._predictor, "predict_proba", None)
        if method is None:
            raise AttributeError(f"a {self.flavor} model from {self.uri} has no predict_proba")
        if self.signature is not None:
            data = enforce(self.signature, data)
        return method(data)

    def input_example(self) -> Any | None:
        return package.load_example(self._directory)

    def baseline(self) -> Any | None:
        """The training features packaged with the model (a DataFrame; files verified on load), or None."""
        if not self.manifest.has_baseline:
            return None
        import pandas as pd

        return pd.read_parquet(self._directory / package.BASELINE)

    def __repr__(self) -> str:
        return f"<LoadedModel {self.flavor} from {self.uri}>"


@dataclass(frozen=True)
class PackageLocation:
    """Where a URI's package lives, and the sha256 its MODEL.yaml must have."""

    store: ArtifactStore
    manifest_sha256: str
    source_uri: str
    package_uri: str
    version: ModelVersion | None = None


def locate_package(uri: str, registry: RegistryClient) -> PackageLocation:
    """Resolve ``uri`` to its package (nothing is read yet); `NotFound` names what is missing."""
    parsed = parse_model_uri(uri)
    tracking = registry.tracking
    if isinstance(parsed, RunModelUri):
        run = tracking.get_run(parsed.run_id)
        manifest_path = f"{parsed.path}/{MANIFEST}"
        indexed = {a.path: a.sha256 for a in tracking.list_artifacts(run.run_id, parsed.path)}
        if manifest_path not in indexed:
            raise NotFound(
                f"run {run.run_id} has no model at {parsed.path!r} (no {manifest_path} among its artifacts)"
            )
        store = ArtifactStore.configured(tracking.settings, run.artifact_uri).child(parsed.path)
        return PackageLocation(store, indexed[manifest_path], uri, store.root)
    if isinstance(parsed, RegistryUri):
        version = registry.resolve(parsed)
        store = ArtifactStore.configured(tracking.settings, version.package_uri)
        return PackageLocation(store, version.manifest_sha256, uri, version.package_uri, version)
    assert isinstance(parsed, PathUri)
    source = Path(parsed.path)
    if not (source / MANIFEST).is_file():
        raise NotFound(
            f"{parsed.path!r} is not a model package (no {MANIFEST}) and not a runs:/ or models:/ URI"
        )
    root = str(source.resolve())
    return PackageLocation(ArtifactStore(root), package.sha256_file(source / MANIFEST), uri, root)


def read_verified_manifest(location: PackageLocation) -> tuple[bytes, Manifest]:
    """The package's MODEL.yaml, checked against the sha256 recorded when it was logged or registered.

    Raises:
        IntegrityError: MODEL.yaml changed since it was recorded.
        InvalidInput: it lists a file path that is not a plain relative path inside the package (``..``,
            absolute, a URL…), so nothing is ever created or read outside the package for it.
    """
    raw = location.store.read_bytes(MANIFEST)
    actual = hashlib.sha256(raw).hexdigest()
    if actual != location.manifest_sha256:
        raise IntegrityError(
            f"{MANIFEST} of {location.source_uri} has sha256 {actual}, but {location.manifest_sha256} was "
            "recorded when it was logged or registered; the package was changed afterwards"
        )
    manifest = package.parse_manifest(raw, f"{location.source_uri}/{MANIFEST}")
    for entry in manifest.files:
        # Checked before any caller makes a folder for a file, so a bad path leaves nothing on disk.
        try:
            safe_relpath(entry.path)
        except InvalidInput as exc:
            raise InvalidInput(
                f"{MANIFEST} of {location.source_uri} lists file {entry.path!r}, which is not a path inside "
                f"the package: {exc}"
            ) from exc
    return raw, manifest


def fetch_package(uri: str, registry: RegistryClient) -> FetchedPackage:
    """Resolve ``uri`` and copy its package into a private temp folder, verifying every file."""
    location = locate_package(uri, registry)
    raw, manifest = read_verified_manifest(location)
    directory = Path(tempfile.mkdtemp(prefix="shipyard-load-"))
    try:
        (directory / MANIFEST).write_bytes(raw)
        for entry in manifest.files:
            destination = directory / entry.path
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                location.store.get(entry.path, destination, expected_sha256=entry.sha256)
            except IntegrityError as exc:
                raise IntegrityError(
                    f"model {uri}: file {entry.path!r} does not match the sha256 in {MANIFEST} "
                    f"({entry.sha256}); the file was changed after the model was saved"
                ) from exc
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return FetchedPackage(
        directory, manifest, location.manifest_sha256, uri, location.package_uri, location.version
    )


def _flavor_options(name: str, load: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The loader options ``load`` takes. ``prefer="auto"`` (what serving asks for: the fastest verified
    runtime) is dropped for a flavor with one runtime; any other option it does not take is refused."""
    parameters = inspect.signature(load).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return options
    if options.get("prefer") == "auto" and "prefer" not in parameters:
        options = {k: v for k, v in options.items() if k != "prefer"}
    unknown = [k for k in options if k not in parameters or k in ("self", "directory", "loader")]
    if unknown:
        takes = ", ".join(k for k in parameters if k not in ("self", "directory", "loader", "trusted"))
        raise InvalidInput(
            f"the {name} flavor's loader takes no option {unknown[0]!r}; it takes: {takes or 'none'}"
        )
    return options


def load_model(uri: str, registry: RegistryClient, *, trusted: bool = False, **options: Any) -> LoadedModel:
    """Load the model at ``uri`` with its flavor; pickled formats need ``trusted=True``."""
    fetched = fetch_package(uri, registry)
    try:
        flavor = get_flavor(fetched.manifest.flavor)
        options = _flavor_options(fetched.manifest.flavor, flavor.load, options)
        predictor = flavor.load(fetched.directory, fetched.manifest.loader, trusted=trusted, **options)
    except BaseException:
        shutil.rmtree(fetched.directory, ignore_errors=True)
        raise
    return LoadedModel(predictor, fetched)
