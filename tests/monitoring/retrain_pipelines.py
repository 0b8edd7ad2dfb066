"""Retraining pipelines for the drift-triggered retraining tests; importable as
``tests.monitoring.retrain_pipelines``."""

from __future__ import annotations

import shipyard
from shipyard.pipelines import component, pipeline


@component(cache=False)
def fit_and_log(model_name: str, register: bool = False, fail: bool = False, depth: int = 3) -> int:
    """Fit a small tree on the bundled data and log it with its baseline; with ``register`` register it
    too (returns the version, else 0); with ``fail`` raise instead."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.tree import DecisionTreeClassifier

    if fail:
        raise RuntimeError("the training data is not there")
    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    model = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(features, target)
    info = shipyard.models.log(model, name="model", input_example=features.head(3), baseline=features)
    if not register:
        return 0
    return shipyard.models.register(info.uri, model_name).version


@pipeline(name="retrain-test", cache=False)
def retrain(model_name: str = "bc", register: bool = False, fail: bool = False, depth: int = 3) -> None:
    """One step: fit, log (and maybe register)."""
    fit_and_log(model_name=model_name, register=register, fail=fail, depth=depth)
