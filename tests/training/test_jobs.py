"""Distributed training jobs on torch's elastic launcher, for real: two gloo workers on this machine's CPUs,
a worker killed and the group restarted from the checkpoint, a worker that raises, capacity refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import shipyard
from shipyard import training
from shipyard.config import get_settings
from shipyard.errors import InvalidInput, TrainingFailed
from shipyard.processes import usable_cpus
from shipyard.store.artifacts import ArtifactStore
from shipyard.tracking import RunStatus
from tests.training import jobs

needs_two_cpus = pytest.mark.skipif(usable_cpus() < 2, reason="two workers need two CPUs")


@needs_two_cpus
def test_two_workers_reach_the_loss_of_one_and_log_from_rank_zero_only() -> None:
    one = training.run(jobs.fit, workers=1, name="one")
    two = training.run(jobs.fit, workers=2, name="two", checkpoint_every=4)
    assert one.value["world"] == 1 and two.value["world"] == 2 and two.workers == 2
    # The noise floor of the data is 0.01: both fits reach it, within 10% of each other.
    assert one.value["loss"] < 0.012 and two.value["loss"] < 0.012
    assert two.value["loss"] == pytest.approx(one.value["loss"], rel=0.1)
    run = shipyard.get_run(two.run_id)
    assert run.status is RunStatus.FINISHED
    assert run.tags["shipyard.training"] == "job" and run.tags["shipyard.training.workers"] == "2"
    assert run.params == {"lr": "0.05"}
    # One point an epoch: rank 1's calls were dropped, not added.
    assert [m.step for m in shipyard.metric_history(two.run_id, "loss")] == list(range(8))
    assert [m.step for m in shipyard.metric_history(two.run_id, "rank_loss")] == list(range(8))
    paths = {a.path for a in shipyard.get_client().list_artifacts(two.run_id, "")}
    assert {"training/job.json", "checkpoints/latest.json", "checkpoints/step-000000003.pt"} <= paths


@needs_two_cpus
def test_log_all_ranks_gives_each_rank_a_run_of_its_own() -> None:
    job = training.run(jobs.fit, workers=2, epochs=2, log_all_ranks=True, name="ranks")
    child = shipyard.get_run(name="ranks-rank-1", experiment="training")
    assert child.parent_run_id == job.run_id and child.tags["shipyard.training.rank"] == "1"
    assert child.status is RunStatus.FINISHED
    assert len(shipyard.metric_history(child.run_id, "rank_loss")) == 2
    assert len(shipyard.metric_history(job.run_id, "rank_loss")) == 2  # rank 0's


@needs_two_cpus
def test_a_killed_worker_restarts_the_group_from_the_latest_checkpoint(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    uninterrupted = training.run(jobs.fit, workers=2, name="whole")
    job = training.run(
        jobs.fit, workers=2, max_restarts=1, checkpoint_every=2, die_at=5, pids=str(pids), name="killed"
    )
    assert job.value["start"] == 4  # checkpoints after epochs 1 and 3; killed in 5
    # Same data, same seeds, resumed from the exact state: the same model as a job never interrupted.
    assert job.value["loss"] == pytest.approx(uninterrupted.value["loss"], rel=1e-6)
    assert sorted(p.name for p in pids.iterdir()) == ["0-0.pid", "0-1.pid", "1-0.pid", "1-1.pid"]
    assert shipyard.get_run(job.run_id).status is RunStatus.FINISHED
    started = [m.value for m in shipyard.metric_history(job.run_id, "started_at")]
    assert sorted(started) == [0.0, 4.0]


@needs_two_cpus
def test_a_worker_that_raises_fails_the_job_naming_its_rank_and_stops_the_others(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    with pytest.raises(TrainingFailed, match=r"rank 1 failed: ValueError: bad batch at epoch 2"):
        training.run(jobs.fit, workers=2, raise_at=2, pids=str(pids), name="raises")
    run = shipyard.get_run(name="raises", experiment="training")
    assert run.status is RunStatus.FAILED
    store = ArtifactStore.configured(get_settings(), run.artifact_uri)
    text = store.read_bytes("traceback.txt").decode()
    assert "ValueError: bad batch at epoch 2" in text and "jobs.py" in text  # the worker's own traceback
    for path in pids.iterdir():  # no worker outlives the job
        assert jobs.gone(int(path.read_text())), f"worker {path.name} outlived the job"


def test_more_workers_than_cpus_is_refused_naming_both_numbers() -> None:
    cpus = usable_cpus()
    with pytest.raises(
        InvalidInput, match=rf"workers={cpus + 1} need {cpus + 1} CPUs .* gives this process {cpus}"
    ):
        training.run(jobs.fit, workers=cpus + 1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"workers": 0}, "workers must be an integer >= 1"),
        ({"backend": "mpi"}, "backend must be one of gloo, nccl"),
        ({"backend": "nccl", "device": "cpu"}, "backend 'nccl' runs on CUDA"),
        ({"executor": "slurm"}, "executor must be one of local, ray"),
        ({"resources": {"tpu": 1}}, r"unknown keys \['tpu'\]"),
        ({"nnodes": 2}, "needs master_addr and master_port"),
    ],
)
def test_bad_settings_are_refused_by_name(options: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        training.run(jobs.fit, **options)


def test_a_function_the_workers_cannot_import_is_refused() -> None:
    with pytest.raises(InvalidInput, match="define it at module level"):
        training.run(lambda: None)


def test_outside_a_job_the_context_is_a_job_of_one_and_checkpoints_go_to_the_active_run() -> None:
    ctx = training.context()
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.distributed) == (0, 1, True, False)
    with shipyard.start_run("notebook") as run:
        assert training.latest_checkpoint() is None
        training.save_checkpoint({"w": [1.0, 2.0]}, 3)
        saved = training.latest_checkpoint()
    assert saved is not None and saved.step == 3 and saved.state == {"w": [1.0, 2.0]}
    assert run.run_id


def test_mixed_precision_turns_autocast_on_in_the_workers() -> None:
    job = training.run(jobs.precision, workers=1, mixed_precision=True)
    assert job.value == {"enabled": True, "dtype": "torch.bfloat16"}  # the CPU's autocast type
    plain = training.run(jobs.precision, workers=1)
    assert plain.value["enabled"] is False


cuda_devices = torch.cuda.device_count() if torch.cuda.is_available() else 0


@pytest.mark.skipif(cuda_devices < 1, reason="needs a CUDA device (torch.cuda.is_available())")
def test_an_nccl_job_trains_on_the_gpus() -> None:
    workers = min(2, cuda_devices)
    job = training.run(jobs.fit, workers=workers, backend="nccl", device="cuda", mixed_precision=True)
    assert job.value["world"] == workers and job.value["loss"] < 0.02


def test_cuda_workers_beyond_the_gpus_are_refused_naming_both_numbers() -> None:
    with pytest.raises(
        InvalidInput,
        match=rf"workers={cuda_devices + 1} need {cuda_devices + 1} GPUs but this machine has {cuda_devices}",
    ):
        training.run(jobs.fit, workers=cuda_devices + 1, device="cuda", resources={"cpu": 0.1})


@needs_two_cpus
def test_each_worker_samples_its_process_into_the_job_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_SYSTEM_METRICS_INTERVAL", "0.2")
    job = training.run(jobs.fit, workers=2, epochs=4, pause_s=0.3, system_metrics=True, name="sampled")
    metrics = shipyard.get_run(job.run_id).metrics
    for rank in (0, 1):
        assert metrics[f"system/rank{rank}/memory_rss_mb"] > 10  # a worker that imported torch
        assert f"system/rank{rank}/cpu_percent" in metrics
    assert "system/memory_percent" in metrics  # the machine's, from rank 0
