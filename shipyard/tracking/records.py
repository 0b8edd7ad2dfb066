"""Typed records returned by the tracking API."""

from __future__ import annotations

import enum
import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from shipyard.tracking.chunks import Series

# The experiment runs go to when none is named (MLflow's name for it too).
DEFAULT_EXPERIMENT = "Default"


def now_ms() -> int:
    """Now, in epoch milliseconds (every stored time is one)."""
    return time.time_ns() // 1_000_000


def new_id() -> str:
    """A new public id: 32 hex characters (a UUID4)."""
    return uuid.uuid4().hex


# The tag `shipyard gc --stale` puts on a run it ended KILLED because its process stopped beating.
STALE_TAG = "shipyard.stale"

# The tag on a pipeline step's run naming the pipeline run it belongs to (the registry records it).
PIPELINE_RUN_TAG = "shipyard.pipeline_run_id"


class RunStatus(enum.StrEnum):
    """Lifecycle of a run: RUNNING, then exactly one of the terminal states."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        return self is not RunStatus.RUNNING


# What a RUNNING run whose process stopped beating is shown as (never stored: see `Run.lost`).
LOST = "LOST"


def is_lost(status: RunStatus, heartbeat_at: int | None, stale_before_ms: int | None) -> bool:
    """Whether a run is RUNNING with a heartbeat older than ``stale_before_ms`` (epoch ms). A run without
    a heartbeat (written before heartbeats existed) is never judged lost."""
    return (
        status is RunStatus.RUNNING
        and heartbeat_at is not None
        and stale_before_ms is not None
        and heartbeat_at < stale_before_ms
    )


class LifecycleStage(enum.StrEnum):
    """Soft deletion: deleted records are hidden until ``shipyard gc`` purges them."""

    ACTIVE = "active"
    DELETED = "deleted"


def ms_to_datetime(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: LifecycleStage
    created_at: int
    updated_at: int
    description: str | None = None


@dataclass(frozen=True)
class Metric:
    """One logged point. ``value`` is NaN/±inf exactly as logged; ``timestamp`` is epoch milliseconds."""

    key: str
    value: float
    step: int
    timestamp: int

    def __eq__(self, other: object) -> bool:  # NaN == NaN here: a point equals its stored copy
        if not isinstance(other, Metric):
            return NotImplemented
        same_value = self.value == other.value or (math.isnan(self.value) and math.isnan(other.value))
        return same_value and (self.key, self.step, self.timestamp) == (
            other.key,
            other.step,
            other.timestamp,
        )

    def __hash__(self) -> int:
        return hash((self.key, self.step, self.timestamp))


@dataclass(frozen=True)
class DatasetInput:
    """A dataset a run consumed: its content hash and a summary of its schema."""

    name: str
    digest: str
    source: str
    source_type: str
    num_rows: int | None
    schema: Mapping[str, object]
    context: str | None = None


@dataclass(frozen=True)
class ArtifactRecord:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Run:
    """A run as stored. ``metrics`` holds each key's latest value (highest step, then newest).

    ``heartbeat_at`` (epoch ms), ``pid`` and ``host`` say when and which process last said the run was alive;
    ``lost`` is True when the run is RUNNING but that beat was older than the heartbeat timeout when the
    record was read: its process died without ending it (``kill -9``). ``status`` stays what is stored;
    :attr:`display_status` says LOST.
    """

    run_id: str
    experiment_id: str
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: LifecycleStage
    parent_run_id: str | None = None
    user: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    heartbeat_at: int | None = None
    pid: int | None = None
    host: str | None = None
    lost: bool = False
    # How to read a metric's points from the store this record came from (set by `shipyard.get_run`).
    _history: Callable[[str, str], list[Metric]] | None = field(default=None, repr=False, compare=False)

    @property
    def duration_ms(self) -> int | None:
        return None if self.end_time is None else self.end_time - self.start_time

    @property
    def display_status(self) -> str:
        """The status to show: LOST for a RUNNING run whose process stopped beating, else ``status``."""
        return LOST if self.lost else self.status.value

    @property
    def process(self) -> str | None:
        """``pid@host`` of the process that runs (or ran) it, when recorded."""
        return None if self.pid is None else f"{self.pid}@{self.host or '?'}"

    def _repr_html_(self) -> str:  # Jupyter
        from shipyard.reprs import run_html

        return run_html(self)

    def metric_history(self, key: str) -> list[Metric]:
        """Every point of metric ``key``, as MLflow users read it off ``get_run(run_id)``.

        Raises:
            InvalidInput: the record was not made by ``shipyard.get_run`` (use ``client.metric_history``).
        """
        if self._history is None:
            raise InvalidInput(
                f"this record of run {self.run_id} does not know its store; "
                "use shipyard.get_run(run_id).metric_history(key) or client.metric_history(run_id, key)"
            )
        return self._history(self.run_id, key)


@dataclass(frozen=True)
class RunCopy:
    """A run copied from another system as it was recorded there: its id, name, times, status and
    lifecycle, with everything logged to it (see :class:`shipyard.store.protocol.ImportStore`).

    ``metrics`` maps each key to its full history, in columns (see :class:`shipyard.tracking.chunks.Series`).
    ``artifacts`` are records of files already copied under ``artifact_uri``.
    """

    run_id: str
    experiment_id: str
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: LifecycleStage = LifecycleStage.ACTIVE
    parent_run_id: str | None = None
    user: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, Series] = field(default_factory=dict)
    datasets: tuple[DatasetInput, ...] = ()
    artifacts: tuple[ArtifactRecord, ...] = ()


class RunList(list[Run]):
    """A page of search results; pass ``next_page_token`` back to get the next page (None when done)."""

    def __init__(self, runs: list[Run], next_page_token: str | None) -> None:
        super().__init__(runs)
        self.next_page_token = next_page_token

    def _repr_html_(self) -> str:  # Jupyter
        from shipyard.reprs import runs_html

        return runs_html(self, self.next_page_token)


@dataclass(frozen=True)
class GcReport:
    """What a collection purged; ``kept`` names the registered versions whose packages stayed on disk."""

    runs: int
    experiments: int
    artifact_roots: int
    dry_run: bool
    kept: tuple[str, ...] = ()
