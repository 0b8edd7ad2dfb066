"""XGBoost autologging, read back from the store: params, per-iteration metrics, early stopping, booster."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xgboost as xgb

import shipyard
from shipyard import Settings
from tests.autologging.runs import artifact_paths, history, only_run

RNG = np.random.default_rng(7)
X = RNG.normal(size=(160, 4))
Y = (X[:, 0] + 0.5 * RNG.normal(size=160) > 0).astype(int)


def test_train_logs_params_each_iteration_early_stopping_and_the_booster(autologged: Settings) -> None:
    train, valid = xgb.DMatrix(X[:120], label=Y[:120]), xgb.DMatrix(X[120:], label=Y[120:])
    evals_result: dict[str, dict[str, list[float]]] = {}
    params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.5}
    booster = xgb.train(
        params,
        train,
        num_boost_round=60,
        evals=[(train, "train"), (valid, "valid")],
        early_stopping_rounds=3,
        evals_result=evals_result,
        verbose_eval=False,
    )

    run = only_run(autologged)
    assert run.name.startswith("xgboost.train-")
    assert run.params == {
        "objective": "binary:logistic",
        "max_depth": "3",
        "eta": "0.5",
        "num_boost_round": "60",
        "early_stopping_rounds": "3",
    }
    rounds = booster.num_boosted_rounds()
    assert rounds < 60, "the data should make early stopping stop"
    valid_history = evals_result["valid"]["logloss"]
    assert history(autologged, run.run_id, "train-logloss")[:rounds] == [
        (step, pytest.approx(value)) for step, value in enumerate(evals_result["train"]["logloss"])
    ]
    # Every iteration at its step, then the best iteration's value one step after the last.
    assert history(autologged, run.run_id, "valid-logloss") == [
        *((step, pytest.approx(value)) for step, value in enumerate(valid_history)),
        (rounds, pytest.approx(valid_history[booster.best_iteration])),
    ]
    assert run.metrics["best_iteration"] == booster.best_iteration
    assert run.metrics["stopped_iteration"] == rounds - 1
    assert {"model/MODEL.yaml", "model/model.ubj", "feature_importance_weight.json"} <= artifact_paths(
        autologged, run.run_id
    )
    loaded = shipyard.models.load(f"runs:/{run.run_id}/model", settings=autologged)
    np.testing.assert_allclose(loaded.predict(valid), booster.predict(valid))


def test_a_classifier_wrapper_is_one_run_with_its_eval_set_metrics_and_model(autologged: Settings) -> None:
    model = xgb.XGBClassifier(n_estimators=4, max_depth=2, learning_rate=0.3)
    model.fit(X, Y, eval_set=[(X[:40], Y[:40])], verbose=False)

    run = only_run(autologged)  # the train() call inside fit() joined the classifier's run
    assert run.name.startswith("XGBClassifier-")
    assert run.params["n_estimators"] == "4"
    assert run.params["max_depth"] == "2"
    expected = model.evals_result()["validation_0"]["logloss"]
    assert history(autologged, run.run_id, "validation_0-logloss") == [
        (step, pytest.approx(value)) for step, value in enumerate(expected)
    ]
    assert "best_iteration" not in run.metrics  # no early stopping asked for
    loaded = shipyard.models.load(f"runs:/{run.run_id}/model", settings=autologged)
    assert loaded.manifest.has_input_example
    np.testing.assert_array_equal(loaded.predict(X[:10]), model.predict(X[:10]))
    weights = shipyard.get_client(autologged).read_artifact(run.run_id, "feature_importance_weight.json")
    assert json.loads(weights) == model.get_booster().get_score(importance_type="weight")


def test_a_wrapper_with_early_stopping_logs_it_into_its_own_run(autologged: Settings) -> None:
    shipyard.autolog(settings=autologged, log_models=False)
    model = xgb.XGBRegressor(n_estimators=200, learning_rate=0.5, max_depth=4, early_stopping_rounds=2)
    noisy = X[:, 0] + RNG.normal(scale=2.0, size=len(X))
    model.fit(X[:120], noisy[:120], eval_set=[(X[120:], noisy[120:])], verbose=False)

    run = only_run(autologged)
    rounds = model.get_booster().num_boosted_rounds()
    assert rounds < 200, "the noisy data should make early stopping stop"
    assert run.metrics["best_iteration"] == model.best_iteration
    assert run.metrics["stopped_iteration"] == rounds - 1
    expected = model.evals_result()["validation_0"]["rmse"]
    assert history(autologged, run.run_id, "validation_0-rmse")[-1] == (
        rounds,
        pytest.approx(expected[model.best_iteration]),
    )
