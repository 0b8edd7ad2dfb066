"""A pipeline whose step runs until it is stopped, for the server's cancel test."""

from __future__ import annotations

import time

from shipyard.pipelines import component, pipeline


@component
def nap(seconds: float) -> float:
    print("napping", flush=True)
    time.sleep(seconds)
    return seconds


@pipeline
def napping(seconds: float = 120.0) -> None:
    nap(seconds=seconds)
