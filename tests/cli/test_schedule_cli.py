"""``shipyard pipeline schedule``, ``shipyard schedules …`` and ``shipyard scheduler --once`` end to end."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from shipyard.config import Settings
from shipyard.pipelines import ScheduleClient, compile_pipeline
from shipyard.tracking import get_client
from tests.cli.test_cli import run_cli
from tests.pipelines import executor_components

TARGET = "tests.pipelines.executor_components:realistic"


def test_schedule_list_pause_resume_delete(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys,
        "pipeline",
        "schedule",
        TARGET,
        "--cron",
        "0 * * * *",
        "-p",
        "n=12",
        "--catchup",
        "all",
        "--json",
    )
    created = json.loads(out)
    assert code == 0 and created["name"] == "realistic" and created["parameters"] == {"n": 12}
    assert created["catchup"] == "all" and created["paused"] is False and "spec_yaml" not in created
    code, out, _ = run_cli(
        capsys,
        "pipeline",
        "schedule",
        TARGET,
        "--cron",
        "30 9 * * 1-5",
        "--name",
        "weekdays",
        "--timezone",
        "Europe/Berlin",
        "--no-cache",
    )
    assert code == 0 and "scheduled 'weekdays'" in out and "next run 20" in out

    code, out, _ = run_cli(capsys, "schedules", "list")
    assert code == 0 and "weekdays" in out and "Europe/Berlin" in out and "30 9 * * 1-5" in out
    assert run_cli(capsys, "schedules", "pause", "weekdays")[:2] == (0, "paused 'weekdays'\n")
    code, out, _ = run_cli(capsys, "schedules", "list", "--json")
    listed = {s["name"]: s for s in json.loads(out)}
    assert listed["weekdays"]["paused"] is True and listed["weekdays"]["cache"] is False
    code, out, _ = run_cli(capsys, "schedules", "resume", "weekdays")
    assert code == 0 and out.startswith("resumed 'weekdays'; next run ")
    assert run_cli(capsys, "schedules", "delete", "weekdays")[0] == 0
    code, out, _ = run_cli(capsys, "schedules", "list", "--json")
    assert [s["name"] for s in json.loads(out)] == ["realistic"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["pipeline", "schedule", TARGET, "--cron", "0 25 * * *"],
            2,
            "cron expression '0 25 * * *' is invalid",
        ),
        (
            ["pipeline", "schedule", TARGET, "--cron", "@daily", "--timezone", "Nowhere/City"],
            2,
            "Nowhere/City",
        ),
        (["pipeline", "schedule", TARGET, "--cron", "@daily", "-p", "m=1"], 2, "no parameter 'm'"),
        (["pipeline", "schedule", "missing.yaml", "--cron", "@daily"], 2, "does not exist"),
        (["schedules", "pause", "nightly"], 3, "no schedule named 'nightly'; schedules: (none)"),
        (["schedules", "delete", "nightly"], 3, "no schedule named 'nightly'"),
    ],
)
def test_errors_are_one_line_with_their_exit_code(
    capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    got, _, err = run_cli(capsys, *args)
    assert got == code and message in err and err.count("\n") == 1


def test_duplicate_name_exits_4(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "pipeline", "schedule", TARGET, "--cron", "@daily")[0] == 0
    code, _, err = run_cli(capsys, "pipeline", "schedule", TARGET, "--cron", "@hourly")
    assert code == 4 and "'realistic' already exists" in err and "--name" in err


def test_scheduler_once_runs_what_is_due(capsys: pytest.CaptureFixture[str], settings: Settings) -> None:
    code, out, _ = run_cli(capsys, "scheduler", "--once")
    assert code == 0 and out == "no schedule is due\n"
    client = ScheduleClient(get_client(settings))
    client.create(
        compile_pipeline(executor_components.realistic), "@hourly", now=datetime(2026, 1, 5, tzinfo=UTC)
    )
    client.create(compile_pipeline(executor_components.realistic), "@hourly", name="later")  # not due yet
    code, out, _ = run_cli(capsys, "scheduler", "--once")
    [line] = out.splitlines()
    assert code == 0 and line.startswith("realistic ") and ": succeeded run " in line
    run_id = line.rsplit(" ", 1)[-1]
    assert get_client(settings).get_run(run_id).status.value == "FINISHED"
    code, out, _ = run_cli(capsys, "schedules", "list", "--json")
    listed = {s["name"]: s for s in json.loads(out)}
    assert (listed["realistic"]["last_run_id"], listed["realistic"]["last_status"]) == (run_id, "succeeded")
    assert listed["later"]["last_run_id"] is None
    assert run_cli(capsys, "scheduler", "--once")[1] == "no schedule is due\n"  # the missed ticks ran once


def test_scheduler_once_exits_non_zero_when_a_run_failed(
    capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    past = datetime(2026, 1, 5, tzinfo=UTC)
    ScheduleClient(get_client(settings)).create(
        compile_pipeline(executor_components.failing), "@hourly", name="broken", now=past
    )
    code, out, err = run_cli(capsys, "scheduler", "--once")
    # --once runs the latest missed tick (the last whole hour), not the first one missed
    assert code == 1 and re.fullmatch(
        r"broken \S+ \d\d:00 UTC: failed run \w{32} \(step\(s\) boom failed\)\n", out
    )
    assert err == "error: scheduled runs failed: broken\n"


def test_scheduler_loop_stops_cleanly_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "shipyard.cli", "scheduler", "--poll-interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().startswith("scheduler running")
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0 and out == "scheduler stopped\n" and err == ""
