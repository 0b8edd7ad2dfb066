"""The CLI end to end: real store, real commands, exit codes and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import shipyard
from shipyard.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    out, err = capsys.readouterr()
    code = info.value.code if isinstance(info.value.code, int) else (0 if info.value.code is None else 1)
    return code, out, err


@pytest.fixture
def populated() -> list[str]:
    ids = []
    for i in range(3):
        with shipyard.start_run("cli", name=f"run-{i}") as run:
            run.log_params({"model": "rf" if i else "lr", "i": i})
            run.log_metric("acc", 0.8 + i / 10)
            run.set_tag("team", "x")
            ids.append(run.run_id)
    return ids


def test_experiments_and_runs_json(capsys: pytest.CaptureFixture[str], populated: list[str]) -> None:
    code, out, _ = run_cli(capsys, "experiments", "list", "--json")
    assert code == 0 and [e["name"] for e in json.loads(out)] == ["cli"]
    code, out, _ = run_cli(
        capsys,
        "runs",
        "search",
        "cli",
        "--filter",
        "metrics.acc > 0.85 or params.model = 'lr'",
        "--order-by",
        "metrics.acc desc",
        "--json",
    )
    found = json.loads(out)["runs"]
    assert code == 0 and [r["name"] for r in found] == ["run-2", "run-1", "run-0"]
    code, out, _ = run_cli(capsys, "runs", "show", "run-1", "--json")
    shown = json.loads(out)
    assert shown["run"]["params"] == {"model": "rf", "i": "1"} and shown["run"]["status"] == "FINISHED"


def test_tables_for_people(capsys: pytest.CaptureFixture[str], populated: list[str]) -> None:
    code, out, _ = run_cli(capsys, "runs", "compare", "run-0", "run-2")
    assert code == 0 and "params.model" in out and "metrics.acc" in out
    code, out, _ = run_cli(capsys, "runs", "list", "cli")
    assert code == 0 and "run-2" in out
    code, out, _ = run_cli(capsys, "config", "show")
    assert code == 0 and "db_url" in out and "SHIPYARD_HOME" in out


def test_delete_and_gc(capsys: pytest.CaptureFixture[str], populated: list[str]) -> None:
    assert run_cli(capsys, "runs", "delete", "run-0")[0] == 0
    code, out, _ = run_cli(capsys, "runs", "list", "cli", "--json")
    assert sorted(r["name"] for r in json.loads(out)) == ["run-1", "run-2"]
    code, out, _ = run_cli(capsys, "gc", "--json")
    assert code == 0 and json.loads(out)["runs"] == 1
    assert run_cli(capsys, "experiments", "delete", "cli")[0] == 0
    code, out, _ = run_cli(capsys, "gc", "--json")
    expected = {"runs": 2, "experiments": 1, "artifact_roots": 0, "dry_run": False, "kept": []}
    assert json.loads(out) == expected


def test_an_experiment_is_renamed_with_its_runs(
    capsys: pytest.CaptureFixture[str], populated: list[str]
) -> None:
    code, out, _ = run_cli(capsys, "experiments", "rename", "cli", "cli-2026")
    assert code == 0 and "to cli-2026" in out
    code, out, _ = run_cli(capsys, "runs", "list", "cli-2026", "--json")
    assert sorted(r["name"] for r in json.loads(out)) == ["run-0", "run-1", "run-2"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["runs", "show", "nope"], 3, "no run with id or name 'nope'"),
        (["runs", "search", "cli", "--filter", "metrics.acc >> 1"], 2, "position 13"),
        (["runs", "search", "missing-exp"], 3, "missing-exp"),
        (["experiments", "create", "cli"], 4, "already exists"),
        (["gc", "--older-than", "soon"], 2, "--older-than"),
        (["runs", "compare", "run-0"], 2, "at least two"),
        (["experiments", "rename", "missing-exp", "x"], 3, "missing-exp"),
        (["models", "rename", "no-model", "x"], 3, "no registered model named 'no-model'"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(
    capsys: pytest.CaptureFixture[str], populated: list[str], args: list[str], code: int, message: str
) -> None:
    got, _, err = run_cli(capsys, *args)
    assert got == code
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.slow(seconds=90)
def test_console_script_demo_runs_the_lifecycle_and_is_repeatable(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "shipyard"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "shipyard.cli"]
    printed = []
    for _ in range(2):
        done = subprocess.run([*command, "demo"], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert "done in" in done.stdout and "20 trials" in done.stdout, done.stdout
        printed.append(done.stdout)
    # The pipeline ran every step, twice; each tuned 20 trials as nested runs of its search.
    pipelines = shipyard.search_runs("demo", "tags.`shipyard.pipeline` = 'shipyard-demo'")
    assert len(pipelines) == 2 and all(r.status.value == "FINISHED" for r in pipelines)
    searches = shipyard.search_runs("demo", "tags.`shipyard.tuning.name` = 'demo-search'")
    assert len(searches) == 2
    trials = shipyard.search_runs("demo", f"attributes.parent_run_id = '{searches[0].run_id}'")
    assert len(trials) == 20 and {t.tags["shipyard.tuning.state"] for t in trials} <= {"COMPLETE", "PRUNED"}
    # Three registered versions: one per demo, and the retrained one. The first demo's drift (its shifted
    # traffic) fired the rule and retrained once; the second fired it within the cool-down and did not.
    assert [v.version for v in shipyard.models.list_versions("breast-cancer")] == [1, 2, 3]
    assert "retraining: succeeded: models:/breast-cancer/2 is now @challenger" in printed[0], printed[0]
    assert "retraining: cooling-down" in printed[1], printed[1]
    (retrained,) = shipyard.search_runs("retraining")
    assert retrained.tags["shipyard.retraining.outcome"] == "succeeded"
    retrained_version = shipyard.models.get("models:/breast-cancer/2")
    assert retrained_version.tags["shipyard.retraining.trigger"] == retrained.run_id
    champion = shipyard.models.get("models:/breast-cancer@champion")
    trained_by = shipyard.get_run(champion.run_id)  # the train-best step, which names its search
    assert trained_by.tags["tuning_run"] in {r.run_id for r in searches}
    loaded = shipyard.models.load("models:/breast-cancer@champion")
    assert loaded.predict(loaded.input_example()).shape == (5,)
    monitored = shipyard.search_runs("monitoring/breast-cancer")
    assert len(monitored) == 2
    drifted = {k.removeprefix("drift/") for k in monitored[0].metrics if k.startswith("drift/")}
    assert len(drifted) == 30 and monitored[0].metrics["drift_share"] > 0
    assert monitored[0].metrics["performance/accuracy"] > 0.9
    assert "mean radius" in done.stdout.split("drifted:")[1]
    # `shipyard ui` after the demo: its pipeline, runs, model, deployment and drift report are all there.
    import httpx

    from shipyard.config import get_settings
    from tests.conftest import platform_server

    with platform_server(get_settings()) as url, httpx.Client(base_url=url) as web:
        assert f'href="/ui/pipelines/runs/{pipelines[0].run_id}"' in web.get("/ui/pipelines").text
        assert web.get(f"/ui/pipelines/runs/{pipelines[0].run_id}").text.count("data-step=") >= 5
        assert ">demo</a>" in web.get("/ui/").text
        version_page = web.get(f"/ui/models/breast-cancer/versions/{champion.version}").text
        assert f'href="/ui/runs/{champion.run_id}"' in version_page
        deployment = web.get("/ui/deployments").text
        assert 'data-deployment="breast-cancer"' in deployment and "champion" in deployment
        assert 'href="/ui/monitoring/breast-cancer"' in web.get("/ui/monitoring").text
        assert web.get("/ui/monitoring/breast-cancer").status_code == 200


def test_debug_flag_shows_traceback() -> None:
    exe = Path(sys.executable).parent / "shipyard"
    done = subprocess.run(
        [str(exe), "--debug", "runs", "show", "nope"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 3 and "Traceback" in done.stderr


def test_corrupt_store_is_one_line_exit_5(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "shipyard.db").write_bytes(b"garbage, not sqlite" * 64)
    code, _, err = run_cli(capsys, "experiments", "list")
    assert code == 5
    assert "not a readable SQLite database" in err and err.count("\n") == 1


def test_models_commands(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    data = load_iris(as_frame=True)
    features = data.frame.drop(columns=["target"])
    model = LogisticRegression(max_iter=500).fit(features, data.target)
    with shipyard.start_run("cli-models"):
        info = shipyard.models.log(model, input_example=features.iloc[:3])
    assert run_cli(capsys, "models", "register", info.uri, "iris")[0] == 0
    assert run_cli(capsys, "models", "register", info.uri, "iris", "--tag", "k=v")[0] == 0
    assert run_cli(capsys, "models", "alias", "iris", "champion", "2")[0] == 0
    assert run_cli(capsys, "models", "stage", "iris", "2", "Production", "--reason", "ship it")[0] == 0
    code, out, _ = run_cli(capsys, "models", "list", "--json")
    assert code == 0 and json.loads(out)[0]["aliases"] == {"champion": 2}
    code, out, _ = run_cli(capsys, "models", "show", "iris@champion", "--history", "--json")
    shown = json.loads(out)
    assert shown["version"]["stage"] == "Production" and shown["version"]["tags"] == {"k": "v"}
    assert [e["action"] for e in shown["events"]] == ["register", "set_alias", "transition"]
    assert shown["events"][-1]["reason"] == "ship it"
    code, out, _ = run_cli(capsys, "models", "diff", "iris", "1", "2", "--json")
    assert code == 0 and json.loads(out)["left"]["version"] == 1
    archive = tmp_path / "iris.tar.gz"
    assert run_cli(capsys, "models", "export", "iris/2", "-o", str(archive))[0] == 0
    assert run_cli(capsys, "models", "import", str(archive), "--name", "iris-copy")[0] == 0
    code, out, _ = run_cli(capsys, "models", "versions", "iris-copy", "--json")
    assert [v["version"] for v in json.loads(out)] == [1]
    code, _, err = run_cli(capsys, "models", "delete", "iris/2")
    assert code == 4 and "champion" in err and err.count("\n") == 1
    assert run_cli(capsys, "models", "delete", "iris/2", "--force")[0] == 0
    code, _, err = run_cli(capsys, "models", "alias", "iris", "champion", "9")
    assert code == 3 and "no version 9" in err
    code, _, err = run_cli(capsys, "models", "register", "runs:/" + "0" * 32 + "/model", "x")
    assert code == 3 and "no run with id" in err
