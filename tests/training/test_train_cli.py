"""`shipyard train`: a script as a two-worker job; `kill -9` of the launcher takes its workers with it, and
`shipyard train --resume RUN` finishes the job from its latest checkpoint, in the same run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import shipyard
from shipyard.processes import usable_cpus
from shipyard.tracking import RunStatus
from tests.cli.test_cli import run_cli
from tests.training import jobs

SCRIPT = Path(__file__).with_name("train_script.py")


def _wait_for(path: Path, process: subprocess.Popen[bytes], budget_s: float = 120.0) -> None:
    deadline = time.monotonic() + budget_s
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"the job ended (exit {process.returncode}) before {path.name} appeared")
        if time.monotonic() > deadline:
            pytest.fail(f"{path.name} did not appear in {budget_s:g} s")
        time.sleep(0.05)


@pytest.mark.skipif(usable_cpus() < 2, reason="two workers need two CPUs")
def test_a_job_whose_launcher_is_killed_resumes_from_its_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marks = tmp_path / "marks"
    command = [
        sys.executable, "-m", "shipyard.cli", "train", str(SCRIPT), "--workers", "2", "--name", "killed",
        "--", "--epochs", "8", "--pause", "0.4", "--marks", str(marks),
    ]  # fmt: skip
    launcher = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_for(marks / "checkpoint-1", launcher)
        # Killed once the first attempt's points are flushed (each second): those, the store keeps.
        run_id = (marks / "run_id").read_text()
        deadline = time.monotonic() + 30
        while "started_at" not in shipyard.get_run(run_id).metrics and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(launcher.pid, signal.SIGKILL)
        launcher.wait(timeout=30)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    workers = [int(p.name.split("-")[2]) for p in marks.glob("pid-*")]
    assert len(workers) == 2
    assert all(jobs.gone(pid) for pid in workers), "a worker outlived its launcher"
    assert not (marks / "result-0.json").exists()  # it was killed before the end

    code, out, err = run_cli(capsys, "train", "--resume", run_id, "--json")
    assert code == 0, err
    assert json.loads(out)["run_id"] == run_id
    resumed = [json.loads(p.read_text()) for p in marks.glob("result-*.json")]
    assert len(resumed) == 1 and resumed[0]["start"] >= 2 and resumed[0]["loss"] < 0.012
    run = shipyard.get_run(run_id)
    assert run.status is RunStatus.FINISHED and run.name == "killed"
    started = sorted(m.value for m in shipyard.metric_history(run_id, "started_at"))
    assert started[0] == 0 and started[-1] == resumed[0]["start"]
    assert [m.step for m in shipyard.metric_history(run_id, "loss")][-1] == 7


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train"], "give a training script (or --resume RUN)"),
        (["train", "missing.py"], "training script 'missing.py' is not a file"),
        (["train", "x.py", "--resume", "abc"], "give the script or --resume"),
        (["train", "--resume", "no-such-run"], "no-such-run"),
        (["train", "x.py", "--workers", "999"], "workers=999 need 999 CPUs"),
    ],
)
def test_bad_train_commands_exit_non_zero_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "x.py").write_text("print('hi')\n")
    code, _, err = run_cli(capsys, *args)
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1, err


def test_resume_refuses_a_run_that_is_not_a_training_job(capsys: pytest.CaptureFixture[str]) -> None:
    with shipyard.start_run("plain", name="not-a-job") as run:
        pass
    code, _, err = run_cli(capsys, "train", "--resume", run.run_id)
    assert code == 2 and "is not a training job" in err


def test_a_job_whose_launcher_still_runs_is_not_resumed_by_another(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with shipyard.start_run("training", name="live", tags={"shipyard.training": "job"}) as run:
        run.log_text(json.dumps({"script": str(SCRIPT)}), "training/job.json")
        code, _, err = run_cli(capsys, "train", "--resume", run.run_id)
    assert code == 4 and f"training job {run.run_id} is still running (process {os.getpid()}@" in err
