"""What a training function knows about the job it runs in: :func:`context`.

Inside a job started by :func:`shipyard.training.run` (or ``shipyard train``), each worker process has one
:class:`TrainingContext`: its rank, the world size, its device, the job's tracked run, and whether mixed
precision is on. Under a plain ``torchrun`` (no Shipyard launcher) the context is read from torchrun's
environment and the process group is joined on first use; with no launcher at all it is a job of one, so
the same function runs unchanged in a notebook.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from shipyard.errors import InvalidInput

BACKENDS = ("gloo", "nccl")
DEVICES = ("cpu", "cuda")
# How long workers wait for each other to join the process group (a slow worker start, a busy machine).
JOIN_TIMEOUT = timedelta(minutes=5)

_process_context: TrainingContext | None = None


@dataclass(frozen=True)
class TrainingContext:
    """One worker's place in a training job."""

    rank: int  # 0 .. world_size - 1, across nodes
    local_rank: int  # on this node: the index of its GPU with device "cuda"
    world_size: int
    local_world_size: int
    node_rank: int
    backend: str  # "gloo" or "nccl"
    device_type: str  # "cpu" or "cuda"
    run_id: str | None  # the job's tracked run (None outside a Shipyard job)
    restart: int = 0  # how many times the job's workers were restarted before this attempt
    mixed_precision: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the worker whose tracking calls are kept, and which writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def device(self) -> Any:
        """This worker's ``torch.device``: ``cuda:<local_rank>`` on GPUs, else ``cpu``."""
        import torch

        if self.device_type == "cuda":
            return torch.device("cuda", self.local_rank)
        return torch.device("cpu")

    def autocast(self) -> Any:
        """``torch.autocast`` for this device when the job runs with mixed precision (float16 on CUDA,
        bfloat16 on CPU), else a context that changes nothing."""
        import torch

        if not self.mixed_precision:
            return contextlib.nullcontext()
        dtype = torch.float16 if self.device_type == "cuda" else torch.bfloat16
        return torch.autocast(device_type=self.device_type, dtype=dtype)

    def prepare_model(self, model: Any) -> Any:
        """``model`` moved to this worker's device and, in a job of several workers, wrapped in
        ``DistributedDataParallel`` (gradients averaged across workers at each ``backward``)."""
        model = model.to(self.device)
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.local_rank] if self.device_type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def sampler(self, dataset: Any, *, shuffle: bool = True, seed: int = 0) -> Any:
        """A ``DistributedSampler`` giving this worker its share of ``dataset`` (call ``set_epoch`` on it
        each epoch for a new shuffle)."""
        from torch.utils.data.distributed import DistributedSampler

        return DistributedSampler(
            dataset, num_replicas=self.world_size, rank=self.rank, shuffle=shuffle, seed=seed
        )

    def barrier(self) -> None:
        """Wait until every worker reaches this point (nothing to wait for in a job of one)."""
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def all_reduce_mean(self, value: float) -> float:
        """The mean of ``value`` over the workers (a loss, an accuracy)."""
        if not self.distributed:
            return float(value)
        import torch
        import torch.distributed as dist

        tensor = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return float(tensor.item()) / self.world_size


def context() -> TrainingContext:
    """This worker's :class:`TrainingContext`.

    In a Shipyard job it was set up before the training function started; under a plain ``torchrun``
    it is read from torchrun's environment (``RANK``, ``WORLD_SIZE`` …) and the process group is joined
    here; with neither, it is a job of one worker on the CPU.
    """
    current = _process_context
    if current is not None:
        return current
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        backend = os.environ.get("SHIPYARD_TRAINING_BACKEND", "gloo")
        current = from_environment(backend, "cuda" if backend == "nccl" else "cpu", None)
        join_process_group(current)
    else:
        current = TrainingContext(0, 0, 1, 1, 0, "gloo", "cpu", None)
    _set_process_context(current)
    return current


def from_environment(
    backend: str, device_type: str, run_id: str | None, mixed: bool = False
) -> TrainingContext:
    """The context torch's launcher describes in this worker's environment."""
    env = os.environ
    try:
        return TrainingContext(
            rank=int(env["RANK"]),
            local_rank=int(env.get("LOCAL_RANK", env["RANK"])),
            world_size=int(env["WORLD_SIZE"]),
            local_world_size=int(env.get("LOCAL_WORLD_SIZE", env["WORLD_SIZE"])),
            node_rank=int(env.get("GROUP_RANK", "0")),
            backend=backend,
            device_type=device_type,
            run_id=run_id,
            restart=int(env.get("TORCHELASTIC_RESTART_COUNT", "0")),
            mixed_precision=mixed,
        )
    except (KeyError, ValueError) as exc:
        raise InvalidInput(f"torch's launcher environment is incomplete or malformed: {exc}") from None


def join_process_group(ctx: TrainingContext) -> None:
    """Join the job's process group (a job of one needs none).

    Each restart of the workers joins under a key prefix of its own: torch's elastic agent keeps one
    store for the job, and gloo would otherwise read the addresses its peers published in the previous
    attempt and fail to connect.
    """
    import torch.distributed as dist

    if not ctx.distributed or dist.is_initialized():
        return
    if ctx.device_type == "cuda":
        import torch

        torch.cuda.set_device(ctx.local_rank)
    # torch's agent hosts the store its workers join (TORCHELASTIC_USE_AGENT_STORE); else rank 0 does.
    hosts = ctx.rank == 0 and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True"
    store = dist.TCPStore(
        os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=hosts, timeout=JOIN_TIMEOUT
    )
    prefixed = dist.PrefixStore(f"shipyard/attempt-{ctx.restart}", store)
    dist.init_process_group(
        ctx.backend, store=prefixed, rank=ctx.rank, world_size=ctx.world_size, timeout=JOIN_TIMEOUT
    )


def leave_process_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def _set_process_context(ctx: TrainingContext | None) -> None:
    global _process_context
    _process_context = ctx


@contextlib.contextmanager
def using_context(ctx: TrainingContext) -> Iterator[TrainingContext]:
    """Make ``ctx`` what :func:`context` returns in this process while the block runs."""
    before = _process_context
    _set_process_context(ctx)
    try:
        yield ctx
    finally:
        _set_process_context(before)
