"""The inference server end to end: a registered model behind real uvicorn, spoken to over HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest

from shipyard.registry.signature import Signature
from shipyard.serving.app import ServerConfig
from shipyard.serving.batching import BatchPolicy
from shipyard.serving.repository import ModelConfig
from tests.serving.conftest import Registered, RunningServer, rows


def v2_columns(registered: Registered, n: int) -> list[dict[str, Any]]:
    frame = registered.frame.iloc[:n]
    return [{"name": c, "datatype": "FP64", "shape": [n], "data": frame[c].tolist()} for c in frame.columns]


def test_health_and_server_metadata(bc_server: RunningServer) -> None:
    assert httpx.get(bc_server.url + "/v2/health/live").json() == {"live": True}
    assert httpx.get(bc_server.url + "/v2/health/ready").json() == {"ready": True}
    assert httpx.get(bc_server.url + "/v2").json()["name"] == "shipyard"


def test_model_metadata_comes_from_the_signature(bc_server: RunningServer, registered: Registered) -> None:
    meta = httpx.get(bc_server.url + "/v2/models/bc").json()
    assert meta["name"] == "bc" and meta["versions"] == ["1"]
    assert [i["name"] for i in meta["inputs"]] == list(registered.frame.columns)
    assert {(i["datatype"], tuple(i["shape"])) for i in meta["inputs"]} == {("FP64", (-1,))}
    outputs = {o["name"]: (o["datatype"], o["shape"]) for o in meta["outputs"]}
    assert outputs == {"predict": ("INT64", [-1]), "predict_proba": ("FP64", [-1, 2])}
    assert httpx.get(bc_server.url + "/v2/models/bc/versions/1").json() == meta
    ready = httpx.get(bc_server.url + "/v2/models/bc/versions/1/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True


def test_infer_with_one_tensor_per_column_echoes_the_id(
    bc_server: RunningServer, registered: Registered
) -> None:
    body = {"id": "req-7", "inputs": v2_columns(registered, 3)}
    answer = httpx.post(bc_server.url + "/v2/models/bc/infer", json=body)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["id"] == "req-7" and result["model_name"] == "bc" and result["model_version"] == "1"
    (predict,) = result["outputs"]
    assert predict["name"] == "predict" and predict["shape"] == [3]
    assert predict["data"] == registered.model.predict(registered.frame.iloc[:3]).tolist()


def test_infer_with_one_matrix_and_named_outputs(bc_server: RunningServer, registered: Registered) -> None:
    matrix = rows(registered, 4)
    body = {
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [4, 30], "data": matrix.tolist()}],
        "outputs": [{"name": "predict_proba"}, {"name": "predict"}],
    }
    result = httpx.post(bc_server.url + "/v2/models/bc/versions/1/infer", json=body).json()
    by_name = {o["name"]: o for o in result["outputs"]}
    proba = np.array(by_name["predict_proba"]["data"]).reshape(by_name["predict_proba"]["shape"])
    np.testing.assert_allclose(proba, registered.model.predict_proba(registered.frame.iloc[:4]))


def test_kserve_v1_and_records_endpoints(bc_server: RunningServer, registered: Registered) -> None:
    expected = registered.model.predict(registered.frame.iloc[:2]).tolist()
    v1 = httpx.post(bc_server.url + "/v1/models/bc:predict", json={"instances": rows(registered, 2).tolist()})
    assert v1.status_code == 200 and v1.json() == {"predictions": expected}
    records = registered.frame.iloc[:2].to_dict(orient="records")
    answer = httpx.post(bc_server.url + "/models/bc/predict", json=records)
    assert answer.status_code == 200 and answer.json() == {"predictions": expected}
    wrapped = httpx.post(bc_server.url + "/models/bc/predict", json={"dataframe_records": records})
    assert wrapped.json() == {"predictions": expected}


def test_tritonclient_works_unchanged(bc_server: RunningServer, registered: Registered) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(f"127.0.0.1:{bc_server.port}")
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("bc")
    meta = client.get_model_metadata("bc")
    assert meta["inputs"][0]["name"] == "mean radius"
    for binary in (True, False):
        tensor = triton.InferInput("features", [5, 30], "FP64")
        tensor.set_data_from_numpy(rows(registered, 5), binary_data=binary)
        outputs = [triton.InferRequestedOutput("predict", binary_data=binary)]
        result = client.infer("bc", [tensor], outputs=outputs, request_id="t-1")
        assert result.get_response()["id"] == "t-1"
        np.testing.assert_array_equal(
            result.as_numpy("predict"), registered.model.predict(registered.frame.iloc[:5])
        )
    client.close()


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v2/models/bc/infer", b"{not json", 400, "not valid JSON"),
        ("/v2/models/nope/infer", b"{}", 404, "no model named 'nope'"),
        ("/v2/models/bc/versions/9/infer", b"{}", 404, "no version '9'"),
        (
            "/v2/models/bc/infer",
            json.dumps({"inputs": [{"name": "x", "datatype": "FP64", "shape": [2, 30], "data": [1.0] * 59}]}),
            400,
            "'x'",
        ),
        (
            "/v2/models/bc/infer",
            json.dumps({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 29], "data": [1.0] * 29}]}),
            400,
            "[N, 30]",
        ),
        (
            "/v2/models/bc/infer",
            json.dumps(
                {"inputs": [{"name": "mean radius", "datatype": "BYTES", "shape": [1], "data": ["a"]}]}
            ),
            400,
            "mean radius",
        ),
        ("/v1/models/bc:predict", json.dumps({"rows": []}), 400, "instances"),
        ("/models/bc/predict", b"[" * 100_000, 400, "nested too deeply"),
        ("/models/bc/predict", json.dumps([{"mean radius": [1, 2]}]), 400, "mean radius"),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_problem(
    bc_server: RunningServer, path: str, body: Any, status: int, message: str
) -> None:
    answer = httpx.post(bc_server.url + path, content=body)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]


# ---------------------------------------------------------------------- injected models: failure modes
class _Stub:
    """A model whose predict sleeps, raises or counts: what a real flavor cannot be made to do on cue."""

    flavor = "stub"
    version = None
    signature: Signature | None = None

    def __init__(self, delay_s: float = 0.0, explode: bool = False) -> None:
        self.delay_s, self.explode, self.calls = delay_s, explode, 0
        self.raw = self

    def input_example(self) -> None:
        return None

    def predict(self, data: Any) -> np.ndarray:
        self.calls += 1
        if self.explode:
            raise ZeroDivisionError("the model divided by zero")
        time.sleep(self.delay_s)
        return np.asarray(data)[:, 0] * 2


def start_stubs(
    start_server: Callable[..., RunningServer], registered: Registered, **config: Any
) -> tuple[RunningServer, dict[str, Any]]:
    """A server of three stub models: ``slow`` (0.2 s a predict, a queue of 4), ``boom`` (raises) and
    ``broken`` (fails to load); bodies over 4 KiB refused. ``config``: more ServerConfig fields."""
    models = {"slow": _Stub(delay_s=0.2), "boom": _Stub(explode=True), "broken": OSError("disk on fire")}

    def loader(uri: str) -> Any:
        found = models[uri]
        if isinstance(found, Exception):
            raise found
        return found

    policy = BatchPolicy(max_batch_size=64, max_latency_ms=5, max_queue=4, max_in_flight=1)
    configs = [ModelConfig(name, name, batching=policy) for name in models]
    server_config = ServerConfig(max_body_bytes=4096, workers=2, **config)
    return start_server(configs, registered.settings, server_config, loader), models


@pytest.fixture(scope="module")
def stubs(
    start_server: Callable[..., RunningServer], registered: Registered
) -> tuple[RunningServer, dict[str, Any]]:
    return start_stubs(start_server, registered)


def infer_body(n: int = 1) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "datatype": "FP64", "shape": [n, 2], "data": [1.0, 2.0] * n}]}


def test_a_model_that_fails_to_load_is_not_ready_and_the_rest_serve(stubs: tuple[RunningServer, Any]) -> None:
    server, _ = stubs
    ready = httpx.get(server.url + "/v2/models/broken/ready")
    assert ready.status_code == 503 and "disk on fire" in ready.json()["error"]
    assert httpx.get(server.url + "/v2/health/ready").status_code == 503
    assert httpx.get(server.url + "/v2/health/live").status_code == 200
    infer = httpx.post(server.url + "/v2/models/broken/infer", json=infer_body())
    assert infer.status_code == 503 and "failed to load" in infer.json()["error"]
    assert httpx.post(server.url + "/v2/models/slow/infer", json=infer_body()).status_code == 200


def test_a_model_raising_inside_predict_is_a_500_with_its_message(stubs: tuple[RunningServer, Any]) -> None:
    server, _ = stubs
    answer = httpx.post(server.url + "/v2/models/boom/infer", json=infer_body())
    assert answer.status_code == 500 and "the model divided by zero" in answer.json()["error"]
    assert httpx.post(server.url + "/v2/models/slow/infer", json=infer_body()).status_code == 200


def test_a_body_over_the_limit_is_a_413(stubs: tuple[RunningServer, Any]) -> None:
    server, _ = stubs
    answer = httpx.post(server.url + "/v2/models/slow/infer", json=infer_body(2000))
    assert answer.status_code == 413 and "limit" in answer.json()["error"]


def test_overload_is_a_503_at_once_and_no_accepted_request_is_lost(stubs: tuple[RunningServer, Any]) -> None:
    server, models = stubs

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            calls = [client.post(server.url + "/v2/models/slow/infer", json=infer_body()) for _ in range(20)]
            return await asyncio.gather(*calls)

    answers = asyncio.run(burst())
    codes = sorted(a.status_code for a in answers)
    assert set(codes) == {200, 503} and codes.count(200) >= 2
    for answer in answers:
        if answer.status_code == 503:
            assert answer.headers["retry-after"] == "1" and "retry" in answer.json()["error"]
        else:
            assert answer.json()["outputs"][0]["data"] == [2.0]
    # Merged: the accepted requests took fewer predict calls than there were requests.
    metrics = httpx.get(server.url + "/metrics").text
    assert 'shipyard_requests_total{code="503",model="slow",protocol="v2",version="default"}' in metrics
    assert models["slow"].calls < codes.count(200) + 3


def test_made_up_model_names_share_one_metrics_series(stubs: tuple[RunningServer, Any]) -> None:
    server, _ = stubs
    for i in range(20):
        answer = httpx.post(server.url + f"/v2/models/made-up-{i}/infer", json=infer_body())
        assert answer.status_code == 404 and f"made-up-{i}" in answer.json()["error"]
    metrics = httpx.get(server.url + "/metrics").text
    assert "made-up" not in metrics
    assert 'shipyard_requests_total{code="404",model="",protocol="v2",version=""} 20.0' in metrics


def test_shutdown_finishes_requests_in_flight(
    registered: Registered, start_server: Callable[..., RunningServer]
) -> None:
    import threading

    slow = _Stub(delay_s=0.6)
    policy = BatchPolicy(max_in_flight=1)
    server = start_server(
        [ModelConfig("slow", "slow", batching=policy)], registered.settings, loader=lambda uri: slow
    )
    answers: list[httpx.Response] = []

    def call() -> None:
        answers.append(httpx.post(server.url + "/v2/models/slow/infer", json=infer_body(), timeout=30))

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 10
    while slow.calls == 0 and time.monotonic() < deadline:  # the request is in predict now
        time.sleep(0.01)
    assert server.uvicorn is not None
    server.uvicorn.should_exit = True  # what SIGTERM does
    caller.join(30)
    assert [a.status_code for a in answers] == [200]
    assert answers[0].json()["outputs"][0]["data"] == [2.0]
