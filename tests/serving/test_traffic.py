"""Traffic between versions: weights, pins, shadow, live changes and rollback; payload logs; deploy CLI."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from shipyard.errors import Conflict, InvalidInput, ModelNotReady, NotFound
from shipyard.payloads import PayloadLogConfig, PayloadLogger, read_payloads
from shipyard.serving.app import ServerConfig
from shipyard.serving.repository import ModelConfig
from shipyard.serving.routing import Deployment
from shipyard.store.artifacts import ArtifactStore
from tests.cli.test_cli import run_cli
from tests.serving.conftest import Registered, RunningServer


# ---------------------------------------------------------------------- routing, pure
@dataclass
class FakeVersion:
    label: str
    version: str
    is_ready: bool = True
    uri: str = "models:/x"
    error: str | None = None

    @property
    def state(self) -> Any:
        from shipyard.serving.repository import ModelState

        return ModelState.READY if self.is_ready else ModelState.LOADING

    def require_ready(self) -> None:
        raise ModelNotReady(f"version {self.label} is still loading")


def deployment(**weights: float) -> Deployment:
    versions = [FakeVersion("champion", "1"), FakeVersion("challenger", "2")]
    return Deployment("churn", versions, weights or None, rng=random.Random(7))  # type: ignore[arg-type]


def test_weights_split_traffic() -> None:
    d = deployment(champion=90, challenger=10)
    counts = Counter(d.route().label for _ in range(5000))
    assert 0.08 < counts["challenger"] / 5000 < 0.12


def test_default_traffic_goes_to_the_first_version_and_pins_find_label_or_number() -> None:
    d = deployment()
    assert {d.route().label for _ in range(50)} == {"champion"}
    assert d.find("challenger").label == "challenger" and d.find("2").label == "challenger"
    with pytest.raises(NotFound, match="no version '7'.*champion \\(version 1\\)"):
        d.find("7")


def test_a_version_not_ready_gets_no_traffic_and_none_ready_says_why() -> None:
    d = deployment(champion=50, challenger=50)
    d.versions["challenger"].is_ready = False  # type: ignore[attr-defined]
    assert {d.route().label for _ in range(50)} == {"champion"}
    d.versions["champion"].is_ready = False  # type: ignore[attr-defined]
    with pytest.raises(ModelNotReady, match="still loading"):
        d.route()


@pytest.mark.parametrize(
    ("weights", "shadow", "message"),
    [
        ({"nope": 10}, None, "no version 'nope'"),
        ({"champion": -1}, None, ">= 0"),
        ({"champion": 0}, None, "above 0"),
        ({"champion": float("nan")}, None, "must be a number"),
        ({"champion": 100}, "ghost", "no version 'ghost' to shadow"),
    ],
)
def test_bad_traffic_is_refused_naming_it(
    weights: dict[str, float], shadow: str | None, message: str
) -> None:
    d = deployment()
    with pytest.raises(InvalidInput, match=message):
        d.set_traffic(weights, shadow)
    assert dict(d.traffic.weights) == {"champion": 100.0}  # unchanged


def test_rollback_undoes_changes_in_order() -> None:
    d = deployment()
    with pytest.raises(Conflict, match="no earlier traffic"):
        d.rollback()
    d.set_traffic({"champion": 90, "challenger": 10})
    d.set_traffic({"challenger": 100}, "champion")
    assert d.rollback().weights == {"champion": 90, "challenger": 10}
    assert dict(d.rollback().weights) == {"champion": 100.0}


# ---------------------------------------------------------------------- over HTTP
def start_versions(
    start_server: Callable[..., RunningServer],
    registered: Registered,
    tmp_path_factory: pytest.TempPathFactory,
    traffic: dict[str, float],
    config: ServerConfig | None = None,
) -> RunningServer:
    """``bc`` served as champion and challenger with ``traffic``, every request payload-logged."""
    model = ModelConfig(
        "bc",
        versions={"champion": "models:/bc@champion", "challenger": "models:/bc@challenger"},
        traffic=traffic,
    )
    store = ArtifactStore(str(tmp_path_factory.mktemp("payloads")))
    payloads = PayloadLogger(store, PayloadLogConfig(sample_rate=1.0, max_rows=100_000, max_seconds=3600))
    return start_server([model], registered.settings, config, payloads=payloads)


@pytest.fixture(scope="module")
def canary(
    registered: Registered,
    start_server: Callable[..., RunningServer],
    tmp_path_factory: pytest.TempPathFactory,
) -> RunningServer:
    return start_versions(start_server, registered, tmp_path_factory, {"champion": 80, "challenger": 20})


def one_row(registered: Registered) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "x", "datatype": "FP64", "shape": [1, 30], "data": registered.frame.iloc[0].tolist()}
        ]
    }


def answered_by(server: RunningServer, registered: Registered, n: int, **headers: str) -> Counter[str]:
    with httpx.Client(base_url=server.url) as client:
        return Counter(
            client.post("/v2/models/bc/infer", json=one_row(registered), headers=headers).headers[
                "x-shipyard-version"
            ]
            for _ in range(n)
        )


def test_canary_weights_pins_and_live_changes(canary: RunningServer, registered: Registered) -> None:
    split = answered_by(canary, registered, 300)
    assert set(split) == {"champion", "challenger"} and 30 <= split["challenger"] <= 95
    assert answered_by(canary, registered, 20, **{"X-Shipyard-Version": "challenger"}) == {"challenger": 20}
    pinned = httpx.post(canary.url + "/v2/models/bc/versions/2/infer", json=one_row(registered))
    assert pinned.headers["x-shipyard-version"] == "challenger" and pinned.json()["model_version"] == "2"

    changed = httpx.put(canary.url + "/admin/deployments/bc/traffic", json={"traffic": {"challenger": 100}})
    assert changed.status_code == 200 and changed.json()["traffic"] == {"challenger": 100}
    assert answered_by(canary, registered, 30) == {"challenger": 30}
    assert httpx.post(canary.url + "/admin/deployments/bc/rollback", json={}).json()["traffic"] == {
        "champion": 80,
        "challenger": 20,
    }
    bad = httpx.put(canary.url + "/admin/deployments/bc/traffic", json={"traffic": {"nope": 1}})
    assert bad.status_code == 400 and "no version 'nope'" in bad.json()["error"]
    assert httpx.post(canary.url + "/admin/deployments/bc/rollback", json={}).status_code == 409


def test_shadow_gets_a_copy_that_is_logged_not_answered(
    canary: RunningServer, registered: Registered
) -> None:
    httpx.put(
        canary.url + "/admin/deployments/bc/traffic",
        json={"traffic": {"champion": 100}, "shadow": "challenger"},
    )
    try:
        body = {**one_row(registered), "id": "shadowed-1"}
        answer = httpx.post(canary.url + "/v2/models/bc/infer", json=body)
        assert answer.headers["x-shipyard-version"] == "champion"
    finally:
        httpx.post(canary.url + "/admin/deployments/bc/rollback", json={})
    payloads = canary.server.payloads
    assert payloads is not None
    records = read_payloads(payloads.store, "bc")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the shadow call finishes after the answer: wait for its record
        payloads.flush()
        frame = read_payloads(payloads.store, "bc")
        records = frame[frame["request_id"] == "shadowed-1"]
        if len(records) == 2:
            break
        time.sleep(0.05)
    assert sorted(zip(records["label"], records["shadow"], strict=True)) == [
        ("challenger", True),
        ("champion", False),
    ]
    record = records[records["label"] == "champion"].iloc[0]
    assert record["status"] == 200 and record["rows"] == 1 and record["latency_ms"] > 0
    assert '"predict"' in record["outputs"] and record["version"] == "1"


def test_admin_routes_need_the_token_when_one_is_set(
    registered: Registered, start_server: Callable[..., RunningServer]
) -> None:
    server = start_server(
        [ModelConfig("bc", "models:/bc@champion")], registered.settings, admin_token="s3cret"
    )
    assert httpx.get(server.url + "/admin/deployments").status_code == 401
    wrong = httpx.get(server.url + "/admin/deployments", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "Bearer" in wrong.json()["error"]
    ok = httpx.get(server.url + "/admin/deployments", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and ok.json()["deployments"][0]["versions"][0]["label"] == "champion"


def test_deploy_cli_changes_traffic_and_rolls_back(
    canary: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(
        capsys, "deploy", "set-traffic", "bc", "champion=50", "challenger=50", "--url", canary.url
    )
    assert code == 0 and "bc: traffic set: champion=50 challenger=50" in out
    code, out, _ = run_cli(capsys, "deploy", "status", "--url", canary.url, "--json")
    assert code == 0 and '"challenger": 50' in out.replace("50.0", "50")
    code, out, _ = run_cli(capsys, "deploy", "rollback", "bc", "--url", canary.url)
    assert code == 0 and "rolled back: champion=80 challenger=20" in out
    code, _, err = run_cli(capsys, "deploy", "set-traffic", "bc", "champion=lots", "--url", canary.url)
    assert code == 2 and "champion=lots" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "deploy", "set-traffic", "nope", "a=1", "--url", canary.url)
    assert code == 3 and "no model named 'nope'" in err
    code, _, err = run_cli(capsys, "deploy", "status", "--url", "http://127.0.0.1:1")
    assert code == 1 and "cannot reach the server" in err and err.count("\n") == 1


def test_metadata_lists_every_version_unless_one_is_named(canary: RunningServer) -> None:
    assert httpx.get(canary.url + "/v2/models/bc").json()["versions"] == ["1", "2"]
    assert httpx.get(canary.url + "/v2/models/bc/versions/challenger").json()["versions"] == ["2"]


def test_metadata_lists_each_version_once_in_version_order(
    registered: Registered, start_server: Callable[..., RunningServer]
) -> None:
    """Two labels of one registry version (``@champion``, ``/1``) are one version; numbers sort as numbers."""
    config = ModelConfig(
        "bc-twice",
        versions={
            "challenger": "models:/bc@challenger",
            "champion": "models:/bc@champion",
            "pinned": "models:/bc/1",
        },
    )
    server = start_server([config], registered.settings)
    assert httpx.get(server.url + "/v2/models/bc-twice").json()["versions"] == ["1", "2"]
    assert httpx.get(server.url + "/v2/models/bc-twice/versions/pinned").json()["versions"] == ["1"]
