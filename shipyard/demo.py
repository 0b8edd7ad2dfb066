"""The main job, ``shipyard demo``: a real tracked training session on a dataset bundled with scikit-learn.

A parent run logs the dataset (content hash + schema); each candidate model trains in a nested run that
logs its params, per-epoch metrics, artifacts and system metrics; the parent records the best, logs it as a
model package (skops + verified ONNX, signature, card, lineage to the run and the dataset hash), registers
it as ``challenger``, promotes it to ``champion`` when it is at least as good, and loads it back by alias.
Later issues grow this into the whole lifecycle (pipelines, tuning, serving, monitoring).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shipyard import models
from shipyard.config import Settings, get_settings
from shipyard.errors import NotFound
from shipyard.registry.records import ModelVersion
from shipyard.tracking import ActiveRun, start_run

EXPERIMENT = "demo"
MODEL_NAME = "breast-cancer"
EPOCHS = 25


@dataclass(frozen=True)
class DemoResult:
    settings: Settings
    parent_run_id: str
    parent_name: str
    best_run_id: str
    best_model: str
    best_accuracy: float
    child_runs: int
    model_version: ModelVersion
    promoted: bool


def run_demo(settings: Settings | None = None, report: Callable[[str], None] = print) -> DemoResult:
    """Train and compare models on the breast-cancer dataset, tracking everything."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    settings = settings or get_settings()
    data = load_breast_cancer(as_frame=True)
    frame = data.frame
    features = frame.drop(columns=["target"])
    x_train, x_test, y_train, y_test = train_test_split(
        features, frame["target"], test_size=0.25, random_state=7, stratify=frame["target"]
    )
    scaler = StandardScaler().fit(x_train)
    xs_train, xs_test = scaler.transform(x_train), scaler.transform(x_test)
    classes = np.unique(y_train)

    def evaluate(run: ActiveRun, model: Any, x: Any, step: int) -> dict[str, float]:
        proba = model.predict_proba(x)[:, 1]
        predicted = (proba >= 0.5).astype(int)
        scores = {
            "accuracy": float(accuracy_score(y_test, predicted)),
            "f1": float(f1_score(y_test, predicted)),
            "roc_auc": float(roc_auc_score(y_test, proba)),
            "log_loss": float(log_loss(y_test, proba, labels=classes)),
        }
        run.log_metrics({f"val/{k}": v for k, v in scores.items()}, step=step)
        return scores

    candidates: list[tuple[str, dict[str, Any]]] = [
        ("sgd-logistic", {"alpha": 1e-4}),
        ("sgd-logistic", {"alpha": 1e-2}),
        ("sgd-modified-huber", {"alpha": 1e-3}),
        ("random-forest", {"n_estimators": 100, "max_depth": 6}),
    ]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results: list[tuple[float, str, str]] = []
    trained: dict[str, Any] = {}
    with start_run(
        EXPERIMENT,
        name=f"demo-{stamp}-{time.time_ns() % 10**6:06d}",
        settings=settings,
        tags={"source": "shipyard demo"},
    ) as parent:
        report(f"experiment '{EXPERIMENT}', parent run {parent.name} ({parent.run_id})")
        parent.log_input(frame, name="breast_cancer", context="training")
        parent.log_params(
            {"test_size": 0.25, "random_state": 7, "rows": len(frame), "features": features.shape[1]}
        )
        for index, (kind, params) in enumerate(candidates):
            with start_run(
                EXPERIMENT,
                name=f"{parent.name}-{index}-{kind}",
                parent=parent,
                settings=settings,
                log_system_metrics=True,
                system_metrics_interval=0.5,
            ) as child:
                child.log_params({"model": kind, **params})
                child.log_input(x_train, name="breast_cancer-train", context="training")
                if kind.startswith("sgd"):
                    loss = "log_loss" if kind == "sgd-logistic" else "modified_huber"
                    model = SGDClassifier(loss=loss, alpha=params["alpha"], random_state=0)
                    for epoch in range(EPOCHS):
                        model.partial_fit(xs_train, y_train, classes=classes)
                        child.log_metric("train/accuracy", float(model.score(xs_train, y_train)), step=epoch)
                        scores = evaluate(child, model, xs_test, epoch)
                else:
                    model = RandomForestClassifier(random_state=0, n_jobs=1, **params).fit(xs_train, y_train)
                    scores = evaluate(child, model, xs_test, 0)
                    importances = dict(
                        zip(features.columns, model.feature_importances_.round(5).tolist(), strict=True)
                    )
                    child.log_dict(
                        dict(sorted(importances.items(), key=lambda kv: -kv[1])), "feature_importances.json"
                    )
                matrix = confusion_matrix(y_test, model.predict(xs_test)).tolist()
                child.log_dict(
                    {"labels": data.target_names.tolist(), "matrix": matrix}, "confusion_matrix.json"
                )
                child.log_metrics(
                    {"accuracy": scores["accuracy"], "f1": scores["f1"], "roc_auc": scores["roc_auc"]}
                )
                results.append((scores["accuracy"], child.run_id, kind))
                trained[child.run_id] = model
                report(f"  {child.name}: accuracy {scores['accuracy']:.4f}, roc_auc {scores['roc_auc']:.4f}")
        best_accuracy, best_run_id, best_model = max(results)
        parent.log_metrics({"best_accuracy": best_accuracy})
        parent.set_tags({"best_run_id": best_run_id, "best_model": best_model})
        parent.log_text(f"best model: {best_model}\naccuracy: {best_accuracy:.4f}\n", "summary.txt")
        # The served model takes raw features: the fitted scaler and the best estimator as one pipeline.
        pipeline = Pipeline([("scale", scaler), ("model", trained[best_run_id])])
        logged = models.log(
            pipeline,
            name="model",
            run=parent,
            input_example=x_test.iloc[:5],
            description="Classifies breast-tissue samples as malignant (0) or benign (1) from 30 features.",
        )
    registered, promoted = register_and_promote(logged.uri, best_accuracy, settings, report)
    loaded = models.load(f"models:/{MODEL_NAME}@champion", settings=settings)
    predictions = loaded.predict(x_test.iloc[:5])
    report(
        f"loaded models:/{MODEL_NAME}@champion ({loaded.flavor}); "
        f"predictions on 5 test rows: {[int(p) for p in predictions]}"
    )
    return DemoResult(
        settings,
        parent.run_id,
        parent.name,
        best_run_id,
        best_model,
        best_accuracy,
        len(results),
        registered,
        promoted,
    )


def register_and_promote(
    uri: str, accuracy: float, settings: Settings, report: Callable[[str], None]
) -> tuple[ModelVersion, bool]:
    """Register as ``challenger``; make it ``champion`` when there is none or it is at least as good."""
    version = models.register(uri, MODEL_NAME, settings=settings, tags={"accuracy": f"{accuracy:.4f}"})
    models.set_alias(MODEL_NAME, "challenger", version.version, reason="newest demo model", settings=settings)
    report(
        f"registered {version.uri} (alias challenger), lineage: run {version.run_id}, "
        f"dataset {version.lineage['datasets'][0]['digest'][:12]}…"
    )
    try:
        champion = models.get(f"models:/{MODEL_NAME}@champion", settings=settings)
        champion_accuracy = float(champion.tags.get("accuracy", "nan"))
    except NotFound:
        champion, champion_accuracy = None, float("-inf")
    promoted = champion is None or not accuracy < champion_accuracy
    if promoted:
        reason = (
            "first champion" if champion is None else f"accuracy {accuracy:.4f} >= {champion_accuracy:.4f}"
        )
        models.set_alias(MODEL_NAME, "champion", version.version, reason=reason, settings=settings)
        models.transition(
            MODEL_NAME, version.version, "Production", reason=reason, archive_others=True, settings=settings
        )
        report(f"promoted version {version.version} to champion ({reason})")
    else:
        report(
            f"kept champion version {champion.version} (accuracy {champion_accuracy:.4f} > {accuracy:.4f})"
        )
    return version, promoted
