"""No-op components for ``benchmarks/pipelines.py``: importable by module path, as workers import them."""

from __future__ import annotations

from shipyard.pipelines import component


@component
def noop(x: int) -> int:
    return x + 1


@component
def total(xs: list) -> int:
    return sum(xs)


@component
def stamp(x: int) -> float:
    import time

    return time.time()
