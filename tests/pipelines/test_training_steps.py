"""``@component(workers=N)``: a pipeline step that runs as a data-parallel training job on the training
launcher (real gloo workers on this machine's CPUs), nested under the step's run."""

from __future__ import annotations

import pytest

from shipyard.config import Settings
from shipyard.errors import PipelineDefinitionError
from shipyard.pipelines import PipelineSpec, compile_pipeline, component
from shipyard.pipelines.executors import LocalExecutor, StepStatus
from shipyard.processes import usable_cpus
from shipyard.tracking import RunStatus, get_client
from tests.pipelines import training_components as comps


def test_the_workers_option_is_compiled_into_the_spec_and_read_back() -> None:
    spec = compile_pipeline(comps.distributed)
    assert spec.steps["train-ddp"].workers == 2 and spec.steps["report"].workers == 1
    again = PipelineSpec.from_yaml(spec.to_yaml())
    assert again.steps["train-ddp"].workers == 2
    assert "workers" not in spec.to_yaml().split("report:")[1]  # one worker: the spec says nothing


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_a_bad_worker_count_is_refused_naming_it(workers: object) -> None:
    with pytest.raises(PipelineDefinitionError, match=f"workers must be an integer >= 1, got {workers!r}"):
        component(workers=workers)(comps.fit)


@pytest.mark.skipif(usable_cpus() < 2, reason="two workers need two CPUs")
def test_a_two_worker_step_trains_and_passes_rank_zeros_result_downstream(settings: Settings) -> None:
    result = LocalExecutor(max_parallel=1, settings=settings).run(compile_pipeline(comps.distributed))
    assert result.status is StepStatus.SUCCEEDED, {k: s.error for k, s in result.steps.items()}
    loss = result.steps["train-ddp"].outputs["output"]
    assert 0 < loss < 0.05  # the data's noise floor is 0.01; four epochs come close
    assert result.steps["report"].outputs["output"] == 2  # the model file rank 0 wrote says two workers
    client = get_client(settings)
    step_run = client.get_run(result.steps["train-ddp"].run_id)
    jobs = client.runs_with_tag("shipyard.training", "job", limit=10)
    assert len(jobs) == 1
    job = jobs[0]
    assert job.parent_run_id == step_run.run_id and job.experiment_id == step_run.experiment_id
    assert job.status is RunStatus.FINISHED and job.tags["shipyard.training.workers"] == "2"
    assert [m.step for m in client.metric_history(job.run_id, "loss")] == list(range(4))
    report = client.get_run(result.steps["report"].run_id)
    assert report.metrics["final_loss"] == pytest.approx(loss)


def test_a_step_wider_than_the_machine_fails_naming_both_numbers(settings: Settings) -> None:
    result = LocalExecutor(max_parallel=1, settings=settings).run(compile_pipeline(comps.oversubscribed))
    step = result.steps["too-wide"]
    assert result.status is StepStatus.FAILED and step.status is StepStatus.FAILED
    assert f"workers=64 need 64 CPUs (1 each) but this machine gives this process {usable_cpus()}" in (
        step.error or ""
    ), step.error
