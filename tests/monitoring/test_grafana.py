"""The Grafana dashboard (shipyard/monitoring/grafana): well-formed, laid out without overlaps, and every
metric and label it queries exported by a real ServerMetrics or listed in MONITOR_METRICS (a rename breaks
this test)."""

from __future__ import annotations

import json
import re
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shipyard.monitoring.job import MONITOR_METRICS
from shipyard.serving.metrics import ServerMetrics
from shipyard.serving.repository import ModelConfig, ModelRepository

DASHBOARD = Path(__file__).parents[2] / "shipyard" / "monitoring" / "grafana" / "shipyard.json"
# The labels each monitoring gauge is written with.
MONITOR_LABELS: dict[str, set[str]] = {
    "shipyard_drift_share": {"model"},
    "shipyard_dataset_drift": {"model"},
    "shipyard_feature_drift_score": {"model", "feature", "test"},
    "shipyard_feature_drift_detected": {"model", "feature"},
    "shipyard_monitor_rows": {"model"},
    "shipyard_model_performance": {"model", "version", "metric"},
    "shipyard_labeled_rows": {"model", "version"},
}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    nested = [p for row in dashboard["panels"] for p in row.get("panels", [])]  # collapsed rows
    return dashboard["panels"] + nested


@pytest.fixture(scope="module")
def targets(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for p in panels for t in p.get("targets", [])]


@pytest.fixture(scope="module")
def served_labels() -> dict[str, set[str]]:
    """Sample name → label names, from what a real server with one model renders after some traffic."""
    repository = ModelRepository([ModelConfig("m", "models:/m/1")], loader=lambda uri, **options: None)
    served = repository.models[0]
    served.load_seconds = 0.5  # as if loaded: the load-time gauge has a sample only then
    metrics = ServerMetrics(repository)
    metrics.observe_request("m", served.version, "v2", 200, 0.01)
    metrics.observe_batch(served, 4, 0.02)
    labels: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(metrics.render()[0].decode()):
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return labels


def test_dashboard_is_well_formed(dashboard: dict[str, Any], panels: list[dict[str, Any]]) -> None:
    assert dashboard["uid"] == "shipyard-serving-monitoring"
    assert dashboard["title"] and dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["model"]["multi"] and variables["model"]["includeAll"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    assert {p["title"] for p in panels if p["type"] == "row"} == {"Serving", "Monitoring"}


def test_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    # Top-level panels (open rows included, as 1-high bars) share one grid; a collapsed row's panels
    # are laid out in their own grid, below the row.
    grids = [dashboard["panels"]] + [row["panels"] for row in dashboard["panels"] if row.get("panels")]
    for grid in grids:
        boxes = [(p["title"], p["gridPos"]) for p in grid]
        for _, g in boxes:
            assert g["w"] > 0 and g["h"] > 0 and 0 <= g["x"] <= 24 - g["w"]
        for (a, p), (b, q) in combinations(boxes, 2):
            apart = (
                p["x"] + p["w"] <= q["x"]
                or q["x"] + q["w"] <= p["x"]
                or p["y"] + p["h"] <= q["y"]
                or q["y"] + q["h"] <= p["y"]
            )
            assert apart, f"panels {a!r} and {b!r} overlap"


def test_targets_use_the_variables(panels: list[dict[str, Any]], targets: list[dict[str, Any]]) -> None:
    assert targets
    for source in [p for p in panels if p["type"] != "row"] + targets:
        assert source["datasource"]["uid"] in ("${datasource}", "$datasource"), source
    for target in targets:
        assert target["expr"].strip(), target
        assert 'model=~"$model"' in target["expr"], target["expr"]


def test_metrics_and_labels_are_exported(
    targets: list[dict[str, Any]], served_labels: dict[str, set[str]]
) -> None:
    assert set(MONITOR_LABELS) == set(MONITOR_METRICS)
    known = served_labels | MONITOR_LABELS
    used: set[str] = set()
    for target in targets:
        expr = target["expr"]
        names = set(re.findall(r"\bshipyard_\w+", expr))
        assert names, expr
        missing = names - set(known)
        assert not missing, f"{expr}: no such metric {sorted(missing)}"
        # Labels matched, grouped by or shown in the legend; each expr queries one metric, so every label
        # must be on each metric in it.
        matchers = [m for body in re.findall(r"\{([^}]*)\}", expr) for m in re.findall(r"(\w+)\s*[=!]", body)]
        grouped = [x.strip() for by in re.findall(r"\bby\s*\(([^)]*)\)", expr) for x in by.split(",")]
        legend = re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", ""))
        for name in names:
            unknown = set(matchers + grouped + legend) - known[name]
            assert not unknown, f"{expr}: {name} has no label {sorted(unknown)}"
        used |= names
    # The dashboard shows every monitoring gauge and every serving family.
    assert set(MONITOR_METRICS) <= used
    families = {re.sub(r"_(bucket|sum|count|total|created)$", "", n) for n in served_labels}
    assert families <= {re.sub(r"_(bucket|sum|count|total)$", "", n) for n in used}
