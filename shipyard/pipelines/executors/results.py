"""What a pipeline run returns: each step's status, outputs, attempts and error."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class StepStatus(StrEnum):
    """How a step (or one loop iteration of it) ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CACHED = "cached"

    @property
    def ok(self) -> bool:
        """Whether the step produced its outputs (ran successfully, or reused an earlier run's)."""
        return self in (StepStatus.SUCCEEDED, StepStatus.CACHED)


@dataclass(frozen=True)
class StepResult:
    """One step's outcome. Loop iterations are keyed ``"<step_id>[<i>]"`` in :class:`PipelineRunResult`.

    Attributes:
        status: succeeded, failed, skipped, or cached (outputs reused from ``cached_from``'s step run).
        outputs: parameter outputs by value; artifact outputs as their local path.
        attempts: how many times it ran (0 when skipped or cached).
        error: the last attempt's traceback or reason, when it failed or was skipped.
        duration_s: wall-clock time across all attempts.
        run_id: the step's nested tracked run ("" when skipped).
        cached_from: the step run whose outputs a cached step reused ("" otherwise).
    """

    status: StepStatus
    outputs: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    error: str | None = None
    duration_s: float = 0.0
    run_id: str = ""
    cached_from: str = ""


@dataclass(frozen=True)
class PipelineRunResult:
    """A pipeline run's outcome: ``status`` is failed when any step failed."""

    run_id: str
    status: StepStatus
    steps: dict[str, StepResult]
