"""The platform server's ASGI app: one versioned REST API (``/api/v1``) over a deployment's stores.

Routes hold a :class:`~shipyard.store.protocol.MetadataStores` (the SQL one: the server is where team mode's
records live) and answer in JSON. Errors have one shape, ``{"error": {"code", "message", "field"?}}``, with
400 (bad input), 401, 403, 404, 409, 413 and 422 (a body that does not match the route's schema, naming the
field); the HTTP stores turn the code back into the same typed exception embedded mode raises.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from shipyard import __version__
from shipyard.auth.accounts import Accounts
from shipyard.auth.oidc import OidcVerifier
from shipyard.auth.records import Permission, ResourceType
from shipyard.config import Settings
from shipyard.errors import NotFound, ShipyardError
from shipyard.server import (
    artifact_routes,
    auth_routes,
    dataset_routes,
    deployment_routes,
    feature_routes,
    lineage_routes,
    mlflow,
    monitoring_routes,
    pipeline_routes,
    registry_routes,
    schedule_routes,
    tracking_routes,
    tuning_routes,
)
from shipyard.server.answers import error_answer, error_body
from shipyard.server.fast_lane import FastLane
from shipyard.server.guard import NameCache
from shipyard.server.pipeline_driver import DriverConfig
from shipyard.server.security import SecurityConfig, SecurityMiddleware
from shipyard.store import MetadataStore, open_server_stores
from shipyard.store.artifacts import ArtifactStore
from shipyard.store.async_pg import AsyncStatements
from shipyard.store.protocol import ServerStores
from shipyard.store.server_artifacts import serve_from
from shipyard.ui.app import error_page, mount_ui
from shipyard.ui.sessions import is_ui_path


def create_app(
    settings: Settings,
    *,
    stores: ServerStores | None = None,
    artifacts: str | None = None,
    require_auth: bool = False,
    default_permission: Permission | str = Permission.READ,
    oidc: OidcVerifier | None = None,
    max_body_bytes: int = 32 << 20,
    pipelines_path: str | None = None,
) -> FastAPI:
    """The server app over ``stores`` (default: the SQL stores ``settings`` name).

    With ``artifacts`` (a folder or an object-store URL) the server keeps the files: new experiments get
    logical ``shipyard-artifacts://`` locations that clients reach through ``/api/v1/artifacts``. With
    ``require_auth`` every route but health and the OpenAPI document needs a user's token (or password, or
    an ``oidc`` bearer JWT), and what it may touch follows its role, its grants and ``default_permission``.
    Submitted pipelines run in driver processes on the settings' executor, importing step code from the
    server's Python path and ``pipelines_path`` only.
    """
    app = FastAPI(
        title="Shipyard platform server",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.pipelines = pipelines = DriverConfig.for_server(settings, artifacts, pipelines_path)
    if pipelines.served is not None:
        destination, options = pipelines.served
        serve_from(destination, options)
        app.state.artifacts = ArtifactStore(destination, storage_options=options)
    app.state.settings = settings = pipelines.settings
    app.state.stores = stores = stores or open_server_stores(settings)
    app.state.experiment_names = NameCache()
    app.state.accounts = accounts = Accounts(
        stores.auth, exists=resource_exists(stores), default_permission=Permission.parse(default_permission)
    )
    # Inside the security middleware: its checks and audit cover both paths. On SQLite small writes run on
    # the event loop; on PostgreSQL a point logged alone is sent from it asynchronously (see FastLane).
    db = getattr(stores, "db", None)
    dialect = db.dialect if isinstance(db, MetadataStore) else None
    app.add_middleware(
        FastLane,
        inline=dialect == "sqlite",
        statements=AsyncStatements(db.url) if dialect == "postgresql" else None,
    )
    app.add_middleware(
        SecurityMiddleware,
        config=SecurityConfig(accounts, require_auth, oidc, max_body_bytes=max_body_bytes),
    )

    @app.exception_handler(ShipyardError)
    async def _shipyard_error(request: Request, exc: ShipyardError) -> Response:
        status, body = error_answer(exc)
        if is_ui_path(request.url.path):
            return error_page(request, status, str(exc))
        return JSONResponse(body, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if is_ui_path(request.url.path):
            return error_page(request, exc.status_code, f"there is no page at {request.url.path}")
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        if is_ui_path(request.url.path):
            field = ".".join(str(p) for p in first.get("loc", ()))
            return error_page(request, 400, f"{field or 'request'}: {first.get('msg', 'invalid')}")
        if first.get("type") == "json_invalid":
            where = first.get("ctx", {}).get("error", "")
            message = f"the request body is not valid JSON{': ' + where if where else ''}"
            return JSONResponse(error_body("UNPROCESSABLE", message), status_code=422)
        field = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = f"{field or 'request'}: {first.get('msg', 'invalid')}"
        return JSONResponse(error_body("UNPROCESSABLE", message, field or None), status_code=422)

    @app.get("/api/v1/health", tags=["server"])
    def health() -> dict[str, str]:
        """Liveness and the server's version."""
        return {"status": "ok", "version": __version__}

    app.include_router(tracking_routes.router, prefix="/api/v1")
    app.include_router(registry_routes.router, prefix="/api/v1")
    app.include_router(lineage_routes.router, prefix="/api/v1")
    app.include_router(schedule_routes.router, prefix="/api/v1")
    app.include_router(feature_routes.router, prefix="/api/v1")
    app.include_router(tuning_routes.router, prefix="/api/v1")
    app.include_router(monitoring_routes.router, prefix="/api/v1")
    app.include_router(pipeline_routes.router, prefix="/api/v1")
    app.include_router(auth_routes.router, prefix="/api/v1")
    app.include_router(deployment_routes.router, prefix="/api/v1")
    app.include_router(dataset_routes.router, prefix="/api/v1")
    if artifacts is not None:
        app.include_router(artifact_routes.router, prefix="/api/v1")
    mlflow.mount(app)  # the official MLflow client's API, over the same stores and permissions
    app.state.require_auth = require_auth
    mount_ui(app)
    return app


def resource_exists(stores: ServerStores) -> Callable[[ResourceType, str], bool]:
    """Whether a grant's experiment, registered model, deployment or dataset exists in ``stores``."""

    def exists(kind: ResourceType, name: str) -> bool:
        try:
            if kind is ResourceType.EXPERIMENT:
                stores.tracking.get_experiment(name)
            elif kind is ResourceType.REGISTERED_MODEL:
                stores.registry.get_model(name)
            elif kind is ResourceType.DEPLOYMENT:
                stores.deployments.deployment(name)
            elif kind is ResourceType.DATASET:
                stores.datasets.list_versions(name)
            else:  # pragma: no cover - a type this check was not taught exists nowhere
                return False
        except NotFound:
            return False
        return True

    return exists


def app_from_environment() -> FastAPI:
    """The app for ``shipyard server``'s worker processes: settings from the environment it prepared."""
    import os

    from shipyard.config import get_settings

    env = {
        k.removeprefix("SHIPYARD_SERVER_"): v
        for k, v in os.environ.items()
        if k.startswith("SHIPYARD_SERVER_")
    }
    settings = get_settings()
    oidc = None
    if env.get("OIDC_ISSUER"):
        from shipyard.auth.oidc import parse_role_map

        oidc = OidcVerifier(
            env["OIDC_ISSUER"],
            env.get("OIDC_AUDIENCE", ""),
            parse_role_map(env.get("OIDC_ROLE_MAP", "")),
            jwks_uri=env.get("OIDC_JWKS_URI") or None,
            roles_claim=env.get("OIDC_ROLES_CLAIM") or "groups",
            user_claim=env.get("OIDC_USER_CLAIM") or "preferred_username",
        )
    return create_app(
        settings,
        artifacts=env.get("ARTIFACTS", settings.artifact_root) or None,  # "": the server keeps no files
        require_auth=env.get("AUTH") == "1",
        default_permission=env.get("DEFAULT_PERMISSION") or "READ",
        oidc=oidc,
        max_body_bytes=int(env.get("MAX_BODY_BYTES") or 32 << 20),
        pipelines_path=env.get("PIPELINES_PATH") or None,
    )
