"""Users, API tokens, grants, access checks and the audit log over REST.

Admins manage users and read the audit log; anyone signed in may create, list and revoke their own tokens
(a token for another user is an admin's to make); a grant on a resource is an admin's, or its ``MANAGE``
holder's, to give. ``GET /access`` tells other services (an inference server started with ``--platform``)
whether the caller holding a token may do something to a resource.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from shipyard.auth.accounts import Accounts
from shipyard.auth.records import Permission, ResourceType, Role, parse_resource, to_json
from shipyard.errors import InvalidInput, NotFound
from shipyard.server.guard import Guard, guard

router = APIRouter(tags=["access"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewUser(_Body):
    name: str
    role: str = "viewer"
    password: str | None = None


class UserChange(_Body):
    role: str | None = None
    disabled: bool | None = None
    password: str | None = None


class NewToken(_Body):
    user: str | None = None
    name: str = "token"
    expires_in_days: float | None = Field(90.0, gt=0)


class NewGrant(_Body):
    user: str
    resource: str
    permission: str


def _accounts(request: Request) -> Accounts:
    return request.app.state.accounts


def _self_or_admin(g: Guard, user: str | None, doing: str) -> str:
    """The user a call acts for: the caller's own name by default; another user's needs an admin."""
    if g.principal is None:
        if not user:
            raise InvalidInput("this server has no authentication: name the user (user=…)")
        return user
    if user is None or user == g.principal.user:
        return g.principal.user
    g.admin(f"{doing} for another user")
    return user


def _manage_grants(g: Guard, resource: str) -> None:
    kind, name = parse_resource(resource)
    if g.principal is None or g.principal.role is Role.ADMIN:
        return
    _require(g, kind, name, Permission.MANAGE)


def _require(g: Guard, kind: ResourceType, name: str, needed: Permission) -> None:
    """``needed`` on the resource ``kind:name`` (`Forbidden` naming the user, resource and permission)."""
    if kind is ResourceType.EXPERIMENT:
        g.experiment(name, needed)
    elif kind is ResourceType.REGISTERED_MODEL:
        g.model(name, needed)
    elif kind is ResourceType.DEPLOYMENT:
        g.deployment(name, needed)
    elif kind is ResourceType.DATASET:
        g.dataset(name, needed)
    else:  # pragma: no cover - a resource type this route was not taught: refuse, never allow
        g.admin(f"reach {kind.value}:{name}")


# ---------------------------------------------------------------------- users
@router.post("/users", status_code=201)
def create_user(body: NewUser, request: Request) -> dict[str, Any]:
    guard(request).admin("create users")
    return to_json(_accounts(request).create_user(body.name, body.role, body.password))


@router.get("/users")
def list_users(request: Request) -> list[dict[str, Any]]:
    guard(request).admin("list users")
    return [to_json(u) for u in _accounts(request).list_users()]


@router.get("/users/me")
def me(request: Request) -> dict[str, Any]:
    """The caller: its name, role and grants."""
    p = guard(request).principal
    if p is None:
        return {"user": "anonymous", "role": Role.ADMIN.value, "authenticated": False, "grants": []}
    grants = [{"resource": f"{k.value}:{n}", "permission": v.value} for (k, n), v in sorted(p.grants.items())]
    return {"user": p.user, "role": p.role.value, "authenticated": True, "via": p.via, "grants": grants}


@router.patch("/users/{name}")
def change_user(name: str, body: UserChange, request: Request) -> dict[str, Any]:
    """Change a user's role or enable/disable it (admins), or a password (admins, or the user itself)."""
    g, accounts = guard(request), _accounts(request)
    if body.role is not None or body.disabled is not None:
        g.admin("change a user's role or status")
    if body.password is not None:
        _self_or_admin(g, name, "set a password")
    user = accounts.get_user(name)
    if body.role is not None:
        user = accounts.set_role(name, body.role)
    if body.disabled is not None:
        user = accounts.set_disabled(name, body.disabled)
    if body.password is not None:
        user = accounts.set_password(name, body.password)
    return to_json(user)


# ---------------------------------------------------------------------- tokens
@router.post("/tokens", status_code=201)
def create_token(body: NewToken, request: Request) -> dict[str, Any]:
    """A new API token; ``token`` is shown in this answer only (the server keeps a hash)."""
    g = guard(request)
    user = _self_or_admin(g, body.user, "create a token")
    record, secret = _accounts(request).create_token(user, body.name, expires_in_days=body.expires_in_days)
    return {**to_json(record), "token": secret}


@router.get("/tokens")
def list_tokens(request: Request, user: str | None = None, all: bool = False) -> list[dict[str, Any]]:
    g = guard(request)
    if all:
        g.admin("list every user's tokens")
        return [to_json(t) for t in _accounts(request).list_tokens()]
    return [to_json(t) for t in _accounts(request).list_tokens(_self_or_admin(g, user, "list tokens"))]


@router.delete("/tokens/{token_id}")
def revoke_token(token_id: str, request: Request) -> dict[str, Any]:
    g, accounts = guard(request), _accounts(request)
    token = accounts.get_token(token_id)
    if g.principal is not None and token.user != g.principal.user:
        g.admin("revoke another user's token")
    return to_json(accounts.revoke_token(token_id))


# ---------------------------------------------------------------------- grants
@router.put("/grants")
def put_grant(body: NewGrant, request: Request) -> dict[str, Any]:
    g = guard(request)
    _manage_grants(g, body.resource)
    return to_json(_accounts(request).grant(body.user, body.resource, body.permission, by=g.user))


@router.delete("/grants", status_code=204)
def delete_grant(request: Request, user: str, resource: str) -> None:
    g = guard(request)
    _manage_grants(g, resource)
    _accounts(request).revoke_grant(user, resource)


@router.get("/grants")
def list_grants(
    request: Request, user: str | None = None, resource: str | None = None
) -> list[dict[str, Any]]:
    """Grants of one user (your own, or anyone's for an admin) or on one resource (its MANAGE holder)."""
    g = guard(request)
    if resource is not None:
        _manage_grants(g, resource)
    elif g.principal is not None and g.principal.role is not Role.ADMIN:
        if user not in (None, g.principal.user):
            g.admin("list another user's grants")
        user = g.principal.user
    return [to_json(x) for x in _accounts(request).grants(user, resource)]


# ---------------------------------------------------------------------- access checks
@router.get("/access")
def access(request: Request, resource: str, permission: str) -> dict[str, Any]:
    """Whether the caller may use ``permission`` on ``resource`` (``deployment:churn``, ``experiment:x``,
    ``model:y``): 200 with ``allowed: true`` if so, 403 naming the user, resource and permission if not, 404
    for a resource that does not exist. ``authenticated`` is false on a server without sign-in (everyone is
    an anonymous admin there), which a service checking grants must not take as a user's."""
    g = guard(request)
    kind, name = parse_resource(resource)
    needed = Permission.parse(permission)
    if not _accounts(request).resource_exists(kind, name):
        raise NotFound(f"no {kind.noun} named {name!r}")
    _require(g, kind, name, needed)
    p = g.principal
    return {
        "user": g.user,
        "role": Role.ADMIN.value if p is None else p.role.value,
        "resource": f"{kind.value}:{name}",
        "permission": needed.value,
        "allowed": True,
        "authenticated": p is not None,
    }


# ---------------------------------------------------------------------- audit
@router.get("/audit")
def audit(
    request: Request,
    since: int | None = None,
    user: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[dict[str, Any]]:
    """The latest writes through the server, newest first (admins)."""
    guard(request).admin("read the audit log")
    return [to_json(e) for e in _accounts(request).audit(since=since, user=user, limit=limit)]
