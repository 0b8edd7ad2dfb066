"""Pipeline steps for the batch-inference tests (importable by module, as workers import them)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shipyard.batch.components import batch_predict
from shipyard.pipelines import Dataset, Output, component, pipeline

FEATURES = [f"f{i}" for i in range(5)]


def frame(rows: int, seed: int = 1) -> pd.DataFrame:
    """Customers: an id, a region and five features."""
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)
    data.insert(0, "region", np.where(np.arange(rows) % 2 == 0, "north", "south"))
    data.insert(0, "id", np.arange(rows, dtype=np.int64))
    return data


@component
def extract(rows: int, data: Output[Dataset]) -> None:
    frame(rows).to_parquet(data.path, row_group_size=250)


@pipeline
def scoring(model: str, rows: int = 1000, prefer: str = "auto") -> None:
    extracted = extract(rows=rows)
    # keys: every column the model does not read
    batch_predict(model=model, data=extracted.outputs["data"], prefer=prefer)
