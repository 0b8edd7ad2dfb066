"""scikit-learn autologging, read back from the store: params, training metrics, model, search CV runs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import shipyard
from shipyard import RunStatus, Settings
from shipyard.autologging import AUTOLOG_TAG
from tests.autologging.runs import artifact_paths, only_run

X, Y = load_iris(return_X_y=True)


def test_a_classifier_fit_logs_its_params_training_metrics_and_model(autologged: Settings) -> None:
    model = LogisticRegression(C=0.5, max_iter=300).fit(X, Y)

    run = only_run(autologged)
    assert run.name.startswith("LogisticRegression-")
    assert run.status is RunStatus.FINISHED
    assert run.params == {k: str(v) for k, v in model.get_params(deep=True).items()}
    assert run.tags["estimator_name"] == "LogisticRegression"
    assert run.tags["estimator_class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert run.tags[AUTOLOG_TAG] == "sklearn"
    predicted, proba = model.predict(X), model.predict_proba(X)
    assert run.metrics == pytest.approx(
        {
            "training_accuracy_score": metrics.accuracy_score(Y, predicted),
            "training_precision_score": metrics.precision_score(Y, predicted, average="weighted"),
            "training_recall_score": metrics.recall_score(Y, predicted, average="weighted"),
            "training_f1_score": metrics.f1_score(Y, predicted, average="weighted"),
            "training_log_loss": metrics.log_loss(Y, proba),
            "training_roc_auc": metrics.roc_auc_score(Y, proba, multi_class="ovr"),
            "training_score": model.score(X, Y),
        }
    )
    [dataset] = shipyard.get_client(autologged).dataset_inputs(run.run_id)
    assert (dataset.context, dataset.num_rows) == ("train", 150)
    loaded = shipyard.models.load(f"runs:/{run.run_id}/model", settings=autologged)
    assert loaded.flavor == "sklearn"
    assert loaded.manifest.lineage["datasets"][0]["digest"] == dataset.digest
    assert loaded.manifest.has_input_example
    assert loaded.signature is not None
    np.testing.assert_array_equal(loaded.predict(X[:5]), predicted[:5])


def test_a_regressor_fit_logs_the_regression_metrics(autologged: Settings) -> None:
    shipyard.autolog(settings=autologged, log_models=False)  # not about the model: faster
    target = X[:, 0] * 2.0 + X[:, 1]
    model = LinearRegression().fit(X[:, 1:], target)

    run = only_run(autologged)
    predicted = model.predict(X[:, 1:])
    mse = metrics.mean_squared_error(target, predicted)
    assert run.metrics == pytest.approx(
        {
            "training_mean_squared_error": mse,
            "training_root_mean_squared_error": mse**0.5,
            "training_mean_absolute_error": metrics.mean_absolute_error(target, predicted),
            "training_r2_score": metrics.r2_score(target, predicted),
            "training_score": model.score(X[:, 1:], target),
        }
    )


def test_a_pipeline_is_one_run_and_its_steps_are_not_logged_again(autologged: Settings) -> None:
    shipyard.autolog(settings=autologged, log_models=False)  # not about the model: faster
    make_pipeline(StandardScaler(), LogisticRegression(C=2.0, max_iter=300)).fit(X, Y)

    run = only_run(autologged)
    assert run.name.startswith("Pipeline-")
    assert run.params["logisticregression__C"] == "2.0"
    assert run.params["standardscaler__with_mean"] == "True"


def test_a_search_logs_the_best_candidate_and_a_child_run_per_best_candidate(autologged: Settings) -> None:
    shipyard.autolog(settings=autologged, max_tuning_runs=2)
    search = GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.01, 0.1, 1.0]}, cv=3).fit(X, Y)

    client = shipyard.get_client(autologged)
    runs = list(client.search_runs())
    parents = [r for r in runs if r.parent_run_id is None]
    assert len(parents) == 1 and len(runs) == 3  # the refit and the 9 split fits are not runs of their own
    parent = parents[0]
    assert parent.params["best_C"] == str(search.best_params_["C"])
    assert parent.params["param_grid"] == str({"C": [0.01, 0.1, 1.0]})
    assert parent.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    assert parent.metrics["training_accuracy_score"] == pytest.approx(search.score(X, Y))
    assert {"cv_results.csv", "model/MODEL.yaml", "best_estimator/MODEL.yaml"} <= artifact_paths(
        autologged, parent.run_id
    )
    results = search.cv_results_
    best_two = sorted(range(3), key=lambda i: results["rank_test_score"][i])[:2]
    children = {r.params["C"]: r for r in runs if r.parent_run_id == parent.run_id}
    assert set(children) == {str(results["params"][i]["C"]) for i in best_two}
    for index in best_two:
        child = children[str(results["params"][index]["C"])]
        assert child.params["max_iter"] == "300"
        assert child.metrics["mean_test_score"] == pytest.approx(results["mean_test_score"][index])
        assert child.metrics["std_test_score"] == pytest.approx(results["std_test_score"][index])
        assert child.metrics["rank_test_score"] == results["rank_test_score"][index]
        assert child.experiment_id == parent.experiment_id


def test_inside_an_active_run_the_fit_logs_into_it_and_leaves_it_running(autologged: Settings) -> None:
    shipyard.autolog(settings=autologged, log_models=False)  # not about the model: faster
    with shipyard.start_run(experiment="manual", settings=autologged) as run:
        LogisticRegression(max_iter=300).fit(X, Y)
        assert run.status is RunStatus.RUNNING
        run.log_metric("after_fit", 1.0)

    stored = only_run(autologged)
    assert stored.run_id == run.run_id
    assert stored.params["max_iter"] == "300"
    assert {"after_fit", "training_accuracy_score"} <= set(stored.metrics)


def test_exclusive_logs_nothing_into_a_run_the_user_started(autologged: Settings) -> None:
    shipyard.autolog(settings=autologged, exclusive=True, log_models=False)
    with shipyard.start_run(experiment="manual", settings=autologged) as run:
        LogisticRegression(max_iter=300).fit(X, Y)

    stored = only_run(autologged)
    assert stored.run_id == run.run_id
    assert stored.params == {} and stored.metrics == {}
    LogisticRegression(max_iter=300).fit(X, Y)  # with no active run, exclusive still logs its own run
    assert len(shipyard.get_client(autologged).search_runs()) == 2


def test_log_models_false_logs_everything_but_the_model(autologged: Settings) -> None:
    shipyard.autolog(settings=autologged, log_models=False, log_datasets=False)
    LogisticRegression(max_iter=300).fit(X, Y)

    run = only_run(autologged)
    assert "training_score" in run.metrics
    assert artifact_paths(autologged, run.run_id) == set()
    assert shipyard.get_client(autologged).dataset_inputs(run.run_id) == []


def test_a_model_without_input_example_or_signature_when_asked(autologged: Settings) -> None:
    shipyard.autolog(settings=autologged, log_input_examples=False, log_model_signatures=False)
    LogisticRegression(max_iter=300).fit(X, Y)

    loaded = shipyard.models.load(f"runs:/{only_run(autologged).run_id}/model", settings=autologged)
    assert not loaded.manifest.has_input_example
    assert loaded.signature is None


def test_a_fit_that_fails_ends_its_run_failed_and_raises_as_without_autologging(autologged: Settings) -> None:
    shipyard.autolog(settings=autologged, log_models=False)  # not about the model: faster
    with pytest.raises(ValueError, match="NaN"):
        LogisticRegression().fit(np.full((4, 2), np.nan), [0, 1, 0, 1])

    run = only_run(autologged)
    assert run.status is RunStatus.FAILED


def test_registered_model_name_registers_each_logged_model_as_a_new_version(autologged: Settings) -> None:
    shipyard.autolog(settings=autologged, registered_model_name="iris", log_input_examples=False)
    LogisticRegression(max_iter=300).fit(X, Y)
    LogisticRegression(C=0.1, max_iter=300).fit(X, Y)

    versions = shipyard.models.list_versions("iris", settings=autologged)
    runs = {r.run_id: r for r in shipyard.get_client(autologged).search_runs()}
    assert [v.version for v in versions] == [1, 2]
    assert {v.source_uri for v in versions} == {f"runs:/{run_id}/model" for run_id in runs}
