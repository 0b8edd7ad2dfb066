"""Run a compiled pipeline on Ray: each step attempt is a Ray task with the step's resource hints.

The engine (what runs when, caching, tracking, lineage) stays in this process; Ray only runs step attempts
(:class:`shipyard.workers.RayPool`), with the same worker code as the local executor. Artifacts are passed
by path under the pipeline run's artifact root, so on a multi-node cluster that root must be a filesystem
every node mounts at the same path.
"""

from __future__ import annotations

import json
import os
from typing import Any

from shipyard.config import Settings
from shipyard.pipelines.executors.engine import PipelineExecutor
from shipyard.pipelines.executors.worker import StepFailure, StepReturn, Task, run_captured
from shipyard.store.server_artifacts import SERVED_ENV, serve_from
from shipyard.workers import Call, Pool, RayPool


def run_on_ray(task: Task, served: tuple[str, dict[str, Any]] | None) -> StepReturn | StepFailure:
    """A step attempt in a Ray worker, reading and writing the platform server's artifacts when
    ``served`` names them."""
    if served is not None:
        serve_from(*served)
    return run_captured(task)


def _served() -> tuple[str, dict[str, Any]] | None:
    """The server's own artifact destination when this driver runs a platform server's pipeline: its steps
    read and write the server's files as the driver does. Local workers inherit it with the environment;
    Ray's get it with each task (not in the job's environment, which Ray records: the options may hold
    an object store's credentials)."""
    destination = os.environ.get(SERVED_ENV)
    if not destination:
        return None
    return destination, json.loads(os.environ.get(f"{SERVED_ENV}_OPTIONS") or "{}")


class RayExecutor(PipelineExecutor):
    """Runs pipelines with each step attempt a Ray task: the same spec, caching and tracking as locally.

    Args:
        address: the cluster to join (``ray://…`` or ``host:port``); default the ``ray_address`` setting, and
            when that is unset too, a local Ray started in this process.
        max_parallel: steps at once (default: the cluster's CPU count).
    """

    def __init__(
        self, address: str | None = None, max_parallel: int | None = None, settings: Settings | None = None
    ) -> None:
        super().__init__(max_parallel, settings)
        self._explicit_parallel = max_parallel
        self.address = address

    def _make_pool(self, settings: Settings) -> Pool:
        return RayPool(self._explicit_parallel, self.address or settings.ray_address)

    def _call(self, task: Task) -> Call:
        return Call(run_on_ray, (task, _served()))
