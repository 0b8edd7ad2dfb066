"""Asking a served classifier for probabilities: OIP v2 (``parameters.output`` or ``outputs`` by name), v1 and
records (``?output=probabilities``), the classes in the metadata, batching of mixed requests, and the 400s."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_breast_cancer
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

import shipyard
from shipyard.payloads import PayloadLogConfig, PayloadLogger, read_payloads
from shipyard.registry.loading import LoadedModel
from shipyard.serving.batching import BatchPolicy
from shipyard.serving.inference import PREDICT, PREDICT_PROBA, ModelInput
from shipyard.serving.repository import ModelConfig, ServedModel
from shipyard.store.artifacts import ArtifactStore
from tests.serving.conftest import Registered, RunningServer, rows


def matrix_body(registered: Registered, n: int, start: int = 0, **extra: Any) -> dict[str, Any]:
    data = rows(registered, n, start)
    return {
        "inputs": [{"name": "x", "datatype": "FP64", "shape": list(data.shape), "data": data.tolist()}]
    } | extra


def tensor(answer: dict[str, Any], name: str) -> np.ndarray:
    (found,) = [o for o in answer["outputs"] if o["name"] == name]
    return np.asarray(found["data"]).reshape(found["shape"])


def test_parameters_output_probabilities_answers_predict_proba(
    bc_server: RunningServer, registered: Registered
) -> None:
    body = matrix_body(registered, 4, parameters={"output": "probabilities"})
    answer = httpx.post(bc_server.url + "/v2/models/bc/infer", json=body)
    assert answer.status_code == 200, answer.text
    (output,) = answer.json()["outputs"]
    assert output["name"] == "predict_proba" and output["datatype"] == "FP64" and output["shape"] == [4, 2]
    expected = registered.model.predict_proba(registered.frame.iloc[:4])
    np.testing.assert_allclose(tensor(answer.json(), "predict_proba"), expected)
    labels = httpx.post(
        bc_server.url + "/v2/models/bc/infer",
        json=matrix_body(registered, 4, parameters={"output": "labels"}),
    )
    assert [o["name"] for o in labels.json()["outputs"]] == ["predict"]
    # Outputs named the standard OIP way come back in the order asked.
    both = matrix_body(registered, 3, outputs=[{"name": "predict_proba"}, {"name": "predict"}])
    answer = httpx.post(bc_server.url + "/v2/models/bc/infer", json=both).json()
    assert [o["name"] for o in answer["outputs"]] == ["predict_proba", "predict"]


def test_metadata_names_the_classes_of_the_probability_columns(bc_server: RunningServer) -> None:
    outputs = {o["name"]: o for o in httpx.get(bc_server.url + "/v2/models/bc").json()["outputs"]}
    assert outputs["predict_proba"]["parameters"] == {"classes": [0, 1]}
    assert outputs["predict_proba"]["shape"] == [-1, 2] and "parameters" not in outputs["predict"]


def test_v1_and_records_ask_for_probabilities_by_query(
    bc_server: RunningServer, registered: Registered
) -> None:
    expected = registered.model.predict_proba(registered.frame.iloc[:3])
    v1 = httpx.post(
        bc_server.url + "/v1/models/bc:predict",
        params={"output": "probabilities"},
        json={"instances": rows(registered, 3).tolist()},
    )
    assert v1.status_code == 200, v1.text
    np.testing.assert_allclose(v1.json()["predictions"], expected)
    assert v1.json()["classes"] == [0, 1]
    records = registered.frame.iloc[:3].to_dict(orient="records")
    answer = httpx.post(bc_server.url + "/models/bc/predict?output=probabilities", json=records)
    np.testing.assert_allclose(answer.json()["predictions"], expected)
    labels = httpx.post(bc_server.url + "/models/bc/predict?output=labels", json=records).json()
    assert labels == {"predictions": registered.model.predict(registered.frame.iloc[:3]).tolist()}


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            "/v2/models/bc/infer",
            {"parameters": {"output": "logits"}},
            "parameters.output must be 'labels' or 'probabilities', got 'logits'",
        ),
        ("/v2/models/bc/infer", {"parameters": {"output": 3}}, "parameters.output must be"),
        (
            "/v2/models/bc/infer",
            {"outputs": [{"name": "logits"}]},
            "model 'bc' has no output 'logits'; it has: predict, predict_proba",
        ),
        (
            "/v2/models/bc/infer",
            {"outputs": [{"name": "predict"}], "parameters": {"output": "probabilities"}},
            "parameters.output 'probabilities' is output 'predict_proba', but outputs name 'predict'",
        ),
        (
            "/v1/models/bc:predict?output=logits",
            None,
            "query parameter output must be 'labels' or 'probabilities', got 'logits'",
        ),
    ],
)
def test_bad_output_requests_are_400_naming_what_is_available(
    bc_server: RunningServer, registered: Registered, path: str, body: dict[str, Any] | None, message: str
) -> None:
    sent = (
        matrix_body(registered, 1) | body if body is not None else {"instances": rows(registered, 1).tolist()}
    )
    answer = httpx.post(bc_server.url + path, json=sent)
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["error"]


@pytest.fixture(scope="module")
def other_models(registered: Registered, start_server: Callable[..., RunningServer]) -> RunningServer:
    """``reg``: a regressor (no predict_proba); ``named``: a classifier of string labels, no input example."""
    settings, frame = registered.settings, registered.frame
    target = load_breast_cancer(as_frame=True).target
    regressor = DecisionTreeRegressor(max_depth=3, random_state=0).fit(frame, target)
    names = target.map({0: "malignant", 1: "benign"})
    classifier = DecisionTreeClassifier(max_depth=3, random_state=0).fit(frame.to_numpy(), names)
    with shipyard.start_run("serving", settings=settings) as run:
        reg = shipyard.models.log(regressor, name="reg", run=run, input_example=frame.head(3))
        named = shipyard.models.log(classifier, name="named", run=run)
    shipyard.models.register(reg.uri, "bc-reg", settings=settings)
    shipyard.models.register(named.uri, "bc-named", settings=settings)
    configs = [ModelConfig("reg", "models:/bc-reg/1"), ModelConfig("named", "models:/bc-named/1")]
    return start_server(configs, settings)


def test_a_model_without_predict_proba_says_it_answers_labels_only(
    other_models: RunningServer, registered: Registered
) -> None:
    url = other_models.url
    meta = httpx.get(url + "/v2/models/reg").json()
    assert [o["name"] for o in meta["outputs"]] == ["predict"]
    asked = httpx.post(
        url + "/v2/models/reg/infer", json=matrix_body(registered, 2, parameters={"output": "probabilities"})
    )
    assert asked.status_code == 400
    assert asked.json()["error"] == (
        "model 'reg' cannot answer parameters.output 'probabilities': it has no predict_proba; "
        "it answers: 'labels'"
    )
    named = httpx.post(
        url + "/v2/models/reg/infer", json=matrix_body(registered, 2, outputs=[{"name": "predict_proba"}])
    )
    assert (
        named.status_code == 400 and "has no output 'predict_proba'; it has: predict" in named.json()["error"]
    )
    records = registered.frame.iloc[:2].to_dict(orient="records")
    by_query = httpx.post(url + "/models/reg/predict?output=probabilities", json=records)
    assert (
        by_query.status_code == 400 and "query parameter output 'probabilities'" in by_query.json()["error"]
    )


def test_string_classes_without_an_input_example_are_still_discoverable(
    other_models: RunningServer, registered: Registered
) -> None:
    outputs = {o["name"]: o for o in httpx.get(other_models.url + "/v2/models/named").json()["outputs"]}
    assert outputs["predict_proba"]["parameters"] == {"classes": ["benign", "malignant"]}
    assert outputs["predict_proba"]["shape"] == [-1, 2]
    answer = httpx.post(
        other_models.url + "/v1/models/named:predict?output=probabilities",
        json={"instances": rows(registered, 2).tolist()},
    ).json()
    assert answer["classes"] == ["benign", "malignant"] and np.asarray(answer["predictions"]).shape == (2, 2)


def test_one_batch_answers_label_and_probability_requests_each_with_their_own(
    registered: Registered, start_server: Callable[..., RunningServer]
) -> None:
    policy = BatchPolicy(max_batch_size=64, max_latency_ms=50, max_in_flight=1)
    server = start_server(
        [ModelConfig("bc-mixed", "models:/bc@champion", batching=policy)], registered.settings
    )
    frame, model = registered.frame, registered.model

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            calls = [
                client.post(
                    "/v2/models/bc-mixed/infer",
                    json=matrix_body(
                        registered, 2, start=2 * i, parameters={"output": ("labels", "probabilities")[i % 2]}
                    ),
                )
                for i in range(40)
            ]
            return await asyncio.gather(*calls)

    answers = asyncio.run(burst())
    for i, answer in enumerate(answers):
        assert answer.status_code == 200, answer.text
        part = frame.iloc[2 * i : 2 * i + 2]
        if i % 2:
            assert [o["name"] for o in answer.json()["outputs"]] == ["predict_proba"]
            np.testing.assert_allclose(tensor(answer.json(), "predict_proba"), model.predict_proba(part))
        else:
            assert [o["name"] for o in answer.json()["outputs"]] == ["predict"]
            np.testing.assert_array_equal(tensor(answer.json(), "predict"), model.predict(part))
    batches = [
        s.value
        for family in text_string_to_metric_families(httpx.get(server.url + "/metrics").text)
        for s in family.samples
        if s.name == "shipyard_batch_size_count" and s.labels["model"] == "bc-mixed"
    ]
    assert batches and batches[0] < 40  # merged: fewer predict calls than requests


class CountingProbabilities:
    """A loaded model that counts its predict_proba calls, which a real flavor does not report."""

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self.proba_calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def predict_proba(self, data: Any) -> Any:
        self.proba_calls += 1
        return self.model.predict_proba(data)


def test_label_only_batches_never_compute_probabilities(registered: Registered) -> None:
    counting: list[CountingProbabilities] = []

    def loader(uri: str) -> Any:
        counting.append(CountingProbabilities(shipyard.models.load(uri, settings=registered.settings)))
        return counting[0]

    served = ServedModel(ModelConfig("bc", "models:/bc@champion"), "champion", "models:/bc@champion")
    served.load(loader)
    assert served.output_names == (PREDICT, PREDICT_PROBA)
    warm_up = counting[0].proba_calls
    matrix = rows(registered, 6)
    columns = {name: matrix[:, i] for i, name in enumerate(registered.frame.columns)}
    labels = ModelInput(6, columns=columns)
    results = served.predict_batch([labels, labels])
    assert counting[0].proba_calls == warm_up and all(set(r) == {PREDICT} for r in results)  # type: ignore[arg-type]
    proba = ModelInput(6, columns=columns, outputs=(PREDICT_PROBA,))
    results = served.predict_batch([labels, proba])
    assert counting[0].proba_calls == warm_up + 1  # one call for the whole batch
    assert set(results[0]) == {PREDICT}  # type: ignore[arg-type]
    # A probabilities request also gets its labels: the payload log records them for performance monitoring.
    assert set(results[1]) == {PREDICT, PREDICT_PROBA}  # type: ignore[arg-type]


def test_tritonclient_asks_for_the_probabilities_output_by_name(
    bc_server: RunningServer, registered: Registered
) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(f"127.0.0.1:{bc_server.port}")
    tensor_in = triton.InferInput("features", [5, 30], "FP64")
    tensor_in.set_data_from_numpy(rows(registered, 5), binary_data=True)
    outputs = [triton.InferRequestedOutput("predict_proba", binary_data=True)]
    result = client.infer("bc", [tensor_in], outputs=outputs)
    np.testing.assert_allclose(
        result.as_numpy("predict_proba"), registered.model.predict_proba(registered.frame.iloc[:5])
    )
    client.close()


def test_every_classifier_flavor_offers_its_probabilities_and_classes(
    registered: Registered, start_server: Callable[..., RunningServer]
) -> None:
    """The ONNX copy of the forest (FP32, as onnxruntime computes them), XGBoost and LightGBM."""
    xgboost = pytest.importorskip("xgboost")
    lightgbm = pytest.importorskip("lightgbm")
    pytest.importorskip("onnxruntime")
    settings, frame = registered.settings, registered.frame
    target = load_breast_cancer(as_frame=True).target
    boosted = {
        "bc-xgb": xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(frame, target),
        "bc-lgbm": lightgbm.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1).fit(frame, target),
    }
    configs = [ModelConfig("bc-onnx", "models:/bc@champion", options={"prefer": "onnx"})]
    for name, model in boosted.items():
        with shipyard.start_run("serving", settings=settings) as run:
            info = shipyard.models.log(model, name=name, run=run, input_example=frame.head(5))
        version = shipyard.models.register(info.uri, name, settings=settings)
        configs.append(ModelConfig(name, f"models:/{name}/{version.version}"))
    server = start_server(configs, settings)
    expected = {"bc-onnx": registered.model, **boosted}
    datatypes = {}
    for name, model in expected.items():
        outputs = {o["name"]: o for o in httpx.get(f"{server.url}/v2/models/{name}").json()["outputs"]}
        assert outputs["predict_proba"]["parameters"] == {"classes": [0, 1]}, name
        body = matrix_body(registered, 5, parameters={"output": "probabilities"})
        (answer,) = httpx.post(f"{server.url}/v2/models/{name}/infer", json=body).json()["outputs"]
        assert answer["datatype"] == outputs["predict_proba"]["datatype"], name
        datatypes[name] = answer["datatype"]
        got = np.asarray(answer["data"]).reshape(answer["shape"])
        np.testing.assert_allclose(got, model.predict_proba(frame.iloc[:5]), rtol=1e-4, atol=1e-5)
    assert datatypes["bc-onnx"] == "FP32"


def test_a_shadow_without_probabilities_still_mirrors_the_labels(
    other_models: RunningServer,
    registered: Registered,
    start_server: Callable[..., RunningServer],
    tmp_path: Any,
) -> None:
    """A probabilities request routed to the classifier is mirrored to a regressor shadow as labels."""
    store = ArtifactStore(str(tmp_path))
    payloads = PayloadLogger(store, PayloadLogConfig(sample_rate=1.0, max_seconds=3600))
    config = ModelConfig(
        "bc-shadowed",
        versions={"champion": "models:/bc@champion", "reg": "models:/bc-reg/1"},
        traffic={"champion": 100},
        shadow="reg",
    )
    server = start_server([config], registered.settings, payloads=payloads)
    body = matrix_body(registered, 3, parameters={"output": "probabilities"})
    answer = httpx.post(server.url + "/v2/models/bc-shadowed/infer", json=body)
    assert answer.status_code == 200 and [o["name"] for o in answer.json()["outputs"]] == ["predict_proba"]
    deadline = time.monotonic() + 10
    payloads.flush()
    while len(read_payloads(store, "bc-shadowed")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # the mirror runs in the background
        payloads.flush()
    logged = read_payloads(store, "bc-shadowed").set_index("shadow")
    assert logged.loc[True, "status"] == 200 and set(json.loads(logged.loc[True, "outputs"])) == {"predict"}
    assert set(json.loads(logged.loc[False, "outputs"])) == {"predict", "predict_proba"}
