"""Deployments: what each serving server last reported (versions, traffic weights, request rate, latency,
errors), and whether it still reports."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from shipyard.deployments import DeploymentRecord, Deployments
from shipyard.server.guard import guard
from shipyard.tracking.records import now_ms
from shipyard.ui.templating import render

router = APIRouter(include_in_schema=False)
# A server is "silent" once this many of its own report windows passed without a report (plus slack).
SILENT_AFTER_WINDOWS = 3
_SLACK_MS = 5_000


def health(record: DeploymentRecord, now: int) -> str:
    """Whether the server reports: "reporting", "silent" (its reports stopped: down or cut off) or "never"."""
    if record.report is None or record.reported_at is None:
        return "never"
    window_ms = float(record.report.get("window_s") or 15.0) * 1000
    late = now - record.reported_at > SILENT_AFTER_WINDOWS * window_ms + _SLACK_MS
    return "silent" if late else "reporting"


def _row(record: DeploymentRecord, now: int) -> dict[str, Any]:
    report = record.report or {}
    requests = int(report.get("requests") or 0)
    errors = int(report.get("errors") or 0)
    return {
        "record": record,
        "health": health(record, now),
        "versions": report.get("versions") or [],
        "requests_per_s": report.get("requests_per_s"),
        "error_rate": (errors / requests) if requests else None,
        "p50_ms": report.get("p50_ms"),
        "p95_ms": report.get("p95_ms"),
        "where": f"{report.get('host', '')} (pid {report.get('pid')})" if report.get("host") else "",
    }


@router.get("/ui/deployments")
def deployments(request: Request) -> Response:
    g = guard(request)
    found = Deployments(request.app.state.stores.deployments).list()
    now = now_ms()
    rows = [_row(d, now) for d in found if g.can_read_deployment(d.name)]
    return render(request, "deployments.html", section="deployments", rows=rows)
