"""compute_statistics against numpy/pandas, on every input kind, and its dict round trip."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.data.statistics import QUANTILES, DatasetStatistics, compute_statistics, read_table
from shipyard.errors import InvalidInput

finite_floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    floats=st.lists(st.one_of(finite_floats, st.none()), min_size=0, max_size=40),
    ints=st.lists(st.integers(min_value=-(2**40), max_value=2**40), min_size=0, max_size=40),
)
def test_numeric_statistics_match_numpy(floats: list[float | None], ints: list[int]) -> None:
    n = min(len(floats), len(ints))
    frame = pd.DataFrame(
        {"x": pd.Series(floats[:n], dtype="float64"), "k": pd.Series(ints[:n], dtype="int64")}
    )
    stats = compute_statistics(frame)
    assert stats.rows == n
    for name in ("x", "k"):
        col = stats.columns[name]
        values = frame[name].dropna().to_numpy(dtype=np.float64)
        assert col.count == n
        assert col.missing == int(frame[name].isna().sum())
        assert col.distinct == len(np.unique(values))
        if values.size == 0:
            assert col.min is None and col.mean is None
            continue
        assert col.min == pytest.approx(values.min())
        assert col.max == pytest.approx(values.max())
        assert col.mean == pytest.approx(values.mean(), rel=1e-9, abs=1e-6)
        assert col.std == pytest.approx(values.std(), rel=1e-6, abs=1e-6)
        assert col.zeros == int((values == 0).sum())
        expected_q = np.quantile(values, QUANTILES)
        assert [v for _, v in col.quantiles] == pytest.approx(expected_q, rel=1e-9, abs=1e-6)
        counts, edges = np.histogram(values, bins=10)
        assert list(col.histogram.counts) == counts.tolist()
        assert col.histogram.edges == pytest.approx(edges)
    assert stats.columns["k"].type == "int"
    assert n == 0 or isinstance(stats.columns["k"].min, int)
    assert DatasetStatistics.from_dict(json.loads(json.dumps(stats.to_dict()))) == stats


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(["a", "b", "c", "é", ""]), st.none()), max_size=50))
def test_string_top_values_match_pandas(values: list[str | None]) -> None:
    frame = pd.DataFrame({"s": pd.Series(values, dtype=object)})
    col = compute_statistics(frame).columns["s"]
    counts = frame["s"].value_counts()
    assert col.missing == frame["s"].isna().sum()
    assert col.distinct == len(counts)
    assert dict(col.top_values or ()) == counts.to_dict()
    if col.type != "other":  # an all-None object column has arrow type null
        assert col.type == "string"
        assert [c for _, c in col.top_values] == sorted(counts.tolist(), reverse=True)


def test_top_values_keep_twenty_most_frequent_with_ties_broken_by_value() -> None:
    values = [f"v{i:02d}" for i in range(30) for _ in range(i + 1)] + ["tie"] * 11
    col = compute_statistics(pd.DataFrame({"s": values})).columns["s"]
    assert len(col.top_values) == 20
    assert col.top_values[0] == ("v29", 30)
    assert col.top_values[-2:] == (("v11", 12), ("tie", 11))  # "tie" < "v10" breaks the tie at 11
    assert col.distinct == 31 and col.all_values is not None and len(col.all_values) == 31


def test_bool_column_counts_values() -> None:
    col = compute_statistics(pd.DataFrame({"b": [True, False, True, None]})).columns["b"]
    assert (col.type, col.missing) == ("bool", 1)
    frame = pd.DataFrame({"b": pd.array([True, False, True, None], dtype="boolean")})
    col = compute_statistics(frame).columns["b"]
    assert (col.type, col.missing, col.distinct, col.top_values) == ("bool", 1, 2, ((True, 2), (False, 1)))


def test_non_finite_values_are_counted_and_excluded_from_summaries() -> None:
    frame = pd.DataFrame({"x": [1.0, np.inf, -np.inf, np.nan, 3.0, np.inf]})
    col = compute_statistics(frame).columns["x"]
    assert col.non_finite == 3
    assert col.missing == 1
    assert (col.min, col.max, col.mean) == (1.0, 3.0, 2.0)
    assert col.distinct == 4  # 1, 3, inf, -inf
    json.dumps(col.to_dict(), allow_nan=False)


def test_nan_inside_arrow_table_counts_as_missing() -> None:
    table = pa.table({"x": pa.array([1.0, float("nan"), None, 2.0])})
    col = compute_statistics(table).columns["x"]
    assert (col.count, col.missing, col.non_finite, col.mean) == (4, 2, 0, 1.5)


def test_pyarrow_table_input_matches_dataframe_input() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {"x": rng.normal(size=500), "n": rng.integers(0, 9, 500), "s": rng.choice(["a", "b"], 500)}
    )
    assert compute_statistics(pa.Table.from_pandas(frame)) == compute_statistics(frame)


def test_parquet_and_csv_paths(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.5, 2.5, None], "n": [1, 2, 3], "s": ["a", "b", "a"]})
    parquet, csv = tmp_path / "d.parquet", tmp_path / "d.csv"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), parquet)
    frame.to_csv(csv, index=False)
    for path in (parquet, str(csv)):
        stats = compute_statistics(path)
        assert stats.rows == 3
        assert stats.columns["x"].type == "float" and stats.columns["x"].missing == 1
        assert stats.columns["n"].type == "int" and stats.columns["n"].max == 3
        assert stats.columns["s"].top_values == (("a", 2), ("b", 1))


def test_bad_paths_raise_invalid_input_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"nope\.parquet: no such file"):
        compute_statistics(tmp_path / "nope.parquet")
    with pytest.raises(InvalidInput, match=r"unsupported file type '\.xlsx'"):
        compute_statistics(tmp_path / "data.xlsx")
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    with pytest.raises(InvalidInput, match=r"broken\.parquet: cannot read"):
        compute_statistics(broken)
    with pytest.raises(InvalidInput, match="list"):
        compute_statistics([1, 2, 3])  # type: ignore[arg-type]


def test_empty_table_gives_count_zero() -> None:
    frame = pd.DataFrame({"x": pd.Series([], dtype=float), "s": pd.Series([], dtype=str)})
    stats = compute_statistics(frame)
    assert stats.rows == 0
    assert stats.columns["x"].count == 0 and stats.columns["x"].type == "float"
    assert stats.columns["s"].count == 0 and stats.columns["s"].distinct == 0
    assert DatasetStatistics.from_dict(stats.to_dict()) == stats


def test_all_null_column_takes_type_from_dtype() -> None:
    frame = pd.DataFrame({"x": pd.Series([None] * 4, dtype="float64"), "s": pd.Series([None] * 4, dtype=str)})
    stats = compute_statistics(frame)
    assert (stats.columns["x"].type, stats.columns["x"].missing, stats.columns["x"].count) == ("float", 4, 4)
    assert (stats.columns["s"].type, stats.columns["s"].missing) == ("string", 4)


def test_mixed_type_column_is_other_with_a_note() -> None:
    frame = pd.DataFrame({"m": pd.Series([1, "a", 2.5, None, "a"], dtype=object)})
    col = compute_statistics(frame).columns["m"]
    assert (col.type, col.count, col.missing, col.distinct) == ("other", 5, 1, 3)
    assert col.note and "mixed" in col.note


def test_datetime_column() -> None:
    frame = pd.DataFrame({"t": pd.to_datetime(["2024-01-01", None, "2024-01-02", "2024-01-01"])})
    col = compute_statistics(frame).columns["t"]
    assert (col.type, col.missing, col.distinct) == ("datetime", 1, 2)


def test_duplicate_column_names_are_rejected() -> None:
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(InvalidInput, match="duplicate column names: a"):
        compute_statistics(frame)


def test_to_dict_is_yaml_safe() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "s": ["a", None], "b": [True, False]})
    stats = compute_statistics(frame)
    assert DatasetStatistics.from_dict(yaml.safe_load(yaml.safe_dump(stats.to_dict()))) == stats


def test_million_rows_by_twenty_columns_is_fast() -> None:
    rng = np.random.default_rng(0)
    n = 1_000_000
    columns: dict[str, object] = {f"f{i}": rng.normal(size=n) for i in range(10)}
    columns |= {f"i{i}": rng.integers(0, 1000, size=n) for i in range(6)}
    columns |= {f"s{i}": rng.choice([f"v{j}" for j in range(30)], size=n) for i in range(3)}
    columns["b"] = rng.random(n) < 0.3
    frame = pd.DataFrame(columns)
    start = time.perf_counter()
    stats = compute_statistics(frame)
    elapsed = time.perf_counter() - start
    print(f"compute_statistics: 1,000,000 rows x 20 columns in {elapsed:.2f} s")
    assert stats.rows == n and len(stats.columns) == 20
    assert elapsed < 20


def test_the_index_pandas_stores_in_parquet_is_not_a_column(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "city": ["a", "b", "a"]})
    shuffled = frame.sample(frac=1.0, random_state=1)  # a non-range index: stored as __index_level_0__
    shuffled.to_parquet(tmp_path / "unnamed.parquet")
    shuffled.rename_axis("row_id").to_parquet(tmp_path / "named.parquet")
    frame.to_csv(tmp_path / "plain.csv", index=False)
    for name in ("unnamed.parquet", "named.parquet"):
        assert read_table(tmp_path / name).column_names == ["x", "city"]
        assert set(compute_statistics(tmp_path / name).columns) == {"x", "city"}
    assert read_table(tmp_path / "plain.csv").column_names == ["x", "city"]
