"""Run a compiled pipeline on Ray: each step attempt is a Ray task with the step's resource hints.

The engine (what runs when, caching, tracking, lineage) stays in this process; Ray only runs step attempts,
with the same worker code as the local executor. Artifacts are passed by path under the pipeline run's
artifact root, so on a multi-node cluster that root must be a filesystem every node mounts at the same path.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from typing import Any

from shipyard.config import Settings
from shipyard.errors import PipelineError
from shipyard.pipelines.executors.engine import PipelineExecutor, StepPool
from shipyard.pipelines.executors.pool import Outcome
from shipyard.pipelines.executors.worker import Task, run_captured
from shipyard.pipelines.spec import Resources
from shipyard.store.server_artifacts import SERVED_ENV, serve_from


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise PipelineError(
            "the Ray executor needs Ray: pip install 'shipyard[ray]' (or pip install ray)"
        ) from exc
    return ray


def connect(address: str | None = None) -> Any:
    """Join the Ray cluster at ``address``, or start a local one when it is None; returns the ``ray`` module.

    Reuses a connection this process already has.

    Raises:
        PipelineError: Ray is not installed, or the cluster cannot be reached or started.
    """
    ray = _import_ray()
    if ray.is_initialized():
        return ray
    if address:
        _probe(address)
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    try:
        ray.init(address=address, **options) if address else ray.init(**options)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError… for the same problem
        where = f"at {address!r}" if address else "locally"
        raise PipelineError(f"cannot start or reach a Ray cluster {where}: {exc}") from exc
    return ray


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on an address nothing listens at: Ray itself retries such a connection for minutes."""
    if address == "auto":
        return
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise PipelineError(f"Ray address {address!r} is not host:port or ray://host:port")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise PipelineError(f"cannot reach a Ray cluster at {address!r}: {exc}") from exc


def _run_step(task: Task, paths: list[str], served: tuple[str, dict[str, Any]] | None) -> tuple[str, Any]:
    # NOTE: Ray workers do not share the driver's sys.path; the component's module must import the same way.
    for path in reversed(paths):
        if path not in sys.path:
            sys.path.insert(0, path)
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


class RayPool:
    """Step attempts as Ray tasks, at most ``size`` at once; Ray places each by its resource hints."""

    def __init__(self, size: int, ray: Any) -> None:
        self.size = size
        self._ray = ray
        self._remote = ray.remote(max_retries=0)(_run_step)  # retries are the engine's, with backoff
        self._busy: dict[Any, Any] = {}  # key → ObjectRef
        # The driver's import roots (its working directory first), so components import in the workers.
        self._paths = [os.getcwd(), *(p for p in sys.path if p and os.path.isdir(p))]
        self._served = _served()

    @property
    def free(self) -> int:
        """How many more tasks can start now."""
        return self.size - len(self._busy)

    def submit(self, key: Any, task: Task, resources: Resources | None = None) -> None:
        """Start ``task`` as a Ray task asking for the step's cpus (default 1), gpus and memory."""
        resources = resources or Resources()
        options: dict[str, Any] = {"num_cpus": 1 if resources.cpus is None else resources.cpus}
        if resources.gpus:
            options["num_gpus"] = resources.gpus
        if resources.memory_bytes:
            options["memory"] = resources.memory_bytes
        self._busy[key] = self._remote.options(**options).remote(task, self._paths, self._served)

    def wait(self, timeout: float) -> list[Outcome]:
        """Outcomes of the tasks that ended within ``timeout`` seconds (maybe none)."""
        if not self._busy:
            return []
        refs = list(self._busy.values())
        ready, _ = self._ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:  # and whatever else is done by now
            ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0)
        by_ref = {ref: key for key, ref in self._busy.items()}
        return [self._collect(by_ref[ref], ref) for ref in ready]

    def _collect(self, key: Any, ref: Any) -> Outcome:
        del self._busy[key]
        exceptions = self._ray.exceptions
        try:
            kind, value = self._ray.get(ref)
        except (exceptions.WorkerCrashedError, exceptions.NodeDiedError, exceptions.OutOfMemoryError) as exc:
            return Outcome(key, "died", f"Ray reported {type(exc).__name__}")
        except exceptions.RayError as exc:
            return Outcome(key, "error", f"Ray could not run the step: {exc}")
        return Outcome(key, kind, value)

    def kill(self, key: Any) -> None:
        """Cancel the task ``key``, killing its worker process."""
        ref = self._busy.pop(key)
        self._ray.cancel(ref, force=True)

    def close(self) -> None:
        """Cancel every running task."""
        for ref in self._busy.values():
            self._ray.cancel(ref, force=True)
        self._busy.clear()


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

    def _make_pool(self, settings: Settings) -> StepPool:
        ray = connect(self.address or settings.ray_address)
        size = self._explicit_parallel or max(1, int(ray.cluster_resources().get("CPU", 1)))
        return RayPool(size, ray)
