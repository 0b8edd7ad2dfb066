"""Signing in and out of the UI, and a user's own API tokens."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from shipyard.auth.accounts import Accounts, token_id_of
from shipyard.errors import InvalidInput, NotFound, Unauthorized
from shipyard.ui import sessions
from shipyard.ui.forms import read_form, safe_next
from shipyard.ui.templating import principal, render

router = APIRouter(include_in_schema=False)
_FAILURE_PAUSE_S = 0.25


def _accounts(request: Request) -> Accounts:
    return request.app.state.accounts


def _signs_in(request: Request) -> bool:
    return bool(getattr(request.app.state, "require_auth", False))


@router.get("/ui/login")
def login_page(request: Request, next: str = "/ui/") -> Response:
    if not _signs_in(request):  # nobody signs in on a server without accounts (local mode)
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", next=safe_next(next), error=None, user_name="")


@router.post("/ui/login")
async def login(request: Request) -> Response:
    fields = await read_form(request)
    target = safe_next(fields.get("next"))
    if not _signs_in(request):
        return RedirectResponse(target, status_code=303)
    name = fields.get("user", "").strip()
    accounts = _accounts(request)
    try:
        who = await run_in_threadpool(accounts.authenticate_password, name, fields.get("password", ""))
        _, token = await run_in_threadpool(
            accounts.create_token,
            who.user,
            sessions.SESSION_TOKEN_NAME,
            expires_in_days=sessions.SESSION_HOURS / 24,
        )
    except (Unauthorized, InvalidInput) as exc:
        await asyncio.sleep(_FAILURE_PAUSE_S)
        return render(request, "login.html", 401, next=target, error=str(exc), user_name=name[:100])
    response = RedirectResponse(target, status_code=303)
    secure = request.url.scheme == "https"
    cookie = sessions.cookie_header(
        sessions.SESSION_COOKIE, token, max_age=sessions.SESSION_HOURS * 3600, secure=secure
    )
    response.headers.append("set-cookie", cookie)
    return response


@router.post("/ui/logout")
async def logout(request: Request) -> Response:
    await read_form(request)
    session = sessions.cookies(request.headers.get("cookie")).get(sessions.SESSION_COOKIE)
    token_id = token_id_of(session or "")
    if token_id is not None and principal(request) is not None:
        with contextlib.suppress(NotFound):  # already gone: signed out all the same
            await run_in_threadpool(_accounts(request).revoke_token, token_id)
    response = RedirectResponse(sessions.LOGIN_PATH if _signs_in(request) else "/ui/", status_code=303)
    secure = request.url.scheme == "https"
    response.headers.append(
        "set-cookie", sessions.cookie_header(sessions.SESSION_COOKIE, "", max_age=0, secure=secure)
    )
    return response


@router.get("/ui/account")
def account(request: Request) -> Response:
    who = principal(request)
    tokens = [] if who is None else _accounts(request).list_tokens(who.user)
    return render(request, "account.html", section="", tokens=tokens, new_token=None)


@router.post("/ui/account/tokens")
async def create_token(request: Request) -> Response:
    fields = await read_form(request)
    who = principal(request)
    if who is None:
        raise InvalidInput("this server has no accounts: tokens are made on a server started with --auth")
    try:
        days = float(fields.get("days") or 90)
    except ValueError:
        raise InvalidInput(f"days must be a number, got {fields.get('days')!r}") from None
    accounts = _accounts(request)
    _, token = await run_in_threadpool(
        accounts.create_token, who.user, fields.get("name") or "token", expires_in_days=days
    )
    tokens = await run_in_threadpool(accounts.list_tokens, who.user)
    return render(request, "account.html", 201, section="", tokens=tokens, new_token=token)


@router.post("/ui/account/tokens/{token_id}/revoke")
async def revoke_token(token_id: str, request: Request) -> Response:
    await read_form(request)
    who = principal(request)
    accounts = _accounts(request)
    mine = [] if who is None else await run_in_threadpool(accounts.list_tokens, who.user)
    if token_id not in {t.token_id for t in mine}:
        raise NotFound(f"you have no token {token_id!r}")
    await run_in_threadpool(accounts.revoke_token, token_id)
    return RedirectResponse("/ui/account", status_code=303)
