"""``shipyard import mlflow SOURCE`` as a user runs it: the report, a dry run as JSON, a second run that
copies nothing, and one-line errors with their exit codes for sources that are not MLflow stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shipyard.tracking.client import TrackingClient
from tests.conftest import free_port, make_settings
from tests.importers.mlflow.conftest import MlflowStore

REPO = Path(__file__).resolve().parents[3]


def shipyard(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    environ.update(PYTHONPATH=str(REPO), SHIPYARD_HOME=str(home), **env)
    return subprocess.run(
        [sys.executable, "-m", "shipyard.cli", *args],
        cwd=home.parent,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_prints_its_report_and_a_second_run_copies_nothing(
    mlflow_stores: dict[str, MlflowStore], tmp_path: Path
) -> None:
    store = mlflow_stores["mlruns"]
    home = tmp_path / "home"
    runs = len(store.expected["runs"])
    first = shipyard(home, "import", "mlflow", store.uri)
    assert first.returncode == 0, first.stderr
    assert f"  copied {runs} runs" in first.stdout.splitlines()
    assert "experiment tags 'iris': Shipyard experiments have no tags: team" in first.stdout
    second = shipyard(home, "import", "mlflow", store.uri)
    assert second.returncode == 0, second.stderr
    assert f"  copied 0 runs ({runs} already imported)" in second.stdout.splitlines()
    shown = shipyard(home, "models", "show", "iris-clf")
    assert shown.returncode == 0 and "champion" in shown.stdout and "Staging" in shown.stdout


def test_dry_run_as_json_writes_nothing(mlflow_stores: dict[str, MlflowStore], tmp_path: Path) -> None:
    store = mlflow_stores["sqlite"]
    home = tmp_path / "home"
    done = shipyard(home, "import", "mlflow", store.uri, "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["dry_run"] is True and report["copied"]["runs"] == len(store.expected["runs"])
    assert report["copied"]["versions"] == 1
    tracking = TrackingClient(make_settings(home))
    assert all(not tracking.search_runs(e.experiment_id) for e in tracking.list_experiments())


@pytest.mark.parametrize(
    ("source", "code", "says"),
    [
        ("{tmp}/no-such-folder", 2, "does not exist"),
        ("{tmp}", 2, "is not an MLflow file store"),
        ("sqlite:///{tmp}/missing.db", 2, "no database file"),
        ("ftp://example.com/mlruns", 2, "give an MLflow tracking URI"),
        ("http://127.0.0.1:{port}", 5, "cannot reach the MLflow server"),
    ],
)
def test_bad_source_is_one_line_naming_it(tmp_path: Path, source: str, code: int, says: str) -> None:
    source = source.format(tmp=tmp_path, port=free_port())
    done = shipyard(tmp_path / "home", "import", "mlflow", source)
    assert done.returncode == code, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    assert source in done.stderr and says in done.stderr
    assert not (tmp_path / "missing.db").exists()  # SQLite was not left to create an empty store


def test_team_mode_is_refused_with_what_to_do(mlflow_stores: dict[str, MlflowStore], tmp_path: Path) -> None:
    done = shipyard(
        tmp_path / "home",
        "import",
        "mlflow",
        mlflow_stores["sqlite"].uri,
        SHIPYARD_TRACKING_URI=f"http://127.0.0.1:{free_port()}",
    )
    assert done.returncode == 2
    assert "writes the metadata database itself" in done.stderr and done.stderr.count("\n") == 1
