"""Record one step (or loop iteration) as a tracked run nested under the pipeline run."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

from shipyard.config import Settings
from shipyard.errors import ShipyardError
from shipyard.pipelines.staging import read_bytes
from shipyard.tracking import ActiveRun, RunStatus, start_run
from shipyard.tracking.records import PIPELINE_RUN_TAG

# What a step printed, as artifacts of its run (`shipyard runs logs` prints them).
CAPTURED_OUTPUT = ("stdout.txt", "stderr.txt")


def open_step_run(
    pipeline_run: ActiveRun,
    experiment: str,
    step_name: str,
    params: dict[str, Any],
    settings: Settings,
    tags: Mapping[str, str] | None = None,
) -> ActiveRun:
    """Start the nested run of a step, with its parameter inputs as params."""
    run = start_run(
        experiment,
        f"{pipeline_run.name}.{step_name}",
        parent=pipeline_run,
        # The pipeline run tag lets a model logged inside the step name its pipeline run in the registry.
        tags={"shipyard.step": step_name, PIPELINE_RUN_TAG: pipeline_run.run_id, **(tags or {})},
        log_system_metrics=False,
        settings=settings,
    )
    if params:
        run.log_params(params)
    return run


def log_metrics_file(run: ActiveRun, path: str, settings: Settings) -> None:
    """Log a ``Metrics`` output written as JSON ``{name: number}``; anything else is left as the file.

    ``path`` is a local path or an object-store URI (read with ``settings``' storage options)."""
    try:
        data = json.loads(read_bytes(path, settings))
    except (OSError, ValueError, ShipyardError):
        return
    if isinstance(data, dict):
        numbers = {
            k: float(v)
            for k, v in data.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        }
        if numbers:
            run.log_metrics(numbers)


def close_step_run(
    run: ActiveRun, log_dir: str, error: str | None, attempts: int, tags: Mapping[str, str] | None = None
) -> None:
    """Attach captured output (and the traceback of a failure), set ``tags`` with the attempt count, then
    end the run with its status."""
    for name in CAPTURED_OUTPUT:
        path = os.path.join(log_dir, name)
        # An empty capture is not worth an artifact (two of them doubled the cost of a no-op step).
        if os.path.isfile(path) and os.path.getsize(path):
            run.log_artifact(path)
    run.set_tags({"shipyard.attempts": attempts, **(tags or {})})
    if error is not None:
        run.log_traceback(error)
    run.end(RunStatus.FAILED if error is not None else RunStatus.FINISHED)
