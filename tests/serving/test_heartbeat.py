"""A serving server's heartbeat: its report of versions, traffic, requests, errors and latency, published
into the store or to the platform, and shown on the UI's deployments page."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from shipyard.auth.accounts import Accounts
from shipyard.deployments import DeploymentReport, Deployments, RemoteDeployments
from shipyard.errors import Forbidden
from shipyard.histograms import percentile
from shipyard.serving.heartbeat import Heartbeat
from shipyard.serving.repository import ModelConfig
from shipyard.store import open_server_stores
from shipyard.store.http import HttpClient
from tests.conftest import make_settings, platform_server, sign_up
from tests.serving.conftest import Registered, RunningServer, rows


def test_percentiles_interpolate_within_their_bucket() -> None:
    buckets = {0.01: 50.0, 0.1: 90.0, 1.0: 100.0, float("inf"): 100.0}
    assert percentile(buckets, 0.5) == pytest.approx(0.01)
    assert percentile(buckets, 0.95) == pytest.approx(0.1 + 0.9 * 0.5)
    assert percentile({0.01: 0.0, float("inf"): 0.0}, 0.5) is None
    assert percentile({0.5: 0.0, float("inf"): 4.0}, 0.5) == 0.5  # past the last bound: that bound


def _infer(server: RunningServer, registered: Registered, n: int) -> None:
    data = rows(registered, 2)
    body = {"inputs": [{"name": "x", "datatype": "FP64", "shape": list(data.shape), "data": data.tolist()}]}
    for _ in range(n):
        assert httpx.post(server.url + "/v2/models/hb/infer", json=body).status_code == 200
    bad = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 3], "data": [1.0, 2.0, 3.0]}]}
    assert httpx.post(server.url + "/v2/models/hb/infer", json=bad).status_code == 400  # not a server error


def test_a_heartbeat_reports_into_the_store_and_the_deployments_page_shows_it(
    registered: Registered, start_server: Callable[..., RunningServer], tmp_path: Path
) -> None:
    server = start_server(
        [ModelConfig("hb", "models:/bc@champion", traffic={"champion": 90.0})], registered.settings
    )
    store_settings = make_settings(tmp_path / "home")
    deployments = Deployments(open_server_stores(store_settings).deployments)
    beats = Heartbeat(
        server.server.metrics,
        lambda: server.server.repository.deployments.values(),
        lambda name, report: deployments.report(name, server.url, report, by="ops") and None,
    )
    _infer(server, registered, 20)
    beats.beat()
    record = deployments.get("hb")
    assert record.url == server.url and record.created_by == "ops" and record.reported_at
    report = DeploymentReport.model_validate(record.report)
    assert report.requests == 21 and report.errors == 0 and report.requests_per_s > 0
    assert report.p50_ms is not None and 0 < report.p50_ms <= report.p95_ms  # type: ignore[operator]
    assert [(v.label, v.state, v.weight) for v in report.versions] == [("champion", "ready", 90.0)]
    beats.beat()  # a quiet window: no requests, no latency
    quiet = DeploymentReport.model_validate(deployments.get("hb").report)
    assert quiet.requests == 0 and quiet.p50_ms is None

    with platform_server(store_settings) as url:
        page = httpx.get(f"{url}/ui/deployments")
        assert page.status_code == 200
        row = re.search(r'<tr data-deployment="hb">(.*?)</tr>', page.text, re.S)[1]
        assert "reporting" in row and "champion" in row and server.url in row


def test_reports_to_the_platform_need_edit_on_the_deployment(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "server")
    tokens = sign_up(Accounts(open_server_stores(settings).auth), [("ed", "editor"), ("viv", "viewer")])
    report = DeploymentReport(versions=[], window_s=15, requests=3, errors=1, requests_per_s=0.2)
    with platform_server(settings, require_auth=True) as url:
        editor = RemoteDeployments(HttpClient(url, token=tokens["ed"]))
        record = editor.report("churn", "http://10.0.0.7:8080", report)
        assert record.report is not None and record.report["errors"] == 1 and record.created_by == "ed"
        viewer = RemoteDeployments(HttpClient(url, token=tokens["viv"]))
        with pytest.raises(Forbidden):
            viewer.report("churn", "http://10.0.0.7:8080", report)
        wrong = httpx.put(
            f"{url}/api/v1/deployments/churn/report",
            json={"url": "http://10.0.0.7:8080", "report": {"versions": [], "window_s": 0, "rogue": 1}},
            headers={"Authorization": f"Bearer {tokens['ed']}"},
        )
        assert wrong.status_code == 422 and "report" in wrong.json()["error"]["message"]
