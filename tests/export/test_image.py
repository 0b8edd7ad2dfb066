"""`shipyard build`: the build context's files, its refusals, the engine search, and (slow) the context's
requirements installed into a fresh venv with its CMD serving the model from the context folder alone."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.errors import InvalidInput, ShipyardError
from shipyard.export.image import DEFAULT_BASE_IMAGE, build_image, find_engine, write_build_context
from shipyard.registry.package import MANIFEST
from shipyard.serving.deployment import load_deployment
from tests.cli.test_cli import run_cli
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def iris() -> tuple[pd.DataFrame, LogisticRegression]:
    """A logistic regression on iris, registered as ``iris`` version 1 with alias ``champion``."""
    data = load_iris(as_frame=True)
    frame = data.frame.drop(columns=["target"])
    model = LogisticRegression(max_iter=500).fit(frame, data.target)
    with shipyard.start_run("build") as run:
        info = shipyard.models.log(model, "model", run=run, input_example=frame.head(5))
    shipyard.models.register(info.uri, "iris")
    shipyard.models.set_alias("iris", "champion", 1)
    return frame, model


def _dockerfile(context: Path) -> str:
    # Continuation lines joined, as the engine reads them.
    return (context / "Dockerfile").read_text().replace("\\\n", " ")


def test_the_context_pins_the_base_runs_as_a_user_and_labels_the_model(
    iris: tuple[pd.DataFrame, LogisticRegression], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ctx"
    code, stdout, err = run_cli(capsys, "build", "models:/iris@champion", "-o", str(out))
    assert code == 0, err
    assert "shipyard/iris:1" in stdout
    version = shipyard.models.get("models:/iris/1")
    dockerfile = _dockerfile(out)
    assert f"ARG BASE_IMAGE={DEFAULT_BASE_IMAGE}\nFROM ${{BASE_IMAGE}}" in dockerfile
    assert re.search(r"^USER 10001:10001$", dockerfile, re.M)
    assert dockerfile.index("USER 10001") < dockerfile.index("CMD [")
    assert re.search(r"^EXPOSE 8080 8081$", dockerfile, re.M)
    assert "HEALTHCHECK" in dockerfile and "/v2/health/ready" in dockerfile
    labels = dict(re.findall(r'([a-z.-]+\.[a-z0-9.-]+)="([^"]*)"', dockerfile.split("\nLABEL ", 1)[1]))
    assert labels["io.shipyard.model.uri"] == "models:/iris@champion"
    assert labels["io.shipyard.model.version"] == labels["org.opencontainers.image.version"] == "1"
    assert labels["io.shipyard.model.manifest-sha256"] == version.manifest_sha256
    assert labels["org.opencontainers.image.base.name"] == DEFAULT_BASE_IMAGE
    assert json.loads(dockerfile.rsplit("CMD ", 1)[1]) == [
        "shipyard", "serve", "deploy.yaml", "--host", "0.0.0.0", "--port", "8080"
    ]  # fmt: skip
    # The package as registered: MODEL.yaml is the recorded one, every file matches it, all readable.
    model = out / "model"
    assert hashlib.sha256((model / MANIFEST).read_bytes()).hexdigest() == version.manifest_sha256
    listed = yaml.safe_load((model / MANIFEST).read_text())["files"]
    for entry in listed:
        path = model / entry["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE(model.stat().st_mode) == 0o755
    # Only the model's pins (Shipyard comes from SHIPYARD_SPEC), as PEP 508 lines.
    pins = [line for line in (out / "requirements.txt").read_text().splitlines() if not line.startswith("#")]
    assert pins and all("==" in p for p in pins) and not any(p.startswith("shipyard") for p in pins)
    assert any(p.startswith("scikit-learn==") for p in pins)
    assert 'ARG SHIPYARD_SPEC="shipyard[serving]==' in dockerfile
    # The engine is sent only what the Dockerfile copies.
    assert (out / ".dockerignore").read_text().splitlines()[0] == "*"
    # deploy.yaml serves the copied package, found from the file wherever the server starts.
    deployment = load_deployment(out / "deploy.yaml")
    assert deployment.models[0].name == "iris" and deployment.models[0].uri == str(out / "model")
    assert deployment.server.grpc_port == 8081
    assert json.loads((out / "build.json").read_text())["manifest_sha256"] == version.manifest_sha256


def test_refusals_name_the_bad_option(
    iris: tuple[pd.DataFrame, LogisticRegression], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ctx"
    code, _, err = run_cli(
        capsys, "build", "models:/iris@champion", "-o", str(out), "--base-image", "python:3.11"
    )
    assert code == 2 and "--base-image 'python:3.11' is not pinned by digest" in err
    assert not out.exists()
    code, _, err = run_cli(capsys, "build", "models:/iris@champion", "-o", str(out), "--tag", "Bad Tag")
    assert code == 2 and "--tag 'Bad Tag'" in err
    code, _, err = run_cli(capsys, "build", "models:/iris@champion", "-o", str(out), "--name", "../x")
    assert code == 2 and "--name '../x'" in err
    code, _, err = run_cli(capsys, "build", "models:/iris@nope", "-o", str(out))
    assert code == 3 and "nope" in err
    assert not out.exists()  # nothing is written for a model that is not there
    assert run_cli(capsys, "build", "models:/iris@champion", "-o", str(out))[0] == 0
    code, _, err = run_cli(capsys, "build", "models:/iris@champion", "-o", str(out))
    assert code == 2 and "is not empty; give --force" in err
    assert run_cli(capsys, "build", "models:/iris/1", "-o", str(out), "--force")[0] == 0
    assert 'io.shipyard.model.uri="models:/iris/1"' in (out / "Dockerfile").read_text()
    # --force replaces a build context, never someone's other files.
    (out / "notes.txt").write_text("mine")
    code, _, err = run_cli(capsys, "build", "models:/iris@champion", "-o", str(out), "--force")
    assert code == 2 and "'notes.txt'" in err
    assert (out / "notes.txt").read_text() == "mine" and (out / "Dockerfile").exists()
    code, _, err = run_cli(
        capsys, "build", "models:/iris@champion", "-o", str(tmp_path / "c2"), "--shipyard", "numpy"
    )
    assert code == 2 and "does not install Shipyard" in err


@pytest.mark.parametrize(
    ("requirement", "problem"),
    [
        ("--index-url http://attacker.example/simple", "not a PEP 508 requirement"),
        ("scikit-learn==1.5; --extra-index-url http://x", "not a PEP 508 requirement"),
        ("evil @ https://attacker.example/evil.tar.gz", "with a URL"),
    ],
)
def test_a_package_requirement_that_would_reach_pip_as_an_option_or_url_is_refused(
    requirement: str, problem: str, tmp_path: Path
) -> None:
    data = load_iris(as_frame=True)
    model = LogisticRegression(max_iter=500).fit(data.data, data.target)
    with shipyard.start_run("build") as run:
        info = shipyard.models.log(model, "model", run=run, requirements=["numpy==2.0.0", requirement])
    # A build context already there (--force) is left as it was: the refusal comes before any change.
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("the previous build")
    with pytest.raises(InvalidInput, match=problem) as caught:
        write_build_context(info.uri, tmp_path / "ctx", shipyard.models.registry_client(), force=True)
    assert repr(requirement) in str(caught.value)
    assert not (tmp_path / "ctx" / "requirements.txt").exists()
    assert (tmp_path / "ctx" / "Dockerfile").read_text() == "the previous build"


def test_no_engine_says_which_were_looked_for_and_why(
    iris: tuple[pd.DataFrame, LogisticRegression], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = write_build_context(
        "models:/iris@champion", tmp_path / "ctx", shipyard.models.registry_client()
    )
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert find_engine() == (
        None,
        ["docker: not installed", "podman: not installed", "buildah: not installed"],
    )
    with pytest.raises(ShipyardError, match="no container engine can build here") as caught:
        build_image(context)
    assert "docker build -t shipyard/iris:1" in str(caught.value)
    # A docker client whose daemon does not answer cannot build: it says so rather than failing later.
    docker = empty / "docker"
    docker.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    docker.chmod(0o755)
    assert (
        find_engine()[1][0] == "docker: installed, but it cannot build (Cannot connect to the Docker daemon)"
    )


def test_an_engine_builds_the_context_with_its_tag(
    iris: tuple[pd.DataFrame, LogisticRegression], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No engine runs on this machine: a stand-in podman records the command line it is given.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "podman-args"
    podman = bin_dir / "podman"
    podman.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> {record}\n')
    podman.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    context = write_build_context(
        "models:/iris@champion",
        tmp_path / "ctx",
        shipyard.models.registry_client(),
        tag="reg.example:5000/ml/iris:1",
    )
    assert build_image(context) == "podman"
    calls = record.read_text().splitlines()
    assert calls[0] == "--version"  # the probe
    assert calls[1:] == [
        "build", "--tag", "reg.example:5000/ml/iris:1", "--file", str(tmp_path / "ctx" / "Dockerfile"),
        str(tmp_path / "ctx"),
    ]  # fmt: skip


@pytest.mark.slow(seconds=90)
def test_the_context_installs_into_a_fresh_venv_and_its_cmd_serves_the_model(
    iris: tuple[pd.DataFrame, LogisticRegression], tmp_path: Path
) -> None:
    frame, model = iris
    out = tmp_path / "ctx"
    # The image installs Shipyard from this checkout, built into a wheel in the context.
    write_build_context("models:/iris@champion", out, shipyard.models.registry_client(), shipyard=str(REPO))
    dockerfile = _dockerfile(out)
    spec = re.search(r'^ARG SHIPYARD_SPEC="([^"]+)"$', dockerfile, re.M).group(1)
    assert spec.startswith("./wheels/shipyard-") and spec.endswith(".whl[serving]")
    install = re.search(r"^RUN (pip install .*)$", dockerfile, re.M).group(1)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # The Dockerfile's install line, as its shell would run it, in the context folder.
    words = [w.replace("${SHIPYARD_SPEC}", spec) for w in shlex.split(install)]
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", *words, "--disable-pip-version-check", "-q"],
        cwd=out, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    # Its CMD, from the context folder alone, on free loopback ports (the image binds 0.0.0.0:8080/8081).
    command = json.loads(dockerfile.rsplit("CMD ", 1)[1])
    port, grpc_port = free_port(), free_port()
    command = [str(venv / "bin" / command[0]), *command[1:]]
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(port)
    deploy = out / "deploy.yaml"
    deploy.write_text(deploy.read_text().replace("grpc_port: 8081", f"grpc_port: {grpc_port}"))
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "SHIPYARD_HOME": str(tmp_path / "home"),
        "HOME": str(tmp_path),
    }
    server = subprocess.Popen(command, cwd=out, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read().decode()[-3000:]
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the context's CMD never became ready"
            time.sleep(0.5)
        rows = frame.head(4)
        body = {
            "inputs": [
                {"name": c, "shape": [4], "datatype": "FP64", "data": rows[c].tolist()} for c in rows.columns
            ]
        }
        answer = httpx.post(f"{url}/v2/models/iris/infer", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["outputs"][0]["data"] == model.predict(rows).tolist()
        # The image's HEALTHCHECK, with the port it would have.
        probe = json.loads(dockerfile.split("HEALTHCHECK", 1)[1].split("CMD ", 1)[1].splitlines()[0])
        assert probe[:2] == ["python", "-c"]
        healthy = subprocess.run(
            [str(venv / "bin" / "python"), "-c", probe[2].replace(":8080/", f":{port}/")], timeout=30, env=env
        )
        assert healthy.returncode == 0
        # gRPC answers beside REST.
        import tritonclient.grpc as grpcclient

        client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        assert client.is_server_ready() and client.is_model_ready("iris")
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert not os.path.exists(out / "home")  # the server wrote nothing into the context
