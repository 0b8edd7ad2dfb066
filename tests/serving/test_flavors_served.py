"""Other execution paths behind the same protocol: a TorchScript model (tensor signature, batched) and the
ONNX Runtime copy of a scikit-learn model. Both run on the CPU here; ``device`` stays ``auto``."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import numpy as np
import pytest

import shipyard
from shipyard.serving.repository import ModelConfig
from tests.serving.conftest import Registered, RunningServer


@pytest.fixture(scope="module")
def torch_uri(registered: Registered) -> str:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).eval()
    example = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    with shipyard.start_run("serving-torch", settings=registered.settings) as run:
        info = shipyard.models.log(net, name="mlp", run=run, input_example=example)
    return info.uri


def test_a_torchscript_model_serves_tensors_in_batches(
    torch_uri: str, registered: Registered, start_server: Callable[..., RunningServer]
) -> None:
    server = start_server([ModelConfig("mlp", torch_uri)], registered.settings)
    meta = httpx.get(server.url + "/v2/models/mlp").json()
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1, 8]}]
    assert meta["outputs"][0]["datatype"] == "FP32" and meta["outputs"][0]["shape"] == [-1, 3]
    batch = np.random.default_rng(1).normal(size=(4, 8)).astype(np.float32)
    body = {
        "inputs": [{"name": "input-0", "datatype": "FP32", "shape": [4, 8], "data": batch.ravel().tolist()}]
    }
    answer = httpx.post(server.url + "/v2/models/mlp/infer", json=body).json()
    (output,) = answer["outputs"]
    got = np.array(output["data"], dtype=np.float32).reshape(output["shape"])
    expected = shipyard.models.load(torch_uri, settings=registered.settings).predict(batch)
    np.testing.assert_allclose(got, np.asarray(expected), rtol=1e-5, atol=1e-6)
    assert got.shape == (4, 3)
    wrong = {"inputs": [{"name": "input-0", "datatype": "FP32", "shape": [1, 5], "data": [0.0] * 5}]}
    refused = httpx.post(server.url + "/v2/models/mlp/infer", json=wrong)
    assert refused.status_code == 400 and "shape" in refused.json()["error"]


def test_the_onnx_copy_of_a_sklearn_model_serves_the_same_answers(
    registered: Registered, start_server: Callable[..., RunningServer]
) -> None:
    pytest.importorskip("onnxruntime")
    config = ModelConfig("bc-onnx", "models:/bc@champion", options={"prefer": "onnx"})
    server = start_server([config], registered.settings)
    assert server.server.repository.deployment("bc-onnx").versions["champion"].model.raw.runtime == "onnx"  # type: ignore[union-attr]
    records = registered.frame.iloc[:20].to_dict(orient="records")
    answer = httpx.post(server.url + "/models/bc-onnx/predict", json=records)
    assert answer.json() == {"predictions": registered.model.predict(registered.frame.iloc[:20]).tolist()}
