"""Pre- and post-processing steps for the transformer tests (pyfunc, config protocol); importable as
``tests.serving.transformer_steps``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


class Unscale:
    """Requests send ``x0``, ``x1``, ... scaled down by ``factor``; the model takes ``names``, full scale."""

    def __init__(self, names: list[str], factor: float = 10.0) -> None:
        self.names, self.factor = list(names), factor

    def get_config(self) -> dict[str, Any]:
        return {"names": self.names, "factor": self.factor}

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({name: frame[f"x{i}"] * self.factor for i, name in enumerate(self.names)})


class Fails:
    """A pre-processor that raises on rows whose ``x0`` is negative."""

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)

    def get_config(self) -> dict[str, Any]:
        return {"names": self.names}

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        if (frame["x0"] < 0).any():
            raise ValueError("x0 must not be negative")
        return pd.DataFrame({name: frame[f"x{i}"] for i, name in enumerate(self.names)})


class Labels:
    """The model's class index as a name."""

    def __init__(self, labels: list[str]) -> None:
        self.labels = list(labels)

    def get_config(self) -> dict[str, Any]:
        return {"labels": self.labels}

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.labels, dtype=object)[frame["predict"].to_numpy(dtype=np.int64)]


class Threshold:
    """1 when the probability of class 1 reaches ``cut`` (its signature names ``predict_proba_1``)."""

    def __init__(self, cut: float = 0.9) -> None:
        self.cut = cut

    def get_config(self) -> dict[str, Any]:
        return {"cut": self.cut}

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return (frame["predict_proba_1"].to_numpy() >= self.cut).astype(np.int64)
