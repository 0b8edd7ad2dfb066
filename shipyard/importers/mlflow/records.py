"""What an MLflow store holds, as read from it (whatever the store kind): plain frozen records.

Times are epoch milliseconds, ids strings, as MLflow gives them. Metric histories are kept in columns
(:class:`~shipyard.tracking.chunks.Series`) from the moment they are read: ten thousand runs of a hundred
points would otherwise be a million Python objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shipyard.tracking.chunks import Series

# MLflow's tag naming a run's parent, and the ones holding a run's name and an experiment's description.
PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"
NOTE_TAG = "mlflow.note.content"
CONTEXT_TAG = "mlflow.data.context"


@dataclass(frozen=True)
class MlflowExperiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str
    creation_time: int | None
    last_update_time: int | None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MlflowRun:
    """A run's info row (what is cheap to list); :class:`MlflowRunData` holds what was logged to it."""

    run_id: str
    experiment_id: str
    name: str | None
    user_id: str | None
    status: str
    start_time: int | None
    end_time: int | None
    lifecycle_stage: str
    artifact_uri: str


@dataclass(frozen=True)
class MlflowDataset:
    """A dataset a run took as input (MLflow's ``datasets`` row joined with its ``inputs`` tags)."""

    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None
    profile: str | None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MlflowRunData:
    params: Mapping[str, str]
    tags: Mapping[str, str]
    metrics: Mapping[str, Series]
    datasets: tuple[MlflowDataset, ...] = ()


@dataclass(frozen=True)
class MlflowLoggedModel:
    """An MLflow 3 logged model: its files live under ``artifact_location``."""

    model_id: str
    experiment_id: str
    name: str
    artifact_location: str
    source_run_id: str | None
    status: str
    lifecycle_stage: str
    creation_time: int | None
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    # (key, value, step, timestamp) as logged to the model
    metrics: tuple[tuple[str, float, int, int], ...] = ()


@dataclass(frozen=True)
class MlflowModelVersion:
    name: str
    version: int
    description: str | None
    user_id: str | None
    stage: str
    source: str
    run_id: str | None
    status: str
    storage_location: str | None
    creation_time: int | None
    last_updated_time: int | None
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MlflowRegisteredModel:
    name: str
    description: str | None
    creation_time: int | None
    last_updated_time: int | None
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, int] = field(default_factory=dict)
    versions: tuple[MlflowModelVersion, ...] = ()
