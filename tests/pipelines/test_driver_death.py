"""Whatever a pipeline driver started dies with it, even when it is killed with SIGKILL; a run whose driver
is alive is not resumed beside it, one whose driver died is."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from shipyard.errors import Conflict
from shipyard.pipelines.executors import LocalExecutor, StepStatus
from shipyard.tracking import RunStatus, get_client
from tests.cli.test_cli import run_cli
from tests.conftest import make_settings

REPO = Path(__file__).parents[2]

DRIVER = (
    "import sys\n"
    "from shipyard.pipelines import compile_pipeline\n"
    "from shipyard.pipelines.executors import LocalExecutor\n"
    "from tests.pipelines.lifecycle_components import napping\n"
    "LocalExecutor(max_parallel=1).run(compile_pipeline(napping), {'marker': sys.argv[1]})\n"
)


def start_driver(home: Path, marker: Path, **env: str) -> subprocess.Popen[bytes]:
    """A pipeline driver process whose one step is sleeping once ``marker`` exists."""
    environ = {**os.environ, "SHIPYARD_HOME": str(home), "PYTHONPATH": str(REPO), **env}
    return subprocess.Popen([sys.executable, "-c", DRIVER, str(marker)], env=environ, cwd=REPO)


def wait_for(marker: Path, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        assert process.poll() is None, f"the driver exited early with code {process.returncode}"
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.05)


def kill_all(processes: list[psutil.Process]) -> None:
    """Clean up whatever a failed test left running (by pid, the ones it started)."""
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()


def test_a_killed_drivers_worker_fork_server_and_resource_tracker_die_with_it(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    driver = start_driver(tmp_path / "home", marker)
    started: list[psutil.Process] = []
    try:
        wait_for(marker, driver)
        started = psutil.Process(driver.pid).children(recursive=True)
        commands = [" ".join(p.cmdline()) for p in started]
        assert any("forkserver" in c for c in commands) and any("resource_tracker" in c for c in commands)
        worker_pid, step_child_pid = map(int, marker.read_text().split())
        assert {worker_pid, step_child_pid} <= {p.pid for p in started}

        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
        _, alive = psutil.wait_procs(started, timeout=5)
        assert not alive, f"still running 5 s after the driver was killed: {[p.cmdline() for p in alive]}"
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        kill_all(started)


BEAT = {"heartbeat_interval": "0.1", "heartbeat_timeout": "1"}


def test_a_run_whose_driver_is_alive_is_not_resumed_and_one_whose_driver_died_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home, marker = tmp_path / "home", tmp_path / "started"
    beat_env = {f"SHIPYARD_{k.upper()}": v for k, v in BEAT.items()}
    driver = start_driver(home, marker, **beat_env)
    started: list[psutil.Process] = []
    settings = make_settings(home, **BEAT)
    client = get_client(settings)
    try:
        wait_for(marker, driver)
        started = psutil.Process(driver.pid).children(recursive=True)
        (run_id,) = [r.run_id for r in client.search_runs(None) if r.parent_run_id is None]
        time.sleep(1.5)  # past the heartbeat timeout: a live driver has beaten meanwhile
        with pytest.raises(Conflict, match=rf"pipeline run {run_id} is still running: .* {driver.pid}@"):
            LocalExecutor(max_parallel=1, settings=settings).resume(run_id)
        for name, value in beat_env.items():
            monkeypatch.setenv(name, value)
        code, _, err = run_cli(capsys, "pipeline", "resume", run_id)
        assert code == 4 and "is still running" in err and len(err.strip().splitlines()) == 1, err

        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
        psutil.wait_procs(started, timeout=5)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        kill_all(started)

    time.sleep(1.5)  # the dead driver's heartbeat goes stale
    assert client.get_run(run_id).lost
    result = LocalExecutor(max_parallel=1, settings=settings).resume(run_id)
    assert result.status is StepStatus.SUCCEEDED
    original = client.get_run(run_id)
    assert original.status is RunStatus.KILLED and not original.lost
