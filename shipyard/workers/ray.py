"""Calls as Ray tasks: each placed by its :class:`~shipyard.workers.Resources`, in a worker that imports
code the way the driver does (the driver's working directory and import roots go with each task)."""

from __future__ import annotations

import os
import pickle
import socket
import sys
import traceback
from typing import Any

from shipyard.errors import WorkerError
from shipyard.workers.base import Call, KeyedCalls, Outcome, OutcomeKind, Resources, execute


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise WorkerError("running on Ray needs Ray: pip install 'shipyard[ray]'") from exc
    return ray


def connect(address: str | None = None) -> Any:
    """Join the Ray cluster at ``address``, or start a local one when it is None; returns the ``ray`` module.

    Reuses a connection this process already has.

    Raises:
        WorkerError: Ray is not installed, or the cluster cannot be reached or started.
    """
    ray = _import_ray()
    if ray.is_initialized():
        return ray
    if address:
        probe(address)
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    try:
        ray.init(address=address, **options) if address else ray.init(**options)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError… for the same problem
        where = f"at {address!r}" if address else "locally"
        raise WorkerError(f"cannot start or reach a Ray cluster {where}: {exc}") from exc
    return ray


def probe(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on an address nothing listens at: Ray itself retries such a connection for minutes.

    Raises:
        WorkerError: naming the address.
    """
    if address == "auto":
        return
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise WorkerError(f"Ray address {address!r} is not host:port or ray://host:port")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise WorkerError(f"cannot reach a Ray cluster at {address!r}: {exc}") from exc


def import_roots() -> list[str]:
    """The driver's import roots, its working directory first: what a Ray worker puts on its path."""
    return [os.getcwd(), *(p for p in sys.path if p and os.path.isdir(p))]


def _run(payload: bytes, paths: list[str]) -> tuple[OutcomeKind, Any]:
    # NOTE: Ray workers do not share the driver's sys.path, and Ray unpickles a task's arguments before the
    # task runs: the call comes as bytes, unpickled once its module can import the way it does in the driver.
    # (The bytes are this driver's own, pickled in submit with Ray's cloudpickle; Ray's transport is too.)
    for path in reversed(paths):
        if path not in sys.path:
            sys.path.insert(0, path)
    try:
        call = pickle.loads(payload)
    except Exception:  # its module does not import here: the call's error, not Ray's
        return "error", traceback.format_exc()
    return execute(call)


class RayPool(KeyedCalls):
    """Calls as Ray tasks, at most ``size`` at once, on the cluster :func:`connect` joined. Unlike local
    workers, which import a call's function by name, Ray gets functions defined in ``__main__`` and closures
    by value (cloudpickle), as Ray's own tasks do.

    Args:
        size: the most calls at once (default: the cluster's CPU count).
        address: the cluster (see :func:`connect`).
    """

    def __init__(self, size: int | None = None, address: str | None = None) -> None:
        self._ray = connect(address)
        self.size = max(1, size or int(self._ray.cluster_resources().get("CPU", 1)))
        self._remote = self._ray.remote(max_retries=0)(_run)  # retries are the caller's, with its backoff
        self._busy: dict[Any, Any] = {}  # key -> ObjectRef
        self._paths = import_roots()

    def submit(self, key: Any, call: Call, resources: Resources | None = None) -> None:
        """Start ``call`` as a Ray task asking for ``resources`` (default one CPU)."""
        self._refuse_running(key)
        # Ray's own cloudpickle, as Ray would: a function of the driver's __main__ (a script's, a notebook's)
        # or a closure goes by value, since a Ray worker cannot import the driver's __main__.
        payload = self._ray.cloudpickle.dumps(call)
        resources = resources or Resources()
        options: dict[str, Any] = {"num_cpus": 1 if resources.cpus is None else resources.cpus}
        if resources.gpus:
            options["num_gpus"] = resources.gpus
        if resources.memory_bytes:
            options["memory"] = resources.memory_bytes
        if resources.extra:
            options["resources"] = dict(resources.extra)
        self._busy[key] = self._remote.options(**options).remote(payload, self._paths)

    def wait(self, timeout: float | None) -> list[Outcome]:
        """Outcomes of the calls that ended within ``timeout`` seconds (maybe none)."""
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
            return Outcome(key, "error", f"Ray could not run the call: {exc}")
        return Outcome(key, kind, value)

    def kill(self, key: Any) -> None:
        """Cancel the call ``key``, killing its worker process."""
        self._ray.cancel(self._busy.pop(key), force=True)

    def close(self) -> None:
        """Cancel every running call."""
        for ref in self._busy.values():
            self._ray.cancel(ref, force=True)
        self._busy.clear()
