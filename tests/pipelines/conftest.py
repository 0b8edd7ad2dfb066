"""Fixtures the pipeline tests share."""

from __future__ import annotations

import pytest

from shipyard.config import Settings
from shipyard.pipelines.executors import LocalExecutor, PipelineExecutor, RayExecutor


@pytest.fixture(params=["local", "ray"])
def executor(request: pytest.FixtureRequest, settings: Settings) -> PipelineExecutor:
    """Each executor in turn: local worker processes, then a real local Ray (skipped, with the reason, when
    Ray cannot start here). A module that needs one executor defines its own ``executor``."""
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
        return RayExecutor(max_parallel=2, settings=settings)
    return LocalExecutor(max_parallel=2, settings=settings)
