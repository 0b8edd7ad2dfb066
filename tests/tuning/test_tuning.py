"""Tuning end to end on the real stores: Optuna's samplers and pruners, trials as nested runs, failures,
goals, several objectives, parallel processes, Ray, and resuming after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest

import shipyard
from shipyard.config import Settings
from shipyard.errors import InvalidInput, NotFound
from shipyard.tracking import RunStatus
from shipyard.tuning import TuningSpec, resume, tune
from shipyard.tuning.runner import STATE_TAG
from tests.tuning import objectives

REPO = Path(__file__).resolve().parents[2]


def spec(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "quad",
        "objective": {"metric": "score", "direction": "maximize"},
        "parameters": [
            {"name": "x", "type": "float", "low": -5, "high": 5},
            {"name": "y", "type": "categorical", "choices": ["a", "b", "c"]},
        ],
        "algorithm": {"name": "tpe", "seed": 0},
        "max_trials": 12,
    }
    return {**base, **changes}


def test_every_trial_is_a_nested_run_and_the_parent_tracks_the_best(settings: Settings) -> None:
    result = tune(spec(), objectives.quadratic, settings=settings)
    assert result.state == "completed" and len(result.trials) == 12 and result.count("COMPLETE") == 12
    client = shipyard.get_client(settings)
    parent = client.get_run(result.run_id)
    assert parent.status is RunStatus.FINISHED and parent.tags[STATE_TAG] == "completed"
    assert parent.params["algorithm"] == "tpe" and parent.params["max_trials"] == "12"
    assert parent.metrics["best_score"] == pytest.approx(result.best_value)
    history = [m.value for m in client.metric_history(result.run_id, "best_score")]
    assert history == sorted(history) and history[-1] == result.best_value  # best so far never drops
    children = client.search_runs(["tuning"], f"tags.`shipyard.tuning.parent` = '{result.run_id}'")
    assert len(children) == 12
    best = client.get_run(result.best.run_id)  # type: ignore[union-attr]
    assert best.parent_run_id == result.run_id and best.tags[STATE_TAG] == "COMPLETE"
    assert float(best.params["x"]) == pytest.approx(result.best_params["x"])
    assert best.metrics["score"] == pytest.approx(result.best_value)
    trials = json.loads(client.read_artifact(result.run_id, "tuning/trials.json"))
    assert [t["number"] for t in trials] == list(range(12))
    report = client.read_artifact(result.run_id, "tuning/report.html").decode()
    assert "Optimization history" in report and "Parameter importances" in report


def test_the_same_seed_gives_the_same_trials_as_plain_optuna(settings: Settings) -> None:
    result = tune(spec(max_trials=15), objectives.quadratic, settings=settings)

    def plain(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -5, 5)
        y = trial.suggest_categorical("y", ["a", "b", "c"])
        return -((x - 2.0) ** 2) + {"a": 0.0, "b": 1.0, "c": 0.5}[y]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(plain, n_trials=15)
    assert [t.params for t in result.trials] == [t.params for t in study.trials]
    assert result.best_value == pytest.approx(study.best_value)


def test_median_stopping_prunes_bad_trials_and_records_their_curves(settings: Settings) -> None:
    pruned = spec(
        parameters=[{"name": "x", "type": "float", "low": 0, "high": 10}],
        algorithm={"name": "random", "seed": 3},
        early_stopping={"name": "median", "settings": {"n_startup_trials": 3, "n_warmup_steps": 1}},
        max_trials=20,
    )
    result = tune(pruned, objectives.learning_curve, settings=settings)
    stopped = [t for t in result.trials if t.state == "PRUNED"]
    assert stopped and result.count("COMPLETE") + len(stopped) == 20
    client = shipyard.get_client(settings)
    curve = client.metric_history(stopped[0].run_id, "score")  # type: ignore[arg-type]
    assert 2 <= len(curve) < 10 and [m.step for m in curve] == list(range(len(curve)))
    assert client.get_run(stopped[0].run_id).tags[STATE_TAG] == "PRUNED"  # type: ignore[arg-type]
    assert result.best is not None and result.best.params["x"] == max(
        t.params["x"] for t in result.trials if t.state == "COMPLETE"
    )


def test_a_failing_trial_is_recorded_and_the_search_goes_on(settings: Settings) -> None:
    flaky = spec(parameters=[{"name": "x", "type": "float", "low": 0, "high": 10}], max_trials=10)
    result = tune(flaky, objectives.flaky, settings=settings)
    failed = [t for t in result.trials if t.state == "FAIL"]
    assert failed and len(result.trials) == 10 and result.state == "completed"
    assert "RuntimeError: diverged at x=" in (failed[0].error or "")
    run = shipyard.get_client(settings).get_run(failed[0].run_id)  # type: ignore[arg-type]
    assert run.status is RunStatus.FAILED and "diverged" in run.tags["shipyard.tuning.error"]


def test_max_failed_trials_stops_the_search_and_fails_the_parent(settings: Settings) -> None:
    always = spec(parameters=[{"name": "x", "type": "float", "low": 6, "high": 10}], max_failed_trials=3)
    result = tune(always, objectives.flaky, settings=settings)
    assert result.state == "failed" and len(result.trials) == 3 and result.best is None
    assert shipyard.get_client(settings).get_run(result.run_id).status is RunStatus.FAILED
    with pytest.raises(NotFound, match="no complete trial"):
        _ = result.best_params


def test_the_objective_may_be_logged_and_must_be_reported(settings: Settings) -> None:
    simple = spec(parameters=[{"name": "x", "type": "int", "low": 1, "high": 4}], max_trials=3)
    logged = tune(simple, objectives.logs_only, settings=settings)
    assert all(t.values == [t.params["x"] * 2] for t in logged.trials)
    forgot = tune(simple, objectives.forgets, settings=settings)
    assert {t.state for t in forgot.trials} == {"FAIL"}
    assert "never reported the objective metric 'score'" in (forgot.trials[0].error or "")


def test_conditional_parameters_exist_only_when_their_condition_holds(settings: Settings) -> None:
    conditional = spec(
        parameters=[
            {"name": "y", "type": "categorical", "choices": ["a", "b", "c"]},
            {"name": "x", "type": "float", "low": -5, "high": 5, "condition": {"y": ["b"]}},
        ],
        algorithm={"name": "random", "seed": 1},
        max_trials=15,
    )

    def objective(trial: Any) -> float:
        return trial.params.get("x", 0.0)

    result = tune(conditional, objective, settings=settings)
    assert {t.params["y"] for t in result.trials} == {"a", "b", "c"}
    assert all(("x" in t.params) == (t.params["y"] == "b") for t in result.trials)


def test_reaching_the_goal_stops_the_search(settings: Settings) -> None:
    goal = spec(
        objective={"metric": "score", "direction": "maximize", "goal": -1.0},
        algorithm={"name": "random", "seed": 0},
        max_trials=200,
    )
    result = tune(goal, objectives.quadratic, settings=settings)
    assert result.state == "goal_reached" and len(result.trials) < 200
    assert result.trials[-1].value >= -1.0  # type: ignore[operator]
    assert all(t.value < -1.0 for t in result.trials[:-1])  # type: ignore[operator]


def test_several_objectives_give_a_pareto_front(settings: Settings) -> None:
    two = spec(
        objective={"metrics": ["accuracy", "latency"], "directions": ["maximize", "minimize"]},
        parameters=[{"name": "x", "type": "float", "low": 0, "high": 1}],
        algorithm={"name": "nsga2", "seed": 0},
        max_trials=10,
    )
    result = tune(two, objectives.two_objectives, settings=settings)
    assert result.best is None and len(result.pareto) == 10  # accuracy x vs latency x²: all trade off
    xs = sorted(t.params["x"] for t in result.pareto)
    assert xs == sorted(t.params["x"] for t in result.trials)


def test_grid_search_stops_when_the_grid_is_done(settings: Settings) -> None:
    grid = spec(
        parameters=[
            {"name": "x", "type": "float", "low": 0, "high": 4, "step": 1},
            {"name": "y", "type": "categorical", "choices": ["a", "b"]},
        ],
        algorithm={"name": "grid"},
        max_trials=50,
    )
    result = tune(grid, objectives.quadratic, settings=settings)
    assert len(result.trials) == 10
    assert sorted((t.params["x"], t.params["y"]) for t in result.trials) == [
        (x, y) for x in (0.0, 1.0, 2.0, 3.0, 4.0) for y in ("a", "b")
    ]
    assert result.best_params == {"x": 2.0, "y": "b"}


def test_parallel_trials_run_in_several_processes(settings: Settings) -> None:
    parallel = spec(
        parameters=[{"name": "x", "type": "float", "low": 0, "high": 1}], parallel_trials=2, max_trials=6
    )
    result = tune(parallel, objectives.sleepy, settings=settings)
    assert result.count("COMPLETE") == 6
    client = shipyard.get_client(settings)
    pids = {client.get_run(t.run_id).tags["pid"] for t in result.trials}  # type: ignore[arg-type]
    assert len(pids) == 2 and str(os.getpid()) not in pids


def test_a_local_function_cannot_go_to_worker_processes(settings: Settings) -> None:
    def local(trial: Any) -> float:
        return 1.0

    with pytest.raises(InvalidInput, match="cannot be sent to worker processes"):
        tune(spec(parallel_trials=2), local, settings=settings)


def test_trials_run_as_ray_tasks(settings: Settings, ray_cluster: object) -> None:
    on_ray = spec(executor="ray", parallel_trials=2, max_trials=6)
    result = tune(on_ray, objectives.quadratic, settings=settings)
    assert result.count("COMPLETE") == 6 and result.best is not None


def test_a_killed_search_resumes_where_it_stopped(settings: Settings, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(
        TuningSpec.parse(
            spec(
                parameters=[{"name": "x", "type": "float", "low": 0, "high": 1}],
                trial="tests.tuning.objectives:hangs_after_marker",
                max_trials=8,
            )
        ).to_yaml()
    )
    env = {**os.environ, "SHIPYARD_HOME": str(settings.home), "SHIPYARD_TEST_MARKER": str(marker)}
    code = "from shipyard.tuning import tune; tune(__import__('sys').argv[1])"
    process = subprocess.Popen([sys.executable, "-c", code, str(spec_file)], cwd=REPO, env=env)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert process.poll() is None and time.monotonic() < deadline, (
            "the tuning process never got to trial 3"
        )
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(30)

    client = shipyard.get_client(settings)
    (parent,) = client.search_runs(["tuning"], "tags.`shipyard.tuning.state` = 'running'")
    assert parent.status is RunStatus.RUNNING  # nobody ended it: the process died
    result = resume(parent.run_id, objectives.quadratic_x, settings=settings)
    states = [t.state for t in sorted(result.trials, key=lambda t: t.number)]
    assert states == ["COMPLETE"] * 3 + ["FAIL"] + ["COMPLETE"] * 4 and result.state == "completed"
    stale = client.get_run(result.trials[3].run_id)  # type: ignore[arg-type]
    assert stale.status is RunStatus.FAILED and stale.tags["shipyard.tuning.error"] == "stale"
    assert client.get_run(parent.run_id).status is RunStatus.FINISHED
    with pytest.raises(InvalidInput, match="already finished"):
        resume(parent.run_id, objectives.quadratic_x, settings=settings)


def test_the_best_configuration_is_retrained_and_registered_as_challenger(settings: Settings) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.tree import DecisionTreeClassifier

    from shipyard.tuning import retrain_best

    data = load_breast_cancer(as_frame=True)
    features, target = data.frame.drop(columns=["target"]), data.frame["target"]
    depth = spec(parameters=[{"name": "x", "type": "int", "low": 1, "high": 4}], algorithm={"name": "grid"})
    result = tune(depth, objectives.quadratic, settings=settings)  # best x = 2

    def train(params: dict[str, Any], run: Any) -> DecisionTreeClassifier:
        model = DecisionTreeClassifier(max_depth=params["x"], random_state=0).fit(features, target)
        run.log_metric("train_accuracy", model.score(features, target))
        return model

    retrained = retrain_best(
        result,
        train,
        register_as="cancer",
        input_example=features.head(3),
        baseline=features,
        settings=settings,
    )
    assert retrained.model.max_depth == 2 and retrained.version is not None
    version = shipyard.models.get("models:/cancer@challenger", settings=settings)
    assert version.version == retrained.version.version and version.tags["tuning_run"] == result.run_id
    run = shipyard.get_client(settings).get_run(retrained.run_id)
    assert run.parent_run_id == result.run_id and run.params["x"] == "2" and "train_accuracy" in run.metrics
    loaded = shipyard.models.load("models:/cancer@challenger", settings=settings)
    assert loaded.predict(features.head(3)).tolist() == retrained.model.predict(features.head(3)).tolist()


def test_a_trial_may_be_a_pipeline(settings: Settings) -> None:
    grid = spec(
        objective={"metric": "score", "direction": "maximize", "additional_metrics": ["distance"]},
        parameters=[{"name": "x", "type": "float", "low": 1, "high": 3, "step": 1}],
        algorithm={"name": "grid"},
    )
    result = tune(grid, "tests.tuning.objectives:quadratic_pipeline", settings=settings)
    assert result.count("COMPLETE") == 3 and result.best_params == {"x": 2.0} and result.best_value == 0.0
    client = shipyard.get_client(settings)
    trial_run = client.get_run(result.best.run_id)  # type: ignore[union-attr]
    pipeline_run = client.get_run(trial_run.tags["shipyard.tuning.pipeline_run"])
    assert pipeline_run.params["x"] == "2.0" and trial_run.metrics["distance"] == 0.0
    bad = spec(parameters=[{"name": "y", "type": "float", "low": 0, "high": 1}], max_trials=1)
    failed = tune(bad, objectives.quadratic_pipeline, settings=settings)
    assert "takes no parameter 'y'" in (failed.trials[0].error or "")


def test_the_timeout_stops_starting_trials(settings: Settings) -> None:
    slow = spec(
        parameters=[{"name": "x", "type": "float", "low": 0, "high": 1}], timeout_s=0.5, max_trials=100
    )
    result = tune(slow, objectives.sleepy, settings=settings, report=False)  # each trial ~0.2 s of CPU
    assert result.state == "timeout" and 1 <= len(result.trials) < 100
    trials = sorted(result.trials, key=lambda t: t.number)
    # Each trial was started before the deadline (none after it), and the search went on until then: a
    # trial that ended with time to spare was followed by another (on a loaded machine the first alone may
    # take the whole half second).
    assert sum(t.seconds for t in trials[:-1]) < 0.5
    assert len(trials) >= 2 or trials[0].seconds >= 0.25
    assert result.count("COMPLETE") == len(result.trials)  # the trial running at the deadline finished
    assert shipyard.get_client(settings).get_run(result.run_id).tags[STATE_TAG] == "timeout"
