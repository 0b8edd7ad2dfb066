"""Model monitoring: the models with drift reports, a model's drift share over time, its latest report's
per-feature scores, the alerts it fired and its performance by version once labels arrived, and one report's
own HTML page in a sandboxed frame.

Reports are read as the REST routes read them (:mod:`shipyard.server.monitoring_routes`): from the files
monitoring runs left in the server's artifact store, with READ on the registered model of that name to see
them, and the model name checked first (400), so it can never reach outside its folder.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring import baseline, reports
from shipyard.monitoring.job import REPORTS_PREFIX
from shipyard.registry import naming
from shipyard.server.answers import SANDBOXED_HTML_HEADERS, json_bytes
from shipyard.server.guard import ARTIFACTS_ROOT, READ, guard
from shipyard.store.artifacts import ArtifactStore
from shipyard.ui import monitoring_views as views
from shipyard.ui.templating import render

router = APIRouter(include_in_schema=False)
TABLE_REPORTS = 50  # reports per page of a model's reports table
CHART_REPORTS = 500  # the newest reports the drift share chart reads (one file each)
PAGE_ALERTS = 50
REPORT_FRAME_HEADERS = SANDBOXED_HTML_HEADERS


def _store(request: Request) -> ArtifactStore:
    """The artifact store monitoring writes to, as the REST routes read it."""
    kept: ArtifactStore | None = getattr(request.app.state, "artifacts", None)
    if kept is not None:
        return kept.child(ARTIFACTS_ROOT)
    return ArtifactStore.configured(request.app.state.settings)


def _model(name: str) -> str:
    """``name`` when it is a registered-model name that also names one folder (`InvalidInput` if not)."""
    naming.check_model_name(name)
    return baseline.check_model_name(name)


def _readable(request: Request, model: str) -> ArtifactStore:
    guard(request).model(_model(model), READ)
    return _store(request)


def _monitored(store: ArtifactStore) -> list[str]:
    """The names that have a reports folder (a folder no model could be named after is left out)."""
    if not store.exists(REPORTS_PREFIX):
        return []
    names = []
    for entry in store.list(REPORTS_PREFIX):
        name = entry.path.rpartition("/")[2]
        try:
            names.append(_model(name))
        except InvalidInput:
            continue
    return names


@router.get("/ui/monitoring")
def monitored_models(request: Request) -> Response:
    g, store = guard(request), _store(request)
    latest = []
    for name in _monitored(store):
        if g.can_read_model(name):
            found, _ = reports.list_reports(store, name, limit=1)
            latest.extend(found)
    latest.sort(key=lambda s: s.report_id, reverse=True)
    return render(request, "monitoring.html", section="monitoring", latest=latest, report_ms=views.report_ms)


def _not_monitored(request: Request, model: str) -> Response:
    return render(
        request,
        "error.html",
        404,
        heading="Not found",
        message=f"model {model!r} has no monitoring reports: run `shipyard monitor run {model}` to make one",
        back_url="/ui/monitoring",
        back_label="Monitoring",
    )


@router.get("/ui/monitoring/{model}")
def monitored_model(
    model: str, request: Request, before: str | None = None, alerts_from: str | None = None
) -> Response:
    store = _readable(request, model)
    ids = reports.report_ids(store, model)
    if not ids:
        return _not_monitored(request, model)
    latest = reports.read_report(store, model, ids[0])
    table, older = reports.list_reports(store, model, limit=TABLE_REPORTS, before=before)
    alerts, more_alerts = reports.list_alerts(store, model, limit=PAGE_ALERTS, page_token=alerts_from)
    return render(
        request,
        "monitoring_model.html",
        section="monitoring",
        model=model,
        latest_id=ids[0],
        latest=latest,
        features=views.feature_scores(latest),
        performance=_latest_performance(store, model, ids),
        performance_note=latest.get("performance_note"),
        alerts=alerts,
        more_alerts=more_alerts,
        reports=table,
        older=older,
        before=before,
        report_count=len(ids),
        report_ms=views.report_ms,
    )


def _latest_performance(store: ArtifactStore, model: str, ids: list[str]) -> views.Performance | None:
    """The performance of the newest of the latest reports whose run had labelled predictions."""
    for report_id in ids[:TABLE_REPORTS]:
        found = views.performance(report_id, reports.read_report(store, model, report_id))
        if found is not None:
            return found
    return None


@router.get("/ui/monitoring/{model}/series")
def drift_share_series(model: str, request: Request) -> Response:
    """Drift share over the newest ``CHART_REPORTS`` reports, oldest first, in the charts' JSON format."""
    store = _readable(request, model)
    ids = reports.report_ids(store, model)
    shown = list(reversed(ids[:CHART_REPORTS]))
    documents = [(report_id, reports.read_report(store, model, report_id)) for report_id in shown]
    series: dict[str, Any] = views.drift_share_series(documents, len(ids))
    return Response(json_bytes(series), media_type="application/json", headers={"cache-control": "no-store"})


@router.get("/ui/monitoring/{model}/reports/{report_id}")
def report(model: str, report_id: str, request: Request) -> Response:
    store = _readable(request, model)
    document = reports.read_report(store, model, report_id)
    return render(
        request,
        "monitoring_report.html",
        section="monitoring",
        model=model,
        report_id=report_id,
        at_ms=views.report_ms(report_id),
        document=document,
        features=views.feature_scores(document),
    )


@router.get("/ui/monitoring/{model}/reports/{report_id}/html")
def report_html(model: str, report_id: str, request: Request) -> Response:
    """The report's own HTML page, for the report page's frame only (see ``REPORT_FRAME_HEADERS``)."""
    store = _readable(request, model)
    page = reports.report_html(store, model, report_id)
    return Response(page, media_type="text/html; charset=utf-8", headers=REPORT_FRAME_HEADERS)


@router.get("/ui/monitoring/{rest:path}")
def no_page(rest: str) -> Response:
    """Any other path here: a name no model can have (``../x``) is a bad request, the rest not found."""
    if not rest:
        return RedirectResponse("/ui/monitoring", status_code=303)
    _model(rest.split("/", 1)[0])
    raise NotFound(f"there is no page at /ui/monitoring/{rest}")
