"""Charts' thinned series: bounded in size, ordered, spikes and ends kept."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.errors import InvalidInput
from shipyard.ui.downsample import grid, on_grid, thin


def test_a_short_series_is_kept_whole() -> None:
    kept = thin(np.arange(5.0), np.array([1.0, 2.0, 3.0, 2.0, 1.0]))
    assert kept.x.tolist() == [0, 1, 2, 3, 4] and not kept.thinned and kept.total == 5


def test_a_long_series_keeps_its_spikes_and_ends() -> None:
    steps = np.arange(1_000_000, dtype=np.float64)
    values = np.sin(steps / 1000.0)
    values[123_457] = 50.0  # one spike
    values[876_543] = -50.0  # one dip
    kept = thin(steps, values, 2000)
    assert kept.thinned and kept.total == 1_000_000
    assert len(kept.x) <= 2000
    assert kept.x[0] == 0 and kept.x[-1] == 999_999
    assert 50.0 in kept.y and -50.0 in kept.y
    assert np.all(np.diff(kept.x) > 0)


def test_unsorted_steps_are_sorted_and_nan_never_hides_a_value() -> None:
    x = np.array([5.0, 1.0, 3.0] * 2000)
    y = np.where(np.arange(6000) % 7 == 0, np.nan, np.arange(6000.0))
    kept = thin(x, y, 10)
    assert np.all(np.diff(kept.x) >= 0) and len(kept.x) <= 10
    assert np.nanmax(kept.y) == 5998.0  # 5999 is one of the NaN


def test_nonsense_is_refused() -> None:
    with pytest.raises(InvalidInput, match="max_points"):
        thin(np.arange(3.0), np.arange(3.0), 2)
    with pytest.raises(InvalidInput, match="one length"):
        thin(np.arange(3.0), np.arange(4.0))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=False, width=32), min_size=1, max_size=400),
    st.integers(min_value=4, max_value=50),
)
def test_thinning_keeps_the_extremes_within_the_budget(values: list[float], budget: int) -> None:
    y = np.array(values, dtype=np.float64)
    x = np.arange(len(y), dtype=np.float64)
    kept = thin(x, y, budget)
    assert len(kept.x) <= max(budget, 0) or len(y) <= budget
    assert set(kept.x.tolist()) <= set(x.tolist())
    finite = [v for v in values if not math.isnan(v)]
    if finite:
        assert max(finite) in kept.y.tolist() and min(finite) in kept.y.tolist()
    assert kept.x[0] == 0 and kept.x[-1] == len(y) - 1


def test_series_on_a_shared_grid_keep_their_spikes_in_order() -> None:
    x = np.arange(10_000, dtype=np.float64)
    y = np.zeros(10_000)
    y[5_000] = 9.0
    y[5_001] = -9.0
    slots = on_grid(x, y, 0.0, 20_000.0, 100)
    xs = grid(0.0, 20_000.0, 100)
    assert slots.shape == xs.shape == (200,)
    at = int(np.flatnonzero(slots == 9.0)[0])
    assert slots[at + 1] == -9.0 and at % 2 == 0  # the spike came first, then the dip
    assert np.isnan(slots[100:]).all()  # this run ends halfway along the shared axis
    assert np.all(np.diff(xs) > 0)
