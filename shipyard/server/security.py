"""The server's front door: authentication before any body is read, body limits, and the audit log.

:class:`SecurityMiddleware` wraps the app (pure ASGI, so nothing reads a request body before it has run):

- **Authentication** (when the server has it on): ``Authorization: Bearer shy_…`` (an API token), a bearer
  JWT from the configured OIDC issuer, or ``Basic`` user:password. No or bad credentials get 401 with a
  reason that never echoes them; each failure is answered after a short pause, and a user's repeated failed
  logins lock it for a growing while (see :mod:`shipyard.auth.accounts`).
- **Limits**: a JSON body over ``max_body_bytes`` and an artifact upload over ``max_artifact_bytes`` get 413,
  by their ``Content-Length`` before anything is read, or as soon as a streamed body passes the limit.
- **Audit** (with sign-in on): every write (POST, PUT, PATCH, DELETE) is recorded after its answer is sent —
  who, method, path, status, when and from which address. Bodies are never recorded (they may hold secrets).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.auth.records import ACTOR, Principal
from shipyard.errors import StoreError, Unauthorized
from shipyard.server.answers import error_body, send_json
from shipyard.tracking.records import now_ms
from shipyard.ui import sessions

if TYPE_CHECKING:
    from shipyard.auth.accounts import Accounts
    from shipyard.auth.oidc import OidcVerifier

log = logging.getLogger(__name__)
# The only paths anyone may reach without signing in (an allow-list: every other path needs credentials).
PUBLIC_PATHS = frozenset({"/api/v1/health", "/api/v1/openapi.json", "/docs", "/docs/oauth2-redirect"})
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FAILURE_PAUSE_S = 0.25
# Artifact uploads, Shipyard's and the MLflow client's: limited by max_artifact_bytes, not the JSON limit.
_UPLOADS = ("/api/v1/artifacts/", "/api/2.0/mlflow-artifacts/artifacts/")


@dataclass
class SecurityConfig:
    """What the front door enforces. Without ``require_auth`` (loopback, or insecure mode) every caller is
    anonymous and nothing is audited."""

    accounts: Accounts
    require_auth: bool = False
    oidc: OidcVerifier | None = None
    max_body_bytes: int = 32 << 20
    max_artifact_bytes: int = 64 << 30


class _TooLarge(Exception):
    pass


class SecurityMiddleware:
    def __init__(self, app: ASGIApp, config: SecurityConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        principal: Principal | None = None
        page = sessions.is_ui_path(path)
        if self.config.require_auth and path not in PUBLIC_PATHS and not sessions.is_public_ui_path(path):
            authorization = headers.get("authorization")
            if authorization is None and page:  # a browser's session cookie: credentials on UI paths only
                session = sessions.cookies(headers.get("cookie")).get(sessions.SESSION_COOKIE)
                authorization = f"Bearer {session}" if session else None
            try:
                principal = await run_in_threadpool(self._authenticate, authorization)
            except Unauthorized as exc:
                await asyncio.sleep(_FAILURE_PAUSE_S)
                if page:
                    await _to_login(send, scope, headers)
                else:
                    challenge = {"www-authenticate": 'Bearer realm="shipyard"'}
                    await _error(scope, send, 401, "UNAUTHORIZED", str(exc), challenge)
                await self._audit(scope, "?", method, path, 401)
                return
            except StoreError as exc:  # the database is down: nobody can be checked, so nobody gets in
                await _error(scope, send, 503, "STORE_UNAVAILABLE", str(exc))
                return
        scope.setdefault("state", {})["principal"] = principal
        if principal is not None:
            ACTOR.set(principal.user)  # this request's task (and the threads it calls) only

        limit = self._limit(method, path)
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            message = f"the request body ({declared} bytes) is over the limit of {limit}"
            await _error(scope, send, 413, "TOO_LARGE", message)
            await self._audit(scope, _who(principal), method, path, 413)
            return

        received = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise _TooLarge
            return message

        status = 500
        started = False

        async def tracking_send(message: Message) -> None:
            # Whatever the app made of a body cut off at the limit (a parse error, say), the answer is 413.
            nonlocal status, started
            if too_large:
                if message["type"] == "http.response.start" and not started:
                    started, status = True, 413
                    await _error(
                        scope, send, 413, "TOO_LARGE", f"the request body is over the limit of {limit} bytes"
                    )
                return
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                if page or path.startswith(sessions.STATIC_PREFIX):
                    message = {**message, "headers": _with_page_headers(message.get("headers", []))}
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            status = 413
            if not started:
                message = f"the request body is over the limit of {limit} bytes"
                await _error(scope, send, 413, "TOO_LARGE", message)
        if method in _WRITES:
            await self._audit(scope, _who(principal), method, path, status)

    def _authenticate(self, authorization: str | None) -> Principal:
        accounts = self.config.accounts
        if not authorization:
            raise Unauthorized(
                "authentication required: send 'Authorization: Bearer <token>' "
                "(set SHIPYARD_TRACKING_TOKEN; create a token with: shipyard tokens create)"
            )
        scheme, _, credentials = authorization.strip().partition(" ")
        credentials = credentials.strip()
        if scheme.lower() == "bearer" and credentials:
            if credentials.startswith("shy_") or self.config.oidc is None:
                return accounts.authenticate_token(credentials)
            return self.config.oidc.principal(credentials, accounts)
        if scheme.lower() == "basic" and credentials:
            try:
                user, sep, password = base64.b64decode(credentials, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, sep, password = "", "", ""
            if not sep:
                raise Unauthorized("malformed Basic credentials: expected base64 of user:password")
            return accounts.authenticate_password(user, password)
        raise Unauthorized(
            "unsupported Authorization header: use 'Bearer <token>' or 'Basic <user:password>'"
        )

    def _limit(self, method: str, path: str) -> int:
        if method == "PUT" and path.startswith(_UPLOADS):
            return self.config.max_artifact_bytes
        return self.config.max_body_bytes

    async def _audit(self, scope: Scope, user: str, method: str, path: str, status: int) -> None:
        if not self.config.require_auth:  # everyone is anonymous: nothing to tell apart, nothing to record
            return
        accounts = self.config.accounts
        client = scope.get("client")
        event = {
            "at": now_ms(),
            "user_name": user[:256],
            "method": method[:8],
            "path": path[:2000],
            "status": status,
            "address": (client[0] if client else "?")[:64],
        }
        try:
            await run_in_threadpool(accounts.record, [event])
        except Exception as exc:  # an audit write must not turn a stored write into an error
            log.error("could not record an audit event for %s %s: %s", method, path, exc)


# The UI's pages run only the package's own scripts and styles (no inline script, no other origin), are never
# framed by another page, and send no referrer elsewhere. A response that sets its own policy keeps it (an
# artifact preview, sandboxed).
PAGE_HEADERS = (
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        b"frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)


def _with_page_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    present = {name.lower() for name, _ in headers}
    return list(headers) + [(name, value) for name, value in PAGE_HEADERS if name not in present]


async def _to_login(send: Send, scope: Scope, headers: dict[str, str]) -> None:
    """Send a browser without a (valid) session to the login page, which brings it back here after."""
    query = scope.get("query_string", b"").decode("latin-1")
    here = scope["path"] + (f"?{query}" if query else "")
    if headers.get("hx-request"):  # htmx asks for a fragment: send the whole page to log in
        current = headers.get("hx-current-url", "")
        here = "/" + current.split("://", 1)[-1].partition("/")[2] if "://" in current else here
    location = f"{sessions.LOGIN_PATH}?{urlencode({'next': here})}"
    extra = [(b"hx-redirect", location.encode())] if headers.get("hx-request") else []
    status = 401 if extra else 303
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": _with_page_headers(
                [(b"location", location.encode()), (b"content-length", b"0"), *extra]
            ),
        }
    )
    await send({"type": "http.response.body", "body": b""})


def _who(principal: Principal | None) -> str:
    return "anonymous" if principal is None else principal.user


# The MLflow client reads errors as {"error_code", "message"} (see shipyard.server.mlflow.protocol).
_MLFLOW_PATHS = ("/api/2.0/", "/api/3.0/")
_MLFLOW_CODES = {
    "UNAUTHORIZED": "UNAUTHENTICATED",
    "TOO_LARGE": "INVALID_PARAMETER_VALUE",
    "STORE_UNAVAILABLE": "TEMPORARILY_UNAVAILABLE",
}


async def _error(
    scope: Scope, send: Send, status: int, code: str, message: str, extra: dict[str, str] | None = None
) -> None:
    if scope["path"].startswith(_MLFLOW_PATHS):
        body = {"error_code": _MLFLOW_CODES.get(code, code), "message": message}
        await send_json(send, status, body, extra)
        return
    await send_json(send, status, error_body(code, message), extra)
