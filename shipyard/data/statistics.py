"""Dataset statistics: one vectorised pass per column, stored as a run's training baseline.

:func:`compute_statistics` takes a pandas DataFrame, a pyarrow Table or a path to a Parquet/CSV file and
returns a :class:`DatasetStatistics` whose ``to_dict()`` is JSON/YAML-safe and round-trips through
``from_dict()``.

Conventions (TFDV-like):

- ``count`` is the number of rows; ``missing`` counts nulls and, in float columns, NaN.
- Numeric summaries (min, max, mean, std, quantiles, histogram) cover the *finite* values only; ``non_finite``
  counts ±inf. ``std`` is the population standard deviation (ddof=0, as TFDV and ``numpy.std``).
- Quantiles use linear interpolation (``numpy.quantile``'s default) at :data:`QUANTILES`; the histogram has
  :data:`HISTOGRAM_BINS` equal-width bins over [min, max] (last bin closed, as ``numpy.histogram``).
- String and bool columns keep the :data:`TOP_K` most frequent values (ties broken by value) and, when they
  have at most :data:`CATEGORY_LIMIT` distinct values, every value with its count (``all_values``), which
  :func:`shipyard.data.schema.infer_schema` turns into categories.
- A pandas object column whose values pyarrow cannot put in one type (numbers mixed with strings) gets type
  ``other`` with count, missing, distinct and a ``note`` instead of raising.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from shipyard.errors import InvalidInput

ColumnType: TypeAlias = Literal["int", "float", "bool", "string", "datetime", "other"]
Value: TypeAlias = str | bool
ColumnData: TypeAlias = pa.Array | pd.Series  # a pandas Series only for columns pyarrow cannot type

QUANTILES: tuple[float, ...] = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
HISTOGRAM_BINS = 10
TOP_K = 20
CATEGORY_LIMIT = 50


@dataclass(frozen=True)
class Histogram:
    """Equal-width histogram: ``len(edges) == len(counts) + 1``."""

    edges: tuple[float, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True)
class ColumnStatistics:
    """Summary of one column. Fields that do not apply to the column's type are ``None``."""

    name: str
    type: ColumnType
    count: int
    missing: int
    distinct: int | None
    min: float | int | None = None
    max: float | int | None = None
    mean: float | None = None
    std: float | None = None
    zeros: int | None = None
    non_finite: int | None = None
    quantiles: tuple[tuple[float, float], ...] | None = None  # (q, value) for q in QUANTILES
    histogram: Histogram | None = None
    top_values: tuple[tuple[Value, int], ...] | None = None
    all_values: tuple[tuple[Value, int], ...] | None = None  # only when distinct <= CATEGORY_LIMIT
    note: str | None = None

    @property
    def null_fraction(self) -> float:
        """``missing / count``, 0.0 for an empty column."""
        return self.missing / self.count if self.count else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-safe dict (plain lists, ints, floats, strings)."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "count": self.count,
            "missing": self.missing,
            "distinct": self.distinct,
        }
        for key in ("min", "max", "mean", "std", "zeros", "non_finite", "note"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.quantiles is not None:
            out["quantiles"] = [[q, v] for q, v in self.quantiles]
        if self.histogram is not None:
            out["histogram"] = {"edges": list(self.histogram.edges), "counts": list(self.histogram.counts)}
        for key in ("top_values", "all_values"):
            pairs = getattr(self, key)
            if pairs is not None:
                out[key] = [[v, c] for v, c in pairs]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnStatistics:
        """Inverse of :meth:`to_dict`."""
        fields = dict(data)
        if "quantiles" in fields:
            fields["quantiles"] = tuple((float(q), float(v)) for q, v in fields["quantiles"])
        if "histogram" in fields:
            hist = fields["histogram"]
            fields["histogram"] = Histogram(tuple(hist["edges"]), tuple(hist["counts"]))
        for key in ("top_values", "all_values"):
            if key in fields:
                fields[key] = tuple((v, int(c)) for v, c in fields[key])
        return cls(**fields)


@dataclass(frozen=True)
class DatasetStatistics:
    """Statistics of a whole dataset: row count and one :class:`ColumnStatistics` per column, in order."""

    rows: int
    columns: dict[str, ColumnStatistics]

    def to_dict(self) -> dict[str, Any]:
        """JSON/YAML-safe dict; :meth:`from_dict` reads it back to an equal object."""
        return {"rows": self.rows, "columns": [c.to_dict() for c in self.columns.values()]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetStatistics:
        """Read what :meth:`to_dict` wrote; a malformed dict raises InvalidInput naming the problem."""
        try:
            columns = [ColumnStatistics.from_dict(c) for c in data["columns"]]
            return cls(rows=int(data["rows"]), columns={c.name: c for c in columns})
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"malformed dataset statistics: {exc!r}") from exc


def compute_statistics(data: pd.DataFrame | pa.Table | str | Path) -> DatasetStatistics:
    """Compute :class:`DatasetStatistics` of a DataFrame, a pyarrow Table or a Parquet/CSV file.

    Raises:
        InvalidInput: a path that does not exist or cannot be read (the file named), an unsupported suffix
            or input type, or duplicate column names.
    """
    rows, columns = load_columns(data)
    return statistics_from_columns(rows, columns)


def load_columns(data: pd.DataFrame | pa.Table | str | Path) -> tuple[int, dict[str, ColumnData]]:
    """Normalise input to ``(rows, {name: column})``: pyarrow arrays, or a pandas Series for mixed columns."""
    if isinstance(data, str | Path):
        data = read_table(data)
    if isinstance(data, pa.Table):
        names = [str(n) for n in data.column_names]
        _check_unique(names)
        return data.num_rows, {n: c.combine_chunks() for n, c in zip(names, data.columns, strict=True)}
    if isinstance(data, pd.DataFrame):
        names = [str(n) for n in data.columns]
        _check_unique(names)
        columns: dict[str, ColumnData] = {}
        for name, (_, series) in zip(names, data.items(), strict=True):
            try:
                columns[name] = pa.array(series, from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                columns[name] = series  # mixed Python types: summarised as "other"
        return len(data), columns
    raise InvalidInput(f"cannot compute statistics of {type(data).__name__}: pass a DataFrame, Table or path")


def statistics_from_columns(rows: int, columns: Mapping[str, ColumnData]) -> DatasetStatistics:
    """Statistics of columns already loaded by :func:`load_columns`."""
    return DatasetStatistics(rows=rows, columns={n: column_statistics(n, c) for n, c in columns.items()})


def column_statistics(name: str, column: ColumnData) -> ColumnStatistics:
    """Statistics of one column (a pyarrow Array, or a pandas Series pyarrow could not type)."""
    if isinstance(column, pd.Series):
        return _mixed(name, column)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    kind = column_type(column.type)
    if kind in ("int", "float"):
        return _numeric(name, column, kind)
    if kind in ("string", "bool"):
        return _categorical(name, column, kind)
    if pa.types.is_null(column.type):  # e.g. a pandas object column of only None
        return ColumnStatistics(name, kind, len(column), len(column), 0, note="every value is null")
    try:
        distinct: int | None = pc.count_distinct(column, mode="only_valid").as_py()
    except (pa.ArrowNotImplementedError, pa.ArrowTypeError):
        distinct = None
    note = None if kind == "datetime" else f"arrow type {column.type} is not summarised"
    return ColumnStatistics(name, kind, len(column), column.null_count, distinct, note=note)


def column_type(arrow_type: pa.DataType) -> ColumnType:
    """Map an arrow type to a :data:`ColumnType`."""
    if pa.types.is_dictionary(arrow_type):
        return column_type(arrow_type.value_type)
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if pa.types.is_integer(arrow_type):
        return "int"
    if pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_string_view(arrow_type):
        return "string"
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return "datetime"
    return "other"


def _numeric(name: str, column: pa.Array, kind: ColumnType) -> ColumnStatistics:
    count = len(column)
    values = column.drop_null().to_numpy(zero_copy_only=False)
    missing = column.null_count
    non_finite = 0
    infinities = 0
    if kind == "float":
        values = values.astype(np.float64, copy=False)
        finite = np.isfinite(values)
        if not finite.all():
            nan = int(np.isnan(values).sum())
            missing += nan
            non_finite = int(values.size - finite.sum()) - nan
            infinities = int(np.isposinf(values).any()) + int(np.isneginf(values).any())
            values = values[finite]
    # NOTE: one sort serves distinct, min/max, zeros, quantiles and the histogram.
    ordered = np.sort(values)
    n = ordered.size
    if n == 0:
        return ColumnStatistics(
            name, kind, count, missing, infinities, zeros=0, non_finite=non_finite, note="no finite values"
        )
    distinct = 1 + int(np.count_nonzero(ordered[1:] != ordered[:-1])) + infinities
    zeros = int(np.searchsorted(ordered, 0, side="right") - np.searchsorted(ordered, 0, side="left"))
    as_float = ordered.astype(np.float64, copy=False)
    lo_value, hi_value = float(as_float[0]), float(as_float[-1])
    if kind == "int":
        low, high = int(ordered[0]), int(ordered[-1])
    else:
        low, high = lo_value, hi_value
    return ColumnStatistics(
        name,
        kind,
        count,
        missing,
        distinct,
        min=low,
        max=high,
        mean=float(as_float.mean()),
        std=float(as_float.std()),
        zeros=zeros,
        non_finite=non_finite,
        quantiles=_quantiles(as_float),
        histogram=_histogram(as_float, lo_value, hi_value),
    )


def _quantiles(ordered: np.ndarray) -> tuple[tuple[float, float], ...]:
    """Linear-interpolation quantiles of sorted values (numpy's default method)."""
    positions = np.asarray(QUANTILES) * (ordered.size - 1)
    below = np.floor(positions).astype(np.int64)
    above = np.minimum(below + 1, ordered.size - 1)
    low, high = ordered[below], ordered[above]
    values = low + (high - low) * (positions - below)
    return tuple((q, float(v)) for q, v in zip(QUANTILES, values, strict=True))


def _histogram(ordered: np.ndarray, low: float, high: float) -> Histogram:
    """Equal-width bins over [low, high] with numpy.histogram's edges and closed last bin."""
    if low == high:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    inner = np.searchsorted(ordered, edges[1:-1], side="left")
    counts = np.diff(np.concatenate(([0], inner, [ordered.size])))
    return Histogram(tuple(float(e) for e in edges), tuple(int(c) for c in counts))


def _categorical(name: str, column: pa.Array, kind: ColumnType) -> ColumnStatistics:
    counted = pc.value_counts(column)
    values, counts = counted.field("values"), counted.field("counts")
    present = values.is_valid()
    table = pa.table({"values": values.filter(present), "counts": counts.filter(present)})
    distinct = table.num_rows
    if distinct > TOP_K:
        keys = [("counts", "descending"), ("values", "ascending")]
        top_table = pc.select_k_unstable(table, k=TOP_K, sort_keys=keys)
        top_table = table.take(top_table)
    else:
        top_table = table
    top = _sorted_pairs(top_table)
    all_values = _sorted_pairs(table) if distinct <= CATEGORY_LIMIT else None
    return ColumnStatistics(
        name, kind, len(column), column.null_count, distinct, top_values=top, all_values=all_values
    )


def _sorted_pairs(table: pa.Table) -> tuple[tuple[Value, int], ...]:
    pairs = zip(table.column("values").to_pylist(), table.column("counts").to_pylist(), strict=True)
    return tuple(sorted(pairs, key=lambda p: (-p[1], p[0])))


def _mixed(name: str, series: pd.Series) -> ColumnStatistics:
    missing = int(series.isna().sum())
    try:
        distinct: int | None = int(series.nunique(dropna=True))
    except TypeError:  # unhashable values (lists, dicts)
        distinct = None
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    note = f"values of mixed types ({inferred}) are not summarised"
    return ColumnStatistics(name, "other", len(series), missing, distinct, note=note)


def read_table(path: str | Path) -> pa.Table:
    """A Parquet or CSV file as a pyarrow Table; `InvalidInput` naming the file when it cannot be read."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".pq", ".csv"):
        # Pipeline artifacts have no suffix: Parquet is recognised by its magic bytes.
        if not path.is_file() or not _has_parquet_magic(path):
            raise InvalidInput(
                f"{path}: unsupported file type {suffix or '(none)'!r}; use .parquet, .pq or .csv"
            )
        suffix = ".parquet"
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    try:
        table = pacsv.read_csv(path) if suffix == ".csv" else pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInput(f"{path}: cannot read: {exc}") from exc
    return _without_pandas_index(table)


def _without_pandas_index(table: pa.Table) -> pa.Table:
    """Drop the index columns ``DataFrame.to_parquet`` stores (``__index_level_0__``, a named index).

    They are row labels, not features: pandas itself reads them back as the index, never as columns.
    """
    metadata = table.schema.pandas_metadata or {}
    index = [c for c in metadata.get("index_columns", []) if isinstance(c, str) and c in table.column_names]
    return table.drop_columns(index) if index else table


def _has_parquet_magic(path: Path) -> bool:
    with path.open("rb") as head:
        return head.read(4) == b"PAR1"


def _check_unique(names: list[str]) -> None:
    duplicates = sorted(n for n, k in Counter(names).items() if k > 1)
    if duplicates:
        raise InvalidInput(f"duplicate column names: {', '.join(duplicates)}")
