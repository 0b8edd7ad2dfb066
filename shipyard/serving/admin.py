"""Admin routes of the inference server: see and change traffic between a model's versions, live.

- ``GET /admin/deployments``: every model with its versions (state, load error), weights and shadow
- ``PUT /admin/deployments/{name}/traffic`` with ``{"traffic": {"champion": 90, "challenger": 10},
  "shadow": null}``: takes effect for the next request; requests in flight finish where they were routed
- ``POST /admin/deployments/{name}/rollback``: back to the traffic before the last change (409 if none)
- ``PUT /admin/deployments/{name}/experiments/{id}`` with ``{"arms": {"champion": 50, "challenger": 50},
  "unit": "X-User-Id"}``: start assigning requests that carry the unit header to arms, stickily (an A/B
  test, :mod:`shipyard.releases.abtests`); 409 naming the experiment already running there
- ``DELETE /admin/deployments/{name}/experiments/{id}``: stop it (404 if it is not the one running)
- ``PUT /admin/deployments/{name}/canaries/{id}`` with ``{"stable": "champion", "canary": "challenger"}``:
  a canary controller (:mod:`shipyard.releases.canary`) steers the traffic; 409 naming the canary or
  experiment already doing so. ``DELETE`` the same path when the canary is over.

Who may use them, checked in this order:

1. ``Authorization: Bearer <admin token>`` when the server has one (compared in constant time): everything.
2. With a platform server (``--platform``): ``Authorization: Bearer <platform token>``, judged by the
   platform (:mod:`.platform`): the list shows the models whose deployment the user may ``READ``; changing
   traffic or rolling back needs ``EDIT`` on ``deployment:<name>``. No credentials: 401 — with a platform,
   being on this machine is not enough.
3. Otherwise a wrong or missing admin token is 401, and without an admin token only clients on this machine
   may use them: the socket's peer is loopback and no proxy header says the request was forwarded
   (``X-Forwarded-For`` is never believed here).

Credentials are checked before any of the body is read; writes then need ``Content-Type: application/json``
(415), which a page of another site cannot send without the browser asking first, and their body is read
under the server's size limit and deadline.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shipyard.auth.records import Permission
from shipyard.deployments import check_header_name
from shipyard.errors import Forbidden, InvalidInput, ShipyardError, Unauthorized
from shipyard.serving.guard import is_local_client, read_body, require_json
from shipyard.serving.routing import Experiment
from shipyard.serving.statuses import error_response
from shipyard.serving.tensors import parse_json_body

if TYPE_CHECKING:
    from shipyard.serving.app import InferenceServer

log = logging.getLogger("shipyard.serving")


def admin_routes(server: InferenceServer) -> list[Route]:
    """The admin routes of ``server``."""

    async def deployments(request: Request) -> Response:
        return await _guarded(server, request, _list, None)

    async def traffic(request: Request) -> Response:
        return await _guarded(server, request, _set_traffic, Permission.EDIT)

    async def rollback(request: Request) -> Response:
        return await _guarded(server, request, _rollback, Permission.EDIT)

    async def canary(request: Request) -> Response:
        action = _hold_canary if request.method == "PUT" else _release_canary
        return await _guarded(server, request, action, Permission.EDIT)

    async def experiment(request: Request) -> Response:
        action = _start_experiment if request.method == "PUT" else _stop_experiment
        return await _guarded(server, request, action, Permission.EDIT)

    return [
        Route("/admin/deployments", deployments),
        Route("/admin/deployments/{name}/experiments/{id}", experiment, methods=["PUT", "DELETE"]),
        Route("/admin/deployments/{name}/canaries/{id}", canary, methods=["PUT", "DELETE"]),
        Route("/admin/deployments/{name}/traffic", traffic, methods=["PUT"]),
        Route("/admin/deployments/{name}/rollback", rollback, methods=["POST"]),
    ]


@dataclass(frozen=True)
class Caller:
    """Who an admin request is from: ``user`` names it in logs; ``credential`` is the platform token whose
    grants decide what it sees (None: the admin token or a local client, who may do everything here)."""

    user: str
    credential: str | None = None


Action = Callable[["InferenceServer", Request, Caller], Awaitable[dict[str, Any]]]


async def _guarded(
    server: InferenceServer, request: Request, action: Action, needed: Permission | None
) -> Response:
    try:
        # First: nothing of an unauthorized request's body is read.
        caller = await _authorize(server, request, needed)
        if request.method != "GET":
            require_json(request)
        return JSONResponse(await action(server, request, caller))
    except ShipyardError as exc:
        return error_response(exc)


async def _authorize(server: InferenceServer, request: Request, needed: Permission | None) -> Caller:
    """Who the request is from, if it may use the route: ``needed`` on the path's deployment (``None``: a
    list, filtered by :func:`_list`)."""
    scheme, _, credential = request.headers.get("authorization", "").partition(" ")
    bearer = credential if scheme.lower() == "bearer" else ""
    token = server.admin_token
    if token and bearer and hmac.compare_digest(bearer.encode(), token.encode()):
        return Caller("admin token")
    platform = server.platform
    if platform is not None:
        bearer = bearer.strip()
        if not bearer:
            either = " or <admin token>" if token else ""
            raise Unauthorized(
                f"admin routes need the header Authorization: Bearer <platform token>{either} (create a "
                "platform token with: shipyard tokens create)"
            )
        if needed is None:
            return Caller("platform user", bearer)
        user = await platform.require(bearer, request.path_params["name"], needed)
        return Caller(user, bearer)
    if token:
        raise Unauthorized("admin routes need the header Authorization: Bearer <admin token>")
    if not is_local_client(request):
        raise Forbidden(
            "without an admin token, admin routes answer only clients on this machine, not forwarded "
            "requests (start the server with --admin-token to manage it from elsewhere)"
        )
    return Caller("local client")


async def _list(server: InferenceServer, request: Request, caller: Caller) -> dict[str, Any]:
    found = server.repository.deployments
    names = list(found)
    if caller.credential is not None:
        assert server.platform is not None
        names = await server.platform.readable(caller.credential, names)
    return {"deployments": [found[name].describe() for name in names]}


async def _set_traffic(server: InferenceServer, request: Request, caller: Caller) -> dict[str, Any]:
    deployment = server.repository.deployment(request.path_params["name"])
    body = await read_body(request, server.config.max_body_bytes, server.config.body_timeout_s)
    document = parse_json_body(body)
    if not isinstance(document, dict) or not isinstance(document.get("traffic"), dict):
        raise InvalidInput('a traffic change is {"traffic": {"<version>": <weight>, ...}, "shadow": ...}')
    shadow = document.get("shadow", deployment.traffic.shadow)
    if shadow is not None and not isinstance(shadow, str):
        raise InvalidInput(f"shadow must be a version label or null, got {shadow!r}")
    new = deployment.set_traffic(document["traffic"], shadow)
    log.info(
        "model %s: traffic now %s, shadow %s (by %s)",
        deployment.name,
        dict(new.weights),
        new.shadow,
        caller.user,
    )
    return deployment.describe()


async def _rollback(server: InferenceServer, request: Request, caller: Caller) -> dict[str, Any]:
    deployment = server.repository.deployment(request.path_params["name"])
    restored = deployment.rollback()
    log.info(
        "model %s: traffic rolled back to %s, shadow %s (by %s)",
        deployment.name,
        dict(restored.weights),
        restored.shadow,
        caller.user,
    )
    return deployment.describe()


_EXPERIMENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


async def _start_experiment(server: InferenceServer, request: Request, caller: Caller) -> dict[str, Any]:
    deployment = server.repository.deployment(request.path_params["name"])
    experiment_id = _experiment_id(request)
    shape = 'an experiment is {"arms": {"<version>": <weight>, ...}, "unit": "<header>"}'
    document = await _json_object(server, request, shape)
    if not isinstance(document.get("arms"), dict):
        raise InvalidInput(shape)
    unit = check_header_name(document.get("unit"))
    deployment.start_experiment(Experiment(experiment_id, dict(document["arms"]), unit))
    log.info(
        "model %s: experiment %s assigns by %s to %s (by %s)",
        deployment.name,
        experiment_id,
        unit,
        dict(document["arms"]),
        caller.user,
    )
    return deployment.describe()


async def _stop_experiment(server: InferenceServer, request: Request, caller: Caller) -> dict[str, Any]:
    deployment = server.repository.deployment(request.path_params["name"])
    experiment_id = _experiment_id(request)
    deployment.stop_experiment(experiment_id)
    log.info("model %s: experiment %s stopped (by %s)", deployment.name, experiment_id, caller.user)
    return deployment.describe()


async def _json_object(server: InferenceServer, request: Request, shape: str) -> dict[str, Any]:
    """The request's body as a JSON object, read under the server's size limit and deadline; `InvalidInput`
    saying ``shape`` when it is another JSON value."""
    body = await read_body(request, server.config.max_body_bytes, server.config.body_timeout_s)
    document = parse_json_body(body)
    if not isinstance(document, dict):
        raise InvalidInput(shape)
    return document


def _experiment_id(request: Request) -> str:
    found = request.path_params["id"]
    if not _EXPERIMENT_ID.fullmatch(found):
        raise InvalidInput(
            f"experiment id {found[:80]!r} must be letters, digits, '_', '.', '-' (at most 64)"
        )
    return str(found)


async def _hold_canary(server: InferenceServer, request: Request, caller: Caller) -> dict[str, Any]:
    deployment = server.repository.deployment(request.path_params["name"])
    canary_id = _experiment_id(request)
    shape = (
        'a canary is {"stable": "<version>", "canary": "<version>"}, both versions served here: '
        f"{', '.join(deployment.versions)}"
    )
    document = await _json_object(server, request, shape)
    labels = [document.get(k) for k in ("stable", "canary")]
    if not all(isinstance(label, str) and label in deployment.versions for label in labels):
        raise InvalidInput(shape)
    deployment.hold_canary(canary_id, f"{labels[0]} -> {labels[1]}")
    log.info("model %s: canary %s steers the traffic (by %s)", deployment.name, canary_id, caller.user)
    return deployment.describe()


async def _release_canary(server: InferenceServer, request: Request, caller: Caller) -> dict[str, Any]:
    deployment = server.repository.deployment(request.path_params["name"])
    canary_id = _experiment_id(request)
    deployment.release_canary(canary_id)
    log.info("model %s: canary %s is over (by %s)", deployment.name, canary_id, caller.user)
    return deployment.describe()
