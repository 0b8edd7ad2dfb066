"""`RegistryClient`: registered models, versions, aliases, stages, tags and the audit log, over whichever
:class:`~shipyard.store.protocol.RegistryStore` the tracking client's deployment has (SQL, or the server).

Version numbers are allocated by the store inside the registering transaction, so concurrent registrations
get distinct numbers and none is lost; moving an alias, a stage transition and their audit entries commit
together.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.registry.naming import check_alias, check_model_name
from shipyard.registry.records import ModelEvent, ModelVersion, RegisteredModel, Stage
from shipyard.registry.uri import RegistryUri
from shipyard.store.protocol import RegistryStore
from shipyard.tracking.client import TrackingClient

__all__ = ["RegistryClient", "check_alias", "check_model_name"]


class RegistryClient:
    """Registry records in the same deployment as ``tracking``'s runs. Thread-safe."""

    def __init__(self, tracking: TrackingClient) -> None:
        self.tracking = tracking
        self.backend: RegistryStore = tracking.stores.registry

    # ------------------------------------------------------------------ registered models
    def create_model(
        self, name: str, *, description: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> RegisteredModel:
        """Create a registered model; `AlreadyExists` if the name is taken."""
        return self.backend.create_model(name, description=description, tags=tags)

    def get_model(self, name: str) -> RegisteredModel:
        return self.backend.get_model(name)

    def list_models(self) -> list[RegisteredModel]:
        return self.backend.list_models()

    def delete_model(self, name: str, *, force: bool = False) -> None:
        """Delete a model and all its versions; refused while aliases point at it unless ``force``."""
        self.backend.delete_model(name, force=force)

    def rename_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename a model; versions, aliases, tags, audit log, lineage and grants follow it.
        ``models:/OLD/…`` references (deployments, code) must be changed by hand.

        Raises:
            AlreadyExists: ``new_name`` is taken. NotFound: no model ``name``.
        """
        return self.backend.rename_model(name, new_name)

    def update_model(self, name: str, *, description: str | None) -> RegisteredModel:
        """Set (None: clear) a model's description."""
        return self.backend.update_model(name, description=description)

    def delete_model_tag(self, name: str, key: str) -> None:
        """Remove a model's tag ``key`` (`NotFound` if it has none)."""
        self.backend.delete_model_tag(name, key)

    # ------------------------------------------------------------------ versions
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
        """Register a new version (the model is created on first use); numbers are 1, 2, 3… per model."""
        return self.backend.create_version(
            name,
            flavor=flavor,
            source_uri=source_uri,
            package_uri=package_uri,
            manifest_sha256=manifest_sha256,
            run_id=run_id,
            lineage=lineage,
            description=description,
            tags=tags,
        )

    def get_version(self, name: str, version: int) -> ModelVersion:
        return self.backend.get_version(name, version)

    def list_versions(self, name: str) -> list[ModelVersion]:
        return self.backend.list_versions(name)

    def resolve(self, ref: RegistryUri) -> ModelVersion:
        """The version a ``models:/`` reference names (a number, an alias, a stage or ``latest``)."""
        return self.backend.resolve(ref)

    def delete_version(self, name: str, version: int, *, force: bool = False) -> ModelVersion:
        return self.backend.delete_version(name, version, force=force)

    def set_alias(self, name: str, alias: str, version: int, *, reason: str | None = None) -> ModelVersion:
        """Point ``alias`` at ``version`` (moving it from another version), with an audit event."""
        return self.backend.set_alias(name, alias, version, reason=reason)

    def delete_alias(self, name: str, alias: str) -> None:
        self.backend.delete_alias(name, alias)

    def transition(
        self,
        name: str,
        version: int,
        stage: Stage | str,
        *,
        reason: str | None = None,
        archive_others: bool = False,
    ) -> ModelVersion:
        """Move a version to ``stage``; ``archive_others`` archives the versions that were in it."""
        return self.backend.transition(name, version, stage, reason=reason, archive_others=archive_others)

    def update_version(self, name: str, version: int, *, description: str | None) -> ModelVersion:
        """Set (None: clear) a version's description."""
        return self.backend.update_version(name, version, description=description)

    def set_version_tags(self, name: str, version: int, tags: Mapping[str, Any]) -> None:
        self.backend.set_version_tags(name, version, tags)

    def delete_version_tag(self, name: str, version: int, key: str) -> None:
        """Remove a version's tag ``key`` (`NotFound` if it has none)."""
        self.backend.delete_version_tag(name, version, key)

    def set_model_tags(self, name: str, tags: Mapping[str, Any]) -> None:
        self.backend.set_model_tags(name, tags)

    def record_gate(
        self, name: str, version: int, *, passed: bool, summary: str, facts: Mapping[str, Any]
    ) -> ModelVersion:
        """Record a gate's outcome on the version (``shipyard.gate.*`` tags) with an audit event."""
        return self.backend.record_gate(name, version, passed=passed, summary=summary, facts=facts)

    def events(self, name: str) -> list[ModelEvent]:
        """The model's audit log, oldest first."""
        return self.backend.events(name)
