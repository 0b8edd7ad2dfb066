"""A pipeline slow enough for a browser to watch it run."""

from __future__ import annotations

import time

from shipyard.pipelines import component, pipeline


@component(cache=False)
def wait(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@component(cache=False)
def report(waited: float) -> str:
    print(f"waited {waited} s")
    return "done"


@pipeline(name="slow")
def slow(seconds: float = 3.0) -> None:
    first = wait(seconds=seconds)
    report(waited=first.output)
