"""`shipyard serve` over TLS: HTTPS and gRPC with TLS from one certificate, plaintext refused on both, and
bad certificate settings refused before anything starts, naming the flag and the file."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from shipyard.errors import InvalidInput
from shipyard.serving.app import ServerConfig
from shipyard.serving.deployment import load_deployment
from shipyard.serving.repository import ModelConfig
from shipyard.serving.server import read_tls
from tests.conftest import free_port, self_signed_certificate
from tests.serving.conftest import Registered, RunningServer, rows
from tests.serving.test_serve_cli import wait_ready

grpc = pytest.importorskip("grpc", reason="grpcio is the grpc extra: pip install 'shipyard[grpc]'")
tritongrpc = pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is a dev dependency")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def secured(
    registered: Registered, start_server: Callable[..., RunningServer], certificate: tuple[Path, Path]
) -> RunningServer:
    cert, key = certificate
    config = ServerConfig(grpc_port=0, ssl_certfile=str(cert), ssl_keyfile=str(key))
    return start_server([ModelConfig("bc", "models:/bc@champion")], registered.settings, config)


def _input(x: np.ndarray) -> object:
    tensor = tritongrpc.InferInput("input", list(x.shape), "FP64")
    tensor.set_data_from_numpy(x)
    return tensor


def test_rest_answers_https_only(
    secured: RunningServer, registered: Registered, certificate: tuple[Path, Path]
) -> None:
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    url = f"https://127.0.0.1:{secured.port}"
    x = rows(registered, 3)
    body = {
        "inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP64", "data": x.ravel().tolist()}]
    }
    with httpx.Client(verify=trust) as client:
        assert client.get(f"{url}/v2/health/ready").status_code == 200
        answer = client.post(f"{url}/v2/models/bc/infer", json=body)
    assert answer.status_code == 200
    assert answer.json()["outputs"][0]["data"] == registered.model.predict(registered.frame[:3]).tolist()
    with pytest.raises(httpx.TransportError):  # plain HTTP on the TLS port gets no answer
        httpx.get(f"http://127.0.0.1:{secured.port}/v2/health/ready", timeout=5)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):  # not trusted: refused
        httpx.get(f"{url}/v2/health/ready", timeout=5)


def test_grpc_takes_tls_only(
    secured: RunningServer, registered: Registered, certificate: tuple[Path, Path]
) -> None:
    assert secured.server.grpc is not None and secured.server.grpc.port
    target = f"localhost:{secured.server.grpc.port}"
    root = str(certificate[0])
    with tritongrpc.InferenceServerClient(target, ssl=True, root_certificates=root) as client:
        assert client.is_model_ready("bc")
        answer = client.infer("bc", [_input(rows(registered, 4))])
    np.testing.assert_array_equal(answer.as_numpy("predict"), registered.model.predict(registered.frame[:4]))
    plaintext = tritongrpc.InferenceServerClient(target)  # no TLS: the server does not answer it
    with plaintext, pytest.raises(tritongrpc.InferenceServerException, match="(?i)unavailable"):
        plaintext.is_server_live(client_timeout=5)


def test_bad_certificate_settings_are_refused_by_name(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    assert read_tls(None, None) is None
    assert read_tls(str(cert), str(key)) == (cert.read_bytes(), key.read_bytes())
    with pytest.raises(InvalidInput, match="--ssl-certfile and --ssl-keyfile go together"):
        read_tls(str(cert), None)
    with pytest.raises(InvalidInput, match=f"--ssl-keyfile {tmp_path}/missing.pem: No such file"):
        read_tls(str(cert), str(tmp_path / "missing.pem"))
    _, other_key = self_signed_certificate(tmp_path, "other")
    with pytest.raises(InvalidInput, match=f"--ssl-keyfile {other_key} and --ssl-certfile {cert} are not"):
        read_tls(str(cert), str(other_key))
    with pytest.raises(InvalidInput, match="are not a PEM key and its certificate"):
        read_tls(str(key), str(cert))  # swapped


def test_deploy_yaml_names_the_pair_relative_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "deploy" / "deploy.yaml"
    path.parent.mkdir()
    path.write_text(
        "models: [{uri: models:/bc@champion}]\n"
        "server: {ssl_certfile: tls/cert.pem, ssl_keyfile: /etc/shipyard/key.pem}\n",
        encoding="utf-8",
    )
    config = load_deployment(path).server_config()
    assert config.ssl_certfile == str(path.parent / "tls" / "cert.pem")  # found from the file, as its models
    assert config.ssl_keyfile == "/etc/shipyard/key.pem"
    plain = tmp_path / "plain.yaml"
    plain.write_text("models: [{uri: models:/bc@champion}]\n", encoding="utf-8")
    assert load_deployment(plain).server_config().ssl_certfile is None


def test_shipyard_serve_refuses_a_lone_certificate_in_one_line(
    registered: Registered, certificate: tuple[Path, Path]
) -> None:
    command = ["serve", "models:/bc@champion", "--ssl-certfile", str(certificate[0])]
    done = subprocess.run(
        [sys.executable, "-m", "shipyard.cli", *command],
        env={**os.environ, "SHIPYARD_HOME": str(registered.settings.home)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["error: --ssl-certfile and --ssl-keyfile go together"]


def test_shipyard_serve_with_a_certificate_serves_https_until_sigterm(
    registered: Registered, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    port = free_port()
    command = ["serve", "models:/bc@champion", "--port", str(port), "--prefer", "native"]
    command += ["--ssl-certfile", str(cert), "--ssl-keyfile", str(key), "--no-access-log", "--heartbeat", "0"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "shipyard.cli", *command],
        env={**os.environ, "SHIPYARD_HOME": str(registered.settings.home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_ready(f"https://127.0.0.1:{port}", proc, verify=ssl.create_default_context(cafile=str(cert)))
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0
