"""The official MLflow client's REST API on the platform server, over Shipyard's own records.

``MLFLOW_TRACKING_URI=http://host:port`` makes ``mlflow.start_run``, ``log_metric``, ``search_runs`` and the
artifact calls land in Shipyard's store: the runs are Shipyard runs, visible to its API, CLI and UI.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response

from shipyard.server.mlflow import artifacts, models, protocol, tracking

TRACKING_PREFIX = "/api/2.0/mlflow"
ARTIFACTS_PREFIX = "/api/2.0/mlflow-artifacts"
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]

_unknown = APIRouter(include_in_schema=False)


@_unknown.api_route("/api/2.0/mlflow/{path:path}", methods=_METHODS)
@_unknown.api_route("/api/2.0/mlflow-artifacts/{path:path}", methods=_METHODS)
@_unknown.api_route("/api/2.0/preview/mlflow/{path:path}", methods=_METHODS)
@_unknown.api_route("/api/3.0/mlflow/{path:path}", methods=_METHODS)
async def endpoint_not_found(path: str, request: Request) -> Response:
    """An MLflow endpoint this server does not offer: 404 ENDPOINT_NOT_FOUND, which the client does not
    retry (a 5xx would be retried for minutes)."""
    return protocol.error_response(
        404, "ENDPOINT_NOT_FOUND", f"{request.method} {request.url.path} is not an endpoint of this server"
    )


def mount(app: FastAPI) -> None:
    """Add the MLflow routes to ``app`` (after them, the catch-all for MLflow paths it does not serve)."""
    app.include_router(tracking.router, prefix=TRACKING_PREFIX, include_in_schema=False)
    app.include_router(models.router, prefix=TRACKING_PREFIX, include_in_schema=False)
    app.include_router(artifacts.router, prefix=ARTIFACTS_PREFIX, include_in_schema=False)
    app.include_router(_unknown)
