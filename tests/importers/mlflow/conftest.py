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


@pytest.fixture(scope="session")
def mlflow_stores(mlflow_python: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, MlflowStore]:
    """Both stores, built side by side (each script takes seconds, mostly importing mlflow)."""
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
        folder = root / kind
        folder.mkdir()
        builds[kind] = subprocess.Popen(
            [mlflow_python, str(HERE / "make_mlflow_store.py"), tracking_uri, str(folder / "artifacts")],
            cwd=folder,
            env=mlflow_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    for kind, process in builds.items():
        _, err = process.communicate(timeout=300)
        if process.returncode != 0:
            raise RuntimeError(f"building the {kind} MLflow store failed:\n{err[-3000:]}")
    stores = {}
    for kind, (uri, tracking_uri) in layouts.items():
        expected = json.loads(
            run_mlflow(mlflow_python, "dump_mlflow_store.py", tracking_uri, cwd=root / kind)
        )
        stores[kind] = MlflowStore(kind, uri, tracking_uri, root / kind, expected)
    return stores


@pytest.fixture(scope="session")
def mlflow_server(
    mlflow_python: str, mlflow_stores: dict[str, MlflowStore], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowStore]:
    """A real ``mlflow server`` on 127.0.0.1 serving a copy of the SQLite store, proxying artifacts, with one
    more run logged through it (its files and model under ``mlflow-artifacts:/``)."""
    root = tmp_path_factory.mktemp("mlflow-server")
    shutil.copy(mlflow_stores["sqlite"].folder / "mlflow.db", root / "mlflow.db")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(Path(mlflow_python).parent / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    command += ["--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--workers", "1"]
    command += ["--artifacts-destination", str(root / "mlartifacts")]
    with (root / "server.log").open("w") as log:
        server = subprocess.Popen(command, cwd=root, env=mlflow_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}"
                )
            time.sleep(0.2)
        out = run_mlflow(mlflow_python, "log_served_run.py", url, cwd=root)
        expected = json.loads(out.strip().splitlines()[-1])
        yield MlflowStore("http", url, url, root, expected)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(params=["sqlite", "mlruns", "http"])
def mlflow_store(request: pytest.FixtureRequest, mlflow_stores: dict[str, MlflowStore]) -> MlflowStore:
    if request.param == "http":
        return request.getfixturevalue("mlflow_server")
    return mlflow_stores[request.param]
