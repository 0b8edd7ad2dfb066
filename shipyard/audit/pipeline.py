"""Audits as a pipeline, so the pipeline scheduler runs them: ``shipyard audit schedule`` or

    shipyard pipeline schedule shipyard.audit.pipeline:auditing --cron "0 6 * * 1" \\
        -p model=models:/churn@champion -p data=/data/eval.parquet -p segments=region,age_band

Each run audits the version the URI names at that moment (an alias follows its moves), records the audit
on it, and fails the step (so the schedule shows it) when a check fails. The rules travel as YAML text in a
parameter: the schedule holds them as they were when scheduled.
"""

from __future__ import annotations

import json

import yaml

from shipyard.audit import audit_model
from shipyard.data.fairness import parse_audit_rules
from shipyard.errors import ModelValidationFailed
from shipyard.pipelines.dsl import component, pipeline
from shipyard.pipelines.types import Artifact, Output


@component(cache=False)  # the same parameters audit whatever the alias points at now
def audit_step(
    result: Output[Artifact],
    model: str,
    data: str,
    segments: str = "",
    label: str = "",
    rules: str = "",
    positive: str = "",
    task: str = "auto",
) -> bool:
    """Audit ``model`` on ``data``; write the audit's JSON; fail the step when a check fails.

    Raises:
        ModelValidationFailed: naming the failed checks (the audit is recorded first).
    """
    parsed = parse_audit_rules(yaml.safe_load(rules), source="the rules parameter") if rules.strip() else None
    found = audit_model(
        model,
        data,
        segments=[s.strip() for s in segments.split(",") if s.strip()] or None,
        label=label or None,
        rules=parsed,
        positive=positive or None,
        task=task,
    )
    with open(result.path, "w", encoding="utf-8") as out:
        json.dump(found.to_dict(), out, indent=2)
    if not found.passed:
        failed = "; ".join(f"{c.segment}: {c.rule} {c.value} not {c.threshold}" for c in found.outcome.failed)
        raise ModelValidationFailed(f"the audit of {found.version_uri or model} failed: {failed}")
    return True


@pipeline(cache=False)
def auditing(
    model: str,
    data: str,
    segments: str = "",
    label: str = "",
    rules: str = "",
    positive: str = "",
    task: str = "auto",
) -> None:
    """Audit one model version: performance per segment and fairness between groups."""
    audit_step(
        model=model, data=data, segments=segments, label=label, rules=rules, positive=positive, task=task
    )


__all__ = ["audit_step", "auditing"]
