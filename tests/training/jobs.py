"""Training functions for the training tests: module-level, so the workers (fresh processes) import them."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import shipyard
from shipyard import training

FEATURES = 8


class Note:
    """An object of the user's own: a checkpoint holding one needs unpickling (``trusted=True``)."""

    def __init__(self, text: str) -> None:
        self.text = text


def dataset(n: int = 1024, seed: int = 0) -> Any:
    """A fixed regression problem: y = X w + noise (noise variance 0.01: the loss a fit reaches)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, FEATURES, generator=generator)
    w = torch.randn(FEATURES, 1, generator=generator)
    y = x @ w + 0.1 * torch.randn(n, 1, generator=generator)
    return torch.utils.data.TensorDataset(x, y)


def fit(
    epochs: int = 8,
    lr: float = 0.05,
    batch: int = 32,
    checkpoint_every: int = 0,
    die_at: int | None = None,
    raise_at: int | None = None,
    pids: str | None = None,
    pause_s: float = 0.0,
    marks: str | None = None,
) -> dict[str, Any]:
    """Data-parallel SGD on :func:`dataset`: each worker its shard, DDP averaging the gradients. Logs the
    epoch's loss (averaged over workers) as ``loss``; rank 1 also logs ``rank_loss``, which only a job
    with ``log_all_ranks`` keeps. ``die_at``: rank 1 kills itself (SIGKILL) at that epoch in the first
    attempt; ``raise_at``: rank 1 raises there. ``marks``: a folder where rank 0 writes the run id and a
    file per checkpoint saved (``checkpoint-<step>``), and every worker a file named by its rank and pid."""
    import torch

    ctx = training.context()
    if pids:
        Path(pids, f"{ctx.restart}-{ctx.rank}.pid").write_text(str(os.getpid()))
    if marks:
        Path(marks, f"pid-{ctx.rank}-{os.getpid()}").touch()
        if ctx.is_main:
            Path(marks, "run_id").write_text(ctx.run_id or "")
    torch.manual_seed(0)
    model = ctx.prepare_model(torch.nn.Linear(FEATURES, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    start = 0
    saved = training.latest_checkpoint()
    if saved is not None:
        model.load_state_dict(saved.state["model"])
        optimizer.load_state_dict(saved.state["optimizer"])
        start = saved.step + 1
    shipyard.log_metric("started_at", start)
    data = dataset()
    sampler = ctx.sampler(data, seed=1)
    loader = torch.utils.data.DataLoader(data, batch_size=batch, sampler=sampler)
    shipyard.log_param("lr", lr)
    for epoch in range(start, epochs):
        sampler.set_epoch(epoch)
        if ctx.rank == 1 and die_at == epoch and ctx.restart == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        if ctx.rank == 1 and raise_at == epoch:
            raise ValueError(f"bad batch at epoch {epoch}")
        total, count = 0.0, 0
        for x, y in loader:
            optimizer.zero_grad()
            with ctx.autocast():
                loss = torch.nn.functional.mse_loss(model(x.to(ctx.device)), y.to(ctx.device))
            loss.backward()
            optimizer.step()
            total, count = total + loss.item() * len(x), count + len(x)
        mean = ctx.all_reduce_mean(total / count)
        shipyard.log_metric("loss", mean, step=epoch)
        shipyard.log_metric("rank_loss", total / count, step=epoch)
        if checkpoint_every and (epoch + 1) % checkpoint_every == 0:
            training.save_checkpoint(
                {"model": model.state_dict(), "optimizer": optimizer.state_dict()}, epoch
            )
            if marks and ctx.is_main:
                Path(marks, f"checkpoint-{epoch}").touch()
        time.sleep(pause_s)
    with torch.no_grad():
        x, y = data.tensors
        final = float(torch.nn.functional.mse_loss(model(x), y))
    return {"loss": final, "start": start, "world": ctx.world_size, "rank": ctx.rank}


def precision() -> dict[str, Any]:
    """What ``context().autocast()`` turns on in a worker."""
    import torch

    ctx = training.context()
    with ctx.autocast():
        if not torch.is_autocast_enabled(ctx.device_type):
            return {"enabled": False}
        return {"enabled": True, "dtype": str(torch.get_autocast_dtype(ctx.device_type))}


def gone(pid: int, budget_s: float = 15.0) -> bool:
    """Whether process ``pid`` is gone within ``budget_s`` (a worker that must not outlive its job)."""
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False
