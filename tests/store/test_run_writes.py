"""A run's creation and end as the SQL stores write them (on PostgreSQL, one statement each): tags, retried
keys, a clashing param undoing the whole end, NaN latest values, and an end too big for one statement."""

from __future__ import annotations

import math

import pytest

from shipyard import Conflict, NotFound, RunStatus, Settings
from shipyard.store.sql import run_statements
from shipyard.tracking.chunks import Series
from shipyard.tracking.client import TrackingClient


def _series(values: list[float]) -> Series:
    series = Series()
    for step, value in enumerate(values):
        series.steps.append(step)
        series.values.append(value)
        series.timestamps.append(1_700_000_000_000 + step)
    return series


def test_a_run_is_created_with_its_tags_once_per_key(backend_settings: Settings) -> None:
    client = TrackingClient(backend_settings)
    run, pk = client.create_run("e", tags={"team": "fraud", "note": "<b>"}, idempotency_key="create-0001")
    again, again_pk = client.create_run("e", tags={"team": "fraud"}, idempotency_key="create-0001")
    assert (again.run_id, again_pk) == (run.run_id, pk)
    stored = client.get_run(run.run_id)
    assert stored.tags == {"team": "fraud", "note": "<b>"}
    assert stored.status is RunStatus.RUNNING and stored.end_time is None
    assert [r.run_id for r in client.search_runs([stored.experiment_id])] == [run.run_id]


def test_a_clashing_param_undoes_the_whole_end(backend_settings: Settings) -> None:
    client = TrackingClient(backend_settings)
    run, pk = client.create_run("e")
    client.log_params(pk, {"lr": "0.1"})
    with pytest.raises(Conflict, match="'lr' is already '0.1'"):
        client.set_terminated(
            pk,
            RunStatus.FINISHED,
            {(pk, "loss"): _series([0.5, 0.4])},
            idempotency_key="end-0001",
            params={pk: {"depth": "3", "lr": "0.2"}},
        )
    stored = client.get_run(run.run_id)
    assert stored.status is RunStatus.RUNNING
    assert stored.params == {"lr": "0.1"} and stored.metrics == {}
    # The refused end's key was rolled back with it: the same key with agreeing params is a new write.
    client.set_terminated(
        pk,
        RunStatus.FINISHED,
        {(pk, "loss"): _series([0.5, 0.4])},
        idempotency_key="end-0001",
        params={pk: {"depth": "3", "lr": "0.1"}},
    )
    stored = client.get_run(run.run_id)
    assert stored.status is RunStatus.FINISHED and stored.end_time is not None
    assert stored.params == {"lr": "0.1", "depth": "3"}
    assert [m.value for m in client.metric_history(run.run_id, "loss")] == [0.5, 0.4]


def test_a_retried_end_stores_its_points_and_params_once(backend_settings: Settings) -> None:
    client = TrackingClient(backend_settings)
    run, pk = client.create_run("e")
    for _ in range(2):
        client.set_terminated(
            pk,
            RunStatus.FAILED,
            {(pk, "loss"): _series([1.0, float("nan")]), (pk, "acc"): _series([float("nan")])},
            idempotency_key="end-0002",
            params={pk: {"seed": "7"}},
        )
    stored = client.get_run(run.run_id)
    assert stored.status is RunStatus.FAILED and stored.params == {"seed": "7"}
    assert len(client.metric_history(run.run_id, "loss")) == 2
    assert math.isnan(stored.metrics["loss"]) and math.isnan(stored.metrics["acc"])


def test_an_end_bigger_than_one_statement_is_stored_whole(backend_settings: Settings) -> None:
    client = TrackingClient(backend_settings)
    run, pk = client.create_run("e")
    keys = run_statements.MAX_VALUES // 10  # 13 values a key (chunk and latest row): past one statement
    pending = {(pk, f"m{i:05d}"): _series([float(i)]) for i in range(keys)}
    params = {pk: {f"p{i:05d}": str(i) for i in range(keys)}}
    client.set_terminated(pk, RunStatus.FINISHED, pending, idempotency_key="end-0003", params=params)
    stored = client.get_run(run.run_id)
    assert stored.status is RunStatus.FINISHED
    assert len(stored.metrics) == keys and stored.metrics["m01999"] == 1999.0
    assert len(stored.params) == keys and stored.params["p00042"] == "42"


def test_points_written_one_write_at_a_time_land_with_their_latest_values(backend_settings: Settings) -> None:
    """MLflow's log_metric is one write per point (on PostgreSQL, one statement); a write of several keys,
    a late point for an earlier step, NaN, and a write too big for one statement all land whole."""
    client = TrackingClient(backend_settings)
    run, pk = client.create_run("e")
    for step in range(5):
        client.write_metrics({(pk, "loss"): _series([0.0] * step + [1.0 / (step + 1)])})
    client.write_metrics({(pk, "acc"): _series([0.5]), (pk, "nan"): _series([math.nan])})
    late = Series()
    late.steps.append(1)
    late.values.append(9.0)
    late.timestamps.append(1_700_000_000_999)
    client.write_metrics({(pk, "loss"): late})  # an earlier step: history grows, the latest value stays
    big = {(pk, f"k{i}"): _series([float(i)]) for i in range(1_200)}
    client.write_metrics(big)
    stored = client.get_run(run.run_id)
    assert stored.metrics["loss"] == pytest.approx(0.2) and stored.metrics["acc"] == 0.5
    assert math.isnan(stored.metrics["nan"]) and stored.metrics["k1199"] == 1199.0
    assert len(client.metric_history(run.run_id, "loss")) == 1 + 2 + 3 + 4 + 5 + 1


def test_a_write_for_a_missing_run_stores_nothing(backend_settings: Settings) -> None:
    client = TrackingClient(backend_settings)
    run, pk = client.create_run("e")
    with pytest.raises(Exception, match="(?i)foreign key|constraint"):
        client.write_metrics({(pk, "ok"): _series([1.0]), (pk + 10_000, "orphan"): _series([2.0])})
    assert client.get_run(run.run_id).metrics == {}
    with pytest.raises(NotFound, match="has no metric 'ok'"):
        client.metric_history(run.run_id, "ok")
