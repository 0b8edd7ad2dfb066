"""The pipelines pages over HTTP: runs and schedules, a run's DAG (fan-outs folded past a few hundred
boxes), the changes a live page polls for, and a step's logs."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from shipyard.pipelines import compile_pipeline
from shipyard.pipelines.executors import LocalExecutor
from tests.conftest import make_settings, platform_server
from tests.pipelines import example_components as ex


def test_a_pipeline_run_page_draws_its_dag_and_reports_changes(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    executor = LocalExecutor(max_parallel=2, settings=settings)
    small = executor.run(compile_pipeline(ex.training_pipeline), {})
    wide = executor.run(compile_pipeline(ex.fan_out), {"ns": list(range(400))})
    with platform_server(settings) as url, httpx.Client(base_url=url) as web:
        listing = web.get("/ui/pipelines")
        assert listing.status_code == 200
        assert f'href="/ui/pipelines/runs/{small.run_id}"' in listing.text
        assert f'href="/ui/pipelines/runs/{wide.run_id}"' in listing.text

        page = web.get(f"/ui/pipelines/runs/{small.run_id}")
        assert page.status_code == 200 and "<svg" in page.text
        found = re.findall(r'<g class="(step-[a-z_]+)[^"]*" data-step="([^"]+)"', page.text)
        drawn = {step: status for status, step in found}
        assert drawn.get("train") == "step-succeeded" and drawn.get("register") == "step-succeeded"
        assert "data-poll-url" not in page.text  # an ended run is not polled

        folded = web.get(f"/ui/pipelines/runs/{wide.run_id}")
        assert folded.status_code == 200
        assert re.search(r"score \N{MULTIPLICATION SIGN} 400", folded.text)
        assert folded.text.count("data-step=") < 50  # 400 iterations drawn as one box

        changes = web.get(f"/ui/pipelines/runs/{small.run_id}/changes", params={"since": 0}).json()
        assert changes["done"] is True and changes["status"] == "FINISHED"
        assert changes["steps"]["train"] == "succeeded" and changes["since"] > 0
        later = web.get(f"/ui/pipelines/runs/{small.run_id}/changes", params={"since": changes["since"]})
        assert later.json()["steps"] == {}

        step = web.get(f"/ui/pipelines/runs/{small.run_id}/steps/train")
        assert step.status_code == 200 and 'id="stdout"' in step.text
        missing = web.get(f"/ui/pipelines/runs/{small.run_id}/steps/nope")
        assert missing.status_code == 404 and "train" in missing.text
