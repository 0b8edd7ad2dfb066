"""Typed records of the model registry."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shipyard.errors import InvalidInput

# `shipyard models gate` records its outcome in version tags under GATE_PREFIX (only a gate writes them); a
# model's GATE_REQUIRED_FOR tag names the stages and aliases that need a passed gate: "Production,@champion".
GATE_PREFIX = "shipyard.gate."
GATE_STATUS = "shipyard.gate.status"
GATE_REQUIRED_FOR = "shipyard.gate.required_for"


class Stage(enum.StrEnum):
    """Deployment stage of a version; every change is written to the audit log."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"

    @classmethod
    def parse(cls, value: str | Stage) -> Stage:
        if isinstance(value, Stage):
            return value
        for stage in cls:
            if str(value).strip().lower() == stage.value.lower():
                return stage
        raise InvalidInput(f"unknown stage {value!r}; use one of: {', '.join(s.value for s in cls)}")


@dataclass(frozen=True)
class RegisteredModel:
    model_id: str
    name: str
    description: str | None
    created_at: int
    updated_at: int
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, int] = field(default_factory=dict)
    latest_version: int | None = None

    def _repr_html_(self) -> str:  # Jupyter
        from shipyard.reprs import registered_model_html

        return registered_model_html(self)


@dataclass(frozen=True)
class ModelVersion:
    """One immutable version of a registered model, with where it came from.

    ``lineage`` holds the training run, its experiment, the dataset digests the run logged and the pipeline
    run that produced it (when one did).
    """

    name: str
    version: int
    flavor: str
    stage: Stage
    source_uri: str
    package_uri: str
    manifest_sha256: str
    run_id: str | None
    pipeline_run_id: str | None
    lineage: Mapping[str, Any]
    created_by: str | None
    created_at: int
    updated_at: int
    description: str | None = None
    aliases: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def _repr_html_(self) -> str:  # Jupyter
        from shipyard.reprs import model_version_html

        return model_version_html(self)


@dataclass(frozen=True)
class ModelEvent:
    """An audit-log entry: who did what to which model version, when and why."""

    model_name: str
    version: int | None
    action: str
    from_value: str | None
    to_value: str | None
    user: str | None
    reason: str | None
    created_at: int
