"""Lineage records and upstream queries on every backend, and dataset → run → model → version end to end."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard import NotFound, Settings
from shipyard.lineage import ArtifactType, LineageClient, render
from shipyard.tracking.client import TrackingClient


def test_upstream_walks_back_to_the_sources(tracking_backend_settings: Settings) -> None:
    lineage = LineageClient(TrackingClient(tracking_backend_settings))
    raw = ("file:///data/raw.csv", ArtifactType.DATASET, "a" * 64, "raw")
    clean = ("file:///data/clean.parquet", ArtifactType.DATASET, "b" * 64, "clean")
    model = ("runs:/r/model", ArtifactType.MODEL, "c" * 64, "model")
    lineage.record("pipeline_step", name="clean", inputs=[raw], outputs=[clean])
    lineage.record("training", name="train", run_id="r" * 32, inputs=[clean], outputs=[model])
    lineage.record("unrelated", name="other", inputs=[raw], outputs=[("x", ArtifactType.ARTIFACT, "", None)])
    graph = lineage.upstream("runs:/r/model")
    assert sorted(a.uri for a in graph.artifacts.values()) == sorted([raw[0], clean[0], model[0]])
    assert [e.name for e in graph.executions.values()] == ["train", "clean"]
    assert [a.uri for a in graph.sources()] == ["file:///data/raw.csv"]
    text = render(graph)
    assert text.index("runs:/r/model") < text.index("clean.parquet") < text.index("raw.csv")


def test_same_uri_and_hash_is_one_artifact(tracking_backend_settings: Settings) -> None:
    lineage = LineageClient(TrackingClient(tracking_backend_settings))
    data = ("dataset:train", ArtifactType.DATASET, "d" * 64, "train")
    lineage.record("training", name="a", inputs=[data], outputs=[("m1", ArtifactType.MODEL, "1" * 64, None)])
    lineage.record("training", name="b", inputs=[data], outputs=[("m2", ArtifactType.MODEL, "2" * 64, None)])
    first, second = lineage.upstream("m1"), lineage.upstream("m2")
    assert set(first.artifacts) & set(second.artifacts)  # the dataset node is shared


def test_unknown_uri_is_not_found(tracking_backend_settings: Settings) -> None:
    with pytest.raises(NotFound, match="no lineage recorded for 'models:/nope/1'"):
        LineageClient(TrackingClient(tracking_backend_settings)).upstream("models:/nope/1")


def test_registered_model_traces_back_to_its_dataset(settings: Settings) -> None:
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]})
    with shipyard.start_run("lineage", settings=settings) as run:
        dataset = run.log_input(frame, name="train")
        model = LogisticRegression().fit(frame[["x"]], frame["y"])
        info = shipyard.models.log(model, input_example=frame[["x"]].iloc[:2])
    version = shipyard.models.register(info.uri, "tiny", settings=settings)
    graph = LineageClient(TrackingClient(settings)).upstream(version.uri)
    assert [a.uri for a in graph.sources()] == ["dataset:train"]
    assert graph.sources()[0].sha256 == dataset.digest
    assert {e.type for e in graph.executions.values()} == {"registration", "training"}
    assert {e.run_id for e in graph.executions.values()} == {run.run_id}


def test_cli_prints_the_chain(capsys: pytest.CaptureFixture[str], settings: Settings) -> None:
    from tests.cli.test_cli import run_cli

    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 0, 1, 1]})
    with shipyard.start_run("lineage") as run:
        run.log_input(frame, name="train")
        info = shipyard.models.log(
            LogisticRegression().fit(frame[["x"]], frame["y"]), input_example=frame[["x"]]
        )
    shipyard.models.register(info.uri, "tiny")
    code, out, _ = run_cli(capsys, "lineage", "models:/tiny/1")
    assert code == 0 and "models:/tiny/1" in out and "dataset:train" in out and "training" in out
    code, out, _ = run_cli(capsys, "lineage", "models:/tiny/1", "--json")
    assert [s["uri"] for s in json.loads(out)["sources"]] == ["dataset:train"]
    code, _, err = run_cli(capsys, "lineage", "models:/missing/1")
    assert code == 3 and "no registered model named 'missing'" in err
    code, _, err = run_cli(capsys, "lineage", "file:///nowhere/data.parquet")
    assert code == 3 and "no lineage recorded" in err
