"""OIP v2 over gRPC beside REST: the official tritonclient against a real server, errors as status codes,
routing, metrics and payload logs shared with REST."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest

from shipyard.payloads import read_payloads
from shipyard.serving.app import ServerConfig
from tests.serving.conftest import Registered, RunningServer, rows
from tests.serving.test_server import start_stubs
from tests.serving.test_traffic import start_versions

grpc = pytest.importorskip("grpc", reason="grpcio is the grpc extra: pip install 'shipyard[grpc]'")
tritongrpc = pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is a dev dependency")
from shipyard.serving import grpc_messages as messages  # noqa: E402


def _port(server: RunningServer) -> int:
    assert server.server.grpc is not None and server.server.grpc.port
    return server.server.grpc.port


@pytest.fixture(scope="module")
def served(
    registered: Registered,
    start_server: Callable[..., RunningServer],
    tmp_path_factory: pytest.TempPathFactory,
) -> RunningServer:
    """``bc`` as champion (all traffic) and challenger, every request payload-logged, gRPC on."""
    traffic = {"champion": 100.0}
    return start_versions(start_server, registered, tmp_path_factory, traffic, ServerConfig(grpc_port=0))


@pytest.fixture()
def client(served: RunningServer) -> Any:
    with tritongrpc.InferenceServerClient(f"127.0.0.1:{_port(served)}") as found:
        yield found


def _input(x: np.ndarray, name: str = "input", datatype: str = "FP64") -> Any:
    tensor = tritongrpc.InferInput(name, list(x.shape), datatype)
    tensor.set_data_from_numpy(x)
    return tensor


def test_tritonclient_health_and_metadata(client: Any, registered: Registered) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("bc") and client.is_model_ready("bc", "challenger")
    assert client.get_server_metadata().name == "shipyard"
    metadata = client.get_model_metadata("bc", as_json=True)
    assert metadata["name"] == "bc" and metadata["platform"].startswith("shipyard_")
    assert [i["name"] for i in metadata["inputs"]] == list(registered.frame.columns)
    assert {o["name"]: o["datatype"] for o in metadata["outputs"]} == {
        "predict": "INT64",
        "predict_proba": "FP64",
    }
    assert sorted(metadata["versions"]) == ["1", "2"]  # unpinned: every version served
    assert client.get_model_metadata("bc", "challenger", as_json=True)["versions"] == ["2"]


def test_tritonclient_infer_gives_the_models_predictions(client: Any, registered: Registered) -> None:
    x = rows(registered, 7)
    answer = client.infer("bc", [_input(x)], request_id="grpc-1")
    np.testing.assert_array_equal(answer.as_numpy("predict"), registered.model.predict(registered.frame[:7]))
    assert answer.get_response().id == "grpc-1" and answer.get_response().model_version == "1"
    wanted = [tritongrpc.InferRequestedOutput("predict_proba")]
    proba = client.infer("bc", [_input(x)], outputs=wanted).as_numpy("predict_proba")
    np.testing.assert_allclose(proba, registered.model.predict_proba(registered.frame[:7]))
    # One FP32 tensor per column, as some clients send a dataframe model's inputs.
    columns = [
        _input(x[:, i].astype(np.float32), name, "FP32") for i, name in enumerate(registered.frame.columns)
    ]
    by_column = client.infer("bc", columns).as_numpy("predict")
    assert by_column.shape == (7,)


def test_asyncio_tritonclient_many_calls_at_once(served: RunningServer, registered: Registered) -> None:
    import tritonclient.grpc.aio as aio_client

    x = rows(registered, 1)
    expected = registered.model.predict(registered.frame[:1])

    async def burst() -> list[Any]:
        async with aio_client.InferenceServerClient(f"127.0.0.1:{_port(served)}") as aclient:
            return await asyncio.gather(*(aclient.infer("bc", [_input(x)]) for _ in range(64)))

    answers = asyncio.run(burst())
    assert all(np.array_equal(a.as_numpy("predict"), expected) for a in answers)


def _call(server: RunningServer, method: str, request: Any, **kwargs: Any) -> tuple[Any, Any]:
    request_class, response_class = messages.METHODS[method]
    with grpc.insecure_channel(f"127.0.0.1:{_port(server)}") as channel:
        stub = channel.unary_unary(
            f"/{messages.SERVICE}/{method}",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        return stub.with_call(request, timeout=30, **kwargs)


def _typed_request(x: np.ndarray, **fields: Any) -> Any:
    request = messages.ModelInferRequest(model_name="bc", **fields)
    tensor = request.inputs.add(name="x", datatype="FP64", shape=list(x.shape))
    tensor.contents.fp64_contents.extend(x.ravel().tolist())
    return request


def test_typed_contents_get_a_typed_answer_and_metadata_says_who_answered(
    served: RunningServer, registered: Registered
) -> None:
    x = rows(registered, 3)
    response, call = _call(served, "ModelInfer", _typed_request(x), metadata=(("x-request-id", "mine-7"),))
    assert not response.raw_output_contents
    assert (
        list(response.outputs[0].contents.int64_contents)
        == registered.model.predict(registered.frame[:3]).tolist()
    )
    trailing = dict(call.trailing_metadata())
    assert trailing["x-shipyard-version"] == "champion" and trailing["x-request-id"] == "mine-7"
    # A pin by metadata, as REST's X-Shipyard-Version header, and by model_version.
    _, call = _call(served, "ModelInfer", _typed_request(x), metadata=(("x-shipyard-version", "challenger"),))
    assert dict(call.trailing_metadata())["x-shipyard-version"] == "challenger"
    response, _ = _call(served, "ModelInfer", _typed_request(x, model_version="2"))
    assert response.model_version == "2"


def test_traffic_weights_shadow_metrics_and_payload_logs_are_shared_with_rest(
    served: RunningServer, registered: Registered
) -> None:
    changed = httpx.put(
        served.url + "/admin/deployments/bc/traffic",
        json={"traffic": {"champion": 50, "challenger": 50}, "shadow": None},
    )
    assert changed.status_code == 200
    try:
        x = rows(registered, 1)
        labels: Counter[str] = Counter()
        for _ in range(60):
            _, call = _call(served, "ModelInfer", _typed_request(x, id="split"))
            labels[dict(call.trailing_metadata())["x-shipyard-version"]] += 1
        assert set(labels) == {"champion", "challenger"} and min(labels.values()) >= 10
        shadowed = {"traffic": {"champion": 100}, "shadow": "challenger"}
        assert httpx.put(served.url + "/admin/deployments/bc/traffic", json=shadowed).status_code == 200
        _, call = _call(served, "ModelInfer", _typed_request(x, id="shadowed"))
        assert dict(call.trailing_metadata())["x-shipyard-version"] == "champion"
    finally:
        httpx.put(served.url + "/admin/deployments/bc/traffic", json={"traffic": {"champion": 100}})
    metrics = httpx.get(served.url + "/metrics").text
    assert 'code="OK",model="bc",protocol="grpc"' in metrics
    payloads = served.server.payloads
    assert payloads is not None
    deadline = time.monotonic() + 20
    while True:  # the shadow's call ends after the answer: wait for its record
        payloads.flush()
        frame = read_payloads(payloads.store, "bc")
        frame = frame[frame["protocol"] == "grpc"]
        shadow = frame[frame["request_id"] == "shadowed"]
        if len(shadow) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert (frame["request_id"] == "split").sum() == 60
    assert sorted(zip(shadow["label"], shadow["shadow"], strict=True)) == [
        ("challenger", True),
        ("champion", False),
    ]


@pytest.mark.parametrize(
    ("mutate", "code", "words"),
    [
        (
            lambda r: r.inputs[0].shape.__setitem__(0, 4),
            "INVALID_ARGUMENT",
            "input 'x': contents.fp64_contents",
        ),
        (lambda r: setattr(r, "model_name", "ghost"), "NOT_FOUND", "'ghost'"),
        (lambda r: setattr(r, "model_version", "9"), "NOT_FOUND", "'9'"),
        (lambda r: r.inputs[0].__setattr__("datatype", "fp64"), "INVALID_ARGUMENT", "upper case"),
        (lambda r: r.raw_input_contents.append(b"\0" * 8), "INVALID_ARGUMENT", "has contents"),
        (lambda r: r.inputs.add(name="x", datatype="FP64", shape=[1]), "INVALID_ARGUMENT", "unique"),
    ],
    ids=["count", "model", "version", "datatype", "raw-and-typed", "duplicate"],
)
def test_bad_requests_get_the_status_code_naming_the_problem(
    served: RunningServer, registered: Registered, mutate: Callable[[Any], None], code: str, words: str
) -> None:
    request = _typed_request(rows(registered, 3))
    mutate(request)
    with pytest.raises(grpc.RpcError) as raised:
        _call(served, "ModelInfer", request)
    assert raised.value.code().name == code and words in raised.value.details()


def test_tritonclient_with_a_mismatched_tensor_size_is_invalid_argument(
    client: Any, registered: Registered
) -> None:
    from tritonclient.utils import InferenceServerException

    tensor = _input(rows(registered, 2))
    tensor.set_shape([3, 30])  # the data holds two rows
    with pytest.raises(InferenceServerException) as raised:
        client.infer("bc", [tensor])
    assert "INVALID_ARGUMENT" in str(raised.value.status())
    assert "input 'input'" in raised.value.message() and "480 bytes" in raised.value.message()


def test_garbage_is_not_a_model_infer_request(served: RunningServer) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{_port(served)}") as channel:
        stub = channel.unary_unary(f"/{messages.SERVICE}/ModelInfer")
        with pytest.raises(grpc.RpcError) as raised:
            stub(b"\xff\xff\xff\xff not protobuf", timeout=30)
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "not a ModelInferRequest" in raised.value.details()


# ---------------------------------------------------------------------- failure modes, on stub models
@pytest.fixture(scope="module")
def stub_server(start_server: Callable[..., RunningServer], registered: Registered) -> RunningServer:
    return start_stubs(start_server, registered, grpc_port=0)[0]


def _stub_request(model: str, n: int = 1) -> Any:
    request = messages.ModelInferRequest(model_name=model)
    request.inputs.add(name="x", datatype="FP64", shape=[n, 2]).contents.fp64_contents.extend([1.0, 2.0] * n)
    return request


def test_not_loaded_is_unavailable_raising_is_internal_and_too_large_is_resource_exhausted(
    stub_server: RunningServer,
) -> None:
    ready, _ = _call(stub_server, "ModelReady", messages.ModelReadyRequest(name="broken"))
    assert ready.ready is False
    assert _call(stub_server, "ServerReady", messages.ServerReadyRequest())[0].ready is False
    for model, code, words in [
        ("broken", grpc.StatusCode.UNAVAILABLE, "failed to load"),
        ("boom", grpc.StatusCode.INTERNAL, "the model divided by zero"),
        ("slow", grpc.StatusCode.RESOURCE_EXHAUSTED, ""),  # 2,000 rows: over the 4 KiB limit
    ]:
        with pytest.raises(grpc.RpcError) as raised:
            _call(stub_server, "ModelInfer", _stub_request(model, 2000 if model == "slow" else 1))
        assert raised.value.code() is code and words in (raised.value.details() or "")
    answer, _ = _call(stub_server, "ModelInfer", _stub_request("slow"))
    assert list(answer.outputs[0].contents.fp64_contents) == [2.0]


def test_overload_is_resource_exhausted_at_once_and_accepted_calls_answer(stub_server: RunningServer) -> None:
    async def burst() -> list[Any]:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{_port(stub_server)}") as channel:
            stub = channel.unary_unary(
                f"/{messages.SERVICE}/ModelInfer",
                request_serializer=messages.ModelInferRequest.SerializeToString,
                response_deserializer=messages.ModelInferResponse.FromString,
            )
            calls = [stub(_stub_request("slow"), timeout=30) for _ in range(20)]
            return await asyncio.gather(*calls, return_exceptions=True)

    answers = asyncio.run(burst())
    refused = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
    accepted = [a for a in answers if not isinstance(a, Exception)]
    assert len(refused) + len(accepted) == 20 and refused and len(accepted) >= 2
    assert all(r.code() is grpc.StatusCode.RESOURCE_EXHAUSTED and "retry" in r.details() for r in refused)
    assert all(list(a.outputs[0].contents.fp64_contents) == [2.0] for a in accepted)


# ---------------------------------------------------------------------- shipyard serve --grpc-port
def test_shipyard_serve_grpc_port_serves_tritonclient_until_sigterm(registered: Registered) -> None:
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import free_port
    from tests.serving.test_serve_cli import wait_ready

    port, grpc_port = free_port(), free_port()
    command = ["serve", "models:/bc@champion", "--port", str(port), "--grpc-port", str(grpc_port)]
    command += ["--prefer", "native"]  # scikit-learn itself, not the ONNX copy served by default
    proc = subprocess.Popen(
        [sys.executable, "-m", "shipyard.cli", *command],
        env={**os.environ, "SHIPYARD_HOME": str(registered.settings.home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc)
        with tritongrpc.InferenceServerClient(f"127.0.0.1:{grpc_port}") as client:
            assert client.is_model_ready("bc")
            outputs = client.get_model_metadata("bc", as_json=True)["outputs"]
            assert {o["name"]: o["datatype"] for o in outputs}["predict_proba"] == "FP64"
            answer = client.infer("bc", [_input(rows(registered, 4))], request_id="cli-1")
        expected = registered.model.predict(registered.frame[:4])
        np.testing.assert_array_equal(answer.as_numpy("predict"), expected)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0
    logged = (proc.stderr.read() if proc.stderr else b"").decode()
    access = [line for line in logged.splitlines() if "shipyard.serving.access" in line]
    assert len(access) == 1 and '"status": "OK"' in access[0] and '"request_id": "cli-1"' in access[0]


def test_shipyard_serve_refuses_one_port_for_both(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.cli.test_cli import run_cli

    code, _, err = run_cli(capsys, "serve", "models:/bc@champion", "--port", "8123", "--grpc-port", "8123")
    assert code == 2 and "--grpc-port 8123 is also the REST --port" in err and err.count("\n") == 1
