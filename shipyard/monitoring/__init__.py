"""Model monitoring: served inputs against a training baseline, as drift reports, metrics and alerts; and
model performance once ground truth arrives."""

from shipyard.monitoring.alerts import Alert, AlertRule, evaluate, load_rules, parse_rules
from shipyard.monitoring.baseline import Baseline, find_baseline, load_baseline, save_baseline
from shipyard.monitoring.job import MonitorResult, run_monitor
from shipyard.monitoring.performance import (
    PerformanceResult,
    PerformanceWindow,
    compute_performance,
    load_labels,
    performance_metrics,
    save_labels,
)

__all__ = [
    "Alert",
    "AlertRule",
    "Baseline",
    "MonitorResult",
    "PerformanceResult",
    "PerformanceWindow",
    "compute_performance",
    "evaluate",
    "find_baseline",
    "load_baseline",
    "load_labels",
    "load_rules",
    "parse_rules",
    "performance_metrics",
    "run_monitor",
    "save_baseline",
    "save_labels",
]
