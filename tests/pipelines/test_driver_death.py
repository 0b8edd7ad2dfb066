"""Whatever a pipeline driver started dies with it, even when it is killed with SIGKILL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

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
