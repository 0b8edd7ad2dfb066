"""Local worker processes, reused across calls, where one crashed or killed worker is replaced, not fatal.

``concurrent.futures.ProcessPoolExecutor`` marks the whole pool broken when any worker dies, so this pool
keeps its own processes, each with a private pipe, and watches their sentinels.

Workers come from a fork server that has imported the pool's ``preload`` modules once: a new worker is a
fork of it (milliseconds), not a fresh interpreter importing everything again (~0.4 s). The server forks
from a clean, single-threaded process, so none of the driver's threads or open database connections leak
into workers; each worker takes the driver's environment as it is when the worker starts.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from shipyard.processes import die_with_parent, lifeline, worker_context
from shipyard.workers.base import Call, KeyedCalls, Outcome, Resources, execute


def serve(
    conn: Connection, environ: dict[str, str] | None = None, parent_line: Connection | None = None
) -> None:
    """Worker process entry point: run calls from ``conn`` until it closes, answering each with
    :func:`~shipyard.workers.execute`'s pair.

    Args:
        environ: the environment to run with (the driver's; a forked worker would otherwise keep the fork
            server's, as it was when that started).
        parent_line: the driver's lifeline (:func:`shipyard.processes.lifeline`): when the driver dies,
            even by ``kill -9`` in the middle of a call, this worker and the processes its call started die.
    """
    if environ is not None:
        os.environ.clear()
        os.environ.update(environ)
    if hasattr(os, "setpgid"):  # so killing a call also kills the processes it started
        os.setpgid(0, 0)
    die_with_parent(parent_line)
    while True:
        try:
            call: Call = conn.recv()
        except (EOFError, OSError):
            return
        conn.send(execute(call))


class _Worker:
    def __init__(self, context: Any) -> None:
        self.conn, child = context.Pipe()
        # Not daemonic: a call may start processes of its own (a tuning step's parallel trials, a training
        # job's ranks), which daemonic processes may not. The pool stops its workers itself (close, kill),
        # and a worker whose driver is gone dies at once, busy or not (its lifeline).
        self.process: BaseProcess = context.Process(
            target=serve, args=(child, dict(os.environ), lifeline()), name="shipyard-worker"
        )
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
        """Kill the worker and whatever its call started (the worker leads its own process group)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # type: ignore[arg-type]
        except (AttributeError, ProcessLookupError, PermissionError):
            self.process.kill()


class WorkerPool(KeyedCalls):
    """Up to ``size`` worker processes, started on demand and reused across calls. Not thread-safe.

    Args:
        preload: modules the fork server imports once, so workers start with them (the calls' own).
    """

    def __init__(self, size: int, preload: Iterable[str] = ()) -> None:
        self.size = max(1, size)
        self._context = worker_context(__name__, *preload)
        self._idle: list[_Worker] = []
        self._busy: dict[Any, _Worker] = {}
        self.replaced = 0  # workers that died or were killed and so will be started afresh

    def submit(self, key: Any, call: Call, resources: Resources | None = None) -> None:
        """Start ``call`` on an idle worker (a new one when none is idle)."""
        self._refuse_running(key)
        worker = self._idle.pop() if self._idle else _Worker(self._context)
        try:
            worker.conn.send(call)  # pickles it whole before writing: a call that cannot pickle sends nothing
        except BaseException:
            self._idle.append(worker)
            raise
        worker.key = key
        self._busy[key] = worker

    def kill(self, key: Any) -> None:
        """Kill the worker running ``key``, and the processes its call started; a fresh one replaces it."""
        self._busy.pop(key).stop(kill=True)
        self.replaced += 1

    def wait(self, timeout: float | None) -> list[Outcome]:
        """Outcomes of the calls that ended within ``timeout`` seconds (maybe none)."""
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
        return Outcome(key, "died", _how_it_died(worker.process.exitcode))

    def close(self) -> None:
        """Stop every worker, killing busy ones."""
        for worker in self._idle:
            worker.stop()
        for worker in self._busy.values():
            worker.stop(kill=True)
        self._idle.clear()
        self._busy.clear()


def _how_it_died(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            pass
    return f"exit code {exitcode}"
