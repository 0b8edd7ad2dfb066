"""Nothing acknowledged is lost: kill -9, SIGTERM, interpreter exit and concurrent writer processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import shipyard
from shipyard import RunStatus
from tests.conftest import make_settings


def _spawn(code: str, home: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "SHIPYARD_HOME": str(home), "PYTHONPATH": str(Path(__file__).parents[2])}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_line(proc: subprocess.Popen[str], expected: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(expected):
            return line.strip()
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"child never printed {expected!r}: {proc.stderr.read() if proc.stderr else ''}")


def test_flushed_metrics_survive_kill_9(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = _spawn(
        """
        import time, shipyard
        run = shipyard.start_run("crash", name="victim")
        for i in range(5000):
            run.log_metric("loss", 1.0 / (i + 1), step=i)
        run.log_param("p", 1)
        run.flush()
        print("FLUSHED", run.run_id, flush=True)
        i = 5000
        while True:  # keep logging unflushed points until killed
            run.log_metric("loss", 0.0, step=i); i += 1
            if i % 1000 == 0: time.sleep(0.01)
        """,
        home,
    )
    run_id = _wait_for_line(proc, "FLUSHED").split()[1]
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    client = shipyard.get_client(make_settings(home))
    steps = [p.step for p in client.metric_history(run_id, "loss")]
    assert steps[:5000] == list(range(5000))
    assert client.get_run(run_id).params == {"p": "1"}


def test_sigterm_ends_run_killed_and_flushes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = _spawn(
        """
        import time, shipyard
        run = shipyard.start_run("term")
        for i in range(100):
            run.log_metric("m", float(i), step=i)
        print("READY", run.run_id, flush=True)
        time.sleep(60)
        """,
        home,
    )
    run_id = _wait_for_line(proc, "READY").split()[1]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM
    client = shipyard.get_client(make_settings(home))
    run = client.get_run(run_id)
    assert run.status is RunStatus.KILLED
    assert len(client.metric_history(run_id, "m")) == 100


@pytest.mark.parametrize(
    ("tail", "expected"),
    [("pass", RunStatus.FINISHED), ("raise SystemExit(0)", RunStatus.FINISHED), ("1 / 0", RunStatus.FAILED)],
)
def test_interpreter_exit_ends_open_runs(tmp_path: Path, tail: str, expected: RunStatus) -> None:
    home = tmp_path / "home"
    proc = _spawn(
        f"""
        import shipyard
        run = shipyard.start_run("exit")
        shipyard.log_metric("m", 3.0)
        print("RUN", run.run_id, flush=True)
        {tail}
        """,
        home,
    )
    run_id = _wait_for_line(proc, "RUN").split()[1]
    proc.wait(timeout=60)
    run = shipyard.get_client(make_settings(home)).get_run(run_id)
    assert run.status is expected
    assert run.metrics == {"m": 3.0}


def test_concurrent_processes_lose_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    writers, points = 4, 3000
    code = """
        import sys, shipyard
        worker, points = int(sys.argv[1]), int(sys.argv[2])
        for r in range(3):
            with shipyard.start_run("shared", name=f"w{worker}-r{r}") as run:
                run.log_params({"worker": worker, "r": r})
                for i in range(points):
                    run.log_metric("m", float(i), step=i)
                    if i % 500 == 0:
                        run.flush()
                        run.set_tag("progress", i)
                run.log_text(f"worker {worker}", "who.txt")
        print("DONE", flush=True)
    """
    procs = [_spawn(code, home, str(w), str(points)) for w in range(writers)]
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        assert "DONE" in out
    client = shipyard.get_client(make_settings(home))
    found = client.search_runs("shared", max_results=100)
    assert len(found) == writers * 3
    for run in found:
        assert run.status is RunStatus.FINISHED
        assert [p.step for p in client.metric_history(run.run_id, "m")] == list(range(points))
        assert [a.path for a in client.list_artifacts(run.run_id)] == ["who.txt"]
