"""Run search execution: filter → one SQL query for the page, then only that page's values are loaded.

MLflow's search loads every metric of every matching run (mlflow#8277). Here the page of run ids comes from
one indexed query, and params, latest metrics and tags are fetched for those runs only — and only the keys
named in ``columns`` when it is given.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from shipyard.config import Settings
from shipyard.errors import InvalidInput
from shipyard.store.schema import latest_metrics, params, tags
from shipyard.tracking.records import LifecycleStage, Run, RunList, RunStatus, is_lost
from shipyard.tracking.search import build_search_statement, parse_filter, parse_order_by

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.tracking.client import TrackingClient

_MAX_PAGE = 50_000
_CHUNK = 900  # ids per IN (...) list; well under every backend's bound-parameter limit


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
    expr = parse_filter(filter)
    order = parse_order_by(order_by)
    wanted = _parse_columns(columns)
    fingerprint = _fingerprint(experiment_ids, filter, order_by, include_deleted)
    offset = _decode_token(page_token, fingerprint)
    statement = build_search_statement(
        experiment_ids,
        expr,
        order,
        lifecycle_stage=None if include_deleted else LifecycleStage.ACTIVE.value,
        offset=offset,
        limit=max_results + 1,
        dialect_name=client.store.dialect,
    )
    with client.store.read() as conn:
        rows = [row._mapping for row in conn.execute(statement)]
        has_more = len(rows) > max_results
        found = hydrate_runs(conn, rows[:max_results], wanted, stale_before(client.settings))
    token = _encode_token(offset + max_results, fingerprint) if has_more else None
    result = RunList(found, token)
    return to_dataframe(result) if output_format == "pandas" else result


def hydrate_runs(
    conn: Connection,
    rows: Sequence[Mapping[str, Any]],
    columns: Mapping[str, set[str] | None] | None = None,
    stale_before: int | None = None,
) -> list[Run]:
    """Build `Run` records for ``rows`` (of the runs table), loading only the requested keys; RUNNING runs
    whose heartbeat is older than ``stale_before`` (epoch ms) are marked ``lost``."""
    if not rows:
        return []
    wanted = columns if columns is not None else {"params": None, "metrics": None, "tags": None}
    pks = [row["id"] for row in rows]
    values: dict[str, dict[int, dict[str, Any]]] = {}
    for kind, table in (("params", params), ("metrics", latest_metrics), ("tags", tags)):
        per_run: dict[int, dict[str, Any]] = {pk: {} for pk in pks}
        values[kind] = per_run
        if kind not in wanted:
            continue
        keys = wanted[kind]
        for start in range(0, len(pks), _CHUNK):
            query = sa.select(table.c.run_pk, table.c.key, table.c.value).where(
                table.c.run_pk.in_(pks[start : start + _CHUNK])
            )
            if keys is not None:
                query = query.where(table.c.key.in_(sorted(keys)))
            for run_pk, key, value in conn.execute(query):
                per_run[run_pk][key] = (math.nan if value is None else value) if kind == "metrics" else value
    return [
        run_from_row(
            row,
            stale_before,
            params=values["params"][row["id"]],
            metrics=values["metrics"][row["id"]],
            tags=values["tags"][row["id"]],
        )
        for row in rows
    ]


def run_from_row(row: Mapping[str, Any], stale_before: int | None = None, **values: Mapping[str, Any]) -> Run:
    """A `Run` from a row of the runs table, with ``params``/``metrics``/``tags`` when given; it is ``lost``
    when RUNNING with a heartbeat older than ``stale_before`` (epoch ms; see :func:`stale_before`)."""
    status = RunStatus(row["status"])
    heartbeat = row.get("heartbeat_at")
    return Run(
        run_id=row["run_id"],
        experiment_id=row["experiment_id"],
        name=row["name"],
        status=status,
        start_time=row["start_time"],
        end_time=row["end_time"],
        artifact_uri=row["artifact_uri"],
        lifecycle_stage=LifecycleStage(row["lifecycle_stage"]),
        parent_run_id=row["parent_run_id"],
        user=row["user"],
        heartbeat_at=heartbeat,
        pid=row.get("pid"),
        host=row.get("host"),
        lost=is_lost(status, heartbeat, stale_before),
        **values,
    )


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


def _parse_columns(columns: Sequence[str] | None) -> dict[str, set[str] | None] | None:
    if columns is None:
        return None
    if isinstance(columns, str):
        raise InvalidInput("columns must be a list such as ['metrics.acc', 'params.model'], not a string")
    wanted: dict[str, set[str] | None] = {}
    aliases = {"metric": "metrics", "param": "params", "tag": "tags"}
    for column in columns:
        kind, _, key = column.partition(".")
        kind = aliases.get(kind, kind)
        if kind not in ("metrics", "params", "tags") or not key:
            raise InvalidInput(
                f"column {column!r} must look like metrics.KEY, params.KEY, tags.KEY or metrics.*"
            )
        if key == "*":
            wanted[kind] = None
        elif kind not in wanted or wanted[kind] is not None:
            wanted.setdefault(kind, set()).add(key.strip("`"))  # type: ignore[union-attr]
    return wanted


def _fingerprint(experiment_ids: Sequence[str], filter: str | None, order_by: Any, deleted: bool) -> str:
    payload = json.dumps([sorted(experiment_ids), filter or "", list(order_by or []), deleted])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _encode_token(offset: int, fingerprint: str) -> str:
    raw = json.dumps({"o": offset, "q": fingerprint}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str | None, fingerprint: str) -> int:
    if not token:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        offset, query = int(data["o"]), data["q"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"page_token {token!r} is not a token returned by search_runs") from exc
    if query != fingerprint or offset < 0:
        raise InvalidInput("page_token belongs to a different search (experiments, filter or order changed)")
    return offset
