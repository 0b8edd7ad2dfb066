"""The user's own modules import from where the command runs, in the driver and in its workers, and a
compiled spec remembers its project folder for a run or scheduler started elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import console

PIPELINE = """
import sys

from shipyard.pipelines import component, pipeline


@component
def double(x: int) -> int:
    return 2 * x


@component
def add(a: int, b: int) -> int:
    return a + b


@pipeline(name="tiny")
def tiny(x: int = 3) -> None:
    add(a=double(x=x).output, b=x)


if __name__ == "__main__":
    from shipyard.pipelines import compile_pipeline
    from shipyard.pipelines.executors import LocalExecutor

    result = LocalExecutor().run(compile_pipeline(tiny), {})
    print(result.status.value, sorted((s, r.status.value) for s, r in result.steps.items()))
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "mypipes").mkdir(parents=True)
    (root / "mypipes" / "__init__.py").write_text("")
    (root / "mypipes" / "pipe.py").write_text(PIPELINE)
    return root


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only what the command itself finds
    return console(*args, cwd=cwd, env=env, timeout=180)


def test_a_compiled_spec_runs_from_its_project_and_from_anywhere(project: Path, tmp_path: Path) -> None:
    compiled = _run("pipeline", "compile", "mypipes.pipe:tiny", "-o", "p.yaml", cwd=project)
    assert compiled.returncode == 0, compiled.stderr
    assert f"project_dir: {project}" in (project / "p.yaml").read_text()
    here = _run("pipeline", "run", "p.yaml", "--no-cache", cwd=project)
    assert here.returncode == 0 and "No module named" not in here.stdout + here.stderr, here.stdout
    assert here.stdout.count("succeeded") >= 2
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    there = _run("pipeline", "run", str(project / "p.yaml"), "--no-cache", cwd=elsewhere)
    assert there.returncode == 0, there.stdout + there.stderr
    assert there.stdout.count("succeeded") >= 2


def test_python_dash_m_and_the_cli_share_the_step_cache(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    command = [sys.executable, "-m", "mypipes.pipe"]
    first = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=180)
    assert first.returncode == 0 and first.stdout.startswith("succeeded"), first.stdout + first.stderr
    again = _run("pipeline", "run", "mypipes.pipe:tiny", "--json", cwd=project)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count('"cached"') == 2, again.stdout


def test_a_module_that_cannot_be_found_is_named_with_where_it_was_looked_for(
    project: Path, tmp_path: Path
) -> None:
    assert _run("pipeline", "compile", "mypipes.pipe:tiny", "-o", "p.yaml", cwd=project).returncode == 0
    spec = project / "p.yaml"
    spec.write_text(spec.read_text().replace(f"project_dir: {project}", f"project_dir: {tmp_path / 'gone'}"))
    done = _run("pipeline", "run", str(spec), "--no-cache", cwd=tmp_path)
    assert done.returncode != 0
    text = done.stdout + done.stderr
    assert "no module named 'mypipes'" in text and str(tmp_path / "gone") in text and "PYTHONPATH" in text


def test_a_schedule_made_in_the_project_runs_from_a_scheduler_started_elsewhere(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first scheduled tick used to fail with "No module named ..." when the scheduler ran elsewhere."""
    from datetime import UTC, datetime

    from shipyard.pipelines import ScheduleClient, compile_pipeline
    from shipyard.tracking import get_client

    monkeypatch.syspath_prepend(str(project))
    try:
        from mypipes.pipe import tiny  # type: ignore[import-not-found]

        spec = compile_pipeline(tiny)
    finally:  # other tests' projects have a mypipes of their own
        for name in [m for m in sys.modules if m.split(".")[0] == "mypipes"]:
            del sys.modules[name]
    assert spec.project_dir == str(project)
    ScheduleClient(get_client()).create(
        spec, "@hourly", name="tiny-hourly", now=datetime(2026, 1, 5, tzinfo=UTC)
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = _run("scheduler", "--once", cwd=elsewhere)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tiny-hourly" in done.stdout and ": succeeded run " in done.stdout, done.stdout
