"""Validation thresholds: bounds on a metric, and on its change against a baseline model.

:class:`MetricRule` is the rule a gates file's ``metrics:`` entry holds; :class:`MetricThreshold` is what
:func:`shipyard.evaluate` takes, the same rule plus relative changes, and MLflow's ``MetricThreshold``
spelling (``threshold``, ``min_absolute_change``, ``min_relative_change``, ``greater_is_better``) read
into it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from shipyard.errors import InvalidInput, field_problems

BOUNDS = ("min", "max")
CHANGES = ("min_delta", "max_delta", "min_relative_delta", "max_relative_delta")


class MetricRule(BaseModel):
    """Bounds on a metric's value (``min``, ``max``) and on ``delta`` = candidate - baseline."""

    model_config = ConfigDict(extra="forbid")

    min: float | None = None
    max: float | None = None
    min_delta: float | None = None
    max_delta: float | None = None


class MetricThreshold(MetricRule):
    """A :class:`MetricRule` plus bounds on the relative change, (candidate - baseline) / abs(baseline).

    ``{"min": 0.8, "min_delta": -0.01}``: at least 0.8, and at most 0.01 below the baseline;
    ``{"max_relative_delta": 0.05}`` (a loss): at most 5% above the baseline.
    """

    min_relative_delta: float | None = None
    max_relative_delta: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _mlflow_spelling(cls, data: Any) -> Any:
        """MLflow's fields: its threshold and changes are bounds in the direction ``greater_is_better``."""
        mlflow = ("threshold", "min_absolute_change", "min_relative_change", "greater_is_better")
        if not isinstance(data, Mapping) or not any(k in data for k in mlflow):
            return data
        rest = {k: v for k, v in data.items() if k not in mlflow}
        higher = data.get("greater_is_better", True)
        if not isinstance(higher, bool):
            raise ValueError("greater_is_better must be true or false")
        sign = 1 if higher else -1
        for key, ours in (
            ("threshold", "min" if higher else "max"),
            ("min_absolute_change", "min_delta" if higher else "max_delta"),
            ("min_relative_change", "min_relative_delta" if higher else "max_relative_delta"),
        ):
            if data.get(key) is not None:
                value = data[key]
                rest[ours] = value if key == "threshold" else sign * float(value)
        return rest

    @model_validator(mode="after")
    def _some_bound(self) -> MetricThreshold:
        if all(getattr(self, name) is None for name in (*BOUNDS, *CHANGES)):
            raise ValueError(f"give at least one of {', '.join((*BOUNDS, *CHANGES))}")
        return self

    @property
    def compares(self) -> bool:
        """Whether a baseline is needed."""
        return any(getattr(self, name) is not None for name in CHANGES)


@dataclass(frozen=True)
class ThresholdResult:
    """One bound's verdict: ``metric`` was ``value`` (the baseline's: ``baseline``), against ``limit``."""

    metric: str
    bound: str
    limit: float
    value: float
    passed: bool
    baseline: float | None = None

    def describe(self) -> str:
        """``accuracy 0.8123 < min 0.9``; for a change, the change and both values."""
        ops = (">=", "<") if self.bound.startswith("min") else ("<=", ">")
        op = ops[0] if self.passed else ops[1]
        if self.bound in BOUNDS:
            return f"{self.metric} {self.value:.4g} {op} {self.bound} {self.limit:g}"
        change = _change(self.bound, self.value, self.baseline)
        return (
            f"{self.metric} {self.bound.removeprefix('min_').removeprefix('max_')} {change:+.4g} {op} "
            f"{self.bound} {self.limit:+g} ({self.value:.4g} vs baseline {self.baseline:.4g})"
        )


def parse_thresholds(thresholds: Mapping[str, Any]) -> dict[str, MetricThreshold]:
    """Each metric's threshold from a `MetricThreshold`, a `MetricRule` or a mapping of its fields.

    Raises:
        InvalidInput: an unknown field or bad value, naming the metric and the field.
    """
    if not isinstance(thresholds, Mapping):
        raise InvalidInput(
            f"validation_thresholds must map metric names to rules, got {type(thresholds).__name__}"
        )
    parsed = {}
    for name, rule in thresholds.items():
        data = rule.model_dump(exclude_none=True) if isinstance(rule, BaseModel) else rule
        try:
            parsed[str(name)] = MetricThreshold.model_validate(data)
        except ValidationError as exc:
            raise InvalidInput(f"validation_thresholds.{name}: {field_problems(exc)}") from exc
    return parsed


def load_thresholds(path: Path) -> dict[str, MetricThreshold]:
    """Thresholds from a YAML file: ``{metric: rule}``, or a gates file (its ``metrics:`` are read).

    Raises:
        InvalidInput: an unreadable file or bad YAML, or a bad rule (the file, metric and field named).
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"cannot read thresholds {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{path} is not valid YAML: {exc}") from exc
    if isinstance(data, Mapping) and isinstance(data.get("metrics"), Mapping):
        data = data["metrics"]
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{path}: expected a mapping of metric names to rules (or a gates file)")
    try:
        return parse_thresholds(data)
    except InvalidInput as exc:
        raise InvalidInput(f"{path}: {exc}") from exc


def check_thresholds(
    thresholds: Mapping[str, MetricThreshold],
    metrics: Mapping[str, float],
    baseline: Mapping[str, float] | None,
) -> list[ThresholdResult]:
    """Every bound of every threshold, in order; the names were checked against ``metrics`` beforehand."""
    results = []
    for name, threshold in thresholds.items():
        value = metrics[name]
        for bound in (*BOUNDS, *CHANGES):
            limit = getattr(threshold, bound)
            if limit is None:
                continue
            old = baseline.get(name) if baseline is not None and bound in CHANGES else None
            measured = value if bound in BOUNDS else _change(bound, value, old)
            passed = measured >= limit if bound.startswith("min") else measured <= limit
            results.append(ThresholdResult(name, bound, limit, value, passed, old))
    return results


def _change(bound: str, value: float, baseline: float | None) -> float:
    assert baseline is not None
    delta = value - baseline
    if "relative" not in bound:
        return delta
    if baseline == 0:
        return 0.0 if delta == 0 else float("inf") if delta > 0 else float("-inf")
    return delta / abs(baseline)
