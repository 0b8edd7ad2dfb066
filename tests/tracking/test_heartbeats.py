"""A run whose process dies without ending it (kill -9) shows as LOST after the heartbeat timeout, and
``shipyard gc --stale`` ends it KILLED; a live run keeps beating and is never LOST."""

from __future__ import annotations

import json
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
from shipyard.tracking.staleness import STALE_TAG, mark_stale_runs
from tests.cli.test_cli import run_cli
from tests.conftest import make_settings

BEAT = {"heartbeat_interval": "0.1", "heartbeat_timeout": "1"}


def test_a_killed_writers_run_shows_lost_and_gc_stale_marks_it_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    env = {
        **os.environ,
        "SHIPYARD_HOME": str(home),
        "SHIPYARD_HEARTBEAT_INTERVAL": "0.1",
        "SHIPYARD_HEARTBEAT_TIMEOUT": "1",
    }
    code = """
        import time, shipyard
        run = shipyard.start_run("crash", name="victim")
        run.log_metric("loss", 0.5)
        run.flush()
        print(run.run_id, flush=True)
        time.sleep(600)
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        assert run_id, "the child never started its run"
        client = shipyard.get_client(make_settings(home, **BEAT))
        time.sleep(1.5)  # longer than the timeout: a live process has beaten meanwhile
        alive = client.get_run(run_id)
        assert alive.status is RunStatus.RUNNING and not alive.lost
        assert alive.pid == proc.pid and alive.host
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    time.sleep(1.5)
    lost = client.get_run(run_id)
    assert lost.status is RunStatus.RUNNING and lost.lost and lost.display_status == "LOST"
    (found,) = client.search_runs(["crash"])
    assert found.lost

    for name, value in BEAT.items():
        monkeypatch.setenv(f"SHIPYARD_{name.upper()}", value)
    code_, out, _ = run_cli(capsys, "runs", "list", "crash")
    assert code_ == 0 and "LOST" in out
    code_, out, _ = run_cli(capsys, "runs", "show", run_id)
    assert code_ == 0 and f"LOST (RUNNING, but its process {proc.pid}@" in out
    code_, out, _ = run_cli(capsys, "gc", "--stale", "--json")
    assert code_ == 0 and json.loads(out)["runs"] == [run_id]

    killed = client.get_run(run_id)
    assert killed.status is RunStatus.KILLED and not killed.lost
    assert killed.end_time == lost.heartbeat_at and "stopped beating" in killed.tags[STALE_TAG]
    assert killed.metrics["loss"] == 0.5  # what was flushed is kept
    assert mark_stale_runs(client) == []


def test_a_live_run_keeps_beating_and_is_never_lost(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", **BEAT)
    client = shipyard.get_client(settings)
    with shipyard.start_run("live", settings=settings) as run:
        first = client.get_run(run.run_id).heartbeat_at
        for _ in range(3):
            time.sleep(0.6)  # 1.8 s in all: past the 1 s timeout
            record = client.get_run(run.run_id)
            assert not record.lost and record.display_status == "RUNNING"
        assert mark_stale_runs(client) == []
        assert record.heartbeat_at is not None and first is not None and record.heartbeat_at > first
    time.sleep(1.2)
    ended = client.get_run(run.run_id)
    assert ended.status is RunStatus.FINISHED and not ended.lost
