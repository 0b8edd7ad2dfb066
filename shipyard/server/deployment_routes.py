"""Deployment records over REST: the served models the platform knows of, so grants can name them.

``PUT /deployments/{name}`` with ``{"url": ...}`` registers a deployment (the editor role; its registrant gets
``MANAGE`` on it, as an experiment's creator does) or points an existing one at a new URL (``EDIT`` on it).
Reads need ``READ`` and the list shows only the deployments the caller may read; deleting needs ``MANAGE``
and drops the grants on it too. An inference server started with ``--platform`` registers its models here.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict

from shipyard.auth.records import Permission, ResourceType, Role
from shipyard.deployments import DeploymentRecord, DeploymentReport, Deployments
from shipyard.errors import NotFound
from shipyard.server.guard import guard

router = APIRouter(tags=["deployments"])


class DeploymentTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str


class Report(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str
    report: DeploymentReport


def _deployments(request: Request) -> Deployments:
    return Deployments(request.app.state.stores.deployments)


@router.put("/deployments/{name}")
def put_deployment(name: str, body: DeploymentTarget, request: Request) -> dict[str, Any]:
    """Register deployment ``name`` served at ``url``, or point an existing one there."""
    g, deployments = guard(request), _deployments(request)
    existing: DeploymentRecord | None
    try:
        existing = deployments.get(name)
    except NotFound:
        existing = None
    if existing is None:
        g.role(Role.EDITOR, f"register deployment {name!r}")
        found = deployments.register(name, body.url, by=g.user)
        g.own(ResourceType.DEPLOYMENT, found.name)
    else:
        g.deployment(name, Permission.EDIT)
        found = deployments.update(name, body.url)
    return found.to_json()


@router.put("/deployments/{name}/report")
def report_deployment(name: str, body: Report, request: Request) -> dict[str, Any]:
    """Keep a serving server's report on deployment ``name`` (versions, traffic, requests, errors, latency);
    registers the deployment when it is new, as ``PUT /deployments/{name}`` does."""
    g, deployments = guard(request), _deployments(request)
    try:
        deployments.get(name)
        g.deployment(name, Permission.EDIT)
        created = False
    except NotFound:
        g.role(Role.EDITOR, f"register deployment {name!r}")
        created = True
    found = deployments.report(name, body.url, body.report, by=g.user)
    if created:
        g.own(ResourceType.DEPLOYMENT, found.name)
    return found.to_json()


@router.get("/deployments")
def list_deployments(request: Request) -> list[dict[str, Any]]:
    """The deployments the caller may read."""
    g = guard(request)
    return [d.to_json() for d in _deployments(request).list() if g.can_read_deployment(d.name)]


@router.get("/deployments/{name}")
def get_deployment(name: str, request: Request) -> dict[str, Any]:
    found = _deployments(request).get(name)
    guard(request).deployment(name, Permission.READ)
    return found.to_json()


@router.delete("/deployments/{name}", status_code=204)
def delete_deployment(name: str, request: Request) -> Response:
    """Forget deployment ``name`` and every grant on it."""
    deployments = _deployments(request)
    deployments.get(name)  # NotFound first: a missing deployment is not a permission question
    guard(request).deployment(name, Permission.MANAGE)
    deployments.delete(name)
    return Response(status_code=204)
