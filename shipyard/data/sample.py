"""A uniform row sample of training features, as the baseline monitoring compares served inputs with."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from shipyard.errors import InvalidInput

DEFAULT_BASELINE_ROWS = 100_000


def as_frame(data: Any, what: str) -> pd.DataFrame:
    """``data`` (a DataFrame, a pyarrow Table, or a Parquet/CSV path) as a DataFrame with string column names.

    Raises:
        InvalidInput: another type (naming ``what`` and the type), or no rows or no columns.
    """
    if isinstance(data, str | Path):
        from shipyard.data.statistics import read_table

        data = read_table(data)
    if isinstance(data, pa.Table):
        data = data.to_pandas()
    if not isinstance(data, pd.DataFrame):
        raise InvalidInput(
            f"{what} must be a pandas DataFrame, a pyarrow Table or a Parquet/CSV path with named columns, "
            f"not {type(data).__name__}"
        )
    if data.empty or len(data.columns) == 0:
        raise InvalidInput(f"{what} has no rows or no columns")
    frame = data.copy(deep=False)
    frame.columns = [str(c) for c in frame.columns]  # payload inputs name columns by string
    return frame


def sample_baseline(
    data: Any, *, max_rows: int = DEFAULT_BASELINE_ROWS, seed: int = 0, what: str = "baseline data"
) -> bytes:
    """``data`` (a uniform sample of ``max_rows`` rows when larger) as Parquet bytes.

    Raises:
        InvalidInput: ``max_rows`` < 1, or ``data`` as :func:`as_frame` refuses it.
    """
    if max_rows < 1:
        raise InvalidInput(f"max_rows must be >= 1, got {max_rows}")
    frame = as_frame(data, what)
    if len(frame) > max_rows:
        frame = frame.sample(n=max_rows, random_state=seed)
    buffer = io.BytesIO()
    frame.reset_index(drop=True).to_parquet(buffer, index=False)
    return buffer.getvalue()


__all__ = ["DEFAULT_BASELINE_ROWS", "as_frame", "sample_baseline"]
