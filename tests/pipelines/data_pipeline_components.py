"""A pipeline that writes a dataset and checks it with the ready-made validate_data component."""

from __future__ import annotations

from sklearn.datasets import load_breast_cancer

from shipyard.pipelines import Dataset, Output, component, pipeline
from shipyard.pipelines.data_components import validate_data


@component
def write_frame(drop: str, data: Output[Dataset]) -> int:
    frame = load_breast_cancer(as_frame=True).frame
    if drop:
        frame = frame.drop(columns=[drop])
    frame.to_parquet(data.path)  # no suffix: readers recognise Parquet by its content
    return len(frame)


@pipeline
def checked(schema_path: str, drop: str = "") -> None:
    made = write_frame(drop=drop)
    validate_data(data=made.outputs["data"], schema_path=schema_path)
