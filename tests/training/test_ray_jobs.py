"""The same training jobs on a real local Ray (Ray Train's TorchTrainer): two workers, rank-0 tracking,
checkpoints in the run, and a raising worker named by rank."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import shipyard
from shipyard import training
from shipyard.errors import TrainingFailed
from shipyard.tracking import RunStatus
from tests.training import jobs


def test_two_ray_workers_train_as_one_job(ray_cluster: object) -> None:
    job = training.run(jobs.fit, workers=2, executor="ray", checkpoint_every=4, name="on-ray")
    assert job.value["world"] == 2 and job.value["rank"] == 0 and job.value["loss"] < 0.012
    run = shipyard.get_run(job.run_id)
    assert run.status is RunStatus.FINISHED and run.params == {"lr": "0.05"}
    assert [m.step for m in shipyard.metric_history(job.run_id, "loss")] == list(range(8))
    paths = {a.path for a in shipyard.get_client().list_artifacts(job.run_id, "")}
    assert {"checkpoints/latest.json", "checkpoints/step-000000007.pt"} <= paths
    assert training.recorded_spec(job.run_id, shipyard.get_settings()).executor == "ray"


def test_a_raising_ray_worker_fails_the_job_naming_its_rank(ray_cluster: object) -> None:
    with pytest.raises(TrainingFailed, match=r"rank 1 failed: ValueError: bad batch at epoch 1"):
        training.run(jobs.fit, workers=2, executor="ray", raise_at=1, name="ray-raises")
    assert shipyard.get_run(name="ray-raises", experiment="training").status is RunStatus.FAILED


def test_a_script_runs_on_ray_workers_too(ray_cluster: object, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    script = Path(__file__).with_name("train_script.py")
    job = training.run_script(script, ["--epochs", "2", "--marks", str(marks)], workers=2, executor="ray")
    (result,) = [json.loads(p.read_text()) for p in marks.glob("result-*.json")]
    assert result["world"] == 2 and (marks / "run_id").read_text() == job.run_id
    assert shipyard.get_run(job.run_id).status is RunStatus.FINISHED
