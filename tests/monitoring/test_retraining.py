"""Drift-triggered retraining: a fired rule's action runs a real pipeline (local worker processes), the new
version joins the registry as challenger (through a gate when named), within a cool-down and a daily limit;
bad actions are refused when the rules are read. The demo's end-to-end loop is in tests/cli/test_cli.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sklearn.datasets import load_breast_cancer
from sklearn.tree import DecisionTreeClassifier

import shipyard
from shipyard.config import Settings
from shipyard.errors import InvalidInput
from shipyard.lineage import LineageClient
from shipyard.monitoring import parse_rules, run_monitor
from shipyard.monitoring.retraining import EXPERIMENT, check_actions
from shipyard.store.artifacts import ArtifactStore
from shipyard.tracking import get_client
from tests.cli.test_cli import run_cli
from tests.monitoring.test_monitoring import log_traffic

PIPELINE = "tests.monitoring.retrain_pipelines:retrain"


def served(settings: Settings) -> ArtifactStore:
    """``bc`` version 1 (with its baseline) as champion, and 200 served rows with five features scaled up."""
    features, target = load_breast_cancer(return_X_y=True, as_frame=True)
    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(features, target)
    with shipyard.start_run("train", settings=settings) as run:
        info = shipyard.models.log(model, run=run, input_example=features.head(3), baseline=features)
    version = shipyard.models.register(info.uri, "bc", settings=settings)
    shipyard.models.set_alias("bc", "champion", version.version, settings=settings)
    rows = features.sample(200, random_state=3).reset_index(drop=True)
    rows[list(features.columns[:5])] *= 1.6
    store = ArtifactStore.configured(settings)
    log_traffic(store, rows, model="bc")
    return store


def rules(**action: object) -> list:
    found = {"pipeline": PIPELINE, **action}
    rule = {"name": "drifted", "metric": "drift_share", "op": ">=", "threshold": 0.1, "action": found}
    return parse_rules({"rules": [rule]})


def monitor(store: ArtifactStore, settings: Settings, found: list) -> object:
    return run_monitor(store, "bc", settings=settings, min_rows=50, rules=found)


def test_a_fired_rule_retrains_once_within_its_cooldown(settings: Settings) -> None:
    store = served(settings)
    first = monitor(store, settings, rules(cooldown="1h"))
    (done,) = first.retrainings
    assert done.status == "succeeded", done.reason
    assert done.version == "models:/bc/2" and "models:/bc/2 is now @challenger" in done.reason
    version = shipyard.models.get("models:/bc@challenger", settings=settings)
    assert version.version == 2 and version.tags["shipyard.retraining.trigger"] == done.run_id
    assert version.tags["shipyard.retraining.alert"].startswith("drift_share = 0.16")
    # The retraining run links the monitoring run and the pipeline run, which links back.
    tracking = get_client(settings)
    trigger = tracking.get_run(done.run_id)
    assert trigger.name == "bc:drifted#1" and trigger.status.value == "FINISHED"
    assert trigger.tags["shipyard.retraining.monitor_run"] == first.run_id
    assert trigger.tags["shipyard.retraining.pipeline_run"] == done.pipeline_run_id
    assert tracking.get_run(done.pipeline_run_id).tags["shipyard.retraining.trigger"] == done.run_id
    # The audit log names the rule and the retraining run; lineage leads from v2 to the drifted v1.
    moved = [e for e in shipyard.models.registry_client(settings).events("bc") if e.version == 2]
    assert any(done.run_id in (e.reason or "") and "drifted" in (e.reason or "") for e in moved)
    graph = LineageClient(tracking).upstream("models:/bc/2")
    kinds = {e.type for e in graph.executions.values()}
    assert {"retraining", "registration"} <= kinds
    assert "models:/bc/1" in {a.uri for a in graph.artifacts.values()}
    # The JSON report says what happened.
    assert '"status": "succeeded"' in store.read_bytes(first.json_path).decode()

    # Within the cool-down the rule fires again, but nothing runs.
    second = monitor(store, settings, rules(cooldown="1h"))
    assert second.alerts_fired and second.retrainings[0].status == "cooling-down"
    assert "cool-down 1h lasts until" in second.retrainings[0].reason
    assert [v.version for v in shipyard.models.list_versions("bc", settings=settings)] == [1, 2]
    assert len(tracking.search_runs(EXPERIMENT)) == 1


def test_the_daily_limit_holds_without_a_cooldown(settings: Settings) -> None:
    store = served(settings)
    found = rules(cooldown="0s", max_per_day=1, parameters={"register": True})
    (done,) = monitor(store, settings, found).retrainings
    # The pipeline registered the version itself: that one is taken, not a second.
    assert done.status == "succeeded" and done.version == "models:/bc/2"
    (limited,) = monitor(store, settings, found).retrainings
    assert limited.status == "daily-limit" and "max_per_day 1" in limited.reason
    assert len(shipyard.models.list_versions("bc", settings=settings)) == 2


def test_a_second_monitor_claiming_the_same_retraining_starts_nothing(settings: Settings) -> None:
    store = served(settings)
    # Another monitor has just created retraining #1 (its tags not yet visible to this one's search).
    with shipyard.start_run(EXPERIMENT, "bc:drifted#1", settings=settings):
        pass
    (lost,) = monitor(store, settings, rules()).retrainings
    assert lost.status == "claimed" and lost.run_id is None
    assert len(shipyard.models.list_versions("bc", settings=settings)) == 1


def test_a_failing_pipeline_or_gate_moves_no_alias(settings: Settings, tmp_path: Path) -> None:
    store = served(settings)
    (failed,) = monitor(store, settings, rules(cooldown="0s", parameters={"fail": True})).retrainings
    assert failed.status == "failed" and "failed at step(s) fit-and-log" in failed.reason
    gate = tmp_path / "gates.yaml"
    gate.write_text("package: {max_mb: 0.000001}\n", encoding="utf-8")
    (gated,) = monitor(store, settings, rules(cooldown="0s", gate=str(gate))).retrainings
    assert gated.status == "gate-failed" and gated.gate_passed is False, gated.reason
    version = shipyard.models.get(gated.version, settings=settings)
    assert version.tags["shipyard.gate.status"] == "failed"
    assert "challenger" not in version.aliases


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"pipeline": "no_such_module:train"}, "cannot import module 'no_such_module'"),
        ({"pipeline": "missing.yaml"}, "does not exist"),
        ({"pipeline": PIPELINE, "parameters": {"epochs": 3}}, "epochs"),
        ({"pipeline": PIPELINE, "gate": "nowhere.yaml"}, "cannot read gate rules"),
        ({"pipeline": PIPELINE, "executor": "slurm"}, "executor 'slurm'"),
    ],
)
def test_an_action_that_could_never_run_is_refused_when_read(action: dict, message: str) -> None:
    found = parse_rules(
        {"rules": [{"name": "r", "metric": "drift_share", "op": ">", "threshold": 0.1, "action": action}]}
    )
    with pytest.raises(InvalidInput, match="alert rule 'r': action") as caught:
        check_actions(found)
    assert message in str(caught.value)


def test_bad_action_fields_are_named() -> None:
    for action, message in [
        ({"pipeline": PIPELINE, "cooldown": "soon"}, "cooldown"),
        ({"pipeline": PIPELINE, "alias": "7"}, "alias"),
        ({"pipeline": PIPELINE, "max_per_day": 0}, "max_per_day"),
        ({"pipeline": PIPELINE, "retries": 2}, "retries"),
    ]:
        rule = {"name": "r", "metric": "drift_share", "op": ">", "threshold": 0.1, "action": action}
        with pytest.raises(InvalidInput, match=message):
            parse_rules({"rules": [rule]})


def test_the_cli_refuses_an_unknown_pipeline_when_scheduling_and_running(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "alerts.yaml"
    rule = {
        "name": "r",
        "metric": "drift_share",
        "op": ">",
        "threshold": 0.1,
        "action": {"pipeline": "trian.yaml"},
    }
    path.write_text(yaml.safe_dump({"rules": [rule]}), encoding="utf-8")
    for args in (["monitor", "schedule", "bc", "--cron", "0 * * * *"], ["monitor", "run", "bc"]):
        code, _, err = run_cli(capsys, *args, "--rules", str(path))
        assert code == 2 and "alert rule 'r': action: pipeline spec file" in err and "trian.yaml" in err
        assert err.count("\n") == 1


def test_a_scheduled_monitor_stores_the_rules_with_absolute_paths_and_retrains(
    capsys: pytest.CaptureFixture[str], settings: Settings, tmp_path: Path
) -> None:
    from shipyard.monitoring.pipeline import monitoring
    from shipyard.pipelines import ScheduleClient, compile_pipeline
    from shipyard.pipelines.executors import LocalExecutor

    store = served(settings)
    folder = tmp_path / "rules"
    folder.mkdir()
    code, _, err = run_cli(capsys, "pipeline", "compile", PIPELINE, "-o", str(folder / "train.yaml"))
    assert code == 0, err
    rule = {
        "name": "drifted",
        "metric": "drift_share",
        "op": ">=",
        "threshold": 0.1,
        "action": {"pipeline": "train.yaml"},
    }
    (folder / "alerts.yaml").write_text(yaml.safe_dump({"rules": [rule]}), encoding="utf-8")
    code, _, err = run_cli(
        capsys,
        "monitor",
        "schedule",
        "bc",
        "--cron",
        "0 * * * *",
        "--since",
        "1d",
        "--rules",
        str(folder / "alerts.yaml"),
    )
    assert code == 0, err
    scheduled = ScheduleClient(get_client(settings)).get("monitor-bc")
    stored = yaml.safe_load(scheduled.parameters["rules"])
    assert stored["rules"][0]["action"]["pipeline"] == str(folder / "train.yaml")
    # What the scheduler runs at a tick: the monitoring pipeline, whose step retrains in its worker.
    result = LocalExecutor(settings=settings).run(compile_pipeline(monitoring), dict(scheduled.parameters))
    assert result.status.value == "succeeded", result.steps
    assert [v.version for v in shipyard.models.list_versions("bc", settings=settings)] == [1, 2]
    assert shipyard.models.get("models:/bc@challenger", settings=settings).version == 2
    del store
