"""Browser sessions and CSRF protection for the web UI's pages.

A signed-in browser holds a real API token of its user (named ``web session``, expiring after
``SESSION_HOURS``) in an ``HttpOnly``, ``SameSite=Strict`` cookie, revoked when the user signs out. The
cookie counts as credentials on the UI's own paths only: the REST API under ``/api/v1`` never reads it, so a
page of another site can make a browser send it nowhere that matters.

Every UI write (a form or an htmx request) carries a CSRF token: an HMAC of a random ``SameSite=Strict``
cookie (and of the session, when there is one) that a page of another site can neither read nor forge. A
write from another origin (its ``Origin`` header) is refused before that.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from http.cookies import CookieError, SimpleCookie

from shipyard.errors import Forbidden

SESSION_COOKIE = "shipyard_session"
CSRF_COOKIE = "shipyard_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
SESSION_HOURS = 12
SESSION_TOKEN_NAME = "web session"
# Paths the UI serves (cookies are credentials there and nowhere else) and those anyone may reach.
UI_PREFIX = "/ui"
LOGIN_PATH = "/ui/login"
PUBLIC_UI_PATHS = frozenset({LOGIN_PATH, "/favicon.ico"})
STATIC_PREFIX = "/static/"


def is_ui_path(path: str) -> bool:
    return path == "/" or path == UI_PREFIX or path.startswith(UI_PREFIX + "/")


def is_public_ui_path(path: str) -> bool:
    """Paths served without signing in: the login page and the static files (no records in either)."""
    return path in PUBLIC_UI_PATHS or path.startswith(STATIC_PREFIX)


def cookies(header: str | None) -> dict[str, str]:
    """The cookies of a ``Cookie`` header (a malformed header counts as none)."""
    if not header:
        return {}
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def new_csrf_secret() -> str:
    return secrets.token_urlsafe(24)


def csrf_token(csrf_secret: str, session: str | None) -> str:
    """The token a page embeds in its forms: bound to the browser's CSRF cookie and to its session."""
    message = b"shipyard-csrf:" + (session or "").encode()
    return hmac.new(csrf_secret.encode(), message, hashlib.sha256).hexdigest()


def check_csrf(
    sent: str | None, csrf_secret: str | None, session: str | None, origin: str | None, host: str | None
) -> None:
    """Refuse a UI write that another site could have made.

    Raises:
        Forbidden: the write comes from another origin, or its CSRF token is missing or wrong.
    """
    if origin not in (None, "null") and host is not None and origin.split("://", 1)[-1].rstrip("/") != host:
        raise Forbidden(f"a write from another site ({origin}) was refused")
    if not sent or not csrf_secret or not hmac.compare_digest(sent, csrf_token(csrf_secret, session)):
        raise Forbidden("the form's CSRF token is missing or stale; reload the page and try again")


def cookie_header(name: str, value: str, *, max_age: int | None, secure: bool, http_only: bool = True) -> str:
    """A ``Set-Cookie`` value: path ``/``, ``SameSite=Strict``; ``max_age`` 0 deletes the cookie."""
    parts = [f"{name}={value}", "Path=/", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if http_only:
        parts.append("HttpOnly")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
