"""Components and pipelines that read dataset versions (``data:customers@3``) as step inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

import shipyard
from shipyard.pipelines import Artifact, Dataset, Input, Model, ParallelFor, component, pipeline


def _table(path: str) -> pd.DataFrame:
    """The CSV a dataset version holds (the file itself, or the one CSV of a folder), which must be a
    read-only copy: a step cannot change a version for the steps after it."""
    if os.path.isdir(path):
        (path,) = [str(p) for p in Path(path).rglob("*.csv")]
    if os.stat(path).st_mode & 0o222:
        raise RuntimeError(f"the dataset copy at {path} is writable")
    return pd.read_csv(path)


@component
def count_rows(data: Input[Dataset], marker: str = "") -> int:
    if marker and not Path(marker).exists():
        raise RuntimeError(f"no marker at {marker}")
    return len(_table(data.path))


@component
def generic(data: Input[Artifact]) -> str:
    return data.uri


@component
def train(data: Input[Dataset], model_name: str) -> int:
    from sklearn.linear_model import LogisticRegression

    frame = _table(data.path)
    model = LogisticRegression().fit(frame[["x"]], frame["y"])
    info = shipyard.models.log(model, name="model")
    return shipyard.models.register(info.uri, model_name).version


@component
def wants_model(model: Input[Model]) -> str:
    return model.path


@pipeline
def literal() -> None:
    count_rows(data="data:customers@1")
    generic(data="data:customers@2")


@pipeline
def by_parameter(data: str = "data:customers", marker: str = "") -> None:
    count_rows(data=data, marker=marker)


@pipeline
def looped(refs: list) -> None:
    with ParallelFor(refs) as ref:
        count_rows(data=ref)


@pipeline
def training(data: str = "data:customers@1", model_name: str = "churn") -> None:
    train(data=data, model_name=model_name)
