"""The monitoring pages on a real server with accounts, over reports the real monitoring job wrote from
payload logs written by the real logger: the models list (filtered by READ), a model's drift share chart,
feature scores, alerts and performance by version, and a report's own HTML in a sandboxed frame that runs
no script."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import numpy as np
import pandas as pd
import pytest

from shipyard.auth.accounts import Accounts
from shipyard.config import Settings
from shipyard.monitoring import parse_rules, run_monitor, save_baseline, save_labels
from shipyard.payloads import PayloadLogConfig, PayloadLogger
from shipyard.store import open_server_stores
from shipyard.store.artifacts import ArtifactStore
from tests.conftest import free_port, make_settings, platform_server, sign_up

PASSWORD = "a long enough password"
XSS = "<script>alert('x')</script>"
MODEL, OTHER = "churn", "fraud"
HOOK_SECRET = "T000-SECRET-PATH"
# Reports at fixed moments: each run's id is its time, so no run has to wait for the next second.
TIMES = [datetime(2024, 5, 1, hour, tzinfo=UTC) for hour in (8, 9, 10)]
# It would say so on itself if it ran (a sandboxed frame runs no script, so it says "not run").
SCRIPTED_HTML = (
    b"<!doctype html><html><body><p id='said'>not run</p>"
    b"<script>document.getElementById('said').textContent = 'ran'</script></body></html>"
)


@dataclass
class World:
    url: str
    settings: Settings
    reports: list[str]  # the churn reports, oldest first
    other_report: str
    hook_port: int
    tokens: dict[str, str]


SignIn = Callable[[str], httpx.Client]


def log_traffic(store: ArtifactStore, model: str, frame: pd.DataFrame, *, version: str, shadow: bool) -> None:
    """``frame`` as requests of 10 rows (ids r0, r10, …), the way the inference server logs them."""
    logger = PayloadLogger(store, PayloadLogConfig(sample_rate=1.0))
    for start in range(0, len(frame), 10):
        chunk = frame.iloc[start : start + 10]
        logger.log(
            model=model,
            version=version,
            label="production",
            protocol="rest",
            request_id=f"r{start}",
            status=200,
            latency_s=0.002,
            inputs={c: chunk[c].to_numpy() for c in chunk.columns},
            outputs={"predict": np.zeros(len(chunk)) if version == "1" else np.ones(len(chunk))},
            rows=len(chunk),
            shadow=shadow,
        )
    logger.flush()


def report_id(path: str) -> str:
    return path.rpartition("/")[2].removesuffix(".json")


def populate(settings: Settings, hook_port: int) -> tuple[list[str], str]:
    store = ArtifactStore.configured(settings)
    rng = np.random.default_rng(0)
    columns = {"a": (0, 1), "b": (5, 2), XSS: (0, 1)}
    save_baseline(store, MODEL, pd.DataFrame({c: rng.normal(m, s, 300) for c, (m, s) in columns.items()}))
    served = pd.DataFrame({"a": rng.normal(3, 1, 60), "b": rng.normal(5, 2, 60), XSS: rng.normal(0, 1, 60)})
    log_traffic(store, MODEL, served, version="1", shadow=False)
    log_traffic(store, MODEL, served, version="2", shadow=True)  # a challenger on the same requests
    rules = parse_rules(
        {
            "rules": [
                {
                    "name": "any-drift",
                    "metric": "drift_share",
                    "op": ">=",
                    "threshold": 0.1,
                    "webhook": f"http://127.0.0.1:{hook_port}/hooks/{HOOK_SECRET}?token=abc",
                },
                {"name": "a-moved", "metric": "feature_drift", "feature": "a", "op": "<", "threshold": 0.05},
            ]
        }
    )
    reports = []
    for index, now in enumerate(TIMES):
        if index == len(TIMES) - 1:  # ground truth arrives before the last run: it scores the versions
            labels = [
                (f"r{start}", row, int((start // 10 + row) % 3 > 0))
                for start in range(0, 60, 10)
                for row in range(10)
            ]
            save_labels(store, MODEL, pd.DataFrame(labels, columns=["request_id", "row", "label"]))
        done = run_monitor(store, MODEL, rules=rules, now=now, min_rows=50)
        reports.append(report_id(done.json_path))

    save_baseline(store, OTHER, pd.DataFrame({"x": rng.normal(0, 1, 200)}))
    log_traffic(store, OTHER, pd.DataFrame({"x": rng.normal(0, 1, 60)}), version="1", shadow=False)
    other = run_monitor(store, OTHER, now=TIMES[0], min_rows=50)
    # A report page holding a script (as a hostile feature value or a tampered file could make it).
    store.put_bytes(SCRIPTED_HTML, other.report_path)
    return reports, report_id(other.json_path)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    settings = make_settings(tmp_path_factory.mktemp("monitoring-pages") / "home")
    hook_port = free_port()  # nothing listens: the webhook is recorded as not delivered
    reports, other = populate(settings, hook_port)
    accounts = Accounts(open_server_stores(settings).auth)
    tokens = sign_up(
        accounts, [("root", "admin", PASSWORD), ("alice", "viewer", PASSWORD), ("bob", "viewer", PASSWORD)]
    )
    accounts.grant("alice", f"model:{MODEL}", "READ", by="root")
    with platform_server(settings, require_auth=True, default_permission="NO_PERMISSIONS") as url:
        yield World(url, settings, reports, other, hook_port, tokens)


def _csrf(page: httpx.Response) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)[1]


@pytest.fixture
def signed_in(world: World) -> Iterator[SignIn]:
    clients: list[httpx.Client] = []

    def sign_in(user: str) -> httpx.Client:
        web = httpx.Client(base_url=world.url, timeout=30)
        clients.append(web)
        login = web.get("/ui/login")
        answer = web.post("/ui/login", data={"csrf": _csrf(login), "user": user, "password": PASSWORD})
        assert answer.status_code == 303, answer.text
        return web

    yield sign_in
    for web in clients:
        web.close()


def test_the_list_shows_each_readable_models_latest_report(world: World, signed_in: SignIn) -> None:
    page = signed_in("root").get("/ui/monitoring")
    assert page.status_code == 200
    rows = re.findall(r"<tr>(.*?)</tr>", page.text, re.S)
    churn = next(r for r in rows if f'href="/ui/monitoring/{MODEL}"' in r)
    assert f'href="/ui/monitoring/{MODEL}/reports/{world.reports[-1]}"' in churn  # the latest report
    cells = re.findall(r'<td class="num"[^>]*>(.*?)</td>', churn, re.S)
    rows_compared, share, drifted, alerts = cells
    assert rows_compared == "60" and float(share) == pytest.approx(1 / 3) and drifted == "1"
    assert ">2</span>" in alerts  # both rules fired on the last run
    assert f'href="/ui/monitoring/{OTHER}"' in page.text

    mine = signed_in("alice").get("/ui/monitoring").text
    assert f'href="/ui/monitoring/{MODEL}"' in mine and f"/ui/monitoring/{OTHER}" not in mine
    assert f"/ui/monitoring/{MODEL}" not in signed_in("bob").get("/ui/monitoring").text


def test_a_model_page_shows_features_alerts_performance_and_reports(world: World, signed_in: SignIn) -> None:
    page = signed_in("alice").get(f"/ui/monitoring/{MODEL}")
    assert page.status_code == 200
    text = page.text
    features = text.split('id="features"', 1)[1].split("</table>", 1)[0]
    assert XSS not in text and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in features  # escaped
    first = re.search(r"<tr class=\"drifted\">(.*?)</tr>", features, re.S)[1]
    assert "<td>a</td>" in first and "ks" in first and "p-value &lt; 0.05" in first and "yes" in first
    assert features.count("<tr") == 4  # the header and a, b and the scripted name

    alerts = text.split('id="alerts"', 1)[1].split("</table>", 1)[0]
    assert alerts.count("any-drift") == 3 and alerts.count("a-moved") == 3
    assert f"http://127.0.0.1:{world.hook_port}/…" in alerts and "not delivered" in alerts
    assert HOOK_SECRET not in text and "token=abc" not in text  # the webhook as its host only

    performance = text.split('id="performance"', 1)[1].split("</table>", 1)[0]
    assert "<th>accuracy</th>" in performance and "<td>1</td>" in performance and "<td>2</td>" in performance
    by_version = dict(
        re.findall(r"<tr><td>(\d)</td><td class=\"num\">60</td><td class=\"num\">([\d.]+)<", performance)
    )
    # The served version (always 0) and the shadow (always 1), on the same 60 labels, two thirds of them 1.
    assert by_version == {"1": "0.333333", "2": "0.666667"}

    listed = re.findall(rf'href="/ui/monitoring/{MODEL}/reports/(\w+)"', text.split('id="reports"', 1)[1])
    assert listed == world.reports[::-1]  # newest first
    assert f'data-series-url="/ui/monitoring/{MODEL}/series"' in text


def test_a_model_without_labels_says_how_to_add_them(world: World, signed_in: SignIn) -> None:
    page = signed_in("root").get(f"/ui/monitoring/{OTHER}").text
    assert 'id="performance-note"' in page and "has no ground-truth labels" in page


def test_the_drift_share_series_is_in_the_chart_format(world: World, signed_in: SignIn) -> None:
    answer = signed_in("alice").get(f"/ui/monitoring/{MODEL}/series")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    series = answer.json()
    assert series["key"] == "drift_share" and series["total"] == 3
    assert series["step"][0] == [0, 1, 2]
    assert series["time"][0] == [t.timestamp() for t in TIMES]  # epoch seconds, oldest first
    assert series["step"][1] == series["time"][1] and series["step"][1][0] == pytest.approx(1 / 3)


def test_a_report_page_frames_the_report_in_a_sandbox(world: World, signed_in: SignIn) -> None:
    web = signed_in("alice")
    newest = world.reports[-1]
    page = web.get(f"/ui/monitoring/{MODEL}/reports/{newest}")
    assert page.status_code == 200
    frame = re.search(r"<iframe [^>]*>", page.text)[0]
    assert " sandbox " in frame and f'src="/ui/monitoring/{MODEL}/reports/{newest}/html"' in frame
    assert "frame-src 'self'" in page.headers["content-security-policy"]  # the page may frame this site

    framed = web.get(f"/ui/monitoring/{MODEL}/reports/{newest}/html")
    assert framed.status_code == 200 and "Data drift: churn" in framed.text
    assert XSS not in framed.text  # the report escapes the feature name itself
    assert framed.headers["x-frame-options"] == "SAMEORIGIN"


def test_a_report_holding_a_script_is_served_so_it_cannot_run(world: World, signed_in: SignIn) -> None:
    framed = signed_in("root").get(f"/ui/monitoring/{OTHER}/reports/{world.other_report}/html")
    assert framed.status_code == 200 and framed.content == SCRIPTED_HTML
    policy = framed.headers["content-security-policy"]
    directives = [d.strip() for d in policy.split(";")]
    assert directives[0] == "sandbox" and "allow-scripts" not in policy  # sandboxed, scripts off
    assert "default-src 'none'" in directives and "script-src" not in policy
    assert framed.headers.get_list("content-security-policy") == [policy]  # not joined by the page policy
    assert (
        framed.headers["x-frame-options"] == "SAMEORIGIN"
        and framed.headers["x-content-type-options"] == "nosniff"
    )


def test_bad_and_unknown_names_get_pages_that_say_so(world: World, signed_in: SignIn) -> None:
    web = signed_in("root")
    for traversal in ("/ui/monitoring/%2E%2E", "/ui/monitoring/..%2Fbaselines", "/ui/monitoring/..%2F..%2Fx"):
        answer = web.get(traversal)
        assert answer.status_code == 400, traversal
        assert "<h1>That request does not work</h1>" in answer.text
    unknown = web.get("/ui/monitoring/nobody")
    assert unknown.status_code == 404 and 'href="/ui/monitoring"' in unknown.text
    assert "nobody" in unknown.text and "shipyard monitor run nobody" in unknown.text
    assert web.get(f"/ui/monitoring/{MODEL}/reports/latest").status_code == 400
    assert web.get(f"/ui/monitoring/{MODEL}/reports/20200101T000000Z").status_code == 404
    assert web.get(f"/ui/monitoring/{MODEL}/reports/20200101T000000Z/html").status_code == 404
    scripted = web.get(f"/ui/monitoring/{XSS}")
    assert scripted.status_code in (400, 404) and XSS not in scripted.text


def test_a_reader_without_read_on_the_model_is_refused(world: World, signed_in: SignIn) -> None:
    web = signed_in("bob")
    newest = world.reports[-1]
    for path in (
        f"/ui/monitoring/{MODEL}",
        f"/ui/monitoring/{MODEL}/series",
        f"/ui/monitoring/{MODEL}/reports/{newest}",
        f"/ui/monitoring/{MODEL}/reports/{newest}/html",
    ):
        answer = web.get(path)
        assert answer.status_code == 403, path
        assert "Data drift" not in answer.text and "drift_share" not in answer.text


def test_a_browser_without_a_session_is_sent_to_sign_in(world: World) -> None:
    answer = httpx.get(f"{world.url}/ui/monitoring/{MODEL}/reports/{world.reports[0]}/html")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/login?next=")


def test_the_chart_shows_what_the_rest_listing_lists(world: World, signed_in: SignIn) -> None:
    web = signed_in("root")
    token = {"authorization": f"Bearer {world.tokens['root']}"}
    listed = web.get(f"/api/v1/monitoring/models/{MODEL}/reports", headers=token).json()["reports"]
    shares = [r["drift_share"] for r in reversed(listed)]
    assert web.get(f"/ui/monitoring/{MODEL}/series").json()["step"][1] == shares
