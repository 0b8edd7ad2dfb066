"""Logged models: a model logged from a run, with an id of its own, before (and whether or not) it is
registered — MLflow 3's ``LoggedModel``, which its client creates on every ``log_model``."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from shipyard.tracking.records import LifecycleStage


class LoggedModelStatus(enum.StrEnum):
    """Where a logged model's upload is: created, its files all written, or given up."""

    PENDING = "LOGGED_MODEL_PENDING"
    READY = "LOGGED_MODEL_READY"
    FAILED = "LOGGED_MODEL_UPLOAD_FAILED"


@dataclass(frozen=True)
class LoggedModel:
    """One logged model. ``artifact_location`` is the folder its files go in (``…/models/<id>/artifacts``
    under its experiment's artifact location)."""

    model_id: str
    experiment_id: str
    name: str
    source_run_id: str | None
    status: LoggedModelStatus
    model_type: str | None
    artifact_location: str
    created_at: int
    updated_at: int
    lifecycle_stage: LifecycleStage = LifecycleStage.ACTIVE
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
