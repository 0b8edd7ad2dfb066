"""Checkpoints as run artifacts: :func:`save_checkpoint` on every worker, :func:`latest_checkpoint` to resume.

Rank 0 writes ``checkpoints/step-<step>.pt`` (``torch.save``) into the job's run, then the pointer
``checkpoints/latest.json`` (step, path, sha256); the other workers wait at a barrier until both are
written, so no worker runs ahead of a checkpoint it may need. The pointer is written last: a job killed
while writing a checkpoint resumes from the previous one, never from half a file. Loading verifies the
sha256 and reads with ``torch.load(weights_only=True)`` (tensors, numbers, strings, lists and dicts of
them); anything else needs ``trusted=True``, as every other unpickling in Shipyard does.
"""

from __future__ import annotations

import io
import json
import pickle
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shipyard.errors import InvalidInput, UntrustedArtifact
from shipyard.training.context import context

CHECKPOINTS = "checkpoints"
LATEST = f"{CHECKPOINTS}/latest.json"
_PATH = re.compile(r"checkpoints/step-\d{9,}\.pt")


@dataclass(frozen=True)
class Checkpoint:
    """A saved training state and the step it was saved at."""

    step: int
    state: Any
    path: str  # the artifact's path in the job's run


def save_checkpoint(state: Any, step: int) -> str:
    """Save ``state`` (a dict of ``state_dict()``s, counters …) as the checkpoint of ``step``.

    Call it on every worker at the same point (it ends at a barrier); rank 0 writes. Returns the artifact
    path.

    Raises:
        InvalidInput: ``step`` is not a non-negative integer, or there is no run to keep it in.
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise InvalidInput(f"save_checkpoint: step must be a non-negative integer, got {step!r}")
    ctx = context()
    path = f"{CHECKPOINTS}/step-{step:09d}.pt"
    if ctx.is_main:
        import torch

        run = _run_for_checkpoints()
        buffer = io.BytesIO()
        torch.save(state, buffer)
        record = run.log_bytes(buffer.getvalue(), path)
        pointer = {
            "step": step,
            "path": path,
            "sha256": record.sha256,
            "size": record.size,
            "saved_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        run.log_text(json.dumps(pointer), LATEST)
    ctx.barrier()
    return path


def latest_checkpoint(*, map_location: Any = None, trusted: bool = False) -> Checkpoint | None:
    """The job's newest checkpoint (None before the first): what a resumed or restarted job starts from.

    Args:
        map_location: where tensors load (default: this worker's device).
        trusted: allow arbitrary pickled objects in the state (only for checkpoints you wrote).

    Raises:
        IntegrityError: the checkpoint's content does not match its recorded sha256.
        UntrustedArtifact: the state holds objects that need unpickling and ``trusted`` is False.
    """
    import torch

    ctx = context()
    store = _run_for_checkpoints().artifacts
    if not store.exists(LATEST):
        return None
    try:
        pointer = json.loads(store.read_bytes(LATEST))
        step, path, sha256 = int(pointer["step"]), str(pointer["path"]), str(pointer["sha256"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"{LATEST} of run {ctx.run_id} is malformed: {exc}") from None
    if not _PATH.fullmatch(path):  # the pointer names a file of ours, never another path of the store
        raise InvalidInput(f"{LATEST} of run {ctx.run_id} points outside {CHECKPOINTS}/: {path!r}")
    data = store.read_bytes(path, expected_sha256=sha256)
    location = ctx.device if map_location is None else map_location
    try:
        state = torch.load(io.BytesIO(data), map_location=location, weights_only=not trusted)
    except pickle.UnpicklingError as exc:
        raise UntrustedArtifact(
            f"checkpoint {path} holds objects that need unpickling ({str(exc).splitlines()[0]}); "
            "pass trusted=True only if you wrote it"
        ) from None
    return Checkpoint(step=step, state=state, path=path)


def _run_for_checkpoints() -> Any:
    """The job's run (a Shipyard job), else this thread's active run (a plain torchrun or a notebook)."""
    from shipyard.tracking.fluent import active_run
    from shipyard.training import worker

    run = worker.job_run() or active_run()
    if run is None:
        raise InvalidInput(
            "no run to keep checkpoints in: start the job with shipyard.training.run / `shipyard train`, "
            "or call shipyard.start_run() first"
        )
    return run
