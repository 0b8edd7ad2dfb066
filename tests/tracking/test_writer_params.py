"""The metric writer's buffered params (what an active run sends a server with its batches): a refused
param neither loses points nor other runs' params, even when the store fails in between."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.errors import Conflict, StoreError
from shipyard.tracking.client import TrackingClient
from shipyard.tracking.records import now_ms
from shipyard.tracking.writer import MetricWriter
from tests.conftest import make_settings


def test_a_refused_param_then_a_failed_write_keeps_the_points_and_the_other_params(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = TrackingClient(make_settings(tmp_path / "home"))
    (first, first_pk), (second, second_pk) = client.create_run("e"), client.create_run("e")
    client.log_params(first_pk, {"lr": "0.1"})  # as another process did
    writer = MetricWriter(client, interval=3600)
    real = client.write_metrics
    calls: list[bool] = []

    def failing_once_without_params(pending: object, **kwargs: object) -> None:
        calls.append(kwargs.get("params") is not None)
        if kwargs.get("params") is None and calls.count(False) == 1:
            raise StoreError("the server went away")  # the points-alone write after the refusal
        real(pending, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(client, "write_metrics", failing_once_without_params)
    writer.add(first_pk, "m", 1.0, 0, now_ms())
    writer.add_params(first_pk, {"lr": "0.2"})
    writer.add_params(second_pk, {"depth": "3"})
    with pytest.raises(StoreError):
        writer.flush()  # refused for lr, then the points alone fail: all of it kept
    with pytest.raises(Conflict, match="'lr' is already '0.1'"):
        writer.flush()  # points resent under their key, the params refused again, alone
    writer.flush()
    assert [p.value for p in client.metric_history(first.run_id, "m")] == [1.0]
    assert client.get_run(first.run_id).params == {"lr": "0.1"}
    assert client.get_run(second.run_id).params == {"depth": "3"}
    writer.close()
