"""The UI's place in the platform server: its pages, its static files and its error pages."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from shipyard.ui import (
    admin_pages,
    artifact_pages,
    auth_pages,
    deployment_pages,
    model_pages,
    monitoring_pages,
    pipeline_pages,
    run_pages,
    tuning_pages,
)
from shipyard.ui.templating import STATIC, render

_HEADINGS = {
    400: "That request does not work",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    413: "Too large",
    503: "The store is unavailable",
}


def mount_ui(app: FastAPI) -> None:
    """Serve the UI from ``app`` (under ``/ui``, its files under ``/static``)."""
    app.include_router(auth_pages.router)
    app.include_router(run_pages.router)
    app.include_router(model_pages.router)
    app.include_router(pipeline_pages.router)
    app.include_router(deployment_pages.router)
    app.include_router(monitoring_pages.router)
    app.include_router(admin_pages.router)
    app.include_router(tuning_pages.router)
    app.include_router(artifact_pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """An error as a page that says what went wrong and offers a way back."""
    referer = request.headers.get("referer", "")
    host = request.headers.get("host", "")
    back = "/ui/"
    if referer and "://" in referer and referer.split("://", 1)[1].startswith(host + "/"):
        back = "/" + referer.split("://", 1)[1].split("/", 1)[1]
    return render(
        request,
        "error.html",
        status,
        heading=_HEADINGS.get(status, "Something went wrong"),
        message=message,
        back_url=back if back != request.url.path else "/ui/",
        back_label="Back" if back != "/ui/" else "Experiments",
    )
