"""The UI's pages over HTTP from a real server: what they show, escaping, errors, and their headers."""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import shipyard
from shipyard import Settings
from tests.conftest import make_settings, platform_server

XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"


@pytest.fixture
def local_ui(tmp_path: Path) -> Iterator[tuple[str, Settings]]:
    settings = make_settings(tmp_path / "home")
    with platform_server(settings) as url:
        yield url, settings


def _log_runs(settings: Settings, count: int, experiment: str = "churn") -> list[str]:
    ids = []
    for i in range(count):
        with shipyard.start_run(experiment, name=f"run-{i:03d}", settings=settings) as run:
            run.log_params({"lr": 0.1 * (i + 1), "model": "rf" if i % 2 else "xgb"})
            for step in range(3):
                run.log_metric("loss", 1.0 / (i + step + 1), step=step)
            run.log_metric("acc", i / count)
            ids.append(run.run_id)
    return ids


def test_the_runs_table_shows_pages_sorts_and_counts(local_ui: tuple[str, Settings]) -> None:
    url, settings = local_ui
    _log_runs(settings, 60)
    with httpx.Client(base_url=url) as web:
        assert web.get("/").headers["location"] == "/ui/"
        home = web.get("/ui/")
        assert home.status_code == 200 and "churn" in home.text
        experiment_id = re.search(r'href="/ui/experiments/([0-9a-f]+)"', home.text)[1]
        table = web.get(f"/ui/experiments/{experiment_id}", params={"order": "metrics.acc DESC"})
        assert table.status_code == 200
        names = re.findall(r'<a href="/ui/runs/[0-9a-f]+">(run-\d+)</a>', table.text)
        assert names[:3] == ["run-059", "run-058", "run-057"] and len(names) == 50
        assert "metrics.acc" in table.text and "params.lr" in table.text  # default columns
        assert 'aria-sort="descending"' in table.text
        more = re.search(r'hx-get="(/ui/experiments/[^"]+after=[^"]+)"', table.text)[1]
        rest = web.get(more.replace("&amp;", "&"), headers={"HX-Request": "true"})
        assert re.findall(r">(run-\d+)</a>", rest.text) == [f"run-{i:03d}" for i in range(9, -1, -1)]
        assert "<html" not in rest.text  # a fragment, appended by htmx
        tampered = web.get(f"/ui/experiments/{experiment_id}", params={"after": "bm90IGEgY3Vyc29y"})
        assert tampered.status_code == 400 and "after" in tampered.text
        # A cursor belongs to its search: the same cursor under another order is refused.
        cursor = re.search(r"after=([^&\"]+)", more)[1]
        other = web.get(
            f"/ui/experiments/{experiment_id}", params={"after": cursor, "order": "metrics.loss ASC"}
        )
        assert other.status_code == 400
        count = web.get(f"/ui/experiments/{experiment_id}/count", params={"filter": "metrics.acc >= 0.5"})
        assert count.text.strip() == "30 runs"


def test_a_filter_that_does_not_parse_is_shown_naming_its_token(local_ui: tuple[str, Settings]) -> None:
    url, settings = local_ui
    _log_runs(settings, 2)
    with httpx.Client(base_url=url) as web:
        experiment_id = shipyard.TrackingClient(settings).get_experiment("churn").experiment_id
        page = web.get(f"/ui/experiments/{experiment_id}", params={"filter": "metrics.acc >> 1"})
        assert page.status_code == 200
        assert 'class="error-message filter-error"' in page.text and "&#39;&gt;&#39;" in page.text
        assert "No runs match" in page.text


def test_user_strings_are_escaped_everywhere(local_ui: tuple[str, Settings]) -> None:
    url, settings = local_ui
    # (Keys are letters, digits and a few signs: names and values carry the payloads.)
    with shipyard.start_run(XSS, name="x" + XSS, settings=settings) as run:
        run.log_params({"p": XSS})
        run.set_tag("note", XSS)
        run.log_metric("m", 1.0)
    with httpx.Client(base_url=url) as web:
        for path in ("/ui/", f"/ui/runs/{run.run_id}", f"/ui/compare?runs={run.run_id}"):
            page = web.get(path)
            assert page.status_code == 200, path
            assert "<script>alert" not in page.text and "<img src=x" not in page.text, path
            assert "&lt;script&gt;" in page.text, path


def test_a_run_page_charts_thinned_series(local_ui: tuple[str, Settings]) -> None:
    url, settings = local_ui
    with shipyard.start_run("long", settings=settings) as run:
        for step in range(10_000):
            run.log_metric("loss", 1.0 if step != 4321 else 99.0, step=step)
        run.log_metric("nan", float("nan"))
    with httpx.Client(base_url=url) as web:
        page = web.get(f"/ui/runs/{run.run_id}")
        assert 'data-series-url="/ui/runs/' in page.text and "uPlot" in page.text
        series = web.get(f"/ui/runs/{run.run_id}/series", params={"key": "loss"}).json()
        assert series["total"] == 10_000 and len(series["step"][0]) <= 2000
        assert 99.0 in series["step"][1] and series["step"][0][0] == 0 and series["step"][0][-1] == 9999
        assert web.get(f"/ui/runs/{run.run_id}/series", params={"key": "nan"}).json()["step"][1] == [None]


def _series_columns(body: bytes) -> tuple[dict[str, object], list[list[float]]]:
    """A binary series answer's meta and its float64 columns (uint32 length, JSON, 8-byte aligned floats)."""
    n = int.from_bytes(body[:4], "little")
    meta = json.loads(body[4 : 4 + n])
    assert (4 + n) % 8 == 0
    values = struct.unpack(f"<{(len(body) - 4 - n) // 8}d", body[4 + n :])
    points = int(meta["points"])
    return meta, [list(values[i : i + points]) for i in range(0, len(values), points)]


def test_compare_overlays_runs_on_one_axis(local_ui: tuple[str, Settings]) -> None:
    url, settings = local_ui
    ids = _log_runs(settings, 3)
    with httpx.Client(base_url=url) as web:
        page = web.get("/ui/compare", params=[("runs", i) for i in ids])
        assert page.status_code == 200 and page.text.count('class="run-line"') == 3
        names = json.loads(
            re.search(r'<script type="application/json" id="run-names">(.*?)</script>', page.text)[1]
        )
        assert names == {i: f"run-{n:03d}" for n, i in enumerate(ids)}
        query = [("key", "loss"), *(("runs", i) for i in ids)]
        answer = web.get("/ui/compare/series", params=query)
        assert answer.headers["content-type"] == "application/vnd.shipyard.series"
        data, columns = _series_columns(answer.content)
        assert data == {"key": "loss", "runs": ids, "axis": "step", "points": len(columns[0])}
        assert len(columns) == 4  # the grid, then one series per run; one axis an answer
        assert columns[0][0] == 0 and columns[1][0] == 1.0 and columns[2][0] == 0.5  # step 0's loss
        assert math.isnan(columns[1][2]) and columns[1][-1] == pytest.approx(1 / 3)  # a gap, then step 2
        by_time, columns = _series_columns(
            web.get("/ui/compare/series", params=[*query, ("axis", "time")]).content
        )
        assert by_time["axis"] == "time" and len(columns) == 4
        assert columns[0][0] > 1e9  # epoch seconds
        bad = web.get("/ui/compare/series", params=[*query, ("axis", "<b>epoch</b>")])
        assert bad.status_code == 400 and "axis" in bad.text and "<b>" not in bad.text


def test_missing_things_get_a_page_with_a_way_back(local_ui: tuple[str, Settings]) -> None:
    url, _ = local_ui
    with httpx.Client(base_url=url) as web:
        for path in ("/ui/runs/0123456789abcdef0123456789abcdef", "/ui/experiments/nope", "/ui/no-such-page"):
            page = web.get(path)
            assert page.status_code == 404, path
            assert page.headers["content-type"].startswith("text/html")
            assert 'href="/ui/"' in page.text and "Not found" in page.text
        assert web.get("/ui/compare").status_code == 400


def test_pages_carry_security_headers(local_ui: tuple[str, Settings]) -> None:
    url, _ = local_ui
    with httpx.Client(base_url=url) as web:
        page = web.get("/ui/")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert "HttpOnly" in page.headers["set-cookie"] and "SameSite=Strict" in page.headers["set-cookie"]
        assert web.get("/static/app.js").status_code == 200
        assert "content-security-policy" not in web.get("/api/v1/health").headers


def test_shipyard_ui_reads_files_where_the_embedded_clients_wrote_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`shipyard ui` keeps no files of its own (SHIPYARD_SERVER_ARTIFACTS empty): reports, packages and
    artifacts are read where the person's scripts wrote them, not under a served root."""
    from shipyard.server.app import app_from_environment

    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHIPYARD_SERVER_ARTIFACTS", "")
    app = app_from_environment()
    assert getattr(app.state, "artifacts", None) is None
    assert not [r for r in app.routes if getattr(r, "path", "").startswith("/api/v1/artifacts")]


def test_compare_shows_only_runs_the_caller_may_read(tmp_path: Path) -> None:
    from shipyard.auth.accounts import Accounts
    from shipyard.store import open_server_stores
    from tests.conftest import sign_up

    settings = make_settings(tmp_path / "home")
    mine = _log_runs(settings, 2, experiment="mine")
    secret = _log_runs(settings, 1, experiment="secret")
    accounts = Accounts(open_server_stores(settings).auth)
    sign_up(accounts, [("vic", "viewer", "a long enough password")])
    accounts.grant("vic", "experiment:mine", "READ", by="admin")
    server = platform_server(settings, require_auth=True, default_permission="NO_PERMISSIONS")
    with server as url, httpx.Client(base_url=url) as web:
        login = web.get("/ui/login")
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', login.text)[1]
        web.post("/ui/login", data={"csrf": csrf, "user": "vic", "password": "a long enough password"})
        assert web.get("/ui/compare", params=[("runs", r) for r in mine]).status_code == 200
        refused = web.get("/ui/compare", params=[("runs", r) for r in [*mine, *secret]])
        assert refused.status_code == 403 and "secret" in refused.text
        series = web.get("/ui/compare/series", params=[("key", "loss"), ("runs", secret[0])])
        assert series.status_code == 403
        assert web.get("/ui/compare", params={"runs": "x' or 1=1 --"}).status_code == 400
