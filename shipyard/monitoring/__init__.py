"""Model monitoring: served inputs against a training baseline, as drift reports, metrics and alerts."""

from shipyard.monitoring.alerts import Alert, AlertRule, evaluate, load_rules, parse_rules
from shipyard.monitoring.baseline import load_baseline, save_baseline
from shipyard.monitoring.job import MonitorResult, run_monitor

__all__ = [
    "Alert",
    "AlertRule",
    "MonitorResult",
    "evaluate",
    "load_baseline",
    "load_rules",
    "parse_rules",
    "run_monitor",
    "save_baseline",
]
