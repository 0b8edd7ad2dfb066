"""Models for the canary tests (pyfunc, config protocol); importable as ``tests.releases.canary_models``."""

from __future__ import annotations

import time
from typing import Any

import numpy as np


class Threshold:
    """Predicts ``x > cut``. ``fail_below``: raises on any batch holding an input whose x is below it (with
    x uniform in [0, 1), that share of inputs); ``delay_s``: sleeps that long per predict call."""

    def __init__(self, cut: float = 0.5, fail_below: float = 0.0, delay_s: float = 0.0) -> None:
        self.cut, self.fail_below, self.delay_s = cut, fail_below, delay_s

    def get_config(self) -> dict[str, Any]:
        return {"cut": self.cut, "fail_below": self.fail_below, "delay_s": self.delay_s}

    def predict(self, df: Any) -> Any:
        if self.delay_s:
            time.sleep(self.delay_s)
        x = df["x"].to_numpy(dtype=float)
        if self.fail_below and (x < self.fail_below).any():
            raise ValueError("this version fails on small x")
        return (x > self.cut).astype(np.int64)
