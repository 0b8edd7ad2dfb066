"""A/B tests end to end: a real server assigns users to arms stickily (across a restart), outcomes are
joined by request id, the sequential test finds the better arm; and every kind of bad input, named."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

import shipyard
from shipyard.config import get_settings
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.payloads import PayloadLogConfig, PayloadLogger, read_payloads
from shipyard.releases import abtests
from shipyard.serving.repository import ModelConfig
from shipyard.serving.routing import assign
from shipyard.store.artifacts import ArtifactStore
from tests.cli.test_cli import run_cli
from tests.serving.conftest import Registered, RunningServer


def test_assignment_is_sticky_weighted_and_independent_between_tests() -> None:
    arms = {"champion": 70.0, "challenger": 30.0}
    users = [f"user-{i}" for i in range(20_000)]
    first = [assign("test-a", user, arms) for user in users]
    assert first == [assign("test-a", user, arms) for user in users]  # the same user, the same arm
    share = Counter(first)["challenger"] / len(users)
    assert 0.28 < share < 0.32
    other = [assign("test-b", user, arms) for user in users]
    both = sum(a == "challenger" and b == "challenger" for a, b in zip(first, other, strict=True))
    assert 0.07 < both / len(users) < 0.11  # 0.3 x 0.3: a user's arm in one test says nothing of the next


def _serve(
    start: Callable[..., RunningServer], registered: Registered, store: ArtifactStore
) -> RunningServer:
    """``bc`` as champion and challenger (all traffic to champion), payload sampling off: the test's
    requests are logged anyway. The server reads running tests from ``store``."""
    model = ModelConfig(
        "bc",
        versions={"champion": "models:/bc@champion", "challenger": "models:/bc@challenger"},
        traffic={"champion": 100, "challenger": 0},
    )
    payloads = PayloadLogger(store, PayloadLogConfig(sample_rate=0.0, max_seconds=3600))
    return start([model], registered.settings, payloads=payloads, monitoring=store)


def _infer(client: httpx.Client, url: str, registered: Registered, user: str | None) -> tuple[str, str]:
    body = {
        "inputs": [
            {"name": "x", "datatype": "FP64", "shape": [1, 30], "data": registered.frame.iloc[3].tolist()}
        ]
    }
    headers = {"X-User-Id": user} if user is not None else {}
    answer = client.post(f"{url}/v2/models/bc/infer", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.headers["X-Shipyard-Version"], answer.headers["X-Request-ID"]


def test_an_ab_test_from_start_to_stop(
    registered: Registered,
    start_server: Callable[..., RunningServer],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    store = ArtifactStore.configured(get_settings())  # the CLI's store: this test's SHIPYARD_HOME
    server = _serve(start_server, registered, store)
    code, out, err = run_cli(
        capsys, "ab", "start", "bc", "--arms", "champion=50,challenger=50", "--metric", "conversion",
        "--unit", "header:X-User-Id", "--url", server.url, "--json",
    )  # fmt: skip
    assert code == 0, err
    test_id = json.loads(out)["id"]
    rng = np.random.default_rng(0)
    served: dict[str, tuple[str, str]] = {}  # request id -> (user, arm)
    arm_of: dict[str, str] = {}
    with httpx.Client(timeout=30) as client:
        for i in range(700):
            user = f"user-{i % 350}"  # each user twice: the second request must land where the first did
            arm, request_id = _infer(client, server.url, registered, user)
            assert arm_of.setdefault(user, arm) == arm, f"{user} moved from {arm_of[user]} to {arm}"
            served[request_id] = (user, arm)
        outside = [_infer(client, server.url, registered, None) for _ in range(20)]
    assert {arm for arm, _ in outside} == {"champion"}  # no unit header: traffic's weights, not the test
    assert 0.4 < Counter(arm_of.values())["challenger"] / len(arm_of) < 0.6
    assert server.server.payloads is not None
    server.server.payloads.flush()
    logged = read_payloads(store, "bc")
    assert set(logged.loc[logged["experiment"] == test_id, "request_id"]) == set(served)
    assert logged["experiment"].isna().sum() == 0  # sampling is off: only the test's requests are logged

    # Outcomes: the challenger converts 30% of the time, the champion 10%; five outcomes name requests the
    # test never assigned (they are counted, not joined).
    rows = [
        (request_id, int(rng.random() < (0.3 if arm == "challenger" else 0.1)))
        for request_id, (_, arm) in served.items()
    ]
    rows += [(f"never-served-{i}", 1) for i in range(5)]
    pd.DataFrame(rows, columns=["request_id", "conversion"]).to_csv(tmp_path / "conversions.csv", index=False)
    code, out, err = run_cli(
        capsys, "ab", "outcomes", "bc", str(tmp_path / "conversions.csv"), "--metric", "conversion"
    )
    assert code == 0 and "705 outcomes of conversion" in out, err
    code, out, err = run_cli(capsys, "ab", "status", "bc", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["unmatched_outcomes"] == 5 and report["pending_outcomes"] == 0
    assert sum(report["exposures"].values()) == 700
    (comparison,) = report["comparisons"]
    assert comparison["sequential"]["rejected"] and comparison["sequential"]["low"] > 0
    assert report["decision"] == "challenger is better than champion"
    code, out, _ = run_cli(capsys, "ab", "status", "bc")
    assert code == 0 and "decision: challenger is better than champion" in out and "never assigned" in out
    code, out, err = run_cli(capsys, "ab", "report", "bc", "-o", str(tmp_path / "ab.html"))
    assert code == 0, err
    page = (tmp_path / "ab.html").read_text()
    assert "Decision: <b>challenger is better than champion</b>" in page and test_id in page
    # The server's /metrics carries the test's gauges (this server has not scraped the store before).
    scraped = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(httpx.get(f"{server.url}/metrics").text)
        for sample in family.samples
    }
    ids = (("model", "bc"), ("test", test_id))
    assert scraped["shipyard_ab_running", ids] == 1
    assert scraped["shipyard_ab_unmatched_outcomes", ids] == 5
    assert scraped["shipyard_ab_decided", (("arm", "challenger"), *ids)] == 1
    assert scraped["shipyard_ab_exposures", (("arm", "champion"), *ids)] == report["exposures"]["champion"]

    # A restarted server (here: a second one over the same store) assigns every user as before.
    again = _serve(start_server, registered, store)
    with httpx.Client(timeout=30) as client:
        for user, arm in list(arm_of.items())[:60]:
            assert _infer(client, again.url, registered, user)[0] == arm

    code, _, err = run_cli(
        capsys, "ab", "start", "bc", "--arms", "champion=50,challenger=50", "--metric", "conversion",
        "--unit", "header:X-User-Id", "--url", server.url,
    )  # fmt: skip
    assert code != 0 and f"A/B test {test_id} is already running on deployment 'bc'" in err
    code, out, err = run_cli(capsys, "ab", "stop", "bc", "--url", server.url, "--json")
    assert code == 0 and json.loads(out)["test"]["state"] == "stopped", err
    with httpx.Client(timeout=30) as client:
        assert {_infer(client, server.url, registered, f"user-{i}")[0] for i in range(30)} == {"champion"}
    code, out, _ = run_cli(capsys, "ab", "list", "bc", "--json")
    assert [(t["id"], t["state"]) for t in json.loads(out)] == [(test_id, "stopped")]
    run = shipyard.get_run(abtests.get(store, "bc", test_id).run_id)
    assert run.params["arms"] == "champion=50,challenger=50"
    assert run.tags["decision"] == "challenger is better than champion"
    assert run.metrics["challenger.always_valid_p"] < 0.05


def test_bad_tests_are_refused_naming_the_problem(
    registered: Registered,
    start_server: Callable[..., RunningServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    single = start_server([ModelConfig("bc", "models:/bc@champion")], registered.settings)
    base = ["ab", "start", "bc", "--metric", "conversion", "--unit", "header:X-User-Id"]
    cases: list[tuple[list[str], str]] = [
        (
            ["--arms", "champion=50,challenger=50", "--url", single.url],
            "needs a deployment with two versions",
        ),
        (
            ["--arms", "champion=60,challenger=50", "--url", single.url],
            "weights must sum to 100, they sum to 110",
        ),
        (["--arms", "champion=100", "--url", single.url], "needs two arms or more"),
        (
            ["--arms", "champion=50,challenger=x", "--url", single.url],
            "arm 'challenger': the weight must be a number",
        ),
    ]
    for extra, message in cases:
        code, _, err = run_cli(capsys, *base, *extra)
        assert code != 0 and message in err and err.count("\n") == 1, (extra, err)
    code, _, err = run_cli(
        capsys, "ab", "start", "bc", "--arms", "a=50,b=50", "--metric", "conversion", "--unit", "cookie:uid",
        "--url", single.url,
    )  # fmt: skip
    assert code != 0 and "the unit of assignment is header:<name>" in err


def test_the_server_refuses_bad_experiments(
    registered: Registered,
    start_server: Callable[..., RunningServer],
) -> None:
    server = _serve(start_server, registered, ArtifactStore.configured(get_settings()))
    path = f"{server.url}/admin/deployments/bc/experiments"
    good = {"arms": {"champion": 50, "challenger": 50}, "unit": "X-User-Id"}
    bad: list[tuple[str, Any, int, str]] = [
        ("e1", {"arms": {"champion": 50, "nope": 50}, "unit": "X-User-Id"}, 400, "no version 'nope'"),
        ("e1", {"arms": {"champion": 100}, "unit": "X-User-Id"}, 400, "two arms or more"),
        ("e1", {"arms": {"champion": 50, "challenger": -1}, "unit": "X-User-Id"}, 400, "positive weight"),
        (
            "e1",
            {"arms": {"champion": 50, "challenger": 50}, "unit": "X User"},
            400,
            "unit must be a request header",
        ),
        ("e1", [1, 2], 400, "an experiment is"),
        ("bad id!", good, 400, "experiment id"),
        ("x" * 65, good, 400, "experiment id"),
    ]
    with httpx.Client(timeout=30) as client:
        for experiment_id, body, status, message in bad:
            answer = client.put(f"{path}/{experiment_id}", json=body)
            assert answer.status_code == status and message in answer.json()["error"], answer.text
        assert client.put(f"{path}/e1", json=good).status_code == 200
        assert client.put(f"{path}/e1", json=good).status_code == 200  # the same experiment again: no change
        taken = client.put(f"{path}/e2", json=good)
        assert taken.status_code == 409 and "experiment 'e1' is already running" in taken.json()["error"]
        json_type = {"Content-Type": "application/json"}  # admin writes are JSON only (see serving.admin)
        assert client.request("DELETE", f"{path}/e2", headers=json_type).status_code == 404
        assert client.request("DELETE", f"{path}/e1", headers=json_type).status_code == 200
        assert client.get(f"{server.url}/admin/deployments").json()["deployments"][0]["experiment"] is None
        # The canary hold takes only a JSON object naming two served versions, under an allow-listed id.
        canaries = f"{server.url}/admin/deployments/bc/canaries"
        for canary_id, body in [
            ("c1", [1, 2]),
            ("c1", {"stable": "champion", "canary": "nope"}),
            ("c1", {"stable": "champion", "canary": 7}),
            ("bad id!", {"stable": "champion", "canary": "challenger"}),
        ]:
            answer = client.put(f"{canaries}/{canary_id}", json=body)
            assert answer.status_code == 400, (canary_id, body, answer.text)
        assert client.get(f"{server.url}/admin/deployments").json()["deployments"][0]["canary"] is None


def test_outcome_deliveries_are_checked(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    cases: list[tuple[pd.DataFrame, str]] = [
        (pd.DataFrame({"request_id": ["a"]}), "outcomes need the columns request_id and value"),
        (pd.DataFrame({"request_id": [], "value": []}), "no rows"),
        (pd.DataFrame({"request_id": ["a", None], "value": [1, 0]}), "every outcome needs a request_id"),
        (pd.DataFrame({"request_id": ["a", "a"], "value": [1, 0]}), "request_id 'a' has two outcomes"),
        (
            pd.DataFrame({"request_id": ["a", "b"], "value": [1, "yes"]}),
            "outcome of request_id 'b' is not a finite",
        ),
        (pd.DataFrame({"request_id": ["a", "b"], "value": [1, float("inf")]}), "request_id 'b'"),
    ]
    for frame, message in cases:
        with pytest.raises(InvalidInput, match=message):
            abtests.save_outcomes(store, "bc", "conversion", frame)
    with pytest.raises(InvalidInput, match="metric '1x'"):
        abtests.save_outcomes(store, "bc", "1x", pd.DataFrame({"request_id": ["a"], "value": [1]}))
    abtests.save_outcomes(
        store, "bc", "conversion", pd.DataFrame({"request_id": ["a", "b"], "value": [True, False]})
    )
    abtests.save_outcomes(store, "bc", "conversion", pd.DataFrame({"request_id": ["b"], "conversion": [1]}))
    loaded = abtests.load_outcomes(store, "bc", "conversion").set_index("request_id")["value"].to_dict()
    assert loaded == {"a": 1.0, "b": 1.0}  # the later delivery wins


def test_records_and_binary_outcome_checks(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    test = abtests.new_test("bc", {"a": 50, "b": 50}, "revenue", "X-User-Id", served=["a", "b"])
    abtests.start(store, test)
    other = abtests.new_test("bc", {"a": 50, "b": 50}, "revenue", "X-User-Id", served=["a", "b"])
    with pytest.raises(Conflict, match=f"A/B test {test.id} is already running"):
        abtests.start(store, other)
    with pytest.raises(NotFound, match="has no A/B test 'nope'"):
        abtests.get(store, "bc", "nope")
    assert abtests.get(store, "bc").id == test.id
    # revenue numbers in a binary test: named, with the way out
    abtests.save_outcomes(store, "bc", "revenue", pd.DataFrame({"request_id": ["r1"], "value": [12.5]}))
    logger = PayloadLogger(store, PayloadLogConfig())
    logger.log(
        model="bc", version="1", label="a", protocol="v2", request_id="r1", status=200, latency_s=0.01,
        inputs=None, outputs=None, rows=1, experiment=test.id,
    )  # fmt: skip
    logger.flush()
    with pytest.raises(InvalidInput, match="binary outcomes, but request_id 'r1' has another value"):
        abtests.analyze(store, test)
    numeric = abtests.analyze(store, abtests.ABTest(**{**test.to_json(), "kind": "numeric"}))
    assert numeric.estimates["a"].n == 1 and numeric.estimates["a"].mean == 12.5
    with pytest.raises(InvalidInput, match="deployment 'bc' has no version 'c'"):
        abtests.new_test("bc", {"a": 50, "c": 50}, "revenue", "X-User-Id", served=["a", "b"])


def test_experiment_and_canary_routes_need_the_admin_token(
    registered: Registered,
    start_server: Callable[..., RunningServer],
) -> None:
    model = ModelConfig(
        "bc", versions={"champion": "models:/bc@champion", "challenger": "models:/bc@challenger"}
    )
    server = start_server([model], registered.settings, admin_token="s3cret")
    path = f"{server.url}/admin/deployments/bc/experiments/e1"
    good = {"arms": {"champion": 50, "challenger": 50}, "unit": "X-User-Id"}
    with httpx.Client(timeout=30) as client:
        assert client.put(path, json=good).status_code == 401
        wrong = client.put(path, json=good, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        json_type = {"Content-Type": "application/json"}
        assert client.request("DELETE", path, headers=json_type).status_code == 401
        assert client.put(path, json=good, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        canary = f"{server.url}/admin/deployments/bc/canaries/c1"
        body = {"stable": "champion", "canary": "challenger"}
        assert client.put(canary, json=body).status_code == 401
        assert client.request("DELETE", canary, headers=json_type).status_code == 401


def test_the_html_report_escapes_what_it_shows() -> None:
    test = abtests.new_test(
        "bc",
        {"<script>a</script>": 50, "b&c": 50},
        "conversion",
        "X-User-Id",
        served=["<script>a</script>", "b&c"],
    )
    arms = {
        "<script>a</script>": abtests.Arm.of([0.0, 1.0] * 60),
        "b&c": abtests.Arm.of([1.0, 1.0, 0.0] * 40),
    }
    estimates = {arm: abtests.statistics.estimate(stats, "binary") for arm, stats in arms.items()}
    fixed = abtests.statistics.fixed_horizon(arms["<script>a</script>"], arms["b&c"], "binary")
    report = abtests.Report(
        test,
        {arm: 120 for arm in arms},
        estimates,
        [abtests.Comparison("b&c", fixed, abtests.Sequential(0.05))],
        0,
        0,
    )
    page = abtests.report_html(report)
    assert "<script>" not in page and "&lt;script&gt;a&lt;/script&gt;" in page and "b&amp;c" in page


def test_the_label_metric_reads_the_monitoring_label_feed(tmp_path: Path) -> None:
    from shipyard.monitoring.performance import save_labels

    store = ArtifactStore(str(tmp_path / "store"))
    test = abtests.new_test("bc", {"a": 50, "b": 50}, "label", "X-User-Id", served=["a", "b"])
    logger = PayloadLogger(store, PayloadLogConfig())
    for i in range(6):
        logger.log(
            model="bc", version="1", label="ab"[i % 2], protocol="v2", request_id=f"r{i}", status=200,
            latency_s=0.01, inputs=None, outputs=None, rows=1, experiment=test.id,
        )  # fmt: skip
    logger.flush()
    labels = [True, True, False, True, True, True]
    save_labels(store, "bc", pd.DataFrame({"request_id": [f"r{i}" for i in range(6)], "label": labels}))
    report = abtests.analyze(store, test)
    assert (report.estimates["a"].n, report.estimates["a"].mean) == (3, 2 / 3)
    assert (report.estimates["b"].n, report.estimates["b"].mean) == (3, 1.0)
    save_labels(store, "bc", pd.DataFrame({"request_id": ["r0"], "label": ["churned"]}))
    with pytest.raises(InvalidInput, match="label feed must be numbers; request_id 'r0' has 'churned'"):
        abtests.analyze(store, test)
