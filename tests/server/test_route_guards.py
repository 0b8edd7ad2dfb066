"""Every route of the platform server is guarded: enumerated from its OpenAPI document, each gets an anonymous
call (401) and an under-privileged one (403 for a write, a filtered answer for a read).

The server runs with sign-in required and ``default_permission=NO_PERMISSIONS``; the world (an experiment,
runs, a registered model, a deployment, lineage, a schedule, an artifact) is someone else's. ``mallory`` is
an editor with no grants on any of it; ``viv`` a viewer, for what editors may do but viewers may not
(create). A route missing from ``REQUESTS`` fails the test: a new route must say how it is guarded.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from shipyard.auth.accounts import Accounts
from shipyard.config import Settings
from shipyard.lineage.records import ArtifactType
from shipyard.store import open_server_stores, wire
from shipyard.store.artifacts import ArtifactStore
from shipyard.tracking.chunks import Series
from shipyard.tracking.client import TrackingClient
from shipyard.tracking.records import ArtifactRecord, DatasetInput, RunStatus, now_ms
from tests.conftest import make_settings, platform_server, series_of, sign_up

PUBLIC = {("GET", "/api/v1/health")}
# The blob of the one file of dataset 'secret-data' (content b"secret"), as its artifact path.
_SECRET_SHA = hashlib.sha256(b"secret").hexdigest()
_SECRET_BLOB = f"datasets/blobs/{_SECRET_SHA[:2]}/{_SECRET_SHA}"
Check = Callable[[httpx.Response], bool]


@dataclass
class World:
    url: str
    tokens: dict[str, str]
    experiment_id: str
    run_id: str
    child_id: str
    schedule_id: str
    token_of_other: str


def _empty(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.json() in ([], {"runs": [], "total": 0})


def _forbidden(response: httpx.Response) -> bool:
    return response.status_code == 403 and response.json()["error"]["code"] == "FORBIDDEN"


def _only_own(response: httpx.Response) -> bool:
    body = response.json()
    items = body if isinstance(body, list) else [body]
    return response.status_code in (200, 201) and all(
        item.get("user") in (None, "mallory") for item in items if isinstance(item, dict)
    )


def _no_searches(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.json() == {"searches": [], "next_page_token": None}


def _no_pipeline_runs(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.json() == {"runs": [], "next_page_token": None}


def _none_next(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.json() == {"next_run_at": None}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("guards")
    settings: Settings = make_settings(root / "server")
    stores = open_server_stores(settings)
    accounts = Accounts(stores.auth)
    tokens = sign_up(
        accounts, [("root", "admin"), ("mallory", "editor"), ("viv", "viewer"), ("ed", "editor")]
    )
    other_token = accounts.create_token("ed", "other")[0].token_id

    tracking = TrackingClient(settings, stores=stores)
    experiment = tracking.create_experiment("secret")
    run, key = tracking.create_run("secret", tags={"team": "a", "shipyard.pipeline": "p"})
    child, _ = tracking.create_run("secret", parent_run_id=run.run_id)
    tracking.log_params(key, {"lr": "0.1"})
    tracking.record_artifacts(key, [ArtifactRecord("model/MLmodel", 3, "0" * 64)])
    tracking.log_dataset_input(key, DatasetInput("train", "d" * 16, "file:///d.csv", "local", 10, schema={}))
    from shipyard.tracking.chunks import Series

    series = Series()
    series.steps.append(0), series.values.append(0.5), series.timestamps.append(now_ms())
    tracking.set_terminated(key, RunStatus.FINISHED, {(key, "acc"): series})
    stores.registry.create_version(
        "secret-model",
        flavor="sklearn",
        source_uri=f"runs:/{run.run_id}/model",
        package_uri="/nowhere",
        manifest_sha256="0" * 64,
        run_id=run.run_id,
        lineage={},
    )
    stores.registry.set_alias("secret-model", "champion", 1)
    stores.lineage.record(
        "train",
        run_id=run.run_id,
        inputs=[("file:///data/train.csv", ArtifactType.DATASET, "a" * 64, None)],
        outputs=[("file:///models/m", ArtifactType.MODEL, "b" * 64, None)],
    )
    schedule = stores.schedules.insert(
        {
            "schedule_id": "s" * 32,
            "name": "nightly",
            "pipeline_name": "p",
            "spec_yaml": "{}",
            "parameters_json": "{}",
            "cron": "0 3 * * *",
            "timezone": "UTC",
            "catchup": "skip",
            "experiment": "secret",
            "executor": "local",
            "cache": True,
            "paused": False,
            "next_run_at": now_ms() - 1000,
            "last_run_at": None,
            "last_run_id": None,
            "last_status": None,
            "created_at": now_ms(),
            "updated_at": now_ms(),
        }
    )
    from shipyard.datasets import DatasetFile, SnapshotKind
    from shipyard.datasets.manifest import snapshot_sha256

    secret_file = DatasetFile("a.csv", 6, hashlib.sha256(b"secret").hexdigest())
    stores.datasets.create_version(
        "secret-data", sha256=snapshot_sha256([secret_file]), kind=SnapshotKind.DIRECTORY, files=[secret_file]
    )
    from shipyard.deployments import Deployments

    Deployments(stores.deployments).register("secret-deploy", "http://10.0.0.5:8080", by="ed")
    artifacts = root / "server-artifacts"
    ArtifactStore(str(artifacts)).put_bytes(b"secret", f"artifacts/{experiment.experiment_id}/notes.txt")
    ArtifactStore(str(artifacts)).put_bytes(b"secret", f"artifacts/{_SECRET_BLOB}")
    with platform_server(
        settings, artifacts=str(artifacts), require_auth=True, default_permission="NO_PERMISSIONS"
    ) as url:
        yield World(
            url, tokens, experiment.experiment_id, run.run_id, child.run_id, schedule.schedule_id, other_token
        )


def _requests(w: World) -> dict[tuple[str, str], dict[str, Any]]:
    """How to call each route as an under-privileged user, and what it must answer."""
    run, exp = w.run_id, w.experiment_id
    series = {"run_id": run, "key": "m", "steps": [0], "values": [1.0], "timestamps": [now_ms()]}
    version = {"flavor": "sklearn", "source_uri": "x", "package_uri": "/x", "manifest_sha256": "0" * 64}
    ref = {"uri": "file:///x", "type": "Dataset", "sha256": "c" * 64}
    return {
        ("POST", "/api/v1/admin/gc"): {"json": {}},
        ("POST", "/api/v1/admin/stale-runs"): {"json": {}},
        ("GET", "/api/v1/artifact-entries"): {"params": {"prefix": f"artifacts/{exp}"}},
        ("DELETE", "/api/v1/artifacts/{path}"): {"path": f"/api/v1/artifacts/artifacts/{exp}/notes.txt"},
        ("GET", "/api/v1/artifacts/{path}"): {"path": f"/api/v1/artifacts/artifacts/{exp}/notes.txt"},
        ("PUT", "/api/v1/artifacts/{path}"): {
            "path": f"/api/v1/artifacts/artifacts/{exp}/evil.txt",
            "content": b"x",
        },
        ("GET", "/api/v1/datasets"): {"expect": _empty},
        ("POST", "/api/v1/datasets/blob-holders"): {"json": {"sha256s": [_SECRET_SHA]}, "as": "viv"},
        ("GET", "/api/v1/datasets/{name}/versions"): {"path": "/api/v1/datasets/secret-data/versions"},
        ("POST", "/api/v1/datasets/{name}/versions"): {
            "path": "/api/v1/datasets/secret-data/versions",
            "json": {"sha256": "0" * 64, "kind": "file", "files": []},
        },
        ("GET", "/api/v1/datasets/{name}/versions/{version}"): {
            "path": "/api/v1/datasets/secret-data/versions/1"
        },
        ("GET", "/api/v1/access"): {"params": {"resource": "deployment:secret-deploy", "permission": "READ"}},
        ("GET", "/api/v1/audit"): {},
        ("GET", "/api/v1/deployments"): {"expect": _empty},
        ("DELETE", "/api/v1/deployments/{name}"): {"path": "/api/v1/deployments/secret-deploy"},
        ("GET", "/api/v1/deployments/{name}"): {"path": "/api/v1/deployments/secret-deploy"},
        ("PUT", "/api/v1/deployments/{name}"): {
            "path": "/api/v1/deployments/secret-deploy",
            "json": {"url": "http://evil.example:8080"},
        },
        ("PUT", "/api/v1/deployments/{name}/report"): {
            "path": "/api/v1/deployments/secret-deploy/report",
            "json": {
                "url": "http://evil.example:8080",
                "report": {"versions": [], "window_s": 15, "requests": 0, "errors": 0, "requests_per_s": 0},
            },
        },
        ("GET", "/api/v1/experiments"): {"expect": _empty},
        ("POST", "/api/v1/experiments"): {"json": {"name": "new"}, "as": "viv"},
        ("DELETE", "/api/v1/experiments/{id_or_name}"): {"path": f"/api/v1/experiments/{exp}"},
        ("GET", "/api/v1/experiments/{id_or_name}"): {"path": "/api/v1/experiments/secret"},
        ("GET", "/api/v1/experiments/{id_or_name}/backed-versions"): {
            "path": f"/api/v1/experiments/{exp}/backed-versions"
        },
        ("POST", "/api/v1/experiments/{id_or_name}/restore"): {"path": f"/api/v1/experiments/{exp}/restore"},
        ("PATCH", "/api/v1/experiments/{id_or_name}"): {
            "path": f"/api/v1/experiments/{exp}",
            "json": {"name": "mallory-now"},
        },
        ("PUT", "/api/v1/experiments/{name}"): {"path": "/api/v1/experiments/secret"},
        ("DELETE", "/api/v1/grants"): {"params": {"user": "mallory", "resource": "experiment:secret"}},
        ("GET", "/api/v1/grants"): {"params": {"user": "ed"}},
        ("PUT", "/api/v1/grants"): {
            "json": {"user": "mallory", "resource": "experiment:secret", "permission": "MANAGE"}
        },
        ("GET", "/api/v1/lineage/artifacts"): {"params": {"uri": "file:///models/m"}},
        ("POST", "/api/v1/lineage/executions"): {
            "json": {"execution_type": "x", "run_id": run, "inputs": [ref]}
        },
        ("GET", "/api/v1/lineage/upstream"): {"params": {"uri": "file:///models/m"}},
        ("POST", "/api/v1/metrics"): {"json": {"metrics": [series]}},
        ("POST", "/api/v1/metrics/binary"): {
            "content": wire.pack_batch([(run, "m", _points(1))]),
            "headers": {"content-type": wire.PACKED_METRICS},
        },
        ("GET", "/api/v1/monitoring/models/{model}/alerts"): {
            "path": "/api/v1/monitoring/models/secret-model/alerts"
        },
        ("POST", "/api/v1/monitoring/models/{model}/labels"): {
            "path": "/api/v1/monitoring/models/secret-model/labels",
            "content": b"request_id,label\nr1,1\n",
        },
        ("GET", "/api/v1/monitoring/models/{model}/reports"): {
            "path": "/api/v1/monitoring/models/secret-model/reports"
        },
        ("GET", "/api/v1/monitoring/models/{model}/reports/{report_id}"): {
            "path": "/api/v1/monitoring/models/secret-model/reports/20240131T120000Z"
        },
        ("GET", "/api/v1/registered-models"): {"expect": _empty},
        ("POST", "/api/v1/registered-models"): {"json": {"name": "new-model"}, "as": "viv"},
        ("POST", "/api/v1/registered-models/resolve"): {"json": {"name": "secret-model", "version": 1}},
        ("DELETE", "/api/v1/registered-models/{name}"): {"path": "/api/v1/registered-models/secret-model"},
        ("GET", "/api/v1/registered-models/{name}"): {"path": "/api/v1/registered-models/secret-model"},
        ("PATCH", "/api/v1/registered-models/{name}"): {
            "path": "/api/v1/registered-models/secret-model",
            "json": {"name": "mallory-model"},
        },
        ("DELETE", "/api/v1/registered-models/{name}/tags/{key}"): {
            "path": "/api/v1/registered-models/secret-model/tags/team"
        },
        ("PATCH", "/api/v1/registered-models/{name}/versions/{version}"): {
            "path": "/api/v1/registered-models/secret-model/versions/1",
            "json": {"description": "pwned"},
        },
        ("DELETE", "/api/v1/registered-models/{name}/versions/{version}/tags/{key}"): {
            "path": "/api/v1/registered-models/secret-model/versions/1/tags/team"
        },
        ("DELETE", "/api/v1/registered-models/{name}/aliases/{alias}"): {
            "path": "/api/v1/registered-models/secret-model/aliases/champion"
        },
        ("PUT", "/api/v1/registered-models/{name}/aliases/{alias}"): {
            "path": "/api/v1/registered-models/secret-model/aliases/champion",
            "json": {"version": 1},
        },
        ("GET", "/api/v1/registered-models/{name}/events"): {
            "path": "/api/v1/registered-models/secret-model/events"
        },
        ("PATCH", "/api/v1/registered-models/{name}/tags"): {
            "path": "/api/v1/registered-models/secret-model/tags",
            "json": {"tags": {"a": "b"}},
        },
        ("GET", "/api/v1/registered-models/{name}/versions"): {
            "path": "/api/v1/registered-models/secret-model/versions"
        },
        ("POST", "/api/v1/registered-models/{name}/versions"): {
            "path": "/api/v1/registered-models/secret-model/versions",
            "json": version,
        },
        ("DELETE", "/api/v1/registered-models/{name}/versions/{version}"): {
            "path": "/api/v1/registered-models/secret-model/versions/1"
        },
        ("GET", "/api/v1/registered-models/{name}/versions/{version}"): {
            "path": "/api/v1/registered-models/secret-model/versions/1"
        },
        ("GET", "/api/v1/registered-models/{name}/versions/{version}/package"): {
            "path": "/api/v1/registered-models/secret-model/versions/1/package"
        },
        ("POST", "/api/v1/registered-models/{name}/versions/{version}/stage"): {
            "path": "/api/v1/registered-models/secret-model/versions/1/stage",
            "json": {"stage": "Production"},
        },
        ("PATCH", "/api/v1/registered-models/{name}/versions/{version}/tags"): {
            "path": "/api/v1/registered-models/secret-model/versions/1/tags",
            "json": {"tags": {"a": "b"}},
        },
        ("POST", "/api/v1/registered-models/{name}/versions/{version}/gate"): {
            "path": "/api/v1/registered-models/secret-model/versions/1/gate",
            "json": {"passed": True, "summary": "gate passed (1/1 rules)"},
        },
        # Feature definitions: any signed-in user reads them; applying takes an editor.
        ("GET", "/api/v1/features/definitions"): {"expect": _empty},
        ("POST", "/api/v1/features/definitions"): {"as": "viv", "json": {"changes": []}},
        ("GET", "/api/v1/features/definitions/{kind}/{name}"): {
            "path": "/api/v1/features/definitions/feature_view/stats",
            "expect": _empty,
        },
        ("GET", "/api/v1/runs"): {"params": {"id_or_name": run}},
        ("POST", "/api/v1/runs"): {"json": {"experiment": "secret"}},
        ("POST", "/api/v1/runs/beat"): {"json": {"run_ids": [run]}},
        ("POST", "/api/v1/runs/recent-metric-keys"): {"json": {"run_ids": [run]}},
        ("POST", "/api/v1/runs/latest-metrics"): {"json": {"run_ids": [run]}},
        ("POST", "/api/v1/runs/search"): {"json": {"experiment_ids": [exp]}, "expect": _empty},
        ("GET", "/api/v1/runs/with-tag"): {"params": {"key": "team", "value": "a"}, "expect": _empty},
        ("DELETE", "/api/v1/runs/{run_id}"): {"path": f"/api/v1/runs/{run}"},
        ("GET", "/api/v1/runs/{run_id}"): {"path": f"/api/v1/runs/{run}"},
        ("GET", "/api/v1/runs/{run_id}/artifact-records"): {"path": f"/api/v1/runs/{run}/artifact-records"},
        ("POST", "/api/v1/runs/{run_id}/artifact-records"): {
            "path": f"/api/v1/runs/{run}/artifact-records",
            "json": {"files": [{"path": "x", "size": 1, "sha256": "0" * 64}]},
        },
        ("GET", "/api/v1/runs/{run_id}/children"): {"path": f"/api/v1/runs/{run}/children"},
        ("GET", "/api/v1/runs/{run_id}/datasets"): {"path": f"/api/v1/runs/{run}/datasets"},
        ("POST", "/api/v1/runs/{run_id}/datasets"): {
            "path": f"/api/v1/runs/{run}/datasets",
            "json": {"name": "d", "digest": "e" * 16, "source": "s", "source_type": "local"},
        },
        ("POST", "/api/v1/runs/{run_id}/end"): {
            "path": f"/api/v1/runs/{run}/end",
            "json": {"status": "KILLED"},
        },
        ("GET", "/api/v1/runs/{run_id}/metrics/{key}/history"): {
            "path": f"/api/v1/runs/{run}/metrics/acc/history"
        },
        ("POST", "/api/v1/runs/{run_id}/params"): {
            "path": f"/api/v1/runs/{run}/params",
            "json": {"values": {"x": "1"}},
        },
        ("POST", "/api/v1/runs/{run_id}/restore"): {"path": f"/api/v1/runs/{run}/restore"},
        ("POST", "/api/v1/runs/{run_id}/resume"): {"path": f"/api/v1/runs/{run}/resume"},
        ("GET", "/api/v1/runs/{run_id}/status"): {"path": f"/api/v1/runs/{run}/status"},
        ("PATCH", "/api/v1/runs/{run_id}/tags"): {
            "path": f"/api/v1/runs/{run}/tags",
            "json": {"values": {"a": "b"}},
        },
        ("DELETE", "/api/v1/runs/{run_id}/tags/{key}"): {"path": f"/api/v1/runs/{run}/tags/team"},
        ("GET", "/api/v1/pipelines/runs"): {"expect": _no_pipeline_runs},
        ("POST", "/api/v1/pipelines/runs"): {"json": {"spec": "name: x", "experiment": "secret"}},
        ("GET", "/api/v1/pipelines/runs/{run_id}"): {"path": f"/api/v1/pipelines/runs/{run}"},
        ("POST", "/api/v1/pipelines/runs/{run_id}/cancel"): {"path": f"/api/v1/pipelines/runs/{run}/cancel"},
        ("POST", "/api/v1/pipelines/runs/{run_id}/resume"): {"path": f"/api/v1/pipelines/runs/{run}/resume"},
        ("GET", "/api/v1/pipelines/runs/{run_id}/steps/{step}/logs"): {
            "path": f"/api/v1/pipelines/runs/{run}/steps/train/logs"
        },
        ("GET", "/api/v1/schedules"): {"expect": _empty},
        ("POST", "/api/v1/schedules"): {"json": {"row": {"name": "mine", "experiment": "secret"}}},
        ("PATCH", "/api/v1/schedules/by-id/{schedule_id}"): {
            "path": f"/api/v1/schedules/by-id/{w.schedule_id}",
            "json": {"values": {"paused": True}},
        },
        ("POST", "/api/v1/schedules/by-id/{schedule_id}/advance"): {
            "path": f"/api/v1/schedules/by-id/{w.schedule_id}/advance",
            "json": {"expected_next_run_at": 0, "next_run_at": 1, "updated_at": 1},
        },
        ("GET", "/api/v1/schedules/due"): {"params": {"now_ms": now_ms()}, "expect": _empty},
        ("GET", "/api/v1/schedules/earliest-next-run"): {"expect": _none_next},
        ("DELETE", "/api/v1/schedules/{name}"): {"path": "/api/v1/schedules/nightly"},
        ("GET", "/api/v1/schedules/{name}"): {"path": "/api/v1/schedules/nightly"},
        ("GET", "/api/v1/tokens"): {"params": {"user": "ed"}},
        ("GET", "/api/v1/tuning/searches"): {"expect": _no_searches},
        ("GET", "/api/v1/tuning/searches/{run_id}"): {"path": f"/api/v1/tuning/searches/{run}"},
        ("GET", "/api/v1/tuning/searches/{run_id}/trials"): {"path": f"/api/v1/tuning/searches/{run}/trials"},
        ("POST", "/api/v1/tokens"): {"json": {"user": "ed"}},
        ("DELETE", "/api/v1/tokens/{token_id}"): {"path": f"/api/v1/tokens/{w.token_of_other}"},
        ("GET", "/api/v1/users"): {},
        ("POST", "/api/v1/users"): {"json": {"name": "eve", "role": "admin"}},
        ("GET", "/api/v1/users/me"): {"expect": _only_own},
        ("PATCH", "/api/v1/users/{name}"): {"path": "/api/v1/users/ed", "json": {"role": "admin"}},
    }


def _routes(w: World) -> list[tuple[str, str]]:
    document = httpx.get(f"{w.url}/api/v1/openapi.json").json()
    return sorted(
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if (method.upper(), path) not in PUBLIC
    )


def _points(n: int) -> Series:
    return series_of((step, float(step), now_ms()) for step in range(n))


def _call(w: World, route: tuple[str, str], spec: dict[str, Any], token: str | None) -> httpx.Response:
    method, template = route
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(spec.get("headers", {}))
    return httpx.request(
        method,
        w.url + spec.get("path", template),
        params=spec.get("params"),
        json=spec.get("json"),
        content=spec.get("content"),
        headers=headers,
        timeout=30,
    )


def test_every_route_is_in_the_table(world: World) -> None:
    missing = sorted(set(_routes(world)) - set(_requests(world)))
    assert not missing, f"routes with no guard check (add them to REQUESTS): {missing}"


@pytest.mark.slow
def test_anonymous_calls_get_401_before_the_body_is_read(world: World) -> None:
    table = _requests(world)
    for route in _routes(world):
        response = _call(world, route, table[route], None)
        assert response.status_code == 401, (route, response.status_code, response.text)
        assert "authentication required" in response.json()["error"]["message"]


def test_under_privileged_calls_get_403_or_a_filtered_answer(world: World) -> None:
    table = _requests(world)
    failures = []
    for route in _routes(world):
        spec = table[route]
        response = _call(world, route, spec, world.tokens[spec.get("as", "mallory")])
        check: Check = spec.get("expect", _forbidden)
        if not check(response):
            failures.append(f"{route}: {response.status_code} {response.text[:200]}")
    assert not failures, "\n".join(failures)


def test_the_owner_still_reaches_the_world(world: World) -> None:
    """The guards refuse mallory, not everyone: the admin reads what mallory could not."""
    headers = {"Authorization": f"Bearer {world.tokens['root']}"}
    run = httpx.get(f"{world.url}/api/v1/runs/{world.run_id}", headers=headers)
    assert run.status_code == 200 and run.json()["run_id"] == world.run_id
    found = httpx.post(
        f"{world.url}/api/v1/runs/search", json={"experiment_ids": [world.experiment_id]}, headers=headers
    )
    assert {r["run_id"] for r in found.json()} == {world.run_id, world.child_id}
    pipelines = httpx.get(f"{world.url}/api/v1/pipelines/runs", headers=headers).json()
    assert [r["run_id"] for r in pipelines["runs"]] == [world.run_id]  # what mallory's list left out
    # A version's package_uri is what its registering client said: the server serves only its own files.
    package = httpx.get(
        f"{world.url}/api/v1/registered-models/secret-model/versions/1/package", headers=headers
    )
    assert (
        package.status_code == 404
        and "not kept by this server (/nowhere)" in package.json()["error"]["message"]
    )
    events = httpx.get(f"{world.url}/api/v1/audit", headers=headers).json()
    assert any(e["user"] == "mallory" and e["status"] == 403 for e in events)
    assert json.dumps(events).count(world.tokens["mallory"]) == 0


def test_dataset_blobs_are_read_through_their_datasets(world: World) -> None:
    """A blob is readable by whoever may read a dataset holding it; no one plants other content under a
    blob's name; the blob lookup leaves out datasets the caller cannot read."""

    def call(method: str, path: str, user: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {world.tokens[user]}"}
        return httpx.request(method, f"{world.url}/api/v1{path}", headers=headers, timeout=30, **kwargs)

    blob = f"/artifacts/artifacts/{_SECRET_BLOB}"
    assert _forbidden(call("GET", blob, "mallory"))
    assert call("GET", blob, "root").content == b"secret"
    planted = call("PUT", f"/artifacts/artifacts/datasets/blobs/ab/{'ab' * 32}", "mallory", content=b"x")
    assert planted.status_code == 400 and "sha256" in planted.json()["error"]["message"]
    fresh = hashlib.sha256(b"fresh").hexdigest()
    stored = call(
        "PUT", f"/artifacts/artifacts/datasets/blobs/{fresh[:2]}/{fresh}", "mallory", content=b"fresh"
    )
    assert stored.status_code == 200
    assert (
        call("GET", f"/artifacts/artifacts/datasets/blobs/{fresh[:2]}/{fresh}", "mallory").content == b"fresh"
    )
    holders = call("POST", "/datasets/blob-holders", "mallory", json={"sha256s": [_SECRET_SHA, fresh]})
    assert holders.json() == {_SECRET_SHA: []}
    assert call("POST", "/datasets/blob-holders", "root", json={"sha256s": [_SECRET_SHA]}).json() == {
        _SECRET_SHA: ["secret-data"]
    }
