"""Baselines packaged at logging time, found through the registry; the rules and CLI around them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.tree import DecisionTreeClassifier

import shipyard
from shipyard.config import Settings
from shipyard.durations import parse_duration
from shipyard.errors import IntegrityError, InvalidInput, NotFound
from shipyard.models import registry_client
from shipyard.monitoring import find_baseline, parse_rules, run_monitor, save_baseline
from shipyard.registry.package import BASELINE
from shipyard.store.artifacts import ArtifactStore
from tests.cli.test_cli import run_cli
from tests.monitoring.test_monitoring import log_traffic


@pytest.fixture
def frame() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame


def register(settings: Settings, frame: pd.DataFrame, name: str, **options: object) -> str:
    features = frame.drop(columns=["target"])
    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(features, frame["target"])
    with shipyard.start_run("train", settings=settings) as run:
        info = shipyard.models.log(model, run=run, input_example=features.head(3), **options)
    return str(shipyard.models.register(info.uri, name, settings=settings).version)


def test_the_packaged_baseline_is_a_verified_sample(settings: Settings, frame: pd.DataFrame) -> None:
    features = frame.drop(columns=["target"])
    version = register(settings, frame, "cancer", baseline=features, baseline_rows=100)
    store = ArtifactStore(settings.artifact_root)
    registry = registry_client(settings)
    found = find_baseline(store, "cancer", registry=registry, version=version)
    assert found.source == "models:/cancer/1" and found.frame.shape == (100, features.shape[1])
    # The schema comes from all the training rows, not the 100 sampled.
    assert found.schema is not None and set(found.schema.columns) == set(found.frame.columns)
    radius = found.schema.columns["mean radius"]
    assert (radius.min, radius.max) == (features["mean radius"].min(), features["mean radius"].max())
    assert set(found.frame.columns) == {str(c) for c in features.columns}

    # A baseline set for the model wins over the packaged one.
    save_baseline(store, "cancer", features.head(60))
    assert len(find_baseline(store, "cancer", registry=registry, version=version).frame) == 60

    # A changed packaged file is refused, not silently used.
    store.delete("monitoring/baselines/cancer.parquet")
    package = ArtifactStore(shipyard.models.get("models:/cancer/1", settings=settings).package_uri)
    package.put_bytes(b"PAR1 not what was logged", BASELINE)
    with pytest.raises(IntegrityError):
        find_baseline(store, "cancer", registry=registry, version=version)


def test_no_baseline_anywhere_says_where_it_looked(settings: Settings, frame: pd.DataFrame) -> None:
    version = register(settings, frame, "plain")
    store = ArtifactStore(settings.artifact_root)
    with pytest.raises(NotFound, match=r"models:/plain/1 was logged without a baseline.*baseline=X_train"):
        find_baseline(store, "plain", registry=registry_client(settings), version=version)
    with pytest.raises(NotFound, match=r"no served version"):
        find_baseline(store, "plain", registry=registry_client(settings))
    with pytest.raises(NotFound, match=r"models:/other/1"):
        find_baseline(store, "x", registry=registry_client(settings), version="1", registered_name="other")


def test_a_baseline_must_be_a_table(settings: Settings, frame: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="baseline must be a pandas DataFrame.*not ndarray"):
        register(settings, frame, "arr", baseline=np.zeros((3, 2)))
    with pytest.raises(InvalidInput, match="no rows"):
        register(settings, frame, "empty", baseline=frame.head(0))


def test_performance_rules_wait_for_labels(settings: Settings, frame: pd.DataFrame) -> None:
    store = ArtifactStore(settings.artifact_root)
    features = frame.drop(columns=["target"])
    save_baseline(store, "cancer", features)
    log_traffic(store, features.sample(200, random_state=0), model="cancer")
    rules = parse_rules({"rules": [{"name": "acc", "metric": "accuracy", "op": "<", "threshold": 2}]})
    result = run_monitor(store, "cancer", rules=rules)
    assert result.performance is None and "no ground-truth labels" in (result.performance_note or "")
    assert result.alerts_fired == () and result.run_id is None
    assert result.to_dict()["performance"] is None


def test_durations() -> None:
    assert parse_duration("90m").total_seconds() == 5400
    assert parse_duration("0s", allow_zero=True).total_seconds() == 0
    for bad in ("0s", "1y", "h", "-1h", ""):
        with pytest.raises(InvalidInput, match="--since"):
            parse_duration(bad, "--since")


def test_cli_refuses_bad_labels_and_schedules(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "truth.csv"
    missing.write_text("id,label\nr1,1\n")
    code, _, err = run_cli(capsys, "monitor", "labels", "cancer", str(missing))
    assert code == 2 and "request_id" in err and err.count("\n") == 1
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - name: x\n    metric: accuracy\n    op: '<'\n    threshold: 0.9\n    colour: red\n"
    )
    hourly = ("monitor", "schedule", "cancer", "--cron", "0 * * * *")
    code, _, err = run_cli(capsys, *hourly, "--rules", str(rules))
    assert code == 2 and "colour" in err
    code, _, err = run_cli(capsys, *hourly, "--since", "soon")
    assert code == 2 and "--since" in err
    code, _, err = run_cli(capsys, "monitor", "schedule", "a/b", "--cron", "0 * * * *")
    assert code == 2 and "'a/b'" in err
