"""``shipyard.evaluate`` on real registered models, real files and real runs: the metrics are scikit-learn's
own, per segment too; figures and JSON land in the run; baselines, thresholds and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss, mean_squared_error, r2_score, roc_auc_score

import shipyard
from shipyard.datasets import add_dataset
from shipyard.errors import InvalidInput, ModelValidationFailed
from shipyard.evaluation import EvaluationInput, evaluate, metric_keys
from shipyard.registry.signature import infer_signature
from shipyard.tracking.naming import check_key


def _artifact(run_id: str, path: str) -> bytes:
    return shipyard.get_client().read_artifact(run_id, path)


def test_classifier_metrics_are_sklearns_and_land_in_a_new_run(classifiers: pd.DataFrame) -> None:
    result = evaluate("models:/clf@champion", classifiers, targets="label", segments=["region"])

    model = shipyard.models.load("models:/clf/1")
    features = classifiers.drop(columns=["label"])
    predicted, proba, y = model.predict(features), model.predict_proba(features), classifiers["label"]
    assert result.metrics["accuracy"] == pytest.approx(accuracy_score(y, predicted))
    assert result.metrics["f1"] == pytest.approx(f1_score(y, predicted))
    assert result.metrics["roc_auc"] == pytest.approx(roc_auc_score(y, proba[:, 1]))
    assert result.metrics["log_loss"] == pytest.approx(log_loss(y, proba))
    assert result.metrics["example_count"] == len(classifiers)
    south = classifiers["region"] == "south"
    assert result.candidate.segments["region"]["south"]["accuracy"] == pytest.approx(
        accuracy_score(y[south], np.asarray(predicted)[south])
    )

    run = shipyard.get_run(result.run_id)
    experiment = shipyard.get_client().get_experiment(run.experiment_id)
    assert experiment.name == "evaluation" and run.status.value == "FINISHED"
    assert run.tags["shipyard.evaluation.model_uri"] == "models:/clf@champion"
    assert run.tags["shipyard.evaluation.model_version"] == "models:/clf/1"
    assert run.params["evaluation.model_type"] == "classifier"
    assert run.params["evaluation.targets"] == "label"
    assert run.metrics["accuracy"] == pytest.approx(result.metrics["accuracy"])
    # "east/west" holds a "/", which a metric key's value part may not: it becomes "_".
    assert run.metrics["segment/region:east_west/accuracy"] == pytest.approx(
        result.candidate.segments["region"]["east/west"]["accuracy"]
    )
    stored = {a.path for a in shipyard.get_client().list_artifacts(result.run_id)}
    for name in ("confusion_matrix.png", "roc_curve.png", "precision_recall_curve.png",
                 "calibration_curve.png", "confusion_matrix.json", "metrics.json"):  # fmt: skip
        assert f"evaluation/{name}" in stored and f"evaluation/{name}" in result.artifacts
    assert _artifact(result.run_id, "evaluation/roc_curve.png").startswith(b"\x89PNG")
    report = json.loads(_artifact(result.run_id, "evaluation/metrics.json"))
    assert report["model"]["metrics"]["accuracy"] == result.metrics["accuracy"]
    assert set(report["model"]["segments"]["region"]) == {"north", "south", "east/west"}
    matrix = json.loads(_artifact(result.run_id, "evaluation/confusion_matrix.json"))
    assert matrix["labels"] == [0, 1] and sum(map(sum, matrix["matrix"])) == len(classifiers)


def test_a_baseline_is_evaluated_alike_and_thresholds_that_hold_pass(classifiers: pd.DataFrame) -> None:
    result = evaluate(
        "models:/clf/1",
        classifiers,
        targets="label",
        baseline_model="models:/clf/2",
        validation_thresholds={"accuracy": {"min": 0.5, "min_delta": -0.5}, "log_loss": {"max": 5}},
    )
    assert result.baseline is not None and result.baseline.model_version == "models:/clf/2"
    for name, value in result.metrics.items():
        assert result.differences[name] == pytest.approx(value - result.baseline_metrics[name])
    assert result.passed and [r.bound for r in result.validation] == ["min", "min_delta", "max"]
    run = shipyard.get_run(result.run_id)
    assert run.tags["shipyard.evaluation.validation"] == "passed"
    assert run.metrics["baseline/accuracy"] == pytest.approx(result.baseline_metrics["accuracy"])
    assert "evaluation/baseline/roc_curve.png" in result.artifacts


def test_a_missed_threshold_raises_after_logging_everything(classifiers: pd.DataFrame) -> None:
    with pytest.raises(ModelValidationFailed) as info:
        evaluate(
            "models:/clf/2",
            classifiers,
            targets="label",
            baseline_model="models:/clf/1",
            # MLflow's spelling: at least 0.999, and 0.5 better than the baseline.
            validation_thresholds={
                "accuracy": {"threshold": 0.999, "min_absolute_change": 0.5, "greater_is_better": True},
                "example_count": {"min": 1},
            },
        )
    result = info.value.result
    message = str(info.value)
    accuracy = result.metrics["accuracy"]
    assert f"accuracy {accuracy:.4g} < min 0.999" in message
    assert "min_delta" in message and f"vs baseline {result.baseline_metrics['accuracy']:.4g}" in message
    assert (
        "models:/clf/2" in message and "baseline models:/clf/1" in message and "example_count" not in message
    )
    run = shipyard.get_run(result.run_id)
    assert run.tags["shipyard.evaluation.validation"] == "failed"
    assert run.status.value == "FINISHED" and run.metrics["accuracy"] == pytest.approx(accuracy)


def test_a_regressor_from_a_parquet_file_and_a_run_uri(tmp_path: Path) -> None:
    X, y = make_regression(n_samples=200, n_features=4, noise=5.0, random_state=0)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(target=y)
    model = RandomForestRegressor(n_estimators=10, random_state=0).fit(frame.iloc[:150, :4], y[:150])
    with shipyard.start_run("train") as run:
        uri = shipyard.models.log(model, "model", run=run, signature=infer_signature(frame.iloc[:3, :4])).uri
    held_out = frame.iloc[150:].reset_index(drop=True)
    held_out.to_parquet(tmp_path / "eval.parquet")

    result = evaluate(uri, tmp_path / "eval.parquet", targets="target", model_type="regressor")
    predicted = model.predict(held_out.iloc[:, :4])
    assert result.metrics["mse"] == pytest.approx(mean_squared_error(held_out["target"], predicted))
    assert result.metrics["rmse"] == pytest.approx(np.sqrt(result.metrics["mse"]))
    assert result.metrics["r2"] == pytest.approx(r2_score(held_out["target"], predicted))
    assert {"mae", "mape", "max_error", "example_count"} <= set(result.metrics)
    assert result.candidate.model_version == uri
    assert {"evaluation/residuals.png", "evaluation/predicted_vs_actual.png"} <= set(result.artifacts)
    (dataset,) = shipyard.get_client().dataset_inputs(result.run_id)
    assert dataset.name == "eval.parquet" and dataset.context == "evaluation"

    # A zero target would make MAPE a division by zero: it is left out, with a note saying why.
    held_out.loc[0, "target"] = 0.0
    guarded = evaluate(model, held_out, targets="target", model_type="regressor", evaluators=["default"])
    assert "mape" not in guarded.metrics and any("mape" in note for note in guarded.notes)
    assert guarded.candidate.model_uri == "object:RandomForestRegressor"


def test_multiclass_gets_macro_and_weighted_scores_and_one_vs_rest_curves() -> None:
    X, y = make_classification(n_samples=300, n_features=6, n_informative=4, n_classes=3, random_state=2)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)]).assign(kind=np.array(["a", "b", "c"])[y])
    model = LogisticRegression(max_iter=500).fit(frame.iloc[:200, :6], frame["kind"][:200])
    with shipyard.start_run("train") as run:
        uri = shipyard.models.log(model, "model", run=run, signature=infer_signature(frame.iloc[:3, :6])).uri
    loaded = shipyard.models.load(uri)
    test = frame.iloc[200:]

    result = evaluate(loaded, test, targets="kind")
    predicted = model.predict(test.iloc[:, :6])
    assert result.metrics["f1"] == pytest.approx(f1_score(test["kind"], predicted, average="macro"))
    assert result.metrics["f1_weighted"] == pytest.approx(
        f1_score(test["kind"], predicted, average="weighted")
    )
    expected_auc = roc_auc_score(test["kind"], model.predict_proba(test.iloc[:, :6]), multi_class="ovr")
    assert result.metrics["roc_auc"] == pytest.approx(expected_auc)
    assert "evaluation/roc_curve.png" in result.artifacts
    assert result.candidate.model_version == uri


def test_custom_evaluators_run_overall_and_per_segment(classifiers: pd.DataFrame) -> None:
    def positive_rate(given: EvaluationInput) -> dict[str, float]:
        return {"positive_rate": float(np.mean(given.predictions == 1))}

    result = evaluate(
        "models:/clf/1",
        classifiers,
        targets="label",
        evaluators=["default", positive_rate],
        segments=["region"],
    )
    model = shipyard.models.load("models:/clf/1")
    assert result.metrics["positive_rate"] == pytest.approx(np.mean(model.predict(classifiers) == 1))
    assert "accuracy" in result.metrics
    assert "positive_rate" in result.candidate.segments["region"]["north"]

    only = evaluate("models:/clf/1", classifiers, targets="label", evaluators=[positive_rate])
    assert set(only.metrics) == {"positive_rate"} and only.artifacts == ("evaluation/metrics.json",)

    with pytest.raises(InvalidInput, match=r"unknown evaluator\(s\): 'shap'; built in: default"):
        evaluate("models:/clf/1", classifiers, targets="label", evaluators=["default", "shap"])


def test_the_active_run_or_a_named_one_receives_the_evaluation(classifiers: pd.DataFrame) -> None:
    with shipyard.start_run("mine") as run:
        result = evaluate("models:/clf/1", classifiers, targets="label", segments="region")
        assert result.run_id == run.run_id and run.status.value == "RUNNING"
    assert shipyard.get_run(run.run_id).metrics["segment/region:north/accuracy"] == pytest.approx(
        result.candidate.segments["region"]["north"]["accuracy"]
    )
    with shipyard.start_run("other") as other:
        pass
    again = evaluate(
        "models:/clf/1", classifiers, targets="label", evaluators=[_accuracy], run_id=other.run_id
    )
    record = shipyard.get_run(other.run_id)
    assert (
        again.run_id == other.run_id and record.status.value == "FINISHED" and "my_accuracy" in record.metrics
    )


def test_a_dataset_version_is_evaluation_data(classifiers: pd.DataFrame, tmp_path: Path) -> None:
    classifiers.to_csv(tmp_path / "holdout.csv", index=False)
    add_dataset(tmp_path / "holdout.csv", "holdout")
    result = evaluate("models:/clf/1", "data:holdout@1", targets="label", evaluators=[_accuracy])
    predicted = shipyard.models.load("models:/clf/1").predict(classifiers)
    assert result.metrics["my_accuracy"] == pytest.approx(accuracy_score(classifiers["label"], predicted))
    (dataset,) = shipyard.get_client().dataset_inputs(result.run_id)
    assert dataset.source == "data:holdout@1"


def _accuracy(given: EvaluationInput) -> dict[str, float]:
    return {"my_accuracy": float(np.mean(given.predictions == given.targets))}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"targets": "nope"}, r"targets column 'nope' is not in the data \(DataFrame\); columns: x0, x1"),
        ({"model_type": "ranker"}, r"model_type 'ranker' is unknown; use one of: classifier, regressor"),
        ({"segments": ["region", "city"]}, r"segment column\(s\) 'city' not in the data .*columns: x0"),
        ({"data": "empty"}, r"the data \(DataFrame\) has no rows"),
        ({"data": "continuous"}, r"targets column 'label' holds continuous values .*model_type='regressor'"),
        ({"validation_thresholds": {"auc": {"min": 0.5}}}, r"not computed: 'auc'; computed: accuracy, "),
        (
            {"validation_thresholds": {"f1": {"min_delta": 0}}},
            r"for f1 compare with a baseline: pass baseline",
        ),
        (
            {"validation_thresholds": {"f1": {"minimum": 1}}},
            r"validation_thresholds.f1: minimum: Extra inputs",
        ),
    ],
)
def test_bad_input_is_refused_by_name_before_any_run(
    classifiers: pd.DataFrame, change: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {"targets": "label", **change}
    data = {"empty": classifiers.iloc[:0], "continuous": classifiers.assign(label=classifiers["x0"])}
    arguments["data"] = data.get(arguments.get("data", ""), classifiers)
    with pytest.raises(InvalidInput, match=message):
        evaluate("models:/clf/1", **arguments)
    assert "evaluation" not in {e.name for e in shipyard.get_client().list_experiments()}


def test_segment_values_become_valid_metric_keys() -> None:
    from shipyard.evaluation import ModelEvaluation

    evaluation = ModelEvaluation(
        "m", None, {"accuracy": 1.0}, {"city name": {"São Paulo/SP=1": {"accuracy": 0.5, "r2": float("nan")}}}
    )
    keys = metric_keys(evaluation)
    assert keys == {"accuracy": 1.0, "segment/city name:São Paulo_SP_1/accuracy": 0.5}
    for key in keys:
        check_key(key, "metric")
