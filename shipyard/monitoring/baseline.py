"""The reference data of a model: a sample of its training features, kept beside its payload logs.

One Parquet file per model at ``monitoring/baselines/<model>.parquet`` in the artifact store. The monitoring
job compares the inputs the model has served against it.
"""

from __future__ import annotations

import io

import pandas as pd

from shipyard.errors import InvalidInput, NotFound
from shipyard.store.artifacts import ArtifactStore

BASELINE_PREFIX = "monitoring/baselines"


def check_model_name(model: str) -> str:
    """``model`` unchanged when it can name one folder or file of the artifact store.

    Raises:
        InvalidInput: an empty name, '.', '..', or one holding '/', '\\', '::' or a NUL byte.
    """
    if not isinstance(model, str) or not model.strip():
        raise InvalidInput(f"model name must be a non-empty string, got {model!r}")
    if model in (".", "..") or any(bad in model for bad in ("/", "\\", "::", "\x00")):
        raise InvalidInput(f"model name {model!r} must not be '.', '..' or hold '/', '\\', '::' or NUL")
    return model


def baseline_path(model: str) -> str:
    return f"{BASELINE_PREFIX}/{check_model_name(model)}.parquet"


def save_baseline(
    store: ArtifactStore, model: str, data: pd.DataFrame, *, max_rows: int = 100_000, seed: int = 0
) -> str:
    """Store ``data`` (a uniform sample of ``max_rows`` rows when larger) as the baseline of ``model``.

    Returns:
        The store-relative path written; an earlier baseline of ``model`` is replaced.

    Raises:
        InvalidInput: a bad model name, ``max_rows`` < 1, or ``data`` without rows or columns.
    """
    path = baseline_path(model)
    if max_rows < 1:
        raise InvalidInput(f"max_rows must be >= 1, got {max_rows}")
    if data.empty or len(data.columns) == 0:
        raise InvalidInput(f"baseline data for model {model!r} has no rows or no columns")
    frame = data.sample(n=max_rows, random_state=seed) if len(data) > max_rows else data
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]  # payload inputs name columns by string
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    store.put_bytes(buffer.getvalue(), path)
    return path


def load_baseline(store: ArtifactStore, model: str) -> pd.DataFrame:
    """The baseline of ``model``.

    Raises:
        NotFound: ``model`` has no baseline (the message says how to set one).
    """
    path = baseline_path(model)
    if not store.exists(path):
        raise NotFound(
            f"model {model!r} has no monitoring baseline; set one with "
            f"`shipyard monitor baseline {model} TRAINING_DATA.parquet` (or save_baseline())"
        )
    return pd.read_parquet(io.BytesIO(store.read_bytes(path)))


__all__ = ["BASELINE_PREFIX", "baseline_path", "check_model_name", "load_baseline", "save_baseline"]
