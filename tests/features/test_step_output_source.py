"""Feature views over a pipeline step's ``Dataset`` output: the running pipeline's own output inside it,
the newest succeeded run's outside it, a named run's when asked; lineage through the step; and the errors
when there is nothing to read."""

from __future__ import annotations

import pandas as pd
import pytest

import shipyard
from shipyard import Settings
from shipyard.errors import InvalidInput, NotFound
from shipyard.features import FeatureService, FeatureStore, StepOutputSource
from shipyard.lineage.client import LineageClient
from shipyard.pipelines import compile_pipeline
from shipyard.pipelines.executors import LocalExecutor, PipelineRunResult, StepStatus
from tests.features import step_output_components as sc


def run(settings: Settings, scale: float) -> PipelineRunResult:
    result = LocalExecutor(max_parallel=1, settings=settings).run(
        compile_pipeline(sc.spend_features), {"scale": scale}, cache=False
    )
    assert result.status is StepStatus.SUCCEEDED, [s.error for s in result.steps.values()]
    return result


def spend(settings: Settings, run_id: str | None = None) -> list[float | None]:
    store = FeatureStore([sc.view(run_id)], settings=settings)
    frame = store.get_historical_features(sc.entity_rows(), ["spend:spend"]).to_pandas()
    return [None if pd.isna(v) else v for v in frame["spend"]]


def test_a_view_reads_the_output_of_the_run_it_is_in_else_the_newest_good_one(settings: Settings) -> None:
    first = run(settings, 1.0)
    assert first.steps["read-features"].outputs["output"] == 3.0
    # A later run reads its own output, not the newest succeeded run's (the first).
    second = run(settings, 10.0)
    assert second.steps["read-features"].outputs["output"] == 30.0
    assert spend(settings) == [10.0, 20.0, None]  # outside a pipeline: the newest succeeded run
    assert spend(settings, first.run_id) == [1.0, 2.0, None]  # or the run named


def test_a_training_set_leads_back_through_the_step(settings: Settings) -> None:
    result = run(settings, 2.0)
    view = sc.view()
    store = FeatureStore([view, FeatureService("svc", [view])], settings=settings)
    store.apply()
    with shipyard.start_run("train", settings=settings):
        found = store.training_set("svc", sc.entity_rows())
    graph = LineageClient(shipyard.TrackingClient(settings)).upstream(found.uri)
    location = result.steps["write-table"].outputs["table"]
    source = next(a for a in graph.artifacts.values() if a.uri == f"file://{location}")
    assert source.sha256 == view.source.found.sha256
    step_runs = {e.run_id for e in graph.executions.values()}
    assert result.steps["write-table"].run_id in step_runs  # the step that wrote it, in the same lineage


def test_nothing_to_read_is_a_clear_error(settings: Settings) -> None:
    with pytest.raises(NotFound, match="no succeeded run of pipeline 'spend-features' has step 'write-tab"):
        spend(settings)
    result = run(settings, 1.0)
    with pytest.raises(NotFound, match="step 'write-table' has no output 'nope'; its outputs: output, table"):
        FeatureStore([sc.view(output="nope")], settings=settings).get_historical_features(
            sc.entity_rows(), ["spend:spend"]
        )
    with pytest.raises(InvalidInput, match="output 'output' is a value \\(int\\), not an artifact"):
        FeatureStore([sc.view(output="output")], settings=settings).get_historical_features(
            sc.entity_rows(), ["spend:spend"]
        )
    step_run = result.steps["write-table"].run_id
    with pytest.raises(NotFound, match=f"run {step_run} is not a run of pipeline 'spend-features'"):
        spend(settings, step_run)
    with pytest.raises(InvalidInput, match="run_id '../x' is not a run id"):
        StepOutputSource("p", "s", "o", run_id="../x")


def test_a_changed_output_is_passed_over_for_an_intact_one(settings: Settings) -> None:
    first = run(settings, 1.0)
    second = run(settings, 5.0)
    pd.DataFrame({"customer_id": [1], "event_timestamp": [sc.T0], "spend": [666.0]}).to_parquet(
        second.steps["write-table"].outputs["table"], index=False
    )
    assert spend(settings) == [1.0, 2.0, None]  # the newest run's file no longer matches its hash
    with pytest.raises(NotFound, match=f"in run {second.run_id} the step's outputs changed or are gone"):
        spend(settings, second.run_id)
    assert first.run_id != second.run_id
