"""A registered model and real servers (uvicorn on 127.0.0.1) for the serving tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
import uvicorn
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier

import shipyard
from shipyard.config import Settings
from shipyard.serving.app import InferenceServer, ServerConfig
from shipyard.serving.repository import ModelConfig, ModelRepository
from shipyard.serving.server import uvicorn_config
from tests.conftest import free_port, make_settings


@dataclass(frozen=True)
class Registered:
    settings: Settings
    frame: pd.DataFrame  # the features
    model: RandomForestClassifier


@pytest.fixture(scope="session")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Registered:
    """A RandomForest on breast_cancer registered as ``bc`` version 1, alias ``champion``; a smaller one as
    version 2, alias ``challenger``."""
    settings = make_settings(tmp_path_factory.mktemp("serving") / "home")
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns=["target"])
    model = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(frame, data.target)
    with shipyard.start_run("serving", settings=settings) as run:
        info = shipyard.models.log(model, name="model", run=run, input_example=frame.head(5))
    version = shipyard.models.register(info.uri, "bc", settings=settings)
    shipyard.models.set_alias("bc", "champion", version.version, settings=settings)
    # Version 2, aliased challenger: a different forest, for traffic between versions.
    other = RandomForestClassifier(n_estimators=3, max_depth=2, random_state=1).fit(frame, data.target)
    with shipyard.start_run("serving", settings=settings) as run:
        info = shipyard.models.log(other, name="model", run=run, input_example=frame.head(5))
    second = shipyard.models.register(info.uri, "bc", settings=settings)
    shipyard.models.set_alias("bc", "challenger", second.version, settings=settings)
    return Registered(settings, frame, model)


@dataclass
class RunningServer:
    url: str
    port: int
    server: InferenceServer
    uvicorn: uvicorn.Server | None = None


@pytest.fixture(scope="session")
def start_server() -> Iterator[Callable[..., RunningServer]]:
    """Start an InferenceServer for given model configs on a free port; all stop at session end."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(
        configs: list[ModelConfig],
        settings: Settings,
        config: ServerConfig | None = None,
        loader: Callable[[str], Any] | None = None,
        http: str | None = None,
        **server_options: Any,
    ) -> RunningServer:
        repository = ModelRepository(
            configs,
            loader or (lambda uri, **options: shipyard.models.load(uri, settings=settings, **options)),
        )
        server = InferenceServer(repository, config, **server_options)
        port = free_port()
        # The configuration `shipyard serve` runs under: header deadline, proxy headers off, limits.
        config = uvicorn_config(server, host="127.0.0.1", port=port, log_level="warning", http=http)
        uv = uvicorn.Server(config)
        thread = threading.Thread(target=uv.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not uv.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        repository.wait_loaded(60)
        running.append((uv, thread))
        return RunningServer(f"http://127.0.0.1:{port}", port, server, uv)

    yield start
    for uv, thread in running:
        uv.should_exit = True
        thread.join(30)


@pytest.fixture(scope="session")
def bc_server(registered: Registered, start_server: Callable[..., RunningServer]) -> RunningServer:
    """``bc`` from ``models:/bc@champion``, batching on."""
    return start_server([ModelConfig("bc", "models:/bc@champion")], registered.settings)


def rows(registered: Registered, n: int, start: int = 0) -> np.ndarray:
    return registered.frame.iloc[start : start + n].to_numpy()
