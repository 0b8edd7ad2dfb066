"""Executors run a compiled pipeline spec; ``LocalExecutor`` runs it on this machine."""

from shipyard.pipelines.executors.local import LocalExecutor
from shipyard.pipelines.executors.results import PipelineRunResult, StepResult, StepStatus

__all__ = ["LocalExecutor", "PipelineRunResult", "StepResult", "StepStatus"]
