"""Model gates: every rule against real models and data, the table and exit code on the CLI, the outcome on
the version and in the audit log (SQLite, PostgreSQL and a platform server), and promotions that need one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

import shipyard
from shipyard.config import Settings
from shipyard.errors import Conflict, InvalidInput
from shipyard.registry.client import RegistryClient
from shipyard.registry.gates import GateReport, RuleResult, evaluate_gate, load_rules, record_gate
from shipyard.tracking.client import TrackingClient
from tests.cli.test_cli import run_cli


@pytest.fixture
def bc(tmp_path: Path) -> Path:
    """``bc`` v1 (champion) and v2 (C=0.5), both with a baseline, a description and an owner tag; the test
    split as eval.parquet beside gates.yaml (returned)."""
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    for c in (1.0, 0.5):
        model = LogisticRegression(C=c, max_iter=5000).fit(X_train, y_train)
        with shipyard.start_run("gates") as run:
            info = shipyard.models.log(
                model, "model", run=run, input_example=X_train.head(5), baseline=X_train, description="bc"
            )
        shipyard.models.register(info.uri, "bc", tags={"owner": "ml"})
    shipyard.models.set_alias("bc", "champion", 1)
    evaluation = X_test.assign(target=y_test.to_numpy())
    evaluation.to_parquet(tmp_path / "eval.parquet")
    rules = tmp_path / "gates.yaml"
    rules.write_text(
        yaml.safe_dump(
            {
                "dataset": "eval.parquet",
                "label": "target",
                "metrics": {"accuracy": {"min": 0.9, "min_delta": -0.02}, "roc_auc": {"min": 0.95}},
                "package": {"max_mb": 5},
                "latency": {"max_p99_ms": 500, "requests": 40},
                "drift": {"max_share": 0.5},
                "required_tags": ["owner"],
                "required_card": ["description"],
            }
        )
    )
    return rules


def test_a_passing_gate_prints_each_rule_and_is_recorded(
    bc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "models", "gate", "bc/2", "--against", "champion", "--rules", str(bc))
    assert code == 0, err
    for rule in ("accuracy >= 0.9", "accuracy delta >= -0.02", "roc_auc >= 0.95", "signature compatible",
                 "package size", "p99 latency", "drift", "required tags", "model card"):  # fmt: skip
        assert rule in out
    assert "FAIL" not in out and "gate passed (9/9 rules) against models:/bc/1" in out
    version = shipyard.models.get("models:/bc/2")
    assert version.tags["shipyard.gate.status"] == "passed"
    assert version.tags["shipyard.gate.against"] == "models:/bc/1"
    assert len(version.tags["shipyard.gate.rules_sha256"]) == 64
    (event,) = [e for e in shipyard.models.events("bc") if e.action == "gate"]
    assert (event.version, event.to_value) == (2, "passed") and "9/9 rules" in (event.reason or "")


def test_the_measured_values_are_the_models_own(bc: Path) -> None:
    report = evaluate_gate("models:/bc/2", bc, shipyard.models.registry_client(), against="champion")
    evaluation = pd.read_parquet(bc.parent / "eval.parquet")
    features = evaluation.drop(columns=["target"])
    for number, column in ((2, "candidate"), (1, "champion")):
        model = shipyard.models.load(f"models:/bc/{number}")
        expected = float(np.mean(np.asarray(model.predict(features)) == evaluation["target"].to_numpy()))
        delta = next(r for r in report.results if r.rule.startswith("accuracy delta"))
        assert getattr(delta, column) == f"{expected:.4f}"


def test_a_failing_gate_exits_1_and_is_recorded_as_failed(
    bc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = yaml.safe_load(bc.read_text())
    rules["metrics"]["accuracy"]["min"] = 0.999
    rules["package"]["max_mb"] = 0.001
    rules["required_tags"] = ["owner", "reviewed-by"]
    bc.write_text(yaml.safe_dump(rules))
    code, out, err = run_cli(capsys, "models", "gate", "bc/2", "--against", "champion", "--rules", str(bc))
    assert code == 1
    assert "error: gate failed: accuracy >= 0.999, package size, required tags (6/9 rules)" in err
    assert "missing: reviewed-by" in out
    assert shipyard.models.get("models:/bc/2").tags["shipyard.gate.status"] == "failed"
    # --no-record leaves the version as it was.
    code, out, _ = run_cli(capsys, "models", "gate", "bc/1", "--rules", str(bc), "--no-record", "--json")
    assert code == 1 and json.loads(out)["passed"] is False
    assert "shipyard.gate.status" not in shipyard.models.get("models:/bc/1").tags


def test_drift_and_an_incompatible_signature_fail_their_rules(bc: Path) -> None:
    # A candidate on a subset of the columns plus one the champion never had: requests it accepted fail.
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    narrow = X.iloc[:, :5].assign(extra=1.0)
    model = LogisticRegression(max_iter=5000).fit(narrow, y)
    with shipyard.start_run("gates") as run:
        info = shipyard.models.log(model, "model", run=run, input_example=narrow.head(5), baseline=narrow)
    shipyard.models.register(info.uri, "bc")
    evaluation = pd.read_parquet(bc.parent / "eval.parquet")
    shifted = evaluation.iloc[:, :5].assign(extra=1.0) * 3  # every feature scaled: drift
    shifted.assign(target=evaluation["target"]).to_parquet(bc.parent / "shifted.parquet")
    bc.write_text(
        yaml.safe_dump({"dataset": "shifted.parquet", "label": "target", "drift": {"max_share": 0.5}})
    )
    report = evaluate_gate("models:/bc/3", bc, shipyard.models.registry_client(), against="champion")
    results = {r.rule: r for r in report.results}
    assert not results["signature compatible"].passed
    assert results["signature compatible"].detail == "new required column 'extra'"
    assert not results["drift"].passed and results["drift"].candidate.startswith("share ")


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({"dataset": "eval.parquet", "label": "target", "metrics": {"acuracy": {"min": 0.9}}},
         "metrics.acuracy: unknown metric 'acuracy'; known: accuracy, f1"),
        ({"dataset": "nowhere.parquet", "label": "target", "metrics": {"accuracy": {"min": 0.9}}},
         "dataset: no evaluation dataset at"),
        ({"dataset": "data:no-such-dataset@3", "label": "target", "metrics": {"accuracy": {"min": 0.9}}},
         "dataset: "),
        ({"dataset": "eval.parquet", "label": "label", "metrics": {"accuracy": {"min": 0.9}}},
         "label: column 'label' is not in eval.parquet"),
        (
            {"metrics": {"accuracy": {"min": 0.9}}},
            "dataset: the metrics, drift, latency and audit rules need",
        ),
        ({"dataset": "eval.parquet", "label": "target", "metrics": {"accuracy": {}}},
         "metrics.accuracy: give min, max, min_delta or max_delta"),
        ({"dataset": "eval.parquet", "thresholds": {}}, "thresholds: Extra inputs are not permitted"),
        ({"required_card": ["owner"]}, "required_card: unknown model card field 'owner'"),
        ({"signature": "loose"}, "signature: 'loose' is not compatible, identical or ignore"),
    ],
)  # fmt: skip
def test_bad_rules_files_name_the_field(
    bc: Path, rules: dict[str, object], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bc.write_text(yaml.safe_dump(rules))
    code, _, err = run_cli(capsys, "models", "gate", "bc/2", "--rules", str(bc))
    assert code in (2, 3) and expected in err, err
    assert "shipyard.gate.status" not in shipyard.models.get("models:/bc/2").tags


def test_promotions_can_require_a_passed_gate(bc: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys, "models", "require-gate", "bc", "--for", "Production", "--for", "@champion"
    )
    assert code == 0 and "Production, @champion" in out
    code, _, err = run_cli(capsys, "models", "stage", "bc", "2", "Production")
    assert code == 4 and "it has no gate result" in err and "shipyard models gate" in err
    code, _, err = run_cli(capsys, "models", "alias", "bc", "champion", "2")
    assert code == 4 and "moving alias 'champion'" in err
    # Staging and other aliases need nothing.
    assert run_cli(capsys, "models", "stage", "bc", "2", "Staging")[0] == 0
    assert run_cli(capsys, "models", "alias", "bc", "challenger", "2")[0] == 0
    assert run_cli(capsys, "models", "gate", "bc/2", "--against", "champion", "--rules", str(bc))[0] == 0
    assert run_cli(capsys, "models", "stage", "bc", "2", "Production")[0] == 0
    assert run_cli(capsys, "models", "alias", "bc", "champion", "2")[0] == 0
    assert shipyard.models.get("models:/bc@champion").version == 2
    # Nothing required any more.
    assert run_cli(capsys, "models", "require-gate", "bc")[0] == 0
    assert run_cli(capsys, "models", "stage", "bc", "1", "Production")[0] == 0


def test_gate_tags_are_written_only_by_a_gate(bc: Path) -> None:
    registry = shipyard.models.registry_client()
    with pytest.raises(
        InvalidInput, match="'shipyard.gate.status' is written only by `shipyard models gate`"
    ):
        registry.set_version_tags("bc", 1, {"shipyard.gate.status": "passed"})
    with pytest.raises(InvalidInput, match="written only by"):
        registry.delete_version_tag("bc", 1, "shipyard.gate.status")
    with pytest.raises(InvalidInput, match="written only by"):
        shipyard.models.register("models:/bc/1", "bc", tags={"shipyard.gate.status": "passed"})


def test_the_outcome_is_recorded_on_every_backend(tracking_backend_settings: Settings) -> None:
    """SQLite, PostgreSQL, and a platform server through the HTTP store (its route, guard and audit)."""
    registry = RegistryClient(TrackingClient(tracking_backend_settings))
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=5000).fit(X, y)
    with shipyard.start_run("gates", settings=tracking_backend_settings) as run:
        info = shipyard.models.log(model, "model", run=run, input_example=X.head(5))
    registry_version = shipyard.models.register(info.uri, "bc", settings=tracking_backend_settings)
    number = registry_version.version
    registry.set_model_tags("bc", {"shipyard.gate.required_for": "Production"})
    # Writing the outcome as a plain tag (through the server's tag route too) is refused.
    with pytest.raises(InvalidInput, match="written only by `shipyard models gate`"):
        registry.set_version_tags("bc", number, {"shipyard.gate.status": "passed"})
    with pytest.raises(Conflict, match="requires a passed gate for Production"):
        registry.transition("bc", number, "Production")
    report = GateReport(f"models:/bc/{number}", None, "0" * 64, [RuleResult("accuracy >= 0.9", True, "0.95")])
    recorded = record_gate(registry, report)
    assert recorded.tags["shipyard.gate.status"] == "passed"
    assert registry.transition("bc", number, "Production").stage.value == "Production"
    events = [(e.action, e.to_value) for e in registry.events("bc")]
    assert ("gate", "passed") in events and events.index(("gate", "passed")) < events.index(
        ("transition", "Production")
    )


def test_load_rules_accepts_the_documented_example(tmp_path: Path) -> None:
    from shipyard.registry import gates

    example = gates.__doc__.split("A rules file (YAML)::", 1)[1].split("\n\n", 2)[1]
    path = tmp_path / "gates.yaml"
    path.write_text("\n".join(line[4:] for line in example.splitlines()))
    rules = load_rules(path)
    assert set(rules.metrics) == {"accuracy", "f1"} and rules.latency is not None


def test_without_a_champion_the_delta_rules_are_skipped_and_said_so(
    bc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "models", "gate", "bc/1", "--rules", str(bc))
    assert code == 0, err
    assert "SKIP" in out and "no champion" in out
    assert "gate passed (8/8 rules, 1 skipped)" in out
    # A champion that is named but does not exist is an error, not a skip.
    code, _, err = run_cli(capsys, "models", "gate", "bc/2", "--against", "nope", "--rules", str(bc))
    assert code == 3 and "nope" in err
