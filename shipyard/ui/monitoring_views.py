"""What the monitoring pages show, read from the JSON documents monitoring runs leave (no I/O here): a
report's time, its per-feature drift scores, its performance by version, and drift share as a chart series.

The documents are :meth:`~shipyard.monitoring.job.MonitorResult.to_dict`'s; a field an older or partial
document lacks is shown as missing, never an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shipyard.monitoring.reports import check_report_id

# How the drift tests' scores read: a p-value drifts below its threshold, a distance at or above it.
_SCORE_NAMES = {"p_value": ("p-value", "<"), "distance": ("distance", "≥")}


def report_ms(report_id: str) -> int:
    """The UTC moment a report id names (``20240131T120000Z``), in epoch milliseconds."""
    moment = datetime.strptime(check_report_id(report_id), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class FeatureScore:
    """One feature's drift verdict as a table row."""

    feature: str
    kind: str
    test: str
    score_name: str  # "p-value" or "distance"
    score: float | None
    rule: str  # when it counts as drift: "< 0.05", "≥ 0.1"
    drifted: bool
    reference_rows: int | None
    current_rows: int | None
    note: str | None


def feature_scores(document: dict[str, Any]) -> list[FeatureScore]:
    """The report's features, drifted first, then by name."""
    rows = []
    for column in (document.get("drift") or {}).get("columns") or []:
        name, op = _SCORE_NAMES.get(str(column.get("score_kind")), ("score", ""))
        threshold = column.get("threshold")
        rows.append(
            FeatureScore(
                feature=str(column.get("column")),
                kind=str(column.get("kind") or ""),
                test=str(column.get("test") or ""),
                score_name=name,
                score=column.get("statistic"),
                rule=f"{op} {threshold:g}" if isinstance(threshold, int | float) else "",
                drifted=bool(column.get("drift_detected")),
                reference_rows=column.get("reference_rows"),
                current_rows=column.get("current_rows"),
                note=column.get("note"),
            )
        )
    rows.sort(key=lambda r: (not r.drifted, r.feature))
    return rows


@dataclass(frozen=True)
class VersionPerformance:
    version: str
    rows: int | None
    metrics: dict[str, float | None]


@dataclass(frozen=True)
class Performance:
    """A report's performance against ground truth: overall and per version (shadow versions included)."""

    report_id: str
    task: str
    rows: int | None
    metric_names: list[str]
    overall: dict[str, float | None]
    by_version: list[VersionPerformance]
    labels: int | None
    unlabeled_predictions: int | None
    unmatched_labels: int | None


def performance(report_id: str, document: dict[str, Any]) -> Performance | None:
    """The report's performance, or None when its run had no labelled predictions."""
    found = document.get("performance")
    if not isinstance(found, dict):
        return None
    by_version = found.get("by_version") or {}
    counts = found.get("rows_by_version") or {}
    names = sorted(
        {name for metrics in by_version.values() for name in metrics} | set(found.get("metrics") or {})
    )
    return Performance(
        report_id=report_id,
        task=str(found.get("task") or ""),
        rows=found.get("rows"),
        metric_names=names,
        overall=dict(found.get("metrics") or {}),
        by_version=[
            VersionPerformance(str(version), counts.get(version), dict(metrics))
            for version, metrics in sorted(by_version.items(), key=lambda item: _version_order(item[0]))
        ],
        labels=found.get("labels"),
        unlabeled_predictions=found.get("unlabeled_predictions"),
        unmatched_labels=found.get("unmatched_labels"),
    )


def _version_order(version: str) -> tuple[int, int | str]:
    return (0, int(version)) if version.isdigit() else (1, version)


def drift_share_series(documents: Sequence[tuple[str, dict[str, Any]]], total: int) -> dict[str, Any]:
    """Drift share over the reports ``documents`` (``(report_id, document)``, oldest first, the newest of
    ``total``) in the charts' format: by report index (the oldest report of all is 0) and by report time
    (epoch seconds); a report without a drift share is a gap."""
    first = total - len(documents)
    index = [float(first + i) for i in range(len(documents))]
    seconds = [report_ms(report_id) / 1000 for report_id, _ in documents]
    shares = [(document.get("drift") or {}).get("drift_share") for _, document in documents]
    return {"key": "drift_share", "total": total, "step": [index, shares], "time": [seconds, shares]}


__all__ = [
    "FeatureScore",
    "Performance",
    "VersionPerformance",
    "drift_share_series",
    "feature_scores",
    "performance",
    "report_ms",
]
