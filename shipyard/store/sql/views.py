"""Reads for the UI's views: how many runs a search matches, and metric histories as arrays."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sqlalchemy as sa

from shipyard.store.db import MetadataStore
from shipyard.store.schema import metric_chunks, runs
from shipyard.store.sql.search import build_search_statement
from shipyard.tracking import chunks
from shipyard.tracking.filter_parser import parse_filter
from shipyard.tracking.records import LifecycleStage

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]
_IDS_PER_QUERY = 500


def count_runs(db: MetadataStore, experiment_ids: Sequence[str], filter: str | None) -> int:
    """How many active runs of ``experiment_ids`` match ``filter`` (`FilterSyntaxError` if it does not
    parse)."""
    statement = build_search_statement(
        experiment_ids,
        parse_filter(filter),
        [],
        lifecycle_stage=LifecycleStage.ACTIVE.value,
        limit=1,
        dialect_name=db.dialect,
    )
    matching = statement.order_by(None).limit(None).with_only_columns(runs.c.id).subquery()
    with db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(matching)).scalar_one())


def metric_arrays(db: MetadataStore, run_ids: Sequence[str], key: str) -> dict[str, Arrays]:
    """Every point of metric ``key`` of each of ``run_ids`` that has it, as (steps, values, timestamps)
    ordered by step then time (equal points in logged order): a compare of 500 runs reads them in a few
    queries, not 500, and never builds a Python object per point."""
    parts: dict[str, list[Arrays]] = {}
    ids = list(dict.fromkeys(run_ids))
    with db.read() as conn:
        for start in range(0, len(ids), _IDS_PER_QUERY):
            query = (
                sa.select(
                    runs.c.run_id,
                    metric_chunks.c.steps,
                    metric_chunks.c["values"],
                    metric_chunks.c.timestamps,
                )
                .join(runs, runs.c.id == metric_chunks.c.run_pk)
                .where(runs.c.run_id.in_(ids[start : start + _IDS_PER_QUERY]), metric_chunks.c.key == key)
                .order_by(metric_chunks.c.id)
            )
            for run_id, steps, values, stamps in conn.execute(query):
                parts.setdefault(run_id, []).append(chunks.chunk_arrays(steps, values, stamps))
    out: dict[str, Arrays] = {}
    for run_id, pieces in parts.items():
        steps, values, stamps = (np.concatenate(column) for column in zip(*pieces, strict=True))
        order = np.lexsort((stamps, steps))  # by step, then time; stable for equal points
        out[run_id] = (steps[order], values[order], stamps[order])
    return out
