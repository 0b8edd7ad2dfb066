"""A tuning search's page in a real browser (headless Chromium): the history chart draws, the importances and
Pareto panels load, nothing breaks the CSP and the payload among the params never runs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.tuning import TrialContext, tune
from tests.conftest import make_settings, platform_server
from tests.ui.conftest import screenshot, watch_for_errors

if TYPE_CHECKING:
    from playwright.sync_api import Page

XSS = "<script>alert('x')</script><img src=x onerror=alert('y')>"


def trade_off(trial: TrialContext) -> dict[str, float]:
    x = trial.params["x"]
    return {"accuracy": x, "latency": x * x + (0.5 if trial.params["kind"] == XSS else 0.0)}


def test_a_search_page_draws_its_history_importances_and_pareto_front(page: Page, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    spec = {
        "name": "two",
        "objective": {"metrics": ["accuracy", "latency"], "directions": ["maximize", "minimize"]},
        "parameters": [
            {"name": "x", "type": "float", "low": 0, "high": 1},
            {"name": "kind", "type": "categorical", "choices": ["plain", XSS]},
        ],
        "algorithm": {"name": "random", "seed": 0},
        "max_trials": 30,
    }
    result = tune(spec, trade_off, settings=settings, report=False)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    with platform_server(settings) as url:
        errors = watch_for_errors(page)
        page.goto(f"{url}/ui/tuning/{result.run_id}")
        page.wait_for_selector("#history canvas")
        page.wait_for_selector("#importances svg.importances")
        page.wait_for_selector("#pareto svg.pareto")
        page.wait_for_load_state("networkidle")
        assert page.locator("#trials-table tbody tr").count() == 30
        assert page.locator("#pareto circle.front").count() == len(result.pareto)
        assert "best so far" in page.locator("#history").inner_text()
        screenshot(page, "tuning")
        assert errors == [] and dialogs == []
