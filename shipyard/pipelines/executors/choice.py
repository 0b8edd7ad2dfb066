"""Pick an executor by name, as the CLI, settings and schedules name them."""

from __future__ import annotations

from shipyard.config import Settings
from shipyard.errors import InvalidInput
from shipyard.pipelines.executors.engine import PipelineExecutor
from shipyard.pipelines.executors.local import LocalExecutor
from shipyard.pipelines.executors.ray import RayExecutor

EXECUTORS: dict[str, type[PipelineExecutor]] = {"local": LocalExecutor, "ray": RayExecutor}


def executor_for(
    name: str, *, max_parallel: int | None = None, settings: Settings | None = None
) -> PipelineExecutor:
    """A new executor of kind ``name`` (``local`` or ``ray``; Ray's address comes from the settings).

    Raises:
        InvalidInput: an unknown executor name.
    """
    kind = EXECUTORS.get(name)
    if kind is None:
        raise InvalidInput(f"unknown executor {name!r}; use one of: {', '.join(EXECUTORS)}")
    return kind(max_parallel=max_parallel, settings=settings)
