"""Distributed data-parallel training jobs: :func:`run` (a Python function) and :func:`run_script` (a script,
``shipyard train``), on torch's elastic launcher (what ``torchrun`` runs).

A job is a tracked run. The launcher creates it (or resumes it: ``resume=RUN``), records the job's shape
in ``training/job.json``, starts ``workers`` processes per node through ``torch.distributed.launcher``
(its elastic agent: a failed worker makes the whole group restart, up to ``max_restarts`` times, each
restart resuming from the latest checkpoint when the training code asks for it), waits, and ends the run
FINISHED, or FAILED with the first failing worker's traceback. A job whose launcher was killed is resumed
with ``resume=`` (``shipyard train --resume RUN``): same run, its checkpoints, its metrics going on.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from shipyard.config import Settings, get_settings
from shipyard.errors import InvalidInput, ShipyardError, TrainingFailed
from shipyard.processes import host_name, usable_cpus
from shipyard.training.context import BACKENDS, DEVICES
from shipyard.training.worker import JOB_ENV, WorkerJob, entry
from shipyard.workers import Call, WorkerPool

JOB_ARTIFACT = "training/job.json"
JOB_TAG = "shipyard.training"  # "job" on a job's run
RANK_TAG = "shipyard.training.rank"  # on a rank's own run (log_all_ranks)
EXPERIMENT = "training"
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class JobSpec:
    """A job's shape; stored in its run as ``training/job.json`` so that a resume can start it again."""

    workers: int = 1  # per node
    backend: str = "gloo"
    device: str = "cpu"
    executor: str = "local"
    max_restarts: int = 0
    cpus_per_worker: float | None = None  # None: an equal share of this machine's CPUs
    gpus_per_worker: float = 0.0
    mixed_precision: bool = False
    log_all_ranks: bool = False
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int | None = None
    script: str | None = None  # run_script's script (absolute) and its arguments
    script_args: list[str] = field(default_factory=list)
    target: str | None = None  # run's function, module:qualname (shown, not imported)

    @property
    def world_size(self) -> int:
        return self.workers * self.nnodes


@dataclass(frozen=True)
class TrainingResult:
    """A finished job: its run, rank 0's return value (None for a script), and how long it took."""

    run_id: str
    value: Any
    workers: int
    seconds: float


def run(
    train_fn: Callable[..., Any],
    *args: Any,
    workers: int = 1,
    backend: str | None = None,
    device: str | None = None,
    resources: Mapping[str, float] | None = None,
    executor: str = "local",
    max_restarts: int = 0,
    mixed_precision: bool = False,
    log_all_ranks: bool = False,
    system_metrics: bool | None = None,
    experiment: str | None = None,
    name: str | None = None,
    resume: str | None = None,
    nnodes: int = 1,
    node_rank: int = 0,
    master_addr: str | None = None,
    master_port: int | None = None,
    settings: Settings | None = None,
    **kwargs: Any,
) -> TrainingResult:
    """Run ``train_fn(*args, **kwargs)`` on ``workers`` processes as one data-parallel job.

    Inside, :func:`shipyard.training.context` gives each worker its rank, world size and device;
    ``shipyard.log_metric`` … log into the job's run from rank 0; :func:`save_checkpoint` /
    :func:`latest_checkpoint` keep and restore state. ``train_fn`` must be importable (a module-level
    function: the workers are fresh processes).

    Args:
        workers: processes per node (each with its share of the CPUs, or one GPU with ``device="cuda"``).
        backend: ``gloo`` (CPU) or ``nccl`` (CUDA); default from ``device``.
        device: ``cpu`` or ``cuda``; default from ``backend`` (``cpu``).
        resources: per worker, ``{"cpu": 2, "gpu": 1}``: its threads and what the machine must have
            (default: an equal share of the CPUs, and one GPU on CUDA).
        executor: ``local`` (torch's elastic launcher) or ``ray`` (Ray Train's ``TorchTrainer``).
        max_restarts: times the workers are restarted after one fails, before the job fails.
        mixed_precision: ``context().autocast()`` turns on (float16 on CUDA, bfloat16 on CPU).
        log_all_ranks: every rank above 0 logs into a run of its own, a child of the job's.
        experiment: the job run's experiment: default ``training``, or the active run's when called
            inside one (the job's run is then that run's child: a pipeline step's, a notebook cell's).
        system_metrics: sample each worker's CPU/memory (and GPU) into the run (default: settings).
        resume: a job's run id (or name) to continue: same run, its latest checkpoint.
        nnodes, node_rank, master_addr, master_port: several machines (``torchrun``'s static rendezvous).

    Raises:
        InvalidInput: a bad setting, or more workers than this machine's CPUs/GPUs (both named).
        TrainingFailed: a worker raised or died (rank and error named); the run ends FAILED.
    """
    target = _importable(train_fn)
    spec = _spec(
        workers, backend, device, resources, executor, max_restarts, mixed_precision, log_all_ranks,
        nnodes, node_rank, master_addr, master_port, target=target,
    )  # fmt: skip
    return _run_job(spec, experiment, name, resume, system_metrics, settings, (train_fn, args, kwargs))


def run_script(
    script: str | os.PathLike[str],
    args: Sequence[str] = (),
    *,
    workers: int = 1,
    backend: str | None = None,
    device: str | None = None,
    resources: Mapping[str, float] | None = None,
    executor: str = "local",
    max_restarts: int = 0,
    mixed_precision: bool = False,
    log_all_ranks: bool = False,
    system_metrics: bool | None = None,
    experiment: str | None = None,
    name: str | None = None,
    resume: str | None = None,
    nnodes: int = 1,
    node_rank: int = 0,
    master_addr: str | None = None,
    master_port: int | None = None,
    settings: Settings | None = None,
) -> TrainingResult:
    """Run the Python script ``script`` with ``args`` as a job of ``workers`` processes (``shipyard
    train``); the same options as :func:`run`. In the script, :func:`shipyard.training.context` and the
    fluent tracking calls work as in a function run by :func:`run`."""
    path = Path(script).resolve()
    if not path.is_file():
        raise InvalidInput(f"training script {str(script)!r} is not a file")
    spec = _spec(
        workers, backend, device, resources, executor, max_restarts, mixed_precision, log_all_ranks,
        nnodes, node_rank, master_addr, master_port, script=str(path), script_args=[str(a) for a in args],
    )  # fmt: skip
    return _run_job(spec, experiment, name, resume, system_metrics, settings, None)


def resume_job(run: str, *, settings: Settings | None = None, **overrides: Any) -> TrainingResult:
    """Start again the script job of ``run`` (id or name) as it was recorded, from its latest checkpoint;
    ``overrides`` change its settings (``workers=…``). A function job is resumed with ``run(...,
    resume=run)``, which needs the function."""
    settings = settings or get_settings()
    spec = recorded_spec(run, settings)
    if spec.script is None:
        raise InvalidInput(
            f"run {run} is a job of the function {spec.target}: resume it with "
            f"shipyard.training.run({spec.target}, ..., resume={run!r})"
        )
    fields = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(fields) - set(JobSpec.__dataclass_fields__)
    if unknown:
        raise InvalidInput(f"resume_job: unknown settings {sorted(unknown)}")
    spec = replace(spec, **fields)
    _check_spec(spec)
    return _run_job(spec, None, None, run, None, settings, None)


def recorded_spec(run: str, settings: Settings) -> JobSpec:
    """The shape ``run`` (a job's run id or name) was recorded with."""
    from shipyard.store.artifacts import ArtifactStore
    from shipyard.tracking.fluent import get_client

    record = get_client(settings).find_run(run)
    if record.tags.get(JOB_TAG) != "job":
        raise InvalidInput(f"run {run} is not a training job (no {JOB_TAG}=job tag)")
    store = ArtifactStore.configured(settings, record.artifact_uri)
    try:
        raw = json.loads(store.read_bytes(JOB_ARTIFACT))
        return JobSpec(**raw)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{JOB_ARTIFACT} of run {run} is malformed: {exc}") from None


# ---------------------------------------------------------------------------------------------- checks
def _spec(
    workers: int,
    backend: str | None,
    device: str | None,
    resources: Mapping[str, float] | None,
    executor: str,
    max_restarts: int,
    mixed_precision: bool,
    log_all_ranks: bool,
    nnodes: int,
    node_rank: int,
    master_addr: str | None,
    master_port: int | None,
    **more: Any,
) -> JobSpec:
    if device is None:
        device = "cuda" if backend == "nccl" else "cpu"
    if backend is None:
        backend = "nccl" if device == "cuda" else "gloo"
    resources = dict(resources or {})
    unknown = set(resources) - {"cpu", "gpu"}
    if unknown:
        raise InvalidInput(f"resources: unknown keys {sorted(unknown)} (per worker: cpu, gpu)")
    spec = JobSpec(
        workers=workers,
        backend=backend,
        device=device,
        executor=executor,
        max_restarts=max_restarts,
        cpus_per_worker=float(resources["cpu"]) if "cpu" in resources else None,
        gpus_per_worker=float(resources.get("gpu", 1.0 if device == "cuda" else 0.0)),
        mixed_precision=bool(mixed_precision),
        log_all_ranks=bool(log_all_ranks),
        nnodes=nnodes,
        node_rank=node_rank,
        master_addr=master_addr,
        master_port=master_port,
        **more,
    )
    _check_spec(spec)
    return spec


def _check_spec(spec: JobSpec) -> None:
    for label, value, low in (
        ("workers", spec.workers, 1), ("max_restarts", spec.max_restarts, 0), ("nnodes", spec.nnodes, 1),
    ):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidInput(f"{label} must be an integer >= {low}, got {value!r}")
    if spec.backend not in BACKENDS:
        raise InvalidInput(f"backend must be one of {', '.join(BACKENDS)}, got {spec.backend!r}")
    if spec.device not in DEVICES:
        raise InvalidInput(f"device must be one of {', '.join(DEVICES)}, got {spec.device!r}")
    if spec.backend == "nccl" and spec.device != "cuda":
        raise InvalidInput("backend 'nccl' runs on CUDA devices: pass device='cuda' (or backend='gloo')")
    if spec.executor not in EXECUTORS:
        raise InvalidInput(f"executor must be one of {', '.join(EXECUTORS)}, got {spec.executor!r}")
    if (spec.cpus_per_worker is not None and spec.cpus_per_worker <= 0) or spec.gpus_per_worker < 0:
        raise InvalidInput("resources: cpu must be > 0 and gpu >= 0 per worker")
    if not 0 <= spec.node_rank < spec.nnodes:
        raise InvalidInput(f"node_rank must be in [0, {spec.nnodes}), got {spec.node_rank}")
    if spec.nnodes > 1 and (not spec.master_addr or not spec.master_port):
        raise InvalidInput("a job of several nodes needs master_addr and master_port (node 0's address)")
    if spec.executor == "local":
        _check_capacity(spec)


def _check_capacity(spec: JobSpec) -> None:
    """More workers than this machine can run at once: refused, naming both numbers."""
    cpus = usable_cpus()
    each = spec.cpus_per_worker or 1.0
    wanted = spec.workers * each
    if wanted > cpus:
        raise InvalidInput(
            f"workers={spec.workers} need {wanted:g} CPUs ({each:g} each) but this machine gives this "
            f"process {cpus}"
        )
    if spec.device == "cuda":
        gpus = _cuda_devices()
        needed = spec.workers * max(spec.gpus_per_worker, 1.0)
        if needed > gpus:
            raise InvalidInput(f"workers={spec.workers} need {needed:g} GPUs but this machine has {gpus}")


def _cuda_devices() -> int:
    try:
        import torch
    except ModuleNotFoundError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _importable(fn: Callable[..., Any]) -> str:
    """``module:qualname`` of ``fn``, checked to reach the workers (fresh processes import it)."""
    if not callable(fn):
        raise InvalidInput(f"train_fn must be a function, got {type(fn).__name__}")
    target = f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"
    try:
        pickle.dumps(fn)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise InvalidInput(
            f"train_fn {target} cannot reach the worker processes ({exc}): define it at module level"
        ) from None
    return target


# ---------------------------------------------------------------------------------------------- the job
def _run_job(
    spec: JobSpec,
    experiment: str | None,
    name: str | None,
    resume: str | None,
    system_metrics: bool | None,
    settings: Settings | None,
    call: tuple[Callable[..., Any], tuple, dict] | None,
) -> TrainingResult:
    _require_torch()
    settings = settings or get_settings()
    started = time.monotonic()
    errors_dir = Path(tempfile.mkdtemp(prefix="shipyard-training-"))
    try:
        with _job_runs(spec, experiment, name, resume, settings) as (active, rank_runs):
            enabled = settings.system_metrics if system_metrics is None else system_metrics
            job = WorkerJob(
                run_id=active.run_id,
                backend=spec.backend,
                device_type=spec.device,
                errors_dir=str(errors_dir),
                threads=_threads(spec),
                mixed_precision=spec.mixed_precision,
                system_metrics_interval=settings.system_metrics_interval if enabled else None,
                rank_runs=rank_runs,
            )
            try:
                if spec.executor == "ray":
                    from shipyard.training.ray_job import launch_ray

                    value = launch_ray(spec, job, settings, call)
                else:
                    value = _launch_local(spec, job, settings, call)
            except TrainingFailed as exc:
                # The failing worker's traceback, not the launcher's: ended here, before the run's
                # context would keep its own.
                active.log_traceback(getattr(exc, "worker_traceback", "") or str(exc))
                active.end("FAILED")
                raise
        return TrainingResult(active.run_id, value, spec.world_size, time.monotonic() - started)
    finally:
        shutil.rmtree(errors_dir, ignore_errors=True)


def _threads(spec: JobSpec) -> int:
    """Threads per worker (torch's intra-op pool, OpenMP, MKL): the CPUs it asked for, else its share of
    this machine's (workers would otherwise each start a thread per core and fight over them)."""
    if spec.cpus_per_worker is not None:
        return max(1, int(spec.cpus_per_worker))
    return max(1, usable_cpus() // spec.workers) if spec.executor == "local" else 1


@contextlib.contextmanager
def _job_runs(
    spec: JobSpec, experiment: str | None, name: str | None, resume: str | None, settings: Settings
) -> Iterator[tuple[Any, dict[str, str]]]:
    """The job's run, started or resumed, with the ranks' own runs; ended as the job ends."""
    from shipyard.tracking.fluent import active_run, get_client, start_run

    client = get_client(settings)
    if resume is not None:
        if experiment is not None or name is not None:
            raise InvalidInput("resume names an existing job's run: pass no experiment or name with it")
        record = client.find_run(resume)
        if record.tags.get(JOB_TAG) != "job":
            raise InvalidInput(f"run {resume} is not a training job (no {JOB_TAG}=job tag)")
        _refuse_if_still_running(record)
        active = start_run(run_id=record.run_id, log_system_metrics=False, settings=settings)
    else:
        tags = {JOB_TAG: "job", "shipyard.training.workers": str(spec.world_size)}
        tags["shipyard.training.backend"] = spec.backend
        parent = active_run()  # a job started inside a run (a pipeline step's) is its child, beside it
        active = start_run(
            experiment or (None if parent is not None else EXPERIMENT),
            name,
            parent=parent,
            tags=tags,
            log_system_metrics=False,
            settings=settings,
        )
    opened = [active]
    with active:
        active.log_text(json.dumps(asdict(spec), indent=2), JOB_ARTIFACT)
        rank_runs: dict[str, str] = {}
        if spec.log_all_ranks:
            for rank in range(1, spec.world_size):
                child = _rank_run(client, active, rank, settings)
                opened.append(child)
                rank_runs[str(rank)] = child.run_id
        try:
            yield active, rank_runs
        except BaseException:
            for child in opened[1:]:
                child.end("FAILED")
            raise
        for child in opened[1:]:
            child.end("FINISHED")


def _refuse_if_still_running(record: Any) -> None:
    """A job whose launcher is alive is not resumed by a second one: its process on this machine still
    runs, or (on another machine) it still beats."""
    from shipyard.errors import Conflict
    from shipyard.tracking.records import RunStatus

    if record.status is not RunStatus.RUNNING or record.lost:
        return
    if record.pid is not None and record.host == host_name():
        try:
            os.kill(record.pid, 0)
        except ProcessLookupError:
            return  # its launcher died (kill -9) moments ago: the heartbeat has not timed out yet
        except PermissionError:
            pass  # alive, another user's
    raise Conflict(
        f"training job {record.run_id} is still running (process {record.process}); stop it first, "
        "or wait until its heartbeat times out"
    )


def _rank_run(client: Any, job: Any, rank: int, settings: Settings) -> Any:
    """Rank ``rank``'s own run, a child of the job's (the one of an earlier attempt when resuming); a
    handle of the launcher's, not this thread's active run."""
    from shipyard.errors import NotFound
    from shipyard.tracking.fluent import run_handle

    name = f"{job.name}-rank-{rank}"
    try:
        record, _ = client.resume_run(client.get_run_by_name(name, job.experiment_id).run_id)
    except NotFound:
        tags = {RANK_TAG: str(rank)}
        record, _ = client.create_run(job.experiment_id, name=name, parent_run_id=job.run_id, tags=tags)
    return run_handle(record, settings)


def _require_torch() -> None:
    try:
        import torch.distributed  # noqa: F401
    except ModuleNotFoundError:
        raise InvalidInput("training jobs need PyTorch: pip install 'shipyard[torch]'") from None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _launch_local(
    spec: JobSpec, job: WorkerJob, settings: Settings, call: tuple[Callable[..., Any], tuple, dict] | None
) -> Any:
    """The workers of this node, through torch's elastic agent in a worker process of the shared pool
    (:mod:`shipyard.workers`); rank 0's return value.

    The agent installs signal handlers and sets the job's environment: in a worker of its own it does both
    away from the caller (a notebook, a pipeline step, a thread among others), and it, the ranks it starts
    and theirs die with the caller however it ends (the worker leads its process group and watches the
    caller's lifeline; the ranks die with the agent).
    """
    pool = WorkerPool(1, preload=[__name__])
    try:
        pool.submit("agent", Call(_agent, (spec, job, settings, call)))
        outcomes = pool.wait(None)
        while not outcomes:  # pragma: no cover - wait(None) returns once the call ends
            outcomes = pool.wait(None)
    finally:
        pool.close()  # Ctrl-C while waiting: kills the agent and its ranks
    outcome = outcomes[0]
    if outcome.kind == "died":
        raise TrainingFailed(f"training job {job.run_id}: its launcher process died ({outcome.value})")
    if outcome.kind == "error":
        raise TrainingFailed(f"training job {job.run_id}: the launcher failed: {outcome.error_line}")
    ended, value, worker_traceback = outcome.value
    if ended == "failed":
        error = TrainingFailed(value)
        error.worker_traceback = worker_traceback  # type: ignore[attr-defined]
        raise error
    return value


def _agent(
    spec: JobSpec, job: WorkerJob, settings: Settings, call: tuple[Callable[..., Any], tuple, dict] | None
) -> tuple[str, Any, str]:
    """In the agent's worker: ``("ok", rank 0's value, "")`` or ``("failed", message, worker traceback)``
    (a TrainingFailed travels back as its parts: exceptions with extra attributes do not pickle whole)."""
    try:
        return "ok", _run_agent(spec, job, settings, call), ""
    except TrainingFailed as exc:
        return "failed", str(exc), getattr(exc, "worker_traceback", "")


def _run_agent(
    spec: JobSpec, job: WorkerJob, settings: Settings, call: tuple[Callable[..., Any], tuple, dict] | None
) -> Any:
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if spec.nnodes == 1:
        backend, endpoint, configs = "c10d", f"127.0.0.1:{_free_port()}", {}
    else:  # torchrun --nnodes N --node-rank R --master-addr A --master-port P
        backend, endpoint, configs = (
            "static",
            f"{spec.master_addr}:{spec.master_port}",
            {"rank": spec.node_rank},
        )
    config = LaunchConfig(
        min_nodes=spec.nnodes,
        max_nodes=spec.nnodes,
        nproc_per_node=spec.workers,
        run_id=job.run_id,
        rdzv_backend=backend,
        rdzv_endpoint=endpoint,
        rdzv_configs=configs,
        max_restarts=spec.max_restarts,
        monitor_interval=0.2,
        start_method="spawn",
    )
    # Native thread pools a worker's code may start besides torch's (NumPy's BLAS, OpenMP loops).
    environ = {JOB_ENV: job.to_json()}
    for pool in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        environ[pool] = os.environ.get(pool) or str(job.threads)  # the user's own setting wins
    try:
        with _environment(environ):
            if call is None:
                assert spec.script is not None
                launch = elastic_launch(config, sys.executable)
                launch("-m", "shipyard.training.script", spec.script, *spec.script_args)
                return None
            fn, args, kwargs = call
            values = elastic_launch(config, entry)(job, settings, fn, args, kwargs)
            return values.get(0) if spec.node_rank == 0 else None
    except ChildFailedError as exc:
        raise _failure(job, exc.failures) from None
    except (RendezvousError, RuntimeError) as exc:
        if isinstance(exc, ShipyardError):
            raise
        raise TrainingFailed(f"training job {job.run_id}: the workers could not start: {exc}") from None


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in this process's environment (which the workers inherit) while the job runs."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _failure(job: WorkerJob, failures: Mapping[int, Any]) -> TrainingFailed:
    """The job's first failure by time: a worker's own report (what it raised), else torch's (an exit
    code or a signal: a worker killed)."""
    reported = worker_failure(job)
    if reported is not None:
        return reported
    if not failures:
        return TrainingFailed(f"training job {job.run_id} failed")
    rank, failure = min(failures.items(), key=lambda item: item[1].timestamp)
    return TrainingFailed(f"training job {job.run_id}: rank {rank} {_how(failure.exitcode)}")


def worker_failure(job: WorkerJob) -> TrainingFailed | None:
    """The first failure the job's workers reported themselves (what they raised), by time; None if none
    did (a worker killed reports nothing)."""
    reports = []
    for path in Path(job.errors_dir).glob("rank-*.json"):
        with contextlib.suppress(OSError, ValueError):
            reports.append(json.loads(path.read_text()))
    if reports:
        first = min(reports, key=lambda report: report["time_ns"])
        error = TrainingFailed(
            f"training job {job.run_id}: rank {first['rank']} failed: {first['type']}: {first['message']}"
        )
        error.worker_traceback = first.get("traceback", "")  # type: ignore[attr-defined]
        return error
    return None


def _how(exitcode: int) -> str:
    import signal

    if exitcode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-exitcode).name}"
        return f"was killed by signal {-exitcode}"
    return f"exited with code {exitcode}"
