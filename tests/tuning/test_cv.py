"""Cross-validation inside trials: real scikit-learn models, scores as sklearn's own ``cross_val_score``,
folds logged on real runs, and median early stopping ending a bad configuration between folds."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import optuna
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import shipyard
from shipyard.config import Settings
from shipyard.errors import InvalidInput
from shipyard.tracking import start_run
from shipyard.tuning import TrialContext, TrialPruned, tune
from shipyard.tuning.cv import CVResult, cross_validate
from shipyard.tuning.runner import STATE_TAG

CANCER_X, CANCER_Y = load_breast_cancer(return_X_y=True)
DIABETES_X, DIABETES_Y = load_diabetes(return_X_y=True)
FOLDS = 5
RARE_Y = np.array(["malignant", "benign"])[CANCER_Y]
RARE_Y[:2] = "rare"  # a third class with two members


def logistic_cv(trial: TrialContext) -> float:
    """Tiny C underfits to ~63% accuracy (the majority class); C near 1 reaches ~97%."""
    model = make_pipeline(StandardScaler(), LogisticRegression(C=trial.params["C"]))
    return cross_validate(trial, model, CANCER_X, CANCER_Y, folds=FOLDS, seed=0).mean


def explained(estimator: Any, X: Any, y: Any) -> float:
    return float(estimator.score(X, y))


@contextlib.contextmanager
def direct_trial(settings: Settings, study: optuna.Study | None = None) -> Iterator[TrialContext]:
    """A real trial outside tune(): an in-memory Optuna study and a tracked run ('score' is the objective)."""
    study = study or optuna.create_study(direction="maximize")
    with start_run("cv", log_system_metrics=False, settings=settings) as run:
        yield TrialContext(study.ask(), {}, run, "score")


def history(settings: Settings, run_id: str, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in shipyard.get_client(settings).metric_history(run_id, key)]


def test_classification_scores_are_sklearns_stratified_ones(settings: Settings) -> None:
    model = DecisionTreeClassifier(max_depth=3, random_state=0)
    with direct_trial(settings) as trial:
        result = cross_validate(trial, model, CANCER_X, CANCER_Y, seed=7)
        run_id = trial.run.run_id
    stratified = StratifiedKFold(FOLDS, shuffle=True, random_state=7)
    expected = cross_val_score(model, CANCER_X, CANCER_Y, cv=stratified, scoring="accuracy")
    assert isinstance(result, CVResult) and result.scores == pytest.approx(expected.tolist())
    plain = cross_val_score(model, CANCER_X, CANCER_Y, cv=KFold(FOLDS, shuffle=True, random_state=7))
    assert result.scores != pytest.approx(plain.tolist())  # a classifier is stratified by default
    assert result.mean == pytest.approx(expected.mean()) and result.std == pytest.approx(expected.std())
    assert len(result.fit_seconds) == FOLDS and all(s > 0 for s in result.fit_seconds)

    assert history(settings, run_id, "cv_fold_accuracy") == [
        (fold, pytest.approx(score)) for fold, score in enumerate(expected)
    ]
    running = [(fold, pytest.approx(expected[: fold + 1].mean())) for fold in range(FOLDS)]
    assert history(settings, run_id, "score") == running  # reported to early stopping after each fold
    metrics = shipyard.get_client(settings).get_run(run_id).metrics
    assert metrics["cv_mean_accuracy"] == pytest.approx(expected.mean())
    assert metrics["cv_std_accuracy"] == pytest.approx(np.std(expected, ddof=0))
    assert metrics["cv_fit_seconds"] == pytest.approx(np.mean(result.fit_seconds))


def test_regression_uses_kfold_and_keeps_sklearns_negative_scores(settings: Settings) -> None:
    model = Ridge(alpha=0.5)
    with direct_trial(settings) as trial:
        result = cross_validate(
            trial, model, DIABETES_X, DIABETES_Y, folds=4, scoring="neg_mean_squared_error", seed=3
        )
        run_id = trial.run.run_id
    kfold = KFold(4, shuffle=True, random_state=3)
    expected = cross_val_score(model, DIABETES_X, DIABETES_Y, cv=kfold, scoring="neg_mean_squared_error")
    assert result.scores == pytest.approx(expected.tolist()) and all(s < 0 for s in result.scores)
    assert result.mean == pytest.approx(expected.mean()) and result.mean < 0
    metrics = shipyard.get_client(settings).get_run(run_id).metrics
    assert metrics["cv_mean_neg_mean_squared_error"] == pytest.approx(expected.mean())
    assert [s for s, _ in history(settings, run_id, "cv_fold_neg_mean_squared_error")] == [0, 1, 2, 3]


def test_a_factory_and_a_callable_scorer_without_shuffling(settings: Settings) -> None:
    with direct_trial(settings) as trial:
        result = cross_validate(
            trial,
            lambda: Ridge(alpha=0.5),
            DIABETES_X,
            DIABETES_Y,
            folds=3,
            scoring=explained,
            shuffle=False,
            report=False,
        )
        run_id = trial.run.run_id
    expected = cross_val_score(Ridge(alpha=0.5), DIABETES_X, DIABETES_Y, cv=KFold(3), scoring=explained)
    assert result.scores == pytest.approx(expected.tolist())
    assert len(history(settings, run_id, "cv_fold_explained")) == 3
    metrics = shipyard.get_client(settings).get_run(run_id).metrics
    assert metrics["cv_mean_explained"] == pytest.approx(expected.mean())
    assert "score" not in metrics  # report=False: nothing shown to early stopping


def test_median_stopping_ends_bad_configurations_between_folds(settings: Settings) -> None:
    search = {
        "name": "cv",
        "objective": {"metric": "accuracy", "direction": "maximize"},
        "parameters": [{"name": "C", "type": "float", "low": 1e-5, "high": 10, "log": True}],
        "algorithm": {"name": "random", "seed": 2},
        "early_stopping": {"name": "median", "settings": {"n_startup_trials": 2, "n_warmup_steps": 0}},
        "max_trials": 10,
    }
    result = tune(search, logistic_cv, settings=settings)
    client = shipyard.get_client(settings)
    complete = [t for t in result.trials if t.state == "COMPLETE"]
    pruned = [t for t in result.trials if t.state == "PRUNED"]
    assert complete and pruned and len(complete) + len(pruned) == 10
    for trial in complete:
        folds = history(settings, trial.run_id, "cv_fold_accuracy")  # type: ignore[arg-type]
        assert [step for step, _ in folds] == list(range(FOLDS))
        metrics = client.get_run(trial.run_id).metrics  # type: ignore[arg-type]
        assert trial.value == pytest.approx(metrics["cv_mean_accuracy"])
        assert trial.value == pytest.approx(sum(v for _, v in folds) / FOLDS)
    for trial in pruned:  # stopped before its last fold: fewer fold scores, no mean
        folds = history(settings, trial.run_id, "cv_fold_accuracy")  # type: ignore[arg-type]
        assert 1 <= len(folds) < FOLDS and [step for step, _ in folds] == list(range(len(folds)))
        run = client.get_run(trial.run_id)  # type: ignore[arg-type]
        assert "cv_mean_accuracy" not in run.metrics and run.tags[STATE_TAG] == "PRUNED"
        assert len(history(settings, trial.run_id, "accuracy")) == len(folds)  # type: ignore[arg-type]
    # With this seed every stopped configuration is an underfitting one.
    assert all(t.params["C"] < 1e-3 for t in pruned)
    assert result.best is not None and result.best.value > 0.96  # type: ignore[operator]


def perfect_study(warmup_steps: int) -> optuna.Study:
    """A study whose one finished trial scored 1.0 on every fold: any real model is below its median."""
    pruner = optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=warmup_steps)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    study.add_trial(
        optuna.trial.create_trial(
            value=1.0, intermediate_values=dict.fromkeys(range(FOLDS), 1.0), distributions={}, params={}
        )
    )
    return study


def test_a_pruned_trial_keeps_the_folds_it_ran(settings: Settings) -> None:
    model = DecisionTreeClassifier(max_depth=1, random_state=0)
    with direct_trial(settings, perfect_study(warmup_steps=2)) as trial:
        with pytest.raises(TrialPruned, match="stopped early at step 2"):
            cross_validate(trial, model, CANCER_X, CANCER_Y)
        run_id = trial.run.run_id
    assert [step for step, _ in history(settings, run_id, "cv_fold_accuracy")] == [0, 1, 2]
    assert "cv_mean_accuracy" not in shipyard.get_client(settings).get_run(run_id).metrics


def test_the_last_fold_never_stops_the_trial(settings: Settings) -> None:
    model = DecisionTreeClassifier(max_depth=1, random_state=0)
    with direct_trial(settings, perfect_study(warmup_steps=FOLDS - 1)) as trial:
        result = cross_validate(trial, model, CANCER_X, CANCER_Y)  # below the median, but all folds ran
        assert trial.should_prune()
        run_id = trial.run.run_id
    assert len(result.scores) == FOLDS and result.mean < 1.0
    assert shipyard.get_client(settings).get_run(run_id).metrics["cv_mean_accuracy"] == result.mean


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"folds": 1}, "folds must be an integer of at least 2, not 1"),
        ({"folds": 600}, "folds=600 is more than the 569 samples"),
        ({"folds": 3, "y": RARE_Y}, "folds=3 is more than the 2 members of class 'rare'"),
        ({"y": CANCER_Y[:-1]}, "X has 569 samples but y has 568"),
        ({"scoring": "acuracy"}, r"unknown scoring 'acuracy'.*e\.g\. accuracy"),
        ({"scoring": lambda est, X, y: 1.0}, "does not make a metric name"),
    ],
)
def test_bad_input_is_named(settings: Settings, changes: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"X": CANCER_X, "y": CANCER_Y, **changes}
    with direct_trial(settings) as trial, pytest.raises(InvalidInput, match=message):
        cross_validate(trial, DecisionTreeClassifier(random_state=0), **arguments)


def test_a_fold_whose_score_is_not_finite_is_named(settings: Settings) -> None:
    def nan_on_second_fold(estimator: Any, X: Any, y: Any) -> float:
        nan_on_second_fold.calls += 1  # type: ignore[attr-defined]
        return math.nan if nan_on_second_fold.calls == 2 else 1.0  # type: ignore[attr-defined]

    nan_on_second_fold.calls = 0  # type: ignore[attr-defined]
    with direct_trial(settings) as trial:
        with pytest.raises(InvalidInput, match="fold 1 of 5: the nan_on_second_fold score is nan"):
            cross_validate(trial, Ridge(), DIABETES_X, DIABETES_Y, scoring=nan_on_second_fold)
        run_id = trial.run.run_id
    assert len(history(settings, run_id, "cv_fold_nan_on_second_fold")) == 1
