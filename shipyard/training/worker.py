"""A training job's worker process: join the job, attach its run, run the training code, report a failure.

Two ways in, one set-up (:func:`worker_scope`): :func:`entry` runs a Python function (``training.run``;
torch's elastic agent spawns it with the function and its arguments), and ``python -m
shipyard.training.script SCRIPT [ARGS]`` runs a script as ``__main__`` (``shipyard train``; the job comes
in ``SHIPYARD_TRAINING_JOB``). Either way the worker

- dies with the launcher (``PR_SET_PDEATHSIG``): a ``kill -9`` of ``shipyard train`` leaves no worker;
- joins the process group and sets torch's threads to its share of the CPUs;
- logs into the job's run from rank 0 (the fluent ``shipyard.log_metric`` … calls of other ranks are
  dropped, or go to a run of their own with ``log_all_ranks``), with its own process's CPU and memory
  (and GPU) as ``system/rank<r>/…`` metrics when system metrics are on;
- on an exception, writes what it raised (rank, time, type, message, traceback) for the launcher, which
  reports the first failure of the job by time, naming its rank.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shipyard.config import Settings, get_settings, using_settings
from shipyard.errors import InvalidInput
from shipyard.processes import die_with_parent
from shipyard.training.context import (
    TrainingContext,
    from_environment,
    join_process_group,
    leave_process_group,
    using_context,
)

JOB_ENV = "SHIPYARD_TRAINING_JOB"
_job_run: Any = None  # this worker's handle on the job's run (checkpoints are written through it)


@dataclass(frozen=True)
class WorkerJob:
    """What every worker of a job is told (no secrets: it travels in an environment variable)."""

    run_id: str
    backend: str
    device_type: str
    errors_dir: str  # where a failing worker writes rank-<r>.json
    threads: int  # torch's intra-op threads in each worker
    mixed_precision: bool = False
    system_metrics_interval: float | None = None  # None: no system metrics
    rank_runs: Mapping[str, str] = field(default_factory=dict)  # rank -> its own run (log_all_ranks)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerJob:
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"{JOB_ENV} is malformed: {exc}") from None


def job_run() -> Any:
    """The job's run in this worker (None outside a Shipyard job)."""
    return _job_run


@contextmanager
def worker_scope(
    job: WorkerJob, settings: Settings, ctx: TrainingContext | None = None
) -> Iterator[TrainingContext]:
    """Everything a worker sets up around the training code, and undoes after it (see the module).

    ``ctx``: given by an engine that placed the worker and joined its process group itself (Ray Train);
    else read from torch's launcher's environment, and the worker dies with the launcher.
    """
    global _job_run
    if ctx is None:
        die_with_parent(None)
        ctx = from_environment(job.backend, job.device_type, job.run_id, job.mixed_precision)
    try:
        import torch

        torch.set_num_threads(job.threads)
        join_process_group(ctx)
        with ExitStack() as stack:
            stack.enter_context(using_settings(settings))
            stack.enter_context(using_context(ctx))
            _job_run = _tracking(stack, job, ctx, settings)
            yield ctx
    except BaseException as exc:
        if not isinstance(exc, SystemExit) or exc.code not in (0, None):
            _record_failure(job, ctx, exc)
        raise
    finally:
        _job_run = None
        leave_process_group()


def _tracking(stack: ExitStack, job: WorkerJob, ctx: TrainingContext, settings: Settings) -> Any:
    from shipyard.tracking.fluent import attached_run, get_client, muted, run_handle

    client = get_client(settings)
    record = client.get_run(job.run_id)
    handle = run_handle(record, settings)
    own = job.rank_runs.get(str(ctx.rank))
    if ctx.is_main:
        stack.enter_context(attached_run(record, settings))
    elif own is not None:
        stack.enter_context(attached_run(client.get_run(own), settings))
    else:
        stack.enter_context(muted())
    stack.callback(handle.flush)
    if job.system_metrics_interval:
        _monitor(stack, handle, ctx, job.system_metrics_interval)
    return handle


def _monitor(stack: ExitStack, handle: Any, ctx: TrainingContext, interval: float) -> None:
    """Sample this worker's process (and, on rank 0, the machine) into the job's run."""
    import psutil

    from shipyard.tracking.system_metrics import SystemMetricsMonitor, sample_system

    process = psutil.Process()
    process.cpu_percent(None)
    prefix = f"system/rank{ctx.rank}"

    def sample() -> dict[str, float]:
        values = {
            f"{prefix}/cpu_percent": process.cpu_percent(None),
            f"{prefix}/memory_rss_mb": process.memory_info().rss / 2**20,
        }
        if ctx.device_type == "cuda":
            import torch

            values[f"{prefix}/gpu_memory_allocated_mb"] = torch.cuda.memory_allocated(ctx.local_rank) / 2**20
        if ctx.is_main:
            values.update(sample_system())
        return values

    monitor = SystemMetricsMonitor(
        lambda values, step: handle.log_metrics(values, step=step), interval, sample=sample, gpu=ctx.is_main
    )
    monitor.start()
    stack.callback(monitor.stop)


def _record_failure(job: WorkerJob, ctx: TrainingContext, exc: BaseException) -> None:
    failure = {
        "rank": ctx.rank,
        "time_ns": time.time_ns(),
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }
    try:
        path = Path(job.errors_dir) / f"rank-{ctx.rank}.json"
        path.write_text(json.dumps(failure))
    except OSError:
        pass  # the launcher still knows the rank and the exit code from torch's agent


def entry(job: WorkerJob, settings: Settings, fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    """A worker of ``training.run``: ``fn(*args, **kwargs)`` inside the job (rank 0's value is the job's)."""
    with worker_scope(job, settings):
        return fn(*args, **kwargs)


def run_script(script: str, args: list[str]) -> None:
    """Run ``script`` as ``__main__`` with ``args`` as its command line, as ``python script.py`` does."""
    sys.argv = [script, *args]
    sys.path.insert(0, str(Path(script).resolve().parent))
    runpy.run_path(script, run_name="__main__")


def main(argv: list[str] | None = None) -> None:
    """``python -m shipyard.training.script SCRIPT [ARGS]``: run SCRIPT as ``__main__`` inside the job."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        raise SystemExit("usage: python -m shipyard.training.script SCRIPT [ARGS...]")
    raw = os.environ.get(JOB_ENV)
    if raw is None:
        raise SystemExit(f"{JOB_ENV} is not set: start training jobs with `shipyard train`")
    job = WorkerJob.from_json(raw)
    with worker_scope(job, get_settings()):
        run_script(args[0], list(args[1:]))
