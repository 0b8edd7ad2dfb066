"""The example pipeline (examples/train_pipeline.py) for real: worker processes, a store, the registry.

One full run is shared by the tests that only read what it recorded; the cached re-runs that follow it are
cheap (no step runs again). The CLI test makes its own run, as the README shows it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

import shipyard
from examples.train_pipeline import FEATURES, DataValidationError, training, validate
from shipyard.config import Settings
from shipyard.lineage import Execution, LineageClient
from shipyard.models import registry_client
from shipyard.monitoring import find_baseline
from shipyard.pipelines import Dataset, compile_pipeline
from shipyard.pipelines.executors import LocalExecutor, PipelineRunResult, RayExecutor, StepStatus
from shipyard.store.artifacts import ArtifactStore
from tests.cli.test_cli import run_cli
from tests.conftest import make_settings

S, C, K = StepStatus.SUCCEEDED, StepStatus.CACHED, StepStatus.SKIPPED
STEPS = ["ingest", "validate", "split", "train", "evaluate", "register"]


@dataclass(frozen=True)
class FirstRun:
    settings: Settings
    result: PipelineRunResult


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstRun]:
    home = tmp_path_factory.mktemp("example") / "home"
    settings = make_settings(home)  # not the environment's: the steps' own shipyard calls must follow it
    result = LocalExecutor(max_parallel=2, settings=settings).run(compile_pipeline(training))
    yield FirstRun(settings, result)


def rerun(first: FirstRun, **parameters: object) -> PipelineRunResult:
    return LocalExecutor(max_parallel=2, settings=first.settings).run(compile_pipeline(training), parameters)


def versions(first: FirstRun) -> list[int]:
    return [v.version for v in shipyard.models.list_versions("breast-cancer", settings=first.settings)]


def test_every_step_succeeds_and_the_model_is_registered_as_challenger(first_run: FirstRun) -> None:
    result, settings = first_run.result, first_run.settings
    assert {s: r.status for s, r in result.steps.items()} == dict.fromkeys(STEPS, S), {
        s: r.error for s, r in result.steps.items() if r.error
    }
    assert result.steps["ingest"].outputs["output"] == 569
    assert result.steps["split"].outputs["n_train"] + result.steps["split"].outputs["n_test"] == 569
    assert result.steps["register"].outputs["output"] == 1

    version = shipyard.models.get("models:/breast-cancer@challenger", settings=settings)
    assert version.version == 1 and version.flavor == "sklearn"
    assert version.run_id == result.steps["register"].run_id
    accuracy = result.steps["evaluate"].outputs["output"]
    assert version.tags["accuracy"] == f"{accuracy:.4f}"
    assert {d["name"] for d in version.lineage["datasets"]} == {"breast-cancer-train", "trained-model"}

    loaded = shipyard.models.load("models:/breast-cancer@challenger", settings=settings)
    rows = load_breast_cancer(as_frame=True).frame[FEATURES].head(3)
    assert set(loaded.predict(rows).tolist()) <= {0, 1}
    assert loaded.signature is not None  # the register step logged an input example
    # ... and its training features, which monitoring finds through the registry.
    store = ArtifactStore(settings.artifact_root)
    baseline = find_baseline(store, "breast-cancer", registry=registry_client(settings), version="1")
    assert baseline.source == "models:/breast-cancer/1" and list(baseline.frame.columns) == FEATURES


def test_metrics_are_logged_on_the_step_runs(first_run: FirstRun) -> None:
    result = first_run.result
    client = shipyard.get_client(first_run.settings)
    evaluate_run = client.get_run(result.steps["evaluate"].run_id)
    accuracy = result.steps["evaluate"].outputs["output"]
    assert set(evaluate_run.metrics) == {"accuracy", "f1", "roc_auc"}
    assert evaluate_run.metrics["accuracy"] == pytest.approx(accuracy) and accuracy > 0.9
    metrics_file = json.loads(Path(result.steps["evaluate"].outputs["metrics"]).read_text())
    assert metrics_file == pytest.approx(evaluate_run.metrics)

    train_run = client.get_run(result.steps["train"].run_id)
    assert train_run.params == {"n_estimators": "100", "max_depth": "5", "seed": "42"}
    assert train_run.metrics["train_accuracy"] == result.steps["train"].outputs["output"]
    (trained_on,) = client.dataset_inputs(train_run.run_id)
    assert trained_on.name == "breast-cancer-train" and trained_on.context == "training"


def test_lineage_leads_from_the_registered_version_through_the_train_step_to_the_ingested_data(
    first_run: FirstRun,
) -> None:
    result = first_run.result
    graph = LineageClient(shipyard.get_client(first_run.settings)).upstream("models:/breast-cancer/1")
    by_uri = {a.uri: a for a in graph.artifacts.values()}

    def producer(uri: str) -> Execution:
        (execution,) = graph.producers(by_uri[uri].id)
        return execution

    package = f"runs:/{result.steps['register'].run_id}/model"
    model_file = "file://" + result.steps["train"].outputs["model"]
    train_file = "file://" + result.steps["split"].outputs["train"]
    ingested = "file://" + result.steps["ingest"].outputs["data"]
    assert {package, model_file, train_file, ingested} <= set(by_uri), sorted(by_uri)
    assert producer(package).run_id == result.steps["register"].run_id
    assert producer(model_file).run_id == result.steps["train"].run_id
    assert producer(train_file).run_id == result.steps["split"].run_id
    assert producer(ingested).run_id == result.steps["ingest"].run_id
    assert graph.inputs(producer(ingested).id) == []  # the data enters the pipeline at ingest


def test_a_rerun_reuses_every_step_and_registers_nothing_new(first_run: FirstRun) -> None:
    again = rerun(first_run)
    assert {s: r.status for s, r in again.steps.items()} == dict.fromkeys(STEPS, C)
    assert again.steps["register"].outputs["output"] == 1
    assert again.steps["evaluate"].cached_from == first_run.result.steps["evaluate"].run_id
    assert versions(first_run) == [1]


def test_a_threshold_the_model_cannot_beat_skips_register(first_run: FirstRun) -> None:
    strict = rerun(first_run, threshold=1.01)
    statuses = {s: r.status for s, r in strict.steps.items()}
    # evaluate does not take the threshold, so a stricter one re-uses it and only re-decides the condition
    assert statuses == {"ingest": C, "validate": C, "split": C, "train": C, "evaluate": C, "register": K}
    assert strict.status is S and "condition is false" in (strict.steps["register"].error or "")
    assert versions(first_run) == [1]


def test_the_example_runs_on_ray_and_registers_its_model(tmp_path: Path, ray_cluster: object) -> None:
    settings = make_settings(tmp_path / "ray-home")
    result = RayExecutor(settings=settings).run(compile_pipeline(training), {"model_name": "on-ray"})
    assert {s: r.status for s, r in result.steps.items()} == dict.fromkeys(STEPS, S), {
        s: r.error for s, r in result.steps.items() if r.error
    }
    (version,) = shipyard.models.list_versions("on-ray", settings=settings)
    assert version.aliases == ("challenger",) and version.run_id == result.steps["register"].run_id
    assert version.pipeline_run_id == result.run_id


@pytest.fixture
def good_frame() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame


def test_validate_passes_the_bundled_data(good_frame: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    good_frame.to_parquet(path)
    # no missing or extra columns, some rows; nulls and type of each of the 31 columns; the labels
    assert validate(data=Dataset(str(path))) == 66


def _null(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[3, "mean texture"] = None
    return frame


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    frame["worst area"] = frame["worst area"].astype(str)
    return frame


def _bad_label(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[0, "target"] = 2
    return frame


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (_null, "column 'mean texture' has 1 null value(s)"),
        (_as_text, "column 'worst area' must be float, got "),  # object or str, by pandas version
        (_bad_label, "column 'target' must hold 0 or 1, found [2]"),
        (lambda f: f.drop(columns=["mean radius"]), "missing column(s): 'mean radius'"),
        (lambda f: f.assign(patient_id=1), "unexpected column(s): 'patient_id'"),
    ],
    ids=["null", "dtype", "label", "missing", "extra"],
)
def test_validate_names_the_column_that_breaks_the_contract(
    good_frame: pd.DataFrame, tmp_path: Path, corrupt: Callable[[pd.DataFrame], pd.DataFrame], message: str
) -> None:
    path = tmp_path / "bad.parquet"
    corrupt(good_frame).to_parquet(path)
    with pytest.raises(DataValidationError) as info:
        validate(data=Dataset(str(path)))
    assert str(info.value).startswith(message)


def test_the_readme_commands_run_the_example(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = tmp_path / "p.yaml"
    code, out, _ = run_cli(capsys, "pipeline", "compile", "examples.train_pipeline:training", "-o", str(spec))
    assert code == 0 and "breast-cancer-training (6 steps)" in out
    code, out, err = run_cli(capsys, "pipeline", "run", str(spec), "-p", "threshold=0.8", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["status"] == "succeeded" and result["steps"]["register"]["outputs"]["output"] == 1
    code, out, _ = run_cli(capsys, "lineage", "models:/breast-cancer/1")
    steps = result["steps"]
    assert code == 0
    assert f"pipeline_step train (run {steps['train']['run_id']})" in out
    assert f"pipeline_step ingest (run {steps['ingest']['run_id']})" in out
