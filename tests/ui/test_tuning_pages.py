"""The tuning pages over HTTP from a real server, over searches that really ran (one objective, two
objectives) and one with 3,000 trials written straight into the store: the list, a search's spec, its
sortable paged trials table, the history chart's data, importances, the Pareto front, errors and escaping."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import shipyard
from benchmarks.ui_tuning import seed_search
from shipyard import Settings
from shipyard.auth.accounts import Accounts
from shipyard.store import open_server_stores
from shipyard.tuning import TrialContext, TuningResult, tune
from tests.conftest import make_settings, platform_server, sign_up

XSS = "<script>alert(1)</script>"
CHOICES = ["plain", XSS, "other"]
PASSWORD = "a long enough password"


def score(trial: TrialContext) -> float:
    """Maximised at x = 2; the payload choice is best, so it shows on the first page sorted by score."""
    bonus = {"plain": 0.0, XSS: 1.0, "other": 0.5}[trial.params["kind"]]
    return -((trial.params["x"] - 2.0) ** 2) + bonus


def trade_off(trial: TrialContext) -> dict[str, float]:
    """Accuracy against latency: along x they trade off; kind 'slow' only adds latency (dominated)."""
    x = trial.params["x"]
    return {"accuracy": x, "latency": x * x + (0.5 if trial.params["kind"] == "slow" else 0.0)}


def _spec(name: str, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": name,
        "experiment": "tuning",
        "objective": {"metric": "score", "direction": "maximize"},
        "parameters": [
            {"name": "x", "type": "float", "low": -5, "high": 5},
            {"name": "kind", "type": "categorical", "choices": CHOICES},
        ],
        "algorithm": {"name": "random", "seed": 0},
        "max_trials": 60,
    }
    return {**base, **changes}


@dataclass
class Site:
    url: str
    settings: Settings
    single: TuningResult  # 60 trials, one objective, a payload among the choices
    double: TuningResult  # 24 trials, two objectives, started later
    large: str  # a search of 3,000 trials written straight into the store (benchmarks/ui_tuning.py)
    plain_run: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    settings = make_settings(tmp_path_factory.mktemp("tuning-ui") / "home")
    large = seed_search(settings, 3000, choices=CHOICES, counts_logged=False)
    single = tune(_spec(XSS), score, settings=settings, report=False)
    double = tune(
        _spec(
            "two",
            objective={"metrics": ["accuracy", "latency"], "directions": ["maximize", "minimize"]},
            parameters=[
                {"name": "x", "type": "float", "low": 0, "high": 1},
                {"name": "kind", "type": "categorical", "choices": ["fast", "slow"]},
            ],
            max_trials=24,
        ),
        trade_off,
        settings=settings,
        report=False,
    )
    with shipyard.start_run("tuning", name="not-a-search", settings=settings) as plain:
        plain.log_metric("score", 1.0)
    with platform_server(settings) as url:
        yield Site(url, settings, single, double, large, plain.run_id)


@pytest.fixture
def web(site: Site) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=site.url, timeout=60) as client:
        yield client


def _trial_numbers(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<td><a href="/ui/runs/[0-9a-f]+">(\d+)</a></td>', page)]


def _scores(page: str) -> list[float]:
    body = page.split('id="trials-table"', 1)[1]
    return [float(v) for v in re.findall(r'<td class="num">(-?[\d.e+-]+)</td>', body)]


def _link(page: str, element_id: str) -> str:
    return re.search(rf'<a href="\?([^"]+)" id="{element_id}"', page)[1].replace("&amp;", "&")  # type: ignore[index]


def test_the_list_shows_searches_newest_first_with_counts_and_best(site: Site, web: httpx.Client) -> None:
    page = web.get("/ui/tuning")
    assert page.status_code == 200 and 'aria-current="page">Tuning' in page.text
    newest_first = [site.double.run_id, site.single.run_id, site.large]
    assert sorted(newest_first, key=lambda r: page.text.index(f'href="/ui/tuning/{r}"')) == newest_first
    row = page.text.split(f'href="/ui/tuning/{site.single.run_id}"', 1)[1].split("</tr>", 1)[0]
    assert "random" in row and "score" in row and "maximize" in row and "complete 60" in row
    assert f"{site.single.best_value:.6g}" in row
    two = page.text.split(f'href="/ui/tuning/{site.double.run_id}"', 1)[1].split("</tr>", 1)[0]
    assert "accuracy" in two and "latency" in two and "minimize" in two and "Pareto" in two
    large = page.text.split(f'href="/ui/tuning/{site.large}"', 1)[1].split("</tr>", 1)[0]
    assert "complete 2," in large  # counted from the trials: the seeded search logged no counts
    only = web.get("/ui/tuning", params={"experiment": "no-such-experiment"})
    assert only.status_code == 404


def test_a_search_page_shows_its_spec_and_pages_its_trials_in_order(site: Site, web: httpx.Client) -> None:
    page = web.get(f"/ui/tuning/{site.single.run_id}")
    assert page.status_code == 200
    assert 'id="space"' in page.text and "-5 … 5" in page.text and "categorical" in page.text
    assert 'aria-sort="ascending"' in page.text  # by trial number, first
    assert _trial_numbers(page.text) == list(range(50))
    assert f'href="/ui/runs/{site.single.trials[0].run_id}"' in page.text
    rest = web.get(f"/ui/tuning/{site.single.run_id}?{_link(page.text, 'next-trials')}")
    assert _trial_numbers(rest.text) == list(range(50, 60)) and 'id="next-trials"' not in rest.text
    assert "First page" in rest.text
    for marker in ('id="history"', f'hx-get="/ui/tuning/{site.single.run_id}/importances"'):
        assert marker in page.text
    assert 'id="pareto"' not in page.text  # one objective


def test_a_header_click_sorts_the_trials_best_first_then_reverses(site: Site, web: httpx.Client) -> None:
    page = web.get(f"/ui/tuning/{site.single.run_id}")
    by_score = web.get(f"/ui/tuning/{site.single.run_id}?order=score&dir=desc")
    assert 'href="?order=score&amp;dir=desc"' in page.text  # maximize: best first on the first click
    scores = _scores(by_score.text)
    assert len(scores) == 50 and scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(site.single.best_value, rel=1e-5)
    assert 'aria-sort="descending"' in by_score.text and 'href="?order=score&amp;dir=asc"' in by_score.text
    rest = web.get(f"/ui/tuning/{site.single.run_id}?{_link(by_score.text, 'next-trials')}")
    assert max(_scores(rest.text)) <= scores[-1] and len(_scores(rest.text)) == 10
    states = web.get(f"/ui/tuning/{site.single.run_id}", params={"order": "state"})
    assert states.status_code == 200 and 'aria-sort="ascending"' in states.text


def test_a_bad_order_or_cursor_is_a_400_page(site: Site, web: httpx.Client) -> None:
    wrong = web.get(f"/ui/tuning/{site.single.run_id}", params={"order": "params.x"})
    assert wrong.status_code == 400 and "number, state, score" in wrong.text
    assert web.get(f"/ui/tuning/{site.single.run_id}", params={"dir": "sideways"}).status_code == 400
    tampered = web.get(f"/ui/tuning/{site.single.run_id}", params={"after": "bm90IGEgY3Vyc29y"})
    assert tampered.status_code == 400 and "after" in tampered.text
    page = web.get(f"/ui/tuning/{site.single.run_id}")
    cursor = re.search(r"after=([^&\"]+)", _link(page.text, "next-trials"))[1]  # type: ignore[index]
    other = web.get(f"/ui/tuning/{site.single.run_id}", params={"after": cursor, "order": "score"})
    assert other.status_code == 400  # a cursor belongs to its order


def test_the_history_has_each_value_and_a_best_so_far_that_never_drops(site: Site, web: httpx.Client) -> None:
    data = web.get(f"/ui/tuning/{site.single.run_id}/history").json()
    assert data["key"] == "score" and data["total"] == 60 and data["names"] == ["score", "best so far"]
    numbers, values, best = data["step"]
    assert numbers == list(range(60))
    assert values == pytest.approx([t.value for t in site.single.trials])
    assert best == sorted(best) and best[-1] == pytest.approx(site.single.best_value)
    assert all(b >= v for b, v in zip(best, values, strict=True))
    times, _, best_by_time = data["time"]
    assert times == sorted(times) and best_by_time == sorted(best_by_time)


def test_a_large_search_thins_its_history_and_samples_its_importances(site: Site, web: httpx.Client) -> None:
    page = web.get(f"/ui/tuning/{site.large}")
    assert page.status_code == 200 and len(_trial_numbers(page.text)) == 50
    data = web.get(f"/ui/tuning/{site.large}/history").json()
    numbers, values, best = data["step"]
    assert 2500 < data["total"] < 3000 and len(numbers) < data["total"]
    assert numbers == sorted(numbers) and best == sorted(best)
    assert max(values) == best[-1]  # the best trial is among the points kept
    panel = web.get(f"/ui/tuning/{site.large}/importances").text
    assert '<svg class="importances"' in panel and 'data-param="x"' in panel
    sampled = int(re.search(r"over ([\d,]+) completed trials", panel)[1].replace(",", ""))  # type: ignore[index]
    assert 1000 < sampled <= 2000 and "fixed random sample" in panel
    # The payload is a category of `kind`: it is never in the page as markup.
    assert XSS not in panel


def test_importances_rank_the_parameter_that_matters(site: Site, web: httpx.Client) -> None:
    panel = web.get(f"/ui/tuning/{site.single.run_id}/importances")
    assert panel.status_code == 200 and "<html" not in panel.text  # a fragment, swapped in by htmx
    ranked = re.findall(r'data-param="([^"]+)"', panel.text)
    assert ranked == ["x", "kind"] and "PED-ANOVA" in panel.text and "over 60 completed trials" in panel.text


def test_two_objectives_draw_their_pareto_front(site: Site, web: httpx.Client) -> None:
    page = web.get(f"/ui/tuning/{site.double.run_id}")
    assert f'hx-get="/ui/tuning/{site.double.run_id}/pareto"' in page.text
    panel = web.get(f"/ui/tuning/{site.double.run_id}/pareto").text
    assert '<svg class="pareto"' in panel and "accuracy (maximize)" in panel and "latency (minimize)" in panel
    on_front = {int(n) for n in re.findall(r'<circle class="front"[^>]*><title>trial (\d+):', panel)}
    assert on_front == {t.number for t in site.double.pareto}
    assert panel.count('<circle class="trial"') == 24 - len(on_front)
    single = web.get(f"/ui/tuning/{site.single.run_id}/pareto").text
    assert "no Pareto front" in single


def test_a_missing_search_or_a_run_that_is_none_is_a_404_page(site: Site, web: httpx.Client) -> None:
    for path in (f"/ui/tuning/{'0' * 32}", f"/ui/tuning/{site.plain_run}", f"/ui/tuning/{'0' * 32}/history"):
        answer = web.get(path)
        assert answer.status_code == 404, path
        assert "Not found" in answer.text and "<html" in answer.text, path
    assert "not a tuning search" in web.get(f"/ui/tuning/{site.plain_run}").text


def test_param_values_and_names_are_escaped(site: Site, web: httpx.Client) -> None:
    for path in ("/ui/tuning", f"/ui/tuning/{site.single.run_id}?order=score&dir=desc"):
        page = web.get(path)
        assert page.status_code == 200, path
        assert "<script>alert" not in page.text, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text, path


def test_a_reader_sees_only_the_searches_of_experiments_it_may_read(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    shown = tune(_spec("shown", max_trials=2), score, settings=settings, report=False)
    hidden = tune(_spec("hidden", max_trials=2, experiment="secret"), score, settings=settings, report=False)
    accounts = Accounts(open_server_stores(settings).auth)
    sign_up(accounts, [("bob", "viewer", PASSWORD)])
    accounts.grant("bob", "experiment:tuning", "READ", by="admin")
    with (
        platform_server(settings, require_auth=True, default_permission="NO_PERMISSIONS") as url,
        httpx.Client(base_url=url, timeout=30) as web,
    ):
        login = web.get("/ui/login")
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', login.text)[1]  # type: ignore[index]
        web.post("/ui/login", data={"csrf": csrf, "user": "bob", "password": PASSWORD})
        listing = web.get("/ui/tuning")
        assert f"/ui/tuning/{shown.run_id}" in listing.text and hidden.run_id not in listing.text
        assert web.get(f"/ui/tuning/{shown.run_id}").status_code == 200
        for path in ("", "/history", "/importances", "/pareto"):
            assert web.get(f"/ui/tuning/{hidden.run_id}{path}").status_code == 403, path
        assert web.get("/ui/tuning", params={"experiment": "secret"}).status_code == 403
