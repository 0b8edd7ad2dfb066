"""A training pipeline on scikit-learn's bundled breast-cancer dataset, from raw data to a registered model.

    ingest → validate → split → train → evaluate → If(accuracy > threshold): register

Each step is a plain typed function: a pipeline runs it in a worker process as a tracked run of its own,
and a test or a notebook can call it directly. Data moves between steps as Parquet files (``Dataset``
artifacts) and the model as a skops file, which loads without unpickling anything. The registered model's
lineage leads back through the steps to the ingested data: ``shipyard lineage models:/breast-cancer/1``.

Run it from the repository root::

    shipyard pipeline run examples.train_pipeline:training -p threshold=0.95
    python -m examples.train_pipeline threshold=0.95
"""

from __future__ import annotations

import json
import sys
from typing import Any, NamedTuple

import pandas as pd
import skops.io
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import train_test_split

import shipyard
from shipyard.pipelines import Dataset, If, Input, Metrics, Model, Output, component, pipeline

TARGET = "target"  # 0 = malignant, 1 = benign
_MEASURES = (
    "radius",
    "texture",
    "perimeter",
    "area",
    "smoothness",
    "compactness",
    "concavity",
    "concave points",
    "symmetry",
    "fractal dimension",
)
# The data contract `validate` enforces: the mean, standard error and worst value of each measure, as floats.
FEATURES = (
    [f"mean {m}" for m in _MEASURES] + [f"{m} error" for m in _MEASURES] + [f"worst {m}" for m in _MEASURES]
)
# skops builds only the types it is told to trust. A random forest's trees are the one type it asks about for
# this model; we trust it because our own train step wrote the file. (Never pass it whatever
# skops.io.get_untrusted_types() returns: that would trust a tampered file too.)
TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]


class DataValidationError(ValueError):
    """The data breaks the contract; the message names the column."""


class SplitSizes(NamedTuple):
    n_train: int
    n_test: int


def load_model(path: str) -> Any:
    """The estimator the train step wrote, loaded with skops (no pickle)."""
    return skops.io.load(path, trusted=TRUSTED_TYPES)


@component
def ingest(data: Output[Dataset]) -> int:
    """Load the bundled dataset and write it as Parquet; returns the number of rows."""
    frame = load_breast_cancer(as_frame=True).frame
    frame.to_parquet(data.path, index=False)
    return len(frame)


@component
def validate(data: Input[Dataset]) -> int:
    """Check the columns, their types, nulls and the labels; returns how many checks passed.

    Raises:
        DataValidationError: the first column that breaks the contract, by name.
    """
    frame = pd.read_parquet(data.path)
    expected = [*FEATURES, TARGET]
    missing = [c for c in expected if c not in frame.columns]
    if missing:
        raise DataValidationError(f"missing column(s): {', '.join(map(repr, missing))}")
    unexpected = [c for c in frame.columns if c not in expected]
    if unexpected:
        raise DataValidationError(f"unexpected column(s): {', '.join(map(repr, unexpected))}")
    if frame.empty:
        raise DataValidationError("the dataset has no rows")
    checks = 3
    for column in expected:
        nulls = int(frame[column].isna().sum())
        if nulls:
            raise DataValidationError(f"column {column!r} has {nulls} null value(s)")
        is_right_type = pd.api.types.is_integer_dtype if column == TARGET else pd.api.types.is_float_dtype
        if not is_right_type(frame[column]):
            kind = "integer" if column == TARGET else "float"
            raise DataValidationError(f"column {column!r} must be {kind}, got {frame[column].dtype}")
        checks += 2
    labels = sorted({int(label) for label in frame[TARGET].unique()} - {0, 1})
    if labels:
        raise DataValidationError(f"column {TARGET!r} must hold 0 or 1, found {labels[:5]}")
    return checks + 1


@component
def split(
    data: Input[Dataset],
    train: Output[Dataset],
    test: Output[Dataset],
    test_size: float = 0.25,
    seed: int = 42,
) -> SplitSizes:
    """Split into train and test sets with the same share of each class."""
    frame = pd.read_parquet(data.path)
    train_rows, test_rows = train_test_split(
        frame, test_size=test_size, random_state=seed, stratify=frame[TARGET]
    )
    train_rows.to_parquet(train.path, index=False)
    test_rows.to_parquet(test.path, index=False)
    return SplitSizes(len(train_rows), len(test_rows))


@component
def train(
    train_data: Input[Dataset],
    model: Output[Model],
    n_estimators: int = 100,
    max_depth: int = 5,
    seed: int = 42,
) -> float:
    """Fit a random forest and write it as a skops file; returns the accuracy on the training data."""
    frame = pd.read_parquet(train_data.path)
    # The step's run records what it trained on: the file's digest and size (its parameters are logged
    # for us, as the step's inputs).
    shipyard.log_input(train_data.path, name="breast-cancer-train", context="training")
    clf = RandomForestClassifier(n_estimators=n_estimators, max_depth=max_depth, random_state=seed)
    clf.fit(frame[FEATURES], frame[TARGET])
    skops.io.dump(clf, model.path)
    accuracy = float(clf.score(frame[FEATURES], frame[TARGET]))
    shipyard.log_metric("train_accuracy", accuracy)
    return accuracy


@component
def evaluate(model: Input[Model], test_data: Input[Dataset], metrics: Output[Metrics]) -> float:
    """Score the model on the test set; returns its accuracy. The metrics file (JSON: accuracy, F1, ROC AUC)
    is logged on the step's run."""
    frame = pd.read_parquet(test_data.path)
    clf = load_model(model.path)
    truth = frame[TARGET]
    predicted = clf.predict(frame[FEATURES])
    scores = {
        "accuracy": float(accuracy_score(truth, predicted)),
        "f1": float(f1_score(truth, predicted)),
        "roc_auc": float(roc_auc_score(truth, clf.predict_proba(frame[FEATURES])[:, 1])),
    }
    with open(metrics.path, "w", encoding="utf-8") as fh:
        json.dump(scores, fh, indent=2)
    return scores["accuracy"]


@component
def register(
    model: Input[Model], train_data: Input[Dataset], metrics: Input[Metrics], model_name: str
) -> int:
    """Log the model as a package, register it as the next version of ``model_name`` and point the
    ``challenger`` alias at it; returns the version number."""
    clf = load_model(model.path)
    features = pd.read_parquet(train_data.path)[FEATURES]
    with open(metrics.path, encoding="utf-8") as fh:
        scores = json.load(fh)
    # What goes into this run ends up in the package's manifest and model card.
    shipyard.log_params({"n_estimators": clf.n_estimators, "max_depth": clf.max_depth})
    shipyard.log_metrics(scores)
    # The files the package was made from: lineage leads from them back to the steps that wrote them.
    shipyard.log_input(train_data.path, name="breast-cancer-train", context="training")
    shipyard.log_input(model.path, name="trained-model", context="model")
    info = shipyard.models.log(
        clf,
        name="model",
        input_example=features.head(5),  # gives the package a signature and a verified ONNX copy
        baseline=features,  # what `shipyard monitor run` compares served inputs with
        description="Classifies breast-tissue samples as malignant (0) or benign (1) from 30 features.",
    )
    version = shipyard.models.register(info.uri, model_name, tags={"accuracy": f"{scores['accuracy']:.4f}"})
    shipyard.models.set_alias(
        model_name, "challenger", version.version, reason=f"test accuracy {scores['accuracy']:.4f}"
    )
    return version.version


@pipeline(name="breast-cancer-training")
def training(
    threshold: float = 0.9,
    n_estimators: int = 100,
    max_depth: int = 5,
    seed: int = 42,
    test_size: float = 0.25,
    model_name: str = "breast-cancer",
) -> None:
    """Train a classifier and register it when its test accuracy beats ``threshold``."""
    raw = ingest()
    checked = validate(data=raw.outputs["data"])
    parts = split(data=raw.outputs["data"], test_size=test_size, seed=seed).after(checked)
    trained = train(
        train_data=parts.outputs["train"], n_estimators=n_estimators, max_depth=max_depth, seed=seed
    )
    scored = evaluate(model=trained.outputs["model"], test_data=parts.outputs["test"])
    with If(scored.output > threshold):  # decided at run time, against the run's threshold parameter
        register(
            model=trained.outputs["model"],
            train_data=parts.outputs["train"],
            metrics=scored.outputs["metrics"],
            model_name=model_name,
        )


def main(argv: list[str]) -> int:
    """Compile and run the pipeline on this machine with ``key=value`` parameters; print each step."""
    from shipyard.pipelines import compile_pipeline, parse_assignments
    from shipyard.pipelines.executors import LocalExecutor, StepStatus

    result = LocalExecutor().run(compile_pipeline(training), parse_assignments(argv))
    print(f"pipeline run {result.run_id}: {result.status.value}")
    for step_id, step in result.steps.items():
        outputs = ", ".join(f"{k}={v}" for k, v in step.outputs.items() if not str(v).startswith("/"))
        print(f"  {step_id:<10} {step.status.value:<10} {step.duration_s:6.2f}s  {outputs}")
        if step.status is StepStatus.FAILED:
            print(step.error, file=sys.stderr)
    return 0 if result.status is StepStatus.SUCCEEDED else 1


# The guard matters: each step runs in a spawned worker process, which imports this module again.
if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
