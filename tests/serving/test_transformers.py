"""Pre- and post-processing steps around a served model (real registry, real uvicorn servers): they run in
the model's batch, requests are checked against the pre-processor's signature, the payload log keeps the raw
and the transformed rows, and a broken step is named."""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier

import shipyard
from shipyard.config import Settings
from shipyard.payloads import PayloadLogConfig, PayloadLogger, model_inputs, read_payloads
from shipyard.serving.repository import ModelConfig
from shipyard.store.artifacts import ArtifactStore
from tests.conftest import make_settings
from tests.serving.conftest import RunningServer
from tests.serving.transformer_steps import Fails, Labels, Threshold, Unscale

FACTOR = 10.0


@dataclass(frozen=True)
class Steps:
    settings: Settings
    frame: pd.DataFrame  # the model's features
    raw: pd.DataFrame  # what clients send: x0..x29, scaled down
    model: RandomForestClassifier


def register(settings: Settings, obj: object, name: str, example: pd.DataFrame) -> str:
    with shipyard.start_run("transformers", settings=settings) as run:
        info = shipyard.models.log(obj, name="model", run=run, input_example=example)
    version = shipyard.models.register(info.uri, name, settings=settings)
    return f"models:/{name}/{version.version}"


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory) -> Steps:
    settings = make_settings(tmp_path_factory.mktemp("transformers") / "home")
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns=["target"])
    model = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(frame, data.target)
    raw = pd.DataFrame({f"x{i}": frame[name] / FACTOR for i, name in enumerate(frame.columns)})
    register(settings, model, "bc", frame.head(5))
    names = list(frame.columns)
    register(settings, Unscale(names, FACTOR), "bc-prep", raw.head(5))
    register(settings, Fails(names), "bc-fails", raw.head(5))
    register(settings, Unscale(names[:-1], FACTOR), "bc-short", raw.head(5))
    register(settings, Labels(["malignant", "benign"]), "bc-labels", pd.DataFrame({"predict": [0, 1]}))
    proba = pd.DataFrame({"predict": [0, 1], "predict_proba_0": [0.8, 0.1], "predict_proba_1": [0.2, 0.9]})
    register(settings, Threshold(0.9), "bc-sure", proba)
    return Steps(settings, frame, raw, model)


def infer(server: RunningServer, rows: pd.DataFrame, model: str = "bc", **extra: object) -> httpx.Response:
    body = {
        "inputs": [
            {"name": name, "shape": [len(rows)], "datatype": "FP64", "data": rows[name].tolist()}
            for name in rows.columns
        ],
        **extra,
    }
    return httpx.post(f"{server.url}/v2/models/{model}/infer", json=body, timeout=30)


def test_pre_and_post_processing_run_in_the_batch_and_are_logged(
    steps: Steps, start_server: Callable[..., RunningServer]
) -> None:
    store = ArtifactStore.configured(steps.settings)
    payloads = PayloadLogger(store, PayloadLogConfig(sample_rate=1.0, max_rows=1000, max_seconds=60))
    config = ModelConfig(
        "bc", "models:/bc/1", preprocess="models:/bc-prep/1", postprocess="models:/bc-labels/1"
    )
    server = start_server([config], steps.settings, payloads=payloads)

    metadata = httpx.get(f"{server.url}/v2/models/bc").json()
    assert [i["name"] for i in metadata["inputs"]][:3] == ["x0", "x1", "x2"]  # the pre-processor's inputs
    assert metadata["outputs"][0]["datatype"] == "BYTES"  # the post-processor's labels

    answer = infer(server, steps.raw.iloc[:40])
    assert answer.status_code == 200, answer.text
    names = np.asarray(["malignant", "benign"])[steps.model.predict(steps.frame.iloc[:40])]
    assert answer.json()["outputs"][0]["data"] == names.tolist()

    # One [N, 30] tensor (the pre-processor's columns in order); probabilities stay the model's.
    matrix = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [3, 30],
                "datatype": "FP64",
                "data": steps.raw.iloc[:3].to_numpy().ravel().tolist(),
            }
        ],
        "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
    }
    both = httpx.post(f"{server.url}/v2/models/bc/infer", json=matrix, timeout=30)
    assert both.status_code == 200, both.text
    outputs = {o["name"]: o for o in both.json()["outputs"]}
    assert outputs["predict"]["data"] == names[:3].tolist()
    expected = steps.model.predict_proba(steps.frame.iloc[:3]).ravel()
    assert np.allclose(outputs["predict_proba"]["data"], expected)

    # Concurrent requests share one batch; each gets its own rows back.
    with httpx.Client(timeout=30) as client:
        bodies = [steps.raw.iloc[i : i + 2] for i in range(0, 20, 2)]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda rows: infer_with(client, server, rows), bodies))
    for start, got in zip(range(0, 20, 2), answers, strict=True):
        assert got == names[start : start + 2].tolist()

    # A request the pre-processor's signature refuses is the client's error, naming the field.
    missing = infer(server, steps.raw.iloc[:2].drop(columns=["x5"]))
    assert missing.status_code == 400 and "'x5'" in missing.text, missing.text

    payloads.close()
    logged = read_payloads(store, model="bc")
    first = logged.iloc[0]
    assert set(json.loads(first["inputs"])) == {f"x{i}" for i in range(30)}  # what the client sent
    transformed = json.loads(first["transformed"])  # what the model took
    assert list(transformed) == list(steps.frame.columns)
    assert np.allclose(transformed["mean radius"], steps.frame["mean radius"].iloc[:40])
    assert json.loads(first["outputs"])["predict"] == names.tolist()
    # Monitoring compares what the model took with its training data.
    assert model_inputs(logged).iloc[0] == first["transformed"]
    refused = logged[logged["status"] == 400]
    assert len(refused) == 1 and refused["transformed"].isna().all()


def infer_with(client: httpx.Client, server: RunningServer, rows: pd.DataFrame) -> list[str]:
    body = {
        "inputs": [
            {"name": n, "shape": [len(rows)], "datatype": "FP64", "data": rows[n].tolist()} for n in rows
        ]
    }
    answer = client.post(f"{server.url}/v2/models/bc/infer", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()["outputs"][0]["data"]


def test_a_post_processor_that_names_probabilities_gets_them(
    steps: Steps, start_server: Callable[..., RunningServer]
) -> None:
    server = start_server(
        [ModelConfig("sure", "models:/bc/1", postprocess="models:/bc-sure/1")], steps.settings
    )
    rows = steps.frame.iloc[:60]
    answer = infer(server, rows, model="sure")
    assert answer.status_code == 200, answer.text
    expected = (steps.model.predict_proba(rows)[:, 1] >= 0.9).astype(int)
    assert answer.json()["outputs"][0]["data"] == expected.tolist()
    assert 0 < expected.sum() < len(expected)  # the cut is not the model's own label
    v1 = httpx.post(
        f"{server.url}/v1/models/sure:predict", json={"instances": rows.iloc[:4].to_dict("records")}
    )
    assert v1.status_code == 200 and v1.json()["predictions"] == expected[:4].tolist()


def test_a_step_that_raises_or_does_not_fit_is_named(
    steps: Steps, start_server: Callable[..., RunningServer]
) -> None:
    server = start_server(
        [
            ModelConfig("fails", "models:/bc/1", preprocess="models:/bc-fails/1"),
            ModelConfig("short", "models:/bc/1", preprocess="models:/bc-short/1"),
            ModelConfig("gone", "models:/bc/1", postprocess="models:/no-such-step/1"),
        ],
        steps.settings,
    )
    good = infer(server, steps.raw.iloc[:3], model="fails")
    assert good.status_code == 200, good.text
    bad_rows = steps.raw.iloc[:3].copy()
    bad_rows.loc[bad_rows.index[0], "x0"] = -1.0
    bad = infer(server, bad_rows, model="fails")
    assert bad.status_code == 500, bad.text
    assert "preprocess 'models:/bc-fails/1' raised ValueError: x0 must not be negative" in bad.text
    # A pre-processor whose rows the model cannot take fails the load (checked on the input example).
    short = httpx.get(f"{server.url}/v2/models/short/ready")
    assert short.status_code == 503
    assert "cannot take the output of preprocess 'models:/bc-short/1'" in short.text
    assert "worst fractal dimension" in short.text  # the missing column
    gone = httpx.get(f"{server.url}/v2/models/gone/ready")
    assert gone.status_code == 503 and "postprocess 'models:/no-such-step/1' failed to load" in gone.text


def test_deploy_yaml_names_the_steps_relative_to_the_file(tmp_path: Path) -> None:
    from shipyard.serving.deployment import load_deployment

    path = tmp_path / "deploy" / "deploy.yaml"
    path.parent.mkdir()
    path.write_text(
        "models:\n  - uri: models:/churn@champion\n"
        "    preprocess: ./prep\n    postprocess: models:/labels/2\n",
        encoding="utf-8",
    )
    (config,) = load_deployment(path).model_configs()
    assert config.preprocess == str(path.parent / "prep")
    assert config.postprocess == "models:/labels/2"


def test_serve_refuses_step_options_with_a_deploy_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from tests.cli.test_cli import run_cli

    path = tmp_path / "deploy.yaml"
    path.write_text("models:\n  - uri: models:/churn@champion\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "serve", str(path), "--preprocess", "models:/prep/1")
    assert code == 2 and "--preprocess and --postprocess go with one model URI" in err
    assert err.count("\n") == 1
