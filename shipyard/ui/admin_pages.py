"""The server's users and grants, for admins: create a user, enable or disable one, change a role; grant a
user a permission on an experiment, registered model or deployment, and revoke it.

The rules are the REST routes' (:mod:`shipyard.server.auth_routes`), enforced by the same
:class:`~shipyard.auth.accounts.Accounts`: admins only (anyone else gets 403, on the pages and on every post),
the last enabled admin cannot be disabled or demoted (409), and a grant naming an unknown user or resource is
404. A refused change is shown on the page it came from, with the status it earned. Every post carries the
page's CSRF token. A password goes from the form to the account store's hash and nowhere else: no page shows
it again, and the audit log records paths, never bodies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from shipyard.auth.accounts import Accounts
from shipyard.auth.records import Permission, Role
from shipyard.errors import ShipyardError
from shipyard.server.answers import error_answer
from shipyard.server.guard import guard
from shipyard.ui.forms import read_form
from shipyard.ui.templating import render

router = APIRouter(include_in_schema=False)
USERS, GRANTS = "/ui/admin/users", "/ui/admin/grants"
PERMISSIONS = [p.value for p in Permission if p is not Permission.NO_PERMISSIONS]


def _accounts(request: Request) -> Accounts:
    return request.app.state.accounts


def _admin(request: Request, doing: str) -> Accounts:
    guard(request).admin(doing)
    return _accounts(request)


def _users_page(request: Request, status: int = 200, error: str | None = None, **entered: str) -> Response:
    accounts = _admin(request, "manage users")
    return render(
        request,
        "admin_users.html",
        status,
        section="",
        users=sorted(accounts.list_users(), key=lambda u: u.name),
        roles=[r.value for r in Role],
        error=error,
        entered={"name": "", "role": Role.VIEWER.value, **entered},
    )


def _grants_page(request: Request, status: int = 200, error: str | None = None, **entered: str) -> Response:
    accounts = _admin(request, "manage grants")
    return render(
        request,
        "admin_grants.html",
        status,
        section="",
        grants=sorted(accounts.grants(), key=lambda g: (g.user, g.resource_type.value, g.resource)),
        users=sorted(u.name for u in accounts.list_users()),
        permissions=PERMISSIONS,
        error=error,
        entered={"user": "", "resource": "", "permission": Permission.READ.value, **entered},
    )


async def _change(
    request: Request,
    change: Callable[[Accounts], Any],
    done: str,
    page: Callable[..., Response],
    **entered: str,
) -> Response:
    """Make ``change`` as an admin and go to ``done``; a change the accounts refuse is shown on ``page``
    with its status (a caller who is no admin gets the 403 page, as for any page it may not see)."""
    accounts = _admin(request, "manage users and grants")
    try:
        await run_in_threadpool(change, accounts)
    except ShipyardError as exc:
        status, _ = error_answer(exc)
        return await run_in_threadpool(page, request, status, str(exc), **entered)
    return RedirectResponse(done, status_code=303)


@router.get("/ui/admin")
def admin_home() -> Response:
    return RedirectResponse(USERS, status_code=303)


@router.get(USERS)
def users(request: Request) -> Response:
    return _users_page(request)


@router.post(USERS)
async def create_user(request: Request) -> Response:
    fields = await read_form(request)
    name, role = fields.get("name", "").strip(), fields.get("role", Role.VIEWER.value)
    password = fields.get("password") or None  # none: the user signs in with API tokens only
    return await _change(
        request,
        lambda accounts: accounts.create_user(name, role, password),
        USERS,
        _users_page,
        name=name[:128],
        role=role[:16],
    )


@router.post(USERS + "/{name}/disabled")
async def set_disabled(name: str, request: Request) -> Response:
    fields = await read_form(request)
    disabled = fields.get("disabled") == "true"
    return await _change(request, lambda accounts: accounts.set_disabled(name, disabled), USERS, _users_page)


@router.post(USERS + "/{name}/role")
async def set_role(name: str, request: Request) -> Response:
    fields = await read_form(request)
    role = fields.get("role", "")
    return await _change(request, lambda accounts: accounts.set_role(name, role), USERS, _users_page)


@router.get(GRANTS)
def grants(request: Request) -> Response:
    return _grants_page(request)


@router.post(GRANTS)
async def grant(request: Request) -> Response:
    fields = await read_form(request)
    user, resource = fields.get("user", "").strip(), fields.get("resource", "").strip()
    permission = fields.get("permission", "")
    by = guard(request).user
    return await _change(
        request,
        lambda accounts: accounts.grant(user, resource, permission, by=by),
        GRANTS,
        _grants_page,
        user=user[:128],
        resource=resource[:600],
        permission=permission[:16],
    )


@router.post(GRANTS + "/revoke")
async def revoke(request: Request) -> Response:
    fields = await read_form(request)
    user, resource = fields.get("user", ""), fields.get("resource", "")
    return await _change(
        request, lambda accounts: accounts.revoke_grant(user, resource), GRANTS, _grants_page
    )
