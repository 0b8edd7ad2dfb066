"""Models for the pyfunc tests; importable as ``tests.registry.flavors.pyfunc_models``."""

from __future__ import annotations

from typing import Any


class ScaledSum:
    """Follows the config protocol: ``ScaledSum(**model.get_config())`` recreates it."""

    def __init__(self, factor: float, columns: list[str]) -> None:
        self.factor = factor
        self.columns = columns

    def get_config(self) -> dict[str, Any]:
        return {"factor": self.factor, "columns": self.columns}

    def predict(self, df: Any) -> Any:
        return df[self.columns].sum(axis=1).to_numpy() * self.factor


class RowCount:
    """No state, no constructor arguments."""

    def predict(self, df: Any) -> list[int]:
        return [len(df)] * len(df)


class Memorizer:
    """Instance state and no get_config(): only pickle can save it."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}

    def fit(self, keys: list[str], values: list[float]) -> Memorizer:
        self.seen = dict(zip(keys, values, strict=True))
        return self

    def predict(self, df: Any) -> list[float]:
        return [self.seen.get(k, 0.0) for k in df["key"]]


class BadConfig:
    def get_config(self) -> dict[str, Any]:
        return {"when": object()}

    def predict(self, df: Any) -> Any:
        return df


def double_first_column(df: Any) -> Any:
    return df.iloc[:, 0].to_numpy() * 2
