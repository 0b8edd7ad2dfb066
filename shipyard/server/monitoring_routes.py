"""Model monitoring over REST: a model's drift reports and the alerts they fired, and ground-truth uploads.

Reports are the files monitoring runs left in the server's artifact store (read by
:mod:`shipyard.monitoring.reports`); labels are stored as
:func:`~shipyard.monitoring.performance.save_labels` stores them, where the performance code reads them.
Access follows the registered model of that name: READ to read (as the registry's reads), EDIT to upload
labels (an editor may start those of a model not registered yet, as for its artifacts). The model name is
checked first (400), so it can never reach outside its folder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from shipyard.data.sample import as_frame
from shipyard.data.statistics import read_table
from shipyard.errors import InvalidInput
from shipyard.monitoring import baseline, reports
from shipyard.monitoring.performance import save_labels
from shipyard.registry import naming
from shipyard.server.answers import SANDBOXED_HTML_HEADERS
from shipyard.server.guard import ARTIFACTS_ROOT, EDIT, READ, guard
from shipyard.store import wire
from shipyard.store.artifacts import ArtifactStore

router = APIRouter(tags=["monitoring"])

MaxResults = Annotated[int, Query(ge=1, le=1000)]
_PARQUET_MAGIC = b"PAR1"


def _store(request: Request) -> ArtifactStore:
    """The artifact store monitoring writes to, as the server's clients see it."""
    kept: ArtifactStore | None = getattr(request.app.state, "artifacts", None)
    if kept is not None:
        return kept.child(ARTIFACTS_ROOT)  # clients' shipyard-artifacts://artifacts/… is artifacts/… here
    return ArtifactStore.configured(request.app.state.settings)


def _model(name: str) -> str:
    """``name`` when it is a registered-model name that also names one folder (no '..', '/', '\\')."""
    naming.check_model_name(name)
    return baseline.check_model_name(name)


@router.get("/monitoring/models/{model}/reports")
def list_reports(
    model: str, request: Request, max_results: MaxResults = 50, page_token: str | None = None
) -> dict[str, Any]:
    """The model's monitoring reports, newest first: time, drift share, dataset drift, alerts fired and
    the run that recorded each; pass ``next_page_token`` back as ``page_token`` for older ones."""
    guard(request).model(_model(model), READ)
    found, token = reports.list_reports(_store(request), model, limit=max_results, before=page_token)
    return {"reports": wire.to_json(found), "next_page_token": token}


@router.get("/monitoring/models/{model}/reports/{report_id}", response_model=None)
def get_report(
    model: str, report_id: str, request: Request, format: Literal["json", "html"] = "json"
) -> dict[str, Any] | HTMLResponse:
    """One report: its JSON document (drift per column, skew, performance, alerts), or with
    ``format=html`` its HTML page."""
    guard(request).model(_model(model), READ)
    if format == "html":
        page = reports.report_html(_store(request), model, report_id).decode("utf-8")
        return HTMLResponse(page, headers=SANDBOXED_HTML_HEADERS)
    return reports.read_report(_store(request), model, report_id)


@router.get("/monitoring/models/{model}/alerts")
def list_alerts(
    model: str, request: Request, max_results: MaxResults = 50, page_token: str | None = None
) -> dict[str, Any]:
    """Alerts fired on the model, newest first, each with the report that fired it."""
    guard(request).model(_model(model), READ)
    found, token = reports.list_alerts(_store(request), model, limit=max_results, page_token=page_token)
    return {"alerts": found, "next_page_token": token}


@router.post("/monitoring/models/{model}/labels", status_code=201)
async def upload_labels(model: str, request: Request) -> dict[str, Any]:
    """Add ground truth for requests the model served: the body is a Parquet file (recognised by its magic
    bytes) or CSV with columns ``request_id``, ``label`` and optionally ``row``. It is streamed to a
    temporary file (the server's body limit applies: 413 past it), checked (400 naming a missing column or
    a bad row) and stored where the performance code reads labels; the stored path and the row count."""
    _model(model)
    await run_in_threadpool(guard(request).model_name, model, EDIT)
    with tempfile.TemporaryDirectory(prefix="shipyard-labels-") as folder:
        received = Path(folder) / "labels"
        with received.open("wb") as sink:
            async for chunk in request.stream():
                await run_in_threadpool(sink.write, chunk)
        with received.open("rb") as source:
            kind = "parquet" if source.read(len(_PARQUET_MAGIC)) == _PARQUET_MAGIC else "csv"
        named = received.rename(received.with_suffix(f".{kind}"))
        return await run_in_threadpool(_save, request, model, named)


def _save(request: Request, model: str, path: Path) -> dict[str, Any]:
    try:
        table = read_table(path)
    except InvalidInput as exc:  # its message names the temporary file: name the body instead
        raise InvalidInput(str(exc).replace(str(path), f"the labels body ({path.suffix[1:]})")) from exc
    frame = as_frame(table, "labels")
    stored = save_labels(_store(request), model, frame)
    return {"path": stored, "rows": len(frame)}
