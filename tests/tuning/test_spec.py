"""Tuning specs: Shipyard's YAML and Katib's Experiment, every bad field refused with its name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from shipyard.errors import InvalidInput
from shipyard.tuning import TuningSpec
from shipyard.tuning.spec import make_pruner, make_sampler

KATIB = """
apiVersion: kubeflow.org/v1beta1
kind: Experiment
metadata:
  name: random-forest
spec:
  objective:
    type: maximize
    goal: 0.99
    objectiveMetricName: accuracy
    additionalMetricNames: [f1]
  algorithm:
    algorithmName: multivariate-tpe
    algorithmSettings:
      - {name: n_startup_trials, value: "5"}
      - {name: random_state, value: "7"}
  earlyStopping:
    algorithmName: medianstop
    algorithmSettings:
      - {name: min_trials_required, value: "3"}
      - {name: start_step, value: "2"}
  parallelTrialCount: 2
  maxTrialCount: 30
  maxFailedTrialCount: 4
  parameters:
    - name: lr
      parameterType: double
      feasibleSpace: {min: "0.001", max: "0.3", distribution: logUniform}
    - name: depth
      parameterType: int
      feasibleSpace: {min: "2", max: "10", step: "2"}
    - name: optimizer
      parameterType: categorical
      feasibleSpace: {list: [sgd, adam]}
    - name: batch
      parameterType: discrete
      feasibleSpace: {list: ["16", "32", "64"]}
  trialTemplate:
    primaryContainerName: training-container
  trial: tests.tuning.objectives:quadratic
"""


def base(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "t",
        "objective": {"metric": "acc"},
        "parameters": [{"name": "x", "type": "float", "low": 0, "high": 1}],
    }
    return {**spec, **changes}


def test_katib_experiment_reads_as_the_same_spec(tmp_path: Path) -> None:
    path = tmp_path / "katib.yaml"
    path.write_text(KATIB)
    spec = TuningSpec.load(path)
    assert spec.name == "random-forest" and spec.objective.metric == "accuracy"
    assert spec.objective.goal == 0.99 and spec.objective.additional_metrics == ["f1"]
    assert (spec.parallel_trials, spec.max_trials, spec.max_failed_trials) == (2, 30, 4)
    assert spec.algorithm.name == "multivariate-tpe" and spec.algorithm.seed == 7
    assert spec.algorithm.settings == {"n_startup_trials": 5}
    assert spec.early_stopping.settings == {"n_startup_trials": 3, "n_warmup_steps": 2}
    lr, depth, optimizer, batch = spec.parameters
    assert (lr.type, lr.low, lr.high, lr.log) == ("float", 0.001, 0.3, True)
    assert (depth.type, depth.low, depth.high, depth.step) == ("int", 2, 10, 2)
    assert optimizer.choices == ["sgd", "adam"] and batch.choices == [16, 32, 64]
    assert spec.trial == "tests.tuning.objectives:quadratic"
    sampler = make_sampler(spec)
    assert isinstance(sampler, optuna.samplers.TPESampler) and sampler._multivariate
    pruner = make_pruner(spec)
    assert isinstance(pruner, optuna.pruners.MedianPruner) and pruner._n_warmup_steps == 2
    assert TuningSpec.parse(__import__("yaml").safe_load(spec.to_yaml())) == spec  # round trip


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("random", optuna.samplers.RandomSampler),
        ("tpe", optuna.samplers.TPESampler),
        ("cmaes", optuna.samplers.CmaEsSampler),
        ("sobol", optuna.samplers.QMCSampler),
        ("qmc", optuna.samplers.QMCSampler),
        ("nsga2", optuna.samplers.NSGAIISampler),
        ("bayesianoptimization", optuna.samplers.GPSampler),
    ],
)
def test_every_algorithm_is_optunas(name: str, cls: type) -> None:
    assert isinstance(make_sampler(TuningSpec.parse(base(algorithm={"name": name}))), cls)


@pytest.mark.parametrize(
    ("early", "cls"),
    [
        ("median", optuna.pruners.MedianPruner),
        ("hyperband", optuna.pruners.HyperbandPruner),
        ("asha", optuna.pruners.SuccessiveHalvingPruner),
        ("none", optuna.pruners.NopPruner),
    ],
)
def test_every_early_stopping_is_optunas(early: str, cls: type) -> None:
    assert isinstance(make_pruner(TuningSpec.parse(base(early_stopping={"name": early}))), cls)


def p(**fields: Any) -> dict[str, Any]:
    return {"name": "lr", "type": "float", "low": 0.0, "high": 1.0, **fields}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"parameters": []}, "search space is empty"),
        ({"parameters": [p(low=0.5, high=0.1)]}, "parameter 'lr': low 0.5 is greater than high 0.1"),
        ({"parameters": [p(low=0.0, log=True)]}, "parameter 'lr': a log scale needs low > 0"),
        ({"parameters": [p(low=None)]}, "parameter 'lr': float needs both `low` and `high`"),
        ({"parameters": [p(step=-1)]}, "parameter 'lr': step must be > 0"),
        ({"parameters": [p(type="int", low=0.5)]}, "parameter 'lr': int low must be a whole number"),
        ({"parameters": [p(type="categorical", low=None, high=None)]}, "needs a non-empty `choices`"),
        ({"parameters": [p(), p()]}, "parameter 'lr' is defined twice"),
        (
            {"parameters": [p(condition={"opt": ["adam"]})]},
            "names 'opt', which is not a parameter defined before",
        ),
        (
            {
                "parameters": [
                    {"name": "opt", "type": "categorical", "choices": ["sgd"]},
                    p(condition={"opt": ["adam"]}),
                ]
            },
            "names ['adam'], which are not among 'opt'",
        ),
        ({"algorithm": {"name": "hillclimb"}}, "unknown algorithm 'hillclimb'"),
        ({"algorithm": {"name": "grid"}}, "parameter 'x': grid search needs a `step`"),
        ({"algorithm": {"name": "tpe", "settings": {"n_startup": 3}}}, "setting(s) n_startup unknown"),
        ({"early_stopping": {"name": "bandit"}}, "unknown early stopping 'bandit'"),
        ({"max_trials": 0}, "max_trials"),
        ({"objective": {"metric": "a", "metrics": ["b"]}}, "give either `metric`"),
        ({"objective": {"metrics": ["a", "b"], "directions": ["maximize"]}}, "one entry of `directions`"),
        (
            {
                "objective": {"metrics": ["a", "b"], "directions": ["maximize", "minimize"]},
                "early_stopping": {"name": "median"},
            },
            "early stopping works on a single objective",
        ),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        TuningSpec.parse(base(**changes))
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("logUniform", "normal"), "parameter 'lr' has distribution 'normal'"),
        (("parameterType: int", "parameterType: integer"), "parameter 'depth' has parameterType 'integer'"),
        (("parallelTrialCount", "nasConfig: {}\n  parallelTrialCount"), "nasConfig are not supported"),
    ],
)
def test_katib_fields_shipyard_cannot_run_are_named(edit: tuple[str, str], message: str) -> None:
    import yaml

    with pytest.raises(InvalidInput, match=message):
        TuningSpec.parse(yaml.safe_load(KATIB.replace(*edit, 1)))


def test_a_spec_file_that_is_not_yaml_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed")
    with pytest.raises(InvalidInput, match="bad.yaml.*not valid YAML"):
        TuningSpec.load(path)
