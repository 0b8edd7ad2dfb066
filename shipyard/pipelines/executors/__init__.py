"""Executors run a compiled pipeline spec: ``LocalExecutor`` on this machine, ``RayExecutor`` on Ray."""

from shipyard.pipelines.executors.choice import EXECUTORS, executor_for
from shipyard.pipelines.executors.engine import PipelineExecutor
from shipyard.pipelines.executors.local import LocalExecutor
from shipyard.pipelines.executors.ray import RayExecutor
from shipyard.pipelines.executors.results import PipelineRunResult, StepResult, StepStatus

__all__ = [
    "EXECUTORS",
    "LocalExecutor",
    "PipelineExecutor",
    "PipelineRunResult",
    "RayExecutor",
    "StepResult",
    "StepStatus",
    "executor_for",
]
