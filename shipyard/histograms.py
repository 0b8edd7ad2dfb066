"""Prometheus histograms read back: quantiles interpolated within cumulative buckets.

A records-level module: the inference server's heartbeat and the canary controller both read latency
histograms (the server's own counters, or its ``/metrics`` text) and neither imports the other.
"""

from __future__ import annotations

from collections.abc import Mapping


def percentile(buckets: Mapping[float, float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a histogram's cumulative ``buckets`` (upper bound -> count), linearly
    interpolated within its bucket; None without observations. Past the last finite bound: that bound."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return None
    target = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= target:
            if bound == float("inf"):
                return lower
            inside = count - below
            share = (target - below) / inside if inside > 0 else 1.0
            return lower + (bound - lower) * share
        lower, below = bound, count
    return lower
