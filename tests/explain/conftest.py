"""Synthetic data whose label depends on one feature strongly, on another weakly, and on two not at all."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="session")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "noise_a": rng.normal(size=600),
            "signal": rng.normal(size=600),
            "minor": rng.normal(size=600),
            "noise_b": rng.uniform(size=600),
        }
    )


@pytest.fixture(scope="session")
def amount(frame: pd.DataFrame) -> np.ndarray:
    """A regression target: 4 x signal + minor + a little noise."""
    rng = np.random.default_rng(8)
    return (4 * frame["signal"] + frame["minor"] + rng.normal(scale=0.1, size=len(frame))).to_numpy()


@pytest.fixture(scope="session")
def label(frame: pd.DataFrame) -> np.ndarray:
    """A binary label: signal (with a nudge from minor) above zero."""
    return (frame["signal"] + 0.2 * frame["minor"] > 0).astype(int).to_numpy()
