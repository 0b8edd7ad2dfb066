"""Metric points in columns: the in-memory `Series` buffer and the stored history chunks.

A `Series` holds the points of one (run, key) as three typed arrays — int64 steps, float64 values (NaN and
±inf exactly) and int64 epoch-millisecond timestamps — so buffering a point allocates no Python object that
outlives the call, and a million buffered points cost the garbage collector nothing. A stored chunk is the
same three arrays as little-endian bytes. Pure data handling, no I/O.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

MAX_POINTS_PER_CHUNK = 200_000
# Above this many points numpy views scan a column faster than the builtins (which box every item); below
# it their set-up costs more than the scan (a run's end flushes a few points per key).
_VECTOR_FROM = 64
CHUNK_COLUMNS = ("run_pk", "key", "count", "min_step", "max_step", "steps", "values", "timestamps")
_LITTLE_ENDIAN = sys.byteorder == "little"


class Series:
    """Points of one (run, key) in arrival order. Not thread-safe: the writer guards it with its lock."""

    __slots__ = ("steps", "timestamps", "values")

    def __init__(self) -> None:
        self.steps = array("q")
        self.values = array("d")
        self.timestamps = array("q")

    def __len__(self) -> int:
        return len(self.steps)

    def extend(self, other: Series) -> None:
        self.steps.extend(other.steps)
        self.values.extend(other.values)
        self.timestamps.extend(other.timestamps)


# Buffered points of many series, keyed by (run_pk, key).
SeriesMap = Mapping[tuple[int, str], Series]


def to_le_bytes(column: array) -> bytes:
    """``column``'s items as little-endian bytes (the wire and storage byte order)."""
    if _LITTLE_ENDIAN:
        return column.tobytes()
    copy = array(column.typecode, column)
    copy.byteswap()
    return copy.tobytes()


def from_le_bytes(typecode: str, data: bytes) -> array:
    """An array of ``typecode`` from little-endian bytes."""
    column = array(typecode)
    column.frombytes(data)
    if not _LITTLE_ENDIAN:
        column.byteswap()
    return column


def encode_series(run_pk: int, key: str, series: Series) -> list[tuple[Any, ...]]:
    """Chunk rows holding every point of ``series``, in the column order of ``CHUNK_COLUMNS``."""
    out = []
    for start in range(0, len(series), MAX_POINTS_PER_CHUNK):
        end = start + MAX_POINTS_PER_CHUNK
        steps = series.steps[start:end]
        if len(steps) >= _VECTOR_FROM:
            view = _int64s(steps)
            low, high = int(view.min()), int(view.max())
        else:
            low, high = min(steps), max(steps)
        out.append(
            (
                run_pk,
                key,
                len(steps),
                low,
                high,
                to_le_bytes(steps),
                to_le_bytes(series.values[start:end]),
                to_le_bytes(series.timestamps[start:end]),
            )
        )
    return out


def latest_of(series: Series) -> tuple[float, int, int]:
    """(value, step, timestamp) of the highest step, then the newest; the last logged wins a tie."""
    if len(series) < _VECTOR_FROM:
        steps, stamps = series.steps, series.timestamps
        top = max(steps)
        best = max((i for i, step in enumerate(steps) if step == top), key=lambda i: (stamps[i], i))
        return series.values[best], steps[best], stamps[best]
    steps = _int64s(series.steps)
    at = np.flatnonzero(steps == steps.max())
    if len(at) == 1:
        best = int(at[0])
    else:  # several points at the top step: the newest, and of those the last logged
        stamps = _int64s(series.timestamps)[at][::-1]
        best = int(at[len(at) - 1 - int(np.argmax(stamps))])
    return series.values[best], series.steps[best], series.timestamps[best]


def _int64s(column: array) -> np.ndarray:
    """A view of an int64 array (no copy; it pins the array's size while it lives)."""
    return np.frombuffer(column, dtype=np.int64)


def decode_chunk(steps: bytes, values: bytes, timestamps: bytes) -> Iterator[tuple[int, float, int]]:
    """(step, value, timestamp) triples of one stored chunk, in logged order."""
    return zip(
        from_le_bytes("q", steps), from_le_bytes("d", values), from_le_bytes("q", timestamps), strict=True
    )


def chunk_arrays(steps: bytes, values: bytes, timestamps: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One stored chunk's steps, values and timestamps as numpy arrays (little-endian on disk)."""
    return (
        np.frombuffer(steps, dtype="<i8"),
        np.frombuffer(values, dtype="<f8"),
        np.frombuffer(timestamps, dtype="<i8"),
    )
