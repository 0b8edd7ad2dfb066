"""LightGBM autologging, read back from the store: params, per-iteration metrics, early stopping, booster."""

from __future__ import annotations

import json

import lightgbm as lgb
import numpy as np
import pytest

import shipyard
from shipyard import Settings
from tests.autologging.runs import artifact_paths, history, only_run

RNG = np.random.default_rng(11)
X = RNG.normal(size=(300, 4))
Y = X[:, 0] * 3.0 + RNG.normal(scale=2.0, size=300)


def test_train_logs_params_each_iteration_early_stopping_and_the_booster(autologged: Settings) -> None:
    train = lgb.Dataset(X[:200], label=Y[:200])
    valid = lgb.Dataset(X[200:], label=Y[200:], reference=train)
    recorded: dict[str, dict[str, list[float]]] = {}
    params = {"objective": "regression", "num_leaves": 31, "learning_rate": 0.3, "verbose": -1}
    booster = lgb.train(
        params,
        train,
        num_boost_round=80,
        valid_sets=[train, valid],
        valid_names=["train", "valid"],
        callbacks=[lgb.early_stopping(3, verbose=False), lgb.record_evaluation(recorded)],
    )

    run = only_run(autologged)
    assert run.name.startswith("lightgbm.train-")
    assert run.params == {
        "objective": "regression",
        "num_leaves": "31",
        "learning_rate": "0.3",
        "verbose": "-1",
        "num_boost_round": "80",
    }
    valid_l2 = recorded["valid"]["l2"]
    iterations = len(valid_l2)
    assert iterations < 80, "the noisy data should make early stopping stop"
    # Every iteration at its step (from 0), then the best iteration's value one step after the last.
    assert history(autologged, run.run_id, "valid-l2") == [
        *((step, pytest.approx(value)) for step, value in enumerate(valid_l2)),
        (iterations, pytest.approx(valid_l2[booster.best_iteration - 1])),
    ]
    assert run.metrics["best_iteration"] == booster.best_iteration
    assert run.metrics["stopped_iteration"] == iterations
    paths = artifact_paths(autologged, run.run_id)
    assert {"model/model.txt", "feature_importance_split.json", "feature_importance_gain.json"} <= paths
    split = json.loads(
        shipyard.get_client(autologged).read_artifact(run.run_id, "feature_importance_split.json")
    )
    assert split == dict(
        zip(booster.feature_name(), map(float, booster.feature_importance("split")), strict=True)
    )
    loaded = shipyard.models.load(f"runs:/{run.run_id}/model", settings=autologged)
    np.testing.assert_allclose(loaded.predict(X[:10]), booster.predict(X[:10]))


def test_a_classifier_wrapper_is_one_run_with_its_eval_metrics_and_model(autologged: Settings) -> None:
    labels = (Y > 0).astype(int)
    model = lgb.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1)
    model.fit(X, labels, eval_X=(X[:50],), eval_y=(labels[:50],))

    run = only_run(autologged)  # the train() call inside fit() joined the classifier's run
    assert run.name.startswith("LGBMClassifier-")
    assert run.params["n_estimators"] == "5"
    assert run.params["num_leaves"] == "4"
    expected = model.evals_result_["valid_0"]["binary_logloss"]
    assert history(autologged, run.run_id, "valid_0-binary_logloss") == [
        (step, pytest.approx(value)) for step, value in enumerate(expected)
    ]
    loaded = shipyard.models.load(f"runs:/{run.run_id}/model", settings=autologged)
    assert loaded.flavor == "lightgbm"
    np.testing.assert_array_equal(loaded.predict(X[:10]), model.predict(X[:10]))
