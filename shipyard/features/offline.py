"""Point-in-time correct training sets: each entity row gets, from each feature view, the latest feature
row at or before its timestamp — never a later one — in DuckDB, over the views' Parquet or CSV files.

Semantics (the documented contract; ``tests/features/test_offline.py`` checks each against pandas):

- **Every entity row is kept**, in its order, with nulls where a view has no row for it.
- **TTL**: a match older than the view's ``ttl`` (entity time minus feature time) is null.
- **Ties**: several rows of one entity at one event time: the newest ``created_timestamp_field`` wins,
  then the last row in file order.
- **Created cutoff** (``created_cutoff=True``, views with a created timestamp): a row counts only from
  the time it was created, so a late-arriving correction never leaks into an earlier training row.
  ``created_cutoff=False`` uses the created timestamp only to break ties, as Feast does.
- **Time zones**: naive timestamps, in the entity rows or the sources, are read as UTC; every timestamp
  out is UTC. A column that mixes naive and aware values is refused, naming it.

DuckDB's ASOF join does the matching (one sorted pass, no per-row Python); the created cutoff re-matches
only the rows whose ASOF match was created too late, with an exact range join.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from shipyard.errors import InvalidInput
from shipyard.features.definitions import (
    DataFrameSource,
    FeatureView,
    OnDemandFeatureView,
    ValueType,
    arrow_rows,
)

ROW = "__row"
MEMORY_LIMIT = os.environ.get("SHIPYARD_FEATURES_MEMORY", "768MB")  # DuckDB spills to disk beyond it


def quote(name: str) -> str:
    """A SQL identifier, quoted (definition names are checked already; this keeps any column safe)."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Request:
    """What a join reads from one view: its features (as named in the output) and its join keys."""

    view: FeatureView
    features: tuple[str, ...]
    output_names: tuple[str, ...]


_DATABASE: Any = None
_DATABASE_PID = 0
_DATABASE_LOCK = threading.Lock()


def connect() -> Any:
    """A fresh DuckDB connection (its own temp tables and registered tables) to this process's in-memory
    database: UTC, memory bounded (spilling to disk beyond it). Opening a database costs 14 ms, a
    connection to an open one nothing; a forked child opens its own (DuckDB's threads do not survive a
    fork)."""
    global _DATABASE, _DATABASE_PID
    import duckdb

    with _DATABASE_LOCK:
        if _DATABASE is None or os.getpid() != _DATABASE_PID:
            _DATABASE = duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "threads": os.cpu_count() or 1})
            _DATABASE.execute("SET TimeZone = 'UTC'")
            _DATABASE.execute("SET preserve_insertion_order = false")
            _DATABASE_PID = os.getpid()
        con = _DATABASE.cursor()
    con.execute("SET TimeZone = 'UTC'")  # per connection too: else results say Etc/UTC
    return con


def arrow_table(con: Any, query: str) -> pa.Table:
    """``query``'s rows as an Arrow table, without the copy a DB-API result makes (DuckDB 2 renamed the
    relation's ``arrow`` to ``to_arrow_table``)."""
    relation = con.sql(query)
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    return fetch()


def normalise_timestamps(table: pa.Table, column: str, what: str) -> pa.Table:
    """``table`` with ``column`` as a UTC timestamp (naive values read as UTC).

    Raises:
        InvalidInput: the column is missing, is not timestamps, or mixes naive and aware values.
    """
    if column not in table.column_names:
        raise InvalidInput(
            f"{what} has no timestamp column {column!r}; its columns: {', '.join(table.column_names)}"
        )
    values = table.column(column)
    kind = values.type
    if pa.types.is_timestamp(kind):
        utc = values.cast(pa.timestamp("us", tz=kind.tz)) if kind.unit == "ns" else values
        fixed = (
            utc.cast(pa.timestamp(utc.type.unit, tz="UTC"))
            if kind.tz
            else pa.compute.assume_timezone(utc, "UTC")
        )
        return table.set_column(table.column_names.index(column), column, fixed)
    if pa.types.is_date(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind):
        series = values.to_pandas()
        return _set_pandas(table, column, _parse_times(series, column, what))
    if pa.types.is_null(kind):
        raise InvalidInput(f"{what}: timestamp column {column!r} holds no values")
    raise InvalidInput(f"{what}: column {column!r} must hold timestamps, not {kind}")


def _set_pandas(table: pa.Table, column: str, series: pd.Series) -> pa.Table:
    array = pa.array(series, type=pa.timestamp("us", tz="UTC"), from_pandas=True)
    return table.set_column(table.column_names.index(column), column, array)


def _parse_times(series: pd.Series, column: str, what: str) -> pd.Series:
    values = series.dropna()
    if values.empty:
        return pd.to_datetime(series, utc=True)
    if all(isinstance(v, str) for v in values):
        aware = values.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True)
    elif all(isinstance(v, dt.date) for v in values):
        aware = values.map(lambda v: isinstance(v, dt.datetime) and v.tzinfo is not None)
    else:
        raise InvalidInput(f"{what}: column {column!r} must hold timestamps")
    if aware.any() and not aware.all():
        naive_at, aware_at = values.index[~aware][0], values.index[aware][0]
        raise InvalidInput(
            f"{what}: column {column!r} mixes timezone-naive (row {naive_at}) and timezone-aware (row "
            f"{aware_at}) timestamps; make them all aware, or all naive (read as UTC)"
        )
    try:
        return pd.to_datetime(series, utc=True, format="ISO8601" if isinstance(values.iloc[0], str) else None)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(
            f"{what}: column {column!r} holds a value that is not a timestamp: {exc}"
        ) from None


def entity_table(entity_df: pd.DataFrame | pa.Table, timestamp_field: str) -> pa.Table:
    """The entity rows as an Arrow table with a UTC timestamp and their position (``__row``)."""
    if isinstance(entity_df, pd.DataFrame):
        if entity_df.columns.duplicated().any():
            dup = entity_df.columns[entity_df.columns.duplicated()][0]
            raise InvalidInput(f"entity_df: column {dup!r} appears twice")
        if timestamp_field in entity_df.columns and entity_df[timestamp_field].dtype == object:
            parsed = _parse_times(entity_df[timestamp_field], timestamp_field, "entity_df")
            entity_df = entity_df.assign(**{timestamp_field: parsed})
    table = arrow_rows(entity_df, "entity_df")
    for name in table.column_names:
        if name.startswith("__"):
            raise InvalidInput(f"entity_df: column {name!r} starts with '__', which Shipyard reserves")
    table = normalise_timestamps(table, timestamp_field, "entity_df")
    return table.append_column(ROW, pa.array(np.arange(table.num_rows, dtype=np.int64)))


# ---------------------------------------------------------------------- sources
_INTEGERS = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "HUGEINT",
}
_FLOATS = {"FLOAT", "DOUBLE"}
_ACCEPTS: dict[ValueType, set[str]] = {
    ValueType.INT32: _INTEGERS,
    ValueType.INT64: _INTEGERS,
    ValueType.FLOAT32: _INTEGERS | _FLOATS | {"DECIMAL"},
    ValueType.FLOAT64: _INTEGERS | _FLOATS | {"DECIMAL"},
    ValueType.STRING: {"VARCHAR"},
    ValueType.BOOL: {"BOOLEAN"},
    ValueType.BYTES: {"BLOB"},
    ValueType.TIMESTAMP: {
        "TIMESTAMP",
        "TIMESTAMP WITH TIME ZONE",
        "TIMESTAMP_NS",
        "TIMESTAMP_MS",
        "TIMESTAMP_S",
        "DATE",
    },
}
_TIMES = _ACCEPTS[ValueType.TIMESTAMP]


def _base(sql_type: str) -> str:
    return sql_type.split("(")[0].strip()


@dataclass
class Registered:
    """A source registered for a join: its columns' types, and where its rows are — in memory (``rows``,
    a row's position its index) or in Parquet ``files`` (a position is the file's index and the row's
    number in it)."""

    columns: dict[str, str]
    rows: pa.Table | None = None
    files: list[str] | None = None
    filesystem: Any = None


def register_source(con: Any, view: FeatureView, name: str) -> Registered:
    """Register ``view``'s rows as the DuckDB view ``name`` with each row's position in file order
    (``__pos``), after checking that every column the view needs is there with a type that fits its
    declaration."""
    source = view.source
    registered = Registered({})
    if isinstance(source, DataFrameSource) or source.file_format == "csv":
        registered.rows = source.table if isinstance(source, DataFrameSource) else _csv_table(source)
        positions = pa.array(np.arange(registered.rows.num_rows, dtype=np.int64))
        con.register(f"{name}_rows", registered.rows.append_column("__pos", positions))
        relation = f"SELECT * FROM {quote(name + '_rows')}"
    else:
        relation, registered.files, registered.filesystem = _parquet_relation(con, source, name)
    try:
        described = con.execute(f"DESCRIBE {relation}").fetchall()
    except Exception as exc:  # duckdb's IOException, InvalidInputException…: one clear error
        raise InvalidInput(
            f"feature view {view.name}: its source {_describe(source)} cannot be read: {exc}"
        ) from None
    columns = {row[0]: str(row[1]) for row in described}
    needed = [*view.join_keys, source.timestamp_field, *view.feature_names]
    if source.created_timestamp_field:
        needed.append(source.created_timestamp_field)
    missing = [c for c in needed if c not in columns]
    if missing:
        shown = ", ".join(c for c in columns if not c.startswith("__"))
        raise InvalidInput(
            f"feature view {view.name}: its source {_describe(source)} has no column {missing[0]!r}; "
            f"its columns: {shown}"
        )
    for column in (source.timestamp_field, source.created_timestamp_field):
        if column and _base(columns[column]) not in _TIMES:
            raise InvalidInput(
                f"feature view {view.name}: source column {column!r} is {columns[column]}, not a timestamp"
            )
    for f in view.schema:
        found = columns[f.name]
        if _base(found) not in _ACCEPTS[f.dtype]:
            raise InvalidInput(
                f"feature view {view.name}: source column {f.name!r} is {found} but the view declares "
                f"{f.dtype.value} (has the source changed since the view was applied?)"
            )
    con.execute(f"CREATE OR REPLACE TEMP VIEW {quote(name)} AS {relation}")
    registered.columns = columns
    return registered


def _describe(source: Any) -> str:
    return repr(source) if isinstance(source, DataFrameSource) else source.path


def _local(path: str) -> str:
    return path[len("file://") :] if path.startswith("file://") else path


def _parquet_relation(con: Any, source: Any, name: str) -> tuple[str, list[str], Any]:
    """The source's Parquet files (one, a folder's, or a glob's, in name order) as one relation with each
    row's position in it; also the files and their filesystem (None: local)."""
    path = source.path
    fs = None
    if "://" in path and not path.startswith("file://"):
        import fsspec

        fs, root = fsspec.core.url_to_fs(path, **source.storage_options)
        if not con.filesystem_is_registered(fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]):
            con.register_filesystem(fs)
        protocol = path.split("://", 1)[0]
        found = fs.find(root) if fs.isdir(root) else fs.glob(root) if glob.has_magic(root) else [root]
        files = [f"{protocol}://{f}" if "://" not in f else f for f in found]
    else:
        path = _local(path)
        if os.path.isdir(path):
            files = [str(p) for p in Path(path).rglob("*") if p.is_file()]
        else:
            files = glob.glob(path, recursive=True) if glob.has_magic(path) else [path]
    files = sorted(f for f in files if f.endswith((".parquet", ".pq")) or f == path)
    if not files:
        raise InvalidInput(f"feature source {source.path}: no Parquet files there")
    listed = ", ".join(literal(f) for f in files)
    reader = f"read_parquet([{listed}], filename = true, file_row_number = true, union_by_name = true)"
    rows = "r.* EXCLUDE (filename, file_row_number)"
    if len(files) == 1:
        return f"SELECT {rows}, r.file_row_number AS __pos FROM {reader} r", files, fs
    con.register(
        f"{name}_files",
        pa.table({"filename": files, "__file": np.arange(len(files), dtype=np.int64) << _FILE_SHIFT}),
    )
    files_table = quote(name + "_files")
    relation = (
        f"SELECT {rows}, f.__file | r.file_row_number AS __pos FROM {reader} r "
        f"JOIN {files_table} f ON f.filename = r.filename"
    )
    return relation, files, fs


def _csv_table(source: Any) -> pa.Table:
    """CSV files through pyarrow, one after another in name order (DuckDB's parallel CSV reader does not
    promise an order, and ties are broken by it)."""
    import fsspec
    import pyarrow.csv as pacsv

    fs, root = fsspec.core.url_to_fs(source.path, **source.storage_options)
    paths = sorted(fs.find(root)) if fs.isdir(root) else sorted(fs.glob(root)) or [root]
    paths = [p for p in paths if p.lower().endswith((".csv", ".csv.gz"))] or paths
    tables = []
    for one in paths:
        try:
            with fs.open(one, "rb", compression="infer") as handle:
                table = pacsv.read_csv(handle)
        except (OSError, pa.ArrowInvalid) as exc:
            raise InvalidInput(f"feature source {source.path}: {one} cannot be read as CSV: {exc}") from None
        tables.append(table)
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidInput(f"feature source {source.path}: its files' columns disagree: {exc}") from None


# ---------------------------------------------------------------------- the join
def _key_types(
    view: FeatureView, columns: Mapping[str, str], entity: Mapping[str, str], alias: str
) -> list[str]:
    """The join keys as SQL comparisons, each side cast to one type; mismatched key types are refused."""
    out = []
    for key in view.join_keys:
        if key not in entity:
            raise InvalidInput(
                f"entity_df has no column {key!r}, the join key of feature view {view.name}; its columns: "
                f"{', '.join(c for c in entity if c != ROW)}"
            )
        mine, theirs = _base(entity[key]), _base(columns[key])
        numeric = _INTEGERS | _FLOATS | {"DECIMAL"}
        if mine != theirs and not (mine in numeric and theirs in numeric):
            raise InvalidInput(
                f"join key {key!r} is {entity[key]} in entity_df but {columns[key]} in feature view "
                f"{view.name}'s source"
            )
        out.append(f"e.{quote(key)} = {alias}.{quote(key)}")
    return out


def historical_features(
    entity_df: pd.DataFrame | pa.Table,
    requests: Sequence[Request],
    on_demand: Sequence[OnDemandRequest] = (),
    *,
    timestamp_field: str = "event_timestamp",
    created_cutoff: bool = True,
) -> pa.Table:
    """The entity rows with the requested features joined point-in-time (see the module's contract).

    ``on_demand``: features computed after the join from the joined columns.

    Per view, an ASOF join on the keys and the event time finds each entity row's match and carries its
    position in the source; where a match's key and time has more than one row (a tie), the view is
    matched again with the full ordering key (time, created, position). The values are then taken by
    position (:func:`fetch`): sorting the million feature rows with their values took half again as long.
    """
    entity = entity_table(entity_df, timestamp_field)
    con = connect()
    try:
        con.register("entity_rows", entity)
        entity_types = {r[0]: str(r[1]) for r in con.execute("DESCRIBE SELECT * FROM entity_rows").fetchall()}
        ts = quote(timestamp_field)
        span = pc.min_max(entity.column(timestamp_field)).as_py()  # the entity rows' times: earliest, latest
        joins, taken, sources = [], [], []
        for i, request in enumerate(requests):
            view = request.view
            sources.append(register_source(con, view, f"src_{i}"))
            on = _key_types(view, sources[-1].columns, entity_types, "m")
            _keyed_view(con, i, request, span)
            try:
                _match(con, i, request, on, ts, created_cutoff)
            except InvalidInput:
                raise
            except Exception as exc:  # duckdb's errors: one clear error naming the view
                raise InvalidInput(f"feature view {view.name}: the join failed: {exc}") from None
            joins.append(f"JOIN match_{i} m{i} ON m{i}.__row = e.__row")
            valid = f"m{i}.__ts IS NOT NULL"
            if view.ttl is not None:
                micros = int(view.ttl / dt.timedelta(microseconds=1))
                valid += f" AND e.{ts} - m{i}.__ts <= INTERVAL '{micros} microseconds'"
            taken.append(f"CASE WHEN {valid} THEN m{i}.__pos END AS __take_{i}")
        matched = arrow_table(
            con, f"SELECT e.*{''.join(', ' + t for t in taken)} FROM entity_rows e {' '.join(joins)}"
        )
        table = in_entity_order(matched)
        for i, (request, registered) in enumerate(zip(requests, sources, strict=True)):
            positions = table.column(f"__take_{i}")
            table = table.drop_columns([f"__take_{i}"])
            values = fetch(con, i, request, registered, positions)
            for out, column in zip(request.output_names, values.columns, strict=True):
                table = table.append_column(out, column)
    finally:
        con.close()
    for request in on_demand:
        table = apply_on_demand(table, request)
    return table


TAKE_IN_MEMORY_BYTES = 256 << 20  # a Parquet source's needed columns up to this size are read whole (RSS)


def fetch(con: Any, i: int, request: Request, source: Registered, positions: pa.ChunkedArray) -> pa.Table:
    """The requested features at ``positions`` (null: none) of view ``i``'s source, typed as declared.

    In-memory rows and small Parquet sources: Arrow's take (Parquet read whole, column by column, in
    parallel). A larger Parquet source: a hash join in DuckDB, which streams it.
    """
    view, features = request.view, list(request.features)
    if source.rows is not None:
        found = source.rows.select(features).take(positions)
    elif source.files is not None and _needed_bytes(source, features) <= TAKE_IN_MEMORY_BYTES:
        found = _take_from_parquet(source, features, positions)
    else:
        con.register(
            "wanted", pa.table({"__pos": positions, "__at": np.arange(len(positions), dtype=np.int64)})
        )
        names = ", ".join(f"v.{quote(f)}" for f in features)
        found = arrow_table(
            con, f"SELECT w.__at, {names} FROM wanted w LEFT JOIN src_{i} v ON v.__pos = w.__pos"
        )
        order = np.empty(found.num_rows, dtype=np.int64)
        order[found.column("__at").to_numpy()] = np.arange(found.num_rows, dtype=np.int64)
        found = found.drop_columns(["__at"]).take(pa.array(order))
    columns = []
    for f in features:
        dtype = view.field(f).dtype
        try:
            columns.append(found.column(f).cast(dtype.arrow))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InvalidInput(
                f"feature view {view.name}: source column {f!r} does not convert to {dtype.value}: {exc}"
            ) from None
    return pa.table(columns, names=features)


def _needed_bytes(source: Registered, features: Sequence[str]) -> int:
    """The uncompressed size of ``features``' columns over the source's Parquet files (their footers)."""
    import pyarrow.parquet as pq

    total = 0
    for path in source.files or []:
        with _open(source, path) as handle:
            meta = pq.ParquetFile(handle).metadata
        wanted = [c for c in range(meta.num_columns) if meta.schema.column(c).name in features]
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            total += sum(group.column(c).total_uncompressed_size for c in wanted)
    return total


def _open(source: Registered, path: str) -> Any:
    return open(path, "rb") if source.filesystem is None else source.filesystem.open(path, "rb")


def _take_from_parquet(source: Registered, features: Sequence[str], positions: pa.ChunkedArray) -> pa.Table:
    """Rows of the source's Parquet files by position: the needed columns read whole, then taken."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    files = source.files or []
    tables = []
    for path in files:
        with _open(source, path) as handle:
            tables.append(pq.read_table(handle, columns=list(features)))
    if len(tables) == 1:
        return tables[0].take(positions)
    # A position is (file index << shift) | row: turn it into the row's index in the concatenation.
    offsets = np.cumsum([0, *(t.num_rows for t in tables)])[:-1].astype(np.int64)
    at = pc.fill_null(positions, 0).to_numpy()
    index = offsets[at >> _FILE_SHIFT] + (at & ((1 << _FILE_SHIFT) - 1))
    missing = pc.is_null(positions).to_numpy(zero_copy_only=False)
    whole = pa.concat_tables(tables, promote_options="permissive")
    return whole.take(pa.array(index, mask=missing))


def _match(con: Any, i: int, request: Request, on: Sequence[str], ts: str, created_cutoff: bool) -> None:
    """``match_{i}``: every entity row's match in view ``i`` (time, created, position; nulls for none)."""
    keys = ", ".join(f"e.{quote(k)}" for k in request.view.join_keys)
    head = (
        f"CREATE OR REPLACE TEMP TABLE match_{i} AS "
        f"SELECT e.__row, e.{ts} AS __ets, {keys}, m.__ts, m.__cr, m.__pos"
    )
    rows = f"FROM entity_rows e ASOF LEFT JOIN keyed_{i} m ON {' AND '.join(on)}"
    con.execute(f"{head} {rows} AND e.{ts} >= m.__ts")
    if _ambiguous(con, i, request):
        # The entity side of the comparison: its time, after every row created by then, in any file.
        created = "c := 'infinity'::TIMESTAMPTZ, " if request.view.source.created_timestamp_field else ""
        con.execute(f"{head} {rows} AND struct_pack(t := e.{ts}, {created}p := {_LAST}) >= m.__k")
    if request.view.source.created_timestamp_field and created_cutoff:
        _refetch_created_too_late(con, i, request)


def _ambiguous(con: Any, i: int, request: Request) -> bool:
    """Whether some entity row's match shares its key and event time with another source row (then the
    ASOF join on time alone may have picked either)."""
    keys = request.view.join_keys
    on = " AND ".join(f"v.{quote(k)} = m.{quote(k)}" for k in keys)
    distinct = ", ".join(quote(k) for k in keys)
    found = con.execute(
        f"SELECT 1 FROM keyed_{i} v JOIN (SELECT DISTINCT {distinct}, __ts FROM match_{i} "
        f"WHERE __ts IS NOT NULL) m ON {on} AND v.__ts = m.__ts "
        f"GROUP BY {', '.join(f'v.{quote(k)}' for k in keys)}, v.__ts HAVING count(*) > 1 LIMIT 1"
    ).fetchall()
    return bool(found)


_LAST = 9223372036854775807  # sorts after every row position
_FILE_SHIFT = 40  # a row's position: its file's index above 40 bits, its row number in the file below


def _keyed_view(con: Any, i: int, request: Request, span: Mapping[str, Any]) -> None:
    """``keyed_{i}``: the view's keys, times and row positions, and the full ordering key of each row —
    event time, then created time (when the source has one), then position in file order — for the ASOF
    join's ties: among rows at one event time, the newest created and then the last in file order.

    Only rows some entity row could use: none after the latest entity time, none older than the earliest
    one minus the TTL (the reader skips Parquet row groups outside that by their statistics)."""
    view, source = request.view, request.view.source
    event = quote(source.timestamp_field)
    t = f"CAST({event} AS TIMESTAMPTZ)"
    created = source.created_timestamp_field
    c = f"CAST({quote(created)} AS TIMESTAMPTZ)" if created else "CAST(NULL AS TIMESTAMPTZ)"
    order = f"t := {t}, c := coalesce({c}, '-infinity'::TIMESTAMPTZ), " if created else f"t := {t}, "
    keys = ", ".join(quote(k) for k in view.join_keys)
    window = f"{event} IS NOT NULL"
    if span.get("max") is not None:
        window += f" AND {t} <= {literal(span['max'].isoformat())}::TIMESTAMPTZ"
        if view.ttl is not None:
            window += f" AND {t} >= {literal((span['min'] - view.ttl).isoformat())}::TIMESTAMPTZ"
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW keyed_{i} AS SELECT {keys}, {t} AS __ts, {c} AS __cr, __pos, "
        f"struct_pack({order}p := __pos) AS __k FROM src_{i} WHERE {window}"
    )


def _refetch_created_too_late(con: Any, i: int, request: Request) -> None:
    """Re-match the entity rows whose match was created after the entity time, among the rows created by
    then: an exact range join over those entity rows alone (usually none or a few)."""
    late = "__cr > __ets"
    if not con.execute(f"SELECT count(*) FROM match_{i} WHERE {late}").fetchall()[0][0]:
        return
    on = " AND ".join(f"b.{quote(k)} = v.{quote(k)}" for k in request.view.join_keys)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE refetched AS SELECT b.__row, v.__ts, v.__cr, v.__pos "
        f"FROM (SELECT * FROM match_{i} WHERE {late}) b "
        f"JOIN keyed_{i} v ON {on} AND v.__ts <= b.__ets AND (v.__cr IS NULL OR v.__cr <= b.__ets) "
        f"QUALIFY row_number() OVER (PARTITION BY b.__row ORDER BY v.__k DESC) = 1"
    )
    con.execute(
        f"UPDATE match_{i} AS j SET __ts = r.__ts, __cr = r.__cr, __pos = r.__pos "
        f"FROM (SELECT b.__row, x.__ts, x.__cr, x.__pos FROM match_{i} b "
        f"LEFT JOIN refetched x ON x.__row = b.__row WHERE b.{late}) r WHERE j.__row = r.__row"
    )


def in_entity_order(table: pa.Table) -> pa.Table:
    """``table``'s rows back in the entity rows' order, ``__row`` dropped (a take by the inverse
    permutation: an ORDER BY in the query cost a third of the join)."""
    rows = table.column(ROW).to_numpy()
    order = np.empty(len(rows), dtype=np.int64)
    order[rows] = np.arange(len(rows), dtype=np.int64)
    return table.drop_columns([ROW]).take(pa.array(order))


@dataclass(frozen=True)
class OnDemandRequest:
    """What one on-demand view computes after the join: ``features`` named ``output_names``, from the
    joined table's columns (``inputs``: the function's name for a value -> the table's column)."""

    view: OnDemandFeatureView
    features: tuple[str, ...]
    output_names: tuple[str, ...]
    inputs: tuple[tuple[str, str], ...]


def apply_on_demand(table: pa.Table, request: OnDemandRequest) -> pa.Table:
    """``table`` with ``request``'s features appended, computed by its view's function."""
    result = compute_on_demand(request, table.column_names, lambda names: table.select(names).to_pandas())
    view = request.view
    for feature, out in zip(request.features, request.output_names, strict=True):
        table = table.append_column(
            out, typed_array(result[feature], view.field(feature).dtype, view.name, feature)
        )
    return table


def compute_on_demand(
    request: OnDemandRequest, available: Sequence[str], columns: Callable[[list[str]], pd.DataFrame]
) -> pd.DataFrame:
    """Run ``request``'s view on its inputs: the joined features (``request.inputs``) and the request
    fields, which must be among ``available`` (``columns(names)`` gives those columns as a DataFrame)."""
    view = request.view
    inputs = dict(request.inputs)
    for f in view.request_fields:
        if f.name not in available:
            raise InvalidInput(
                f"on-demand feature view {view.name} needs request field {f.name!r}, which the entity rows "
                "do not have"
            )
        inputs[f.name] = f.name
    frame = columns(list(inputs.values()))
    frame.columns = list(inputs)
    return run_on_demand(view, frame)


def typed_array(values: pd.Series, dtype: ValueType, view: str, feature: str) -> pa.Array:
    try:
        return pa.array(values, type=dtype.arrow, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InvalidInput(
            f"on-demand feature view {view}: feature {feature!r} is not {dtype.value}: {exc}"
        ) from None


def run_on_demand(view: OnDemandFeatureView, frame: pd.DataFrame) -> pd.DataFrame:
    """Call ``view``'s function on ``frame`` (its inputs by name) and check what it returns: a DataFrame
    with every schema column, row for row."""
    try:
        result = view.udf(frame)
    except Exception as exc:
        raise InvalidInput(f"on-demand feature view {view.name}: its function failed: {exc!r}") from exc
    if not isinstance(result, pd.DataFrame):
        raise InvalidInput(
            f"on-demand feature view {view.name}: its function returned a {type(result).__name__}, "
            "not a DataFrame"
        )
    if len(result) != len(frame):
        raise InvalidInput(
            f"on-demand feature view {view.name}: its function returned {len(result)} rows for {len(frame)}"
        )
    absent = [f for f in view.feature_names if f not in result.columns]
    if absent:
        raise InvalidInput(
            f"on-demand feature view {view.name}: its function returned no column {absent[0]!r}"
        )
    return result.reset_index(drop=True)
