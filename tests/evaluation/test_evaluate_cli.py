"""``shipyard evaluate`` on the command line, and threshold files (plain, MLflow's spelling, a gates file)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pandas as pd
import pytest
import typer
import yaml
from typer.testing import CliRunner

import shipyard
from shipyard.cli import evaluate_cmd
from shipyard.data.thresholds import check_thresholds, parse_thresholds
from shipyard.errors import InvalidInput, ModelValidationFailed
from shipyard.evaluation import MetricRule, MetricThreshold, load_thresholds

app = typer.Typer()
app.command("evaluate")(evaluate_cmd.evaluate)
app.command("unused")(lambda: None)  # two commands: the first word names the command, as under `shipyard`


def test_the_table_and_json_name_each_metric(classifiers: pd.DataFrame, tmp_path: Path) -> None:
    classifiers.to_parquet(tmp_path / "eval.parquet")
    args = ["evaluate", "clf@champion", str(tmp_path / "eval.parquet"), "--targets", "label"]
    shown = CliRunner().invoke(app, [*args, "--segments", "region", "--baseline", "2"])
    assert shown.exit_code == 0, shown.output
    assert "Evaluation of models:/clf/1" in shown.output and "By region" in shown.output
    assert "accuracy" in shown.output and "delta" in shown.output

    printed = CliRunner().invoke(app, [*args, "--json", "--experiment", "cli-eval"])
    assert printed.exit_code == 0, printed.output
    report = json.loads(printed.output)
    assert report["model"]["model_version"] == "models:/clf/1" and 0 < report["model"]["metrics"]["f1"] <= 1
    run = shipyard.get_run(report["run_id"])
    assert shipyard.get_client().get_experiment(run.experiment_id).name == "cli-eval"


def test_a_failed_threshold_prints_the_verdicts_then_fails(classifiers: pd.DataFrame, tmp_path: Path) -> None:
    classifiers.to_csv(tmp_path / "eval.csv", index=False)
    # A gates file works as it is: its metrics are the thresholds.
    (tmp_path / "gates.yaml").write_text(
        yaml.safe_dump({"label": "label", "metrics": {"accuracy": {"min": 0.99}}})
    )
    result = CliRunner().invoke(
        app,
        ["evaluate", "models:/clf/1", str(tmp_path / "eval.csv"), "--targets", "label", "--thresholds",
         str(tmp_path / "gates.yaml")],
    )  # fmt: skip
    assert isinstance(result.exception, ModelValidationFailed)
    assert "FAIL" in result.output and "< min 0.99" in result.output
    assert "accuracy" in str(result.exception)


def test_the_help_examples_parse() -> None:
    command = typer.main.get_command(app).commands["evaluate"]  # type: ignore[attr-defined]
    help_text = command.help or ""
    examples = [line.strip() for line in help_text.split("Examples:")[1].splitlines() if line.strip()]
    assert len(examples) == 4
    for example in examples:
        with command.make_context("evaluate", shlex.split(example)[2:], resilient_parsing=False):
            pass


def test_bare_baselines_are_the_candidates_versions_and_aliases() -> None:
    assert evaluate_cmd.baseline_uri("models:/churn/3", "champion") == "models:/churn@champion"
    assert evaluate_cmd.baseline_uri("models:/churn/3", "2") == "models:/churn/2"
    assert evaluate_cmd.baseline_uri("models:/churn/3", "other@prod") == "models:/other@prod"
    with pytest.raises(InvalidInput, match="needs a full URI"):
        evaluate_cmd.baseline_uri(f"runs:/{'a' * 32}/model", "champion")


def test_mlflow_thresholds_read_as_bounds() -> None:
    higher = MetricThreshold.model_validate(
        {
            "threshold": 0.8,
            "min_absolute_change": 0.01,
            "min_relative_change": 0.05,
            "greater_is_better": True,
        }
    )
    assert (higher.min, higher.min_delta, higher.min_relative_delta) == (0.8, 0.01, 0.05)
    lower = MetricThreshold.model_validate(
        {"threshold": 0.3, "min_absolute_change": 0.01, "greater_is_better": False}
    )
    assert (lower.max, lower.max_delta, lower.min) == (0.3, -0.01, None)
    # The gates' own rule type is accepted as it is.
    assert parse_thresholds({"f1": MetricRule(min=0.5)})["f1"].min == 0.5


def test_relative_changes_divide_by_the_baseline() -> None:
    rules = parse_thresholds({"log_loss": {"max_relative_delta": 0.1}})
    (ok,) = check_thresholds(rules, {"log_loss": 0.54}, {"log_loss": 0.5})
    (worse,) = check_thresholds(rules, {"log_loss": 0.56}, {"log_loss": 0.5})
    assert ok.passed and not worse.passed
    assert (
        worse.describe() == "log_loss relative_delta +0.12 > max_relative_delta +0.1 (0.56 vs baseline 0.5)"
    )


def test_bad_threshold_files_are_named(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("accuracy: {min: 0.9, above: 1}\n")
    with pytest.raises(InvalidInput, match=r"t.yaml: validation_thresholds.accuracy: above: Extra inputs"):
        load_thresholds(path)
    path.write_text("accuracy: {}\n")
    with pytest.raises(InvalidInput, match="give at least one of min, max"):
        load_thresholds(path)
