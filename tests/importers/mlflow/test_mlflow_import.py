"""Importing MLflow stores made by the real ``mlflow`` (SQLite and ``mlruns``): every record compared, value
by value, with what the MLflow client reads from the store; a second import copies nothing; an import killed
midway finishes when run again; a dry run writes nothing."""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from shipyard.config import Settings
from shipyard.importers.mlflow import import_mlflow
from shipyard.registry.client import RegistryClient
from shipyard.registry.loading import fetch_package, load_model
from shipyard.store import ArtifactStore
from shipyard.store.sql import SqlStores
from shipyard.tracking.client import TrackingClient
from tests.conftest import PostgresCluster, make_settings
from tests.importers.mlflow.conftest import MlflowStore

REPO = Path(__file__).resolve().parents[3]
# A metric key MLflow takes and Shipyard refuses: reported as not carried, the rest of its run imported.
REFUSED = "trailing "


def _number(value: float) -> Any:
    return "NaN" if math.isnan(value) else value


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_copied(settings: Settings, expected: dict[str, Any]) -> None:
    """Every experiment, run, point, file, model, version and alias MLflow holds, as Shipyard holds it."""
    tracking = TrackingClient(settings)
    stored = {e.name: e for e in tracking.list_experiments(include_deleted=True)}
    for experiment in expected["experiments"]:
        copy = stored[experiment["name"]]
        assert copy.lifecycle_stage.value == experiment["lifecycle_stage"]
        assert copy.created_at == experiment["creation_time"]
    by_id = {e.experiment_id: e.name for e in stored.values()}
    logged = {m["model_id"]: m for m in expected["logged_models"]}
    assert len(expected["runs"]) >= 6
    for want in expected["runs"]:
        run = tracking.get_run(want["run_id"])
        assert by_id[run.experiment_id] == want["experiment"]
        assert (
            run.name,
            run.status.value,
            run.start_time,
            run.end_time,
            run.lifecycle_stage.value,
            run.user,
        ) == (
            want["name"],
            want["status"],
            want["start_time"],
            want["end_time"],
            want["lifecycle_stage"],
            want["user_id"],
        )
        assert dict(run.params) == want["params"]
        assert dict(run.tags) == want["tags"]
        assert run.parent_run_id == want["tags"].get("mlflow.parentRunId")
        assert {k: _number(v) for k, v in run.metrics.items()} == {
            k: v for k, v in want["metrics"].items() if k != REFUSED
        }
        for key, points in want["history"].items():
            if key == REFUSED:
                continue
            got = sorted(
                [m.step, m.timestamp, _number(m.value)] for m in tracking.metric_history(run.run_id, key)
            )
            assert got == points, (run.run_id, key)
        datasets = [
            {
                "name": d.name,
                "digest": d.digest,
                "source_type": d.source_type,
                "source": d.source,
                "schema": d.schema,
                "context": d.context,
            }
            for d in tracking.dataset_inputs(run.run_id)
        ]
        assert datasets == want["datasets"]
        files = {a.path: a.sha256 for a in tracking.list_artifacts(run.run_id)}
        for path, sha in want["artifacts"].items():
            assert _sha(tracking.read_artifact(run.run_id, path)) == sha == files[path]
    # MLflow 3's logged models: Shipyard's own records, their files the MLflow package byte for byte.
    copies = SqlStores.open(settings).logged_models
    for model_id, want in logged.items():
        copy = copies.get(model_id)
        assert (copy.name, copy.source_run_id, dict(copy.params), dict(copy.tags)) == (
            want["name"],
            want["source_run_id"],
            want["params"],
            want["tags"],
        )
        folder = ArtifactStore.configured(settings, copy.artifact_location)
        for path, sha in want["files"].items():
            assert _sha(folder.read_bytes(path)) == sha
        assert folder.exists("MODEL.yaml")
    registry = RegistryClient(tracking)
    assert expected["models"]
    for want in expected["models"]:
        model = registry.get_model(want["name"])
        assert (model.description, dict(model.tags), dict(model.aliases)) == (
            want["description"],
            want["tags"],
            want["aliases"],
        )
        assert model.created_at == want["creation_timestamp"]
        versions = registry.list_versions(want["name"])
        assert [v.version for v in versions] == [v["version"] for v in want["versions"]]
        for version, v in zip(versions, want["versions"], strict=True):
            assert (version.stage.value, version.description, dict(version.tags), version.run_id) == (
                v["stage"],
                v["description"],
                v["tags"],
                v["run_id"],
            )
            assert (version.source_uri, version.created_at, sorted(version.aliases)) == (
                v["source"],
                v["creation_timestamp"],
                sorted(v["aliases"]),
            )
            # The package is the MLflow package byte for byte (plus MODEL.yaml), verified file by file.
            fetched = fetch_package(f"models:/{want['name']}/{v['version']}", registry)
            source = logged[v["source"].removeprefix("models:/")]
            got = {
                p.name: _sha(p.read_bytes()) for p in fetched.directory.iterdir() if p.name != "MODEL.yaml"
            }
            assert got == source["files"]
            assert fetched.manifest.flavor == "mlflow"
            assert fetched.manifest.params == source["params"]


def test_store_imports_with_every_value(mlflow_store: MlflowStore, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    report = import_mlflow(mlflow_store.uri, settings=settings)
    assert report.copied["runs"] == len(mlflow_store.expected["runs"])
    assert report.copied["versions"] == 1 and report.copied["aliases"] == 1
    assert report.copied["metric_points"] == sum(
        len(p) for r in mlflow_store.expected["runs"] for k, p in r["history"].items() if k != REFUSED
    )
    # What Shipyard has no place for is named with the reason, not dropped silently.
    assert any(n.kind == "experiment tags" and "team" in n.why for n in report.not_carried)
    assert any(n.kind == "metric" and repr(REFUSED) in n.what for n in report.not_carried)
    assert_copied(settings, mlflow_store.expected)


def test_imported_mlflow_sklearn_model_loads_without_unpickling(
    mlflow_stores: dict[str, MlflowStore], tmp_path: Path
) -> None:
    """MLflow 3 saved the model with skops: it loads through Shipyard's type allow-list, no trust asked."""
    settings = make_settings(tmp_path / "home")
    import_mlflow(mlflow_stores["sqlite"].uri, settings=settings)
    model = load_model("models:/iris-clf@champion", RegistryClient(TrackingClient(settings)))
    assert model.flavor == "mlflow"
    assert sorted(set(model.predict(pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0]})).tolist())) <= [0.0, 1.0]


def snapshot(settings: Settings) -> dict[str, Any]:
    """Everything imported, keyed by what an import keeps (names, run ids, version numbers)."""
    tracking = TrackingClient(settings)
    registry = RegistryClient(tracking)
    runs = {}
    for experiment in tracking.list_experiments(include_deleted=True):
        found = tracking.search_runs(experiment.experiment_id, include_deleted=True, max_results=1000)
        for run in found:
            history = {k: len(tracking.metric_history(run.run_id, k)) for k in run.metrics}
            files = {a.path: a.sha256 for a in tracking.list_artifacts(run.run_id)}
            inputs = len(tracking.dataset_inputs(run.run_id))
            runs[run.run_id] = (
                experiment.name,
                run.name,
                dict(run.params),
                dict(run.tags),
                history,
                files,
                inputs,
            )
    models = {}
    for model in registry.list_models():
        versions = [(v.version, v.stage.value, v.manifest_sha256) for v in registry.list_versions(model.name)]
        models[model.name] = (dict(model.aliases), dict(model.tags), versions)
    logged = {m.model_id: (m.name, m.source_run_id, m.status.value) for m in _logged_models(settings)}
    return {"runs": runs, "models": models, "logged": logged}


def _logged_models(settings: Settings) -> list[Any]:
    store = SqlStores.open(settings).logged_models
    experiments = [e.experiment_id for e in TrackingClient(settings).list_experiments(include_deleted=True)]
    return store.search(experiments)[0] if experiments else []


def test_second_import_copies_nothing(mlflow_store: MlflowStore, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    import_mlflow(mlflow_store.uri, settings=settings)
    before = snapshot(settings)
    again = import_mlflow(mlflow_store.uri, settings=settings)
    assert {k: v for k, v in again.copied.items() if v} == {}
    assert again.already["runs"] == len(mlflow_store.expected["runs"])
    assert again.already["versions"] == 1 and again.already["aliases"] == 1
    assert snapshot(settings) == before


def test_killed_import_resumes_to_the_same_copy(
    mlflow_stores: dict[str, MlflowStore], tmp_path: Path
) -> None:
    store = mlflow_stores["sqlite"]
    clean = make_settings(tmp_path / "clean")
    import_mlflow(store.uri, settings=clean)
    home = tmp_path / "killed"
    make_settings(home)
    # kill -9 once three runs are stored, one run per transaction: the rest, and the registry, are not.
    code = (
        "import os, signal, sys\n"
        "from shipyard.importers.mlflow import import_mlflow\n"
        "from tests.conftest import make_settings\n"
        "def progress(what, done, total):\n"
        "    if done >= 3:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        f"import_mlflow({store.uri!r}, settings=make_settings(__import__('pathlib').Path({str(home)!r})), "
        "batch_size=1, progress=progress)\n"
    )
    killed = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert killed.returncode == -9, killed.stderr
    settings = make_settings(home)
    partial = snapshot(settings)
    assert 3 <= len(partial["runs"]) < len(store.expected["runs"]) and partial["models"] == {}
    resumed = import_mlflow(store.uri, settings=settings)
    assert resumed.already["runs"] == len(partial["runs"])
    assert resumed.copied["runs"] == len(store.expected["runs"]) - len(partial["runs"])
    assert snapshot(settings) == snapshot(clean)
    assert_copied(settings, store.expected)


def test_dry_run_writes_nothing_and_counts_what_an_import_copies(
    mlflow_store: MlflowStore, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "home")
    dry = import_mlflow(mlflow_store.uri, settings=settings, dry_run=True)
    assert snapshot(settings)["models"] == {}
    assert snapshot(settings)["runs"] == {}
    root = Path(settings.artifact_root)
    assert not root.exists() or not any(p.is_file() for p in root.rglob("*"))
    assert f"  would copy {len(mlflow_store.expected['runs'])} runs" in dry.lines()
    real = import_mlflow(mlflow_store.uri, settings=settings)
    assert dry.copied == real.copied


MLFLOW_TABLES = [
    "experiments",
    "experiment_tags",
    "runs",
    "params",
    "tags",
    "metrics",
    "latest_metrics",
    "datasets",
    "inputs",
    "input_tags",
    "logged_models",
    "logged_model_params",
    "logged_model_metrics",
    "logged_model_tags",
    "registered_models",
    "registered_model_tags",
    "model_versions",
    "model_version_tags",
    "registered_model_aliases",
]


@pytest.mark.postgres
def test_postgresql_store_imports_with_every_value(
    mlflow_stores: dict[str, MlflowStore], postgres: PostgresCluster, tmp_path: Path
) -> None:
    """MLflow's tables and rows (the SQLite store's, copied table by table: the MLflow interpreter here has
    no PostgreSQL driver) read from PostgreSQL."""
    import sqlalchemy as sa

    store = mlflow_stores["sqlite"]
    url = postgres.create_database()
    source, target = sa.create_engine(store.uri), sa.create_engine(url)
    tables = sa.MetaData()
    tables.reflect(source, only=MLFLOW_TABLES)
    for table in tables.tables.values():  # SQLite's CHECK (is_nan IN (0, 1)) is no PostgreSQL boolean check
        table.constraints = {c for c in table.constraints if not isinstance(c, sa.CheckConstraint)}
    tables.create_all(target)
    with source.connect() as read, target.begin() as write:
        for table in tables.sorted_tables:
            rows = [dict(r._mapping) for r in read.execute(table.select())]
            if rows:
                write.execute(table.insert(), rows)
    source.dispose()
    target.dispose()
    settings = make_settings(tmp_path / "home")
    report = import_mlflow(url, settings=settings)
    assert report.copied["runs"] == len(store.expected["runs"])
    assert_copied(settings, store.expected)
