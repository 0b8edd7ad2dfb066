"""Batch inference end to end: a registered model scores Parquet and CSV files, folders and dataset
versions in bounded batches, alone or on two worker processes, as a run with lineage; bad input is refused
before any row is scored, and a job that fails halfway leaves no output behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.batch import batch_predict
from shipyard.config import get_settings
from shipyard.datasets import add_dataset
from shipyard.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.lineage import LineageClient
from shipyard.pipelines import compile_pipeline
from shipyard.pipelines.executors import LocalExecutor, StepStatus
from shipyard.processes import usable_cpus
from shipyard.tracking import RunStatus, get_client
from tests.batch.batch_components import FEATURES, frame, scoring
from tests.conftest import console


@pytest.fixture
def model() -> LogisticRegression:
    """A classifier registered as churn/1, its signature the five features."""
    train = frame(400, seed=0)
    fitted = LogisticRegression().fit(train[FEATURES], (train.f0 + train.f1 > 0).astype(int))
    with shipyard.start_run("train") as run:
        info = shipyard.models.log(fitted, "model", input_example=train[FEATURES].head(3))
    shipyard.models.register(info.uri if hasattr(info, "uri") else f"runs:/{run.run_id}/model", "churn")
    return fitted


def customers(path: Path, rows: int = 1000, seed: int = 1, **options: object) -> pd.DataFrame:
    data = frame(rows, seed)
    if path.suffix == ".csv":
        data.to_csv(path, index=False)
    else:
        data.to_parquet(path, row_group_size=options.get("row_group_size", 250))  # type: ignore[arg-type]
    return data


def test_native_runs_scikit_learn_itself_on_two_workers(model: LogisticRegression) -> None:
    data = customers(Path("customers.parquet"))
    for prefer in ("native", "onnx"):
        result = batch_predict(
            "models:/churn/1", "customers.parquet", f"{prefer}.parquet", probabilities=True, batch_rows=300,
            workers=2, prefer=prefer,
        )  # fmt: skip
        assert get_client().get_run(result.run_id).params["batch.prefer"] == prefer
    native, onnx = pd.read_parquet("native.parquet"), pd.read_parquet("onnx.parquet")
    expected = model.predict_proba(data[FEATURES])
    np.testing.assert_allclose(native[["proba_0", "proba_1"]], expected, rtol=1e-12)  # scikit-learn's own
    np.testing.assert_allclose(onnx[["proba_0", "proba_1"]], expected, atol=1e-6)
    assert native.prediction.tolist() == onnx.prediction.tolist() == model.predict(data[FEATURES]).tolist()
    with pytest.raises(InvalidInput, match="prefer must be one of"):
        batch_predict("models:/churn/1", "customers.parquet", "x.parquet", prefer="fastest")


def test_every_row_is_scored_with_its_keys_and_the_model_version(model: LogisticRegression) -> None:
    data = customers(Path("customers.parquet"))
    seen: list[tuple[int, int | None]] = []
    result = batch_predict(
        "models:/churn/1", "customers.parquet", "scores.parquet", probabilities=True, batch_rows=300,
        on_progress=lambda rows, total: seen.append((rows, total)),
    )  # fmt: skip
    out = pd.read_parquet("scores.parquet")
    assert list(out.columns) == ["id", "region", "prediction", "proba_0", "proba_1", "model_version"]
    assert out.id.tolist() == data.id.tolist() and out.region.tolist() == data.region.tolist()
    assert out.prediction.tolist() == model.predict(data[FEATURES]).tolist()
    # The verified ONNX copy runs by default (as shipyard serve runs it): probabilities in float32.
    np.testing.assert_allclose(out[["proba_0", "proba_1"]], model.predict_proba(data[FEATURES]), atol=1e-6)
    assert set(out.model_version) == {"models:/churn/1"}
    # Read in batches of at most 300 rows, progress reported against the total after each.
    steps = np.diff([0] + [rows for rows, _ in seen])
    assert seen[-1] == (1000, 1000) and len(steps) >= 4 and steps.max() <= 300 and steps.min() > 0
    assert result.rows == 1000 and result.model == "models:/churn/1"
    run = get_client().get_run(result.run_id)
    assert run.status is RunStatus.FINISHED and run.metrics["rows"] == 1000
    assert get_client().get_experiment(run.experiment_id).name == "batch-inference"
    assert run.params["batch.model_version"] == "models:/churn/1"
    graph = LineageClient(get_client()).upstream("file://" + str(Path("scores.parquet").resolve()))
    assert graph.root.sha256 == result.sha256
    assert {a.uri for a in graph.sources()} == {"file://" + str(Path("customers.parquet").resolve())}
    uris = {a.uri for a in graph.artifacts.values()}
    assert "models:/churn/1" in uris and any(u.startswith("runs:/") for u in uris)  # and back to its run


@pytest.mark.skipif(usable_cpus() < 2, reason="two workers need two CPUs")
def test_two_workers_write_the_same_rows_in_the_same_order(model: LogisticRegression) -> None:
    Path("in").mkdir()
    parts = [customers(Path("in") / f"part-{i}.parquet", rows=700, seed=i) for i in range(3)]
    alone = batch_predict("models:/churn/1", "in", "alone.parquet", batch_rows=200)
    both = batch_predict("models:/churn/1", "in", "both.parquet", batch_rows=200, workers=2)
    one, two = pd.read_parquet("alone.parquet"), pd.read_parquet("both.parquet")
    pd.testing.assert_frame_equal(one, two)
    assert one.id.tolist() == pd.concat(parts).id.tolist() and alone.rows == both.rows == 2100


def test_on_ray_data_the_output_is_the_same_rows_in_the_same_order(
    model: LogisticRegression, ray_cluster: object
) -> None:
    Path("in").mkdir()
    for i in range(2):
        customers(Path("in") / f"part-{i}.parquet", rows=600, seed=i)
    batch_predict("models:/churn/1", "in", "local.parquet", batch_rows=200)
    result = batch_predict("models:/churn/1", "in", "ray.parquet", batch_rows=200, executor="ray", workers=2)
    pd.testing.assert_frame_equal(pd.read_parquet("local.parquet"), pd.read_parquet("ray.parquet"))
    assert result.rows == 1200 and get_client().get_run(result.run_id).params["batch.executor"] == "ray"


def test_csv_in_and_out_and_a_dataset_version(model: LogisticRegression) -> None:
    data = customers(Path("customers.csv"))
    batch_predict("models:/churn/1", "customers.csv", "scores.csv", keys=["id"])
    out = pd.read_csv("scores.csv")
    assert list(out.columns) == ["id", "prediction", "model_version"]
    assert out.prediction.tolist() == model.predict(data[FEATURES]).tolist()
    version = add_dataset("customers.csv", "customers")
    result = batch_predict("models:/churn/1", "data:customers@1", "from-dataset.parquet", keys=["id"])
    assert result.rows == 1000
    graph = LineageClient(get_client()).upstream("file://" + str(Path("from-dataset.parquet").resolve()))
    inputs = {a.uri: a.sha256 for e in graph.executions for a in graph.inputs(e)}
    assert inputs["data:customers@1"] == version.sha256


def test_a_missing_signature_column_is_named_before_any_row_is_scored(model: LogisticRegression) -> None:
    customers(Path("customers.parquet")).drop(columns=["f3"]).to_parquet("partial.parquet")
    with pytest.raises(InvalidInput, match=r"batch input partial.parquet lacks column\(s\) 'f3' that model "):
        batch_predict("models:/churn/1", "partial.parquet", "scores.parquet")
    assert not Path("scores.parquet").exists()
    with pytest.raises(NotFound):  # no run was started
        get_client().get_experiment("batch-inference")


def test_an_existing_output_is_refused_without_overwrite(model: LogisticRegression) -> None:
    customers(Path("customers.parquet"))
    Path("scores.parquet").write_text("keep me")
    with pytest.raises(AlreadyExists, match="batch output 'scores.parquet' exists; pass --overwrite"):
        batch_predict("models:/churn/1", "customers.parquet", "scores.parquet")
    assert Path("scores.parquet").read_text() == "keep me"
    batch_predict("models:/churn/1", "customers.parquet", "scores.parquet", overwrite=True)
    assert len(pd.read_parquet("scores.parquet")) == 1000


def test_a_job_that_fails_halfway_leaves_no_output_and_a_failed_run(model: LogisticRegression) -> None:
    Path("in").mkdir()
    customers(Path("in") / "a.csv")
    bad = customers(Path("in") / "b.csv").astype({"f2": object})
    bad.loc[500, "f2"] = "oops"
    bad.to_csv(Path("in") / "b.csv", index=False)
    with pytest.raises(InvalidInput, match="f2"):
        batch_predict("models:/churn/1", "in", "scores.parquet", batch_rows=100)
    assert not Path("scores.parquet").exists() and not list(Path(".").glob("scores.parquet*"))
    (run,) = get_client().search_runs([get_client().get_experiment("batch-inference").experiment_id])
    assert run.status is RunStatus.FAILED


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"keys": ["id", "nope"]}, r"key column\(s\) 'nope' are not in batch input"),
        ({"batch_rows": 0}, "batch_rows must be a whole number from 1"),
        ({"workers": 10_000}, "workers=10000 but this machine gives this process"),
        ({"keys": ["prediction"]}, "would clash with the output's prediction columns"),
    ],
)
def test_bad_settings_are_refused_by_name(model: LogisticRegression, options: dict, message: str) -> None:
    data = customers(Path("customers.parquet"))
    data.rename(columns={"region": "prediction"}).to_parquet("clash.parquet")
    source = "clash.parquet" if options.get("keys") == ["prediction"] else "customers.parquet"
    with pytest.raises(InvalidInput, match=message):
        batch_predict("models:/churn/1", source, "scores.parquet", **options)


def test_inputs_that_are_not_tables_are_refused_naming_them(model: LogisticRegression) -> None:
    Path("notes.txt").write_text("x")
    Path("empty").mkdir()
    with pytest.raises(InvalidInput, match="'notes.txt' is neither .parquet nor .csv"):
        batch_predict("models:/churn/1", "notes.txt", "scores.parquet")
    with pytest.raises(InvalidInput, match="'empty' is a folder with no .parquet or .csv file"):
        batch_predict("models:/churn/1", "empty", "scores.parquet")
    with pytest.raises(NotFound, match="'missing.parquet': nothing there"):
        batch_predict("models:/churn/1", "missing.parquet", "scores.parquet")
    customers(Path("customers.parquet"))
    with pytest.raises(InvalidInput, match="must end in .parquet or .csv"):
        batch_predict("models:/churn/1", "customers.parquet", "scores.json")


def test_the_cli_scores_and_answers_bad_input_in_one_line(model: LogisticRegression, tmp_path: Path) -> None:
    customers(Path("customers.parquet"))
    done = console("predict", "models:/churn/1", "customers.parquet", "-o", "scores.parquet", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 1000
    again = console("predict", "models:/churn/1", "customers.parquet", "-o", "scores.parquet")
    assert again.returncode != 0
    assert again.stderr.strip().splitlines() == [
        "error: batch output 'scores.parquet' exists; pass --overwrite (overwrite=True) to replace it"
    ]


def test_a_pipeline_step_scores_an_upstream_dataset(model: LogisticRegression) -> None:
    result = LocalExecutor(max_parallel=1, settings=get_settings()).run(
        compile_pipeline(scoring), {"model": "models:/churn/1", "prefer": "native"}
    )
    assert result.status is StepStatus.SUCCEEDED, {k: s.error for k, s in result.steps.items()}
    step = result.steps["batch-predict"]
    assert step.outputs["output"] == 1000
    out = pd.read_parquet(step.outputs["predictions"])
    assert list(out.columns) == ["id", "region", "prediction", "model_version"] and len(out) == 1000
    step_run = get_client().get_run(step.run_id)  # the job logged on the step's own run, beside its params
    assert step_run.metrics["rows"] == 1000 and step_run.params["keys"] == ""
    assert step_run.params["batch.keys"] == "id,region"
    assert step_run.params["batch.prefer"] == "native"


def test_a_pipeline_step_with_an_unknown_runtime_fails_naming_prefer(model: LogisticRegression) -> None:
    result = LocalExecutor(max_parallel=1, settings=get_settings()).run(
        compile_pipeline(scoring), {"model": "models:/churn/1", "prefer": "fastest"}
    )
    step = result.steps["batch-predict"]
    assert step.status is StepStatus.FAILED
    assert "prefer must be one of" in (step.error or "") and "'fastest'" in (step.error or "")
