"""The stored form of a metric series: its latest point and its step range, short series and long."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shipyard.tracking import chunks
from tests.conftest import series_of

# Few distinct steps and timestamps, so ties on the top step (and on its newest time) are common.
_point = st.tuples(st.integers(-3, 3), st.floats(allow_nan=False), st.integers(0, 3))
# Short series take the builtins' path, long ones numpy's (chunks._VECTOR_FROM): both must agree.
_points = st.one_of(
    st.lists(_point, min_size=1, max_size=chunks._VECTOR_FROM - 1),
    st.lists(_point, min_size=chunks._VECTOR_FROM, max_size=300),
)


@given(_points)
def test_the_latest_point_is_the_top_step_then_the_newest_then_the_last_logged(
    points: list[tuple[int, float, int]],
) -> None:
    top = max(step for step, _, _ in points)
    newest = max(ts for step, _, ts in points if step == top)
    last = max(i for i, (step, _, ts) in enumerate(points) if step == top and ts == newest)
    step, value, timestamp = points[last]
    assert chunks.latest_of(series_of(points)) == (value, step, timestamp)


@given(_points)
def test_a_chunk_records_its_count_and_step_range(points: list[tuple[int, float, int]]) -> None:
    [row] = chunks.encode_series(7, "loss", series_of(points))
    steps = [step for step, _, _ in points]
    assert row[:5] == (7, "loss", len(points), min(steps), max(steps))
    assert list(chunks.decode_chunk(*row[5:])) == points
