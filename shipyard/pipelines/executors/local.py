"""Run a compiled pipeline on this machine: each step attempt in a reused, isolated worker process."""

from __future__ import annotations

from shipyard.config import Settings
from shipyard.pipelines.executors import worker
from shipyard.pipelines.executors.engine import PipelineExecutor
from shipyard.workers import Pool, WorkerPool


class LocalExecutor(PipelineExecutor):
    """Runs up to ``max_parallel`` steps at once (default: the CPU count) in a pool of worker processes
    (:class:`shipyard.workers.WorkerPool`).

    A step that crashes, segfaults or exits kills only its worker, which is replaced. Resource hints are not
    enforced here; ``max_parallel`` bounds the load. Workers are forked from a fork server that imported
    Shipyard once per process, so after the first run a new worker costs milliseconds. Scripts that call it
    need an ``if __name__ == "__main__":`` guard: workers import the main module again.
    """

    def _make_pool(self, settings: Settings) -> Pool:
        return WorkerPool(self.max_parallel, preload=[worker.__name__])
