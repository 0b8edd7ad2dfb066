"""Alert rules on a monitoring result: a threshold on a drift number, logged and optionally POSTed.

Rules live in YAML::

    rules:
      - name: too-much-drift
        metric: drift_share          # drift_share | dataset_drift (0/1) | feature_drift (needs feature:)
        op: ">="                     # > >= < <=
        threshold: 0.3
        webhook: https://hooks.example.com/drift   # optional: POSTed as JSON when the rule fires
      - name: age-moved
        metric: feature_drift        # the column's test statistic (p-value for ks/chisquare*/z: "<")
        feature: age
        op: "<"
        threshold: 0.01
      - name: accuracy-dropped
        metric: accuracy             # against ground truth joined by request id: accuracy | precision |
        op: "<"                      # recall | f1 (classification), mae | rmse | r2 | mape (regression)
        threshold: 0.9
        action:                      # optional: retrain when it fires (shipyard.monitoring.retraining)
          pipeline: train.yaml       # a compiled spec (relative to this file) or module:function
          parameters: {since: 30d}   # checked against the pipeline's parameters when the rules are read
          cooldown: 6h               # no second run within this long of the last (default 6h)
          max_per_day: 2             # and at most this many in any 24 hours (default 2)
          alias: challenger          # the new version's alias (default challenger)
          gate: gates.yaml           # optional: the alias moves only when it passes (against: champion)

A performance rule does not fire while the window has no labelled predictions (the result says why).

A fired rule is logged at WARNING and, with a webhook, POSTed as ``{"rule", "model", "metric", "value",
"threshold", "report"}``. A webhook that fails is logged and recorded on the :class:`Alert`; it never raises,
so one unreachable receiver cannot fail the job or hide the other alerts.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import httpx
import pydantic
import yaml

from shipyard.durations import parse_duration
from shipyard.errors import InvalidInput, field_problems

if TYPE_CHECKING:
    from shipyard.monitoring.job import MonitorResult

log = logging.getLogger("shipyard.monitoring")

WEBHOOK_TIMEOUT_S = 5.0

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


class RetrainAction(pydantic.BaseModel):
    """What a fired rule starts: a run of ``pipeline``, at most once per ``cooldown`` and ``max_per_day``
    times in any 24 hours; the version it makes gets ``alias`` (after ``gate``, when one is named)."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    pipeline: str = pydantic.Field(min_length=1)
    parameters: dict[str, Any] = pydantic.Field(default_factory=dict)
    cooldown: str = "6h"
    max_per_day: int = pydantic.Field(2, ge=1, le=1000)
    model: str | None = None  # the registered model the new version joins (default: the monitored one's)
    alias: str = "challenger"
    gate: str | None = None
    against: str = "champion"
    executor: str | None = None

    @pydantic.field_validator("cooldown")
    @classmethod
    def _check_cooldown(cls, value: str) -> str:
        try:
            parse_duration(value, "cooldown", allow_zero=True)
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None
        return value

    @pydantic.field_validator("alias")
    @classmethod
    def _check_alias(cls, value: str) -> str:
        from shipyard.registry.naming import check_alias

        try:
            check_alias(value)
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None
        return value

    @property
    def cooldown_s(self) -> float:
        return parse_duration(self.cooldown, "cooldown", allow_zero=True).total_seconds()


class AlertRule(pydantic.BaseModel):
    """One rule: fire when ``metric op threshold``."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    name: str = pydantic.Field(min_length=1)
    metric: Literal[
        "drift_share",
        "dataset_drift",
        "feature_drift",
        "accuracy",
        "precision",
        "recall",
        "f1",
        "mae",
        "rmse",
        "r2",
        "mape",
    ]
    feature: str | None = None
    op: Literal[">", ">=", "<", "<="]
    threshold: float
    webhook: pydantic.HttpUrl | None = None
    action: RetrainAction | None = None

    @pydantic.model_validator(mode="after")
    def _feature_only_for_feature_drift(self) -> AlertRule:
        if self.metric == "feature_drift" and not self.feature:
            raise ValueError("metric feature_drift needs `feature:` (a column name)")
        if self.metric != "feature_drift" and self.feature is not None:
            raise ValueError(f"`feature:` applies to metric feature_drift only, not {self.metric}")
        return self


class _RulesFile(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    rules: list[AlertRule]


@dataclass(frozen=True)
class Alert:
    """A rule that fired. ``delivered`` is None without a webhook; ``error`` says why a POST failed.

    ``webhook`` is where it was POSTed with the path and query left out (``https://hooks.example.com/…``):
    a webhook URL often is its own secret (Slack's, for one), and alerts land in reports anyone who may read
    the model reads, and in logs.
    """

    rule: str
    model: str
    metric: str
    feature: str | None
    op: str
    value: float
    threshold: float
    report: str
    webhook: str | None = None
    delivered: bool | None = None
    error: str | None = None


def parse_rules(data: object, *, source: str = "alert rules") -> list[AlertRule]:
    """Rules from already-parsed YAML/JSON (``{"rules": [...]}``).

    Raises:
        InvalidInput: naming each bad field and where it is (``rules.0.colour: extra inputs …``).
    """
    try:
        return _RulesFile.model_validate(data).rules
    except pydantic.ValidationError as exc:
        raise InvalidInput(f"{source} are invalid: {field_problems(exc)}") from exc


def load_rules(path: str | Path) -> list[AlertRule]:
    """Rules from a YAML file; an action's pipeline and gate files named by relative paths are found from
    the file's folder (and kept as absolute paths, so a schedule that stores the rules finds them too).

    Raises:
        InvalidInput: the file cannot be read, is not YAML, or holds a bad rule (field named).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read alert rules {str(path)!r}: {exc}") from exc
    rules = parse_rules_yaml(text, source=f"alert rules in {str(path)!r}")
    return [_anchored(rule, Path(path).resolve().parent) for rule in rules]


def rules_yaml(rules: Iterable[AlertRule]) -> str:
    """``rules`` as the YAML text :func:`parse_rules_yaml` reads back (what a schedule stores)."""
    documents = [rule.model_dump(mode="json", exclude_none=True) for rule in rules]
    return yaml.safe_dump({"rules": documents}, sort_keys=False)


def _anchored(rule: AlertRule, folder: Path) -> AlertRule:
    action = rule.action
    if action is None:
        return rule
    changes: dict[str, str] = {}
    # A spec file; module:function (or file.py:function) is imported from the working directory as written.
    pipeline = Path(action.pipeline)
    if ":" not in action.pipeline and not pipeline.is_absolute():
        changes["pipeline"] = str(folder / pipeline)
    if action.gate is not None and not Path(action.gate).is_absolute():
        changes["gate"] = str(folder / action.gate)
    if not changes:
        return rule
    return rule.model_copy(update={"action": action.model_copy(update=changes)})


def parse_rules_yaml(text: str, *, source: str = "alert rules") -> list[AlertRule]:
    """Rules from YAML text (``rules: [...]``).

    Raises:
        InvalidInput: the text is not YAML, or holds a bad rule (field named).
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{source} are not valid YAML: {exc}") from exc
    return parse_rules(data, source=source)


def check_rules(rules: Iterable[AlertRule], columns: Sequence[str]) -> None:
    """Refuse rules naming a feature the baseline does not have (caught before any work is done).

    Raises:
        InvalidInput: naming the rule, the feature and the baseline's columns.
    """
    known = set(columns)
    for rule in rules:
        if rule.feature is not None and rule.feature not in known:
            raise InvalidInput(
                f"alert rule {rule.name!r} names feature {rule.feature!r}, which the baseline does not have; "
                f"it has: {', '.join(columns)}"
            )


def _value(rule: AlertRule, result: MonitorResult) -> float | None:
    if rule.metric == "drift_share":
        return result.drift.drift_share
    if rule.metric == "dataset_drift":
        return float(result.drift.dataset_drift)
    if rule.metric != "feature_drift":
        overall = result.performance.metrics if result.performance is not None else {}
        return overall.get(rule.metric)
    for column in result.drift.columns:
        if column.column == rule.feature:
            return column.statistic
    return None  # not compared: missing from the served inputs (reported by the drift result)


def evaluate(
    rules: Iterable[AlertRule], result: MonitorResult, *, client: httpx.Client | None = None
) -> list[Alert]:
    """The rules that fire on ``result``, each logged and POSTed to its webhook.

    Args:
        rules: the rules, in order.
        result: a monitoring result (its ``alerts_fired`` is not read).
        client: the HTTP client for webhooks (tests may pass one with a mock transport); by default one
            with a 5 s timeout, created only when some fired rule has a webhook.
    """
    fired: list[Alert] = []
    own_client: httpx.Client | None = None
    try:
        for rule in rules:
            value = _value(rule, result)
            if value is None:
                missing = (
                    f"feature {rule.feature!r} was not compared"
                    if rule.feature is not None
                    else f"{rule.metric} was not computed (no labelled predictions in the window)"
                )
                log.warning("alert rule %s: %s; skipped", rule.name, missing)
                continue
            if math.isnan(value) or not _OPS[rule.op](value, rule.threshold):
                continue
            webhook = str(rule.webhook) if rule.webhook is not None else None
            alert = Alert(
                rule=rule.name,
                model=result.model,
                metric=rule.metric if rule.feature is None else f"{rule.metric}:{rule.feature}",
                feature=rule.feature,
                op=rule.op,
                value=value,
                threshold=rule.threshold,
                report=result.report_path,
                webhook=shown_url(webhook) if webhook is not None else None,
            )
            log.warning(
                "alert %s fired for model %s: %s = %.6g %s %.6g (report %s)",
                alert.rule,
                alert.model,
                alert.metric,
                alert.value,
                alert.op,
                alert.threshold,
                alert.report,
            )
            if webhook is not None:
                if client is None and own_client is None:
                    own_client = httpx.Client(timeout=WEBHOOK_TIMEOUT_S)
                alert = _post(client or own_client, alert, webhook)  # type: ignore[arg-type]
            fired.append(alert)
    finally:
        if own_client is not None:
            own_client.close()
    return fired


def shown_url(url: str) -> str:
    """``url`` as reports and logs show it: scheme, host and port, without credentials, path or query."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    hidden = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{hidden}"


def _post(client: httpx.Client, alert: Alert, url: str) -> Alert:
    body = {
        "rule": alert.rule,
        "model": alert.model,
        "metric": alert.metric,
        "value": alert.value,
        "threshold": alert.threshold,
        "report": alert.report,
    }
    try:
        response = client.post(url, json=body)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}".replace(url, alert.webhook or "")
        log.error("alert %s: webhook %s failed: %s", alert.rule, alert.webhook, error)
        return dataclasses.replace(alert, delivered=False, error=error)
    return dataclasses.replace(alert, delivered=True)


__all__ = [
    "WEBHOOK_TIMEOUT_S",
    "Alert",
    "AlertRule",
    "RetrainAction",
    "check_rules",
    "evaluate",
    "load_rules",
    "parse_rules",
    "parse_rules_yaml",
    "rules_yaml",
]
