"""The registry's module-level API, re-exported as ``shipyard.models``: log, register, alias, load models.

>>> with shipyard.start_run(experiment="churn") as run:
...     info = shipyard.models.log(clf, name="model", input_example=X[:5])
>>> version = shipyard.models.register(info.uri, "churn")
>>> shipyard.models.set_alias("churn", "champion", version.version)
>>> model = shipyard.models.load("models:/churn@champion")
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shipyard.config import Settings
from shipyard.errors import InvalidInput
from shipyard.registry.client import RegistryClient
from shipyard.registry.loading import LoadedModel, load_model
from shipyard.registry.records import ModelEvent, ModelVersion, RegisteredModel, Stage
from shipyard.registry.registering import VersionDiff, diff_versions, export_version, import_version
from shipyard.registry.registering import register as _register
from shipyard.registry.saving import ModelInfo, log_model, save_model
from shipyard.registry.uri import RegistryUri, RunModelUri, parse_model_uri
from shipyard.tracking.fluent import active_run, get_client
from shipyard.tracking.run import ActiveRun


def registry_client(settings: Settings | None = None) -> RegistryClient:
    """The registry over the process's tracking store (``settings`` default: from the environment)."""
    return RegistryClient(get_client(settings))


def log(model: Any, name: str = "model", *, run: ActiveRun | None = None, **options: Any) -> ModelInfo:
    """Log ``model`` into the active run (or ``run``) as a package; returns its ``runs:/`` URI.

    Options: ``flavor`` (auto-detected), ``signature="infer"``, ``input_example``, ``requirements="infer"``,
    ``description``, ``limitations``, ``baseline`` (training features: monitoring compares served inputs
    with a sample of them, ``baseline_rows`` at most), ``feature_service`` (the service whose features the
    model takes; found by itself when the run used ``FeatureStore.training_set``).
    """
    target = run or active_run()
    if target is None:
        raise InvalidInput("models.log needs a run: call it inside `with shipyard.start_run():` or pass run=")
    return log_model(target, model, name=name, **options)


def save(model: Any, path: str | Path, **options: Any) -> Any:
    """Save ``model`` as a package folder outside any run (register it later from the path)."""
    return save_model(model, path, **options)


def load(uri: str, *, trusted: bool = False, settings: Settings | None = None, **options: Any) -> LoadedModel:
    """Load a model from ``runs:/…``, ``models:/name/3``, ``models:/name@alias``, ``models:/name/latest``
    or a package folder. Pickled formats refuse to load without ``trusted=True``."""
    return load_model(uri, registry_client(settings), trusted=trusted, **options)


def register(
    uri: str,
    name: str,
    *,
    description: str | None = None,
    tags: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
) -> ModelVersion:
    """Register the model at ``uri`` as the next version of ``name`` (created on first use)."""
    return _register(uri, name, registry_client(settings), description=description, tags=tags)


def get(uri: str, *, settings: Settings | None = None) -> ModelVersion:
    """The version a ``models:/`` URI names, or the newest version registered from a ``runs:/`` URI."""
    parsed = parse_model_uri(uri)
    client = registry_client(settings)
    if isinstance(parsed, RegistryUri):
        return client.resolve(parsed)
    if isinstance(parsed, RunModelUri):
        for model in client.list_models():
            for version in reversed(client.list_versions(model.name)):
                if version.source_uri == uri:
                    return version
    raise InvalidInput(f"{uri!r} is not registered; get takes models:/ URIs or a registered runs:/ URI")


def set_alias(
    name: str, alias: str, version: int, *, reason: str | None = None, settings: Settings | None = None
) -> ModelVersion:
    return registry_client(settings).set_alias(name, alias, version, reason=reason)


def delete_alias(name: str, alias: str, *, settings: Settings | None = None) -> None:
    registry_client(settings).delete_alias(name, alias)


def transition(
    name: str,
    version: int,
    stage: Stage | str,
    *,
    reason: str | None = None,
    archive_others: bool = False,
    settings: Settings | None = None,
) -> ModelVersion:
    """Move a version to None/Staging/Production/Archived; the audit log records who, when and why."""
    return registry_client(settings).transition(
        name, version, stage, reason=reason, archive_others=archive_others
    )


def list_models(*, settings: Settings | None = None) -> list[RegisteredModel]:
    return registry_client(settings).list_models()


def list_versions(name: str, *, settings: Settings | None = None) -> list[ModelVersion]:
    return registry_client(settings).list_versions(name)


def delete_version(
    name: str, version: int, *, force: bool = False, settings: Settings | None = None
) -> ModelVersion:
    """Delete a version; refused while an alias points at it unless ``force``."""
    return registry_client(settings).delete_version(name, version, force=force)


def events(name: str, *, settings: Settings | None = None) -> list[ModelEvent]:
    """The audit log of ``name``: registrations, transitions, alias moves, deletions."""
    return registry_client(settings).events(name)


def export(name: str, version: int, destination: str | Path, *, settings: Settings | None = None) -> Path:
    return export_version(name, version, destination, registry_client(settings))


def import_archive(
    source: str | Path, *, name: str | None = None, settings: Settings | None = None
) -> ModelVersion:
    return import_version(source, registry_client(settings), name=name)


def diff(name: str, left: int, right: int, *, settings: Settings | None = None) -> VersionDiff:
    return diff_versions(name, left, right, registry_client(settings))


__all__ = [
    "LoadedModel",
    "ModelEvent",
    "ModelInfo",
    "ModelVersion",
    "RegisteredModel",
    "Stage",
    "VersionDiff",
    "delete_alias",
    "delete_version",
    "diff",
    "events",
    "export",
    "get",
    "import_archive",
    "list_models",
    "list_versions",
    "load",
    "log",
    "register",
    "registry_client",
    "save",
    "set_alias",
    "transition",
]
