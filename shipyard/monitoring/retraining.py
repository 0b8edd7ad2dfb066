"""Drift-triggered retraining: a rule's ``action`` runs a pipeline; the model it makes becomes the challenger.

When a rule with an action fires in a monitoring run (:func:`~shipyard.monitoring.job.run_monitor` with
settings, so from ``shipyard monitor run`` and from a scheduled monitoring pipeline alike):

1. **Cool-down and daily limit.** Each retraining is a tracked run in experiment ``retraining``, named
   ``<model>:<rule>#<n>``. The next one is claimed by creating the run of number n + 1: run names are unique
   in an experiment, so of two monitors that fire at once exactly one wins, and the other one records
   nothing. No claim is made within ``cooldown`` of the last one, or once ``max_per_day`` of them have
   started in the last 24 hours. The result says which limit held, and until when.
2. **The pipeline** (a compiled spec, or ``module:function``) runs with the action's ``parameters`` on the
   configured executor. Its run is tagged with the retraining run, and the retraining run with it.
3. **The new version** is the newest version of the model that the pipeline run registered itself (a
   ``register`` step). If it registered none, it is the last model package a step logged, which is then
   registered. The version is tagged with the retraining run, the rule and the alert's value.
4. **The gate**, when the action names one, checks the version against ``against`` (default the champion),
   and the outcome is recorded on the version. A version that fails it keeps its place in the registry but
   does not get the alias.
5. **The alias** (default ``challenger``) moves to the version. The model's audit log records the move, with
   a reason that names the rule, the alert's value and the retraining run.
6. **Lineage**: a ``retraining`` execution takes the drift report and the served version as inputs and
   gives the new version as its output, linked to both runs.

Rules are checked when they are read (:func:`check_actions`): an unknown pipeline, a parameter the pipeline
does not have, or an unreadable gate file is refused then, not when the rule fires.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import AlreadyExists, InvalidInput, NotFound, ShipyardError
from shipyard.monitoring.alerts import Alert, AlertRule, RetrainAction

if TYPE_CHECKING:
    from shipyard.config import Settings
    from shipyard.monitoring.job import MonitorResult
    from shipyard.pipelines.executors import PipelineRunResult
    from shipyard.registry.client import RegistryClient
    from shipyard.registry.records import ModelVersion
    from shipyard.tracking.client import TrackingClient

log = logging.getLogger("shipyard.monitoring")

EXPERIMENT = "retraining"
TAG_KEY = "shipyard.retraining.key"  # "<model>:<rule>", what the claims of one rule share
TAG_SEQ = "shipyard.retraining.seq"
TAG_TRIGGER = "shipyard.retraining.trigger"  # on the pipeline run and the new version: the retraining run
TAG_PIPELINE_RUN = "shipyard.retraining.pipeline_run"
DAY_S = 86_400.0


@dataclass(frozen=True)
class Retraining:
    """What one fired rule's action did.

    Attributes:
        status: ``succeeded`` (a new version has the alias), ``gate-failed`` (registered, alias not moved),
            ``failed`` (the pipeline failed, or no model came of it), ``cooling-down`` or ``daily-limit``
            (nothing started), ``claimed`` (another monitor started this retraining at the same moment).
        reason: what happened, in one line.
        run_id: the retraining run (None when nothing started).
    """

    rule: str
    status: str
    reason: str
    run_id: str | None = None
    pipeline_run_id: str | None = None
    version: str | None = None
    gate_passed: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_actions(rules: Iterable[AlertRule]) -> None:
    """Refuse a rule whose action cannot run: its pipeline unknown or not a pipeline, a parameter the
    pipeline does not take, an executor that does not exist, or a gate file that cannot be read.

    Raises:
        InvalidInput: naming the rule and what is wrong.
    """
    from shipyard.pipelines.binding import bind_parameters
    from shipyard.pipelines.executors import EXECUTORS
    from shipyard.pipelines.targets import load_spec
    from shipyard.registry.gates import load_rules as load_gate_rules

    for rule in rules:
        action = rule.action
        if action is None:
            continue
        where = f"alert rule {rule.name!r}: action"
        try:
            spec = load_spec(action.pipeline)
            bind_parameters(spec, dict(action.parameters))
            if action.executor is not None and action.executor not in EXECUTORS:
                raise InvalidInput(f"executor {action.executor!r} is not one of {', '.join(EXECUTORS)}")
            if action.gate is not None:
                load_gate_rules(Path(action.gate))
        except InvalidInput as exc:
            raise InvalidInput(f"{where}: {exc}") from exc


def retrain_on(
    result: MonitorResult, rules: Sequence[AlertRule], settings: Settings, *, now: datetime | None = None
) -> tuple[Retraining, ...]:
    """Act on the rules of ``result.alerts_fired`` that name an action (see the module doc). A retraining
    that fails is reported in its :class:`Retraining`, never raised: the monitoring run still stands."""
    by_name = {rule.name: rule for rule in rules}
    done = []
    for alert in result.alerts_fired:
        rule = by_name.get(alert.rule)
        if rule is None or rule.action is None:
            continue
        try:
            done.append(_retrain(rule, rule.action, alert, result, settings, now or datetime.now(UTC)))
        except ShipyardError as exc:  # a store that is down: said, and the monitoring result kept
            log.error("retraining on alert %s failed: %s", rule.name, exc)
            done.append(Retraining(rule.name, "failed", f"{type(exc).__name__}: {exc}"))
    return tuple(done)


def _retrain(
    rule: AlertRule,
    action: RetrainAction,
    alert: Alert,
    result: MonitorResult,
    settings: Settings,
    now: datetime,
) -> Retraining:
    from shipyard.registry.fluent import registry_client
    from shipyard.tracking import get_client
    from shipyard.tracking.fluent import start_run

    tracking = get_client(settings)
    model = action.model or result.registered_model or result.model
    key = f"{result.model}:{rule.name}"
    claimed = _claim(tracking, key, action, now)
    if isinstance(claimed, Retraining):
        return dataclasses.replace(claimed, rule=rule.name)
    seq = claimed
    name = f"{key}#{seq}"[:256]
    tags = {
        TAG_KEY: key,
        TAG_SEQ: str(seq),
        "shipyard.retraining.rule": rule.name,
        "shipyard.retraining.model": model,
        **_alert_tag(alert),
    }
    if result.run_id is not None:
        tags["shipyard.retraining.monitor_run"] = result.run_id
    try:
        run = start_run(EXPERIMENT, name, tags=tags, log_system_metrics=False, settings=settings)
    except AlreadyExists:
        return Retraining(rule.name, "claimed", f"another monitor started retraining {name!r} just now")
    with run:
        run.log_params(
            {"pipeline": action.pipeline, **{f"parameters.{k}": v for k, v in action.parameters.items()}}
        )
        log.warning("alert %s: retraining %s with pipeline %s", rule.name, name, action.pipeline)
        outcome = _run_pipeline(action, run.run_id, settings)
        run.set_tag(TAG_PIPELINE_RUN, outcome.run_id)
        base = Retraining(rule.name, "failed", "", run.run_id, outcome.run_id)
        if not outcome.status.ok:
            failed = [step for step, r in outcome.steps.items() if not r.status.ok]
            reason = f"pipeline run {outcome.run_id} failed at step(s) {', '.join(failed) or '?'}"
            run.set_tag("shipyard.retraining.outcome", "failed")
            return dataclasses.replace(base, reason=reason)
        registry = registry_client(settings)
        version = _new_version(registry, tracking, model, outcome, settings)
        if version is None:
            reason = (
                f"pipeline run {outcome.run_id} neither registered a version of {model!r} nor logged a model"
            )
            run.set_tag("shipyard.retraining.outcome", "failed")
            return dataclasses.replace(base, reason=reason)
        registry.set_version_tags(
            model,
            version.version,
            {TAG_TRIGGER: run.run_id, "shipyard.retraining.rule": rule.name, **_alert_tag(alert)},
        )
        settled = _settle(registry, action, alert, rule, version, run.run_id, base)
        run.set_tag("shipyard.retraining.outcome", settled.status)
        run.set_tag("shipyard.retraining.version", version.uri)
        _record_lineage(settings, registry, result, version, run.run_id, outcome.run_id, rule, alert)
        return settled


def _claim(tracking: TrackingClient, key: str, action: RetrainAction, now: datetime) -> int | Retraining:
    """The number of the retraining to claim, or why none may start now."""
    tracking.get_or_create_experiment(EXPERIMENT)
    day_ago = int((now.timestamp() - DAY_S) * 1000)
    quoted = key.replace("'", "''")
    recent = tracking.search_runs(
        EXPERIMENT,
        f"tags.`{TAG_KEY}` = '{quoted}'",
        order_by=["attributes.start_time DESC"],
        max_results=max(action.max_per_day, 1) + 1,
    )
    if not recent:
        return 1
    last = recent[0]
    ready_at = last.start_time / 1000 + action.cooldown_s
    if now.timestamp() < ready_at:
        return Retraining(
            "",
            "cooling-down",
            f"the last retraining ({last.name}, run {last.run_id}) started at "
            f"{_iso(last.start_time / 1000)}; cool-down {action.cooldown} lasts until {_iso(ready_at)}",
        )
    within_day = [r for r in recent if r.start_time >= day_ago]
    if len(within_day) >= action.max_per_day:
        oldest = min(r.start_time for r in within_day[: action.max_per_day]) / 1000
        return Retraining(
            "",
            "daily-limit",
            f"{len(within_day)} retrainings started in the last 24 hours (max_per_day "
            f"{action.max_per_day}); the next may start at {_iso(oldest + DAY_S)}",
        )
    try:
        return int(last.tags.get(TAG_SEQ, "0")) + 1
    except ValueError:
        return len(recent) + 1


def _run_pipeline(action: RetrainAction, trigger_run_id: str, settings: Settings) -> PipelineRunResult:
    from shipyard.pipelines.executors import executor_for
    from shipyard.pipelines.targets import load_spec

    spec = load_spec(action.pipeline)
    runner = executor_for(action.executor or settings.executor, settings=settings)
    return runner.run(spec, dict(action.parameters), tags={TAG_TRIGGER: trigger_run_id})


def _new_version(
    registry: RegistryClient,
    tracking: TrackingClient,
    model: str,
    outcome: PipelineRunResult,
    settings: Settings,
) -> ModelVersion | None:
    """The version the pipeline run registered under ``model`` (the newest), else its last logged model
    package registered now."""
    try:
        versions = registry.list_versions(model)
    except NotFound:
        versions = []
    made = [v for v in versions if v.pipeline_run_id == outcome.run_id]
    if made:
        return max(made, key=lambda v: v.version)
    for step in reversed(list(outcome.steps.values())):
        if not step.run_id:
            continue
        for record in tracking.list_artifacts(step.run_id):
            if record.path == "MODEL.yaml" or record.path.endswith("/MODEL.yaml"):
                from shipyard.registry.fluent import register

                folder = record.path.rpartition("/")[0]
                return register(f"runs:/{step.run_id}/{folder}", model, settings=settings)
    return None


def _settle(
    registry: RegistryClient,
    action: RetrainAction,
    alert: Alert,
    rule: AlertRule,
    version: ModelVersion,
    run_id: str,
    base: Retraining,
) -> Retraining:
    """Gate (when named), then the alias; the outcome."""
    found = dataclasses.replace(base, version=version.uri)
    if action.gate is not None:
        from shipyard.registry.gates import evaluate_gate, record_gate

        try:
            report = evaluate_gate(version.uri, Path(action.gate), registry, against=action.against)
        except ShipyardError as exc:
            return dataclasses.replace(
                found, status="gate-failed", gate_passed=False, reason=f"the gate could not run: {exc}"
            )
        record_gate(registry, report)
        if not report.passed:
            failed = ", ".join(r.rule for r in report.results if not r.passed)
            return dataclasses.replace(
                found,
                status="gate-failed",
                gate_passed=False,
                reason=f"{version.uri} failed its gate against {action.against} ({failed}); alias not moved",
            )
        found = dataclasses.replace(found, gate_passed=True)
    reason = (
        f"retrained on alert {rule.name} ({alert.metric} = {alert.value:.6g} {alert.op} "
        f"{alert.threshold:g}) by retraining run {run_id}"
    )
    try:
        registry.set_alias(version.name, action.alias, version.version, reason=reason)
    except ShipyardError as exc:  # a gate the registry requires for this alias, for one
        return dataclasses.replace(found, reason=f"{version.uri}: alias {action.alias!r} not moved: {exc}")
    return dataclasses.replace(
        found, status="succeeded", reason=f"{version.uri} is now @{action.alias}: {reason}"
    )


def _record_lineage(
    settings: Settings,
    registry: RegistryClient,
    result: MonitorResult,
    version: ModelVersion,
    run_id: str,
    pipeline_run_id: str,
    rule: AlertRule,
    alert: Alert,
) -> None:
    from shipyard.lineage import ArtifactType, LineageClient
    from shipyard.registry.uri import parse_model_uri
    from shipyard.store.artifacts import ArtifactStore
    from shipyard.tracking import get_client

    report = ArtifactStore.configured(settings).uri(result.report_path)
    inputs = [(report, ArtifactType.HTML, "", "drift report")]
    if result.served_uri is not None:  # the version whose traffic drifted, as its registration recorded it
        try:
            served = registry.resolve(parse_model_uri(result.served_uri))  # type: ignore[arg-type]
            inputs.append((served.uri, ArtifactType.MODEL, served.manifest_sha256, "served"))
        except (NotFound, InvalidInput):
            pass
    LineageClient(get_client(settings)).record(
        "retraining",
        name=f"{rule.name} on {result.model}",
        run_id=run_id,
        pipeline_run_id=pipeline_run_id,
        inputs=inputs,
        outputs=[(version.uri, ArtifactType.MODEL, version.manifest_sha256, "retrained")],
        properties={"rule": rule.name, **_alert_tag(alert)},
    )


def _alert_tag(alert: Alert) -> dict[str, str]:
    return {"shipyard.retraining.alert": f"{alert.metric} = {alert.value:.6g} {alert.op} {alert.threshold:g}"}


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


__all__ = ["EXPERIMENT", "Retraining", "check_actions", "retrain_on"]
