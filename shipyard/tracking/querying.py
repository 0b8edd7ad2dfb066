"""Run search: arguments checked, filter and order parsed, pages tokened; the store runs the page's query.

MLflow's search loads every metric of every matching run (mlflow#8277). Here the store finds the page of runs
in one indexed query and loads params, latest metrics and tags for those runs only — and only the keys named
in ``columns`` when it is given (see :meth:`shipyard.store.protocol.TrackingStore.search_page`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shipyard.config import Settings
from shipyard.errors import InvalidInput
from shipyard.tracking.cursors import decode_cursor, encode_cursor, search_fingerprint
from shipyard.tracking.filter_parser import parse_filter, parse_order_by
from shipyard.tracking.records import Run, RunList

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.tracking.client import TrackingClient

_MAX_PAGE = 50_000
# What a column's prefix may say, singular or plural, and the record field it names.
COLUMN_KINDS = {
    "metrics": "metrics",
    "metric": "metrics",
    "params": "params",
    "param": "params",
    "tags": "tags",
    "tag": "tags",
}


def search_runs(
    client: TrackingClient,
    experiments: str | Sequence[str] | None,
    filter: str | None,
    *,
    order_by: Sequence[str] | None,
    max_results: int,
    page_token: str | None,
    columns: Sequence[str] | None,
    include_deleted: bool,
    output_format: str,
    page_scope: str | None = None,
) -> RunList | pd.DataFrame:
    if output_format not in ("records", "pandas"):
        raise InvalidInput(f"output_format must be 'records' or 'pandas', got {output_format!r}")
    if not isinstance(max_results, int) or not 0 < max_results <= _MAX_PAGE:
        raise InvalidInput(f"max_results must be an integer from 1 to {_MAX_PAGE}, got {max_results!r}")
    if experiments is None:
        experiment_ids = [e.experiment_id for e in client.list_experiments(include_deleted=include_deleted)]
    else:
        names = [experiments] if isinstance(experiments, str) else list(experiments)
        experiment_ids = [client.get_experiment(name).experiment_id for name in names]
    # Parsed here too, so a bad filter fails before any request or query (the store parses what it runs).
    parse_filter(filter)
    order_keys = parse_order_by(order_by)
    parse_columns(columns)
    # A token is bound to the experiments asked for: "every experiment" stays the same search when one is
    # created between pages (so does a caller's own ``page_scope``, e.g. "those this user may read").
    if page_scope is not None:
        bound = [f"scope:{page_scope}"]
    else:
        bound = ["*"] if experiments is None else experiment_ids
    fingerprint = search_fingerprint(bound, filter, order_by, include_deleted)
    # A token is a keyset cursor: the next page is the runs after the last one shown, which costs the same
    # at any depth (an offset would read and drop every run before it) and neither skips nor repeats a run
    # when runs are created or deleted between pages.
    after = decode_cursor(page_token, fingerprint, order_keys, name="page_token") if page_token else None
    page = client.backend.search_page(
        experiment_ids,
        filter,
        order_by,
        limit=max_results,
        columns=None if columns is None else list(columns),
        include_deleted=include_deleted,
        after=after,
    )
    token = None if page.next_cursor is None else encode_cursor(page.next_cursor, fingerprint)
    result = RunList(list(page), token)
    return to_dataframe(result) if output_format == "pandas" else result


def stale_before(settings: Settings) -> int:
    """Epoch ms before which a RUNNING run's last heartbeat means its process is gone."""
    return time.time_ns() // 1_000_000 - int(settings.heartbeat_timeout * 1000)


def to_dataframe(found: Sequence[Run]) -> pd.DataFrame:
    """One row per run: attributes, then ``metrics.*``, ``params.*`` and ``tags.*`` columns."""
    import pandas as pd

    records = []
    for run in found:
        record: dict[str, Any] = {
            "run_id": run.run_id,
            "experiment_id": run.experiment_id,
            "name": run.name,
            "status": run.status.value,
            "lost": run.lost,
            "start_time": pd.to_datetime(run.start_time, unit="ms", utc=True),
            "end_time": pd.to_datetime(run.end_time, unit="ms", utc=True) if run.end_time else pd.NaT,
            "parent_run_id": run.parent_run_id,
            "user": run.user,
            "artifact_uri": run.artifact_uri,
        }
        record.update({f"metrics.{k}": v for k, v in run.metrics.items()})
        record.update({f"params.{k}": v for k, v in run.params.items()})
        record.update({f"tags.{k}": v for k, v in run.tags.items()})
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    if frame.empty:
        return pd.DataFrame(columns=["run_id", "experiment_id", "name", "status", "start_time", "end_time"])
    fixed = [c for c in frame.columns if "." not in c]
    dynamic = sorted(c for c in frame.columns if "." in c)
    return frame[fixed + dynamic]


def parse_columns(columns: Sequence[str] | None) -> dict[str, set[str] | None] | None:
    """``columns`` (``metrics.acc``, ``params.*`` …) as the keys to load per kind (None: every key)."""
    if columns is None:
        return None
    if isinstance(columns, str):
        raise InvalidInput("columns must be a list such as ['metrics.acc', 'params.model'], not a string")
    wanted: dict[str, set[str] | None] = {}
    for column in columns:
        kind, _, key = column.partition(".")
        kind = COLUMN_KINDS.get(kind, kind)
        if kind not in ("metrics", "params", "tags") or not key:
            raise InvalidInput(
                f"column {column!r} must look like metrics.KEY, params.KEY, tags.KEY or metrics.*"
            )
        if key == "*":
            wanted[kind] = None
        elif kind not in wanted or wanted[kind] is not None:
            wanted.setdefault(kind, set()).add(key.strip("`"))  # type: ignore[union-attr]
    return wanted
