"""The tuning and monitoring routes on a real in-thread server over SQLite: searches run in team mode and
read back with their trials; monitoring reports and alerts written by the real job and listed; ground truth
uploaded as CSV and Parquet and joined by the performance code; bad input; and who may read and upload."""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from shipyard.auth.accounts import Accounts
from shipyard.monitoring import compute_performance, load_labels, save_baseline
from shipyard.payloads import PayloadLogConfig, PayloadLogger
from shipyard.store import open_server_stores
from shipyard.store.artifacts import ArtifactStore
from shipyard.tracking.client import TrackingClient
from shipyard.tuning.runner import PARENT_TAG, STATE_TAG, STUDY_TAG, TRIAL_TAG
from tests.conftest import console, make_settings, platform_server, sign_up

REPO = Path(__file__).resolve().parents[2]
MODEL = "churn"
MAX_BODY = 1 << 20
API = "/api/v1"


@dataclass
class World:
    url: str
    team: dict[str, str]  # a client process's environment: team mode against the server
    store: ArtifactStore  # the server's artifacts, as its clients see them (shipyard-artifacts://artifacts)
    first: str  # the 4-trial search in experiment "tuning"
    second: str  # the 2-trial search in experiment "tuning-b", started later
    best_value: float
    plain_run: str
    reports: list[str]  # newest first


SPEC = """
name: {name}
experiment: {experiment}
trial: tests.tuning.objectives:curve_failing_third
objective: {{metric: score, direction: maximize}}
parameters:
  - {{name: x, type: float, low: -3, high: 3}}
algorithm: {{name: random, seed: 0}}
max_trials: {trials}
"""

RULES = """
rules:
  - {name: any-drift, metric: drift_share, op: ">=", threshold: 0.0}
  - {name: a-drifted, metric: feature_drift, feature: a, op: "<", threshold: 0.05}
  - {name: never, metric: drift_share, op: ">", threshold: 2.0}
"""


def log_traffic(store: ArtifactStore, frame: pd.DataFrame, per_request: int = 10) -> None:
    logger = PayloadLogger(store, PayloadLogConfig(sample_rate=1.0))
    for start in range(0, len(frame), per_request):
        chunk = frame.iloc[start : start + per_request]
        logger.log(
            model=MODEL,
            version="1",
            label="production",
            protocol="rest",
            request_id=f"r{start}",
            status=200,
            latency_s=0.001,
            inputs={c: chunk[c].to_numpy() for c in chunk.columns},
            outputs={"predict": np.zeros(len(chunk))},
            rows=len(chunk),
        )
    logger.flush()


def client_env(url: str, home: Path) -> dict[str, str]:
    """A client process in team mode (and able to import the tests' trial functions)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    path = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return {**env, "SHIPYARD_TRACKING_URI": url, "SHIPYARD_HOME": str(home), "PYTHONPATH": path}


def cli(env: dict[str, str], *args: str) -> str:
    done = console(*args, cwd=REPO, env=env, timeout=300)
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
    return done.stdout


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("tuning-monitoring")
    artifacts = root / "server-artifacts"
    with platform_server(
        make_settings(root / "server"), artifacts=str(artifacts), max_body_bytes=MAX_BODY
    ) as url:
        team = client_env(url, root / "client")
        runs = []
        for name, experiment, trials in (("quad", "tuning", 4), ("small", "tuning-b", 2)):
            (root / f"{name}.yaml").write_text(SPEC.format(name=name, experiment=experiment, trials=trials))
            runs.append(json.loads(cli(team, "tune", "run", str(root / f"{name}.yaml"), "--json")))
        plain, _ = TrackingClient(make_settings(root / "in-process", tracking_uri=url)).create_run(
            "tuning", name="not-a-search"
        )

        # The model's baseline and served traffic, as `shipyard monitor baseline` and the server leave them.
        store = ArtifactStore(str(artifacts)).child("artifacts")
        rng = np.random.default_rng(0)
        save_baseline(store, MODEL, pd.DataFrame({"a": rng.normal(0, 1, 300), "b": rng.normal(5, 2, 300)}))
        log_traffic(store, pd.DataFrame({"a": rng.normal(3, 1, 60), "b": rng.normal(5, 2, 60)}))
        (root / "rules.yaml").write_text(RULES)
        reports = []
        for _ in range(2):
            time.sleep(max(0.0, 1.05 - time.time() % 1))  # report ids are whole seconds: one run each
            done = cli(team, "monitor", "run", MODEL, "--rules", str(root / "rules.yaml"), "--json")
            reports.append(json.loads(done)["json_path"].rpartition("/")[2].removesuffix(".json"))
        yield World(
            url,
            team,
            store,
            runs[0]["run_id"],
            runs[1]["run_id"],
            runs[0]["best"]["values"][0],
            plain.run_id,
            reports[::-1],
        )


def get(w: World, path: str, **params: object) -> httpx.Response:
    return httpx.get(f"{w.url}{API}{path}", params=params, timeout=30)  # type: ignore[arg-type]


# -- tuning ------------------------------------------------------------------------------------------------


def test_searches_are_listed_newest_first_with_trial_counts_and_paged(world: World) -> None:
    body = get(world, "/tuning/searches").json()
    assert [s["run_id"] for s in body["searches"]] == [world.second, world.first]
    assert body["next_page_token"] is None
    first = body["searches"][1]
    assert first["spec_name"] == "quad" and first["state"] == "completed" and first["status"] == "FINISHED"
    assert first["trials"] == {"COMPLETE": 3, "FAIL": 1} and first["max_trials"] == 4
    assert first["objective"] == ["score"] and first["directions"] == ["maximize"]
    assert first["best_value"] == pytest.approx(world.best_value)

    page = get(world, "/tuning/searches", max_results=1).json()
    assert [s["run_id"] for s in page["searches"]] == [world.second] and page["next_page_token"]
    # An experiment created between pages does not invalidate the token of "every experiment I may read".
    assert httpx.put(f"{world.url}{API}/experiments/made-between-pages", timeout=30).status_code == 200
    rest = get(world, "/tuning/searches", max_results=1, page_token=page["next_page_token"]).json()
    assert [s["run_id"] for s in rest["searches"]] == [world.first] and rest["next_page_token"] is None

    only = get(world, "/tuning/searches", experiment="tuning").json()
    assert [s["run_id"] for s in only["searches"]] == [world.first]
    missing = get(world, "/tuning/searches", experiment="no-such-experiment")
    assert missing.status_code == 404 and "no-such-experiment" in missing.json()["error"]["message"]


def test_a_search_comes_with_its_spec_and_its_trials_page_by_page(world: World) -> None:
    one = get(world, f"/tuning/searches/{world.first}").json()
    assert one["run_id"] == world.first and one["spec"]["name"] == "quad"
    assert one["spec"]["parameters"][0]["name"] == "x"

    page = get(world, f"/tuning/searches/{world.first}/trials", max_results=3, intermediate=True).json()
    rest = get(
        world, f"/tuning/searches/{world.first}/trials", max_results=3, page_token=page["next_page_token"]
    ).json()
    trials = page["trials"] + rest["trials"]
    assert rest["next_page_token"] is None
    assert [t["number"] for t in trials] == [0, 1, 2, 3]
    assert [t["state"] for t in trials] == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE"]
    broken = trials[2]
    assert broken["status"] == "FAILED" and "trial two breaks" in broken["error"]
    done = trials[0]
    x = float(done["params"]["x"])
    assert done["values"] == [pytest.approx(-((x - 1) ** 2) + 2)]
    assert done["duration_ms"] is not None and done["duration_ms"] >= 0
    # What the trial reported at steps 0-2, then its returned value, logged at its last step.
    assert [p["step"] for p in done["intermediate"]] == [0, 1, 2, 2]
    assert done["intermediate"][0]["value"] == pytest.approx(-((x - 1) ** 2))
    assert done["intermediate"][-1]["value"] == pytest.approx(done["values"][0])
    assert rest["trials"][0]["intermediate"] is None  # only when asked for
    best = max((t for t in trials if t["state"] == "COMPLETE"), key=lambda t: t["values"][0])
    assert best["values"][0] == pytest.approx(world.best_value)


def test_a_run_that_is_not_a_search_is_404_naming_it(world: World) -> None:
    for path in (f"/tuning/searches/{world.plain_run}", f"/tuning/searches/{world.plain_run}/trials"):
        answer = get(world, path)
        assert answer.status_code == 404, answer.text
        message = answer.json()["error"]["message"]
        assert world.plain_run in message and "not a tuning search" in message
    answer = get(world, f"/tuning/searches/{'0' * 32}")
    assert answer.status_code == 404 and "0" * 32 in answer.json()["error"]["message"]


def test_a_search_still_running_has_its_trials_counted_from_their_runs(world: World) -> None:
    client = TrackingClient(make_settings(Path(world.team["SHIPYARD_HOME"]), tracking_uri=world.url))
    parent, _ = client.create_run("hand-made", tags={STUDY_TAG: "s", STATE_TAG: "running"})
    for number, state in enumerate(["COMPLETE", "PRUNED", None]):
        tags = {PARENT_TAG: parent.run_id, TRIAL_TAG: f"{parent.run_id}:{number}"}
        if state:
            tags[STATE_TAG] = state
        client.create_run("hand-made", parent_run_id=parent.run_id, tags=tags)
    [found] = get(world, "/tuning/searches", experiment="hand-made").json()["searches"]
    assert found["state"] == "running" and found["trials"] == {"COMPLETE": 1, "PRUNED": 1, "RUNNING": 1}


# -- monitoring reports and alerts -------------------------------------------------------------------------


def test_reports_are_listed_newest_first_and_fetched_as_json_or_html(world: World) -> None:
    body = get(world, f"/monitoring/models/{MODEL}/reports").json()
    assert [r["report_id"] for r in body["reports"]] == world.reports and body["next_page_token"] is None
    newest = body["reports"][0]
    assert newest["dataset_drift"] is True and newest["drift_share"] == pytest.approx(0.5)
    assert newest["drifted_columns"] == ["a"] and newest["alerts_fired"] == ["any-drift", "a-drifted"]
    assert newest["rows"] == 60 and newest["generated"].startswith(newest["report_id"][:4])
    run = httpx.get(
        f"{world.url}{API}/runs/{newest['run_id']}"
    ).json()  # the run the job recorded, on the server
    assert run["tags"]["shipyard.monitoring.model"] == MODEL

    page = get(world, f"/monitoring/models/{MODEL}/reports", max_results=1).json()
    assert [r["report_id"] for r in page["reports"]] == world.reports[:1]
    older = get(world, f"/monitoring/models/{MODEL}/reports", page_token=page["next_page_token"]).json()
    assert [r["report_id"] for r in older["reports"]] == world.reports[1:]

    document = get(world, f"/monitoring/models/{MODEL}/reports/{world.reports[1]}").json()
    assert document["model"] == MODEL and {c["column"] for c in document["drift"]["columns"]} == {"a", "b"}
    html = get(world, f"/monitoring/models/{MODEL}/reports/{world.reports[1]}", format="html")
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "Data drift: churn" in html.text
    # Served sandboxed: a report's HTML can run no script, even read through the API.
    policy = html.headers["content-security-policy"]
    assert policy.startswith("sandbox;") and "allow-scripts" not in policy

    missing = get(world, f"/monitoring/models/{MODEL}/reports/20200101T000000Z")
    assert missing.status_code == 404 and "20200101T000000Z" in missing.json()["error"]["message"]
    bad = get(world, f"/monitoring/models/{MODEL}/reports/..%2Fbaselines")
    assert bad.status_code in (400, 404)
    assert get(world, f"/monitoring/models/{MODEL}/reports/latest").status_code == 400
    assert get(world, "/monitoring/models/nobody/reports").json() == {"reports": [], "next_page_token": None}


def test_alerts_across_reports_newest_first_and_paged(world: World) -> None:
    body = get(world, f"/monitoring/models/{MODEL}/alerts").json()
    fired = [(a["report_id"], a["rule"]) for a in body["alerts"]]
    newest, oldest = world.reports
    assert fired == [
        (newest, "any-drift"),
        (newest, "a-drifted"),
        (oldest, "any-drift"),
        (oldest, "a-drifted"),
    ]
    assert body["alerts"][0]["model"] == MODEL and body["alerts"][0]["metric"] == "drift_share"
    seen, token = [], None
    while True:
        page = get(world, f"/monitoring/models/{MODEL}/alerts", max_results=3, page_token=token or "").json()
        seen += [(a["report_id"], a["rule"]) for a in page["alerts"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert seen == fired
    bad = get(world, f"/monitoring/models/{MODEL}/alerts", page_token="nonsense")
    assert bad.status_code == 400 and "page_token" in bad.json()["error"]["message"]


# -- labels ------------------------------------------------------------------------------------------------


def post_labels(w: World, model: str, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{w.url}{API}/monitoring/models/{model}/labels", content=body, headers=headers, timeout=30
    )


def test_labels_upload_as_csv_and_parquet_feed_the_performance_code(world: World) -> None:
    csv = "request_id,row,label\n" + "".join(f"r0,{row},0\n" for row in range(10))
    answer = post_labels(world, MODEL, csv.encode(), **{"content-type": "text/csv"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["rows"] == 10 and answer.json()["path"].startswith(f"monitoring/labels/{MODEL}/")
    buffer = io.BytesIO()
    pd.DataFrame({"request_id": ["r10"] * 10, "row": range(10), "label": [1] * 10}).to_parquet(buffer)
    answer = post_labels(world, MODEL, buffer.getvalue())
    assert answer.status_code == 201, answer.text
    assert answer.json()["rows"] == 10 and answer.json()["path"].endswith(".parquet")

    result = compute_performance(world.store, MODEL, task="classification")
    assert result.rows == 20 and result.metrics["accuracy"] == pytest.approx(0.5)


def test_bad_labels_are_refused_naming_the_problem(world: World) -> None:
    answer = post_labels(world, MODEL, b"request_id,truth\nr0,1\n")
    assert answer.status_code == 400 and "label" in answer.json()["error"]["message"]
    assert "truth" in answer.json()["error"]["message"]  # what the body had instead
    answer = post_labels(world, MODEL, b"PAR1 but not really parquet")
    assert answer.status_code == 400 and "labels body" in answer.json()["error"]["message"]
    assert "/tmp" not in answer.json()["error"]["message"]


def test_a_labels_body_over_the_limit_is_413_declared_or_streamed(world: World) -> None:
    big = b"request_id,label\n" + b"r0,1\n" * (MAX_BODY // 5 + 10)
    assert post_labels(world, MODEL, big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is enforced as the body streams
        for start in range(0, len(big), 64 << 10):
            yield big[start : start + 64 << 10]

    answer = httpx.post(f"{world.url}{API}/monitoring/models/{MODEL}/labels", content=chunks(), timeout=30)
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "TOO_LARGE"
    assert not [p for p in world.store.list(f"monitoring/labels/{MODEL}") if p.size > MAX_BODY]


@pytest.mark.parametrize("model", ["%2E%2E", "..", ".", "a%5Cb", "%2E%2E%5C%2E%2E"])
def test_a_model_name_that_could_leave_its_folder_is_400(world: World, model: str) -> None:
    for answer in (
        httpx.get(f"{world.url}{API}/monitoring/models/{model}/reports"),
        httpx.get(f"{world.url}{API}/monitoring/models/{model}/alerts"),
        post_labels(world, model, b"request_id,label\nr0,1\n"),
    ):
        # ".." and "." are resolved by the URL itself (no such route: 404); everything else is refused.
        assert answer.status_code in ((400, 404) if model in ("..", ".") else (400,)), answer.text
    assert not any("\\" in p.path or ".." in p.path for p in world.store.list("", recursive=True))


# -- who may read and upload -------------------------------------------------------------------------------


@dataclass
class Guarded:
    url: str
    tokens: dict[str, str]
    search: str


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guarded]:
    root = tmp_path_factory.mktemp("tuning-monitoring-auth")
    settings = make_settings(root / "server")
    stores = open_server_stores(settings)
    accounts = Accounts(stores.auth)
    tokens = sign_up(accounts, [("root", "admin"), ("viv", "viewer"), ("val", "viewer"), ("ed", "editor")])
    accounts.grant("viv", f"model:{MODEL}", "READ", by="root")
    tracking = TrackingClient(settings, stores=stores)
    tracking.create_experiment("secret-tuning")
    search, _ = tracking.create_run("secret-tuning", tags={STUDY_TAG: "s", STATE_TAG: "running"})
    with platform_server(
        settings, artifacts=str(root / "artifacts"), require_auth=True, default_permission="NO_PERMISSIONS"
    ) as url:
        yield Guarded(url, tokens, search.run_id)


def as_user(g: Guarded, user: str | None, method: str, path: str, **kwargs: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {g.tokens[user]}"} if user else {}
    return httpx.request(method, f"{g.url}{API}{path}", headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


def test_anonymous_callers_get_401(guarded: Guarded) -> None:
    for method, path in (
        ("GET", "/tuning/searches"),
        ("GET", f"/tuning/searches/{guarded.search}/trials"),
        ("GET", f"/monitoring/models/{MODEL}/reports"),
        ("POST", f"/monitoring/models/{MODEL}/labels"),
    ):
        assert as_user(guarded, None, method, path).status_code == 401, path


def test_reads_follow_the_model_and_experiment_grants(guarded: Guarded) -> None:
    assert as_user(guarded, "viv", "GET", f"/monitoring/models/{MODEL}/reports").json()["reports"] == []
    assert as_user(guarded, "viv", "GET", f"/monitoring/models/{MODEL}/alerts").status_code == 200
    refused = as_user(guarded, "val", "GET", f"/monitoring/models/{MODEL}/reports")
    assert refused.status_code == 403 and MODEL in refused.json()["error"]["message"]
    assert as_user(guarded, "val", "GET", f"/monitoring/models/{MODEL}/alerts").status_code == 403
    # Searches of experiments a viewer cannot read are left out of the list, and refused one by one.
    assert as_user(guarded, "viv", "GET", "/tuning/searches").json()["searches"] == []
    assert as_user(guarded, "viv", "GET", f"/tuning/searches/{guarded.search}").status_code == 403
    everything = as_user(guarded, "root", "GET", "/tuning/searches").json()["searches"]
    assert [s["run_id"] for s in everything] == [guarded.search]


def test_a_viewer_cannot_upload_labels_and_an_editor_can(guarded: Guarded) -> None:
    body = b"request_id,label\nr0,1\n"
    path = f"/monitoring/models/{MODEL}/labels"
    refused = as_user(guarded, "viv", "POST", path, content=body)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"
    stored = as_user(guarded, "ed", "POST", path, content=body)
    assert stored.status_code == 201 and stored.json()["rows"] == 1


# -- the CLI in team mode ----------------------------------------------------------------------------------


def test_the_cli_reads_searches_and_reports_from_another_machine(world: World, tmp_path: Path) -> None:
    """A teammate's machine: same server, its own home (so no Optuna journal of the searches)."""
    other = {**world.team, "SHIPYARD_HOME": str(tmp_path / "teammate")}
    listed = json.loads(cli(other, "tune", "list", "--json"))
    ours = [s["run_id"] for s in listed["searches"] if s["run_id"] in (world.first, world.second)]
    assert ours == [world.second, world.first]  # (other tests of this module add searches of their own)
    assert "quad" in cli(other, "tune", "list", "--experiment", "tuning")

    shown = json.loads(cli(other, "tune", "show", world.first, "--json"))
    assert [t["number"] for t in shown["trials"]] == [0, 1, 2, 3]
    assert [t["state"] for t in shown["trials"]] == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE"]
    assert shown["best"][0]["values"] == [pytest.approx(world.best_value)]
    assert f"best: trial {shown['best'][0]['number']}" in cli(other, "tune", "show", world.first)

    reports = json.loads(cli(other, "monitor", "reports", MODEL, "--json"))
    assert [r["report_id"] for r in reports["reports"]] == world.reports
    assert reports["reports"][0]["alerts_fired"] == ["any-drift", "a-drifted"]

    (tmp_path / "truth.csv").write_text("request_id,label\nr20,0\nr30,1\n")
    cli(other, "monitor", "labels", "churn-cli", str(tmp_path / "truth.csv"))
    assert sorted(load_labels(world.store, "churn-cli")["request_id"]) == ["r20", "r30"]
