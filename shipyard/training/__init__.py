"""Distributed training jobs: data-parallel workers on torch's elastic launcher or Ray Train, with
rank-aware tracking, checkpoints as run artifacts, and resume.

>>> from shipyard import training
>>> def train(lr):
...     ctx = training.context()
...     ...  # ctx.rank, ctx.world_size, ctx.device, ctx.prepare_model(model), training.save_checkpoint(...)
>>> training.run(train, 0.1, workers=2)  # doctest: +SKIP
"""

from shipyard.training.checkpoints import Checkpoint, latest_checkpoint, save_checkpoint
from shipyard.training.context import TrainingContext, context
from shipyard.training.launcher import JobSpec, TrainingResult, recorded_spec, resume_job, run, run_script

__all__ = [
    "Checkpoint",
    "JobSpec",
    "TrainingContext",
    "TrainingResult",
    "context",
    "latest_checkpoint",
    "recorded_spec",
    "resume_job",
    "run",
    "run_script",
    "save_checkpoint",
]
