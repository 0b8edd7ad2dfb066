"""Model audits, the pure part: performance per segment and fairness between its groups, judged against rules.

A rules file (YAML)::

    label: approved                  # the data's label column (or --label)
    positive: 1                      # the favourable outcome (default: the larger of two labels)
    segments: [region, age_band]     # columns whose values are the groups (or --segments)
    min_rows: 30                     # smaller groups are reported, not judged (default 30)
    performance:                     # each judged group of each segment: these metrics, at least / at most
      accuracy: {min: 0.8}
    fairness:                        # between the judged groups of each segment, at most:
      demographic_parity_difference: {max: 0.1}
      equalized_odds_difference: {max: 0.15}
      predictive_parity_difference: {max: 0.1}

The fairness metrics follow fairlearn's definitions (``fairlearn.metrics``; the tests check ours against it):

* **demographic parity difference**: the largest gap between two groups' selection rates, P(prediction =
  positive);
* **equalized odds difference**: the larger of the largest gaps in true-positive rate and in false-positive
  rate;
* **predictive parity difference**: the largest gap in precision, P(label = positive | prediction =
  positive).

A rate a group cannot have (no positive labels for its true-positive rate, say) is left out of that metric's
gaps. A regressor's audit judges performance per group only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shipyard.data.model_metrics import classifier_metrics, finite, plain, regressor_metrics
from shipyard.data.thresholds import MetricRule
from shipyard.errors import InvalidInput, field_problems

FAIRNESS_METRICS = (
    "demographic_parity_difference",
    "equalized_odds_difference",
    "predictive_parity_difference",
)
DEFAULT_MIN_ROWS = 30


class FairnessBound(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max: float = Field(ge=0)


class AuditRules(BaseModel):
    """A parsed audit rules file (see the module doc)."""

    model_config = ConfigDict(extra="forbid")

    label: str | None = None
    positive: Any = None
    segments: list[str] = Field(default_factory=list)
    min_rows: int = Field(DEFAULT_MIN_ROWS, ge=1)
    performance: dict[str, MetricRule] = Field(default_factory=dict)
    fairness: dict[str, FairnessBound] = Field(default_factory=dict)


def parse_audit_rules(data: Any, source: str = "audit rules") -> AuditRules:
    """Rules from parsed YAML; an unknown field or fairness metric is named.

    Raises:
        InvalidInput: naming the field.
    """
    try:
        rules = AuditRules.model_validate(data if data is not None else {})
    except ValidationError as exc:
        raise InvalidInput(f"{source}: {field_problems(exc)}") from exc
    unknown = [name for name in rules.fairness if name not in FAIRNESS_METRICS]
    if unknown:
        raise InvalidInput(
            f"{source}: fairness metric {unknown[0]!r} is unknown; use {', '.join(FAIRNESS_METRICS)}"
        )
    return rules


@dataclass(frozen=True)
class GroupResult:
    """One group of a segment: its rows, metrics and (for a classifier) the rates fairness compares."""

    value: str
    rows: int
    judged: bool
    metrics: dict[str, float]
    rates: dict[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    """One rule on one segment (a group's metric, or a fairness gap between groups)."""

    segment: str
    rule: str
    value: float | None
    threshold: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class SegmentResult:
    column: str
    groups: list[GroupResult]
    fairness: dict[str, float | None]


@dataclass(frozen=True)
class AuditOutcome:
    """What :func:`audit_predictions` found: per segment, the groups and fairness gaps, and every check."""

    task: str
    positive: Any
    rows: int
    overall: dict[str, float]
    segments: list[SegmentResult]
    checks: list[Check]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        return finite(
            {
                "task": self.task,
                "positive": plain(self.positive),
                "rows": self.rows,
                "passed": self.passed,
                "overall": self.overall,
                "segments": [
                    {
                        "column": s.column,
                        "fairness": s.fairness,
                        "groups": [g.__dict__ for g in s.groups],
                    }
                    for s in self.segments
                ],
                "checks": [c.__dict__ for c in self.checks],
            }
        )


def check_segments(frame: pd.DataFrame, segments: Sequence[str], label: str, source: str) -> None:
    """Every segment column and the label are in ``frame``.

    Raises:
        InvalidInput: naming the missing column and the columns there are.
    """
    present = ", ".join(map(str, frame.columns[:30])) + (", ..." if len(frame.columns) > 30 else "")
    if label not in frame.columns:
        raise InvalidInput(f"label column {label!r} is not in the data ({source}); columns: {present}")
    missing = [c for c in segments if c not in frame.columns]
    if missing:
        raise InvalidInput(f"segment column {missing[0]!r} is not in the data ({source}); columns: {present}")
    if not segments:
        raise InvalidInput(
            "an audit needs at least one segment column (--segments or segments: in the rules)"
        )
    if label in segments:
        raise InvalidInput(f"segments: {label!r} is the label column")


def audit_predictions(
    frame: pd.DataFrame,
    y: np.ndarray,
    predicted: np.ndarray,
    rules: AuditRules,
    *,
    classifier: bool,
    classes: Sequence[Any] | None = None,
) -> AuditOutcome:
    """Judge ``predicted`` against ``y`` per group of each of ``rules.segments`` (columns of ``frame``).

    Raises:
        InvalidInput: a positive label the data does not have, or a multi-class audit without ``positive``.
    """
    y, predicted = np.asarray(y), np.asarray(predicted)
    positive = _positive(y, predicted, rules.positive, classes) if classifier else None
    overall = _metrics(y, predicted, classifier, classes)
    segments, checks = [], []
    for column in rules.segments:
        values = frame[column].astype("string").fillna("(missing)").to_numpy()
        groups = []
        for value in sorted(set(values)):
            mask = values == value
            rows = int(mask.sum())
            judged = rows >= rules.min_rows
            metrics = _metrics(y[mask], predicted[mask], classifier, classes)
            rates = _rates(y[mask], predicted[mask], positive) if classifier else {}
            groups.append(GroupResult(str(value), rows, judged, metrics, rates))
            if judged:
                checks.extend(_performance_checks(column, str(value), metrics, rules.performance))
        fairness = _gaps([g for g in groups if g.judged]) if classifier else {}
        segments.append(SegmentResult(column, groups, fairness))
        for name, bound in rules.fairness.items():
            if not classifier:
                checks.append(
                    Check(column, name, None, f"<= {bound.max:g}", True, "a regressor: not measured")
                )
                continue
            gap = fairness.get(name)
            judged_groups = sum(g.judged for g in groups)
            if gap is None:
                detail = f"{judged_groups} group(s) of at least {rules.min_rows} rows with the rate defined"
                checks.append(
                    Check(column, name, None, f"<= {bound.max:g}", False, f"not measurable: {detail}")
                )
                continue
            checks.append(Check(column, name, gap, f"<= {bound.max:g}", gap <= bound.max))
    task = "classification" if classifier else "regression"
    return AuditOutcome(task, positive, len(y), overall, segments, checks)


def _positive(y: np.ndarray, predicted: np.ndarray, given: Any, classes: Sequence[Any] | None) -> Any:
    labels = sorted(set(y.tolist()) | set(predicted.tolist()) | set(classes or []), key=str)
    if given is None:
        if len(labels) > 2:
            raise InvalidInput(
                f"the labels have {len(labels)} classes; name the favourable one with positive: (--positive)"
            )
        return labels[-1] if labels else None
    for label in labels:  # "1" from a command line is the label 1
        if label == given or str(label) == str(given):
            return label
    raise InvalidInput(f"positive label {given!r} is not among the labels: {', '.join(map(str, labels))}")


def _metrics(y: np.ndarray, predicted: np.ndarray, classifier: bool, classes: Any) -> dict[str, float]:
    if len(y) == 0:
        return {"example_count": 0.0}
    if classifier:
        return classifier_metrics(y, predicted, None, classes)[0]
    return regressor_metrics(y, predicted)[0]


def _rates(y: np.ndarray, predicted: np.ndarray, positive: Any) -> dict[str, float | None]:
    actual, chosen = y == positive, predicted == positive
    return {
        "selection_rate": _share(chosen.sum(), len(y)),
        "true_positive_rate": _share((chosen & actual).sum(), actual.sum()),
        "false_positive_rate": _share((chosen & ~actual).sum(), (~actual).sum()),
        "precision": _share((chosen & actual).sum(), chosen.sum()),
    }


def _share(part: Any, whole: Any) -> float | None:
    return float(part) / float(whole) if whole else None


def _gap(groups: Sequence[GroupResult], rate: str) -> float | None:
    values = [g.rates[rate] for g in groups if g.rates.get(rate) is not None]
    return float(max(values) - min(values)) if len(values) >= 2 else None  # type: ignore[type-var]


def _gaps(groups: Sequence[GroupResult]) -> dict[str, float | None]:
    tpr, fpr = _gap(groups, "true_positive_rate"), _gap(groups, "false_positive_rate")
    odds = [g for g in (tpr, fpr) if g is not None]
    return {
        "demographic_parity_difference": _gap(groups, "selection_rate"),
        "equalized_odds_difference": max(odds) if odds else None,
        "predictive_parity_difference": _gap(groups, "precision"),
    }


def _performance_checks(
    column: str, value: str, metrics: Mapping[str, float], rules: Mapping[str, MetricRule]
) -> list[Check]:
    checks = []
    for name, rule in rules.items():
        found = metrics.get(name)
        where = f"{column}={value}"
        bounds = []
        if rule.min is not None:
            bounds.append(f">= {rule.min:g}")
        if rule.max is not None:
            bounds.append(f"<= {rule.max:g}")
        if found is None or not math.isfinite(found):
            checks.append(
                Check(where, name, None, " and ".join(bounds), False, f"{name} is not defined here")
            )
            continue
        passed = (rule.min is None or found >= rule.min) and (rule.max is None or found <= rule.max)
        checks.append(Check(where, name, float(found), " and ".join(bounds), passed))
    return checks


def check_performance_rules(rules: AuditRules, known: Sequence[str]) -> None:
    """Refuse a performance rule on a metric this task does not have, or one that compares with a baseline.

    Raises:
        InvalidInput: naming the metric.
    """
    for name, rule in rules.performance.items():
        if name not in known:
            raise InvalidInput(f"audit rules: performance metric {name!r} is unknown; use {', '.join(known)}")
        if rule.min_delta is not None or rule.max_delta is not None:
            raise InvalidInput(f"audit rules: {name}: an audit has no baseline; use min and max")
        if rule.min is None and rule.max is None:
            raise InvalidInput(f"audit rules: {name}: give min or max")


__all__ = [
    "FAIRNESS_METRICS",
    "AuditOutcome",
    "AuditRules",
    "Check",
    "audit_predictions",
    "check_performance_rules",
    "check_segments",
    "parse_audit_rules",
]
