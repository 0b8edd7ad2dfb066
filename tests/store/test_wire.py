"""The metric batch's wire forms: JSON lists, base64 columns, and the packed binary body."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.errors import InvalidInput
from shipyard.store import wire
from shipyard.tracking.client import TrackingClient
from tests.conftest import make_settings, platform_server, series_of

_int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_points = st.lists(st.tuples(_int64, st.floats(allow_nan=True, allow_infinity=True), _int64), max_size=50)


@given(st.lists(st.tuples(st.text(min_size=1, max_size=8), _points), max_size=4))
def test_a_packed_batch_comes_back_as_it_went(
    entries: list[tuple[str, list[tuple[int, float, int]]]],
) -> None:
    batch = [(f"run{i}", key, series_of(points)) for i, (key, points) in enumerate(entries)]
    header, columns = wire.unpack_batch(wire.pack_batch(batch, {"run0": {"lr": "0.1"}}))
    assert header["params"] == {"run0": {"lr": "0.1"}}
    assert [(e["run_id"], e["key"], e["count"]) for e in header["metrics"]] == [
        (run, key, len(s)) for run, key, s in batch
    ]
    for (_, _, sent), got in zip(batch, columns, strict=True):
        assert list(got.steps) == list(sent.steps) and list(got.timestamps) == list(sent.timestamps)
        assert [struct.pack("<d", v) for v in got.values] == [struct.pack("<d", v) for v in sent.values]


def _body(header: object, tail: bytes = b"") -> bytes:
    head = json.dumps(header).encode()
    return struct.pack("<I", len(head)) + head + tail


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\x01", "header's length"),
        (struct.pack("<I", 2**31) + b"{}", "runs past the body"),
        (struct.pack("<I", 3) + b"{x}", "not JSON"),
        (_body([]), "'metrics' list"),
        (_body({"metrics": [{"run_id": "r", "key": "k", "count": -1}]}), r"metrics\[0\].count"),
        (_body({"metrics": [{"run_id": "r", "key": "k", "count": 2}]}, b"\0" * 47), "holds 47 bytes"),
        (_body({"metrics": [{"run_id": "r", "key": "k", "count": 1}]}, b"\0" * 25), "counts 1 points"),
    ],
)
def test_a_malformed_packed_batch_is_refused_saying_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        wire.unpack_batch(body)


def test_the_server_stores_a_packed_batch_and_refuses_bad_ones_with_4xx(tmp_path: Path) -> None:
    with platform_server(make_settings(tmp_path / "server")) as url:
        client = TrackingClient(make_settings(tmp_path / "home", tracking_uri=url))
        run, _ = client.create_run("e")
        api = f"{url}/api/v1/metrics/binary"
        packed = {"content-type": wire.PACKED_METRICS}
        points = series_of([(0, 1.0, 5), (1, math.nan, 6), (2, -math.inf, 7)])
        body = wire.pack_batch([(run.run_id, "loss", points)], {run.run_id: {"lr": "0.1"}})
        assert httpx.post(api, content=body, headers=packed).status_code == 204
        stored = client.get_run(run.run_id)
        assert stored.params == {"lr": "0.1"} and stored.metrics["loss"] == -math.inf
        assert [p.step for p in client.metric_history(run.run_id, "loss")] == [0, 1, 2]

        wrong_type = httpx.post(api, content=body, headers={"content-type": "application/json"})
        assert wrong_type.status_code == 400 and wire.PACKED_METRICS in wrong_type.json()["error"]["message"]
        short = httpx.post(api, content=body[:-8], headers=packed)
        assert short.status_code == 400 and "header counts 3 points" in short.json()["error"]["message"]
        unknown_field = _body({"metrics": [], "extra": 1})
        refused = httpx.post(api, content=unknown_field, headers=packed)
        assert refused.status_code == 422 and refused.json()["error"]["field"] == "extra"
        bad_key = wire.pack_batch([(run.run_id, "bad key!", points)])
        named = httpx.post(api, content=bad_key, headers=packed)
        assert named.status_code == 400 and "bad key!" in named.json()["error"]["message"]
        missing = httpx.post(api, content=wire.pack_batch([("0" * 32, "m", points)]), headers=packed)
        assert missing.status_code == 404 and "0" * 32 in missing.json()["error"]["message"]
        # Nothing of a refused batch was stored.
        assert len(client.metric_history(run.run_id, "loss")) == 3
