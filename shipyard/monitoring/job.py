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
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import pandas as pd
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from shipyard.data.drift import DatasetDrift, StatTest, dataset_drift
from shipyard.data.model_metrics import finite
from shipyard.data.report import render_drift_report
from shipyard.data.schema import Anomaly, Schema, infer_schema, validate
from shipyard.data.statistics import compute_statistics
from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring.alerts import Alert, AlertRule, check_rules, evaluate
from shipyard.monitoring.baseline import check_model_name, find_baseline
from shipyard.monitoring.performance import PerformanceResult, compute_performance
from shipyard.monitoring.window import describe, iso, utc
from shipyard.payloads import METRICS_PREFIX, model_inputs, read_payloads
from shipyard.registry.uri import RegistryUri, parse_model_uri
from shipyard.store.artifacts import ArtifactStore

if TYPE_CHECKING:
    from shipyard.config import Settings
    from shipyard.monitoring.retraining import Retraining
    from shipyard.registry.client import RegistryClient

_KEY_UNSAFE = re.compile(r"[^\w\-./: ]")
REPORTS_PREFIX = "monitoring/reports"
# Every gauge a monitoring run may write (monitoring/grafana's dashboard is checked against these).
MONITOR_METRICS = (
    "shipyard_drift_share",
    "shipyard_dataset_drift",
    "shipyard_feature_drift_score",
    "shipyard_feature_drift_detected",
    "shipyard_monitor_rows",
    "shipyard_model_performance",
    "shipyard_labeled_rows",
)


@dataclass(frozen=True)
class MonitorResult:
    """One monitoring run. Paths are relative to the artifact store root.

    Attributes:
        window: the (since, until) the payloads were read from; None for an open end.
        rows: input rows compared; ``records`` requests gave them, ``skipped_records`` had unusable inputs.
        extra_columns: columns served that the baseline does not have (not compared).
        version: the version that served most in the window; baseline_source: where the baseline came from.
        skew: anomalies of the served inputs against the schema inferred from the baseline (types, ranges,
            categories, nulls): training-serving skew.
        performance: metrics against ground truth joined by request id; None with ``performance_note``
            saying why (no labels yet, none in the window).
        run_id: the tracked run that recorded this monitoring run (with ``settings``).
        registered_model: the registry's name for the model; served_uri: the registered version that served
            most (``models:/churn/3``), when the payload log says.
        retrainings: what the fired rules' actions did (:mod:`shipyard.monitoring.retraining`).
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
    version: str | None = None
    baseline_source: str = ""
    skew: tuple[Anomaly, ...] = ()
    performance: PerformanceResult | None = None
    performance_note: str | None = None
    run_id: str | None = None
    registered_model: str | None = None
    served_uri: str | None = None
    retrainings: tuple[Retraining, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (non-finite numbers become None)."""
        since, until = self.window
        return finite(
            {
                "model": self.model,
                "generated": iso(self.generated),
                "window": {"since": iso(since), "until": iso(until)},
                "rows": self.rows,
                "records": self.records,
                "skipped_records": self.skipped_records,
                "version": self.version,
                "baseline": self.baseline_source,
                "extra_columns": list(self.extra_columns),
                "drifted_columns": [c.column for c in self.drift.columns if c.drift_detected],
                "drift": self.drift.to_dict(),
                "report_path": self.report_path,
                "json_path": self.json_path,
                "metrics_path": self.metrics_path,
                "alerts_fired": [dataclasses.asdict(a) for a in self.alerts_fired],
                "skew": [a.to_dict() for a in self.skew],
                "performance": None if self.performance is None else self.performance.to_dict(),
                "performance_note": self.performance_note,
                "run_id": self.run_id,
                "registered_model": self.registered_model,
                "served_uri": self.served_uri,
                "retrainings": [r.to_dict() for r in self.retrainings],
            }
        )


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


def _metrics(result: MonitorResult) -> bytes:
    model, drift = result.model, result.drift
    registry = CollectorRegistry()

    def gauge(name: str, documentation: str, labels: list[str]) -> Gauge:
        return Gauge(name, documentation, labels, registry=registry)

    share = gauge("shipyard_drift_share", "Share of compared features that drifted", ["model"])
    dataset = gauge("shipyard_dataset_drift", "1 when the dataset drifted, else 0", ["model"])
    score = gauge(
        "shipyard_feature_drift_score",
        "Drift test statistic of a feature (p-value or distance, per test)",
        ["model", "feature", "test"],
    )
    detected = gauge(
        "shipyard_feature_drift_detected", "1 when the feature drifted, else 0", ["model", "feature"]
    )
    rows = gauge("shipyard_monitor_rows", "Served input rows the last monitoring run compared", ["model"])
    share.labels(model=model).set(drift.drift_share)
    dataset.labels(model=model).set(int(drift.dataset_drift))
    rows.labels(model=model).set(result.rows)
    for column in drift.columns:
        score.labels(model=model, feature=column.column, test=column.test).set(column.statistic)
        detected.labels(model=model, feature=column.column).set(int(column.drift_detected))
    if result.performance is not None:
        performance = gauge(
            "shipyard_model_performance",
            "Model performance against ground truth joined by request id, over the monitoring window",
            ["model", "version", "metric"],
        )
        labeled = gauge(
            "shipyard_labeled_rows", "Predictions with ground truth in the window", ["model", "version"]
        )
        for version, metrics in result.performance.by_version.items():
            for metric, value in metrics.items():
                performance.labels(model=model, version=version, metric=metric).set(value)
        for version, count in result.performance.rows_by_version.items():
            labeled.labels(model=model, version=version).set(count)
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
    settings: Settings | None = None,
    registered_name: str | None = None,
    task: str = "auto",
) -> MonitorResult:
    """Compare the inputs ``model`` served in [``since``, ``until``) with its baseline; write the outputs.

    Naive datetimes are taken as UTC. ``tests`` overrides the drift test per column; ``rules`` are evaluated
    on the result (``client``: the httpx client for their webhooks, see
    :func:`~shipyard.monitoring.alerts.evaluate`).

    With ``settings`` (the tracking and registry stores), a model without a baseline of its own uses the one
    packaged with the registered version that served most in the window: the ``models:/<name>/<version>``
    the server logged with each request (so a model served under another name needs no ``registered_name``),
    else ``models:/<registered_name or model>/<version>``; ``registered_name`` overrides the logged name.
    The run is recorded as a tracked run in experiment ``monitoring/<model>``:
    drift and performance as metrics, the HTML and JSON reports as artifacts, so runs line up over time.

    When ground truth was added for served requests (:func:`~shipyard.monitoring.performance.save_labels`),
    performance metrics (``task``: classification, regression or auto) over the same window join the result.

    Raises:
        NotFound: ``model`` has no baseline.
        InvalidInput: a bad model name or window, a rule naming an unknown feature, or fewer than
            ``min_rows`` usable input rows in the window (the count and window named).
    """
    check_model_name(model)
    acting = any(rule.action is not None for rule in rules)
    if acting:
        from shipyard.monitoring.retraining import check_actions

        if settings is None:
            raise InvalidInput("alert rules with an action need settings (the stores to retrain into)")
        check_actions(rules)  # a rule that could never act is refused before any work
    since, until, now = utc(since), utc(until), utc(now) or datetime.now(UTC)
    if since is not None and until is not None and since >= until:
        raise InvalidInput(
            f"monitoring window is empty: since {since.isoformat()} >= until {until.isoformat()}"
        )
    payloads = read_payloads(store, model)
    keep = (~payloads["shadow"].fillna(False).astype(bool)) & (payloads["status"] == 200)
    if since is not None:
        keep &= payloads["timestamp"] >= pd.Timestamp(since)
    if until is not None:
        keep &= payloads["timestamp"] < pd.Timestamp(until)
    window_records = payloads.loc[keep]
    versions = window_records["version"].dropna()
    version = str(versions.value_counts().index[0]) if len(versions) else None

    registry = _registry(settings) if settings is not None else None
    lookup_name, lookup_version = registered_name, version
    if registered_name is None and version is not None:
        source = _registered_source(window_records.loc[window_records["version"] == version, "model_uri"])
        if source is not None:
            lookup_name, lookup_version = source
    found = find_baseline(
        store, model, registry=registry, version=lookup_version, registered_name=lookup_name
    )
    baseline = found.frame
    check_rules(rules, [str(c) for c in baseline.columns])

    served, used, skipped = served_inputs(model_inputs(window_records))
    window = (since, until)
    if len(served) < min_rows:
        raise InvalidInput(
            f"model {model!r} served {len(served)} usable input rows ({used} requests, {skipped} skipped) "
            f"in {describe(window)}; at least {min_rows} are needed: widen the window or lower min_rows"
        )
    current = served[[c for c in baseline.columns if c in served.columns]]
    extra = tuple(c for c in served.columns if c not in set(baseline.columns))
    drift = dataset_drift(baseline, current, tests=tests, share_threshold=share_threshold)
    skew = _skew(found.schema or infer_schema(compute_statistics(baseline)), current)
    performance, performance_note = _performance(store, model, since, until, task, payloads)

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
        version=version,
        baseline_source=found.source,
        skew=skew,
        performance=performance,
        performance_note=performance_note,
        registered_model=lookup_name or model,
        served_uri=None if lookup_version is None else f"models:/{lookup_name or model}/{lookup_version}",
    )
    html = render_drift_report(
        baseline,
        current,
        drift,
        title=f"Data drift: {model}",
        generated=f"{now:%Y-%m-%d %H:%M:%S} UTC, {describe(window)}",
    )
    store.put_bytes(html.encode("utf-8"), result.report_path)
    store.put_bytes(_metrics(result), result.metrics_path)
    # Alerts after the report exists (a webhook receiver may fetch it), before the JSON that records them.
    result = dataclasses.replace(result, alerts_fired=tuple(evaluate(rules, result, client=client)))
    document = json.dumps(result.to_dict(), indent=2).encode("utf-8")
    store.put_bytes(document, result.json_path)
    if settings is not None:
        result = dataclasses.replace(result, run_id=_track(settings, result, html, document))
        if acting and result.alerts_fired:
            from shipyard.monitoring.retraining import retrain_on

            result = dataclasses.replace(result, retrainings=retrain_on(result, rules, settings))
        # Again, with the run that recorded it (and what retraining did): a report listing links each
        # report to its run.
        store.put_bytes(json.dumps(result.to_dict(), indent=2).encode("utf-8"), result.json_path)
    return result


def _registered_source(model_uris: pd.Series) -> tuple[str, str] | None:
    """The registered name and version that answered most of these records, by the ``models:/name/N`` the
    server logged (a model served under another name, or another version label); None when the records do
    not say (files from before it was logged, or a version loaded from a run or a folder)."""
    for uri in model_uris.dropna().value_counts().index:
        try:
            parsed = parse_model_uri(str(uri))
        except InvalidInput:
            continue
        if isinstance(parsed, RegistryUri) and parsed.version is not None:
            return parsed.name, str(parsed.version)
    return None


def _registry(settings: Settings) -> RegistryClient:
    from shipyard.models import registry_client

    return registry_client(settings)


def _skew(schema: Schema, current: pd.DataFrame) -> tuple[Anomaly, ...]:
    """Training-serving skew: the served inputs checked against the training data's schema (packaged with
    the version, else inferred from the baseline sample)."""
    return validate(current, schema).anomalies


def _performance(
    store: ArtifactStore,
    model: str,
    since: datetime | None,
    until: datetime | None,
    task: str,
    payloads: pd.DataFrame,
) -> tuple[PerformanceResult | None, str | None]:
    """Performance over the window when ground truth was added, else None and why (never an error: drift
    monitoring must not fail because labels have not arrived yet)."""
    try:
        result = compute_performance(store, model, since=since, until=until, task=task, payloads=payloads)
        return result, None
    except (NotFound, InvalidInput) as exc:
        return None, str(exc)


def _track(settings: Settings, result: MonitorResult, html: str, document: bytes) -> str:
    """Record ``result`` as a finished run of experiment ``monitoring/<model>``; the run id."""
    from shipyard.tracking.fluent import start_run

    tags = {"shipyard.monitoring.model": result.model, "shipyard.monitoring.baseline": result.baseline_source}
    if result.version is not None:
        tags["shipyard.monitoring.version"] = result.version
    name = f"{result.model}-{result.generated:%Y%m%dT%H%M%S%fZ}" if result.generated else None
    with start_run(
        f"monitoring/{result.model}", name, tags=tags, log_system_metrics=False, settings=settings
    ) as run:
        since, until = result.window
        run.log_params({"since": iso(since) or "", "until": iso(until) or "", "rows": result.rows})
        metrics = {
            "drift_share": result.drift.drift_share,
            "dataset_drift": float(result.drift.dataset_drift),
            "drifted_columns": float(sum(c.drift_detected for c in result.drift.columns)),
            "rows": float(result.rows),
            "skew_anomalies": float(len(result.skew)),
            "alerts_fired": float(len(result.alerts_fired)),
        }
        for column in result.drift.columns:  # feature names may hold what metric keys cannot
            metrics.setdefault(f"drift/{_KEY_UNSAFE.sub('_', column.column).strip()[:200]}", column.statistic)
        if result.performance is not None:
            metrics.update({f"performance/{k}": v for k, v in result.performance.metrics.items()})
        run.log_metrics({k: v for k, v in metrics.items() if math.isfinite(v)})
        run.log_text(html, "drift_report.html")
        run.log_text(document.decode("utf-8"), "monitor_result.json")
        return run.run_id


__all__ = [
    "METRICS_PREFIX",
    "MONITOR_METRICS",
    "REPORTS_PREFIX",
    "MonitorResult",
    "run_monitor",
    "served_inputs",
]
