"""Model audits on real registered models: per-segment performance and fairness (checked against
fairlearn's own metrics), the CLI as a gate, the outcome on the version, schedules and gates.yaml's rule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LinearRegression, LogisticRegression

import shipyard
from shipyard.audit import audit_model
from shipyard.config import Settings
from shipyard.data.fairness import AuditRules, parse_audit_rules
from shipyard.errors import InvalidInput
from tests.cli.test_cli import run_cli

fairlearn_metrics = pytest.importorskip("fairlearn.metrics")


def biased(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    """Rows whose label leans on the group: a model trained on them selects the south more often."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["north", "south"], size=n, p=[0.6, 0.4])
    south = (group == "south").astype(float)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    label = (x1 + 0.9 * south + 0.5 * rng.normal(size=n) > 0.4).astype(int)
    age = rng.choice(["<30", "30-60", ">60"], size=n)
    return pd.DataFrame(
        {"x1": x1, "x2": x2, "south": south, "region": group, "age_band": age, "approved": label}
    )


@pytest.fixture
def registered(settings: Settings, tmp_path: Path) -> Path:
    """``loans`` version 1 (a logistic regression on x1, x2 and south) and its evaluation data on disk."""
    frame = biased()
    features = frame[["x1", "x2", "south"]]
    model = LogisticRegression().fit(features, frame["approved"])
    with shipyard.start_run("train", settings=settings) as run:
        info = shipyard.models.log(model, run=run, input_example=features.head(3))
    shipyard.models.register(info.uri, "loans", settings=settings)
    path = tmp_path / "eval.parquet"
    biased(600, seed=1).to_parquet(path, index=False)
    return path


STRICT = {
    "label": "approved",
    "segments": ["region", "age_band"],
    "min_rows": 50,
    "performance": {"accuracy": {"min": 0.7}},
    "fairness": {
        "demographic_parity_difference": {"max": 0.1},
        "equalized_odds_difference": {"max": 0.5},
        "predictive_parity_difference": {"max": 0.5},
    },
}


def test_the_fairness_gaps_are_fairlearns(settings: Settings, registered: Path) -> None:
    result = audit_model(
        "models:/loans/1", registered, rules=parse_audit_rules(STRICT), record=False, settings=settings
    )
    frame = pd.read_parquet(registered)
    model = shipyard.models.load("models:/loans/1", settings=settings)
    predicted = model.predict(frame)
    y, region = frame["approved"], frame["region"]
    (by_region, by_age) = result.outcome.segments
    assert by_region.column == "region" and [g.value for g in by_region.groups] == ["north", "south"]
    gaps = by_region.fairness
    assert gaps["demographic_parity_difference"] == pytest.approx(
        fairlearn_metrics.demographic_parity_difference(y, predicted, sensitive_features=region)
    )
    assert gaps["equalized_odds_difference"] == pytest.approx(
        fairlearn_metrics.equalized_odds_difference(y, predicted, sensitive_features=region)
    )
    from sklearn.metrics import precision_score

    precision = fairlearn_metrics.MetricFrame(
        metrics=precision_score, y_true=y, y_pred=predicted, sensitive_features=region
    )
    assert gaps["predictive_parity_difference"] == pytest.approx(precision.difference())
    # The model leans on the group: the south is selected far more often, and the parity rule says so.
    failed = {(c.segment, c.rule) for c in result.outcome.failed}
    assert ("region", "demographic_parity_difference") in failed
    assert gaps["demographic_parity_difference"] > 0.2
    # Per group, the metrics as the evaluation computes them.
    north = by_region.groups[0]
    mask = (region == "north").to_numpy()
    assert north.rows == int(mask.sum())
    assert north.metrics["accuracy"] == pytest.approx(float((predicted[mask] == y[mask]).mean()))
    assert {g.value for g in by_age.groups} == {"<30", "30-60", ">60"}


def test_the_cli_fails_as_a_gate_and_records_the_audit_on_the_version(
    capsys: pytest.CaptureFixture[str], settings: Settings, registered: Path, tmp_path: Path
) -> None:
    rules = tmp_path / "audit.yaml"
    rules.write_text(yaml.safe_dump(STRICT), encoding="utf-8")
    report = tmp_path / "audit.html"
    code, out, err = run_cli(
        capsys,
        "audit",
        "model",
        "models:/loans/1",
        "--data",
        str(registered),
        "--rules",
        str(rules),
        "-o",
        str(report),
        "--json",
    )
    assert code == 1, err
    document = json.loads(out)
    assert document["passed"] is False and document["version"] == "models:/loans/1"
    version = shipyard.models.get("models:/loans/1", settings=settings)
    assert version.tags["shipyard.audit.status"] == "failed"
    assert "region: demographic_parity_difference" in version.tags["shipyard.audit.failed"]
    run = shipyard.get_run(version.tags["shipyard.audit.run"])
    assert run.metrics["fairness/region/demographic_parity_difference"] > 0.2
    stored = json.loads(get_artifact(settings, run.run_id, "audit/audit.json"))
    assert stored["segments"][0]["column"] == "region"
    assert "demographic_parity_difference" in report.read_text(encoding="utf-8")

    # Lenient rules pass: exit 0, and the version says so.
    lenient = {**STRICT, "fairness": {"demographic_parity_difference": {"max": 0.9}}}
    rules.write_text(yaml.safe_dump(lenient), encoding="utf-8")
    code, out, err = run_cli(
        capsys, "audit", "model", "models:/loans/1", "--data", str(registered), "--rules", str(rules)
    )
    assert code == 0, err + out
    assert "passed" in out
    assert shipyard.models.get("models:/loans/1", settings=settings).tags["shipyard.audit.status"] == "passed"


def get_artifact(settings: Settings, run_id: str, path: str) -> str:
    from shipyard.tracking import get_client

    return get_client(settings).read_artifact(run_id, path).decode("utf-8")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--segments", "regoin", "--label", "approved"], "segment column 'regoin' is not in the data"),
        (["--segments", "region", "--label", "aproved"], "label column 'aproved' is not in the data"),
        (["--segments", "region"], "needs the label column"),
        (["--label", "approved"], "at least one segment column"),
        (["--segments", "region", "--label", "approved", "--positive", "7"], "positive label '7'"),
    ],
)
def test_bad_columns_and_labels_are_one_line(
    capsys: pytest.CaptureFixture[str], registered: Path, args: list[str], message: str
) -> None:
    code, _, err = run_cli(capsys, "audit", "model", "models:/loans/1", "--data", str(registered), *args)
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_bad_rules_are_named() -> None:
    for rules, message in [
        ({"fairness": {"parity": {"max": 0.1}}}, "fairness metric 'parity' is unknown"),
        ({"fairness": {"demographic_parity_difference": {"max": -1}}}, "fairness"),
        ({"segmnts": ["a"]}, "segmnts"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            parse_audit_rules(rules)


def test_a_regressor_is_audited_on_performance_per_group(settings: Settings, tmp_path: Path) -> None:
    frame = biased()
    model = LinearRegression().fit(frame[["x1", "x2"]], frame["x1"] * 2 + frame["south"])
    with shipyard.start_run("train", settings=settings) as run:
        info = shipyard.models.log(model, run=run, input_example=frame[["x1", "x2"]].head(3))
    frame["target"] = frame["x1"] * 2 + frame["south"]
    rules = AuditRules(
        label="target",
        segments=["region"],
        performance={"mae": {"max": 0.5}},
        fairness={"demographic_parity_difference": {"max": 0.1}},
    )
    result = audit_model(info.uri, frame.drop(columns=["approved"]), rules=rules, settings=settings)
    assert result.outcome.task == "regression" and result.version_uri is None and result.run_id
    checks = {(c.segment, c.rule): c for c in result.outcome.checks}
    # The model never saw the group: its intercept splits the south's offset (1.0) by the groups' shares,
    # so the north is about 0.4 off and the south about 0.6.
    assert checks["region=south", "mae"].passed is False and checks["region=north", "mae"].passed is True
    assert checks["region", "demographic_parity_difference"].detail == "a regressor: not measured"


def test_values_are_escaped_in_the_report(settings: Settings, registered: Path) -> None:
    frame = pd.read_parquet(registered)
    frame["region"] = np.where(frame["region"] == "north", "<script>alert(1)</script>", "south")
    result = audit_model(
        "models:/loans/1", frame, segments=["region"], label="approved", record=False, settings=settings
    )
    assert "<script>" not in result.html and "&lt;script&gt;" in result.html


def test_a_scheduled_audit_runs_as_a_pipeline_on_the_alias(
    capsys: pytest.CaptureFixture[str], settings: Settings, registered: Path, tmp_path: Path
) -> None:
    from shipyard.audit.pipeline import auditing
    from shipyard.pipelines import ScheduleClient, compile_pipeline
    from shipyard.pipelines.executors import LocalExecutor
    from shipyard.tracking import get_client

    shipyard.models.set_alias("loans", "champion", 1, settings=settings)
    rules = tmp_path / "audit.yaml"
    rules.write_text(yaml.safe_dump({**STRICT, "fairness": {}}), encoding="utf-8")
    code, _, err = run_cli(
        capsys,
        "audit",
        "schedule",
        "models:/loans@champion",
        "--data",
        str(registered),
        "--rules",
        str(rules),
        "--cron",
        "0 6 * * 1",
    )
    assert code == 0, err
    scheduled = ScheduleClient(get_client(settings)).get("audit-loans")
    assert scheduled.parameters["segments"] == "region,age_band"
    result = LocalExecutor(settings=settings).run(compile_pipeline(auditing), dict(scheduled.parameters))
    assert result.status.value == "succeeded", result.steps
    assert shipyard.models.get("models:/loans/1", settings=settings).tags["shipyard.audit.status"] == "passed"
    # With the fairness rule back, the scheduled run fails, naming it.
    strict = {**scheduled.parameters, "rules": yaml.safe_dump(STRICT)}
    failed = LocalExecutor(settings=settings).run(compile_pipeline(auditing), strict)
    assert failed.status.value == "failed"
    assert "demographic_parity_difference" in (failed.steps["audit-step"].error or "")


def test_a_gate_runs_the_audit(capsys: pytest.CaptureFixture[str], registered: Path, tmp_path: Path) -> None:
    gates = tmp_path / "gates.yaml"
    gates.write_text(
        yaml.safe_dump(
            {
                "dataset": str(registered),
                "label": "approved",
                "signature": "ignore",
                "audit": {
                    "segments": ["region"],
                    "fairness": {"demographic_parity_difference": {"max": 0.1}},
                },
            }
        ),
        encoding="utf-8",
    )
    code, out, err = run_cli(capsys, "models", "gate", "models:/loans/1", "--rules", str(gates), "--json")
    assert code == 1, err
    results = {r["rule"]: r for r in json.loads(out)["results"]}
    assert results["audit region: demographic_parity_difference"]["passed"] is False
    gates.write_text(
        yaml.safe_dump({"dataset": str(registered), "label": "approved", "audit": {"segments": ["regoin"]}}),
        encoding="utf-8",
    )
    code, _, err = run_cli(capsys, "models", "gate", "models:/loans/1", "--rules", str(gates))
    assert code == 2 and "segment column 'regoin' is not in the data" in err
