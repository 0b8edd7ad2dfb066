"""Audits: finding the model and the data, judging, the report and the records (see the package doc)."""

from __future__ import annotations

import hashlib
import html
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from shipyard.config import Settings, get_settings
from shipyard.data.fairness import (
    AuditOutcome,
    AuditRules,
    audit_predictions,
    check_performance_rules,
    check_segments,
    parse_audit_rules,
)
from shipyard.errors import InvalidInput

TAG_PREFIX = "shipyard.audit."
ARTIFACTS = "audit"
_CLASSIFIER_METRICS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "example_count",
)
_REGRESSOR_METRICS = ("mae", "mse", "rmse", "r2", "mape", "max_error", "example_count")


@dataclass(frozen=True)
class AuditResult:
    """An audit: what it found, the run that recorded it and the version it was written on (if any)."""

    model_uri: str
    data: str
    outcome: AuditOutcome
    html: str
    run_id: str | None = None
    version_uri: str | None = None

    @property
    def passed(self) -> bool:
        return self.outcome.passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_uri,
            "version": self.version_uri,
            "data": self.data,
            "run_id": self.run_id,
            **self.outcome.to_dict(),
        }


def load_audit_rules(path: str | os.PathLike[str]) -> AuditRules:
    """An audit rules file (:mod:`shipyard.data.fairness`'s format).

    Raises:
        InvalidInput: unreadable, not YAML, or a bad field (named).
    """
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"cannot read audit rules {os.fspath(path)!r}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise InvalidInput(f"audit rules {os.fspath(path)!r} are not valid YAML: {exc}") from exc
    return parse_audit_rules(data, source=f"audit rules {os.fspath(path)!r}")


def audit_model(
    model_uri: str,
    data: pd.DataFrame | str | os.PathLike[str],
    *,
    segments: Sequence[str] | None = None,
    label: str | None = None,
    rules: AuditRules | str | os.PathLike[str] | None = None,
    positive: Any = None,
    task: str = "auto",
    record: bool = True,
    trusted: bool = False,
    settings: Settings | None = None,
) -> AuditResult:
    """Audit ``model_uri`` on labelled ``data`` (a DataFrame, a Parquet/CSV path or URL, or ``data:NAME@V``).

    ``segments``, ``label`` and ``positive`` override the rules' own. With ``record``, the audit is a tracked
    run and, for a registered version, tags on the version.

    Raises:
        InvalidInput: a segment or label column the data does not have (named, with the columns there are),
            a bad rules file, a positive label the data does not have, or rows the model cannot take.
    """
    from shipyard.evaluation.evaluating import read_data
    from shipyard.models import load

    settings = settings or get_settings()
    found = rules if isinstance(rules, AuditRules) else load_audit_rules(rules) if rules is not None else None
    found = (found or AuditRules()).model_copy(deep=True)
    if segments:
        found.segments = list(segments)
    if label:
        found.label = label
    if positive is not None:
        found.positive = positive
    if task not in ("auto", "classification", "regression"):
        raise InvalidInput(f"task {task!r} is unknown; use auto, classification or regression")
    if not found.label:
        raise InvalidInput("an audit needs the label column (--label, or label: in the rules)")
    frame, source = read_data(data, settings)
    check_segments(frame, found.segments, found.label, source)
    model = load(model_uri, settings=settings, trusted=trusted)
    classifier = task == "classification" or (
        task == "auto" and callable(getattr(model.raw, "predict_proba", None))
    )
    check_performance_rules(found, _CLASSIFIER_METRICS if classifier else _REGRESSOR_METRICS)
    y = frame[found.label].to_numpy()
    predicted = np.asarray(model.predict(frame.drop(columns=[found.label])))
    if predicted.ndim != 1 or len(predicted) != len(frame):
        raise InvalidInput(f"{model_uri} gave predictions of shape {predicted.shape} for {len(frame)} rows")
    outcome = audit_predictions(frame, y, predicted, found, classifier=classifier, classes=model.classes)
    version_uri = model.version.uri if model.version is not None else None
    report = render_html(model_uri if version_uri is None else version_uri, source, outcome)
    result = AuditResult(model_uri, source, outcome, report, version_uri=version_uri)
    if record:
        result = _record(result, found, settings)
    return result


def render_html(model: str, source: str, outcome: AuditOutcome) -> str:
    """A self-contained HTML report (every value escaped)."""
    e = html.escape
    verdict = (
        "passed" if outcome.passed else f"failed ({len(outcome.failed)} of {len(outcome.checks)} checks)"
    )
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Audit</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}",
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}",
        "td:first-child,th:first-child{text-align:left}.fail{color:#b00020;font-weight:bold}.pass{color:#176b2c}",
        "</style></head><body>",
        f"<h1>Audit of {e(model)}</h1>",
        f"<p>data: {e(source)}; {outcome.rows:,} rows; {e(outcome.task)}",
        "" if outcome.positive is None else f"; favourable outcome: {e(str(outcome.positive))}",
        f"</p><p class='{'pass' if outcome.passed else 'fail'}'>{e(verdict)}</p>",
        "<h2>Checks</h2><table><tr><th>where</th><th>rule</th><th>value</th><th>threshold</th><th>verdict</th></tr>",
    ]
    for check in outcome.checks:
        value = "" if check.value is None else f"{check.value:.4g}"
        state = "pass" if check.passed else "fail"
        parts.append(
            f"<tr><td>{e(check.segment)}</td><td>{e(check.rule)}</td><td>{e(value)}</td>"
            f"<td>{e(check.threshold)}</td><td class='{state}'>{state.upper()} {e(check.detail)}</td></tr>"
        )
    parts.append("</table>")
    for segment in outcome.segments:
        parts.append(f"<h2>Segment {e(segment.column)}</h2>")
        gaps = ", ".join(
            f"{e(k)} {('n/a' if v is None else f'{v:.4g}')}" for k, v in segment.fairness.items()
        )
        if gaps:
            parts.append(f"<p>{gaps}</p>")
        names = sorted({m for g in segment.groups for m in g.metrics if m != "example_count"})
        rates = sorted({r for g in segment.groups for r in g.rates})
        header = "".join(f"<th>{e(n)}</th>" for n in (*names, *rates))
        parts.append(f"<table><tr><th>group</th><th>rows</th><th>judged</th>{header}</tr>")
        for group in segment.groups:
            cells = [group.metrics.get(n) for n in names] + [group.rates.get(r) for r in rates]
            shown = "".join(f"<td>{'' if v is None else f'{v:.4g}'}</td>" for v in cells)
            judged = "yes" if group.judged else "no"
            parts.append(f"<tr><td>{e(group.value)}</td><td>{group.rows}</td><td>{judged}</td>{shown}</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)


def _record(result: AuditResult, rules: AuditRules, settings: Settings) -> AuditResult:
    from dataclasses import replace

    from shipyard.registry.fluent import registry_client
    from shipyard.registry.uri import parse_model_uri
    from shipyard.tracking.fluent import start_run

    name = _model_name(result)
    outcome = result.outcome
    status = "passed" if outcome.passed else "failed"
    rules_text = json.dumps(rules.model_dump(mode="json"), sort_keys=True)
    with start_run(
        f"audits/{name}",
        tags={f"{TAG_PREFIX}status": status, f"{TAG_PREFIX}model": result.version_uri or result.model_uri},
        log_system_metrics=False,
        settings=settings,
    ) as run:
        run.log_params(
            {
                "model": result.version_uri or result.model_uri,
                "data": result.data[:500],
                "segments": ",".join(rules.segments)[:500],
                "label": rules.label or "",
                "positive": "" if outcome.positive is None else str(outcome.positive),
                "rules_sha256": hashlib.sha256(rules_text.encode()).hexdigest(),
            }
        )
        metrics = {k: v for k, v in outcome.overall.items() if np.isfinite(v)}
        for segment in outcome.segments:
            for metric, value in segment.fairness.items():
                if value is not None:
                    metrics[f"fairness/{_key(segment.column)}/{metric}"] = value
        metrics["checks_failed"] = float(len(outcome.failed))
        run.log_metrics(metrics)
        document = json.dumps({**result.to_dict(), "run_id": run.run_id}, indent=2)
        run.log_text(document, f"{ARTIFACTS}/audit.json")
        run.log_text(result.html, f"{ARTIFACTS}/audit.html")
        run_id = run.run_id
    if result.version_uri is not None:
        parsed = parse_model_uri(result.version_uri)
        failed = "; ".join(f"{c.segment}: {c.rule}" for c in outcome.failed[:5])
        registry_client(settings).set_version_tags(
            parsed.name,  # type: ignore[union-attr]
            int(parsed.version),  # type: ignore[union-attr, arg-type]
            {
                f"{TAG_PREFIX}status": status,
                f"{TAG_PREFIX}run": run_id,
                f"{TAG_PREFIX}at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                f"{TAG_PREFIX}failed": failed[:500],
            },
        )
    return replace(result, run_id=run_id)


def _model_name(result: AuditResult) -> str:
    if result.version_uri is not None:
        return result.version_uri.removeprefix("models:/").rsplit("/", 1)[0]
    return Path(result.model_uri.rstrip("/")).name or "model"


def _key(text: str) -> str:
    return "".join(c if c.isalnum() or c in "_-. " else "_" for c in text)[:100]
