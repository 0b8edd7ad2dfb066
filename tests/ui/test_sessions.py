"""Signing in to the UI of a server with accounts: session cookies, CSRF, redirects, and what a session
cookie can and cannot open."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from shipyard.auth.accounts import Accounts
from shipyard.store import open_server_stores
from shipyard.ui import sessions
from tests.conftest import make_settings, platform_server, sign_up

PASSWORD = "a long enough password"


@dataclass
class Site:
    url: str
    accounts: Accounts


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    server = make_settings(tmp_path / "server")
    accounts = Accounts(open_server_stores(server).auth)
    sign_up(accounts, [("alice", "editor", PASSWORD), ("bob", "viewer", PASSWORD)])
    with platform_server(server, require_auth=True) as url:
        yield Site(url, accounts)


def _csrf(page: httpx.Response) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)[1]


def _sign_in(web: httpx.Client, user: str, password: str = PASSWORD, next: str = "/ui/") -> httpx.Response:
    page = web.get("/ui/login", params={"next": next})
    return web.post("/ui/login", data={"csrf": _csrf(page), "next": next, "user": user, "password": password})


def test_a_browser_without_a_session_is_sent_to_log_in_and_back(site: Site) -> None:
    with httpx.Client(base_url=site.url) as web:
        first = web.get("/ui/experiments/abc", params={"filter": "metrics.a > 1"})
        assert first.status_code == 303
        assert (
            first.headers["location"]
            == "/ui/login?next=%2Fui%2Fexperiments%2Fabc%3Ffilter%3Dmetrics.a%2B%253E%2B1"
        )
        fragment = web.get(
            "/ui/experiments/abc/count",
            headers={"HX-Request": "true", "HX-Current-URL": f"{site.url}/ui/runs/r1?x=time"},
        )
        assert fragment.status_code == 401
        assert fragment.headers["hx-redirect"] == "/ui/login?next=%2Fui%2Fruns%2Fr1%3Fx%3Dtime"
        signed = _sign_in(web, "alice", next="/ui/experiments/abc?filter=x")
        assert signed.status_code == 303 and signed.headers["location"] == "/ui/experiments/abc?filter=x"
        cookie = signed.headers["set-cookie"]
        assert cookie.startswith(f"{sessions.SESSION_COOKIE}=shy_") and "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie and "Max-Age=43200" in cookie
        home = web.get("/ui/")
        assert home.status_code == 200 and "alice" in home.text and "Sign out" in home.text


def test_a_wrong_password_is_refused_on_the_page_and_next_stays_on_this_site(site: Site) -> None:
    with httpx.Client(base_url=site.url) as web:
        wrong = _sign_in(web, "alice", "not it")
        assert wrong.status_code == 401 and "invalid user name or password" in wrong.text
        assert sessions.SESSION_COOKIE not in wrong.headers.get("set-cookie", "")
        for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
            assert _sign_in(web, "alice", next=target).headers["location"] == "/ui/", target


def test_the_session_cookie_opens_pages_but_not_the_api(site: Site) -> None:
    with httpx.Client(base_url=site.url) as web:
        _sign_in(web, "alice")
        assert web.get("/ui/").status_code == 200
        api = web.get("/api/v1/experiments")
        assert api.status_code == 401  # the REST API takes tokens in Authorization only


def test_writes_need_the_csrf_token_and_this_origin(site: Site) -> None:
    with httpx.Client(base_url=site.url) as web:
        _sign_in(web, "alice")
        page = web.get("/ui/account")
        token = _csrf(page)
        assert web.post("/ui/account/tokens", data={"name": "ci", "days": "5"}).status_code == 403
        assert web.post("/ui/account/tokens", data={"csrf": "0" * 64, "name": "ci"}).status_code == 403
        foreign = web.post(
            "/ui/account/tokens",
            data={"csrf": token, "name": "ci"},
            headers={"Origin": "https://evil.example"},
        )
        assert foreign.status_code == 403 and "another site" in foreign.text
        made = web.post("/ui/account/tokens", data={"csrf": token, "name": "ci", "days": "5"})
        assert made.status_code == 201
        shown = re.search(r'<pre class="token" id="new-token">(shy_[^<]+)</pre>', made.text)[1]
        assert (
            httpx.get(
                f"{site.url}/api/v1/experiments", headers={"Authorization": f"Bearer {shown}"}
            ).status_code
            == 200
        )
        # Another browser's token (its own CSRF cookie) does not pass for this one.
        with httpx.Client(base_url=site.url) as other:
            _sign_in(other, "bob")
            assert other.post("/ui/account/tokens", data={"csrf": token, "name": "x"}).status_code == 403


def test_signing_out_revokes_the_session(site: Site) -> None:
    with httpx.Client(base_url=site.url) as web:
        _sign_in(web, "alice")
        session = web.cookies[sessions.SESSION_COOKIE]
        out = web.post("/ui/logout", data={"csrf": _csrf(web.get("/ui/"))})
        assert out.status_code == 303 and out.headers["location"] == sessions.LOGIN_PATH
        assert web.get("/ui/").status_code == 303
    with httpx.Client(base_url=site.url, cookies={sessions.SESSION_COOKIE: session}) as replay:
        assert replay.get("/ui/").status_code == 303  # the old cookie no longer opens anything
    states = {t.name: t.revoked_at is not None for t in site.accounts.list_tokens("alice")}
    assert states[sessions.SESSION_TOKEN_NAME] is True
