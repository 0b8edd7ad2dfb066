"""The monitoring job: a model's served inputs against its baseline, as a report, metrics and alerts.

:func:`run_monitor` reads the payload logs of one model (non-shadow requests answered with status 200, in a
time window), turns the dataframe-style inputs of each request (``{"column": [values…], …}``) into rows, and
compares them with the baseline (:mod:`shipyard.monitoring.baseline`) by
:func:`~shipyard.data.drift.dataset_drift`. It writes, under the artifact store:

* ``monitoring/reports/<model>/<YYYYmmddTHHMMSSZ>.html`` — the drift report;
* ``monitoring/reports/<model>/<YYYYmmddTHHMMSSZ>.json`` — the same result as JSON, with the alerts;
* ``monitoring/metrics/<model>.prom`` — Prometheus gauges in text format, for node-exporter's textfile
  collector (point ``--collector.textfile.directory`` at ``monitoring/metrics``): ``shipyard_drift_share``,
  ``shipyard_dataset_drift``, ``shipyard_feature_drift_score`` (the test statistic) and
  ``shipyard_feature_drift_detected``.

Requests whose inputs are not a dict of equal-length lists (tensor models, single records) are skipped and
counted.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pandas as pd
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from shipyard.data.drift import DatasetDrift, StatTest, dataset_drift
from shipyard.data.report import render_drift_report
from shipyard.errors import InvalidInput
from shipyard.monitoring.alerts import Alert, AlertRule, check_rules, evaluate
from shipyard.monitoring.baseline import check_model_name, load_baseline
from shipyard.serving.payloads import read_payloads
from shipyard.store.artifacts import ArtifactStore

REPORTS_PREFIX = "monitoring/reports"
METRICS_PREFIX = "monitoring/metrics"


@dataclass(frozen=True)
class MonitorResult:
    """One monitoring run. Paths are relative to the artifact store root.

    Attributes:
        window: the (since, until) the payloads were read from; None for an open end.
        rows: input rows compared; ``records`` requests gave them, ``skipped_records`` had unusable inputs.
        extra_columns: columns served that the baseline does not have (not compared).
    """

    model: str
    rows: int
    window: tuple[datetime | None, datetime | None]
    drift: DatasetDrift
    report_path: str
    json_path: str
    metrics_path: str
    alerts_fired: tuple[Alert, ...] = ()
    records: int = 0
    skipped_records: int = 0
    extra_columns: tuple[str, ...] = ()
    generated: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (non-finite numbers become None)."""
        since, until = self.window
        return _finite(
            {
                "model": self.model,
                "generated": _iso(self.generated),
                "window": {"since": _iso(since), "until": _iso(until)},
                "rows": self.rows,
                "records": self.records,
                "skipped_records": self.skipped_records,
                "extra_columns": list(self.extra_columns),
                "drifted_columns": [c.column for c in self.drift.columns if c.drift_detected],
                "drift": self.drift.to_dict(),
                "report_path": self.report_path,
                "json_path": self.json_path,
                "metrics_path": self.metrics_path,
                "alerts_fired": [dataclasses.asdict(a) for a in self.alerts_fired],
            }
        )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def served_inputs(inputs: Iterable[str | None]) -> tuple[pd.DataFrame, int, int]:
    """Rows from the JSON ``inputs`` of payload records: (frame, records used, records skipped).

    A record is used when its inputs are a non-empty dict of equal-length lists; a column missing from some
    records is None there.
    """
    columns: dict[str, list[Any]] = {}
    n = used = skipped = 0
    for text in inputs:
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = None
        usable = isinstance(data, dict) and data and all(isinstance(v, list) for v in data.values())
        lengths = {len(v) for v in data.values()} if usable else set()
        if len(lengths) != 1:
            skipped += 1
            continue
        (k,) = lengths
        for name in data:
            columns.setdefault(str(name), [None] * n)
        for name, values in columns.items():
            values.extend(data.get(name) or [None] * k)
        n += k
        used += 1
    return pd.DataFrame(columns, index=pd.RangeIndex(n)), used, skipped


def _metrics(model: str, drift: DatasetDrift) -> bytes:
    registry = CollectorRegistry()
    share = Gauge(
        "shipyard_drift_share", "Share of compared features that drifted", ["model"], registry=registry
    )
    dataset = Gauge(
        "shipyard_dataset_drift", "1 when the dataset drifted, else 0", ["model"], registry=registry
    )
    score = Gauge(
        "shipyard_feature_drift_score",
        "Drift test statistic of a feature (p-value or distance, per test)",
        ["model", "feature", "test"],
        registry=registry,
    )
    detected = Gauge(
        "shipyard_feature_drift_detected",
        "1 when the feature drifted, else 0",
        ["model", "feature"],
        registry=registry,
    )
    share.labels(model=model).set(drift.drift_share)
    dataset.labels(model=model).set(int(drift.dataset_drift))
    for column in drift.columns:
        score.labels(model=model, feature=column.column, test=column.test).set(column.statistic)
        detected.labels(model=model, feature=column.column).set(int(column.drift_detected))
    return generate_latest(registry)


def run_monitor(
    store: ArtifactStore,
    model: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    min_rows: int = 50,
    tests: Mapping[str, StatTest | str] | None = None,
    share_threshold: float = 0.5,
    rules: Sequence[AlertRule] = (),
    now: datetime | None = None,
    client: httpx.Client | None = None,
) -> MonitorResult:
    """Compare the inputs ``model`` served in [``since``, ``until``) with its baseline; write the outputs.

    Naive datetimes are taken as UTC. ``tests`` overrides the drift test per column; ``rules`` are evaluated
    on the result (``client``: the httpx client for their webhooks, see
    :func:`~shipyard.monitoring.alerts.evaluate`).

    Raises:
        NotFound: ``model`` has no baseline.
        InvalidInput: a bad model name or window, a rule naming an unknown feature, or fewer than
            ``min_rows`` usable input rows in the window (the count and window named).
    """
    check_model_name(model)
    since, until, now = _utc(since), _utc(until), _utc(now) or datetime.now(UTC)
    if since is not None and until is not None and since >= until:
        raise InvalidInput(
            f"monitoring window is empty: since {since.isoformat()} >= until {until.isoformat()}"
        )
    baseline = load_baseline(store, model)
    check_rules(rules, [str(c) for c in baseline.columns])

    payloads = read_payloads(store, model)
    keep = (~payloads["shadow"].fillna(False).astype(bool)) & (payloads["status"] == 200)
    if since is not None:
        keep &= payloads["timestamp"] >= pd.Timestamp(since)
    if until is not None:
        keep &= payloads["timestamp"] < pd.Timestamp(until)
    served, used, skipped = served_inputs(payloads.loc[keep, "inputs"])
    window = (since, until)
    if len(served) < min_rows:
        raise InvalidInput(
            f"model {model!r} served {len(served)} usable input rows ({used} requests, {skipped} skipped) "
            f"in {_describe(window)}; at least {min_rows} are needed: widen the window or lower min_rows"
        )
    current = served[[c for c in baseline.columns if c in served.columns]]
    extra = tuple(c for c in served.columns if c not in set(baseline.columns))
    drift = dataset_drift(baseline, current, tests=tests, share_threshold=share_threshold)

    stem = f"{REPORTS_PREFIX}/{model}/{now:%Y%m%dT%H%M%SZ}"
    result = MonitorResult(
        model=model,
        rows=len(current),
        window=window,
        drift=drift,
        report_path=f"{stem}.html",
        json_path=f"{stem}.json",
        metrics_path=f"{METRICS_PREFIX}/{model}.prom",
        records=used,
        skipped_records=skipped,
        extra_columns=extra,
        generated=now,
    )
    html = render_drift_report(
        baseline,
        current,
        drift,
        title=f"Data drift: {model}",
        generated=f"{now:%Y-%m-%d %H:%M:%S} UTC, {_describe(window)}",
    )
    store.put_bytes(html.encode("utf-8"), result.report_path)
    store.put_bytes(_metrics(model, drift), result.metrics_path)
    # Alerts after the report exists (a webhook receiver may fetch it), before the JSON that records them.
    result = dataclasses.replace(result, alerts_fired=tuple(evaluate(rules, result, client=client)))
    store.put_bytes(json.dumps(result.to_dict(), indent=2).encode("utf-8"), result.json_path)
    return result


def _describe(window: tuple[datetime | None, datetime | None]) -> str:
    since, until = window
    if since is None and until is None:
        return "all logged payloads"
    return f"[{_iso(since) or 'start'}, {_iso(until) or 'now'})"


__all__ = ["METRICS_PREFIX", "REPORTS_PREFIX", "MonitorResult", "run_monitor", "served_inputs"]
