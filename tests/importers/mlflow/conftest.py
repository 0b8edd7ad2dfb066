"""MLflow stores made by the real ``mlflow`` package (the ``mlflow_python`` interpreter), once per session: a
SQLite store and an ``mlruns`` folder holding the same kinds of records, each with the client's own reading of
it (``dump_mlflow_store.py``) for the tests to compare Shipyard's copy against."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port

HERE = Path(__file__).parent


@dataclass(frozen=True)
class MlflowStore:
    """``uri`` is what a user passes to the importer; ``expected`` the store as MLflow reads it back."""

    kind: str
    uri: str
    tracking_uri: str
    folder: Path
    expected: dict[str, Any]


def mlflow_env() -> dict[str, str]:
    # The file store is in maintenance mode in MLflow 3: it refuses to open without this opt-in.
    return {**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true", "GIT_PYTHON_REFRESH": "quiet"}


def run_mlflow(python: str, script: str, *args: str, cwd: Path) -> str:
    done = subprocess.run(
        [python, str(HERE / script), *args],
        cwd=cwd,
        env=mlflow_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def _start(python: str, script: str, *args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [python, str(HERE / script), *args],
        cwd=cwd,
        env=mlflow_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _output(process: subprocess.Popen[str], what: str) -> str:
    out, err = process.communicate(timeout=300)
    if process.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{err[-3000:]}")
    return out


@dataclass
class MlflowBuild:
    """The stores, and a ``mlflow server`` started on a copy of the SQLite one as soon as it was built (it
    takes seconds to start: it does so while the rest is built and read back)."""

    stores: dict[str, MlflowStore]
    server: subprocess.Popen[bytes]
    url: str
    root: Path


@pytest.fixture(scope="session")
def mlflow_build(mlflow_python: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowBuild]:
    root = tmp_path_factory.mktemp("mlflow-stores")
    layouts = {
        "sqlite": (
            f"sqlite:///{root / 'sqlite' / 'mlflow.db'}",
            f"sqlite:///{root / 'sqlite' / 'mlflow.db'}",
        ),
        "mlruns": (str(root / "mlruns" / "mlruns"), f"file://{root / 'mlruns' / 'mlruns'}"),
    }
    builds = {}
    for kind, (_, tracking_uri) in layouts.items():
        (root / kind).mkdir()
        artifacts = str(root / kind / "artifacts")
        builds[kind] = _start(mlflow_python, "make_mlflow_store.py", tracking_uri, artifacts, cwd=root / kind)
    _output(builds["sqlite"], "building the sqlite MLflow store")
    served = root / "server"
    served.mkdir()
    shutil.copy(root / "sqlite" / "mlflow.db", served / "mlflow.db")
    port = free_port()
    command = [
        str(Path(mlflow_python).parent / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    command += ["--backend-store-uri", f"sqlite:///{served / 'mlflow.db'}", "--workers", "1"]
    command += ["--artifacts-destination", str(served / "mlartifacts")]
    with (served / "server.log").open("w") as log:
        server = subprocess.Popen(command, cwd=served, env=mlflow_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        dumps = {
            "sqlite": _start(mlflow_python, "dump_mlflow_store.py", layouts["sqlite"][1], cwd=root / "sqlite")
        }
        _output(builds["mlruns"], "building the mlruns MLflow store")
        dumps["mlruns"] = _start(
            mlflow_python, "dump_mlflow_store.py", layouts["mlruns"][1], cwd=root / "mlruns"
        )
        stores = {
            kind: MlflowStore(
                kind, uri, tracking_uri, root / kind, json.loads(_output(dumps[kind], f"reading {kind}"))
            )
            for kind, (uri, tracking_uri) in layouts.items()
        }
        yield MlflowBuild(stores, server, f"http://127.0.0.1:{port}", served)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(scope="session")
def mlflow_stores(mlflow_build: MlflowBuild) -> dict[str, MlflowStore]:
    """The SQLite store and the ``mlruns`` folder, each with MLflow's reading of it."""
    return mlflow_build.stores


@pytest.fixture(scope="session")
def mlflow_server(mlflow_python: str, mlflow_build: MlflowBuild) -> MlflowStore:
    """A real ``mlflow server`` on 127.0.0.1 serving a copy of the SQLite store, proxying artifacts, with one
    more run logged through it (its files and model under ``mlflow-artifacts:/``)."""
    url, server, root = mlflow_build.url, mlflow_build.server, mlflow_build.root
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
        time.sleep(0.2)
    out = run_mlflow(mlflow_python, "log_served_run.py", url, cwd=root)
    return MlflowStore("http", url, url, root, json.loads(out.strip().splitlines()[-1]))


@pytest.fixture(params=["sqlite", "mlruns", "http"])
def mlflow_store(request: pytest.FixtureRequest, mlflow_stores: dict[str, MlflowStore]) -> MlflowStore:
    if request.param == "http":
        return request.getfixturevalue("mlflow_server")
    return mlflow_stores[request.param]
