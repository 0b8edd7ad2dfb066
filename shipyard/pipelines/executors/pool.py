"""A pool of reused worker processes where one crashed or killed worker is replaced, not fatal.

``concurrent.futures.ProcessPoolExecutor`` marks the whole pool broken when any worker dies, so the pool
keeps its own processes, each with a private pipe, and watches their sentinels.

Workers come from a fork server that has imported Shipyard once: a new worker is a fork of it (milliseconds),
not a fresh interpreter importing everything again (~0.4 s). The server forks from a clean, single-threaded
process, so none of the engine's threads or open database connections leak into workers; each worker takes
the engine's environment as it is when the worker starts.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

from shipyard.pipelines.executors.worker import Task, serve
from shipyard.pipelines.spec import Resources
from shipyard.processes import lifeline, worker_context

_CONTEXT: Any = worker_context(serve.__module__)


@dataclass(frozen=True)
class Outcome:
    """What became of a task: ``kind`` is ``"ok"``, ``"error"`` or ``"died"`` (``value`` says how)."""

    key: Any
    kind: str
    value: Any


class _Worker:
    def __init__(self) -> None:
        self.conn, child = _CONTEXT.Pipe()
        # Not daemonic: a step may start processes of its own (a tuning step's parallel trials), which
        # daemonic processes may not. The pool stops its workers itself (close, kill), and a worker whose
        # engine is gone dies at once, busy or not (its lifeline: see shipyard.processes).
        self.process: BaseProcess = _CONTEXT.Process(target=serve, args=(child, dict(os.environ), lifeline()))
        self.process.start()
        child.close()
        self.key: Any = None

    def stop(self, *, kill: bool = False) -> None:
        if kill:
            self._kill()
        self.conn.close()
        self.process.join(5)
        if self.process.is_alive():
            self._kill()
            self.process.join()

    def _kill(self) -> None:
        """Kill the worker and whatever its step started (the worker leads its own process group)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # type: ignore[arg-type]
        except (AttributeError, ProcessLookupError, PermissionError):
            self.process.kill()


class WorkerPool:
    """Up to ``size`` worker processes, started on demand and reused across tasks. Not thread-safe."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._idle: list[_Worker] = []
        self._busy: dict[Any, _Worker] = {}
        self.replaced = 0  # workers that died or were killed and so will be started afresh

    @property
    def free(self) -> int:
        """How many more tasks can start now."""
        return self.size - len(self._busy)

    def submit(self, key: Any, task: Task, resources: Resources | None = None) -> None:
        """Start ``task`` on an idle worker; ``key`` names it in the :class:`Outcome`.

        Resource hints are not enforced by local workers (``size`` bounds the load)."""
        worker = self._idle.pop() if self._idle else _Worker()
        worker.key = key
        self._busy[key] = worker
        worker.conn.send(task)

    def kill(self, key: Any) -> None:
        """Kill the worker running ``key`` (a timeout); a fresh one replaces it on demand."""
        self._busy.pop(key).stop(kill=True)
        self.replaced += 1

    def wait(self, timeout: float) -> list[Outcome]:
        """Outcomes of the tasks that finished within ``timeout`` seconds (maybe none)."""
        if not self._busy:
            return []
        handles: dict[Any, _Worker] = {}
        for worker in self._busy.values():
            handles[worker.conn] = worker
            handles[worker.process.sentinel] = worker
        outcomes: dict[Any, Outcome] = {}
        for ready in wait(list(handles), timeout):
            worker = handles[ready]
            if worker.key not in outcomes:
                outcomes[worker.key] = self._collect(worker)
        return list(outcomes.values())

    def _collect(self, worker: _Worker) -> Outcome:
        key = worker.key
        del self._busy[key]
        try:
            if worker.conn.poll():
                kind, value = worker.conn.recv()
                self._idle.append(worker)
                return Outcome(key, kind, value)
        except (EOFError, OSError):
            pass
        worker.stop()
        self.replaced += 1
        return Outcome(key, "died", f"exit code {worker.process.exitcode}")

    def close(self) -> None:
        """Stop every worker, killing busy ones."""
        for worker in self._idle:
            worker.stop()
        for worker in self._busy.values():
            worker.stop(kill=True)
        self._idle.clear()
        self._busy.clear()
