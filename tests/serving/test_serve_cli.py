"""``shipyard serve`` as a user runs it: a subprocess serving a registered model until SIGTERM."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from shipyard.serving.deployment import load_deployment
from tests.cli.test_cli import run_cli
from tests.conftest import free_port
from tests.serving.conftest import Registered


def wait_ready(
    url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60, verify: ssl.SSLContext | bool = True
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "server exited"
        try:
            if httpx.get(url + "/v2/health/ready", timeout=1, verify=verify).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("the server did not become ready")


def test_serve_a_registered_model_then_stop_gracefully(registered: Registered, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "SHIPYARD_HOME": str(registered.settings.home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "shipyard.cli", "serve", "models:/bc@champion", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        records = registered.frame.iloc[:3].to_dict(orient="records")
        answer = httpx.post(url + "/models/bc/predict", json=records)
        assert answer.json() == {"predictions": registered.model.predict(registered.frame.iloc[:3]).tolist()}
        # The verified ONNX copy serves by default (its probabilities are FP32, scikit-learn's FP64).
        outputs = httpx.get(url + "/v2/models/bc").json()["outputs"]
        assert {o["name"]: o["datatype"] for o in outputs}["predict_proba"] == "FP32"
        assert "shipyard_requests_total" in httpx.get(url + "/metrics").text
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0
    logged = (proc.stderr.read() if proc.stderr else b"").decode()
    assert "ready in" in logged
    access = [line for line in logged.splitlines() if "shipyard.serving.access" in line]
    assert len(access) == 1 and '"path": "/models/bc/predict", "status": 200' in access[0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("models: []\n", "models"),
        ("models:\n  - uri: models:/bc@champion\n    batching: {max_batch_size: 0}\n", "models.0.batching"),
        ("models:\n  - uri: models:/bc@champion\n    colour: red\n", "colour"),
        ("models: [unclosed\n", "not valid YAML at line 2"),
        ("models:\n  - uri: models:/bc/1\n    versions: {a: models:/bc/2}\n", "either uri or versions"),
        ("models:\n  - versions: {a: models:/bc@champion}\n    traffic: {b: 1}\n", "no version 'b'"),
        ("payload_log: {sample_rate: 2}\nmodels:\n  - uri: models:/bc/1\n", "payload_log.sample_rate"),
        ("server: {grpc_port: 70000}\nmodels:\n  - uri: models:/bc/1\n", "server.grpc_port"),
    ],
)
def test_a_bad_deploy_file_is_one_line_naming_the_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text(content)
    code, _, err = run_cli(capsys, "serve", str(path))
    assert code == 2 and message in err and err.count("\n") == 1


def test_serve_a_deploy_file_with_versions_and_loader_options(registered: Registered, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    deploy = tmp_path / "deploy.yaml"
    deploy.write_text(
        "models:\n"
        "  - name: bc\n"
        "    versions: {champion: 'models:/bc@champion', challenger: 'models:/bc@challenger'}\n"
        "    traffic: {champion: 100}\n"
        "    options: {prefer: onnx}\n"
    )
    port = free_port()
    env = {**os.environ, "SHIPYARD_HOME": str(registered.settings.home)}
    command = [
        sys.executable,
        "-m",
        "shipyard.cli",
        "serve",
        str(deploy),
        "--port",
        str(port),
        "--no-access-log",
    ]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        status = httpx.get(url + "/admin/deployments").json()["deployments"][0]
        assert [(v["label"], v["state"]) for v in status["versions"]] == [
            ("champion", "ready"),
            ("challenger", "ready"),
        ]
        records = registered.frame.iloc[:5].to_dict(orient="records")
        answer = httpx.post(url + "/models/bc/predict", json=records)
        assert answer.headers["x-shipyard-version"] == "champion"
        assert answer.json() == {"predictions": registered.model.predict(registered.frame.iloc[:5]).tolist()}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_serve_answers_allowed_host_names_and_believes_only_the_proxies_named(
    registered: Registered, tmp_path: Path
) -> None:
    port = free_port()
    env = {**os.environ, "SHIPYARD_HOME": str(registered.settings.home), "FORWARDED_ALLOW_IPS": "*"}
    command = [sys.executable, "-m", "shipyard.cli", "serve", "models:/bc@champion", "--port", str(port)]
    command += ["--allowed-hosts", "models.internal,api.internal", "--forwarded-allow-ips", "127.0.0.1"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        for host, status in (("models.internal", 200), ("api.internal", 200), ("rebound.example", 400)):
            assert (
                httpx.get(url + "/v2/health/live", headers={"Host": f"{host}:{port}"}).status_code == status
            )
        records = registered.frame.iloc[:1].to_dict(orient="records")
        forwarded = {"X-Forwarded-For": "10.9.8.7"}
        assert httpx.post(url + "/models/bc/predict", json=records, headers=forwarded).status_code == 200
        assert httpx.get(url + "/admin/deployments", headers=forwarded).status_code == 403
        assert httpx.get(url + "/admin/deployments").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    logged = (proc.stderr.read() if proc.stderr else b"").decode()
    assert '"client": "10.9.8.7"' in logged  # the trusted proxy's word on the client, in the access log


def test_a_deploy_file_sets_the_server_limits_and_names(tmp_path: Path) -> None:
    deploy = tmp_path / "deploy.yaml"
    deploy.write_text(
        "server: {allowed_hosts: [models.internal], forwarded_allow_ips: '10.0.0.5', header_timeout_s: 5,\n"
        "         body_timeout_s: 20, max_connections: 200, grpc_port: 8081}\n"
        "models:\n  - uri: models:/bc/1\n"
    )
    config = load_deployment(deploy).server_config()
    assert config.allowed_hosts == ("models.internal",) and config.forwarded_allow_ips == "10.0.0.5"
    assert (config.header_timeout_s, config.body_timeout_s, config.max_connections) == (5, 20, 200)
    assert config.grpc_port == 8081
