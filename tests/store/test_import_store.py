"""The import store's contract on SQLite and PostgreSQL: copied records keep their ids, names, times,
statuses and version numbers; every call is idempotent; a run and all logged to it commit together."""

from __future__ import annotations

import math

import pytest

from shipyard import Settings
from shipyard.errors import InvalidInput
from shipyard.registry.client import RegistryClient
from shipyard.registry.records import Stage
from shipyard.store import open_server_stores
from shipyard.store.sql import SqlStores
from shipyard.tracking.chunks import Series
from shipyard.tracking.client import TrackingClient
from shipyard.tracking.logged_models import LoggedModel, LoggedModelStatus
from shipyard.tracking.records import ArtifactRecord, DatasetInput, LifecycleStage, RunCopy, RunStatus

T0 = 1_600_000_000_000


def _series(points: list[tuple[int, float, int]]) -> Series:
    series = Series()
    for step, value, timestamp in points:
        series.steps.append(step)
        series.values.append(value)
        series.timestamps.append(timestamp)
    return series


def _copy(run_id: str, experiment_id: str, name: str, **fields: object) -> RunCopy:
    return RunCopy(
        run_id=run_id,
        experiment_id=experiment_id,
        name=name,
        status=fields.pop("status", RunStatus.FINISHED),  # type: ignore[arg-type]
        start_time=T0,
        end_time=T0 + 5000,
        artifact_uri=f"/nowhere/{run_id}/artifacts",
        **fields,  # type: ignore[arg-type]
    )


def test_copied_runs_keep_what_they_were_and_store_once(backend_settings: Settings) -> None:
    imports = open_server_stores(backend_settings).imports
    experiment = imports.put_experiment(
        "imported", description="from MLflow", artifact_location=None, created_at=T0, updated_at=T0 + 1
    )
    assert (experiment.created_at, experiment.updated_at, experiment.description) == (
        T0,
        T0 + 1,
        "from MLflow",
    )
    again = imports.put_experiment(
        "imported", description=None, artifact_location=None, created_at=1, updated_at=1
    )
    assert again == experiment
    parent = _copy(
        "a" * 32,
        experiment.experiment_id,
        "parent",
        params={"lr": "0.1"},
        tags={"team": "ml"},
        metrics={"loss": _series([(0, 1.0, T0), (1, math.nan, T0 + 1), (1, 0.5, T0 + 2)])},
        datasets=(DatasetInput("iris", "d078c2c8", "s3://b/iris.csv", "s3", 4, {"a": "double"}, "training"),),
        artifacts=(ArtifactRecord("notes.txt", 5, "0" * 64),),
        user="alice",
    )
    child = _copy(
        "b" * 32,
        experiment.experiment_id,
        "parent",  # a name MLflow allowed twice
        parent_run_id="a" * 32,
        status=RunStatus.FAILED,
        lifecycle_stage=LifecycleStage.DELETED,
    )
    stored = imports.put_runs([parent, child])
    assert stored == {"a" * 32: "parent", "b" * 32: f"parent-{'b' * 8}"}
    assert imports.put_runs([parent, child]) == {}
    assert imports.existing_runs(["a" * 32, "c" * 32]) == {"a" * 32}
    tracking = TrackingClient(backend_settings)
    run = tracking.get_run("a" * 32)
    assert (run.name, run.status, run.start_time, run.end_time, run.user) == (
        "parent",
        RunStatus.FINISHED,
        T0,
        T0 + 5000,
        "alice",
    )
    assert (run.params, run.tags, run.metrics, run.heartbeat_at) == (
        {"lr": "0.1"},
        {"team": "ml"},
        {"loss": 0.5},
        None,
    )
    history = [(m.step, m.value, m.timestamp) for m in tracking.metric_history(run.run_id, "loss")]
    assert history[0] == (0, 1.0, T0) and math.isnan(history[1][1]) and history[2] == (1, 0.5, T0 + 2)
    assert [d.context for d in tracking.dataset_inputs(run.run_id)] == ["training"]
    assert tracking.list_artifacts(run.run_id) == [ArtifactRecord("notes.txt", 5, "0" * 64)]
    nested = tracking.get_run("b" * 32)
    assert (nested.parent_run_id, nested.status, nested.lifecycle_stage) == (
        "a" * 32,
        RunStatus.FAILED,
        LifecycleStage.DELETED,
    )


def test_a_batch_with_a_bad_value_stores_nothing(backend_settings: Settings) -> None:
    imports = open_server_stores(backend_settings).imports
    experiment = imports.put_experiment(
        "e", description=None, artifact_location=None, created_at=T0, updated_at=T0
    )
    good = _copy("c" * 32, experiment.experiment_id, "good")
    bad = _copy("d" * 32, experiment.experiment_id, "bad", params={"bad key!": "1"})
    with pytest.raises(InvalidInput, match="bad key"):
        imports.put_runs([good, bad])
    assert imports.existing_runs(["c" * 32, "d" * 32]) == set()


def test_copied_versions_keep_their_numbers(backend_settings: Settings) -> None:
    stores = open_server_stores(backend_settings)
    imports = stores.imports
    assert imports.put_model("clf", description="d", tags={"owner": "alice"}, created_at=T0, updated_at=T0)
    assert not imports.put_model("clf", description="other", tags={}, created_at=1, updated_at=1)
    fields = {
        "flavor": "mlflow",
        "source_uri": "models:/m-1",
        "package_uri": "/nowhere/model",
        "manifest_sha256": "0" * 64,
        "run_id": None,
        "lineage": {"source": "mlflow"},
        "description": "third",
        "tags": {"validated": "yes"},
        "created_by": "bob",
        "created_at": T0 + 3,
        "updated_at": T0 + 4,
    }
    assert imports.put_version("clf", 3, stage=Stage.STAGING, **fields)  # type: ignore[arg-type]
    assert not imports.put_version("clf", 3, stage=Stage.PRODUCTION, **fields)  # type: ignore[arg-type]
    registry = RegistryClient(TrackingClient(backend_settings))
    version = registry.get_version("clf", 3)
    assert (version.stage, version.created_by, version.created_at, dict(version.tags)) == (
        Stage.STAGING,
        "bob",
        T0 + 3,
        {"validated": "yes"},
    )
    model = registry.get_model("clf")
    assert (model.description, dict(model.tags), model.created_at) == ("d", {"owner": "alice"}, T0)
    # A later registration never reuses an imported number.
    later = registry.create_version(
        "clf",
        flavor="mlflow",
        source_uri="x",
        package_uri="/p",
        manifest_sha256="0" * 64,
        run_id=None,
        lineage={},
    )
    assert later.version == 4


def test_copied_logged_models_keep_their_ids_once(backend_settings: Settings) -> None:
    stores = SqlStores.open(backend_settings)
    experiment = stores.imports.put_experiment(
        "e", description=None, artifact_location=None, created_at=T0, updated_at=T0
    )
    model = LoggedModel(
        model_id="m-" + "1" * 32,
        experiment_id=experiment.experiment_id,
        name="model",
        source_run_id="a" * 32,
        status=LoggedModelStatus.READY,
        model_type=None,
        artifact_location="/nowhere/models/m-1/artifacts",
        created_at=T0,
        updated_at=T0 + 1,
        params={"lr": "0.1"},
        tags={"mlflow.user": "alice"},
    )
    assert stores.imports.put_logged_model(model, [("a" * 32, 0)])
    assert not stores.imports.put_logged_model(model, [("a" * 32, 0)])
    assert stores.imports.existing_logged_models([model.model_id, "m-2"]) == {model.model_id}
    assert stores.logged_models.get(model.model_id) == model
    assert stores.logged_models.outputs("a" * 32) == [(model.model_id, 0)]
