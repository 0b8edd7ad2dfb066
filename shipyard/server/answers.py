"""The server's one error shape, ``{"error": {"code", "message", "field"?}}``, each error's status, and JSON
answers for the code that answers below the framework (the security middleware, the fast lane)."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Send

from shipyard.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ShipyardError,
    StoreError,
    Unauthorized,
)

# (error class, HTTP status, code): the first match wins, so subclasses come before their bases.
ERRORS: list[tuple[type[ShipyardError], int, str]] = [
    (NotFound, 404, "NOT_FOUND"),
    (AlreadyExists, 409, "ALREADY_EXISTS"),
    (Conflict, 409, "CONFLICT"),
    (InvalidInput, 400, "INVALID_INPUT"),
    (Unauthorized, 401, "UNAUTHORIZED"),
    (Forbidden, 403, "FORBIDDEN"),
    (StoreError, 503, "STORE_UNAVAILABLE"),
    (ShipyardError, 500, "INTERNAL"),
]


# Stored HTML (a monitoring report) may do nothing when shown: no script (``sandbox`` without
# ``allow-scripts``, so an opaque origin too), no request anywhere, its own inline styles and data: images
# only, framed by this site's pages alone. A response with these keeps them (no page policy is added).
SANDBOXED_HTML_HEADERS = {
    "content-security-policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:",
    "x-frame-options": "SAMEORIGIN",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field:
        error["field"] = field
    return {"error": error}


def error_answer(exc: ShipyardError) -> tuple[int, dict[str, Any]]:
    """The status and body that answer ``exc``."""
    for kind, status, code in ERRORS:
        if isinstance(exc, kind):
            return status, error_body(code, str(exc))
    return 500, error_body("INTERNAL", str(exc))  # pragma: no cover


def json_bytes(data: Any) -> bytes:
    """``data`` as compact JSON (a NaN is a bug here: numbers go out as the wire module spells them)."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode()


async def send_json(send: Send, status: int, data: Any = None, headers: dict[str, str] | None = None) -> None:
    """Answer an ASGI request with ``data`` as JSON (no body for 204) and any extra ``headers``."""
    body = b"" if status == 204 else json_bytes(data)
    raw: list[tuple[bytes, bytes]] = []
    if status != 204:
        raw += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
