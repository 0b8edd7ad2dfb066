"""Pipelines: ``@component`` and ``@pipeline``, control flow, and the compiled, portable spec."""

from shipyard.pipelines.binding import bind_parameters, parse_assignments
from shipyard.pipelines.compiler import compile_pipeline
from shipyard.pipelines.control import Elif, Else, ExitHandler, If, ParallelFor
from shipyard.pipelines.dsl import Component, Pipeline, StepOptions, Task, component, pipeline
from shipyard.pipelines.schedule import MAX_CATCHUP_RUNS, Catchup, due_ticks, next_tick
from shipyard.pipelines.schedule_store import Schedule, ScheduleClient
from shipyard.pipelines.scheduler import ScheduledRun, Scheduler
from shipyard.pipelines.spec import SPEC_VERSION, PipelineSpec, StepSpec
from shipyard.pipelines.tracing import Collected
from shipyard.pipelines.types import HTML, Artifact, Dataset, Input, Metrics, Model, Output

__all__ = [
    "HTML",
    "MAX_CATCHUP_RUNS",
    "SPEC_VERSION",
    "Artifact",
    "Catchup",
    "Collected",
    "Component",
    "Dataset",
    "Elif",
    "Else",
    "ExitHandler",
    "If",
    "Input",
    "Metrics",
    "Model",
    "Output",
    "ParallelFor",
    "Pipeline",
    "PipelineSpec",
    "Schedule",
    "ScheduleClient",
    "ScheduledRun",
    "Scheduler",
    "StepOptions",
    "StepSpec",
    "Task",
    "bind_parameters",
    "compile_pipeline",
    "component",
    "due_ticks",
    "next_tick",
    "parse_assignments",
    "pipeline",
]
