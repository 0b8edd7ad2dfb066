"""NaN, ±Infinity and null that a model cannot take, and malformed records: the client's error (400 naming the
column), not the model's (500) — unless the model's signature allows a missing value there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.registry.signature import ColumnSpec, Signature
from shipyard.serving.inference import ModelInput, unacceptable_value
from shipyard.serving.repository import ModelConfig
from tests.serving.conftest import Registered, RunningServer

COLUMNS = ["mean radius", "mean texture", "mean perimeter"]


@pytest.fixture(scope="module")
def picky(registered: Registered, start_server: Callable[..., RunningServer]) -> RunningServer:
    """``lr``: a logistic regression (takes no NaN) on three float columns; ``hist``: a gradient-boosted
    model whose ``visits`` column is nullable in its signature (missing in its training data)."""
    settings, frame = registered.settings, registered.frame[COLUMNS]
    target = (frame["mean radius"] > frame["mean radius"].median()).astype(int)
    lr = LogisticRegression(max_iter=500).fit(frame, target)
    with_visits = frame.assign(
        visits=pd.array([None if i % 7 == 0 else i % 5 for i in range(len(frame))], "Int64")
    )
    hist = HistGradientBoostingClassifier(max_iter=5).fit(with_visits, target)
    for name, model, example in (("lr", lr, frame.head(5)), ("hist", hist, with_visits.head(8))):
        with shipyard.start_run("picky", settings=settings) as run:
            info = shipyard.models.log(model, name="model", run=run, input_example=example)
        shipyard.models.register(info.uri, name, settings=settings)
    configs = [ModelConfig("lr", "models:/lr/1"), ModelConfig("hist", "models:/hist/1")]
    return start_server(configs, settings)


def row(registered: Registered, **values: Any) -> dict[str, Any]:
    return {**registered.frame[COLUMNS].iloc[0].to_dict(), **values}


@pytest.mark.parametrize(
    ("token", "shown"), [("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity")]
)
def test_non_finite_numbers_are_a_400_naming_the_column_on_every_route(
    picky: RunningServer, registered: Registered, token: str, shown: str
) -> None:
    values = [str(v) for v in registered.frame[COLUMNS].iloc[0]]
    values[1] = token  # mean texture
    data = ", ".join(values)  # NaN and Infinity are tokens Python's json (and tritonclient's) read and write
    v2 = '{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 3], "data": [' + data + "]}]}"
    v1 = '{"instances": [[' + data + "]]}"
    records = "[{" + ", ".join(f'"{c}": {v}' for c, v in zip(COLUMNS, values, strict=True)) + "}]"
    for path, body in (
        ("/v2/models/lr/infer", v2),
        ("/v1/models/lr:predict", v1),
        ("/models/lr/predict", records),
    ):
        answer = httpx.post(picky.url + path, content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, (path, answer.text)
        assert f"column 'mean texture' holds {shown} at row 0" in answer.json()["error"]


def test_null_where_the_signature_allows_no_missing_value_is_a_400(
    picky: RunningServer, registered: Registered
) -> None:
    records = [row(registered), row(registered, **{"mean texture": None})]
    answer = httpx.post(picky.url + "/models/lr/predict", json=records)
    assert answer.status_code == 400 and "column 'mean texture' holds null at row 1" in answer.json()["error"]
    instances = [list(row(registered).values()), [None, 1.0, 2.0]]
    answer = httpx.post(picky.url + "/v1/models/lr:predict", json={"instances": instances})
    assert answer.status_code == 400 and "column 'mean radius' holds null at row 1" in answer.json()["error"]


def test_null_in_a_nullable_column_reaches_the_model(picky: RunningServer, registered: Registered) -> None:
    records = [row(registered, visits=None), row(registered, visits=3)]
    answer = httpx.post(picky.url + "/models/hist/predict", json=records)
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 2


def test_records_mixing_scalars_and_lists_are_a_400_naming_the_column_and_row(
    picky: RunningServer, registered: Registered
) -> None:
    for bad, kind in (([1.0, 2.0], "an array"), ({"a": 1}, "an object")):
        records = [row(registered), row(registered, **{"mean perimeter": bad})]
        answer = httpx.post(picky.url + "/models/lr/predict", json=records)
        assert answer.status_code == 400
        assert f"column 'mean perimeter' holds {kind} at row 1" in answer.json()["error"]
    mixed = [row(registered), row(registered, **{"mean perimeter": "wide"})]
    answer = httpx.post(picky.url + "/models/lr/predict", json=mixed)
    assert answer.status_code == 400 and "got 'wide' (str) at row 1" in answer.json()["error"]


def test_finite_input_holds_nothing_unacceptable() -> None:
    # So a model raising on it stays the model's 500 (test_server's "boom" stub checks that over HTTP).
    item = ModelInput(2, columns={"a": np.array([1.0, 2.0]), "b": np.array([1, 2])})
    assert unacceptable_value(item, None) is None


def test_unacceptable_value_follows_the_signature() -> None:
    signature = Signature((ColumnSpec("a", "float64"), ColumnSpec("b", "float64", nullable=True)))
    nan_in_b = ModelInput(2, columns={"a": np.array([1.0, 2.0]), "b": np.array([1.0, np.nan])})
    assert unacceptable_value(nan_in_b, signature) is None  # nullable: missing values pass through
    inf_in_b = ModelInput(2, columns={"a": np.array([1.0, 2.0]), "b": np.array([np.inf, 1.0])})
    assert unacceptable_value(inf_in_b, signature) == "column 'b' holds Infinity at row 0"
    none_in_a = ModelInput(2, columns={"a": np.array([1.0, None], dtype=object), "b": np.array([1.0, 2.0])})
    assert unacceptable_value(none_in_a, signature) == "column 'a' holds null at row 1"
    tensor = ModelInput(2, array=np.array([[1.0, 2.0], [-np.inf, 0.0]]))
    assert unacceptable_value(tensor, None) == "input holds -Infinity at element [1, 0]"
