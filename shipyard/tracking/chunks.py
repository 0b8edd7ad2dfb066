"""Packing metric points into history chunks and back (see ``metric_chunks`` in the schema).

A chunk holds the points of one (run, key) as three little-endian arrays: int64 steps, float64 values
(NaN and ±inf exactly) and int64 epoch-millisecond timestamps. Pure functions, no I/O.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

# A buffered point: (run_pk, key, value, step, timestamp_ms).
MetricRow = tuple[int, str, float, int, int]

MAX_POINTS_PER_CHUNK = 200_000
_SWAP = sys.byteorder != "little"


def _pack(kind: str, items: Iterable[Any]) -> bytes:
    packed = array(kind, items)
    if _SWAP:
        packed.byteswap()
    return packed.tobytes()


def _unpack(kind: str, data: bytes) -> array:
    unpacked = array(kind)
    unpacked.frombytes(data)
    if _SWAP:
        unpacked.byteswap()
    return unpacked


def group_rows(rows: Sequence[MetricRow]) -> dict[tuple[int, str], list[MetricRow]]:
    """Points grouped by (run_pk, key), each group in arrival order."""
    groups: dict[tuple[int, str], list[MetricRow]] = {}
    for row in rows:
        key = (row[0], row[1])
        group = groups.get(key)
        if group is None:
            groups[key] = [row]
        else:
            group.append(row)
    return groups


def encode_group(run_pk: int, key: str, group: Sequence[MetricRow]) -> list[dict[str, Any]]:
    """Chunk rows (column name → value) for one group of points."""
    out = []
    for start in range(0, len(group), MAX_POINTS_PER_CHUNK):
        _, _, values, steps, timestamps = zip(*group[start : start + MAX_POINTS_PER_CHUNK], strict=True)
        out.append(
            {
                "run_pk": run_pk,
                "key": key,
                "count": len(values),
                "min_step": min(steps),
                "max_step": max(steps),
                "steps": _pack("q", steps),
                "values": _pack("d", values),
                "timestamps": _pack("q", timestamps),
            }
        )
    return out


def latest_of(group: Sequence[MetricRow]) -> MetricRow:
    """The point with the highest (step, timestamp); the last logged wins a tie."""
    best = group[0]
    best_key = (best[3], best[4])
    for row in group:
        candidate = (row[3], row[4])
        if candidate >= best_key:
            best, best_key = row, candidate
    return best


def decode_chunk(steps: bytes, values: bytes, timestamps: bytes) -> zip:
    """(step, value, timestamp) triples of one chunk, in logged order."""
    return zip(_unpack("q", steps), _unpack("d", values), _unpack("q", timestamps), strict=True)
