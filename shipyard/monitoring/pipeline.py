"""Monitoring as a pipeline, so the pipeline scheduler runs it: ``shipyard monitor schedule`` or

    shipyard pipeline schedule shipyard.monitoring.pipeline:monitoring --cron "0 * * * *" \\
        -p model=churn -p since=1h

Each run compares what the model served in the last ``since`` with its baseline (:func:`run_monitor`),
records a tracked monitoring run, and fails the step (so the schedule shows it) when the window cannot be
judged. Alert rules travel as YAML text in a parameter: the schedule holds them as they were when scheduled,
as it holds the compiled spec.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from shipyard.config import get_settings
from shipyard.durations import parse_duration
from shipyard.monitoring.alerts import parse_rules_yaml
from shipyard.monitoring.job import run_monitor
from shipyard.pipelines.dsl import component, pipeline
from shipyard.pipelines.types import Artifact, Output
from shipyard.store.artifacts import ArtifactStore
from shipyard.tracking.fluent import active_run


@component(cache=False)  # the same parameters mean a new window every time
def monitor_model(
    result: Output[Artifact],
    model: str,
    since: str = "1h",
    rules: str = "",
    min_rows: int = 50,
    registered_name: str = "",
    task: str = "auto",
) -> float:
    """Run the monitoring job for ``model`` over the last ``since``; write its JSON result; return the drift
    share. ``rules``: alert rules as YAML text (``rules: [...]``), empty for none."""
    now = datetime.now(UTC)
    parsed = parse_rules_yaml(rules, source="the rules parameter") if rules.strip() else []
    settings = get_settings()
    outcome = run_monitor(
        ArtifactStore.configured(settings),
        model,
        since=now - parse_duration(since, "since"),
        until=now,
        min_rows=min_rows,
        rules=parsed,
        now=now,
        settings=settings,
        registered_name=registered_name or None,
        task=task,
    )
    with open(result.path, "w", encoding="utf-8") as out:
        json.dump(outcome.to_dict(), out, indent=2)
    step = active_run()
    if step is not None:
        step.log_metrics(
            {"drift_share": outcome.drift.drift_share, "alerts_fired": float(len(outcome.alerts_fired))}
        )
    return outcome.drift.drift_share


@pipeline(cache=False)
def monitoring(
    model: str,
    since: str = "1h",
    rules: str = "",
    min_rows: int = 50,
    registered_name: str = "",
    task: str = "auto",
) -> None:
    """Monitor one served model: drift, skew and (with labels) performance over the last ``since``."""
    monitor_model(
        model=model,
        since=since,
        rules=rules,
        min_rows=min_rows,
        registered_name=registered_name,
        task=task,
    )


def check_parameters(since: str, rules: str) -> None:
    """Refuse a bad window or bad rules when scheduling, not at the first tick: a rule's action that names
    an unknown pipeline, a parameter it does not take, or a gate file that cannot be read included.

    Raises:
        InvalidInput: naming the bad duration or rule field.
    """
    from shipyard.monitoring.retraining import check_actions

    parse_duration(since, "--since")
    if rules.strip():
        check_actions(parse_rules_yaml(rules))


__all__ = ["check_parameters", "monitor_model", "monitoring"]
