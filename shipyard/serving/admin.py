"""Admin routes of the inference server: see and change traffic between a model's versions, live.

- ``GET /admin/deployments``: every model with its versions (state, load error), weights and shadow
- ``PUT /admin/deployments/{name}/traffic`` with ``{"traffic": {"champion": 90, "challenger": 10},
  "shadow": null}``: takes effect for the next request; requests in flight finish where they were routed
- ``POST /admin/deployments/{name}/rollback``: back to the traffic before the last change (409 if none)

With an admin token configured these need ``Authorization: Bearer <token>``; without one, only clients on
this machine may use them: the socket's peer is loopback and no proxy header says the request was forwarded
(``X-Forwarded-For`` is never believed here). Credentials are checked before any of the body is read; writes
then need ``Content-Type: application/json`` (415), which a page of another site cannot send without the
browser asking first, and their body is read under the server's size limit and deadline.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shipyard.errors import Forbidden, InvalidInput, ShipyardError, Unauthorized
from shipyard.serving.guard import is_local_client, read_body, require_json
from shipyard.serving.statuses import error_response
from shipyard.serving.tensors import parse_json_body

if TYPE_CHECKING:
    from shipyard.serving.app import InferenceServer

log = logging.getLogger("shipyard.serving")


def admin_routes(server: InferenceServer) -> list[Route]:
    """The admin routes of ``server``."""

    async def deployments(request: Request) -> Response:
        return await _guarded(server, request, _list)

    async def traffic(request: Request) -> Response:
        return await _guarded(server, request, _set_traffic)

    async def rollback(request: Request) -> Response:
        return await _guarded(server, request, _rollback)

    return [
        Route("/admin/deployments", deployments),
        Route("/admin/deployments/{name}/traffic", traffic, methods=["PUT"]),
        Route("/admin/deployments/{name}/rollback", rollback, methods=["POST"]),
    ]


Action = Callable[["InferenceServer", Request], Awaitable[dict[str, Any]]]


async def _guarded(server: InferenceServer, request: Request, action: Action) -> Response:
    try:
        _authorize(server, request)  # first: nothing of an unauthorized request's body is read
        if request.method != "GET":
            require_json(request)
        return JSONResponse(await action(server, request))
    except ShipyardError as exc:
        return error_response(exc)


def _authorize(server: InferenceServer, request: Request) -> None:
    token = server.admin_token
    if token:
        given = request.headers.get("authorization", "")
        scheme, _, credential = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(credential.encode(), token.encode()):
            raise Unauthorized("admin routes need the header Authorization: Bearer <admin token>")
        return
    if not is_local_client(request):
        raise Forbidden(
            "without an admin token, admin routes answer only clients on this machine, not forwarded "
            "requests (start the server with --admin-token to manage it from elsewhere)"
        )


async def _list(server: InferenceServer, request: Request) -> dict[str, Any]:
    return {"deployments": [d.describe() for d in server.repository.deployments.values()]}


async def _set_traffic(server: InferenceServer, request: Request) -> dict[str, Any]:
    deployment = server.repository.deployment(request.path_params["name"])
    body = await read_body(request, server.config.max_body_bytes, server.config.body_timeout_s)
    document = parse_json_body(body)
    if not isinstance(document, dict) or not isinstance(document.get("traffic"), dict):
        raise InvalidInput('a traffic change is {"traffic": {"<version>": <weight>, ...}, "shadow": ...}')
    shadow = document.get("shadow", deployment.traffic.shadow)
    if shadow is not None and not isinstance(shadow, str):
        raise InvalidInput(f"shadow must be a version label or null, got {shadow!r}")
    new = deployment.set_traffic(document["traffic"], shadow)
    log.info("model %s: traffic now %s, shadow %s", deployment.name, dict(new.weights), new.shadow)
    return deployment.describe()


async def _rollback(server: InferenceServer, request: Request) -> dict[str, Any]:
    deployment = server.repository.deployment(request.path_params["name"])
    restored = deployment.rollback()
    log.info(
        "model %s: traffic rolled back to %s, shadow %s",
        deployment.name,
        dict(restored.weights),
        restored.shadow,
    )
    return deployment.describe()
