"""Deleting runs and collecting garbage never breaks a registered model version."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.tree import DecisionTreeClassifier

import shipyard
from shipyard import Conflict, Settings
from shipyard.store.artifacts import ArtifactStore
from shipyard.tracking.gc import collect_garbage
from tests.cli.test_cli import run_cli


def _train_and_register(settings: Settings, experiment: str = "churn") -> tuple[str, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True)
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
    with shipyard.start_run(experiment, settings=settings) as run:
        info = shipyard.models.log(model, run=run, input_example=X[:3])
    version = shipyard.models.register(info.uri, "churn", settings=settings)
    shipyard.models.set_alias("churn", "champion", version.version, settings=settings)
    shipyard.models.transition("churn", version.version, "Production", settings=settings)
    return run.run_id, model.predict(X[:20])


def _run_folder(settings: Settings, run_id: str) -> ArtifactStore:
    artifact_uri = shipyard.get_client(settings).get_run(run_id).artifact_uri
    return ArtifactStore(artifact_uri.removesuffix("/artifacts"))


def test_a_run_backing_a_production_version_is_not_deleted_without_force(settings: Settings) -> None:
    run_id, _ = _train_and_register(settings)
    client = shipyard.get_client(settings)
    backs = r"backs registered model version\(s\) churn/1 \(Production, @champion\)"
    with pytest.raises(Conflict, match=backs):
        client.delete_run(run_id)
    assert client.get_run(run_id).lifecycle_stage.value == "active"
    with pytest.raises(Conflict, match=r"experiment 'churn' has runs backing .*churn/1"):
        client.delete_experiment("churn")


def test_forced_delete_and_gc_keep_the_version_loading(settings: Settings) -> None:
    run_id, expected = _train_and_register(settings)
    with shipyard.start_run("churn", settings=settings) as scratch:
        scratch.log_text("scratch", "notes.txt")
    client = shipyard.get_client(settings)
    scratch_folder = _run_folder(settings, scratch.run_id)

    backed = client.delete_run(run_id, force=True)
    assert [v.describe() for v in backed] == ["churn/1 (Production, @champion)"]
    client.delete_run(scratch.run_id)
    report = collect_garbage(client)
    assert (report.runs, report.artifact_roots) == (1, 1)
    assert report.kept == ("churn/1 (Production, @champion)",)

    assert not scratch_folder.exists("")  # a run backing nothing is purged completely
    loaded = shipyard.models.load("models:/churn@champion", settings=settings)
    X, _ = load_breast_cancer(return_X_y=True)
    np.testing.assert_array_equal(np.asarray(loaded.predict(X[:20])), expected)

    # The backing run waits, deleted, until no version needs it; then it goes with its folder.
    folder = _run_folder(settings, run_id)
    assert collect_garbage(client).runs == 0 and folder.exists("")
    shipyard.models.delete_version("churn", 1, force=True, settings=settings)
    report = collect_garbage(client)
    assert (report.runs, report.artifact_roots, report.kept) == (1, 1, ())
    assert not folder.exists("")


def test_gc_of_a_deleted_experiment_keeps_registered_packages(settings: Settings) -> None:
    _train_and_register(settings, experiment="exp")
    client = shipyard.get_client(settings)
    client.delete_experiment("exp", force=True)
    report = collect_garbage(client)
    # The experiment stays (deleted) with the run that holds the package, until the version goes.
    assert (report.runs, report.experiments) == (0, 0)
    assert report.kept == ("churn/1 (Production, @champion)",)
    assert (
        shipyard.models.load("models:/churn/1", settings=settings).predict(
            load_breast_cancer(return_X_y=True)[0][:2]
        )
        is not None
    )


def test_cli_refuses_then_forces_and_gc_says_what_it_kept(
    settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHIPYARD_HOME", str(settings.home))
    run_id, _ = _train_and_register(settings)
    code, _, err = run_cli(capsys, "runs", "delete", run_id)
    assert code == 4 and "churn/1 (Production, @champion)" in err and err.count("\n") == 1
    code, out, err = run_cli(capsys, "runs", "delete", run_id, "--force")
    assert code == 0, err
    assert out.index("warning: run") < out.index("deleted run") and "churn/1 (Production, @champion)" in out
    code, out, _ = run_cli(capsys, "gc")
    assert code == 0 and "kept the artifact folders holding registered versions churn/1" in out
    code, out, err = run_cli(capsys, "models", "show", "churn@champion")
    assert code == 0, err
