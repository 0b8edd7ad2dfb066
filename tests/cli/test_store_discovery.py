"""A command run anywhere inside a project finds the project's store, and says which store it used."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import shipyard
from shipyard.config import Settings
from tests.conftest import console


def shipyard_command(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env["SHIPYARD_CEILING_DIRECTORIES"] = os.environ["SHIPYARD_CEILING_DIRECTORIES"]  # from conftest
    return console(*args, cwd=cwd, env=env)


def test_runs_logged_at_the_project_root_are_listed_from_a_sub_folder(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "src" / "jobs").mkdir(parents=True)
    settings = Settings.load(environ={"SHIPYARD_CEILING_DIRECTORIES": str(tmp_path)}, cwd=project)
    with shipyard.start_run("demo", name="at-root", settings=settings):
        pass

    listed = shipyard_command("runs", "list", "demo", "--json", cwd=project / "src" / "jobs")
    assert listed.returncode == 0, listed.stderr
    assert [r["name"] for r in json.loads(listed.stdout)] == ["at-root"]
    shown = shipyard_command("config", "show", "--json", cwd=project / "src" / "jobs")
    home = json.loads(shown.stdout)["home"]
    assert home["value"] == str(project / ".shipyard") and home["source"].startswith("found ")
    # Nothing was created in the sub-folder.
    assert not (project / "src" / "jobs" / ".shipyard").exists()


def test_empty_results_and_missing_records_say_which_store_was_read(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    listed = shipyard_command("models", "list", cwd=elsewhere)
    assert listed.returncode == 0 and "no registered models in sqlite:///" in listed.stdout
    assert str(elsewhere / ".shipyard") in listed.stdout
    missing = shipyard_command("runs", "list", "demo", cwd=elsewhere)
    assert missing.returncode == 3 and missing.stderr.count("\n") == 1
    store = elsewhere / ".shipyard"
    assert "no experiment" in missing.stderr and f"looked in sqlite:///{store}" in missing.stderr


def test_models_show_gives_the_versions_metrics_and_lineage_names_a_missing_version(tmp_path: Path) -> None:
    import numpy as np
    from sklearn.tree import DecisionTreeClassifier

    project = tmp_path / "p"
    project.mkdir()
    settings = Settings.load(environ={"SHIPYARD_CEILING_DIRECTORIES": str(tmp_path)}, cwd=project)
    model = DecisionTreeClassifier().fit(np.eye(3), [0, 1, 0])
    with shipyard.start_run("e", settings=settings) as run:
        run.log_metric("accuracy", 0.93)
        info = shipyard.models.log(model, run=run, input_example=np.eye(3))
    shipyard.models.register(info.uri, "churn", settings=settings)
    shipyard.models.set_alias("churn", "champion", 1, settings=settings)
    shown = shipyard_command("models", "show", "churn@champion", "--history", cwd=project)
    assert shown.returncode == 0 and "metric accuracy" in shown.stdout and "0.93" in shown.stdout
    missing = shipyard_command("lineage", "models:/churn/9", cwd=project)
    assert missing.returncode == 3 and "model 'churn' has no version 9" in missing.stderr
