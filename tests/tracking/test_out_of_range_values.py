"""Numbers too large to store are an `InvalidInput` naming the key, never a raw OverflowError or ValueError.

A value that fails must also leave nothing half-buffered: the run still ends and keeps its good points.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

import shipyard
from shipyard import InvalidInput, Settings
from shipyard.tracking.run import ActiveRun

HUGE = 10**400  # past float64's ~1.8e308
PAST_I64 = 10**30
UNPRINTABLE = 10**5000  # past the 4,300 digits Python writes as text by default


@pytest.mark.parametrize(
    ("log", "message"),
    [
        pytest.param(
            lambda run: run.log_metric("m", HUGE),
            r"metric 'm'.*too large for a 64-bit float",
            id="metric-huge-int",
        ),
        pytest.param(
            lambda run: run.log_metric("m", -HUGE),
            r"metric 'm'.*too large for a 64-bit float",
            id="metric-huge-negative-int",
        ),
        pytest.param(
            lambda run: run.log_metric("m", Fraction(HUGE, 3)),
            r"metric 'm'.*too large for a 64-bit float",
            id="metric-huge-fraction",
        ),
        pytest.param(
            lambda run: run.log_metrics({"a": 1.0, "b": HUGE}),
            r"metric 'b'.*too large for a 64-bit float",
            id="log_metrics-huge-int",
        ),
        pytest.param(
            lambda run: run.log_batch([("c", HUGE, 0)]),
            r"metric 'c'.*too large for a 64-bit float",
            id="log_batch-huge-int",
        ),
        pytest.param(
            lambda run: run.log_metric("m", 1.0, step=PAST_I64),
            r"step of metric 'm' must fit in 64 bits",
            id="step-past-int64",
        ),
        pytest.param(
            lambda run: run.log_metrics({"a": 1.0}, step=-PAST_I64),
            r"step of metric 'a' must fit in 64 bits",
            id="log_metrics-step-past-int64",
        ),
        pytest.param(
            lambda run: run.log_metric("m", 1.0, timestamp=PAST_I64),
            r"timestamp of metric 'm'",
            id="timestamp-past-int64",
        ),
        pytest.param(
            lambda run: run.log_metric("m", 1.0, timestamp=-1),
            r"timestamp of metric 'm'",
            id="timestamp-negative",
        ),
        pytest.param(
            lambda run: run.log_metrics({"a": 1.0}, timestamp=PAST_I64),
            r"timestamp of metric 'a'",
            id="log_metrics-timestamp",
        ),
        pytest.param(
            lambda run: run.log_batch([("c", 1.0, 0, PAST_I64)]),
            r"timestamp of metric 'c'",
            id="log_batch-timestamp",
        ),
        pytest.param(
            lambda run: run.log_param("p", UNPRINTABLE),
            r"param 'p' cannot be written as text: it holds an integer of about 500\d digits",
            id="param-unprintable-int",
        ),
        pytest.param(
            lambda run: run.log_params({"q": {"n": UNPRINTABLE}}),
            r"param 'q' cannot be written as text: it holds an integer of about 500\d",
            id="param-nested-unprintable-int",
        ),
        pytest.param(
            lambda run: run.set_tag("t", UNPRINTABLE),
            r"tag 't' cannot be written as text: it holds an integer of about 500\d digits",
            id="tag-unprintable-int",
        ),
        pytest.param(
            lambda run: run.log_param("s", {"n": {1, 2}}),
            r"param 's' cannot be written as JSON",
            id="param-not-json",
        ),
    ],
)
def test_unstorable_numbers_are_invalid_input_naming_the_key(
    settings: Settings, log: Any, message: str
) -> None:
    with shipyard.start_run("overflow", settings=settings) as run:
        run.log_metric("kept", 1.0, step=1)
        with pytest.raises(InvalidInput, match=message) as info:
            log(run)
        assert len(str(info.value)) < 300  # one readable line, not a 5,000-digit number
    stored = shipyard.get_client(settings).get_run(run.run_id)
    assert stored.status.value == "FINISHED"
    assert stored.metrics == {"kept": 1.0}
    assert stored.params == {} and stored.tags == {}


def test_fluent_log_metric_of_a_huge_int_is_invalid_input(settings: Settings) -> None:
    with (
        shipyard.start_run("overflow", settings=settings),
        pytest.raises(InvalidInput, match=r"metric 'm'.*too large for a 64-bit float"),
    ):
        shipyard.log_metric("m", HUGE)


def test_large_but_representable_numbers_are_stored(settings: Settings) -> None:
    with shipyard.start_run("overflow", settings=settings) as run:
        run.log_metric("big", PAST_I64, step=2**63 - 1, timestamp=2**63 - 1)
        run.log_metric("neg", -(2**63), step=-(2**63), timestamp=0)
        run.log_param("p", HUGE)
        run.set_tag("t", 2**64)
    stored = shipyard.get_client(settings).get_run(run.run_id)
    assert stored.metrics == {"big": 1e30, "neg": float(-(2**63))}
    assert stored.params == {"p": str(HUGE)} and stored.tags == {"t": str(2**64)}
    history = shipyard.get_client(settings).metric_history(run.run_id, "big")
    assert [(m.step, m.timestamp) for m in history] == [(2**63 - 1, 2**63 - 1)]


def test_a_rejected_timestamp_does_not_corrupt_the_buffer(settings: Settings) -> None:
    # Before: the value and step were buffered, the timestamp column overflowed, and the misaligned
    # buffer failed the run's final flush (IndexError), losing every point of the run.
    run: ActiveRun = shipyard.start_run("overflow", settings=settings)
    run.log_metric("m", 1.0, step=1)
    with pytest.raises(InvalidInput):
        run.log_metric("m", 2.0, step=2, timestamp=PAST_I64)
    run.log_metric("m", 3.0, step=3)
    run.end()
    history = shipyard.get_client(settings).metric_history(run.run_id, "m")
    assert [(m.step, m.value) for m in history] == [(1, 1.0), (3, 3.0)]


@pytest.mark.parametrize("artifact_file", ["big.json", "big.yaml"])
def test_log_dict_with_an_int_python_cannot_write_is_invalid_input(
    settings: Settings, artifact_file: str
) -> None:
    with shipyard.start_run("overflow", settings=settings) as run:
        with pytest.raises(InvalidInput, match=rf"'{artifact_file}'.*an integer of about 500\d digits"):
            run.log_dict({"n": [UNPRINTABLE]}, artifact_file)
        assert run.list_artifacts() == []
