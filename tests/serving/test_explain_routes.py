"""The explain routes on a real server (uvicorn on 127.0.0.1): KServe v1 ``:explain`` and v2 ``/explain``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

import shipyard
from shipyard.serving.explanations import MAX_ROWS
from shipyard.serving.repository import ModelConfig
from tests.conftest import make_settings
from tests.serving.conftest import RunningServer
from tests.serving.transformer_steps import Unscale

pytest.importorskip("shap", reason="shap is the explain extra (pip install 'shipyard[explain]')")

TIMEOUT = 120  # the first explain request imports shap and builds the explainer


@dataclass(frozen=True)
class Explained:
    server: RunningServer
    frame: pd.DataFrame
    regressor: RandomForestRegressor
    classifier: RandomForestClassifier


@pytest.fixture(scope="module")
def explained(
    tmp_path_factory: pytest.TempPathFactory, start_server: Callable[..., RunningServer]
) -> Explained:
    """``houses`` (a forest regressor with its baseline), ``scaled`` (the same behind a pre-processor),
    ``bare`` (the same without a baseline) and ``onnx`` (a forest classifier with its baseline, served as its
    ONNX copy)."""
    settings = make_settings(tmp_path_factory.mktemp("explain") / "home")
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(300, 4)), columns=["rooms", "age", "noise", "floor"])
    price = 5 * frame["rooms"] + frame["age"] + rng.normal(scale=0.1, size=300)
    regressor = RandomForestRegressor(n_estimators=15, max_depth=6, random_state=0).fit(frame, price)
    classifier = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(frame, price > 0)
    for name, model, options in [
        ("houses", regressor, {"baseline": frame}),
        ("bare", regressor, {}),
        ("onnx", classifier, {"baseline": frame}),
    ]:
        with shipyard.start_run("explain", settings=settings) as run:
            info = shipyard.models.log(model, name="model", run=run, input_example=frame.head(5), **options)
        shipyard.models.register(info.uri, name, settings=settings)
    raw = pd.DataFrame({f"x{i}": frame[name] / 10 for i, name in enumerate(frame.columns)})
    with shipyard.start_run("explain", settings=settings) as run:
        prep = Unscale(list(frame.columns), 10.0)
        info = shipyard.models.log(prep, name="model", run=run, input_example=raw.head(5))
    shipyard.models.register(info.uri, "houses-prep", settings=settings)
    configs = [
        ModelConfig("houses", "models:/houses/1"),
        ModelConfig("scaled", "models:/houses/1", preprocess="models:/houses-prep/1"),
        ModelConfig("bare", "models:/bare/1"),
        ModelConfig("onnx", "models:/onnx/1", options={"prefer": "onnx"}),
    ]
    return Explained(start_server(configs, settings), frame, regressor, classifier)


def _post(explained: Explained, path: str, body: object) -> httpx.Response:
    return httpx.post(explained.server.url + path, json=body, timeout=TIMEOUT)


def test_v1_explain_values_add_up_to_the_prediction(explained: Explained) -> None:
    rows = explained.frame.iloc[:6]
    answer = _post(explained, "/v1/models/houses:explain", {"instances": rows.to_dict(orient="records")})
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-shipyard-version"] == "1" and answer.headers["x-request-id"]
    document = answer.json()
    assert document["method"] == "shap" and document["output_space"] == "raw"
    assert document["feature_names"] == list(explained.frame.columns)
    assert next(iter(document["importance"])) == "rooms"
    values = np.array(document["explanations"])
    assert values.shape == (6, 4)
    predicted = _post(explained, "/v1/models/houses:predict", {"instances": rows.to_numpy().tolist()})
    np.testing.assert_allclose(
        values.sum(axis=1), np.array(predicted.json()["predictions"]) - document["expected_value"], atol=1e-6
    )


def test_v2_explain_takes_an_inference_request(explained: Explained) -> None:
    rows = explained.frame.iloc[10:13].to_numpy()
    body = {
        "id": "why-7",
        "inputs": [
            {"name": "x", "datatype": "FP64", "shape": list(rows.shape), "data": rows.ravel().tolist()}
        ],
    }
    answer = _post(explained, "/v2/models/houses/versions/1/explain", body)
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert (document["model_name"], document["model_version"], document["id"]) == ("houses", "1", "why-7")
    assert answer.headers["x-request-id"] == "why-7"
    total = np.sum(document["values"], axis=1) + document["expected_value"]
    np.testing.assert_allclose(total, explained.regressor.predict(explained.frame.iloc[10:13]), atol=1e-6)


def test_an_onnx_served_model_is_explained_natively(explained: Explained) -> None:
    assert explained.server.server.repository.get("onnx").model.raw.runtime == "onnx"
    rows = explained.frame.iloc[:4]
    answer = _post(explained, "/v1/models/onnx:explain", {"instances": rows.to_dict(orient="records")})
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["output_space"] == "probability" and document["outputs"] == [False, True]
    total = np.sum(document["explanations"], axis=1) + np.array(document["expected_value"])
    np.testing.assert_allclose(total, explained.classifier.predict_proba(rows), atol=1e-6)


def test_a_model_without_a_baseline_is_a_clear_400(explained: Explained) -> None:
    rows = explained.frame.iloc[:2].to_numpy().tolist()
    answer = _post(explained, "/v1/models/bare:explain", {"instances": rows})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert "model 'bare' version 1 cannot be explained" in error and "baseline=" in error
    # Predicting is not affected.
    assert _post(explained, "/v1/models/bare:predict", {"instances": rows}).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "status", "reason"),
    [
        ("/v1/models/houses:explain", {"rows": []}, 400, 'a v1 predict body is {"instances": [...]}'),
        ("/v1/models/houses:explain", {"instances": [{"rooms": 1.0, "age": 2.0}]}, 400, "noise"),
        ("/v1/models/nope:explain", {"instances": [[1, 2, 3, 4]]}, 404, "no model named 'nope'"),
        ("/v2/models/houses/explain", {"inputs": []}, 400, "non-empty array of tensors"),
        ("/v1/models/houses:explain", {"instances": [[0.0] * 4] * (MAX_ROWS + 1)}, 400, "at most"),
    ],
    ids=["not-v1", "missing-column", "unknown-model", "no-tensors", "too-many-rows"],
)
def test_bad_explain_requests_are_4xx_with_a_reason(
    explained: Explained, path: str, body: object, status: int, reason: str
) -> None:
    answer = _post(explained, path, body)
    assert answer.status_code == status, answer.text
    assert reason in answer.json()["error"]


def test_explain_bodies_have_the_predict_routes_size_limit(explained: Explained) -> None:
    limit = explained.server.server.config.max_body_bytes
    body = json.dumps({"instances": [[0.0] * 4]}).encode() + b" " * limit
    answer = httpx.post(explained.server.url + "/v1/models/houses:explain", content=body, timeout=TIMEOUT)
    assert answer.status_code == 413


def test_explanations_are_counted_apart_from_predictions(explained: Explained) -> None:
    rows = explained.frame.iloc[:1].to_numpy().tolist()
    assert _post(explained, "/v1/models/houses:explain", {"instances": rows}).status_code == 200
    metrics = httpx.get(explained.server.url + "/metrics").text
    assert 'protocol="v1-explain"' in metrics


def test_a_model_behind_a_pre_processor_is_explained_on_the_rows_it_took(explained: Explained) -> None:
    rows = explained.frame.iloc[:5]
    raw = pd.DataFrame({f"x{i}": rows[name] / 10 for i, name in enumerate(rows.columns)})
    answer = _post(explained, "/v1/models/scaled:explain", {"instances": raw.to_dict(orient="records")})
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["feature_names"] == list(explained.frame.columns)  # the model's features
    values = np.array(document["explanations"])
    np.testing.assert_allclose(
        values.sum(axis=1), explained.regressor.predict(rows) - document["expected_value"], atol=1e-6
    )
