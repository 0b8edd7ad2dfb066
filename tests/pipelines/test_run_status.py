"""A pipeline run's state read back from its records: steps in spec order, loop iterations in numeric
order under their step, and the stored spec parsed once and kept."""

from __future__ import annotations

from pathlib import Path

import shipyard
from shipyard.pipelines import compile_pipeline, run_status
from shipyard.pipelines.executors import LocalExecutor
from shipyard.tracking import TrackingClient
from tests.conftest import make_settings
from tests.pipelines import example_components as ex


def test_state_lists_steps_in_spec_order_with_iterations_in_numeric_order(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    result = LocalExecutor(max_parallel=2, settings=settings).run(
        compile_pipeline(ex.fan_out), {"ns": list(range(12))}
    )
    client = TrackingClient(settings)
    spec = run_status.pipeline_spec(client, result.run_id)
    assert spec is not None
    state = run_status.pipeline_state(client, result.run_id, spec)
    keys = [s.key for s in state.steps]
    first, summarize, second = spec.steps  # the first loop's score step, summarize, the second loop's
    assert keys[:12] == [f"{first}.{i}" for i in range(12)]  # 10 and 11 after 9, not after 1
    assert keys[12] == summarize
    assert keys[13:] == [f"{second}.0", f"{second}.1"]
    assert {s.status for s in state.steps} == {"FINISHED"}
    assert run_status.pipeline_state(client, result.run_id).steps == state.steps  # reads the spec itself


def test_a_stored_spec_is_parsed_once_and_kept_by_its_hash(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    executor = LocalExecutor(max_parallel=2, settings=settings)
    one = executor.run(compile_pipeline(ex.fan_out), {})
    two = executor.run(compile_pipeline(ex.fan_out), {"ns": [7]})
    other = executor.run(compile_pipeline(ex.training_pipeline), {})
    client = TrackingClient(settings)
    spec = run_status.pipeline_spec(client, one.run_id)
    assert spec is not None and run_status.pipeline_spec(client, one.run_id) is spec
    assert run_status.pipeline_spec(client, two.run_id) is spec  # the same text: the same spec
    assert run_status.pipeline_spec(client, other.run_id) not in (None, spec)


def test_a_run_without_a_readable_spec_has_none(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    client = TrackingClient(settings)
    with shipyard.start_run("not-a-pipeline", settings=settings) as run:
        assert run_status.pipeline_spec(client, run.run_id) is None
        run.log_text("steps: [not, a, mapping", "pipeline.yaml")
        assert run_status.pipeline_spec(client, run.run_id) is None
