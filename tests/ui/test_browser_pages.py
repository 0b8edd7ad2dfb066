"""Every page in a real browser (headless Chromium): it renders, runs its scripts under the CSP without an
error, and does its job — the filter box, a compare of several runs, keyboard rows, a running pipeline's
DAG turning green, a promotion, signing in and out, a viewer's 403, a session that expires mid-page, and
payloads in every user string that must never run. Each page's screenshot goes to tests/ui/screenshots."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard import Settings, models
from shipyard.auth.accounts import Accounts
from shipyard.pipelines import compile_pipeline
from shipyard.pipelines.executors import LocalExecutor
from shipyard.store import open_server_stores
from tests.conftest import make_settings, platform_server, sign_up
from tests.pipelines import example_components as ex
from tests.ui import slow_components
from tests.ui.conftest import screenshot, watch_for_errors

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

XSS = "<script>alert('x')</script><img src=x onerror=alert('y')>"
PASSWORD = "a long enough password"


@dataclass
class Site:
    url: str
    settings: Settings
    experiment_id: str
    run_ids: list[str]
    pipeline_run_id: str


def _populate(settings: Settings) -> tuple[str, list[str], str]:
    ids = []
    for i in range(30):
        with shipyard.start_run("churn", name=f"run-{i:02d}", settings=settings) as run:
            run.log_params({"lr": round(0.01 * (i + 1), 3), "model": "rf" if i % 2 else "xgb", "note": XSS})
            run.set_tag("owner", XSS)
            for step in range(50):
                run.log_metric("loss", 1.0 / (step + i + 1), step=step)
            run.log_metric("acc", i / 30)
            if i == 0:
                run.log_dict({"note": XSS}, "meta.json")
                run.log_text(f"<html><body><p>{XSS}</p></body></html>", "report.html")
            ids.append(run.run_id)
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    with shipyard.start_run("models", name=XSS, settings=settings) as run:
        run.log_input(frame, name="train")
        info = models.log(LogisticRegression().fit(frame, [0, 1, 0, 1]), input_example=frame.head(2))
    models.register(info.uri, "churn-model", settings=settings)
    result = LocalExecutor(max_parallel=2, settings=settings).run(compile_pipeline(ex.training_pipeline), {})
    experiment_id = shipyard.TrackingClient(settings).get_experiment("churn").experiment_id
    return experiment_id, ids, result.run_id


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    settings = make_settings(tmp_path_factory.mktemp("browser") / "home")
    experiment_id, ids, pipeline_run = _populate(settings)
    with platform_server(settings) as url:
        yield Site(url, settings, experiment_id, ids, pipeline_run)


def _visit(page: Page, url: str, name: str) -> list[str]:
    errors = watch_for_errors(page)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(url)
    page.wait_for_load_state("networkidle")
    screenshot(page, name)
    assert not dialogs, f"{url} ran a payload: {dialogs}"
    return errors


def test_every_page_renders_without_errors_and_runs_no_payload(site: Site, page: Page) -> None:
    first = site.run_ids[0]
    pages = {
        "experiments": "/ui/",
        "runs-table": f"/ui/experiments/{site.experiment_id}",
        "run": f"/ui/runs/{first}",
        "compare": "/ui/compare?" + "&".join(f"runs={r}" for r in site.run_ids[:5]),
        "models": "/ui/models",
        "model": "/ui/models/churn-model",
        "model-version": "/ui/models/churn-model/versions/1",
        "pipelines": "/ui/pipelines",
        "pipeline-run": f"/ui/pipelines/runs/{site.pipeline_run_id}",
        "pipeline-step": f"/ui/pipelines/runs/{site.pipeline_run_id}/steps/train",
        "account": "/ui/account",
        "deployments": "/ui/deployments",
        "artifact-json": f"/ui/runs/{first}/artifact?path=meta.json",
        "artifact-html": f"/ui/runs/{first}/artifact?path=report.html",
        "not-found": "/ui/runs/0123456789abcdef0123456789abcdef",
    }
    for name, path in pages.items():
        errors = _visit(page, site.url + path, name)
        if name == "not-found":
            assert page.locator("h1").inner_text() == "Not found"
            page.get_by_role("link", name=re.compile("Experiments")).last.click()
            assert page.url.endswith("/ui/")
            errors = [e for e in errors if "404" not in e]  # the page itself answers 404
        if name == "artifact-html":
            # The report's own payload, blocked in its sandboxed frame: what must happen, and all of it.
            blocked = [e for e in errors if "sandboxed" in e or "img-src data:" in e]
            assert blocked and all("/artifact" in e for e in blocked)
            errors = [e for e in errors if e not in blocked]
        assert errors == [], f"{name}: {errors}"
    # The payloads are on the pages as text.
    page.goto(f"{site.url}/ui/runs/{first}")
    assert XSS in page.locator("#params").inner_text()


def test_run_charts_are_drawn_and_follow_their_controls(site: Site, page: Page) -> None:
    errors = _visit(page, f"{site.url}/ui/runs/{site.run_ids[3]}", "run-charts")
    page.locator("figure.chart canvas").first.wait_for()
    assert page.locator("figure.chart canvas").count() >= 2  # loss and acc
    page.get_by_label("log scale").check()
    page.locator("select[data-chart-option=x]").select_option("time")
    assert "log=1" in page.url and "x=time" in page.url  # the view's state is in its URL
    page.reload()
    assert page.get_by_label("log scale").is_checked()
    assert errors == []


def test_the_filter_box_searches_and_names_a_bad_token(site: Site, page: Page) -> None:
    page.goto(f"{site.url}/ui/experiments/{site.experiment_id}")
    page.locator("#run-count").filter(has_text="30 runs").wait_for()  # asked for after the rows
    page.locator("#filter-box").fill("metrics.acc >= 0.5 and params.model = 'rf'")
    page.locator("#filter-box").press("Enter")
    page.wait_for_url(re.compile(r"filter=metrics.acc"))
    rows = page.locator("#runs-body tr[data-href]")
    assert rows.count() == 8  # the odd runs from 15 on
    page.locator("#run-count").filter(has_text="8 runs").wait_for()
    page.locator("#filter-box").fill("metrics.acc >>> 1")
    page.locator("#filter-box").press("Enter")
    problem = page.locator(".filter-error")
    problem.wait_for()
    assert "'>'" in problem.inner_text() or ">" in problem.inner_text()
    screenshot(page, "filter-error")


def test_sorting_paging_and_keyboard_rows(site: Site, page: Page) -> None:
    page.goto(f"{site.url}/ui/experiments/{site.experiment_id}")
    page.get_by_role("link", name="metrics.acc").click()
    page.wait_for_url(re.compile(r"order=metrics.acc"))
    first = page.locator("#runs-body tr[data-href]").first
    assert "run-29" in first.inner_text()
    first.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("x")  # select the focused row
    assert page.locator("#runs-body tr.selected").count() == 1
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/ui/runs/"))
    assert page.locator("h1").inner_text().startswith("run-28")


def test_compare_several_runs_from_the_table(site: Site, page: Page) -> None:
    page.goto(f"{site.url}/ui/experiments/{site.experiment_id}")
    boxes = page.locator("#runs-body input[type=checkbox]")
    for i in range(4):
        boxes.nth(i).check()
    page.locator("#compare-button").click()
    page.wait_for_url(re.compile(r"/ui/compare\?runs="))
    assert page.locator("#compare-table thead th").count() == 5
    page.locator("figure.chart canvas").first.wait_for()
    assert page.locator("svg.parallel-coordinates polyline").count() >= 4
    charts = page.locator("figure.chart[data-compare]").count()
    # The series come one axis at a time: the time axis is fetched when it is chosen, once per chart.
    with page.expect_response(lambda r: "/ui/compare/series" in r.url and "axis=time" in r.url) as got:
        page.get_by_label("X axis").select_option("time")
    assert got.value.ok and "x=time" in page.url
    page.wait_for_function(
        "n => [...document.querySelectorAll('figure.chart[data-compare]')]"
        ".filter(f => f._data && f._data.time && f._plot).length === n",
        arg=charts,
    )
    page.get_by_label("only what differs").check()
    assert page.locator("#compare-table tr.same").first.is_hidden()
    screenshot(page, "compare-4")


def test_a_running_pipelines_dag_turns_green(site: Site, page: Page) -> None:
    finished: dict[str, object] = {}

    def run() -> None:
        executor = LocalExecutor(max_parallel=2, settings=site.settings)
        finished["result"] = executor.run(compile_pipeline(slow_components.slow), {"seconds": 4.0})

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    client = shipyard.TrackingClient(site.settings)
    deadline = time.monotonic() + 60
    running = None
    while running is None and time.monotonic() < deadline:
        try:
            found = client.search_runs(
                ["slow"], "attributes.status = 'RUNNING' and tags.`shipyard.pipeline` is not null"
            )
            running = found[0].run_id if found else None
        except shipyard.NotFound:
            pass
        time.sleep(0.2)
    assert running is not None, "the pipeline did not start"
    page.goto(f"{site.url}/ui/pipelines/runs/{running}")
    assert page.locator("#run-status").inner_text() == "RUNNING"
    assert page.locator("#dag[data-poll-url]").count() == 1
    page.locator("#run-status").filter(has_text="FINISHED").wait_for(timeout=60_000)
    page.locator('#dag g.step-succeeded[data-step="report"]').wait_for(timeout=10_000)
    assert page.locator('#dag g.step-succeeded[data-step="wait"]').count() == 1
    screenshot(page, "pipeline-finished")
    worker.join(timeout=30)


@pytest.fixture(scope="module")
def team_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    settings = make_settings(tmp_path_factory.mktemp("team") / "home")
    experiment_id, ids, pipeline_run = _populate(settings)
    accounts = Accounts(open_server_stores(settings).auth)
    sign_up(accounts, [("alice", "editor", PASSWORD), ("bob", "viewer", PASSWORD)])
    accounts.grant("alice", "model:churn-model", "EDIT", by="admin")
    with platform_server(settings, require_auth=True) as url:
        yield Site(url, settings, experiment_id, ids, pipeline_run)


def _sign_in(page: Page, user: str) -> None:
    page.locator("input[name=user]").fill(user)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_promote_and_sign_out(team_site: Site, page: Page) -> None:
    target = f"{team_site.url}/ui/models/churn-model/versions/1"
    page.goto(target)
    assert "/ui/login?next=" in page.url
    screenshot(page, "login")
    _sign_in(page, "alice")
    page.wait_for_url(target)
    page.locator("#stage-form select[name=stage]").select_option("Production")
    page.locator("#stage-form input[name=reason]").fill("beats v0")
    page.locator("#stage-form button").click()
    page.locator("#stage").filter(has_text="Production").wait_for()
    page.goto(f"{team_site.url}/ui/models/churn-model")
    assert "beats v0" in page.locator("#timeline").inner_text()
    page.locator("details.menu summary").click()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/ui/login"))
    page.goto(target)
    assert "/ui/login" in page.url  # the session is gone


def test_a_viewer_sees_no_write_controls_and_a_write_gets_403(team_site: Site, page: Page) -> None:
    page.goto(f"{team_site.url}/ui/login")
    _sign_in(page, "bob")
    page.wait_for_url(re.compile(r"/ui/$"))
    page.goto(f"{team_site.url}/ui/models/churn-model/versions/1")
    assert page.locator("#stage-form").count() == 0
    csrf = page.locator("body").get_attribute("data-csrf")
    answer = page.request.post(
        f"{team_site.url}/ui/models/churn-model/versions/1/stage",
        form={"csrf": csrf or "", "stage": "Archived"},
        max_redirects=0,
    )
    assert answer.status == 403 and "bob" in answer.text()
    screenshot(page, "viewer")


def test_a_session_that_expires_mid_page_comes_back_after_signing_in(
    team_site: Site, browser: Browser
) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{team_site.url}/ui/login")
        _sign_in(page, "alice")
        page.wait_for_url(re.compile(r"/ui/$"))
        target = f"{team_site.url}/ui/experiments/{team_site.experiment_id}?filter=metrics.acc+%3E+0.5"
        page.goto(target)
        context.clear_cookies()  # the session ends while the page is open
        page.get_by_role("link", name="metrics.acc").first.click()
        page.wait_for_url(re.compile(r"/ui/login\?next="))
        _sign_in(page, "alice")
        page.wait_for_url(re.compile(r"/ui/experiments/.*order=metrics.acc"))
        assert "filter=metrics.acc" in page.url
    finally:
        context.close()


def test_dark_mode_and_local_times(site: Site, browser: Browser) -> None:
    context = browser.new_context(color_scheme="dark", timezone_id="Asia/Tokyo", locale="en-GB")
    page = context.new_page()
    try:
        page.goto(f"{site.url}/ui/runs/{site.run_ids[0]}")
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(20, 23, 28)"
        stamp = page.locator("time").first
        assert "UTC" in (stamp.get_attribute("title") or "") and "UTC" not in stamp.inner_text()
        screenshot(page, "run-dark")
    finally:
        context.close()
