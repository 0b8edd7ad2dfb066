"""``shipyard tune run`` as a process: a clean exit says nothing extra; SIGTERM or Ctrl-C stop the search,
take every process it started with it, and print how to resume it."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

import shipyard
from shipyard.config import Settings
from shipyard.tracking import RunStatus
from shipyard.tuning.runner import STATE_TAG

REPO = Path(__file__).resolve().parents[2]
SHIPYARD = [sys.executable, "-c", "from shipyard.cli import main; main()"]

SPEC = """
name: {name}
trial: tests.tuning.objectives:{trial}
objective: {{metric: score, direction: maximize}}
parameters:
  - {{name: x, type: float, low: 0, high: 1}}
algorithm: {{name: random, seed: 0}}
max_trials: {max_trials}
parallel_trials: 2
"""


def tune_process(tmp_path: Path, trial: str, max_trials: int) -> tuple[subprocess.Popen[str], Path]:
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(SPEC.format(name="quad", trial=trial, max_trials=max_trials))
    marker = tmp_path / "marker"
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(tmp_path / "home"),
        "SHIPYARD_TEST_MARKER": str(marker),
        "PYTHONPATH": str(REPO),
    }
    process = subprocess.Popen(
        [*SHIPYARD, "tune", "run", str(spec_file)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, marker


def test_a_clean_parallel_search_exits_without_noise(tmp_path: Path) -> None:
    process, _ = tune_process(tmp_path, "quadratic_x", max_trials=4)
    try:
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "completed: 4 trials" in out
    assert "Exception ignored" not in err and "Traceback" not in err, err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_stopped_search_takes_its_workers_along_and_says_how_to_resume(tmp_path: Path, signum: int) -> None:
    process, marker = tune_process(tmp_path, "hangs_after_marker", max_trials=8)
    started: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 90
        while not marker.exists():
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "the search never got to trial 3"
            time.sleep(0.05)
        started = psutil.Process(process.pid).children(recursive=True)
        commands = [" ".join(p.cmdline()) for p in started]
        assert any("forkserver" in c for c in commands) and any("resource_tracker" in c for c in commands)

        process.send_signal(signum)
        _, err = process.communicate(timeout=30)
        _, alive = psutil.wait_procs(started, timeout=5)
        assert not alive, f"still running after the search stopped: {[p.cmdline() for p in alive]}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for child in started:
            with contextlib.suppress(psutil.Error):
                child.kill()

    assert process.returncode == 128 + signum, err
    found = re.search(r"shipyard tune resume ([0-9a-f]{32})", err)
    assert found, err
    assert "Exception ignored" not in err and "Traceback" not in err, err
    settings = Settings.load(environ={"SHIPYARD_HOME": str(tmp_path / "home")})
    parent = shipyard.get_client(settings).get_run(found.group(1))
    assert parent.status is RunStatus.KILLED and parent.tags[STATE_TAG] == "stopped"
    trials = shipyard.get_client(settings).search_runs(None, f"attributes.parent_run_id = '{parent.run_id}'")
    assert trials and all(t.status is not RunStatus.RUNNING for t in trials)
