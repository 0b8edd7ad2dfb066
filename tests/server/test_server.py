"""``shipyard server`` as a user runs it: a real server process, scripts and the CLI in team mode, the error
shape, and the loopback rule while the server has no authentication."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import console, free_port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with running_server({**os.environ, "SHIPYARD_HOME": str(tmp_path / "server-home")}) as url:
        yield url


@contextlib.contextmanager
def running_server(env: dict[str, str]) -> Iterator[str]:
    """A `shipyard server` process with ``env``; yields its URL once it answers, stops it on exit."""
    port = free_port()
    exe = Path(sys.executable).parent / "shipyard"
    process = subprocess.Popen(
        [str(exe), "server", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"server did not start: {process.communicate()[1][-2000:]}")
        time.sleep(0.1)
    try:
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


SCRIPT = """
import shipyard

with shipyard.start_run(experiment="team", name="shared-run") as run:
    run.log_params({"model": "rf"})
    for step in range(50):
        run.log_metric("loss", 1 / (step + 1), step=step)
    run.set_tag("owner", "ana")
    run.log_text("hello from the client\\n", "notes/hello.txt")
    with open("big.bin", "wb") as f:
        f.write(bytes(range(256)) * 20_000)  # 5 MiB: more than one chunk each way
    run.log_artifact("big.bin", "data")
"""


def test_scripts_and_the_cli_work_against_the_server(server: str, tmp_path: Path) -> None:
    team = {**os.environ, "SHIPYARD_TRACKING_URI": server, "SHIPYARD_HOME": str(tmp_path / "client-home")}
    (tmp_path / "train.py").write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, "train.py"], cwd=tmp_path, env=team, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "client-home" / "shipyard.db").exists()  # the records went to the server
    listed = console("runs", "list", "team", "--json", env=team)
    assert listed.returncode == 0, listed.stderr
    import json

    [run] = json.loads(listed.stdout)
    assert run["name"] == "shared-run" and run["status"] == "FINISHED" and run["params"] == {"model": "rf"}
    assert run["metrics"]["loss"] == pytest.approx(1 / 50)
    history = httpx.get(f"{server}/api/v1/runs/{run['run_id']}/metrics/loss/history").json()
    assert len(history) == 50
    server_files = tmp_path / "server-home" / "artifacts"
    stored = [p.relative_to(server_files).as_posix() for p in server_files.rglob("*") if p.is_file()]
    assert sorted(p.split("/artifacts/", 1)[-1] for p in stored) == ["data/big.bin", "notes/hello.txt"]
    assert (
        not list((tmp_path / "client-home").rglob("*.bin"))
        and not (tmp_path / "shipyard-artifacts:").exists()
    )
    assert run["artifact_uri"].startswith("shipyard-artifacts://")
    got = console("artifacts", "download", run["run_id"], "-o", str(tmp_path / "out"), env=team)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "out" / "notes" / "hello.txt").read_text() == "hello from the client\n"
    assert (tmp_path / "out" / "data" / "big.bin").read_bytes() == (tmp_path / "big.bin").read_bytes()
    missing = console("runs", "show", "nope", env=team)
    assert missing.returncode == 3 and "nope" in missing.stderr and server in missing.stderr


def test_errors_have_one_shape(server: str) -> None:
    answer = httpx.get(f"{server}/api/v1/runs/{'f' * 32}")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "NOT_FOUND"
    answer = httpx.post(f"{server}/api/v1/experiments", json={"name": "x", "colour": "red"})
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "colour"
    answer = httpx.post(f"{server}/api/v1/experiments", json={"name": "bad\x00name"})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "INVALID_INPUT"
    answer = httpx.post(
        f"{server}/api/v1/runs/search", json={"experiment_ids": [], "filter": "metrics.a >> 1"}
    )
    assert answer.status_code == 400 and "position" in answer.json()["error"]["message"]
    headers = {"Content-Type": "application/json"}
    answer = httpx.post(f"{server}/api/v1/experiments", content=b'{"name": "x",', headers=headers)
    assert answer.status_code == 422 and "not valid JSON" in answer.json()["error"]["message"]
    answer = httpx.post(f"{server}/api/v1/experiments", json={"name": ["x"]})
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "name"
    answer = httpx.post(f"{server}/api/v1/runs/search", json={"experiment_ids": [], "limit": "many"})
    assert answer.status_code == 422 and answer.json()["error"]["field"] == "limit"
    for path in ("..%2F..%2Fetc%2Fpasswd", "a/%2E%2E/%2E%2E/b", "%2Fetc%2Fpasswd"):
        for method in ("GET", "PUT", "DELETE"):
            answer = httpx.request(method, f"{server}/api/v1/artifacts/{path}", content=b"x")
            assert answer.status_code == 400, (method, path, answer.status_code)
            assert answer.json()["error"]["code"] == "INVALID_INPUT"


def test_an_unreachable_server_is_one_line_naming_it(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env = {**os.environ, "SHIPYARD_TRACKING_URI": url, "SHIPYARD_HOME": str(tmp_path / "h")}
    done = console("runs", "list", env=env)
    assert done.returncode == 5 and url in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_non_loopback_address_needs_an_explicit_no_auth_flag() -> None:
    done = console("server", "--host", "0.0.0.0", "--port", str(free_port()))
    assert (
        done.returncode == 2
        and "--insecure-no-auth" in done.stderr
        and "require sign-in with --auth" in done.stderr
    )


def test_the_checked_in_openapi_document_matches_the_app(settings: object) -> None:
    """docs/openapi.json is what clients and reviewers read; regenerate it with
    `python -m shipyard.server.openapi > docs/openapi.json` when the API changes."""
    import json

    from shipyard.server.openapi import document

    checked_in = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
    assert json.loads(checked_in.read_text()) == document(), "docs/openapi.json is stale: regenerate it"
