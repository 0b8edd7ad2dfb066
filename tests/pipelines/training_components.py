"""Pipeline steps that run as data-parallel training jobs (``@component(workers=N)``)."""

from __future__ import annotations

import json

from shipyard import training
from shipyard.pipelines import Input, Metrics, Model, Output, component, pipeline
from tests.training.jobs import fit


@component(workers=2)
def train_ddp(epochs: int, model: Output[Model]) -> float:
    """Two ranks fit the regression; rank 0 writes the model file and its result is the step's."""
    result = fit(epochs=epochs)
    if training.context().is_main:
        with open(model.path, "w", encoding="utf-8") as handle:
            json.dump({"world": result["world"], "loss": result["loss"]}, handle)
    return float(result["loss"])


@component
def report(model: Input[Model], loss: float, metrics: Output[Metrics]) -> int:
    with open(model.path, encoding="utf-8") as handle:
        trained = json.load(handle)
    with open(metrics.path, "w", encoding="utf-8") as handle:
        json.dump({"final_loss": loss}, handle)
    return int(trained["world"])


@pipeline
def distributed(epochs: int = 4) -> None:
    trained = train_ddp(epochs=epochs)
    report(model=trained.outputs["model"], loss=trained.outputs["output"])


@component(workers=64)
def too_wide() -> float:
    return 0.0


@pipeline
def oversubscribed() -> None:
    too_wide()
