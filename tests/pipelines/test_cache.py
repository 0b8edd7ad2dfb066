"""Step caching and resume in the local executor, with real worker processes counting their executions."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.config import Settings
from shipyard.errors import InvalidInput, NotFound
from shipyard.pipelines import compile_pipeline
from shipyard.pipelines.executors import LocalExecutor, PipelineRunResult, StepStatus
from shipyard.tracking import RunStatus, get_client
from tests.pipelines import cache_components as cc
from tests.pipelines import example_components as ex
from tests.pipelines import executor_components as comps

S, F, K, C = StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CACHED


@pytest.fixture
def executor(settings: Settings) -> LocalExecutor:
    return LocalExecutor(max_parallel=2, settings=settings)


@pytest.fixture
def counter(tmp_path: Path) -> str:
    return str(tmp_path / "count.txt")


def statuses(result: PipelineRunResult) -> dict[str, StepStatus]:
    return {k: r.status for k, r in result.steps.items()}


def test_second_run_reuses_every_step(executor: LocalExecutor, counter: str, settings: Settings) -> None:
    spec = compile_pipeline(cc.chain)
    first = executor.run(spec, {"counter": counter})
    assert statuses(first) == {"produce": S, "consume": S, "bump": S}
    second = executor.run(spec, {"counter": counter})
    assert statuses(second) == {"produce": C, "consume": C, "bump": C}
    assert second.status is S
    assert cc.executions(counter) == ["bump", "consume", "produce"]
    assert {k: r.outputs for k, r in second.steps.items()} == {k: r.outputs for k, r in first.steps.items()}
    assert second.steps["consume"].outputs["output"] == "0,1,2"

    client = get_client(settings)
    cached = client.get_run(second.steps["produce"].run_id)
    assert cached.parent_run_id == second.run_id
    assert cached.status is RunStatus.FINISHED
    assert cached.tags["shipyard.cached_from"] == first.steps["produce"].run_id
    assert second.steps["produce"].cached_from == first.steps["produce"].run_id
    assert "pipeline.yaml" in {a.path for a in client.list_artifacts(second.run_id)}


def test_conditions_and_loops_are_cached_per_iteration(executor: LocalExecutor) -> None:
    spec = compile_pipeline(ex.fan_out)
    first = executor.run(spec, {"ns": [1, 2, 3]})
    again = executor.run(spec, {"ns": [1, 2, 3, 6]})  # score(n=4) ran in the second loop
    assert [again.steps[f"score[{i}]"].status for i in range(4)] == [C, C, C, S]
    assert again.steps["summarize"].status is S
    assert again.steps["summarize"].outputs["output"] == 0.6
    assert again.steps["score-2[0]"].status is C
    assert first.steps["summarize"].outputs["output"] == 0.3

    realistic = compile_pipeline(comps.realistic)
    executor.run(realistic, {"n": 10})
    cached = executor.run(realistic, {"n": 10})
    assert statuses(cached) == {"make-data": C, "fit": C, "publish": C}
    assert Path(cached.steps["fit"].outputs["model"]).read_text() == "mean=4.5"


def test_changed_parameter_reruns_only_affected_steps(executor: LocalExecutor, counter: str) -> None:
    spec = compile_pipeline(cc.chain)
    executor.run(spec, {"counter": counter})
    changed_m = executor.run(spec, {"counter": counter, "m": 5})
    assert statuses(changed_m) == {"produce": C, "consume": C, "bump": S}
    changed_n = executor.run(spec, {"counter": counter, "m": 5, "n": 4})
    assert statuses(changed_n) == {"produce": S, "consume": S, "bump": C}
    assert changed_n.steps["consume"].outputs["output"] == "0,1,2,3"
    assert cc.executions(counter) == ["bump", "bump", "consume", "consume", "produce", "produce"]


def test_changed_input_artifact_content_invalidates_dependents(
    executor: LocalExecutor, counter: str, tmp_path: Path
) -> None:
    source = tmp_path / "source.txt"
    source.write_text("a")
    spec = compile_pipeline(cc.loaded)
    params = {"counter": counter, "source": str(source)}
    executor.run(spec, params)
    same = executor.run(spec, params)  # load never caches, but wrote the same content
    assert statuses(same) == {"load": S, "consume": C}
    source.write_text("b")
    changed = executor.run(spec, params)
    assert statuses(changed) == {"load": S, "consume": S}
    assert changed.steps["consume"].outputs["output"] == "b"


def test_cache_false_per_run_forces_execution_but_records_keys(executor: LocalExecutor, counter: str) -> None:
    spec = compile_pipeline(cc.chain)
    executor.run(spec, {"counter": counter})
    forced = executor.run(spec, {"counter": counter}, cache=False)
    assert statuses(forced) == {"produce": S, "consume": S, "bump": S}
    later = executor.run(spec, {"counter": counter})
    assert statuses(later) == {"produce": C, "consume": C, "bump": C}
    assert later.steps["bump"].cached_from == forced.steps["bump"].run_id
    assert len(cc.executions(counter)) == 6


def test_cache_false_per_pipeline_runs_every_step_every_time(executor: LocalExecutor, counter: str) -> None:
    spec = compile_pipeline(cc.uncached_chain)
    assert not any(step.cache for step in spec.steps.values())
    executor.run(spec, {"counter": counter})
    again = executor.run(spec, {"counter": counter})
    assert statuses(again) == {"produce": S, "consume": S}
    assert len(cc.executions(counter)) == 4


@pytest.mark.parametrize("damage", ["delete", "tamper"])
def test_missing_or_changed_cached_artifact_is_a_miss(
    executor: LocalExecutor, counter: str, damage: str
) -> None:
    spec = compile_pipeline(cc.chain)
    first = executor.run(spec, {"counter": counter})
    data = Path(first.steps["produce"].outputs["data"])
    if damage == "delete":
        data.unlink()
    else:
        data.write_text("9\n9")
    again = executor.run(spec, {"counter": counter})
    assert statuses(again) == {"produce": S, "consume": C, "bump": C}
    assert Path(again.steps["produce"].outputs["data"]).read_text() == "0\n1\n2"


def test_resume_reruns_failed_steps_and_reuses_the_rest(
    settings: Settings, counter: str, tmp_path: Path
) -> None:
    executor = LocalExecutor(max_parallel=2, settings=settings)
    marker = tmp_path / "marker"
    spec = compile_pipeline(cc.resumable)
    failed = executor.run(spec, {"counter": counter, "marker": str(marker)}, cache=False)
    assert statuses(failed) == {"produce": S, "gate": F, "consume": K, "bump": S}
    marker.touch()
    resumed = LocalExecutor(max_parallel=2, settings=settings).resume(failed.run_id)
    assert resumed.status is S
    assert statuses(resumed) == {"produce": C, "gate": S, "consume": S, "bump": C}
    assert resumed.steps["gate"].outputs["output"] == 2
    assert resumed.steps["produce"].cached_from == failed.steps["produce"].run_id
    assert cc.executions(counter) == ["bump", "consume", "gate", "gate", "produce"]
    client = get_client(settings)
    assert client.get_run(resumed.run_id).tags["shipyard.resumed_from"] == failed.run_id
    assert resumed.run_id != failed.run_id

    with pytest.raises(InvalidInput, match="succeeded"):
        executor.resume(resumed.run_id)
    with pytest.raises(NotFound):
        executor.resume("0" * 32)
