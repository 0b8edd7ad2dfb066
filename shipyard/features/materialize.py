"""Materialization: the latest row of each entity in an interval of a view's source, into the online store.

Idempotent: the online store keeps a record only if it is not older than the one it holds, so loading an
interval twice, or intervals out of order, ends in the same state. Each load is recorded (interval, rows,
seconds) so that ``materialize_incremental`` continues from where the last one ended.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from shipyard.errors import DataValidationError, InvalidInput
from shipyard.features import offline
from shipyard.features.definitions import FeatureView
from shipyard.features.online import Key, Materialization, OnlineStore, Record, now_ms

if TYPE_CHECKING:
    from shipyard.data.schema import Schema

log = logging.getLogger("shipyard.features")
BATCH = 10_000  # records a write (one transaction each)
Progress = Callable[[int, int], None]  # (written so far, total)


def as_utc(value: dt.datetime | str, what: str) -> dt.datetime:
    """``value`` as an aware UTC datetime (naive: read as UTC); ISO 8601 text accepted."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(f"{what}: {value!r} is not an ISO 8601 time") from None
    if not isinstance(value, dt.datetime):
        raise InvalidInput(f"{what}: expected a datetime, got {type(value).__name__}")
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def latest_rows(view: FeatureView, start: dt.datetime, end: dt.datetime) -> pa.Table:
    """Each entity's latest row with ``start <= event time < end`` (ties: newest created, then last in
    file order): its join keys, ``__ts`` and the features, typed as declared."""
    con = offline.connect()
    try:
        offline.register_source(con, view, "src")
        source = view.source
        event = offline.quote(source.timestamp_field)
        created = source.created_timestamp_field
        cr = f"CAST({offline.quote(created)} AS TIMESTAMPTZ)" if created else "NULL"
        keys = ", ".join(offline.quote(k) for k in view.join_keys)
        feats = ", ".join(
            f"CAST({offline.quote(f.name)} AS {f.dtype.sql}) AS {offline.quote(f.name)}" for f in view.schema
        )
        lo, hi = offline.literal(start.isoformat()), offline.literal(end.isoformat())
        return offline.arrow_table(
            con,
            f"SELECT {keys}, CAST({event} AS TIMESTAMPTZ) AS __ts, {feats} FROM src "
            f"WHERE {event} >= {lo}::TIMESTAMPTZ AND {event} < {hi}::TIMESTAMPTZ "
            f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {event} DESC, {cr} DESC NULLS LAST, "
            "__pos DESC) = 1",
        )
    except InvalidInput:
        raise
    except Exception as exc:  # a value that does not cast to its declared type, mostly
        raise InvalidInput(f"feature view {view.name}: materialization failed: {exc}") from None
    finally:
        con.close()


def records(view: FeatureView, table: pa.Table) -> Iterator[tuple[Key, Record]]:
    """``table``'s rows (from :func:`latest_rows`) as online records."""
    keys = [table.column(k).to_pylist() for k in view.join_keys]
    stamps = (
        pc.cast(table.column("__ts"), pa.timestamp("ms", tz="UTC"), safe=False).cast(pa.int64()).to_numpy()
    )
    values = {f: _column(table.column(f)) for f in view.feature_names}
    for i in range(table.num_rows):
        yield (
            tuple(k[i] for k in keys),
            Record(int(stamps[i]), {f: column[i] for f, column in values.items()}),
        )


def _column(column: pa.ChunkedArray) -> list[Any]:
    if pa.types.is_floating(column.type) and column.null_count == 0:
        return column.to_numpy().tolist()  # no per-value Python conversion for the common case
    if pa.types.is_timestamp(column.type):  # epoch ms online
        return pc.cast(column, pa.timestamp("ms", tz="UTC"), safe=False).cast(pa.int64()).to_pylist()
    return column.to_pylist()


def materialize(
    online: OnlineStore,
    view: FeatureView,
    start: dt.datetime,
    end: dt.datetime,
    *,
    progress: Progress | None = None,
    on_anomaly: str = "warn",
    schema: Schema | None = None,
) -> Materialization:
    """Load ``view``'s latest values in ``[start, end)`` into ``online`` and record the load.

    Each batch is validated (:mod:`shipyard.data`) against ``schema``, else the view's kept schema — the one
    inferred from its first non-empty batch. ``on_anomaly``: ``error`` refuses a batch with error-severity
    anomalies (`DataValidationError` naming them; nothing is written), ``warn`` writes it and records them
    (and logs them), ``off`` skips validation.
    """
    if on_anomaly not in ("error", "warn", "off"):
        raise InvalidInput(f"on_anomaly={on_anomaly!r}: one of error, warn, off")
    if not view.online:
        raise InvalidInput(f"feature view {view.name} is not served online (online=False)")
    if end <= start:
        raise InvalidInput(
            f"materialize {view.name}: end {end.isoformat()} is not after start {start.isoformat()}"
        )
    began = time.perf_counter()
    table = latest_rows(view, start, end)
    anomalies = () if on_anomaly == "off" else check_batch(online, view, table, schema, on_anomaly)
    total = table.num_rows
    written = 0
    batch: list[tuple[Key, Record]] = []
    for item in records(view, table):
        batch.append(item)
        if len(batch) >= BATCH:
            written += online.write(view, batch)
            batch.clear()
            if progress:
                progress(written, total)
    if batch:
        written += online.write(view, batch)
    if progress:
        progress(written, total)
    done = Materialization(
        view.name,
        int(start.timestamp() * 1000),
        int(end.timestamp() * 1000),
        written,
        time.perf_counter() - began,
        now_ms(),
        anomalies,
    )
    online.record_materialization(done)
    return done


def check_batch(
    online: OnlineStore, view: FeatureView, table: pa.Table, schema: Schema | None, on_anomaly: str
) -> tuple[str, ...]:
    """The batch's anomalies against its schema (the given one, the view's kept one, or — first time — one
    inferred from this batch and kept); raises on error-severity ones when ``on_anomaly`` is ``error``."""
    # Imported here: shipyard.data brings scipy, which lookups and pushes never need.
    from shipyard.data.schema import Schema, infer_schema, validate
    from shipyard.data.statistics import compute_statistics

    features = table.select(list(view.feature_names))
    if features.num_rows == 0:
        return ()
    if schema is None:
        kept = online.schema(view.name)
        if kept is None:
            online.save_schema(view.name, infer_schema(compute_statistics(features)).to_yaml())
            return ()
        schema = Schema.from_yaml(kept, source=f"the kept schema of feature view {view.name}")
    result = validate(features, schema)
    lines = tuple(f"{a.severity.value}: {a.message}" for a in result.anomalies)
    if not result.ok and on_anomaly == "error":
        errors = "; ".join(a.message for a in result.anomalies if a.severity.value == "error")
        raise DataValidationError(f"feature view {view.name}: the batch breaks its schema: {errors}")
    for line in lines:
        log.warning("feature view %s: materialized batch: %s", view.name, line)
    return lines


def incremental_start(online: OnlineStore, view: FeatureView, end: dt.datetime) -> dt.datetime:
    """Where an incremental load of ``view`` starts: the end of its last load, or else ``end`` minus its
    TTL, or else the beginning of time (its whole history)."""
    done = online.materializations(view.name)
    if done:
        return dt.datetime.fromtimestamp(max(m.end_ms for m in done) / 1000, dt.UTC)
    if view.ttl is not None:
        return end - view.ttl
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
