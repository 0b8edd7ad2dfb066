"""A training job on Ray: Ray Train's ``TorchTrainer`` places the workers (one ``ScalingConfig`` worker per
job worker, with the job's CPUs/GPUs each) and joins their process group; each worker then runs inside
the same :func:`~shipyard.training.worker.worker_scope` as a local job's, so tracking, checkpoints and
failure reports behave the same. ``max_restarts`` becomes Ray's ``FailureConfig.max_failures``.

The training function travels pickled (cloudpickle) inside the worker's configuration and is unpickled
after the driver's ``sys.path`` has been added to the worker's, so a function of the user's own modules
imports there as it does here (Ray's workers do not share the driver's ``sys.path``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from shipyard.config import Settings
from shipyard.errors import TrainingFailed
from shipyard.training.context import TrainingContext


def launch_ray(
    spec: Any, job: Any, settings: Settings, call: tuple[Callable[..., Any], tuple, dict] | None
) -> Any:
    """Run the job's workers on the Ray cluster of ``settings.ray_address`` (a local one when unset);
    rank 0's return value."""
    import cloudpickle

    from shipyard.workers import connect

    try:
        connect(settings.ray_address)
    except Exception as exc:
        raise TrainingFailed(f"training job {job.run_id}: {exc}") from None
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    payload = cloudpickle.dumps(call if call is not None else (spec.script, spec.script_args))
    # Rank 0's return value comes back through a tiny actor (Ray Train keeps only reported metrics).
    import ray

    box = ray.remote(num_cpus=0)(_Box).remote()
    resources = {"CPU": spec.cpus_per_worker or 1.0}
    if spec.device == "cuda":
        resources["GPU"] = max(spec.gpus_per_worker, 1.0)
    trainer = TorchTrainer(
        _ray_worker,
        train_loop_config={
            "job": job,
            "settings": settings,
            "paths": list(sys.path),
            "payload": payload,
            "script": call is None,
            "box": box,
        },
        torch_config=TorchConfig(backend=spec.backend),
        scaling_config=ScalingConfig(
            num_workers=spec.world_size, use_gpu=spec.device == "cuda", resources_per_worker=resources
        ),
        run_config=RunConfig(
            name=f"shipyard-{job.run_id}",
            storage_path=job.errors_dir,  # Ray Train's own files; the checkpoints are in the run
            failure_config=FailureConfig(max_failures=spec.max_restarts),
        ),
    )
    try:
        trainer.fit()
    except Exception as exc:  # ray.train's TrainingFailedError and its kin: the workers' reports say more
        from shipyard.training.launcher import worker_failure

        failure = worker_failure(job)
        raise failure or TrainingFailed(f"training job {job.run_id} failed on Ray: {exc}") from None
    return ray.get(box.get.remote())


def _ray_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: the job's scope around the function (or script), rank 0's value reported."""
    import cloudpickle
    import ray.train

    for path in reversed(config["paths"]):
        if path not in sys.path:
            sys.path.insert(0, path)
    from shipyard.training import worker

    job, settings = config["job"], config["settings"]
    train = ray.train.get_context()
    ctx = TrainingContext(
        rank=train.get_world_rank(),
        local_rank=train.get_local_rank(),
        world_size=train.get_world_size(),
        local_world_size=train.get_local_world_size(),
        node_rank=train.get_node_rank(),
        backend=job.backend,
        device_type=job.device_type,
        run_id=job.run_id,
        mixed_precision=job.mixed_precision,
    )
    payload = cloudpickle.loads(config["payload"])
    with worker.worker_scope(job, settings, ctx):
        if config["script"]:
            script, args = payload
            worker.run_script(script, list(args))
            value = None
        else:
            fn, args, kwargs = payload
            value = fn(*args, **kwargs)
    if ctx.is_main:
        import ray

        ray.get(config["box"].put.remote(value))


class _Box:
    """Holds one value for the driver."""

    def __init__(self) -> None:
        self.value: Any = None

    def put(self, value: Any) -> None:
        self.value = value

    def get(self) -> Any:
        return self.value
