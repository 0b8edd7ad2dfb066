"""Metric series thinned for charts: at most a given number of points, every spike kept.

A browser draws 2,000 points a series at once; a long training run logs millions. The series is cut into
equal spans of its x axis and each span keeps its lowest and its highest point (in x order), plus the first
and last point of the series, so a spike or a dip never vanishes from the chart, unlike with averaging or
every-n-th-point sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shipyard.errors import InvalidInput

MAX_POINTS = 2000


@dataclass(frozen=True)
class Thinned:
    """The kept points (x ascending) and how many the series had."""

    x: np.ndarray
    y: np.ndarray
    total: int

    @property
    def thinned(self) -> bool:
        return len(self.x) < self.total


def thin(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> Thinned:
    """Keep at most ``max_points`` of the series ``(x, y)`` (sorted by x first if it is not).

    NaN values are kept where they fall into a span's first point (a chart draws them as gaps) and never
    chosen as a span's minimum or maximum.

    Raises:
        InvalidInput: ``max_points`` under 4, or ``x`` and ``y`` of different lengths.
    """
    if max_points < 4:
        raise InvalidInput(f"max_points must be at least 4, got {max_points}")
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise InvalidInput(f"x and y must be 1-D of one length, got {x.shape} and {y.shape}")
    total = len(x)
    if total and np.any(x[1:] < x[:-1]):
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
    if total <= max_points:
        return Thinned(x, y, total)
    spans = (max_points - 2) // 2
    # Span of each point by its x (equal widths of the x range; a constant x is one span).
    lo, hi = x[0], x[-1]
    width = (hi - lo) / spans if hi > lo else 1.0
    span = np.minimum(((x - lo) / width).astype(np.int64), spans - 1)
    new_span = np.r_[True, span[1:] != span[:-1]]
    starts = np.flatnonzero(new_span)
    group = np.cumsum(new_span) - 1  # spans with points, numbered from 0 (empty spans have none)
    nan = np.isnan(y)
    for_low = np.where(nan, np.inf, y)  # NaN is never a span's minimum or maximum
    for_high = np.where(nan, -np.inf, y)
    lows = np.minimum.reduceat(for_low, starts)
    highs = np.maximum.reduceat(for_high, starts)
    keep = np.zeros(total, dtype=bool)
    keep[[0, total - 1]] = True
    # (A span of NaN only keeps its first point as its "minimum": the chart shows a gap there.)
    keep[_first_where(for_low == lows[group], group)] = True
    keep[_first_where(for_high == highs[group], group)] = True
    chosen = np.flatnonzero(keep)
    return Thinned(x[chosen], y[chosen], total)


def _first_where(hit: np.ndarray, group: np.ndarray) -> np.ndarray:
    """The first index of each group where ``hit`` holds (``group`` is non-decreasing)."""
    where = np.flatnonzero(hit)
    groups = group[where]
    return where[np.r_[True, groups[1:] != groups[:-1]]]


def on_grid(x: np.ndarray, y: np.ndarray, lo: float, hi: float, spans: int) -> np.ndarray:
    """``(x, y)`` on a grid shared by several series (a compare): ``2 * spans`` slots over ``[lo, hi]``,
    each span's two slots holding its lowest and highest value in the order they came (NaN where a span
    has no point), so overlaid series line up on one x axis and keep their spikes.

    The grid's x values are :func:`grid` of the same arguments.
    """
    out = np.full(2 * spans, np.nan)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    keep = ~np.isnan(y)
    x, y = x[keep], y[keep]
    if not len(x):
        return out
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    width = (hi - lo) / spans if hi > lo else 1.0
    span = np.clip(((x - lo) / width).astype(np.int64), 0, spans - 1)
    new_span = np.r_[True, span[1:] != span[:-1]]
    starts = np.flatnonzero(new_span)
    group = np.cumsum(new_span) - 1
    lows = np.minimum.reduceat(y, starts)
    highs = np.maximum.reduceat(y, starts)
    low_at = _first_where(y == lows[group], group)
    high_at = _first_where(y == highs[group], group)
    first_is_low = low_at <= high_at
    slots = span[starts] * 2
    out[slots] = np.where(first_is_low, lows, highs)
    out[slots + 1] = np.where(first_is_low, highs, lows)
    return out


def grid(lo: float, hi: float, spans: int) -> np.ndarray:
    """The x values of :func:`on_grid`'s slots: each span's start and middle."""
    width = (hi - lo) / spans if hi > lo else 1.0
    starts = lo + width * np.arange(spans)
    return np.column_stack((starts, starts + width / 2)).ravel()
