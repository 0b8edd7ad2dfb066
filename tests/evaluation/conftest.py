"""Registered classifiers and held-out rows for the evaluation tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.registry.signature import infer_signature

# Models are logged with a signature, not an input example: that skips the ONNX export (seconds per model).
REGIONS = np.array(["north", "south", "east/west"])


def classification_rows(seed: int = 0, rows: int = 240) -> pd.DataFrame:
    X, y = make_classification(n_samples=rows, n_features=5, n_informative=3, random_state=seed)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    return frame.assign(region=REGIONS[np.arange(rows) % 3], label=y)


@pytest.fixture
def classifiers() -> pd.DataFrame:
    """``clf`` v1 (C=1, @champion) and v2 (C=0.01), trained on features x0..x4; returns held-out rows with
    a ``region`` column the models never saw and the ``label``."""
    train = classification_rows(seed=1)
    features = train.drop(columns=["region", "label"])
    for c in (1.0, 0.01):
        model = LogisticRegression(C=c).fit(features, train["label"])
        with shipyard.start_run("train") as run:
            info = shipyard.models.log(model, "model", run=run, signature=infer_signature(features.head(3)))
        shipyard.models.register(info.uri, "clf")
    shipyard.models.set_alias("clf", "champion", 1)
    return classification_rows(seed=1, rows=300).iloc[240:].reset_index(drop=True)
