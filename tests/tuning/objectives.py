"""Trial functions for the tuning tests: top-level, so worker processes and Ray tasks can import them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import shipyard
from shipyard.pipelines import component, pipeline
from shipyard.tuning import TrialContext


def quadratic(trial: TrialContext) -> float:
    """Maximised at x = 2 (and y = 'b' adds 1)."""
    x = trial.params["x"]
    bonus = {"a": 0.0, "b": 1.0, "c": 0.5}[trial.params.get("y", "a")]
    return -((x - 2.0) ** 2) + bonus


def learning_curve(trial: TrialContext) -> float:
    """Reports 10 epochs approaching ``x``; bad x are pruned early by a median rule."""
    x = trial.params["x"]
    value = 0.0
    for epoch in range(10):
        value = x * (1 - 0.5 ** (epoch + 1))
        trial.report(value, epoch)
    return value


def flaky(trial: TrialContext) -> float:
    if trial.params["x"] > 5:
        raise RuntimeError(f"diverged at x={trial.params['x']:.3f}")
    return trial.params["x"]


def logs_only(trial: TrialContext) -> None:
    trial.run.log_metric("score", trial.params["x"] * 2)


def forgets(trial: TrialContext) -> dict[str, float]:
    return {"other": 1.0}


def sleepy(trial: TrialContext) -> float:
    """CPU-bound for a moment, and records its process id (parallel trials run in several)."""
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    trial.run.set_tag("pid", str(os.getpid()))
    return trial.params["x"]


def hangs_after_marker(trial: TrialContext) -> float:
    """Writes a marker file then sleeps: the test kills the process while trials run."""
    marker = Path(os.environ["SHIPYARD_TEST_MARKER"])
    if trial.number >= 3:
        marker.write_text(str(trial.number))
        time.sleep(600)
    return trial.params["x"]


def two_objectives(trial: TrialContext) -> dict[str, float]:
    x = trial.params["x"]
    return {"accuracy": x, "latency": x**2}


def quadratic_x(trial: TrialContext) -> float:
    return trial.params["x"]


@component
def score(x: float) -> float:
    """A step whose output is the objective (maximised at x = 2)."""
    shipyard.log_metric("distance", abs(x - 2.0))
    return -((x - 2.0) ** 2)


@pipeline
def quadratic_pipeline(x: float = 0.0) -> None:
    score(x=x)


def curve_failing_third(trial: TrialContext) -> float:
    """Reports three steps; trial 2 then fails (a search with a failure and intermediate values)."""
    x = trial.params["x"]
    for step in range(3):
        trial.report(-((x - 1) ** 2) + step, step)
    if trial.number == 2:
        raise RuntimeError("trial two breaks")
    return -((x - 1) ** 2) + 2
