"""Pushing rows: checked against every view over the push source, appended to its offline folder as one
Parquet file, and each entity's latest row upserted online."""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from collections.abc import Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shipyard.errors import InvalidInput
from shipyard.features.definitions import FeatureView, PushSource, arrow_rows
from shipyard.features.materialize import records
from shipyard.features.offline import normalise_timestamps
from shipyard.features.online import OnlineStore


def checked_rows(views: Sequence[FeatureView], rows: pd.DataFrame | pa.Table) -> pa.Table:
    """``rows`` as an Arrow table with every column the views need, each of its declared type (naive
    times read as UTC); a missing column or a value of the wrong type is refused, naming it."""
    source = views[0].source
    assert isinstance(source, PushSource)
    table = arrow_rows(rows, f"push {source.name}")
    if table.num_rows == 0:
        raise InvalidInput(f"push {source.name}: no rows")
    what = f"push {source.name}"
    table = normalise_timestamps(table, source.timestamp_field, what)
    if source.created_timestamp_field:
        table = normalise_timestamps(table, source.created_timestamp_field, what)
    for view in views:
        for key, entity in ((k, e) for e in view.entities for k in e.join_keys):
            table = _typed(table, key, entity.value_type.arrow, what, f"join key of {view.name}")
        for f in view.schema:
            table = _typed(table, f.name, f.dtype.arrow, what, f"feature of {view.name}")
    return table


def _typed(table: pa.Table, column: str, kind: pa.DataType, what: str, role: str) -> pa.Table:
    if column not in table.column_names:
        raise InvalidInput(
            f"{what}: rows have no column {column!r} (a {role}); they have: {', '.join(table.column_names)}"
        )
    try:
        cast = pc.cast(table.column(column), kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InvalidInput(f"{what}: column {column!r} is not {kind}: {exc}") from None
    return table.set_column(table.column_names.index(column), column, cast)


def append_offline(source: PushSource, table: pa.Table) -> str:
    """Write ``table`` as a new Parquet file in the push source's folder (a temporary name first, then
    renamed, so a reader never sees half a file). Returns its path."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(source.path, **source.storage_options)
    fs.makedirs(root, exist_ok=True)
    name = f"push-{pd.Timestamp.now(tz='UTC').strftime('%Y%m%dT%H%M%S%fZ')}-{uuid.uuid4().hex[:8]}.parquet"
    final = f"{root.rstrip('/')}/{name}"
    temporary = f"{root.rstrip('/')}/.{name}.tmp"
    with fs.open(temporary, "wb") as handle:
        pq.write_table(table, handle)
        if hasattr(handle, "fileno"):
            with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):  # not a local file
                os.fsync(handle.fileno())
    fs.mv(temporary, final)
    return final


def write_online(online: OnlineStore, view: FeatureView, table: pa.Table) -> int:
    """Each entity's latest pushed row into ``online`` (never older than what it holds)."""
    source = view.source
    assert isinstance(source, PushSource)
    keys = list(view.join_keys)
    frame = table.select([*keys, source.timestamp_field, *view.feature_names]).to_pandas()
    frame = frame.sort_values(source.timestamp_field, kind="stable").drop_duplicates(keys, keep="last")
    latest = pa.Table.from_pandas(
        frame.rename(columns={source.timestamp_field: "__ts"}), preserve_index=False
    )
    return online.write(view, list(records(view, latest)))
