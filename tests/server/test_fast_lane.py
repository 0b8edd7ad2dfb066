"""The server's fast lane: ordinary per-run writes served without the framework, everything else the long way.

The lane must give the same answers as the routes it stands in for: a body its model refuses goes to the full
app (422 naming the field), a bad ``Idempotency-Key`` too, store errors keep their status and shape.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.config import Settings
from shipyard.server.app import create_app
from shipyard.server.fast_lane import FastLane, _match
from shipyard.store import open_server_stores, wire
from tests.conftest import PostgresCluster, make_settings, platform_server, series_of


@pytest.mark.parametrize(
    ("method", "path", "values"),
    [
        ("POST", "/api/v1/runs", ()),
        ("POST", "/api/v1/metrics", ()),
        ("POST", "/api/v1/metrics/binary", ()),
        ("POST", "/api/v1/runs/abc123/end", ("abc123",)),
        ("POST", "/api/v1/runs/a/b/end", None),  # not a run id: the router's 404
        ("POST", "/api/v1/runs//end", None),
        ("POST", "/api/v1/runs/beat", None),
        ("GET", "/api/v1/runs/abc/end", None),
        ("PUT", "/api/v1/runs", None),
        ("POST", "/api/v2/runs", None),
        ("POST", "/api/v1/runs/", None),
    ],
)
def test_the_lane_takes_only_its_routes(method: str, path: str, values: tuple[str, ...] | None) -> None:
    hit = _match(method, path)
    assert (hit is None) if values is None else (hit is not None and hit[1] == values)


def _call(app: Any, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """One request straight into an ASGI app (no server): its status and body."""
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*raw, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 5000),
    }
    answered: list[dict[str, Any]] = []
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        answered.append(message)

    asyncio.run(app(scope, receive, send))
    return answered[0]["status"], b"".join(m.get("body", b"") for m in answered[1:])


def test_ordinary_writes_never_reach_the_framework(settings: Settings) -> None:
    app = create_app(settings)

    async def the_long_way(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError(f"{scope['method']} {scope['path']} went the long way")

    async def with_app(scope: Any, receive: Any, send: Any) -> None:
        scope["app"] = app  # what Starlette sets before its middleware: the guard reads the app's state
        scope["state"] = {"principal": None}
        await FastLane(the_long_way)(scope, receive, send)

    js = {"Content-Type": "application/json", "Idempotency-Key": "create-0001"}
    status, body = _call(with_app, "POST", "/api/v1/runs", b'{"experiment": "lane"}', js)
    assert status == 201
    run_id = json.loads(body)["run_id"]
    series = series_of([(0, 0.5, 1), (1, 0.25, 2)])
    packed = wire.pack_batch([(run_id, "loss", series)], {run_id: {"lr": "0.1"}})
    status, _ = _call(
        with_app, "POST", "/api/v1/metrics/binary", packed, {"Content-Type": wire.PACKED_METRICS}
    )
    assert status == 204
    end = {"status": "FINISHED", "metrics": [wire.series_out(run_id, "acc", series)]}
    js["Idempotency-Key"] = "end-0001"
    status, body = _call(with_app, "POST", f"/api/v1/runs/{run_id}/end", json.dumps(end).encode(), js)
    assert status == 200 and json.loads(body)["end_time"] > 0

    tracking = app.state.stores.tracking
    run = tracking.get_run(run_id)
    assert run.status.value == "FINISHED" and run.params == {"lr": "0.1"}
    assert [m.value for m in tracking.metric_history(run_id, "loss")] == [0.5, 0.25]
    assert [m.value for m in tracking.metric_history(run_id, "acc")] == [0.5, 0.25]


@pytest.fixture
def server(settings: Settings) -> Any:
    with platform_server(settings) as url:
        yield url


def test_what_the_lane_refuses_gets_the_full_apps_answer(server: str) -> None:
    api = f"{server}/api/v1"
    run_id = httpx.post(f"{api}/runs", json={"experiment": "lane"}).json()["run_id"]

    unknown = httpx.post(f"{api}/runs", json={"experiment": "lane", "colour": "red"})
    assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "colour"
    wrong_type = httpx.post(f"{api}/runs/{run_id}/end", json={"status": "FINISHED", "metrics": "lots"})
    assert wrong_type.status_code == 422 and wrong_type.json()["error"]["field"] == "metrics"
    bad_status = httpx.post(f"{api}/runs/{run_id}/end", json={"status": "SNOOZING"})
    assert bad_status.status_code == 422 and bad_status.json()["error"]["field"] == "status"
    not_json = httpx.post(f"{api}/runs", content=b"{nope", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 422 and "not valid JSON" in not_json.json()["error"]["message"]
    bad_key = httpx.post(f"{api}/runs", json={"experiment": "lane"}, headers={"Idempotency-Key": "x y"})
    assert bad_key.status_code == 422 and bad_key.json()["error"]["field"] == "header.Idempotency-Key"
    as_text = httpx.post(f"{api}/metrics/binary", content=b"\0\0\0\0", headers={"Content-Type": "text/plain"})
    assert as_text.status_code == 400 and wire.PACKED_METRICS in as_text.json()["error"]["message"]

    missing = httpx.post(f"{api}/runs/no-such-run/end", json={"status": "FINISHED"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    short = httpx.post(
        f"{api}/metrics/binary", content=b"\x02\x00\x00\x00{}", headers={"Content-Type": wire.PACKED_METRICS}
    )
    assert short.status_code in (400, 422) and "error" in short.json()

    # A retried creation (same key) is the same run, through the lane as through the routes.
    key = {"Idempotency-Key": "retried-create-1"}
    first = httpx.post(f"{api}/runs", json={"experiment": "lane"}, headers=key).json()
    again = httpx.post(f"{api}/runs", json={"experiment": "lane"}, headers=key).json()
    assert first["run_id"] == again["run_id"]


def test_the_lane_keeps_the_front_doors_checks(tmp_path: Path, settings: Settings) -> None:
    with platform_server(settings, require_auth=True, max_body_bytes=4096) as url:
        api = f"{url}/api/v1"
        anonymous = httpx.post(f"{api}/runs", json={"experiment": "lane"})
        assert anonymous.status_code == 401
        huge = httpx.post(
            f"{api}/runs", json={"experiment": "x" * 10_000}, headers={"Authorization": "Bearer shy_nope"}
        )
        assert huge.status_code == 401  # credentials first: nobody's body is read before them


def test_a_write_that_must_wait_for_the_lock_leaves_the_event_loop_free(settings: Settings) -> None:
    """On SQLite the lane writes on the event loop; a write that would wait (another process holds the
    lock) goes to a thread instead, so the server keeps answering meanwhile, and the write lands after."""
    import sqlite3
    import threading

    import sqlalchemy as sa

    with platform_server(settings) as url:
        run_id = httpx.post(f"{url}/api/v1/runs", json={"experiment": "locked"}).json()["run_id"]
        log = f"{url}/api/2.0/mlflow/runs/log-metric"
        point = {"run_id": run_id, "key": "loss", "value": 0.5, "timestamp": 1, "step": 0}
        assert httpx.post(log, json=point).status_code == 200  # the lane's pool has an idle connection now

        other = sqlite3.connect(sa.engine.make_url(settings.db_url).database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process's writer, mid-transaction
        answers: list[httpx.Response] = []
        writer = threading.Thread(
            target=lambda: answers.append(httpx.post(log, json={**point, "step": 1}, timeout=60))
        )
        try:
            writer.start()
            writer.join(1.0)
            assert not answers  # the write waits for the lock …
            health = httpx.get(f"{url}/api/v1/health", timeout=5)  # … and the server answers meanwhile
            assert health.status_code == 200
        finally:
            other.execute("ROLLBACK")
            other.close()
        writer.join(30)
        assert [a.status_code for a in answers] == [200]
        assert httpx.post(log, json={**point, "step": 2}).status_code == 200

    history = open_server_stores(settings).tracking.metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 0.5), (2, 0.5)]


@pytest.mark.postgres
def test_on_postgresql_a_point_logged_alone_is_sent_from_the_event_loop(
    tmp_path: Path, postgres: PostgresCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shipyard.server import fast_lane

    settings = make_settings(tmp_path / "home", db_url=postgres.create_database())
    with platform_server(settings) as url, httpx.Client(base_url=url) as client:
        run_id = client.post("/api/v1/runs", json={"experiment": "pg-lane"}).json()["run_id"]
        log = "/api/2.0/mlflow/runs/log-metric"
        point = {"run_id": run_id, "key": "loss", "value": 0.0, "timestamp": 1, "step": 0}
        assert client.post(log, json=point).status_code == 200  # the run's key is read (in a thread) once
        unknown = client.post(log, json={**point, "run_id": "f" * 32})
        assert unknown.status_code == 404 and unknown.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"

        def no_thread(*_args: Any) -> Any:
            raise AssertionError("a point logged alone went to a worker thread")

        monkeypatch.setattr(fast_lane, "in_thread", no_thread)
        for step in range(1, 50):
            assert client.post(log, json={**point, "step": step, "value": step / 2}).status_code == 200
        refused = client.post(log, json={**point, "value": "lots"})  # checked before anything is sent
        assert refused.status_code == 400 and refused.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        monkeypatch.undo()

    history = open_server_stores(settings).tracking.metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, s / 2) for s in range(50)]
