"""A pipeline whose step writes a feature table (a ``Dataset`` output) and a later step that reads it through
a feature view over that output (:class:`~shipyard.features.StepOutputSource`)."""

from __future__ import annotations

import pandas as pd

from shipyard.features import Entity, FeatureStore, FeatureView, Field, StepOutputSource
from shipyard.pipelines import Dataset, Output, component, pipeline

T0 = pd.Timestamp("2026-01-01", tz="UTC")
PIPELINE = "spend-features"


def view(run_id: str | None = None, output: str = "table") -> FeatureView:
    return FeatureView(
        "spend",
        [Entity("customer", ["customer_id"])],
        [Field("spend", "float64")],
        StepOutputSource(PIPELINE, "write-table", output, run_id=run_id),
    )


def entity_rows() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [1, 2, 3], "event_timestamp": [T0 + pd.Timedelta(hours=1)] * 3})


@component
def write_table(scale: float, table: Output[Dataset]) -> int:
    frame = pd.DataFrame(
        {"customer_id": [1, 2], "event_timestamp": [T0, T0], "spend": [1.0 * scale, 2.0 * scale]}
    )
    frame.to_parquet(table.path, index=False)
    return len(frame)


@component
def read_features(rows: int) -> float:
    """The sum of the spend the feature view gives for customers 1, 2 and 3 (3 has none: null)."""
    del rows  # only so this step runs after write_table
    found = FeatureStore([view()]).get_historical_features(entity_rows(), ["spend:spend"]).to_pandas()
    return float(found["spend"].sum())


@pipeline(name=PIPELINE)
def spend_features(scale: float = 1.0) -> None:
    written = write_table(scale=scale)
    read_features(rows=written.output)
