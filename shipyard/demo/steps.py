"""The demo's pipelines: ingest → validate → split → tune → train best → evaluate → register (and promote);
and the retraining that a drift alert starts: ingest → split → refit (the champion's configuration).

Steps are plain typed components; each runs in a worker process as a tracked run of its own. Data moves as
Parquet files; the model moves as a logged model package (its ``runs:/`` URI), loaded back with Shipyard's
checks — nothing is unpickled.
"""

from __future__ import annotations

import functools
import json
from typing import Any, NamedTuple

import pandas as pd

import shipyard
from shipyard.config import get_settings
from shipyard.data.schema import Schema, Severity, validate
from shipyard.errors import DataValidationError, NotFound
from shipyard.pipelines import Artifact, Dataset, Input, Metrics, Output, component, pipeline
from shipyard.tuning import TrialContext, tune
from shipyard.tuning.cv import cross_validate

TARGET = "target"  # 0 = malignant, 1 = benign
MODEL_NAME = "breast-cancer"
EXPERIMENT = "demo"


class SplitSizes(NamedTuple):
    n_train: int
    n_test: int


class Registered(NamedTuple):
    version: int
    promoted: bool


def features_of(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[TARGET])


def _schema(frame: pd.DataFrame) -> Schema:
    """The data contract: every bundled column, no nulls, non-negative measurements, labels 0 or 1."""
    columns: dict[str, Any] = {
        name: {"type": "float", "nullable": False, "min": 0.0} for name in features_of(frame).columns
    }
    columns[TARGET] = {"type": "int", "nullable": False, "min": 0, "max": 1}
    return Schema.model_validate({"columns": columns})


@component
def ingest(data: Output[Dataset]) -> int:
    """The breast-cancer dataset bundled with scikit-learn, as Parquet; returns the number of rows."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame.to_parquet(data.path, index=False)
    return len(frame)


@component
def check(data: Input[Dataset], report: Output[Artifact]) -> int:
    """Validate the data against its contract (schema); returns how many anomalies were found.

    Raises:
        DataValidationError: error-severity anomalies, each column named (the step fails).
    """
    frame = pd.read_parquet(data.path)
    result = validate(frame, _schema(frame))
    with open(report.path, "w", encoding="utf-8") as out:
        json.dump(result.to_dict(), out, indent=2, default=str)
    errors = [a for a in result.anomalies if a.severity is Severity.ERROR]
    shipyard.log_metrics({"anomalies.errors": len(errors), "anomalies.total": len(result.anomalies)})
    if errors:
        raise DataValidationError("; ".join(a.message for a in errors[:10]))
    return len(result.anomalies)


@component
def split(data: Input[Dataset], train: Output[Dataset], test: Output[Dataset], seed: int = 7) -> SplitSizes:
    """Stratified 75/25 split."""
    from sklearn.model_selection import train_test_split

    frame = pd.read_parquet(data.path)
    train_rows, test_rows = train_test_split(frame, test_size=0.25, random_state=seed, stratify=frame[TARGET])
    train_rows.to_parquet(train.path, index=False)
    test_rows.to_parquet(test.path, index=False)
    return SplitSizes(len(train_rows), len(test_rows))


def make_model(params: dict[str, Any]) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(random_state=0, **params)


def cv_trial(train_path: str, trial: TrialContext) -> float:
    """One tuning trial: 3-fold cross-validated accuracy of a gradient-boosting model (one thread)."""
    from threadpoolctl import threadpool_limits

    frame = pd.read_parquet(train_path)
    # The model first: importing it loads scikit-learn's OpenMP runtime, which threadpool_limits can only
    # limit once loaded. Left unlimited, a worker's first trial ran two spinning OpenMP threads beside the
    # other worker's on two cores and took up to minutes instead of half a second.
    model = make_model(trial.params)
    with threadpool_limits(1):  # two trials share two cores
        scores = cross_validate(trial, model, features_of(frame), frame[TARGET], folds=3, seed=0)
    return scores.mean


SEARCH_SPACE: list[dict[str, Any]] = [
    {"name": "learning_rate", "type": "float", "low": 0.01, "high": 0.5, "log": True},
    {"name": "max_iter", "type": "int", "low": 20, "high": 200, "step": 10},
    {"name": "max_leaf_nodes", "type": "int", "low": 4, "high": 48},
    {"name": "l2_regularization", "type": "float", "low": 1e-4, "high": 10.0, "log": True},
    {"name": "min_samples_leaf", "type": "int", "low": 2, "high": 40},
]


@component(cache=False)
def search(train: Input[Dataset], best: Output[Artifact], max_trials: int = 20, parallel: int = 2) -> float:
    """Tune the model (TPE, median early stopping over CV folds, ``parallel`` trials at once); writes the best
    parameters as JSON and returns their cross-validated accuracy."""
    spec = {
        "name": "demo-search",
        "experiment": EXPERIMENT,
        "objective": {"metric": "cv_accuracy", "direction": "maximize"},
        "parameters": SEARCH_SPACE,
        "algorithm": {"name": "tpe", "seed": 0, "settings": {"n_startup_trials": 8}},
        "early_stopping": {"name": "median", "settings": {"n_startup_trials": 5, "n_warmup_steps": 0}},
        "max_trials": max_trials,
        "parallel_trials": parallel,
    }
    result = tune(spec, functools.partial(cv_trial, train.path), settings=get_settings())
    with open(best.path, "w", encoding="utf-8") as out:
        json.dump({"params": result.best_params, "tuning_run": result.run_id}, out, indent=2)
    shipyard.set_tags({"tuning_run": result.run_id})
    shipyard.log_metrics(
        {"trials_complete": result.count("COMPLETE"), "trials_pruned": result.count("PRUNED")}
    )
    assert result.best_value is not None
    return result.best_value


@component(cache=False)
def train_best(train: Input[Dataset], best: Input[Artifact]) -> str:
    """Fit the best configuration on all the training data and log it as a model package (with its training
    features as the monitoring baseline); returns the package's URI."""
    frame = pd.read_parquet(train.path)
    with open(best.path, encoding="utf-8") as fh:
        chosen = json.load(fh)
    shipyard.log_params(chosen["params"])
    shipyard.set_tags({"tuning_run": chosen["tuning_run"]})
    shipyard.log_input(train.path, name="breast-cancer-train", context="training")
    model = make_model(chosen["params"]).fit(features_of(frame), frame[TARGET])
    shipyard.log_metric("train_accuracy", float(model.score(features_of(frame), frame[TARGET])))
    info = shipyard.models.log(
        model,
        name="model",
        input_example=features_of(frame).head(5),
        baseline=features_of(frame),
        description="Classifies breast-tissue samples as malignant (0) or benign (1) from 30 features.",
    )
    return info.uri


@component
def evaluate(model_uri: str, test: Input[Dataset], metrics: Output[Metrics]) -> float:
    """Score the logged model on the held-out test set; returns its accuracy."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    frame = pd.read_parquet(test.path)
    model = shipyard.models.load(model_uri)
    x, truth = features_of(frame), frame[TARGET]
    scores = {
        "accuracy": float(accuracy_score(truth, model.predict(x))),
        "f1": float(f1_score(truth, model.predict(x))),
        "roc_auc": float(roc_auc_score(truth, model.predict_proba(x)[:, 1])),
    }
    with open(metrics.path, "w", encoding="utf-8") as out:
        json.dump(scores, out, indent=2)
    return scores["accuracy"]


@component(cache=False)
def register(model_uri: str, accuracy: float, model_name: str) -> Registered:
    """Register the model as ``challenger``; promote it to ``champion`` (and Production) when there is none
    or it is at least as accurate on the test set."""
    version = shipyard.models.register(model_uri, model_name, tags={"accuracy": f"{accuracy:.4f}"})
    shipyard.models.set_alias(
        model_name, "challenger", version.version, reason=f"test accuracy {accuracy:.4f}"
    )
    try:
        champion = shipyard.models.get(f"models:/{model_name}@champion")
        best_so_far = float(champion.tags.get("accuracy", "nan"))
    except NotFound:
        champion, best_so_far = None, float("-inf")
    promoted = champion is None or not accuracy < best_so_far
    if promoted:
        reason = "first champion" if champion is None else f"accuracy {accuracy:.4f} >= {best_so_far:.4f}"
        shipyard.models.set_alias(model_name, "champion", version.version, reason=reason)
        shipyard.models.transition(
            model_name, version.version, "Production", reason=reason, archive_others=True
        )
    return Registered(version.version, promoted)


@pipeline(name="shipyard-demo", cache=False)
def lifecycle(model_name: str = MODEL_NAME, max_trials: int = 20, parallel: int = 2) -> None:
    """From the bundled data to a registered, promoted model."""
    raw = ingest()
    checked = check(data=raw.outputs["data"])
    parts = split(data=raw.outputs["data"]).after(checked)
    tuned = search(train=parts.outputs["train"], max_trials=max_trials, parallel=parallel)
    model = train_best(train=parts.outputs["train"], best=tuned.outputs["best"])
    scored = evaluate(model_uri=model.output, test=parts.outputs["test"])
    register(model_uri=model.output, accuracy=scored.output, model_name=model_name)


@component(cache=False)
def refit(train: Input[Dataset], test: Input[Dataset], model_name: str) -> float:
    """Fit the champion's configuration (its training run's parameters) on the training data again and log it
    with its baseline; the monitoring rule that started this registers it as the challenger. Returns its
    test accuracy."""
    try:
        champion = shipyard.models.get(f"models:/{model_name}@champion")
        logged = shipyard.get_run(champion.run_id).params if champion.run_id else {}
    except NotFound:
        logged = {}
    names = {spec["name"] for spec in SEARCH_SPACE}
    params = {k: json.loads(v) for k, v in logged.items() if k in names}
    shipyard.log_params(params)
    shipyard.log_input(train.path, name="breast-cancer-train", context="training")
    frame, held_out = pd.read_parquet(train.path), pd.read_parquet(test.path)
    model = make_model(params).fit(features_of(frame), frame[TARGET])
    accuracy = float(model.score(features_of(held_out), held_out[TARGET]))
    shipyard.log_metric("accuracy", accuracy)
    shipyard.models.log(
        model,
        name="model",
        input_example=features_of(frame).head(5),
        baseline=features_of(frame),
        description="Classifies breast-tissue samples as malignant (0) or benign (1) from 30 features.",
    )
    return accuracy


@pipeline(name="shipyard-demo-retraining", cache=False)
def retraining(model_name: str = MODEL_NAME) -> None:
    """Retrain the served model's configuration on the data (what a drift alert's action runs)."""
    raw = ingest()
    parts = split(data=raw.outputs["data"])
    refit(train=parts.outputs["train"], test=parts.outputs["test"], model_name=model_name)
